// libFuzzer target: arbitrary bytes through the tokenizer. The first byte picks one of the loaded
// vocabularies, the rest is the text; it is encoded with every add_special / parse_special
// combination, and the ids are decoded one piece at a time through StreamDecoder. Any crash,
// sanitizer report, exception or out-of-range id is a finding.
//
// Vocabularies: SQUEEZE_FUZZ_VOCAB (one or more .gguf paths separated by ':'), by default the
// SentencePiece, Phi-3 and GPT-2 fixtures in tests/fixtures/vocab (found next to this source).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::string> vocab_paths() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("SQUEEZE_FUZZ_VOCAB"); env && *env) {
    std::string s = env;
    for (size_t b = 0; b <= s.size();) {
      size_t e = s.find(':', b);
      if (e == std::string::npos) e = s.size();
      if (e > b) paths.push_back(s.substr(b, e - b));
      b = e + 1;
    }
    return paths;
  }
  std::string dir = __FILE__;
  dir = dir.substr(0, dir.find_last_of('/') + 1) + "../fixtures/vocab/";
  for (const char* f : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf", "ggml-vocab-gpt-2.gguf"})
    paths.push_back(dir + f);
  return paths;
}

const std::vector<std::unique_ptr<squeeze::Tokenizer>>& tokenizers() {
  static const auto toks = [] {
    std::vector<std::unique_ptr<squeeze::Tokenizer>> v;
    for (const std::string& p : vocab_paths()) {
      try {
        auto f = squeeze::GGUFFile::open(p);
        v.push_back(squeeze::Tokenizer::from_gguf(*f));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_tokenizer: cannot load %s: %s\n", p.c_str(), e.what());
        std::abort();
      }
    }
    return v;
  }();
  return toks;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& toks = tokenizers();
  if (size == 0 || toks.empty()) return 0;
  const squeeze::Tokenizer& tok = *toks[data[0] % toks.size()];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (int flags = 0; flags < 4; flags++) {
    bool add = flags & 1, parse = flags & 2;
    std::vector<int32_t> ids = tok.encode(text, add, parse);
    squeeze::StreamDecoder dec;
    std::string out;
    for (int32_t id : ids) {
      if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
      out += dec.push(tok.token_to_piece(id, parse));
    }
    out += dec.flush();
    // Streaming must neither lose nor invent bytes.
    std::string joined;
    for (int32_t id : ids) joined += tok.token_to_piece(id, parse);
    if (out != joined) __builtin_trap();
    (void)tok.decode(ids, parse);
  }
  return 0;
}
