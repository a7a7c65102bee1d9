#pragma once
// The vocabulary both loaders fill in and every algorithm reads: token texts, scores, types, the
// text -> id map, byte tokens and the special ids. It carries no algorithm of its own.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace squeeze::tok {

// GGUF tokenizer.ggml.token_type values (llama.cpp llama_token_type).
enum class TokenType : int32_t {
  undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6,
};

struct Vocab {
  Vocab() = default;
  Vocab(Vocab&&) = default;  // moving keeps the token strings in place, so the map stays valid
  Vocab& operator=(Vocab&&) = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  std::vector<std::string> tokens;  // text by id
  std::vector<float> scores;        // SPM merge priority; empty when the model has none
  std::vector<TokenType> types;
  // Added-token attributes (HF lstrip/rstrip; llama.cpp sets rstrip on Phi-3's special tokens):
  // whitespace next to a matched special token is dropped from the text.
  std::vector<uint8_t> lstrip, rstrip;
  // Which whitespace lstrip/rstrip remove: llama.cpp uses C isspace() (ASCII), HF tokenizers
  // char::is_whitespace (Unicode White_Space, e.g. also U+00A0 and U+3000).
  bool unicode_strip = false;

  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  std::unordered_set<int32_t> eog;  // end-of-generation ids; filled by finalize()

  // The text -> id index; find() works after this. Loaders that must look tokens up before the
  // special ids are known call it early; finalize() calls it otherwise. `tokens` must not change
  // afterwards.
  void build_index();
  // How special tokens the file does not declare are found. llama_cpp: llama.cpp's text rules,
  // which also turn the tokens they find (e.g. "</s>", "<|end|>") into control tokens. hf: the
  // types stay as tokenizer.json gives them; only the end-of-generation set is filled by text.
  enum class SpecialRules { llama_cpp, hf };
  // Completes the vocabulary once tokens, types and special ids are set: EOG set, byte tokens,
  // special-token candidates. Invalid special ids become -1.
  void finalize(SpecialRules rules);

  int32_t size() const { return int32_t(tokens.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < size(); }
  int32_t find(std::string_view text) const;
  TokenType type(int32_t id) const { return types[size_t(id)]; }
  float score(int32_t id) const { return scores.empty() ? 0.0f : scores[size_t(id)]; }
  // The "<0xHH>" token of a byte, or -1.
  int32_t byte_token(uint8_t b) const { return byte_tokens_[b]; }
  // Texts that are matched in the input before the model runs (control, user-defined and
  // unknown tokens), longest first, as llama.cpp's tokenizer_st_partition orders them.
  const std::vector<int32_t>& special_candidates() const { return special_candidates_; }

 private:
  void detect_llama_cpp_specials();
  // text -> id: open addressing over (hash, id) slots. Lookups are the inner loop of both
  // loading (merges) and SPM encoding; a node-based map costs a pointer chase per probe.
  struct Slot {
    uint32_t hash;
    int32_t id;  // -1: empty
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t indexed_ = 0;  // tokens.size() when the index was built
  std::array<int32_t, 256> byte_tokens_{};
  std::vector<int32_t> special_candidates_;
};

}  // namespace squeeze::tok
