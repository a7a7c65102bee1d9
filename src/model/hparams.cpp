#include "model/hparams.h"

#include <cmath>

#include "format/gguf.h"
#include "util/error.h"

namespace squeeze {

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::llama: return "llama";
    case Arch::qwen2: return "qwen2";
    case Arch::qwen3: return "qwen3";
    case Arch::gemma3: return "gemma3";
  }
  return "?";
}

std::vector<uint8_t> swa_pattern(int32_t n_layer, int32_t period) {
  std::vector<uint8_t> out(size_t(n_layer), 1);
  if (period <= 0) return out;
  for (int32_t i = 0; i < n_layer; ++i) out[size_t(i)] = (i % period) < period - 1;
  return out;
}

std::vector<float> llama3_rope_factors(int32_t head_dim, float base, float factor, float low_freq_factor,
                                       float high_freq_factor, float original_ctx) {
  // Wavelengths shorter than original_ctx / high_freq_factor keep their frequency, longer than
  // original_ctx / low_freq_factor are divided by factor, and the band between is interpolated.
  std::vector<float> f(size_t(head_dim / 2));
  const double low_wavelen = original_ctx / low_freq_factor;
  const double high_wavelen = original_ctx / high_freq_factor;
  for (int32_t i = 0; i < head_dim / 2; ++i) {
    const double inv_freq = 1.0 / std::pow(double(base), 2.0 * i / head_dim);
    const double wavelen = 2.0 * M_PI / inv_freq;
    double scale;
    if (wavelen < high_wavelen) {
      scale = 1.0;
    } else if (wavelen > low_wavelen) {
      scale = factor;
    } else {
      const double smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      scale = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    f[size_t(i)] = float(scale);
  }
  return f;
}

void HParams::validate() const {
  auto positive = [](const char* what, int64_t v) {
    if (v <= 0) throw Error(fmt("invalid hyperparameter: %s = %lld must be positive", what, (long long)v));
  };
  positive("embedding length", n_embd);
  positive("block count", n_layer);
  positive("feed-forward length", n_ff);
  positive("head count", n_head);
  positive("KV head count", n_head_kv);
  positive("head dimension", head_dim);
  if (n_layer > 4096 || n_embd > (1 << 20) || n_ff > (1 << 22) || n_head > 4096 || head_dim > 4096)
    throw Error("invalid hyperparameters: sizes are implausibly large");
  if (n_head % n_head_kv != 0)
    throw Error(fmt("invalid hyperparameters: head count %d is not a multiple of KV head count %d", n_head, n_head_kv));
  if (head_dim % 2 != 0) throw Error(fmt("invalid hyperparameters: head dimension %d is odd", head_dim));
  if (!(rms_eps > 0) || !(rope_base > 0) || !(rope_base_swa > 0) || !(rope_freq_scale > 0))
    throw Error("invalid hyperparameters: epsilon, RoPE base and scale must be positive");
  if (sliding_window < 0) throw Error("invalid hyperparameters: negative sliding window");
  if (layer_uses_swa.size() != size_t(n_layer)) throw Error("invalid hyperparameters: layer pattern size");
  if (!rope_freq_factors.empty() && rope_freq_factors.size() != size_t(head_dim / 2))
    throw Error(fmt("rope_freqs has %zu entries, expected %d", rope_freq_factors.size(), head_dim / 2));
}

namespace {

Arch parse_arch(const std::string& a) {
  if (a == "llama" || a == "mistral") return Arch::llama;
  if (a == "qwen2") return Arch::qwen2;
  if (a == "qwen3") return Arch::qwen3;
  if (a == "gemma3") return Arch::gemma3;
  throw Error(fmt("unknown architecture '%s' (supported: llama, mistral, qwen2, qwen3, gemma3)", a.c_str()));
}

// The flags that follow from the architecture alone.
void set_arch_flags(HParams& hp) {
  hp.qkv_bias = hp.arch == Arch::qwen2;
  hp.qk_norm = hp.arch == Arch::qwen3 || hp.arch == Arch::gemma3;
  hp.post_norms = hp.arch == Arch::gemma3;
  hp.embed_scale = hp.arch == Arch::gemma3;
  hp.act = hp.arch == Arch::gemma3 ? Activation::gelu_tanh : Activation::silu;
}

}  // namespace

HParams hparams_from_gguf(const GGUFFile& f) {
  HParams hp;
  auto arch_s = f.get_string("general.architecture");
  if (!arch_s) throw Error("missing metadata key 'general.architecture'");
  hp.arch = parse_arch(*arch_s);
  set_arch_flags(hp);
  hp.rope_neox = hp.arch != Arch::llama;  // GGUF llama Q/K rows are in interleaved order
  hp.name = f.get_string("general.name").value_or(*arch_s);
  const std::string a = *arch_s;

  auto req_int = [&](const char* suffix) -> int64_t {
    std::string key = a + "." + suffix;
    auto v = f.get_int(key);
    if (!v) throw Error(fmt("missing metadata key '%s'", key.c_str()));
    if (*v <= 0 || *v > (int64_t(1) << 31) - 1) throw Error(fmt("metadata key '%s' has invalid value %lld", key.c_str(), (long long)*v));
    return *v;
  };
  auto opt_int = [&](const char* suffix, int64_t def) { return f.get_int(a + "." + suffix).value_or(def); };
  auto opt_float = [&](const char* suffix, double def) { return f.get_float(a + "." + suffix).value_or(def); };

  hp.n_embd = int32_t(req_int("embedding_length"));
  hp.n_layer = int32_t(req_int("block_count"));
  hp.n_ff = int32_t(req_int("feed_forward_length"));
  hp.n_head = int32_t(req_int("attention.head_count"));
  hp.n_head_kv = int32_t(opt_int("attention.head_count_kv", hp.n_head));
  hp.head_dim = int32_t(opt_int("attention.key_length", hp.n_head > 0 ? hp.n_embd / hp.n_head : 0));
  if (opt_int("attention.value_length", hp.head_dim) != hp.head_dim)
    throw Error("models whose value head size differs from the key head size are not supported");
  hp.n_ctx_train = int32_t(opt_int("context_length", 4096));
  hp.rms_eps = float(opt_float("attention.layer_norm_rms_epsilon", hp.arch == Arch::llama ? 1e-5 : 1e-6));
  hp.rope_base = float(opt_float("rope.freq_base", 10000.0));
  hp.rope_base_swa = float(opt_float("rope.freq_base_swa", 10000.0));

  const std::string scaling = f.get_string(a + ".rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    hp.rope_freq_scale = float(1.0 / opt_float("rope.scaling.factor", 1.0));
  } else if (scaling != "none") {
    throw Error(fmt("RoPE scaling type '%s' is not supported yet", scaling.c_str()));
  }
  if (auto legacy = f.get_float(a + ".rope.scale_linear")) hp.rope_freq_scale = float(1.0 / *legacy);

  hp.sliding_window = int32_t(opt_int("attention.sliding_window", 0));
  if (hp.arch == Arch::gemma3) {
    hp.layer_uses_swa = swa_pattern(hp.n_layer, int32_t(opt_int("attention.sliding_window_pattern", 6)));
    // llama.cpp scales Q by 1/sqrt(n_embd / n_head) for the 27B model (62 layers), 1/sqrt(head_dim) otherwise.
    hp.attn_scale = hp.n_layer == 62 ? 1.0f / std::sqrt(float(hp.n_embd) / float(hp.n_head))
                                     : 1.0f / std::sqrt(float(hp.head_dim));
  } else {
    hp.layer_uses_swa.assign(size_t(hp.n_layer), 1);
  }
  if (hp.attn_scale == 0.0f && hp.head_dim > 0) hp.attn_scale = 1.0f / std::sqrt(float(hp.head_dim));
  hp.final_logit_softcap = float(opt_float("final_logit_softcapping", 0.0));
  hp.n_vocab = int32_t(opt_int("vocab_size", 0));  // replaced by the embedding's row count when bound
  return hp;
}

}  // namespace squeeze
