#pragma once
// Rank-based BPE over the characters of one pre-tokenized piece: the adjacent pair with the
// lowest merge rank is merged first, ties to the leftmost (llama.cpp llm_tokenizer_bpe and HF
// tokenizers' BPE::merge_word agree on this). Used for byte-level vocabularies (GPT-2, Llama 3,
// Qwen2), where the piece is already spelled with the GPT-2 byte map, and for tokenizer.json BPE
// models over plain characters with byte fallback (Gemma and Llama 2 style).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/flat_map.h"
#include "tokenizer/vocab.h"

namespace squeeze::tok {

struct BpeModel {
  // A merge whose parts or result are not tokens could never produce a token, so the loaders
  // leave it out.
  FlatMap64 merges;  // (left id << 32 | right id) -> {rank, merged id}
  bool ignore_merges = false;  // a piece that is a token as a whole is emitted as it is
  bool byte_fallback = false;  // HF: a character not in the vocabulary becomes <0xHH> tokens
  bool fuse_unk = false;       // HF: consecutive unknown characters share one unk token
  // llama.cpp semantics for characters missing from the vocabulary: they stay symbols, and a
  // final symbol that is not a token is emitted as the tokens of its single bytes, if any. HF
  // semantics (false): byte fallback, else the unk token, else the character is dropped.
  bool llama_unknown = false;

  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  // Adds a merge by token texts; returns false (and adds nothing) when it cannot apply.
  bool add_merge(const Vocab& vocab, std::string_view left, std::string_view right, int32_t rank);
};

void bpe_encode(std::string_view piece, const Vocab& vocab, const BpeModel& model,
                std::vector<int32_t>& out);

}  // namespace squeeze::tok
