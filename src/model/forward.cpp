// The forward pass, written once for every supported architecture; the differences are the flags
// in HParams (biases, QK-norm, post-norms, activation, embedding scale, sliding windows, RoPE).
#include <cmath>

#include "model/model.h"
#include "util/error.h"

namespace squeeze {

std::unique_ptr<Model> Model::load(const std::string& path) {
  auto m = std::unique_ptr<Model>(new Model());
  m->file_ = ModelFile::open(path);
  m->file_->prefetch();
  m->weights_ = bind_weights(*m->file_);
  return m;
}

KVGeometry Model::kv_geometry(int32_t n_blocks, GGMLType type, int32_t block_size) const {
  const HParams& hp = hparams();
  KVGeometry g;
  g.n_layers = hp.n_layer;
  g.n_kv_heads = hp.n_head_kv;
  g.head_dim = hp.head_dim;
  g.block_size = block_size;
  g.n_blocks = n_blocks;
  g.type = type;
  return g;
}


void Model::forward(Backend& be, const Batch& batch, KVCache& kv, std::vector<float>& logits,
                    BestLogits* best) {
  if (best) best->ids.clear(), best->values.clear();
  const HParams& hp = hparams();
  const ModelWeights& W = weights_;
  const int64_t T = batch.size(), H = hp.n_embd, d = hp.head_dim;
  const int64_t q_dim = int64_t(hp.n_head) * d, kv_dim = int64_t(hp.n_head_kv) * d;
  if (T == 0) return;
  for (int32_t p : batch.positions)
    if (p < 0) throw Error("negative position in batch");

  if (&kv.memory() != &be.memory()) throw Error("the KV cache is not in the backend's memory");
  DeviceMemory& mem = be.memory();
  x_.reserve(mem, size_t(T * H));
  xn_.reserve(mem, size_t(T * std::max(H, q_dim)));
  q_.reserve(mem, size_t(T * q_dim));
  k_.reserve(mem, size_t(T * kv_dim));
  v_.reserve(mem, size_t(T * kv_dim));
  attn_.reserve(mem, size_t(T * q_dim));
  ffa_.reserve(mem, size_t(T * hp.n_ff));
  ffb_.reserve(mem, size_t(T * hp.n_ff));
  be.begin_batch();

  const TokenPlacement tp{batch.positions.data(), batch.blocks.data(), T};

  be.get_rows(*W.tok_embd, batch.tokens.data(), T, x_.data());
  if (hp.embed_scale) be.scale(x_.data(), std::sqrt(float(H)), T * H);

  // Each block's output (in xn_) is added to the residual stream x_ together with the norm that
  // follows it, in one pass.
  bool residual_pending = false;
  auto norm_residual = [&](const float* w) {
    if (residual_pending) be.add_rms_norm(x_.data(), xn_.data(), w, hp.norm_weight_offset, T, H, hp.rms_eps, xn_.data());
    else be.rms_norm(x_.data(), w, hp.norm_weight_offset, T, H, hp.rms_eps, xn_.data());
    residual_pending = false;
  };

  for (int32_t il = 0; il < hp.n_layer; ++il) {
    const LayerWeights& L = W.layers[size_t(il)];
    const bool swa = hp.is_swa(il);

    // Attention block.
    norm_residual(L.attn_norm);
    be.matmul(*L.wq, xn_.data(), T, q_.data());
    be.matmul(*L.wk, xn_.data(), T, k_.data());
    be.matmul(*L.wv, xn_.data(), T, v_.data());
    if (L.bq) be.add_bias(q_.data(), L.bq, T, q_dim);
    if (L.bk) be.add_bias(k_.data(), L.bk, T, kv_dim);
    if (L.bv) be.add_bias(v_.data(), L.bv, T, kv_dim);
    if (hp.qk_norm) {
      be.rms_norm(q_.data(), L.q_norm, hp.norm_weight_offset, T * hp.n_head, d, hp.rms_eps, q_.data());
      be.rms_norm(k_.data(), L.k_norm, hp.norm_weight_offset, T * hp.n_head_kv, d, hp.rms_eps, k_.data());
    }
    // Gemma 3's sliding layers use their own RoPE base and no scaling.
    const RopeParams rp{int32_t(d), swa && hp.arch == Arch::gemma3 ? hp.rope_base_swa : hp.rope_base,
                        swa && hp.arch == Arch::gemma3 ? 1.0f : hp.rope_freq_scale,
                        hp.rope_freq_factors.empty() ? nullptr : hp.rope_freq_factors.data(), hp.rope_neox};
    be.rope_kv_write(kv, il, q_.data(), hp.n_head, k_.data(), hp.n_head_kv, v_.data(), tp, rp);
    AttentionParams ap{il, hp.n_head, hp.n_head_kv, int32_t(d), hp.attn_scale, swa ? hp.sliding_window : 0};
    ap.scale_q = hp.arch == Arch::gemma3;  // llama.cpp scales Gemma 3's Q before attention
    ap.batch_invariant = batch.batch_invariant;
    be.attention(kv, ap, q_.data(), tp, attn_.data());
    be.matmul(*L.wo, attn_.data(), T, xn_.data());
    if (L.post_attn_norm) be.rms_norm(xn_.data(), L.post_attn_norm, hp.norm_weight_offset, T, H, hp.rms_eps, xn_.data());
    residual_pending = true;

    // Feed-forward block.
    norm_residual(L.ffn_norm);
    be.matmul(*L.ffn_gate, xn_.data(), T, ffa_.data());
    be.matmul(*L.ffn_up, xn_.data(), T, ffb_.data());
    be.glu(ffa_.data(), ffb_.data(), ffa_.data(), T * hp.n_ff,
           hp.act == Activation::silu ? GluKind::silu : GluKind::gelu_tanh);
    be.matmul(*L.ffn_down, ffa_.data(), T, xn_.data());
    if (L.post_ffn_norm) be.rms_norm(xn_.data(), L.post_ffn_norm, hp.norm_weight_offset, T, H, hp.rms_eps, xn_.data());
    residual_pending = true;
    be.layer_end(il);
  }
  if (residual_pending) be.add(x_.data(), xn_.data(), T * H);

  // Only the rows that need logits go through the final norm and the (large) output matrix.
  const int64_t R = int64_t(batch.logit_rows.size());
  logits.resize(size_t(R) * size_t(hp.n_vocab));
  if (R == 0) return;  // a prefill chunk that samples nothing yet
  sel_.reserve(mem, size_t(R * H));
  be.gather_rows(x_.data(), H, batch.logit_rows.data(), R, sel_.data());
  be.rms_norm(sel_.data(), W.output_norm, hp.norm_weight_offset, R, H, hp.rms_eps, sel_.data());
  // Host memory: straight into the caller's vector; otherwise through a buffer and one copy.
  float* out = logits.data();
  if (!mem.is_host()) {
    logits_.reserve(mem, size_t(R) * size_t(hp.n_vocab));
    out = logits_.data();
  }
  be.matmul(*W.output, sel_.data(), R, out);
  if (hp.final_logit_softcap > 0) be.softcap(out, hp.final_logit_softcap, R * hp.n_vocab);
  if (mem.is_host()) return;
  if (best && best->k > 0) {
    const size_t n = size_t(R) * size_t(best->k);
    best->ids.resize(n);
    best->values.resize(best->argmax_only ? 0 : n);
    const bool done = best->argmax_only
                          ? best->k == 1 && be.argmax_rows(out, R, hp.n_vocab, best->ids.data())
                          : be.top_k_rows(out, R, hp.n_vocab, best->k, best->values.data(), best->ids.data());
    if (done) return;
    best->ids.clear();
    best->values.clear();
  }
  mem.to_host(logits.data(), out, size_t(R) * size_t(hp.n_vocab) * sizeof(float));
}

}  // namespace squeeze
