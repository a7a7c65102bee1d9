#pragma once
// The one Tokenizer implementation: a vocabulary plus the pipeline the loaders describe.
//   text -> special-token fragments -> per raw fragment: normalize -> pre-tokenize -> model
// GGUF "llama" is normalize(dummy prefix, space escape) + SPM; GGUF "gpt2" is pre-tokenize(regex
// list, byte map) + BPE; tokenizer.json files map their components onto the same steps.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/normalize.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace squeeze::tok {

struct TokenizerSpec {
  enum class Model { spm, bpe };
  // How a normal token's text becomes bytes: SentencePiece spelling (U+2581 is a space, <0xHH>
  // is a byte) or the GPT-2 byte map.
  enum class Pieces { sentencepiece, byte_level };

  Vocab vocab;
  Model model = Model::spm;
  Pieces pieces = Pieces::sentencepiece;
  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  BpeModel bpe;  // Model::bpe only

  // add_special: ids placed around the text (BOS / EOS, or an HF TemplateProcessing).
  std::vector<int32_t> prefix, suffix;
  bool add_bos = false, add_eos = false;  // as reported by the accessors
  bool sanitize_utf8 = true;  // invalid bytes -> U+FFFD before normalizing (not for GGUF SPM)
  bool decode_strip_space = false;  // decode() drops the dummy-prefix space at the start
  std::string kind;
};

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerSpec spec);

// The texts of a Hugging Face tokenizer folder; empty strings for absent companion files.
struct HfFiles {
  std::string tokenizer;          // tokenizer.json
  std::string tokenizer_config;   // tokenizer_config.json: bos/eos tokens, add_bos/add_eos
  std::string config;             // config.json: bos_token_id / eos_token_id
  std::string generation_config;  // generation_config.json: more eos ids
};
// Tokenizer::from_hf_dir without the file system (the fuzzer feeds it directly). Throws Error.
std::unique_ptr<Tokenizer> tokenizer_from_hf_files(const HfFiles& files);

}  // namespace squeeze::tok
