#pragma once
// SentencePiece-style BPE as llama.cpp's llm_tokenizer_spm runs it (models.md 4.4): characters
// are merged pairwise, best vocabulary score first, and whatever does not end up as a token is
// spelled with byte tokens.
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace squeeze::tok {

// text is one normalized fragment (spaces already escaped as U+2581); any bytes are accepted.
void spm_encode(std::string_view text, const Vocab& vocab, std::vector<int32_t>& out);

}  // namespace squeeze::tok
