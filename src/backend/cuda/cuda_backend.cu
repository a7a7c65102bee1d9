// The CUDA backend: one stream, kernels from kernels_*.cu. What stays in host memory is copied
// here: weights (and norm weights, biases, RoPE factors) once, on first use, cached by host
// pointer for the backend's lifetime (so a backend serves one model: make a new one per model);
// the batch arrays (token ids, positions, block tables, row lists) once per batch into a
// per-batch device arena, cached by host pointer until the next begin_batch().
//
// Launches are deferred (graphs: step_graphs.h): each operation appends a launch closure and a signature (every kernel
// argument, device pointers included) to the pending list, which is flushed at the batch's end
// (the logits' copy to the host, the next begin_batch, any other DeviceMemory call). A flush whose
// signature equals an earlier one replays a CUDA graph of it (captured the second time a
// signature is seen), so a decode step costs one graph launch instead of ~300 kernel launches.
// What makes decode steps repeat exactly: the batch arrays land at the same arena offsets each
// step (the arena is reset by begin_batch; block tables are padded to a bucketed capacity) and are
// copied there from the same pinned staging addresses by memcpy nodes of the graph, which read
// the staging buffer's current contents at replay; the attention split count is chosen from a
// bucketed key count (the kernel reads the true positions on the device).
// SQUEEZE_CUDA_GRAPHS=0 turns graphs off (the pending list is then launched kernel by kernel).
// SQUEEZE_CUDA_PROFILE=1 (graphs off) times every operation with events and prints the GPU time
// per kind of operation, the host time spent issuing them and the wall time, at exit;
// SQUEEZE_CUDA_PROFILE=2 keeps graphs on and times each flush as a whole (host time building the
// operations, GPU time of the launch) to show where a decode step's time goes.
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <unordered_map>
#include <vector>

#ifdef SQUEEZE_HAVE_CUBLAS
#include "backend/cuda/cublas_loader.h"
#endif
#include "backend/cuda/step_graphs.h"

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"
#include "util/log.h"

namespace squeeze {

namespace {

using cuda::check;

// Signature words of kernel arguments.
inline void sig_word(std::vector<uint64_t>& s, const void* p) { s.push_back(uint64_t(reinterpret_cast<uintptr_t>(p))); }
inline void sig_word(std::vector<uint64_t>& s, float f) { s.push_back(std::bit_cast<uint32_t>(f)); }
inline void sig_word(std::vector<uint64_t>& s, const cuda::DeviceKV& kv) {
  sig_word(s, kv.k);
  sig_word(s, kv.v);
  s.push_back(uint64_t(uint32_t(kv.n_kv_heads)) << 32 | uint32_t(kv.head_dim));
  s.push_back(uint64_t(uint32_t(kv.block_size)) << 1 | uint64_t(kv.f16));
}
inline void sig_word(std::vector<uint64_t>& s, const cuda::DevicePlacement& p) {
  sig_word(s, p.pos);
  sig_word(s, p.offs);
  sig_word(s, p.ids);
  s.push_back(uint64_t(p.n_tokens));
}
template <class T>
  requires(std::is_integral_v<T> || std::is_enum_v<T>)
inline void sig_word(std::vector<uint64_t>& s, T v) {
  s.push_back(uint64_t(int64_t(v)));
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    SQZ_CUDA(cudaSetDevice(device));
    SQZ_CUDA(cudaStreamCreate(&stream_));
    SQZ_CUDA(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming));
    const char* g = std::getenv("SQUEEZE_CUDA_GRAPHS");
    if (g && g[0] == '0') graphs_.disable();
    const char* pr = std::getenv("SQUEEZE_CUDA_PROFILE");
    profile_ = pr && pr[0] == '1';
    profile2_ = pr && pr[0] == '2';
    if (profile_) graphs_.disable();
#ifdef SQUEEZE_HAVE_CUBLAS
    const char* tc = std::getenv("SQUEEZE_CUDA_TENSOR_CORES");
    if (!(tc && tc[0] == '0')) {
      cublasHandle_t h = nullptr;
      std::string why;
      const cuda::CublasApi* api = cuda::cublas_api(&why);
      if (!api) {
        SQZ_LOG("squeeze: cuBLAS could not be loaded (%s): prefill GEMMs run on the fp32 path\n", why.c_str());
      } else if (api->create(&h) == CUBLAS_STATUS_SUCCESS) {
        // A workspace of our own: cuBLAS then allocates nothing while a graph is captured.
        cublas_ws_ = cuda_memory().alloc(kCublasWorkspace);
        api->set_stream(h, stream_);  // before the workspace: setting a stream resets it
        api->set_workspace(h, cublas_ws_, kCublasWorkspace);
        api->set_math_mode(h, CUBLAS_DEFAULT_MATH);
        tc_.handle = h;
      } else {
        SQZ_LOG("squeeze: cublasCreate failed: prefill GEMMs run on the fp32 path\n");
      }
    }
#endif
    cuda::add_flush_hook(&CudaBackend::flush_hook, this);
  }
  ~CudaBackend() override {
    cuda::remove_flush_hook(&CudaBackend::flush_hook, this);
    try {
      flush();
    } catch (...) {
    }
    cudaStreamSynchronize(stream_);
    graphs_.clear();
    if (profile_) print_profile();
    if (profile2_ && p2_flushes_ > 0)
      std::fprintf(stderr,
                   "squeeze: cuda profile: %lld flushes (%lld graph replays): per flush %.1f us host building the "
                   "operations, %.1f us GPU, %.1f us host issuing\n",
                   p2_flushes_, p2_replays_, 1e6 * p2_build_s_ / double(p2_flushes_), 1e3 * p2_gpu_ms_ / double(p2_flushes_),
                   1e6 * p2_issue_s_ / double(p2_flushes_));
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    for (cudaEvent_t e : p2_ev_)
      if (e) cudaEventDestroy(e);
#ifdef SQUEEZE_HAVE_CUBLAS
    if (tc_.handle) cuda::cublas_api()->destroy(static_cast<cublasHandle_t>(tc_.handle));
    if (cublas_ws_) cuda_memory().free(cublas_ws_);
#endif
    if (tc_.scratch) cuda_memory().free(tc_.scratch);
    for (auto& [host, up] : uploads_) cuda_memory().free(up.p);
    for (auto& c : chunks_) cuda_memory().free(c.p);
    if (pinned_) cudaFreeHost(pinned_);
    cudaEventDestroy(staged_);
    cudaStreamDestroy(stream_);
  }

  DeviceMemory& memory() override { return cuda_memory(); }

  void begin_batch() override {
    flush();
    if (profile_ || profile2_) batch_start_ = std::chrono::steady_clock::now();
    p2_weights_at_start_ = weight_bytes_;  // the previous batch's launches (a batch without logits is not flushed by a copy)
    batch_ints_.clear();
    placements_.clear();
    plans_.clear();
    chunk_ = 0;
    used_ = 0;
    // The staging buffer is reused: the previous batch's copies out of it must be done (they
    // normally are: a forward pass ends by copying its logits to the host).
    SQZ_CUDA(cudaEventSynchronize(staged_));
    pinned_used_ = 0;
  }

  // Consecutive products of one activation by weights of one type and shape class (Q, K and V;
  // gate and up) are held open and launched as one (cuda::MatvecTargets), so the activations are
  // quantized once and one kernel reads all the weights.
  void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y) override {
    const int64_t k = w.ne[0], n_out = w.ne[1];
    GGMLType t = w.type;
    const uint8_t* wd = weight(w, &t);
    const size_t rb = row_bytes(w.type, k);
    const bool overlaps = y < x + n_tokens * k && x < y + n_tokens * n_out;
    MatmulGroup& g = group_;
    if (!fuse_) close_group();
    if (g.open && (g.type != t || g.x != x || g.k != k || g.n_tokens != n_tokens || g.rb != rb ||
                   g.tg.n == cuda::MatvecTargets::kMax || overlaps))
      close_group();
    if (!g.open) {
      g = MatmulGroup{};
      g.open = true;
      g.type = t;
      g.x = x;
      g.k = k;
      g.n_tokens = n_tokens;
      g.rb = rb;
    }
    g.tg.w[g.tg.n] = wd;
    g.tg.y[g.tg.n] = y;
    g.tg.n_out[g.tg.n] = n_out;
    ++g.tg.n;
    g.n_out_total += n_out;
    if (overlaps) close_group();  // y overwrites x: no later product may read x in this launch
  }

  void close_group() {
    if (!group_.open) return;
    const MatmulGroup g = group_;
    group_.open = false;
    const cuda::TensorCores* tc = nullptr;
    const size_t need = cuda::matmul_scratch(g.type, g.k, g.n_out_total, g.n_tokens, tc_.handle != nullptr);
    if (need > 0) {
      grow_scratch(need);
      tc = &tc_;
    }
    void* scratch = tc ? tc_.scratch : nullptr;
    // The activations come straight from a norm (the op just queued, writing exactly x): that
    // kernel writes them quantized too, and the product skips its quantize pass.
    const bool q8 = cuda::matmul_quantizes_activations(g.type, g.k, g.n_tokens);
    const bool fused = fuse_ && q8 && last_norm_.index != SIZE_MAX && last_norm_.index + 1 == pending_.size() &&
                       last_norm_.y == g.x &&
                       last_norm_.rows == g.n_tokens && last_norm_.n == g.k;
    if (fused) {
      const NormOp nm = last_norm_;
      auto* xq = static_cast<uint8_t*>(scratch);
      pending_.back() = [=](cudaStream_t s) {
        cuda::rms_norm(nm.x, nm.delta, nm.w, nm.w_offset, nm.rows, nm.n, nm.eps, nm.y, s, xq);
      };
      sig_.push_back(17);
      sig_word(sig_, static_cast<const void*>(xq));
      if (profile_) tags_.back() = "rms_norm+quantize";
    }
    last_norm_.index = SIZE_MAX;
    if (profile_) {
      prof_name_ = fmt("matmul %s %s %lldx%lld%s", type_name(g.type),
                       g.n_tokens <= 8 ? (q8 ? "matvec-q8" : "matvec") : tc && tc_.handle ? "tc" : "gemm",
                       (long long)g.n_out_total, (long long)g.k, g.tg.n > 1 ? fmt(" (%d weights)", g.tg.n).c_str() : "");
    }
    const cuda::MatvecTargets tg = g.tg;
    const GGMLType t = g.type;
    const size_t rb = g.rb;
    const int64_t k = g.k, n = g.n_tokens;
    const float* x = g.x;
    defer([=](cudaStream_t s) { cuda::matmul(t, tg, rb, k, x, n, s, tc, fused); }, 1, t, rb, k, x, n, tg.n, tg.glu,
          tg.w[0], tg.w[1], tg.w[2], tg.y[0], tg.y[1], tg.y[2], tg.n_out[0], tg.n_out[1], tg.n_out[2],
          static_cast<const void*>(tc), static_cast<const void*>(scratch), fused);
  }

  void get_rows(const TensorRef& table, const int32_t* ids, int64_t n, float* out) override {
    for (int64_t i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= table.ne[1]) throw Error(fmt("token id %d is outside the vocabulary", ids[i]));
    GGMLType t = table.type;
    const uint8_t* wd = weight(table, &t);
    const size_t rb = row_bytes(table.type, table.ne[0]);
    const int64_t dim = table.ne[0];
    const int32_t* dids = batch_ints(ids, n);
    defer([=](cudaStream_t s) { cuda::get_rows(t, wd, rb, dim, dids, n, out, s); }, 2, t, wd, rb, dim, dids, n, out);
  }

  bool argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out_host) override {
    if (rows <= 0) return true;
    auto* d = static_cast<int32_t*>(arena(size_t(rows) * sizeof(int32_t)));
    defer([=](cudaStream_t s) { cuda::argmax_rows(x, rows, n, d, s); }, 18, x, rows, n, d);
    cuda_memory().to_host(out_host, d, size_t(rows) * sizeof(int32_t));  // runs the step
    return true;
  }

  void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst) override {
    const int32_t* drows = batch_ints(rows, n);
    defer([=](cudaStream_t s) { cuda::gather_rows(src, width, drows, n, dst, s); }, 3, src, width, drows, n, dst);
  }

  void rms_norm(const float* x, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
                float* y) override {
    // x is only read (the kernel writes x only when given a delta).
    norm(const_cast<float*>(x), nullptr, w, w_offset, rows, n, eps, y);
  }

  void add_rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
                    float* y) override {
    norm(x, delta, w, w_offset, rows, n, eps, y);
  }

  void add(float* x, const float* y, int64_t n) override {
    defer([=](cudaStream_t s) { cuda::add(x, y, n, s); }, 6, x, y, n);
  }
  void add_bias(float* x, const float* bias, int64_t rows, int64_t n) override {
    const float* db = host_floats(bias, n);
    defer([=](cudaStream_t s) { cuda::add_bias(x, db, rows, n, s); }, 7, x, db, rows, n);
  }
  void scale(float* x, float c, int64_t n) override {
    defer([=](cudaStream_t s) { cuda::scale(x, c, n, s); }, 8, x, c, n);
  }
  void softcap(float* x, float c, int64_t n) override {
    defer([=](cudaStream_t s) { cuda::softcap(x, c, n, s); }, 9, x, c, n);
  }
  void glu(const float* gate, const float* up, float* out, int64_t n, GluKind kind) override {
    // Right after the gate and up products of a decode step (still an open group): the integer
    // matvec applies the GLU in its epilogue.
    MatmulGroup& g = group_;
    if (fuse_ && g.open && g.tg.n == 2 && g.tg.glu == 0 && g.tg.y[0] == gate && g.tg.y[1] == up &&
        g.tg.n_out[0] == g.tg.n_out[1] && n == g.n_tokens * g.tg.n_out[0] &&
        cuda::matmul_glu_supported(g.type, g.k, g.n_tokens)) {
      g.tg.glu = kind == GluKind::silu ? 1 : 2;
      g.tg.y[0] = out;
      close_group();
      return;
    }
    const bool silu = kind == GluKind::silu;
    defer([=](cudaStream_t s) { cuda::glu(gate, up, out, n, silu, s); }, 10, gate, up, out, n, silu);
  }

  void rope(float* x, int64_t n_heads, const TokenPlacement& tp, const RopeParams& rp) override {
    const float* ff = rp.freq_factors ? host_floats(rp.freq_factors, rp.head_dim / 2) : nullptr;
    const int32_t* pos = batch_ints(tp.pos, tp.n_tokens);
    const int64_t nt = tp.n_tokens;
    const int32_t hd = rp.head_dim;
    const float base = rp.base, fs = rp.freq_scale;
    const bool neox = rp.neox;
    defer([=](cudaStream_t s) { cuda::rope(x, n_heads, pos, nt, hd, base, fs, ff, neox, s); }, 11, x, n_heads, pos, nt,
          hd, base, fs, ff, neox);
  }

  void kv_write(KVCache& kv, int32_t layer, const float* k, const float* v, const TokenPlacement& tp) override {
    check_kv(kv);
    const cuda::DeviceKV dkv = device_kv(kv, layer);
    const cuda::DevicePlacement p = placement(tp, kv.geometry().block_size);
    defer([=](cudaStream_t s) { cuda::kv_write(dkv, k, v, p, s); }, 12, dkv, k, v, p);
  }

  void rope_kv_write(KVCache& kv, int32_t layer, float* q, int64_t n_head, float* k, int64_t n_head_kv,
                     const float* v, const TokenPlacement& tp, const RopeParams& rp) override {
    if (!fuse_) return Backend::rope_kv_write(kv, layer, q, n_head, k, n_head_kv, v, tp, rp);
    check_kv(kv);
    const KVGeometry& g = kv.geometry();
    if (n_head_kv != g.n_kv_heads || rp.head_dim != g.head_dim)
      throw Error("CUDA rope_kv_write: the KV cache geometry does not match the heads");
    const cuda::DeviceKV dkv = device_kv(kv, layer);
    const cuda::DevicePlacement p = placement(tp, g.block_size);
    const float* ff = rp.freq_factors ? host_floats(rp.freq_factors, rp.head_dim / 2) : nullptr;
    const float base = rp.base, fs = rp.freq_scale;
    const bool neox = rp.neox;
    defer([=](cudaStream_t s) { cuda::rope_kv_write(q, n_head, k, v, dkv, p, base, fs, ff, neox, s); }, 15, q, n_head,
          k, v, dkv, p, base, fs, ff, neox);
  }

  void attention(const KVCache& kv, const AttentionParams& ap, const float* q, const TokenPlacement& tp,
                 float* out) override {
    check_kv(kv);
    const KVGeometry& g = kv.geometry();
    if (ap.head_dim != g.head_dim || ap.n_head_kv != g.n_kv_heads)
      throw Error("CUDA attention: the KV cache geometry does not match the attention parameters");
    // Numerics::exact semantics: the scale multiplies the scores (scale_q is the same maths).
    const cuda::DeviceKV dkv = device_kv(kv, ap.layer);
    const cuda::DevicePlacement p = placement(tp, g.block_size);
    const AttentionPlan& plan = attention_plan(tp, flash_ && cuda::flash_attention_supported(dkv));
    const int32_t n_head = ap.n_head, window = ap.window;
    const float sc = ap.scale;
    if (plan.n_tiles > 0) {
      const int32_t* tiles = plan.tiles;
      const int32_t nt = plan.n_tiles;
      defer([=](cudaStream_t s) { cuda::flash_attention(dkv, n_head, sc, window, q, p, tiles, nt, out, s); }, 14, dkv,
            n_head, sc, window, q, p, tiles, nt, out);
    }
    if (plan.rest.empty()) return;
    int32_t max_keys = 0;
    for (int32_t t : plan.rest)
      max_keys = std::max(max_keys, ap.window > 0 ? std::min(tp.pos[t] + 1, ap.window) : tp.pos[t] + 1);
    // Bucketed so that consecutive decode steps launch the same grid (splits past the keys are
    // empty and skipped by the merge): powers of two from 128 (one tile: no split) up to
    // kKeyBucket, then multiples of it (the split count stops growing at 64 tiles).
    if (max_keys <= kKeyBucket) max_keys = int32_t(std::bit_ceil(uint32_t(std::max(max_keys, 128))));
    else max_keys = (max_keys + kKeyBucket - 1) / kKeyBucket * kKeyBucket;
    const int64_t n_rest = int64_t(plan.rest.size());
    const bool grouped = flash_ && cuda::decode_attention_supported(dkv, ap.n_head);
    const int32_t n_split = grouped ? cuda::decode_attention_splits(n_rest, g.n_kv_heads, max_keys)
                                    : cuda::attention_splits(n_rest, ap.n_head, max_keys);
    float* partial = nullptr;
    if (n_split > 1)
      partial = static_cast<float*>(
          arena(size_t(tp.n_tokens) * size_t(ap.n_head) * size_t(n_split) * size_t(g.head_dim + 2) * sizeof(float)));
    const int32_t* list = plan.rest_list;
    if (grouped)
      defer([=](cudaStream_t s) { cuda::decode_attention(dkv, n_head, sc, window, q, p, list, n_rest, out, n_split,
                                                         partial, s); },
            16, dkv, n_head, sc, window, q, p, list, n_rest, out, n_split, partial);
    else
      defer([=](cudaStream_t s) { cuda::attention(dkv, n_head, sc, window, q, p, list, n_rest, out, n_split, partial,
                                                  s); },
            13, dkv, n_head, sc, window, q, p, list, n_rest, out, n_split, partial);
  }

 private:
  static constexpr int32_t kKeyBucket = 8192;  // attention splits: key counts bucketed up to this
  static constexpr int64_t kFlashMinRun = 16;  // shorter runs of a sequence take the per-token kernel
  static constexpr int32_t kTableBucket = 64;  // block tables are padded to multiples of 64 ids
  static constexpr size_t kCublasWorkspace = size_t(32) << 20;

  struct Upload {
    void* p = nullptr;
    size_t bytes = 0;
  };

  // An RMSNorm as queued; last_norm_.index: its place in pending_ (SIZE_MAX: none to fuse with).
  struct NormOp {
    size_t index = SIZE_MAX;
    float* x = nullptr;
    const float* delta = nullptr;
    const float* w = nullptr;
    float w_offset = 0, eps = 0;
    int64_t rows = 0, n = 0;
    float* y = nullptr;
  };

  void norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps, float* y) {
    const float* dw = host_floats(w, n);
    defer([=](cudaStream_t s) { cuda::rms_norm(x, delta, dw, w_offset, rows, n, eps, y, s); }, delta ? 5 : 4, x, delta,
          dw, w_offset, rows, n, eps, y);
    last_norm_ = NormOp{pending_.size() - 1, x, delta, dw, w_offset, eps, rows, n, y};
  }

  // ---- deferred launches and graphs -------------------------------------------------------------

  template <class F, class... A>
  void defer(F&& f, int tag, const A&... a) {
    if (tag != 1) close_group();
    sig_.push_back(uint64_t(tag));
    (sig_word(sig_, a), ...);
    pending_.emplace_back(std::forward<F>(f));
    if (profile_) tags_.push_back(prof_name_.empty() ? tag_name(tag) : prof_name_);
    prof_name_.clear();
  }

  static void flush_hook(void* self) { static_cast<CudaBackend*>(self)->flush(); }

  void run_pending() {
    if (profile_) return run_profiled();
    for (auto& f : pending_) f(stream_);
  }

  static std::string tag_name(int tag) {
    static const char* names[] = {"?",   "matmul", "get_rows", "gather_rows", "rms_norm", "add_rms_norm", "add",
                                  "add_bias", "scale", "softcap", "glu", "rope", "kv_write", "attention",
                                  "flash_attention", "rope_kv_write", "decode_attention", "?", "argmax_rows"};
    if (tag == 100) return "h2d batch arrays";
    return tag >= 0 && tag < 19 ? names[tag] : "?";
  }

  void run_profiled() {
    const auto t_issue = std::chrono::steady_clock::now();
    prof_host_s_ += std::chrono::duration<double>(t_issue - batch_start_).count();
    while (events_.size() < pending_.size() + 1) {
      cudaEvent_t e;
      SQZ_CUDA(cudaEventCreate(&e));
      events_.push_back(e);
    }
    for (size_t i = 0; i < pending_.size(); ++i) {
      SQZ_CUDA(cudaEventRecord(events_[i], stream_));
      pending_[i](stream_);
    }
    SQZ_CUDA(cudaEventRecord(events_[pending_.size()], stream_));
    SQZ_CUDA(cudaEventSynchronize(events_[pending_.size()]));
    for (size_t i = 0; i < pending_.size(); ++i) {
      float ms = 0;
      SQZ_CUDA(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
      auto& [n, t] = prof_[tags_[i]];
      ++n;
      t += ms;
    }
    ++prof_flushes_;
    prof_issue_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_issue).count();
    batch_start_ = std::chrono::steady_clock::now();
    tags_.clear();
  }

  void print_profile() {
    double total = 0;
    for (auto& [k, v] : prof_) total += v.second;
    std::fprintf(stderr, "squeeze: cuda profile: %lld flushes, GPU %.2f ms in operations, host %.2f ms building + %.2f ms "
                 "issuing and waiting\n", (long long)prof_flushes_, total, prof_host_s_ * 1e3, prof_issue_s_ * 1e3);
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [k, v] : prof_) rows.push_back({v.second, k});
    std::sort(rows.rbegin(), rows.rend());
    for (auto& [t, k] : rows)
      std::fprintf(stderr, "squeeze: cuda profile: %-40s %8lld calls %10.3f ms %8.2f us/call %5.1f%%\n", k.c_str(),
                   (long long)prof_[k].first, t, 1e3 * t / double(prof_[k].first), 100.0 * t / std::max(total, 1e-9));
  }

  // Launches the pending operations: a cached graph when this exact sequence ran before.
  void flush() {
    close_group();
    if (pending_.empty()) return;
    if (!profile2_) return flush_ops();
    if (p2_ev_[0] == nullptr) {
      SQZ_CUDA(cudaEventCreate(&p2_ev_[0]));
      SQZ_CUDA(cudaEventCreate(&p2_ev_[1]));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const double build = std::chrono::duration<double>(t0 - batch_start_).count();
    const size_t graphs_before = graphs_.size();
    const bool replay = graphs_.has(sig_);
    SQZ_CUDA(cudaEventRecord(p2_ev_[0], stream_));
    flush_ops();
    SQZ_CUDA(cudaEventRecord(p2_ev_[1], stream_));
    const double issue = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    SQZ_CUDA(cudaEventSynchronize(p2_ev_[1]));
    float ms = 0;
    SQZ_CUDA(cudaEventElapsedTime(&ms, p2_ev_[0], p2_ev_[1]));
    if (weight_bytes_ == p2_weights_at_start_) {  // not a batch that uploaded weights
      p2_gpu_ms_ += ms;
      ++p2_flushes_;
      p2_replays_ += replay && graphs_.size() == graphs_before;
      p2_build_s_ += build;
      p2_issue_s_ += issue;
    }
    p2_weights_at_start_ = weight_bytes_;
    batch_start_ = std::chrono::steady_clock::now();
  }

  void flush_ops() {
    std::vector<uint64_t> sig;
    sig.swap(sig_);
    struct Clear {  // the pending list is spent however this ends
      CudaBackend* b;
      ~Clear() {
        b->last_norm_.index = SIZE_MAX;
        b->pending_.clear();
        b->sig_.clear();
        b->tags_.clear();
      }
    } clear{this};
    graphs_.launch(std::move(sig), stream_, [this] { run_pending(); });
    SQZ_CUDA(cudaEventRecord(staged_, stream_));
  }

  // ---- device copies of host data ---------------------------------------------------------------

  // The device copy of a host array (weights, norm weights, ...), uploaded on first use.
  const void* upload(const void* host, size_t bytes, GGMLType repack_from = GGMLType::F32, bool repack = false) {
    auto it = uploads_.find(host);
    if (it != uploads_.end() && it->second.bytes >= bytes) return it->second.p;
    if (it != uploads_.end()) {  // seen before with fewer elements: replace
      flush();
      SQZ_CUDA(cudaStreamSynchronize(stream_));
      graphs_.clear();
      cuda_memory().free(it->second.p);
      weight_bytes_ -= it->second.bytes;
      uploads_.erase(it);
    }
    void* dev = cuda_memory().alloc(bytes);
    const cudaError_t e = cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
      cuda_memory().free(dev);
      check(e, "uploading weights");
    }
    if (repack) {  // into the device layout, through a temporary copy
      void* tmp = cuda_memory().alloc(bytes);
      try {
        cuda::repack(repack_from, static_cast<const uint8_t*>(dev), static_cast<uint8_t*>(tmp), bytes, stream_);
        SQZ_CUDA(cudaStreamSynchronize(stream_));
      } catch (...) {
        cuda_memory().free(tmp);
        cuda_memory().free(dev);
        throw;
      }
      cuda_memory().free(dev);
      dev = tmp;
    }
    uploads_[host] = Upload{dev, bytes};
    const size_t gib = size_t(1) << 30;
    if ((weight_bytes_ + bytes) / gib != weight_bytes_ / gib)
      SQZ_LOG("squeeze: cuda: %.1f GiB of weights on the GPU\n", double(weight_bytes_ + bytes) / double(gib));
    weight_bytes_ += bytes;
    return dev;
  }

  // The weight on the device; *dev_type: its layout there (cuda::device_type).
  const uint8_t* weight(const TensorRef& w, GGMLType* dev_type) {
    if (!cuda::type_supported(w.type))
      throw Error(fmt("CUDA backend: no kernel for tensor %s of type %s", printable(w.name).c_str(), type_name(w.type)));
    const size_t bytes = row_bytes(w.type, w.ne[0]) * size_t(w.n_rows());
    if (bytes > w.nbytes) throw Error(fmt("tensor %s: %zu bytes expected, %zu present", printable(w.name).c_str(), bytes, w.nbytes));
    *dev_type = repack_ ? cuda::device_type(w.type, w.ne[0]) : w.type;
    return static_cast<const uint8_t*>(upload(w.data, bytes, w.type, *dev_type != w.type));
  }

  // The tensor-core scratch, at least bytes (grown between launches: the pending ones use the old).
  void grow_scratch(size_t bytes) {
    if (tc_.scratch_bytes >= bytes) return;
    flush();
    SQZ_CUDA(cudaStreamSynchronize(stream_));
    if (tc_.scratch) cuda_memory().free(tc_.scratch);
    tc_.scratch = nullptr;
    tc_.scratch_bytes = 0;
    tc_.scratch = cuda_memory().alloc(bytes);
    tc_.scratch_bytes = bytes;
  }

  const float* host_floats(const float* p, int64_t n) {
    return static_cast<const float*>(upload(p, size_t(n) * sizeof(float)));
  }

  // Room in the per-batch arena (256-byte aligned), valid until the next begin_batch().
  void* arena(size_t bytes) {
    bytes = (bytes + 255) / 256 * 256;
    while (chunk_ < chunks_.size() && used_ + bytes > chunks_[chunk_].bytes) {
      ++chunk_;
      used_ = 0;
    }
    if (chunk_ == chunks_.size()) {
      const size_t size = std::max<size_t>(size_t(1) << 20, 2 * bytes);
      chunks_.push_back(Upload{cuda_memory().alloc(size), size});
      used_ = 0;
    }
    void* p = static_cast<uint8_t*>(chunks_[chunk_].p) + used_;
    used_ += bytes;
    return p;
  }

  // Copies n ints (padded with zeros to n_dev) to the arena, stream-ordered after the previous
  // batch's kernels, through pinned staging memory: the copy is asynchronous, and a graph that
  // holds it reads the staging buffer's contents at replay.
  int32_t* to_arena(const int32_t* host, int64_t n, int64_t n_dev = -1) {
    n_dev = std::max(n_dev, n);
    const size_t bytes = size_t(std::max<int64_t>(n_dev, 1)) * sizeof(int32_t);
    auto* dev = static_cast<int32_t*>(arena(bytes));
    if (n_dev <= 0) return dev;
    const size_t need = (bytes + 63) / 64 * 64;
    if (pinned_used_ + need > pinned_size_) {
      flush();  // the pending copies read the buffer: launch them, then wait for them
      SQZ_CUDA(cudaStreamSynchronize(stream_));
      pinned_used_ = 0;
      if (need > pinned_size_) {
        graphs_.clear();  // they read the old buffer
        if (pinned_) SQZ_CUDA(cudaFreeHost(pinned_));
        pinned_ = nullptr;
        pinned_size_ = std::max<size_t>({need, 2 * pinned_size_, size_t(1) << 16});
        SQZ_CUDA(cudaMallocHost(reinterpret_cast<void**>(&pinned_), pinned_size_));
      }
    }
    uint8_t* stage = pinned_ + pinned_used_;
    std::memcpy(stage, host, size_t(n) * sizeof(int32_t));
    if (n_dev > n) std::memset(stage + size_t(n) * sizeof(int32_t), 0, size_t(n_dev - n) * sizeof(int32_t));
    const size_t nb = size_t(n_dev) * sizeof(int32_t);
    defer([=](cudaStream_t s) { SQZ_CUDA(cudaMemcpyAsync(dev, stage, nb, cudaMemcpyHostToDevice, s)); }, 100,
          static_cast<const void*>(dev), static_cast<const void*>(stage), nb);
    pinned_used_ += need;
    return dev;
  }

  const int32_t* batch_ints(const int32_t* host, int64_t n) {
    auto it = batch_ints_.find(host);
    if (it != batch_ints_.end() && it->second.second >= n) return it->second.first;
    const int32_t* dev = to_arena(host, n);
    batch_ints_[host] = {dev, n};
    return dev;
  }

  // How a batch's attention is split (cached per batch): its runs of at least kFlashMinRun
  // consecutive positions of one sequence go to the tensor-core kernel in tiles, the other tokens
  // to the per-token kernel (rest_list null when that is every token, in order).
  struct AttentionPlan {
    const int32_t* tiles = nullptr;
    int32_t n_tiles = 0;
    std::vector<int32_t> rest;
    const int32_t* rest_list = nullptr;
  };
  const AttentionPlan& attention_plan(const TokenPlacement& tp, bool flash) {
    const auto key = std::make_pair(static_cast<const void*>(tp.pos), flash);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    AttentionPlan plan;
    std::vector<int32_t> tiles;
    const int64_t n = tp.n_tokens;
    for (int64_t a = 0; a < n;) {
      int64_t b = a + 1;
      while (b < n && tp.blocks[b] == tp.blocks[a] && tp.pos[b] == tp.pos[b - 1] + 1) ++b;
      if (flash && b - a >= kFlashMinRun) {
        for (int64_t t = a; t < b; t += cuda::flash_tile_rows()) {
          tiles.push_back(int32_t(t));
          tiles.push_back(int32_t(std::min<int64_t>(cuda::flash_tile_rows(), b - t)));
        }
      } else {
        for (int64_t t = a; t < b; ++t) plan.rest.push_back(int32_t(t));
      }
      a = b;
    }
    if (!tiles.empty()) {
      plan.n_tiles = int32_t(tiles.size() / 2);
      plan.tiles = to_arena(tiles.data(), int64_t(tiles.size()));
    }
    if (!plan.rest.empty() && int64_t(plan.rest.size()) != n)
      plan.rest_list = to_arena(plan.rest.data(), int64_t(plan.rest.size()));
    return plans_.emplace(key, std::move(plan)).first->second;
  }

  // Positions and block tables of the batch on the device: each distinct block table once, as
  // long as its furthest token needs, padded to a multiple of kTableBucket ids (so that a decode
  // step's arrays keep their size and place while the sequence grows).
  cuda::DevicePlacement placement(const TokenPlacement& tp, int32_t block_size) {
    auto it = placements_.find(tp.pos);
    if (it != placements_.end() && it->second.n_tokens == tp.n_tokens) return it->second;
    const int64_t n = tp.n_tokens;
    std::unordered_map<const int32_t*, int32_t> need;  // blocks needed per distinct table
    int32_t cap = 0;
    for (int64_t t = 0; t < n; ++t) {
      if (tp.pos[t] < 0) throw Error("negative position in batch");
      int32_t& c = need[tp.blocks[t]];
      c = std::max(c, tp.pos[t] / block_size + 1);
      cap = std::max(cap, c);
    }
    cap = (cap + kTableBucket - 1) / kTableBucket * kTableBucket;
    std::vector<int32_t> host(size_t(2 * n));  // pos, offs, then the tables
    std::unordered_map<const int32_t*, int32_t> offset;
    for (int64_t t = 0; t < n; ++t) {
      host[size_t(t)] = tp.pos[t];
      auto [o, fresh] = offset.try_emplace(tp.blocks[t], int32_t(host.size() - size_t(2 * n)));
      if (fresh) {
        const int32_t nb = need[tp.blocks[t]];
        host.insert(host.end(), tp.blocks[t], tp.blocks[t] + nb);
        host.insert(host.end(), size_t(cap - nb), 0);
      }
      host[size_t(n + t)] = o->second;
    }
    const int32_t* dev = to_arena(host.data(), int64_t(host.size()));
    const cuda::DevicePlacement p{dev, dev + n, dev + 2 * n, n};
    placements_[tp.pos] = p;
    return p;
  }

  void check_kv(const KVCache& kv) const {
    if (&kv.memory() != &cuda_memory()) throw Error("CUDA backend: the KV cache is not in GPU memory");
  }

  static cuda::DeviceKV device_kv(const KVCache& kv, int32_t layer) {
    const KVGeometry& g = kv.geometry();
    const size_t layer_bytes =
        size_t(g.n_blocks) * size_t(g.n_kv_heads) * size_t(g.block_size) * size_t(g.head_dim) * kv.elem_bytes();
    return cuda::DeviceKV{kv.k_data() + size_t(layer) * layer_bytes, kv.v_data() + size_t(layer) * layer_bytes,
                          g.n_kv_heads, g.head_dim, g.block_size, g.type == GGMLType::F16};
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  std::unordered_map<const void*, Upload> uploads_;
  size_t weight_bytes_ = 0;
  std::vector<Upload> chunks_;
  size_t chunk_ = 0, used_ = 0;
  uint8_t* pinned_ = nullptr;  // staging of the batch arrays (page-locked host memory)
  size_t pinned_size_ = 0, pinned_used_ = 0;
  cudaEvent_t staged_ = nullptr;  // recorded after the latest launch that copies out of pinned_
  std::unordered_map<const void*, std::pair<const int32_t*, int64_t>> batch_ints_;
  std::unordered_map<const void*, cuda::DevicePlacement> placements_;
  std::map<std::pair<const void*, bool>, AttentionPlan> plans_;
  // SQUEEZE_CUDA_FUSE=0: every operation its own launch (no grouped products, no GLU epilogue,
  // no quantizing norm, no fused RoPE + KV write), to check that the fused ones compute the same.
  bool fuse_ = std::getenv("SQUEEZE_CUDA_FUSE") == nullptr || std::getenv("SQUEEZE_CUDA_FUSE")[0] != '0';
  bool flash_ = std::getenv("SQUEEZE_CUDA_FLASH") == nullptr || std::getenv("SQUEEZE_CUDA_FLASH")[0] != '0';
  // Deferred launches and their signature; graphs by signature hash.
  std::vector<std::function<void(cudaStream_t)>> pending_;
  std::vector<uint64_t> sig_;
  cuda::StepGraphs graphs_;
  bool repack_ = std::getenv("SQUEEZE_CUDA_REPACK") == nullptr || std::getenv("SQUEEZE_CUDA_REPACK")[0] != '0';
  cuda::TensorCores tc_;
  void* cublas_ws_ = nullptr;
  struct MatmulGroup {
    bool open = false;
    GGMLType type = GGMLType::F32;
    const float* x = nullptr;
    int64_t k = 0, n_tokens = 0, n_out_total = 0;
    size_t rb = 0;
    cuda::MatvecTargets tg;
  } group_;
  NormOp last_norm_;
  // SQUEEZE_CUDA_PROFILE
  bool profile_ = false, profile2_ = false;
  cudaEvent_t p2_ev_[2] = {nullptr, nullptr};
  long long p2_flushes_ = 0, p2_replays_ = 0;
  size_t p2_weights_at_start_ = 0;
  double p2_build_s_ = 0, p2_issue_s_ = 0, p2_gpu_ms_ = 0;
  std::vector<std::string> tags_;
  std::string prof_name_;
  std::vector<cudaEvent_t> events_;
  std::map<std::string, std::pair<long long, double>> prof_;
  long long prof_flushes_ = 0;
  double prof_host_s_ = 0, prof_issue_s_ = 0;
  std::chrono::steady_clock::time_point batch_start_ = std::chrono::steady_clock::now();
};

}  // namespace

bool cuda_matmul_uses_tensor_cores(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens) {
  const char* tc = std::getenv("SQUEEZE_CUDA_TENSOR_CORES");
  if (tc && tc[0] == '0') return false;
  return cuda::matmul_tc_scratch(cuda::device_type(type, k), k, n_out, n_tokens) > 0;
}

bool cuda_matmul_quantizes_activations(GGMLType type, int64_t k, int64_t n_tokens) {
  const char* r = std::getenv("SQUEEZE_CUDA_REPACK");
  const GGMLType t = r && r[0] == '0' ? type : cuda::device_type(type, k);
  return cuda::matmul_quantizes_activations(t, k, n_tokens);
}

bool cuda_available() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw Error(fmt("no usable CUDA GPU: %s", cudaGetErrorString(e)));
  }
  if (n == 0) throw Error("no CUDA GPU found");
  if (device_index < 0 || device_index >= n)
    throw Error(fmt("CUDA device %d does not exist (%d found)", device_index, n));
  cudaDeviceProp prop{};
  SQZ_CUDA(cudaGetDeviceProperties(&prop, device_index));
  SQZ_LOG("squeeze: cuda device %d: %s (sm_%d%d, %.1f GiB)\n", device_index, prop.name, prop.major, prop.minor,
          double(prop.totalGlobalMem) / double(size_t(1) << 30));
  return std::make_unique<CudaBackend>(device_index);
}

}  // namespace squeeze
