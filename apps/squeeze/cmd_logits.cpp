// squeeze logits: the raw logits of every position of a token list, for comparison with
// reference implementations (float32 little-endian, [n_tokens][n_vocab], row-major).
#include <cstdio>
#include <fstream>

#include "commands.h"
#include "common.h"
#include "engine/sequence_runner.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace squeeze::cli {

int cmd_logits(int argc, char** argv) {
  Args a("logits", "(--tokens IDS | --tokens-file F) -o OUT [options]",
         "Evaluates a token list in one sequence and writes the logits of every position as float32 [n][n_vocab].");
  add_model_flags(a, false);
  a.value("", "--tokens", "IDS", "token ids, separated by spaces or commas");
  a.value("", "--tokens-file", "F", "file holding the token ids");
  a.value("-o", "--output", "OUT", "where to write the logits");
  a.value("-b", "--batch", "N", "tokens per forward step", "512");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("--output")) throw Error("missing -o OUT");
  if (a.has("--tokens") == a.has("--tokens-file")) throw Error("give exactly one of --tokens and --tokens-file");
  const std::vector<int32_t> ids = parse_ids(a.has("--tokens") ? a.str("--tokens") : read_text_file(a.str("--tokens-file")));
  if (ids.empty()) throw Error("no token ids given");
  const long long batch = a.integer("--batch");
  if (batch < 1) throw Error("--batch must be positive");

  LoadedModel lm = load_model(a, false);
  SequenceRunner runner(*lm.model, *lm.backend, int32_t(ids.size()), lm.kv_type, int32_t(batch));
  std::vector<float> logits;
  runner.eval(ids, 0, logits);
  std::ofstream out(a.str("--output"), std::ios::binary);
  out.write(reinterpret_cast<const char*>(logits.data()), std::streamsize(logits.size() * sizeof(float)));
  if (!out) throw Error(fmt("cannot write '%s'", a.str("--output").c_str()));
  std::fprintf(stderr, "logits: wrote %zu x %d floats to %s\n", ids.size(), lm.model->hparams().n_vocab,
               a.str("--output").c_str());
  return 0;
}

}  // namespace squeeze::cli
