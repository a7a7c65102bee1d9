#include "model/weights.h"

#include "quant/dequantize.h"
#include "util/error.h"

namespace squeeze {

namespace {

// Float weights are read through typed pointers, so they must sit at their natural alignment
// (a GGUF with general.alignment 1 or a hand-made safetensors file could place them anywhere).
void check_alignment(const std::string& path, const TensorRef& t) {
  const size_t need = t.type == GGMLType::F32 ? 4 : (t.type == GGMLType::F16 || t.type == GGMLType::BF16) ? 2 : 1;
  if (reinterpret_cast<uintptr_t>(t.data) % need != 0)
    throw Error(fmt("%s: tensor '%s' data is misaligned for type %s", path.c_str(), t.name.c_str(), type_name(t.type)));
}

class Binder {
 public:
  Binder(ModelFile& f, ModelWeights& w) : f_(f), w_(w) {}

  const TensorRef* matrix(const std::string& name, int64_t ne0, int64_t ne1, bool required = true) {
    const TensorRef* t = f_.find(name);
    if (!t) {
      if (required) throw Error(fmt("%s: missing tensor '%s'", f_.path().c_str(), name.c_str()));
      return nullptr;
    }
    if (t->n_dims != 2 || t->ne[0] != ne0 || (ne1 > 0 && t->ne[1] != ne1))
      throw Error(fmt("%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", f_.path().c_str(),
                      name.c_str(), (long long)t->ne[0], (long long)t->ne[1], (long long)ne0, (long long)ne1));
    if (!type_info(t->type).can_compute)
      throw Error(fmt("%s: tensor '%s' has type %s, which squeeze cannot compute with", f_.path().c_str(),
                      name.c_str(), type_name(t->type)));
    check_alignment(f_.path(), *t);
    return t;
  }

  const float* vec(const std::string& name, int64_t n, bool required = true) {
    const TensorRef* t = f_.find(name);
    if (!t) {
      if (required) throw Error(fmt("%s: missing tensor '%s'", f_.path().c_str(), name.c_str()));
      return nullptr;
    }
    if (t->n_elements() != n)
      throw Error(fmt("%s: tensor '%s' has %lld elements, expected %lld", f_.path().c_str(), name.c_str(),
                      (long long)t->n_elements(), (long long)n));
    if (!type_info(t->type).can_compute || t->ne[0] % type_info(t->type).block_elems != 0)
      throw Error(fmt("%s: tensor '%s' has unusable type %s", f_.path().c_str(), name.c_str(), type_name(t->type)));
    check_alignment(f_.path(), *t);
    auto v = std::make_unique<std::vector<float>>(size_t(n));
    dequantize_row(t->type, t->data, v->data(), n);
    const float* p = v->data();
    w_.owned.push_back(std::move(v));
    return p;
  }

 private:
  ModelFile& f_;
  ModelWeights& w_;
};

}  // namespace

ModelWeights bind_weights(ModelFile& file) {
  HParams& hp = file.mutable_hparams();
  ModelWeights w;
  Binder b(file, w);
  const int64_t H = hp.n_embd, q_dim = int64_t(hp.n_head) * hp.head_dim, kv_dim = int64_t(hp.n_head_kv) * hp.head_dim;

  w.tok_embd = b.matrix("token_embd.weight", H, 0);
  hp.n_vocab = int32_t(w.tok_embd->ne[1]);
  w.output_norm = b.vec("output_norm.weight", H);
  w.output = b.matrix("output.weight", H, hp.n_vocab, false);
  hp.tied_embeddings = w.output == nullptr;
  if (!w.output) w.output = w.tok_embd;

  if (const TensorRef* rf = file.find("rope_freqs.weight")) {
    const float* f = b.vec("rope_freqs.weight", hp.head_dim / 2);
    (void)rf;
    hp.rope_freq_factors.assign(f, f + hp.head_dim / 2);
  }

  for (int32_t i = 0; i < hp.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights L;
    L.attn_norm = b.vec(p + "attn_norm.weight", H);
    L.wq = b.matrix(p + "attn_q.weight", H, q_dim);
    L.wk = b.matrix(p + "attn_k.weight", H, kv_dim);
    L.wv = b.matrix(p + "attn_v.weight", H, kv_dim);
    L.wo = b.matrix(p + "attn_output.weight", q_dim, H);
    L.bq = b.vec(p + "attn_q.bias", q_dim, hp.qkv_bias);
    L.bk = b.vec(p + "attn_k.bias", kv_dim, hp.qkv_bias);
    L.bv = b.vec(p + "attn_v.bias", kv_dim, hp.qkv_bias);
    if (hp.qk_norm) {
      L.q_norm = b.vec(p + "attn_q_norm.weight", hp.head_dim);
      L.k_norm = b.vec(p + "attn_k_norm.weight", hp.head_dim);
    }
    if (hp.post_norms) {
      L.post_attn_norm = b.vec(p + "post_attention_norm.weight", H);
      L.post_ffn_norm = b.vec(p + "post_ffw_norm.weight", H);
    }
    L.ffn_norm = b.vec(p + "ffn_norm.weight", H);
    L.ffn_gate = b.matrix(p + "ffn_gate.weight", H, hp.n_ff);
    L.ffn_up = b.matrix(p + "ffn_up.weight", H, hp.n_ff);
    L.ffn_down = b.matrix(p + "ffn_down.weight", hp.n_ff, H);
    w.layers.push_back(L);
  }
  hp.validate();
  return w;
}

}  // namespace squeeze
