#pragma once
// Text <-> token ids, exactly as llama.cpp (GGUF metadata) and Hugging Face tokenizers
// (tokenizer.json) do it. Two algorithms behind one interface: SentencePiece-style BPE with
// scores and byte fallback (llama, gemma) and byte-level BPE with merges (gpt2, llama3, qwen2).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace squeeze {

class GGUFFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // From a GGUF file's tokenizer.ggml.* metadata (full models and vocab-only files).
  static std::unique_ptr<Tokenizer> from_gguf(const GGUFFile& file);
  // From a Hugging Face folder: tokenizer.json, plus tokenizer_config.json / config.json for
  // BOS/EOS ids and add_bos/add_eos.
  static std::unique_ptr<Tokenizer> from_hf_dir(const std::string& dir);

  // add_special: prepend BOS / append EOS as the model's metadata says.
  // parse_special: match control-token text (e.g. "<start_of_turn>") in the input as tokens.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;
  // The bytes of one token (may be part of a UTF-8 character). Control tokens give "" unless
  // special is true.
  virtual std::string token_to_piece(int32_t id, bool special) const = 0;
  // The text of a whole sequence: the pieces joined (special tokens only if special), minus the
  // SentencePiece dummy-prefix space at the start where the tokenizer adds one; this is what HF
  // decode() returns for it.
  virtual std::string decode(const std::vector<int32_t>& ids, bool special) const = 0;
  virtual int32_t find_token(std::string_view text) const = 0;  // exact vocabulary entry, or -1

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 if none
  virtual int32_t eos_id() const = 0;  // -1 if none
  virtual bool add_bos() const = 0;
  virtual bool add_eos() const = 0;
  virtual bool is_eog(int32_t id) const = 0;  // EOS, EOT and other end-of-generation tokens
  // For `squeeze info`: "spm", "bpe (<pre>)" for GGUF; "bpe (tokenizer.json, byte-level)" or
  // "bpe (tokenizer.json, byte fallback)" for Hugging Face folders.
  virtual std::string kind() const = 0;
  virtual std::string token_text(int32_t id) const = 0;  // raw vocabulary entry
};

// Joins token pieces into text that is safe to print as it streams: bytes of a UTF-8 character
// split across tokens are held back until the character is complete. Bytes that can no longer
// become a valid character are passed through as they are, as soon as that is certain.
class StreamDecoder {
 public:
  std::string push(std::string_view piece);  // returns the complete characters available now
  std::string flush();                        // whatever is held back (invalid UTF-8 included)
 private:
  std::string pending_;
};

}  // namespace squeeze
