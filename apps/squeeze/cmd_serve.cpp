// squeeze serve: the OpenAI-compatible HTTP server over the continuous-batching engine.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "common.h"
#include "engine/chat_prompt.h"
#include "engine/engine.h"
#include "server/generation_service.h"
#include "server/http_server.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace squeeze::cli {

namespace {
HttpServer* g_server = nullptr;
void on_signal(int) {
  if (g_server) g_server->stop();
}

// "512M", "2G", "1024" (bytes) -> bytes.
int64_t parse_size(const std::string& s) {
  if (s.empty()) throw Error("empty size");
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error(fmt("bad size '%s' (use e.g. 512M or 2G)", s.c_str()));
  }
  const std::string unit = s.substr(used);
  const double mul = unit.empty() || unit == "B" ? 1 : unit == "K" || unit == "KiB" ? 1024.0
                   : unit == "M" || unit == "MiB" ? 1048576.0 : unit == "G" || unit == "GiB" ? 1073741824.0 : -1;
  if (mul < 0 || !(v > 0)) throw Error(fmt("bad size '%s' (use e.g. 512M or 2G)", s.c_str()));
  return int64_t(v * mul);
}
}  // namespace

int cmd_serve(int argc, char** argv) {
  Args a("serve", "[options]", "Serves the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics).");
  add_model_flags(a, false);
  a.value("", "--host", "HOST", "address to bind", "127.0.0.1");
  a.value("", "--port", "PORT", "port to listen on (0: any free port)", "8080");
  a.value("", "--api-key", "KEY", "require 'Authorization: Bearer KEY' on /v1 requests");
  a.value("", "--kv-memory", "SIZE", "memory for the KV cache, e.g. 512M or 2G", "1G");
  a.value("", "--swap-space", "SIZE",
          "host memory for the KV of preempted requests, which then resume without recomputing (page-locked on a "
          "GPU); 0: recompute them. auto: 4G on cuda, 0 on cpu",
          "auto");
  a.value("", "--parallel", "N", "most sequences running at once", "64");
  a.value("-c", "--ctx-size", "N", "the most tokens (prompt + generated) of one request (default: the model's training context)");
  a.value("", "--step-tokens", "N", "token budget of one engine step (chunked prefill)", "512");
  a.value("", "--chat-template-file", "F", "Jinja chat template to use instead of the model's own");
  if (!a.parse(argc, argv)) return 0;

  LoadedModel lm = load_model(a, true);
  const HParams& hp = lm.model->hparams();
  const int32_t n_ctx = a.has("--ctx-size") ? int32_t(a.integer("--ctx-size")) : hp.n_ctx_train;
  if (n_ctx <= 0) throw Error("--ctx-size must be positive");

  EngineConfig ec;
  ec.kv_type = lm.kv_type;
  ec.n_ctx = n_ctx;
  ec.max_seqs = int32_t(a.integer("--parallel"));
  ec.max_step_tokens = int32_t(a.integer("--step-tokens"));
  if (ec.max_seqs <= 0 || ec.max_step_tokens <= 0) throw Error("--parallel and --step-tokens must be positive");
  const KVGeometry g1 = lm.model->kv_geometry(1, ec.kv_type, ec.block_size);
  const int64_t block_bytes = 2 * int64_t(g1.n_layers) * g1.n_kv_heads * g1.head_dim * g1.block_size *
                              (ec.kv_type == GGMLType::F16 ? 2 : 4);
  ec.n_blocks = int32_t(parse_size(a.str("--kv-memory")) / block_bytes);
  if (ec.n_blocks < 1) throw Error("--kv-memory is smaller than one KV block");
  std::fprintf(stderr, "squeeze: KV cache %d blocks of %d tokens (%.1f MiB), context %d\n", ec.n_blocks, ec.block_size,
               double(ec.n_blocks) * double(block_bytes) / 1048576.0, n_ctx);

  const std::string swap = a.str("--swap-space");
  ec.swap_bytes = swap == "auto" ? (lm.backend->memory().is_host() ? 0 : size_t(4) << 30)
                 : swap == "0"  ? 0
                                : size_t(parse_size(swap));
  if (ec.swap_bytes > 0)
    std::fprintf(stderr, "squeeze: swap space %.1f MiB for the KV of preempted requests\n",
                 double(ec.swap_bytes) / 1048576.0);

  Engine engine(*lm.model, *lm.backend, lm.tokenizer.get(), ec);
  GenerationService service(engine, *lm.tokenizer);
  ServerConfig sc;
  sc.host = a.str("--host");
  sc.port = int(a.integer("--port"));
  if (a.has("--api-key")) sc.api_key = a.str("--api-key");
  std::string name = a.has("--model") ? a.str("--model") : default_model_path();
  if (auto slash = name.find_last_of('/'); slash != std::string::npos && slash + 1 < name.size()) name = name.substr(slash + 1);
  sc.model_name = name;
  sc.n_ctx = n_ctx;
  sc.http_threads = std::max(64, 2 * ec.max_seqs + 8);
  sc.n_vocab = int32_t(hp.n_vocab);
  std::unique_ptr<ChatPrompt> chat;
  if (a.has("--chat-template-file")) {
    chat = std::make_unique<ChatPrompt>(read_text_file(a.str("--chat-template-file")), *lm.tokenizer);
  } else {
    try {
      chat = std::make_unique<ChatPrompt>(lm.model->file(), *lm.tokenizer);
    } catch (const Error& e) {
      std::fprintf(stderr, "squeeze: /v1/chat/completions disabled: %s (see --chat-template-file)\n", e.what());
    }
  }
  sc.chat = chat.get();
  HttpServer server(service, *lm.tokenizer, sc);
  g_server = &server;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const bool ok = server.listen();
  g_server = nullptr;
  return ok ? 0 : 1;
}

}  // namespace squeeze::cli
