// The CUDA backend: one stream, kernels from kernels_*.cu. What stays in host memory is copied
// here: weights (and norm weights, biases, RoPE factors) once, on first use, cached by host
// pointer for the backend's lifetime (so a backend serves one model: make a new one per model);
// the batch arrays (token ids, positions, block tables, row lists) once per batch into a
// per-batch device arena, cached by host pointer until the next begin_batch().
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"
#include "util/log.h"

namespace squeeze {

namespace {

using cuda::check;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    SQZ_CUDA(cudaSetDevice(device));
    SQZ_CUDA(cudaStreamCreate(&stream_));
    SQZ_CUDA(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming));
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    for (auto& [host, up] : uploads_) cuda_memory().free(up.p);
    for (auto& c : chunks_) cuda_memory().free(c.p);
    if (pinned_) cudaFreeHost(pinned_);
    cudaEventDestroy(staged_);
    cudaStreamDestroy(stream_);
  }

  DeviceMemory& memory() override { return cuda_memory(); }

  void begin_batch() override {
    batch_ints_.clear();
    placements_.clear();
    chunk_ = 0;
    used_ = 0;
    // The staging buffer is reused: the previous batch's copies out of it must be done (they
    // normally are: a forward pass ends by copying its logits to the host).
    SQZ_CUDA(cudaEventSynchronize(staged_));
    pinned_used_ = 0;
  }

  void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y) override {
    const int64_t k = w.ne[0], n_out = w.ne[1];
    cuda::matmul(w.type, weight(w), row_bytes(w.type, k), k, n_out, x, n_tokens, y, stream_);
  }

  void get_rows(const TensorRef& table, const int32_t* ids, int64_t n, float* out) override {
    for (int64_t i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= table.ne[1]) throw Error(fmt("token id %d is outside the vocabulary", ids[i]));
    cuda::get_rows(table.type, weight(table), row_bytes(table.type, table.ne[0]), table.ne[0], batch_ints(ids, n), n,
                   out, stream_);
  }

  void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst) override {
    cuda::gather_rows(src, width, batch_ints(rows, n), n, dst, stream_);
  }

  void rms_norm(const float* x, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
                float* y) override {
    // x is only read (the kernel writes x only when given a delta).
    cuda::rms_norm(const_cast<float*>(x), nullptr, host_floats(w, n), w_offset, rows, n, eps, y, stream_);
  }

  void add_rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
                    float* y) override {
    cuda::rms_norm(x, delta, host_floats(w, n), w_offset, rows, n, eps, y, stream_);
  }

  void add(float* x, const float* y, int64_t n) override { cuda::add(x, y, n, stream_); }
  void add_bias(float* x, const float* bias, int64_t rows, int64_t n) override {
    cuda::add_bias(x, host_floats(bias, n), rows, n, stream_);
  }
  void scale(float* x, float s, int64_t n) override { cuda::scale(x, s, n, stream_); }
  void softcap(float* x, float c, int64_t n) override { cuda::softcap(x, c, n, stream_); }
  void glu(const float* gate, const float* up, float* out, int64_t n, GluKind kind) override {
    cuda::glu(gate, up, out, n, kind == GluKind::silu, stream_);
  }

  void rope(float* x, int64_t n_heads, const TokenPlacement& tp, const RopeParams& rp) override {
    const float* ff = rp.freq_factors ? host_floats(rp.freq_factors, rp.head_dim / 2) : nullptr;
    cuda::rope(x, n_heads, batch_ints(tp.pos, tp.n_tokens), tp.n_tokens, rp.head_dim, rp.base, rp.freq_scale, ff,
               rp.neox, stream_);
  }

  void kv_write(KVCache& kv, int32_t layer, const float* k, const float* v, const TokenPlacement& tp) override {
    check_kv(kv);
    cuda::kv_write(device_kv(kv, layer), k, v, placement(tp, kv.geometry().block_size), stream_);
  }

  void attention(const KVCache& kv, const AttentionParams& ap, const float* q, const TokenPlacement& tp,
                 float* out) override {
    check_kv(kv);
    const KVGeometry& g = kv.geometry();
    if (ap.head_dim != g.head_dim || ap.n_head_kv != g.n_kv_heads)
      throw Error("CUDA attention: the KV cache geometry does not match the attention parameters");
    // Numerics::exact semantics: the scale multiplies the scores (scale_q is the same maths).
    int32_t max_keys = 0;
    for (int64_t t = 0; t < tp.n_tokens; ++t)
      max_keys = std::max(max_keys, ap.window > 0 ? std::min(tp.pos[t] + 1, ap.window) : tp.pos[t] + 1);
    const int32_t n_split = cuda::attention_splits(tp.n_tokens, ap.n_head, max_keys);
    float* partial = nullptr;
    if (n_split > 1)
      partial = static_cast<float*>(
          arena(size_t(tp.n_tokens) * size_t(ap.n_head) * size_t(n_split) * size_t(g.head_dim + 2) * sizeof(float)));
    cuda::attention(device_kv(kv, ap.layer), ap.n_head, ap.scale, ap.window, q, placement(tp, g.block_size), out,
                    n_split, partial, stream_);
  }

 private:
  struct Upload {
    void* p = nullptr;
    size_t bytes = 0;
  };

  // The device copy of a host array (weights, norm weights, ...), uploaded on first use.
  const void* upload(const void* host, size_t bytes) {
    auto it = uploads_.find(host);
    if (it != uploads_.end() && it->second.bytes >= bytes) return it->second.p;
    if (it != uploads_.end()) {  // seen before with fewer elements: replace
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
    uploads_[host] = Upload{dev, bytes};
    const size_t gib = size_t(1) << 30;
    if ((weight_bytes_ + bytes) / gib != weight_bytes_ / gib)
      SQZ_LOG("squeeze: cuda: %.1f GiB of weights on the GPU\n", double(weight_bytes_ + bytes) / double(gib));
    weight_bytes_ += bytes;
    return dev;
  }

  const uint8_t* weight(const TensorRef& w) {
    if (!cuda::type_supported(w.type))
      throw Error(fmt("CUDA backend: no kernel for tensor %s of type %s", printable(w.name).c_str(), type_name(w.type)));
    const size_t bytes = row_bytes(w.type, w.ne[0]) * size_t(w.n_rows());
    if (bytes > w.nbytes) throw Error(fmt("tensor %s: %zu bytes expected, %zu present", printable(w.name).c_str(), bytes, w.nbytes));
    return static_cast<const uint8_t*>(upload(w.data, bytes));
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

  // Copies n ints to the arena, stream-ordered after the previous batch's kernels, through pinned
  // staging memory so that the copy is asynchronous (a copy from pageable memory would make the
  // host wait for the queued kernels, leaving the GPU idle while it launches the next ones).
  int32_t* to_arena(const int32_t* host, int64_t n) {
    const size_t bytes = size_t(std::max<int64_t>(n, 1)) * sizeof(int32_t);
    auto* dev = static_cast<int32_t*>(arena(bytes));
    if (n <= 0) return dev;
    const size_t need = (bytes + 63) / 64 * 64;
    if (pinned_used_ + need > pinned_size_) {
      SQZ_CUDA(cudaStreamSynchronize(stream_));  // every staged copy is done: the buffer is free
      pinned_used_ = 0;
      if (need > pinned_size_) {
        if (pinned_) SQZ_CUDA(cudaFreeHost(pinned_));
        pinned_ = nullptr;
        pinned_size_ = std::max<size_t>({need, 2 * pinned_size_, size_t(1) << 16});
        SQZ_CUDA(cudaMallocHost(reinterpret_cast<void**>(&pinned_), pinned_size_));
      }
    }
    uint8_t* stage = pinned_ + pinned_used_;
    std::memcpy(stage, host, size_t(n) * sizeof(int32_t));
    SQZ_CUDA(cudaMemcpyAsync(dev, stage, size_t(n) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    SQZ_CUDA(cudaEventRecord(staged_, stream_));
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

  // Positions and block tables of the batch on the device: each distinct block table once,
  // as long as its furthest token needs.
  cuda::DevicePlacement placement(const TokenPlacement& tp, int32_t block_size) {
    auto it = placements_.find(tp.pos);
    if (it != placements_.end() && it->second.n_tokens == tp.n_tokens) return it->second;
    const int64_t n = tp.n_tokens;
    std::unordered_map<const int32_t*, int32_t> need;  // blocks needed per distinct table
    for (int64_t t = 0; t < n; ++t) {
      if (tp.pos[t] < 0) throw Error("negative position in batch");
      int32_t& c = need[tp.blocks[t]];
      c = std::max(c, tp.pos[t] / block_size + 1);
    }
    std::vector<int32_t> host(size_t(2 * n));  // pos, offs, then the tables
    std::unordered_map<const int32_t*, int32_t> offset;
    for (int64_t t = 0; t < n; ++t) {
      host[size_t(t)] = tp.pos[t];
      auto [o, fresh] = offset.try_emplace(tp.blocks[t], int32_t(host.size() - size_t(2 * n)));
      if (fresh) host.insert(host.end(), tp.blocks[t], tp.blocks[t] + need[tp.blocks[t]]);
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
  cudaEvent_t staged_ = nullptr;  // recorded after the latest copy out of pinned_
  std::unordered_map<const void*, std::pair<const int32_t*, int64_t>> batch_ints_;
  std::unordered_map<const void*, cuda::DevicePlacement> placements_;
};

}  // namespace

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
