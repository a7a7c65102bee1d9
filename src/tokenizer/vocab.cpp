#include "tokenizer/vocab.h"

#include <algorithm>


namespace squeeze::tok {

namespace {

// (The source is UTF-8; the fullwidth-bar names are DeepSeek's.)
// Token texts llama.cpp (llama-vocab.cpp, the version of bench/peers/llamacpp.sh) recognizes
// when the file does not name the ids. Each recognized token is also made a control token.
const char* const kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
};
const char* const kFimPre[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                               "<｜fim▁begin｜>", "<PRE>",
                               "▁<PRE>", "<|code_prefix|>", "<|prefix|>"};
const char* const kFimSuf[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                               "<｜fim▁hole｜>", "<SUF>",
                               "▁<SUF>", "<|code_suffix|>", "<|suffix|>"};
const char* const kFimMid[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                               "<｜fim▁end｜>", "<MID>",
                               "▁<MID>", "<|code_middle|>", "<|middle|>"};
const char* const kFimPad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
const char* const kFimRep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
const char* const kFimSep[] = {"<|file_sep|>"};
// End-of-generation texts: chat models stop at the end of their turn whatever the metadata says.
const char* const kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
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

void Vocab::detect_llama_cpp_specials() {
  auto detect = [&](int32_t& slot, auto& texts) {
    if (slot >= 0) return;
    for (const char* t : texts)
      if (int32_t id = find(t); id >= 0) {
        slot = id;
        types[size_t(id)] = TokenType::control;
        return;
      }
  };
  static const char* const kEom[] = {"<|eom_id|>"};
  detect(eot, kEotTexts);
  detect(eom, kEom);
  detect(fim_pre, kFimPre);
  detect(fim_suf, kFimSuf);
  detect(fim_mid, kFimMid);
  detect(fim_pad, kFimPad);
  detect(fim_rep, kFimRep);
  detect(fim_sep, kFimSep);
  for (int32_t id : {fim_pad, fim_rep, fim_sep})
    if (id >= 0) eog.insert(id);
  for (const char* t : kEogTexts)
    if (int32_t id = find(t); id >= 0) {
      eog.insert(id);
      types[size_t(id)] = TokenType::control;  // never printed, matched only as specials
    }
  // gpt-oss: these structure tokens are always rendered.
  for (const char* t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
    if (int32_t id = find(t); id >= 0) types[size_t(id)] = TokenType::user_defined;
  for (int32_t id : {eos, eot, eom})
    if (id >= 0) eog.insert(id);

  auto in_eog = [&](const char* t) {
    int32_t id = find(t);
    return id >= 0 && eog.count(id) ? id : -1;
  };
  // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
  int32_t end = in_eog("<|end|>");
  bool has_call = in_eog("<|call|>") >= 0 || in_eog("<|calls|>") >= 0;
  if (end >= 0 && has_call && (in_eog("<|return|>") >= 0 || in_eog("<|flush|>") >= 0)) {
    eog.erase(end);
    types[size_t(end)] = TokenType::user_defined;
  }
  // Gemma 4 and PLaMo use "</s>" as a normal token.
  int32_t s = in_eog("</s>");
  if (s >= 0 && (in_eog("<|tool_response>") >= 0 || in_eog("<|plamo:eos|>") >= 0)) {
    eog.erase(s);
    types[size_t(s)] = TokenType::normal;
  }
}

void Vocab::finalize(SpecialRules rules) {
  const size_t n = tokens.size();
  if (types.size() != n) types.resize(n, TokenType::normal);
  if (!scores.empty() && scores.size() != n) scores.resize(n, 0.0f);
  lstrip.resize(n, 0);
  rstrip.resize(n, 0);
  if (indexed_ != n || slots_.empty()) build_index();

  for (int32_t* id : {&bos, &eos, &unk, &pad, &eot, &eom, &fim_pre, &fim_suf, &fim_mid, &fim_pad,
                      &fim_rep, &fim_sep})
    if (!valid(*id)) *id = -1;

  eog.clear();
  if (rules == SpecialRules::llama_cpp) {
    detect_llama_cpp_specials();
  } else {
    // HF: token types stay as tokenizer.json says; known end-of-turn texts still stop generation
    // ("</s>" only when it is the EOS: Gemma spells an HTML tag that way).
    for (const char* t : kEogTexts)
      if (int32_t id = find(t); id >= 0 && std::string_view(t) != "</s>") eog.insert(id);
    for (int32_t id : {eos, eot, eom})
      if (id >= 0) eog.insert(id);
  }

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
