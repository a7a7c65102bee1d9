#pragma once
// The CPU implementation of Backend: activations in host memory, loops split over a thread pool.
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"
#include "quant/numerics.h"

namespace squeeze {

class CpuBackend final : public Backend {
 public:
  // numerics: whose arithmetic the kernels reproduce (quant/numerics.h).
  explicit CpuBackend(int n_threads, Numerics numerics = Numerics::exact);

  int n_threads() const { return pool_.size(); }
  Numerics numerics() const { return numerics_; }

  DeviceMemory& memory() override { return host_memory(); }
  void gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst) override;
  void matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y) override;
  void get_rows(const TensorRef& table, const int32_t* ids, int64_t n, float* out) override;
  void rms_norm(const float* x, const float* w, float w_offset, int64_t rows, int64_t n, float eps, float* y) override;
  void add_rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
                    float* y) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_bias(float* x, const float* bias, int64_t rows, int64_t n) override;
  void scale(float* x, float s, int64_t n) override;
  void rope(float* x, int64_t n_heads, const TokenPlacement& tp, const RopeParams& rp) override;
  void glu(const float* gate, const float* up, float* out, int64_t n, GluKind kind) override;
  void softcap(float* x, float c, int64_t n) override;
  void kv_write(KVCache& kv, int32_t layer, const float* k, const float* v, const TokenPlacement& tp) override;
  void attention(const KVCache& kv, const AttentionParams& ap, const float* q, const TokenPlacement& tp,
                 float* out) override;

 private:
  void attention_llamacpp(const KVCache& kv, const AttentionParams& ap, const float* q, const TokenPlacement& tp,
                          float* out);

  // The x4-layout copy of a weight (quant/gemm.h), made on first use.
  const uint8_t* repacked(const TensorRef& w);

  void rms_norm_row(const float* x, const float* w, float w_offset, int64_t n, float eps, float* y) const;

  ThreadPool pool_;
  Numerics numerics_;
  std::unordered_map<const uint8_t*, std::unique_ptr<uint8_t[]>> repacked_;  // by the weight's data pointer
  std::vector<uint8_t> act_scratch_;             // activations converted to a weight's vec_dot type
  std::vector<uint8_t> row_scratch_;             // get_rows: one row read back from an x4 copy
  std::vector<std::vector<float>> thread_scratch_;  // per-thread buffers for attention and RoPE
};

}  // namespace squeeze
