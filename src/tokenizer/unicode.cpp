#include "tokenizer/unicode.h"

#include <array>

namespace squeeze::tok {

size_t utf8_valid_len(const char* s, size_t n) {
  if (n == 0) return 0;
  const auto* u = reinterpret_cast<const uint8_t*>(s);
  uint8_t b0 = u[0];
  if (b0 < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (excludes overlongs etc.)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;  // continuation byte, C0/C1 (always overlong) or F5..FF
  }
  if (n < len) return 0;
  if (u[1] < lo || u[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if ((u[i] & 0xC0) != 0x80) return 0;
  return len;
}

uint32_t utf8_decode(const char* s, size_t len) {
  const auto* u = reinterpret_cast<const uint8_t*>(s);
  switch (len) {
    case 1: return u[0];
    case 2: return ((u[0] & 0x1Fu) << 6) | (u[1] & 0x3Fu);
    case 3: return ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu);
    case 4:
      return ((u[0] & 0x07u) << 18) | ((u[1] & 0x3Fu) << 12) | ((u[2] & 0x3Fu) << 6) |
             (u[3] & 0x3Fu);
    default: return kReplacementChar;
  }
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool utf8_is_valid(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (uint8_t(text[i]) < 0x80) {  // ASCII fast path
      i++;
      continue;
    }
    size_t len = utf8_valid_len(text.data() + i, text.size() - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string utf8_sanitize(std::string_view text) {
  if (utf8_is_valid(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  size_t i = 0;
  while (i < text.size()) {
    size_t len = utf8_valid_len(text.data() + i, text.size() - i);
    if (len == 0) {
      utf8_append(out, kReplacementChar);
      i++;
    } else {
      out.append(text.data() + i, len);
      i += len;
    }
  }
  return out;
}

size_t spm_char_len(const char* s, size_t n) {
  static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  size_t len = kLen[uint8_t(s[0]) >> 4];
  return len < n ? len : n;
}

namespace {

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 0x144> to_byte;  // every mapped code point is below U+0144
  ByteMap() {
    to_byte.fill(-1);
    int next = 0;
    for (int b = 0; b < 256; b++) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      uint32_t cp = printable ? uint32_t(b) : uint32_t(0x100 + next++);
      utf8_append(to_unicode[b], cp);
      to_byte[cp] = int16_t(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) { return cp < 0x144 ? byte_map().to_byte[cp] : -1; }

std::string bytes_to_unicode_string(std::string_view bytes) {
  const ByteMap& m = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += m.to_unicode[uint8_t(c)];
  return out;
}

bool unicode_string_to_bytes(std::string_view text, std::string& out) {
  std::string bytes;
  bytes.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t len = utf8_valid_len(text.data() + i, text.size() - i);
    if (len == 0) return false;
    int b = unicode_to_byte(utf8_decode(text.data() + i, len));
    if (b < 0) return false;
    bytes += char(b);
    i += len;
  }
  out += bytes;
  return true;
}

int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

}  // namespace squeeze::tok
