// libFuzzer target: arbitrary bytes as a tokenizer.json. Loading must either succeed or throw
// squeeze::Error; a loaded tokenizer then encodes and decodes a few fixed texts. Any crash,
// sanitizer report or other exception is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer_impl.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  squeeze::tok::HfFiles files;
  files.tokenizer.assign(reinterpret_cast<const char*>(data), size);
  files.tokenizer_config = R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}})";
  std::unique_ptr<squeeze::Tokenizer> tok;
  try {
    tok = squeeze::tok::tokenizer_from_hf_files(files);
  } catch (const squeeze::Error&) {
    return 0;
  }
  static const char* const kTexts[] = {
      "", "Hello world", "  two  spaces\n\ttab", "<s>special</s> text", "caf\xC3\xA9 e\xCC\x81 \xF0\x9F\x98\x80",
      "1234567 don't", "\xFF\xC3 invalid",
  };
  for (const char* t : kTexts) {
    for (int flags = 0; flags < 4; flags++) {
      std::vector<int32_t> ids = tok->encode(t, flags & 1, flags & 2);
      for (int32_t id : ids)
        if (id < 0 || id >= tok->n_vocab()) __builtin_trap();
      (void)tok->decode(ids, true);
    }
  }
  return 0;
}
