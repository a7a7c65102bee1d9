#pragma once
// The vocabulary both loaders fill in and every algorithm reads: token texts, scores, types, the
// text -> id map, byte tokens and the special ids. It carries no algorithm of its own.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
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

  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  std::unordered_set<int32_t> eog;  // end-of-generation ids; filled by finalize()

  // Builds the lookup tables; call once after tokens/types/special ids are final (the map keys
  // point into `tokens`, which must not change afterwards). Invalid special ids become -1.
  void finalize();

  int32_t size() const { return int32_t(tokens.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < size(); }
  int32_t find(std::string_view text) const {
    auto it = to_id_.find(text);
    return it == to_id_.end() ? -1 : it->second;
  }
  TokenType type(int32_t id) const { return types[size_t(id)]; }
  float score(int32_t id) const { return scores.empty() ? 0.0f : scores[size_t(id)]; }
  // The "<0xHH>" token of a byte, or -1.
  int32_t byte_token(uint8_t b) const { return byte_tokens_[b]; }
  // Texts that are matched in the input before the model runs (control, user-defined and
  // unknown tokens), longest first, as llama.cpp's tokenizer_st_partition orders them.
  const std::vector<int32_t>& special_candidates() const { return special_candidates_; }

 private:
  std::unordered_map<std::string_view, int32_t> to_id_;
  std::array<int32_t, 256> byte_tokens_{};
  std::vector<int32_t> special_candidates_;
};

}  // namespace squeeze::tok
