// Hugging Face config.json -> HParams. Field names follow transformers' configuration classes;
// a multimodal Gemma 3 config nests the text model's fields under "text_config".
#include <cmath>
#include <nlohmann/json.hpp>

#include "model/hparams.h"
#include "util/error.h"
#include "util/log.h"

namespace squeeze {

namespace {

using nlohmann::json;

const json* field(const json& c, const char* key) {
  auto it = c.find(key);
  return it == c.end() || it->is_null() ? nullptr : &*it;
}

int32_t req_int(const json& c, const char* key) {
  const json* v = field(c, key);
  if (!v) throw Error(fmt("config.json: missing field '%s'", key));
  if (!v->is_number_integer() || v->get<int64_t>() <= 0 || v->get<int64_t>() > (int64_t(1) << 31) - 1)
    throw Error(fmt("config.json: field '%s' must be a positive integer", key));
  return v->get<int32_t>();
}

int32_t opt_int(const json& c, const char* key, int32_t def) {
  const json* v = field(c, key);
  if (!v) return def;
  if (!v->is_number_integer()) throw Error(fmt("config.json: field '%s' must be an integer", key));
  return v->get<int32_t>();
}

double opt_num(const json& c, const char* key, double def) {
  const json* v = field(c, key);
  if (!v) return def;
  if (!v->is_number()) throw Error(fmt("config.json: field '%s' must be a number", key));
  return v->get<double>();
}

bool opt_bool(const json& c, const char* key, bool def) {
  const json* v = field(c, key);
  if (!v) return def;
  if (!v->is_boolean()) throw Error(fmt("config.json: field '%s' must be true or false", key));
  return v->get<bool>();
}

}  // namespace

HParams hparams_from_hf_config(const std::string& text) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt("config.json: invalid JSON (%s)", e.what()));
  }
  if (!root.is_object()) throw Error("config.json: not a JSON object");
  const json* tc = field(root, "text_config");
  const json& c = tc && tc->is_object() ? *tc : root;

  const json* mt = field(c, "model_type");
  if (!mt) mt = field(root, "model_type");
  if (!mt || !mt->is_string()) throw Error("config.json: missing field 'model_type'");
  std::string model_type = mt->get<std::string>();
  if (model_type == "gemma3_text") model_type = "gemma3";

  HParams hp;
  if (model_type == "llama" || model_type == "mistral") hp.arch = Arch::llama;
  else if (model_type == "qwen2") hp.arch = Arch::qwen2;
  else if (model_type == "qwen3") hp.arch = Arch::qwen3;
  else if (model_type == "gemma3") hp.arch = Arch::gemma3;
  else throw Error(fmt("unknown architecture '%s' (supported: llama, mistral, qwen2, qwen3, gemma3)", model_type.c_str()));
  hp.name = model_type;
  hp.qkv_bias = hp.arch == Arch::qwen2;
  hp.qk_norm = hp.arch == Arch::qwen3 || hp.arch == Arch::gemma3;
  hp.post_norms = hp.arch == Arch::gemma3;
  hp.embed_scale = hp.arch == Arch::gemma3;
  hp.act = hp.arch == Arch::gemma3 ? Activation::gelu_tanh : Activation::silu;
  hp.rope_neox = true;  // Hugging Face keeps q/k rows in rotate_half order for every architecture
  hp.norm_weight_offset = hp.arch == Arch::gemma3 ? 1.0f : 0.0f;

  hp.n_embd = req_int(c, "hidden_size");
  hp.n_layer = req_int(c, "num_hidden_layers");
  hp.n_ff = req_int(c, "intermediate_size");
  hp.n_head = req_int(c, "num_attention_heads");
  hp.n_head_kv = opt_int(c, "num_key_value_heads", hp.n_head);
  hp.head_dim = opt_int(c, "head_dim", hp.n_embd / hp.n_head);
  hp.n_vocab = req_int(c, "vocab_size");
  hp.n_ctx_train = opt_int(c, "max_position_embeddings", 4096);
  hp.rms_eps = float(opt_num(c, "rms_norm_eps", 1e-6));
  hp.tied_embeddings = opt_bool(c, "tie_word_embeddings", hp.arch == Arch::gemma3);
  if (opt_bool(c, "attention_bias", false) && hp.arch != Arch::qwen2)
    throw Error("config.json: attention_bias = true is not supported for this architecture");

  // transformers v5 moves rope_theta and rope_scaling into rope_parameters.
  const json* rp = field(c, "rope_parameters");
  const json* rs = field(c, "rope_scaling");
  const json& rope_src = rp && rp->is_object() && !rp->contains("full_attention") ? *rp : c;
  hp.rope_base = float(opt_num(rope_src, "rope_theta", opt_num(c, "rope_theta", 10000.0)));
  if (rp && rp->is_object() && rp->contains("full_attention")) {  // v5 Gemma 3: per layer type
    hp.rope_base = float(opt_num((*rp)["full_attention"], "rope_theta", hp.rope_base));
    hp.rope_base_swa = float(opt_num((*rp)["sliding_attention"], "rope_theta", 10000.0));
    rs = field((*rp)["full_attention"], "rope_type") ? &(*rp)["full_attention"] : rs;
  } else {
    hp.rope_base_swa = float(opt_num(c, "rope_local_base_freq", 10000.0));
  }
  if (!rs && rp && rp->is_object() && field(*rp, "rope_type")) rs = rp;
  if (rs && rs->is_object()) {
    const json* t = field(*rs, "rope_type");
    if (!t) t = field(*rs, "type");
    std::string type = t && t->is_string() ? t->get<std::string>() : "default";
    const double factor = opt_num(*rs, "factor", 1.0);
    if (type == "linear") {
      hp.rope_freq_scale = float(1.0 / factor);
    } else if (type == "llama3") {
      hp.rope_freq_factors = llama3_rope_factors(hp.head_dim, hp.rope_base, float(factor),
                                                 float(opt_num(*rs, "low_freq_factor", 1.0)),
                                                 float(opt_num(*rs, "high_freq_factor", 4.0)),
                                                 float(opt_num(*rs, "original_max_position_embeddings", 8192)));
    } else if (type != "default") {
      throw Error(fmt("config.json: RoPE scaling type '%s' is not supported yet", type.c_str()));
    }
  }

  if (hp.arch == Arch::gemma3) {
    hp.sliding_window = opt_int(c, "sliding_window", 0);
    const json* lt = field(c, "layer_types");
    if (lt && lt->is_array()) {
      if (lt->size() != size_t(hp.n_layer)) throw Error("config.json: layer_types has the wrong length");
      for (const auto& t : *lt) hp.layer_uses_swa.push_back(t == "sliding_attention");
    } else {
      hp.layer_uses_swa = swa_pattern(hp.n_layer, opt_int(c, "sliding_window_pattern", 6));
    }
    hp.attn_scale = float(1.0 / std::sqrt(opt_num(c, "query_pre_attn_scalar", hp.head_dim)));
    hp.final_logit_softcap = float(opt_num(c, "final_logit_softcapping", 0.0));
  } else {
    if (model_type == "mistral") hp.sliding_window = opt_int(c, "sliding_window", 0);
    if (hp.arch == Arch::qwen2 && opt_bool(c, "use_sliding_window", false))
      SQZ_LOG("warning: config.json asks for Qwen2 sliding windows; like llama.cpp, squeeze uses full attention\n");
    hp.layer_uses_swa.assign(size_t(hp.n_layer), 1);
    hp.attn_scale = 1.0f / std::sqrt(float(hp.head_dim));
  }
  return hp;
}

}  // namespace squeeze
