#include "tokenizer/vocab.h"

#include <algorithm>


namespace squeeze::tok {

namespace {

// Texts llama.cpp treats as end of generation whatever the metadata says (llama-vocab.cpp,
// "auto-detect EOG tokens"), so chat models stop at the end of their turn.
const char* const kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
};
// Texts llama.cpp takes as the EOT id when the file names none.
const char* const kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
    "<｜end▁of▁sentence｜>", "<end_of_utterance>",
};

uint64_t hash_text(std::string_view s) {
  // FNV-1a: tokens are short, and this needs no tuning to spread them well.
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h ^ (h >> 29);
}

}  // namespace

int32_t Vocab::find(std::string_view text) const {
  if (slots_.empty()) return -1;
  uint64_t h = hash_text(text);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash == uint32_t(h >> 32) && tokens[size_t(s.id)] == text) return s.id;
  }
}

void Vocab::build_index() {
  const size_t n = tokens.size();
  // llama.cpp renames empty tokens so that no fragment can ever match them.
  for (size_t i = 0; i < n; i++)
    if (tokens[i].empty()) tokens[i] = "[EMPTY_" + std::to_string(i) + "]";

  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;  // load factor <= 1/2 keeps probe runs short
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  for (size_t id = 0; id < n; id++) {
    uint64_t h = hash_text(tokens[id]);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s = Slot{uint32_t(h >> 32), int32_t(id)};
        break;
      }
      // Later duplicates win, as in llama.cpp's token_to_id[word] = i.
      if (s.hash == uint32_t(h >> 32) && tokens[size_t(s.id)] == tokens[id]) {
        s.id = int32_t(id);
        break;
      }
    }
  }
  indexed_ = n;
}

void Vocab::finalize() {
  const size_t n = tokens.size();
  if (types.size() != n) types.resize(n, TokenType::normal);
  if (!scores.empty() && scores.size() != n) scores.resize(n, 0.0f);
  lstrip.resize(n, 0);
  rstrip.resize(n, 0);
  if (indexed_ != n || slots_.empty()) build_index();

  for (int32_t* id : {&bos, &eos, &unk, &pad, &eot, &eom})
    if (!valid(*id)) *id = -1;

  if (eot < 0)
    for (const char* t : kEotTexts)
      if (int32_t id = find(t); id >= 0) {
        eot = id;
        break;
      }
  eog.clear();
  for (const char* t : kEogTexts) {
    int32_t id = find(t);
    if (id < 0) continue;
    eog.insert(id);
    // llama.cpp promotes these to control tokens: never printed, matched only as specials.
    types[size_t(id)] = TokenType::control;
  }
  for (int32_t id : {eos, eot, eom})
    if (id >= 0) eog.insert(id);

  byte_tokens_.fill(-1);
  for (int b = 0; b < 256; b++) {
    static const char* hex = "0123456789ABCDEF";
    const char text[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    byte_tokens_[size_t(b)] = find(std::string_view(text, 6));
  }

  special_candidates_.clear();
  for (size_t i = 0; i < n; i++) {
    TokenType t = types[i];
    if (t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown)
      special_candidates_.push_back(int32_t(i));
  }
  std::stable_sort(special_candidates_.begin(), special_candidates_.end(),
                   [&](int32_t a, int32_t b) {
                     return tokens[size_t(a)].size() > tokens[size_t(b)].size();
                   });
}

}  // namespace squeeze::tok
