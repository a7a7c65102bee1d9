// The CUDA backend: one stream, kernels from kernels_*.cu. What stays in host memory is copied
// here: weights (and norm weights, biases, RoPE factors) once, on first use (weight_uploads.h:
// a backend serves one model, make a new one per model); the batch arrays (token ids,
// positions, block tables, row lists) once per batch (batch_arrays.h).
//
// Launches are deferred: each operation appends a launch closure and a signature (every kernel
// argument, device pointers included) to the pending list, which is flushed at the batch's end
// (the logits' copy to the host, the next begin_batch, any other DeviceMemory call). A flush whose
// signature equals an earlier one replays a CUDA graph of it (step_graphs.h), so a decode step
// costs one graph launch instead of ~300 kernel launches; what makes decode steps repeat exactly
// is described in batch_arrays.h, and the attention split count comes from a bucketed key count
// (the kernels read the true positions on the device). While queuing, consecutive products of
// one activation become one launch, a GLU after gate and up their epilogue, and a norm before an
// 8-bit product writes its quantized activations (SQUEEZE_CUDA_FUSE=0: no fusion).
// Decode steps go out in a few pieces (layer_end) so that the GPU starts before the host has
// described the whole step. SQUEEZE_CUDA_GRAPHS=0 turns graphs off; SQUEEZE_CUDA_PROFILE:
// launch_profiler.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <string>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#ifdef SQUEEZE_HAVE_CUBLAS
#include "backend/cuda/cublas_loader.h"
#endif
#include "backend/cuda/batch_arrays.h"
#include "backend/cuda/launch_profiler.h"
#include "backend/cuda/launch_signature.h"
#include "backend/cuda/step_graphs.h"
#include "backend/cuda/weight_uploads.h"

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"
#include "util/log.h"

namespace squeeze {

namespace {

using cuda::check;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device)
      : device_(select(device)),
        arrays_(cuda::BatchArrays::Hooks{
            [this](int32_t* dev, const uint8_t* stage, size_t nb) {
              defer([=](cudaStream_t s) { SQZ_CUDA(cudaMemcpyAsync(dev, stage, nb, cudaMemcpyHostToDevice, s)); }, 100,
                    static_cast<const void*>(dev), static_cast<const void*>(stage), nb);
            },
            [this] {
              flush();
              SQZ_CUDA(cudaStreamSynchronize(stream_));
            },
            [this] { graphs_.clear(); }}) {
    SQZ_CUDA(cudaStreamCreate(&stream_));
    const char* g = std::getenv("SQUEEZE_CUDA_GRAPHS");
    if (g && g[0] == '0') graphs_.disable();
    if (prof_.per_op()) graphs_.disable();
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
    arrivals_ = static_cast<int32_t*>(cuda_memory().alloc_zeroed(cuda::kDecodeArrivals * sizeof(int32_t)));
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
#ifdef SQUEEZE_HAVE_CUBLAS
    if (tc_.handle) cuda::cublas_api()->destroy(static_cast<cublasHandle_t>(tc_.handle));
    if (cublas_ws_) cuda_memory().free(cublas_ws_);
#endif
    if (tc_.scratch) cuda_memory().free(tc_.scratch);
    if (arrivals_) cuda_memory().free(arrivals_);
    cudaStreamDestroy(stream_);
  }

  DeviceMemory& memory() override { return cuda_memory(); }
  // Products of 2048 rows keep every SM of an H100 busy where 512-row ones leave the narrow ones
  // (n = 4096: 64 output tiles) half idle: Llama-3-8B BF16 pp2048 26.6k -> 29.6k tokens/s.
  int32_t preferred_batch_tokens() const override { return 2048; }

  void begin_batch() override {
    flush();
    prof_.batch_started();
    weights_at_flush_ = uploads_.bytes();  // the previous batch's launches (a batch without logits is not flushed by a copy)
    arrays_.reset();
  }

  // A decode step takes the host ~5 us per layer to describe and the GPU tens of us to run, so
  // its queue goes out in pieces that grow fourfold (after layers 0, 3, 15, 63, ...): the GPU
  // starts after one layer and the host describes the next piece while the GPU runs this one.
  // Each piece repeats from step to step and replays its own graph.
  void layer_end(int32_t layer) override {
    const uint32_t done = uint32_t(layer) + 1;
    if (early_flush_ && std::has_single_bit(done) && (std::countr_zero(done) % 2 == 0)) flush();
  }

  // Consecutive products of one activation by weights of one type and shape class (Q, K and V;
  // gate and up) are held open and launched as one (cuda::MatvecTargets), so the activations are
  // quantized once and one kernel reads all the weights.
  void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y) override {
    const int64_t k = w.ne[0], n_out = w.ne[1];
    GGMLType t = w.type;
    const uint8_t* wd = weight(w, &t);
    const size_t rb = row_bytes(w.type, k);
    const uintptr_t xa = reinterpret_cast<uintptr_t>(x), ya = reinterpret_cast<uintptr_t>(y);
    const bool overlaps = ya < xa + size_t(n_tokens * k) * sizeof(float) && xa < ya + size_t(n_tokens * n_out) * sizeof(float);
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
    // The activations may come straight from the op just queued (a norm, the attention, the GLU
    // product before; writing exactly x): that op writes them quantized too, into the scratch
    // past what it reads there itself, and the product skips its quantize pass.
    const bool q8 = cuda::matmul_quantizes_activations(g.type, g.k, g.n_tokens);
    const size_t xq_off = q8 && quantized_by_producer(g) ? last_producer_.scratch_used : 0;
    const size_t need = cuda::matmul_scratch(g.type, g.k, g.n_out_total, g.n_tokens, tc_.handle != nullptr);
    if (need > 0) {
      grow_scratch(xq_off + need);  // a growth flushes the producer: then it is not fused
      tc = &tc_;
    }
    void* scratch = tc ? tc_.scratch : nullptr;
    const QuantizingOp& pr = last_producer_;
    const bool fused = q8 && quantized_by_producer(g);
    if (fused) {
      auto* xq = static_cast<uint8_t*>(scratch) + xq_off;
      const auto launch = pr.launch;
      pending_.back() = [=](cudaStream_t s) { launch(s, xq); };
      sig_.push_back(17);
      sig_word(sig_, static_cast<const void*>(xq));
      prof_.rename_last(pr.name);
    }
    last_producer_.index = SIZE_MAX;
    if (prof_.per_op())
      prof_.name_next(fmt("matmul %s %s %lldx%lld%s", type_name(g.type),
                          g.n_tokens <= 8 ? (q8 ? "matvec-q8" : "matvec") : tc && tc_.handle ? "tc" : "gemm",
                          (long long)g.n_out_total, (long long)g.k,
                          g.tg.n > 1 ? fmt(" (%d weights)", g.tg.n).c_str() : ""));
    const cuda::MatvecTargets tg = g.tg;
    const GGMLType t = g.type;
    const size_t rb = g.rb;
    const int64_t k = g.k, n = g.n_tokens;
    const float* x = g.x;
    auto launch = [=](cudaStream_t s, uint8_t* yq) {
      cuda::MatvecTargets tq = tg;
      tq.yq = yq;
      cuda::matmul(t, tq, rb, k, x, n, s, tc, fused, xq_off);
    };
    defer([=](cudaStream_t s) { launch(s, nullptr); }, 1, t, rb, k, x, n, tg.n, tg.glu, tg.w[0], tg.w[1], tg.w[2],
          tg.y[0], tg.y[1], tg.y[2], tg.n_out[0], tg.n_out[1], tg.n_out[2], static_cast<const void*>(tc),
          static_cast<const void*>(scratch), fused, xq_off);
    // A GLU product of a decode step can write the down product's 8-bit activations itself.
    if (fuse_ && tg.glu && q8 && cuda::matmul_glu_quantizes(t, k, tg.n_out[0], n))
      last_producer_ = QuantizingOp{pending_.size() - 1, tg.y[0], n, tg.n_out[0], launch, "matmul glu+quantize",
                                    xq_off + cuda::align256(size_t(n) * cuda::q8x_bytes(k))};
  }

  void get_rows(const TensorRef& table, const int32_t* ids, int64_t n, float* out) override {
    for (int64_t i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= table.ne[1]) throw Error(fmt("token id %d is outside the vocabulary", ids[i]));
    GGMLType t = table.type;
    const uint8_t* wd = weight(table, &t);
    const size_t rb = row_bytes(table.type, table.ne[0]);
    const int64_t dim = table.ne[0];
    const int32_t* dids = arrays_.cached_ints(ids, n);
    defer([=](cudaStream_t s) { cuda::get_rows(t, wd, rb, dim, dids, n, out, s); }, 2, t, wd, rb, dim, dids, n, out);
  }

  bool argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out_host) override {
    if (rows <= 0) return true;
    auto* d = static_cast<int32_t*>(arrays_.alloc(size_t(rows) * sizeof(int32_t)));
    defer([=](cudaStream_t s) { cuda::argmax_rows(x, rows, n, d, s); }, 18, x, rows, n, d);
    cuda_memory().to_host(out_host, d, size_t(rows) * sizeof(int32_t));  // runs the step
    return true;
  }

  bool top_k_rows(const float* x, int64_t rows, int64_t n, int32_t k, float* values_host,
                  int32_t* ids_host) override {
    // The candidates' scratch is batch arena memory: past 64 MiB (a large batch asking for
    // hundreds of candidates of a large vocabulary) the rows are read whole instead.
    if (!device_top_k_ || k < 1 || k > cuda::kMaxTopK || rows > 65535 ||
        cuda::top_k_scratch_bytes(rows, n, k) > (size_t(64) << 20))
      return false;
    if (rows <= 0) return true;
    const size_t count = size_t(rows) * size_t(k);
    auto* dv = static_cast<float*>(arrays_.alloc(count * sizeof(float)));
    auto* di = static_cast<int32_t*>(arrays_.alloc(count * sizeof(int32_t)));
    void* scratch = arrays_.alloc(cuda::top_k_scratch_bytes(rows, n, k));
    defer([=](cudaStream_t s) { cuda::top_k_rows(x, rows, n, k, dv, di, scratch, s); }, 19, x, rows, n, k, dv, di,
          scratch);
    cuda_memory().to_host(ids_host, di, count * sizeof(int32_t));  // runs the step
    cuda_memory().to_host(values_host, dv, count * sizeof(float));
    return true;
  }

  void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst) override {
    const int32_t* drows = arrays_.cached_ints(rows, n);
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
    const int32_t* pos = arrays_.cached_ints(tp.pos, tp.n_tokens);
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
    const cuda::DevicePlacement p = arrays_.placement(tp, kv.geometry().block_size);
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
    const cuda::DevicePlacement p = arrays_.placement(tp, g.block_size);
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
    const cuda::DevicePlacement p = arrays_.placement(tp, g.block_size);
    const cuda::BatchArrays::AttentionPlan& plan = arrays_.attention_plan(tp, flash_ && cuda::flash_attention_supported(dkv));
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
          arrays_.alloc(size_t(tp.n_tokens) * size_t(ap.n_head) * size_t(n_split) * size_t(g.head_dim + 2) * sizeof(float)));
    const int32_t* list = plan.rest_list;
    if (grouped)
    {
      int32_t* arrivals = arrivals_;
      auto launch = [=](cudaStream_t s, uint8_t* xq) {
        cuda::decode_attention(dkv, n_head, sc, window, q, p, list, n_rest, out, n_split, partial, arrivals, xq, s);
      };
      defer([=](cudaStream_t s) { launch(s, nullptr); }, 16, dkv, n_head, sc, window, q, p, list, n_rest, out, n_split,
            partial);
      // Decode tokens only (row t of out is batch token t): the output product may take it quantized.
      if (plan.n_tiles == 0 && n_rest == tp.n_tokens && (n_split == 1 || cuda::decode_attention_folds(n_split)))
        last_producer_ = QuantizingOp{pending_.size() - 1, out, tp.n_tokens, int64_t(n_head) * g.head_dim, launch,
                                      "decode_attention+quantize"};
    }
    else
      defer([=](cudaStream_t s) { cuda::attention(dkv, n_head, sc, window, q, p, list, n_rest, out, n_split, partial,
                                                  s); },
            13, dkv, n_head, sc, window, q, p, list, n_rest, out, n_split, partial);
  }

 private:
  static int select(int device) {
    SQZ_CUDA(cudaSetDevice(device));
    return device;
  }
  static constexpr int32_t kKeyBucket = 8192;  // attention splits: key counts bucketed up to this
  static constexpr size_t kCublasWorkspace = size_t(32) << 20;

  // The op just queued (at pending_[index]) writes y, rows x n floats, and can also write them as
  // the integer matvec's 8-bit activations (launch with xq): a product of exactly y that follows
  // takes them from it and skips its own quantize pass.
  struct QuantizingOp {
    size_t index = SIZE_MAX;
    const float* y = nullptr;
    int64_t rows = 0, n = 0;
    std::function<void(cudaStream_t, uint8_t*)> launch;
    const char* name = "";
    size_t scratch_used = 0;  // bytes at the start of the scratch that the op itself reads
  };

  // Products of one activation held open to be launched as one (matmul()).
  struct MatmulGroup {
    bool open = false;
    GGMLType type = GGMLType::F32;
    const float* x = nullptr;
    int64_t k = 0, n_tokens = 0, n_out_total = 0;
    size_t rb = 0;
    cuda::MatvecTargets tg;
  };

  // Whether the op just queued writes exactly g's activations and can write them quantized.
  bool quantized_by_producer(const MatmulGroup& g) const {
    const QuantizingOp& pr = last_producer_;
    return fuse_ && pr.index != SIZE_MAX && pr.index + 1 == pending_.size() && pr.y == g.x &&
           pr.rows == g.n_tokens && pr.n == g.k;
  }

  void norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps, float* y) {
    const float* dw = host_floats(w, n);
    auto launch = [=](cudaStream_t s, uint8_t* xq) { cuda::rms_norm(x, delta, dw, w_offset, rows, n, eps, y, s, xq); };
    defer([=](cudaStream_t s) { launch(s, nullptr); }, delta ? 5 : 4, x, delta, dw, w_offset, rows, n, eps, y);
    last_producer_ = QuantizingOp{pending_.size() - 1, y, rows, n, launch, "rms_norm+quantize"};
  }

  // ---- deferred launches and graphs -------------------------------------------------------------

  template <class F, class... A>
  void defer(F&& f, int tag, const A&... a) {
    if (tag != 1) close_group();
    sig_.push_back(uint64_t(tag));
    (sig_word(sig_, a), ...);
    pending_.emplace_back(std::forward<F>(f));
    prof_.queued(tag);
  }

  static void flush_hook(void* self) { static_cast<CudaBackend*>(self)->flush(); }

  void run_pending() {
    if (prof_.per_op()) return prof_.run_timed(pending_, stream_);
    for (auto& f : pending_) f(stream_);
  }

  // Launches the pending operations: a cached graph when this exact sequence ran before.
  void flush() {
    close_group();
    if (pending_.empty()) return;
    if (!prof_.per_flush()) return flush_ops();
    const size_t graphs_before = graphs_.size();
    const bool replay = graphs_.has(sig_);
    prof_.flush_begin(stream_);
    flush_ops();
    prof_.flush_end(stream_, uploads_.bytes() == weights_at_flush_, replay && graphs_.size() == graphs_before);
    weights_at_flush_ = uploads_.bytes();
  }

  void flush_ops() {
    std::vector<uint64_t> sig;
    sig.swap(sig_);
    struct Clear {  // the pending list is spent however this ends
      CudaBackend* b;
      ~Clear() {
        b->last_producer_.index = SIZE_MAX;
        b->pending_.clear();
        b->sig_.clear();
        b->prof_.clear_queue();
      }
    } clear{this};
    graphs_.launch(std::move(sig), stream_, [this] { run_pending(); });
    arrays_.copies_issued(stream_);
  }

  // ---- device copies of host data ---------------------------------------------------------------

  // The weight on the device; *dev_type: its layout there (cuda::device_type).
  const uint8_t* weight(const TensorRef& w, GGMLType* dev_type) {
    if (!cuda::type_supported(w.type))
      throw Error(fmt("CUDA backend: no kernel for tensor %s of type %s", printable(w.name).c_str(), type_name(w.type)));
    const size_t bytes = row_bytes(w.type, w.ne[0]) * size_t(w.n_rows());
    if (bytes > w.nbytes) throw Error(fmt("tensor %s: %zu bytes expected, %zu present", printable(w.name).c_str(), bytes, w.nbytes));
    *dev_type = repack_ ? cuda::device_type(w.type, w.ne[0]) : w.type;
    return static_cast<const uint8_t*>(uploads_.get(w.data, bytes, stream_, w.type, *dev_type != w.type));
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
    return static_cast<const float*>(uploads_.get(p, size_t(n) * sizeof(float), stream_));
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
  cuda::WeightUploads uploads_{[this] {
    flush();
    SQZ_CUDA(cudaStreamSynchronize(stream_));
    graphs_.clear();
  }};
  size_t weights_at_flush_ = 0;  // uploads_.bytes() at the last flush (profiling skips steps that uploaded)
  cuda::LaunchProfiler prof_;
  cuda::BatchArrays arrays_;
  // SQUEEZE_CUDA_FUSE=0: every operation its own launch (no grouped products, no GLU epilogue,
  // no quantizing norm, no fused RoPE + KV write), to check that the fused ones compute the same.
  bool fuse_ = std::getenv("SQUEEZE_CUDA_FUSE") == nullptr || std::getenv("SQUEEZE_CUDA_FUSE")[0] != '0';
  bool flash_ = std::getenv("SQUEEZE_CUDA_FLASH") == nullptr || std::getenv("SQUEEZE_CUDA_FLASH")[0] != '0';
  // SQUEEZE_CUDA_TOP_K=0: no top_k_rows, so sampling reads whole logits rows (the A/B check that
  // device top-k draws the same tokens).
  bool device_top_k_ = std::getenv("SQUEEZE_CUDA_TOP_K") == nullptr || std::getenv("SQUEEZE_CUDA_TOP_K")[0] != '0';
  // Deferred launches and their signature; graphs by signature hash.
  std::vector<std::function<void(cudaStream_t)>> pending_;
  std::vector<uint64_t> sig_;
  cuda::StepGraphs graphs_;
  // SQUEEZE_CUDA_EARLY_FLUSH=0: each pass is launched whole at its end (layer_end does nothing).
  bool early_flush_ =
      std::getenv("SQUEEZE_CUDA_EARLY_FLUSH") == nullptr || std::getenv("SQUEEZE_CUDA_EARLY_FLUSH")[0] != '0';
  bool repack_ = std::getenv("SQUEEZE_CUDA_REPACK") == nullptr || std::getenv("SQUEEZE_CUDA_REPACK")[0] != '0';
  cuda::TensorCores tc_;
  void* cublas_ws_ = nullptr;
  int32_t* arrivals_ = nullptr;  // the split decode attention's counters (kernels.h)
  MatmulGroup group_;
  QuantizingOp last_producer_;  // index SIZE_MAX: none to fuse with
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
