// StreamDecoder: emits every byte as soon as it is known whether it belongs to a complete UTF-8
// character. Only a tail that is a proper prefix of a well-formed sequence is held back; bytes
// that can no longer complete one go out unchanged right away, so nothing waits forever.
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace squeeze {

namespace {

// Whether s[0..n) (n < the sequence length) could still grow into a well-formed sequence.
bool is_incomplete_prefix(const char* s, size_t n) {
  const auto* u = reinterpret_cast<const uint8_t*>(s);
  uint8_t b0 = u[0];
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return false;
  }
  if (n >= need) return false;
  if (n >= 2 && (u[1] < lo || u[1] > hi)) return false;
  for (size_t i = 2; i < n; i++)
    if ((u[i] & 0xC0) != 0x80) return false;
  return true;
}

}  // namespace

std::string StreamDecoder::push(std::string_view piece) {
  pending_.append(piece);
  // Walk the buffer: complete characters and hopeless bytes are emitted; a trailing partial
  // character (at most 3 bytes) stays for the next push.
  size_t i = 0;
  const size_t n = pending_.size();
  while (i < n) {
    if (uint8_t(pending_[i]) < 0x80) {
      i++;
      continue;
    }
    size_t len = tok::utf8_valid_len(pending_.data() + i, n - i);
    if (len) {
      i += len;
    } else if (is_incomplete_prefix(pending_.data() + i, n - i)) {
      break;  // the rest is the start of a character still arriving
    } else {
      i++;  // invalid byte: emit it as it is
    }
  }
  std::string out = pending_.substr(0, i);
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace squeeze
