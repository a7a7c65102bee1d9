#pragma once
// The CUDA backend's device copies of host arrays (weights, norm weights, biases, RoPE factors):
// uploaded on first use, keyed by host address, kept until the backend goes (so a backend serves
// one model). Quantized weights may be repacked into their device layout on the way
// (cuda::repack).
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <unordered_map>

#include "quant/ggml_type.h"

namespace squeeze::cuda {

class WeightUploads {
 public:
  // before_replace: runs before a copy is replaced by a larger one (the host array was seen
  // before with fewer elements), so that no queued or captured launch still reads the old copy.
  explicit WeightUploads(std::function<void()> before_replace) : before_replace_(std::move(before_replace)) {}
  ~WeightUploads();
  WeightUploads(const WeightUploads&) = delete;
  WeightUploads& operator=(const WeightUploads&) = delete;

  // The device copy of bytes at host; repack: into the device layout of repack_from, on s.
  const void* get(const void* host, size_t bytes, cudaStream_t s, GGMLType repack_from = GGMLType::F32,
                  bool repack = false);
  size_t bytes() const { return bytes_; }  // on the GPU, all copies together

 private:
  struct Upload {
    void* p = nullptr;
    size_t bytes = 0;
  };
  std::function<void()> before_replace_;
  std::unordered_map<const void*, Upload> uploads_;
  size_t bytes_ = 0;
};

}  // namespace squeeze::cuda
