// squeeze info: what a model file holds — architecture, hyperparameters, tokenizer, tensors.
// Loading goes through the same validation as running, so a model that `info` accepts will load.
#include <cstdio>
#include <map>

#include "commands.h"
#include "common.h"
#include "util/error.h"

namespace squeeze::cli {

int cmd_info(int argc, char** argv) {
  Args a("info", "MODEL", "Describes a model: a .gguf file or a Hugging Face folder.");
  a.flag("", "--metadata", "also print every GGUF metadata key");
  if (!a.parse(argc, argv)) return 0;
  if (a.positional().size() != 1) throw Error("give exactly one MODEL (see 'squeeze info --help')");
  const std::string path = a.positional()[0];

  auto model = Model::load(path);
  const ModelFile& f = model->file();
  const HParams& hp = model->hparams();
  std::printf("model:          %s\n", path.c_str());
  std::printf("format:         %s\n", f.gguf() ? fmt("GGUF v%u", f.gguf()->version()).c_str() : "Hugging Face safetensors");
  std::printf("name:           %s\n", hp.name.c_str());
  std::printf("architecture:   %s\n", arch_name(hp.arch));
  std::printf("layers:         %d\n", hp.n_layer);
  std::printf("embedding:      %d\n", hp.n_embd);
  std::printf("feed-forward:   %d\n", hp.n_ff);
  std::printf("heads:          %d query, %d key/value (head dim %d)\n", hp.n_head, hp.n_head_kv, hp.head_dim);
  std::printf("vocabulary:     %d\n", hp.n_vocab);
  std::printf("train context:  %d\n", hp.n_ctx_train);
  std::printf("rms epsilon:    %g\n", double(hp.rms_eps));
  std::printf("rope:           %s, base %g%s%s\n", hp.rope_neox ? "neox" : "normal", double(hp.rope_base),
              hp.rope_freq_scale != 1.0f ? fmt(", linear scale %g", 1.0 / double(hp.rope_freq_scale)).c_str() : "",
              hp.rope_freq_factors.empty() ? "" : ", llama3 frequency factors");
  if (hp.sliding_window > 0) {
    int n_swa = 0;
    for (int32_t i = 0; i < hp.n_layer; ++i) n_swa += hp.is_swa(i);
    std::printf("sliding window: %d tokens on %d of %d layers (local rope base %g)\n", hp.sliding_window, n_swa,
                hp.n_layer, double(hp.rope_base_swa));
  }
  std::printf("variants:       %s%s%s%s%s%s\n", hp.act == Activation::silu ? "SwiGLU" : "GeGLU",
              hp.qkv_bias ? ", qkv bias" : "", hp.qk_norm ? ", qk-norm" : "", hp.post_norms ? ", post-norms" : "",
              hp.embed_scale ? ", embedding scale" : "", hp.tied_embeddings ? ", tied embeddings" : "");

  auto tok = load_tokenizer(f);
  if (tok) {
    std::printf("tokenizer:      %s, %d tokens, BOS %d%s, EOS %d%s\n", tok->kind().c_str(), tok->n_vocab(), tok->bos_id(),
                tok->add_bos() ? " (added)" : "", tok->eos_id(), tok->add_eos() ? " (added)" : "");
  } else {
    std::printf("tokenizer:      none\n");
  }

  if (a.on("--metadata") && f.gguf()) {
    std::printf("\nmetadata:\n");
    for (const GGUFKV& kv : f.gguf()->metadata()) {
      const GGUFValue& v = kv.value;
      std::string s;
      if (v.type == GGUFType::STRING) s = v.s.size() > 60 ? v.s.substr(0, 60) + "..." : v.s;
      else if (v.type == GGUFType::ARRAY) s = fmt("[%zu x %s]", v.array_size(), gguf_type_name(v.elem_type));
      else if (v.is_float()) s = fmt("%g", v.f);
      else if (v.type == GGUFType::UINT64) s = fmt("%llu", (unsigned long long)v.u);
      else s = fmt("%lld", (long long)v.i);
      std::printf("  %-44s %s\n", kv.key.c_str(), s.c_str());
    }
  }

  std::printf("\n%-40s %-8s %-22s %12s\n", "tensor", "type", "shape", "bytes");
  size_t total = 0;
  std::map<std::string, size_t> by_type;
  for (const TensorRef& t : f.tensors()) {
    std::string shape = "[";
    for (int i = 0; i < std::max(1, t.n_dims); ++i) shape += (i ? ", " : "") + std::to_string(t.ne[size_t(i)]);
    shape += "]";
    std::printf("%-40s %-8s %-22s %12zu\n", t.name.c_str(), type_name(t.type), shape.c_str(), t.nbytes);
    total += t.nbytes;
    by_type[type_name(t.type)] += t.nbytes;
  }
  std::printf("\n%zu tensors, %.2f MiB:", f.tensors().size(), double(total) / (1 << 20));
  for (const auto& [name, bytes] : by_type) std::printf(" %s %.2f MiB;", name.c_str(), double(bytes) / (1 << 20));
  std::printf("\n");
  return 0;
}

}  // namespace squeeze::cli
