#include "backend/cuda/weight_uploads.h"

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/cuda_backend.h"
#include "util/log.h"

namespace squeeze::cuda {

WeightUploads::~WeightUploads() {
  for (auto& [host, up] : uploads_) cuda_memory().free(up.p);
}

const void* WeightUploads::get(const void* host, size_t bytes, cudaStream_t s, GGMLType repack_from, bool repack) {
  auto it = uploads_.find(host);
  if (it != uploads_.end() && it->second.bytes >= bytes) return it->second.p;
  if (it != uploads_.end()) {  // seen before with fewer elements: replace
    before_replace_();
    squeeze::cuda_memory().free(it->second.p);
    bytes_ -= it->second.bytes;
    uploads_.erase(it);
  }
  void* dev = cuda_memory().alloc(bytes);
  const cudaError_t e = cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice);
  if (e != cudaSuccess) {
    squeeze::cuda_memory().free(dev);
    check(e, "uploading weights");
  }
  if (repack) {  // into the device layout, through a temporary copy
    void* tmp = cuda_memory().alloc(bytes);
    try {
      cuda::repack(repack_from, static_cast<const uint8_t*>(dev), static_cast<uint8_t*>(tmp), bytes, s);
      SQZ_CUDA(cudaStreamSynchronize(s));
    } catch (...) {
      squeeze::cuda_memory().free(tmp);
      squeeze::cuda_memory().free(dev);
      throw;
    }
    squeeze::cuda_memory().free(dev);
    dev = tmp;
  }
  uploads_[host] = Upload{dev, bytes};
  const size_t gib = size_t(1) << 30;
  if ((bytes_ + bytes) / gib != bytes_ / gib)
    SQZ_LOG("squeeze: cuda: %.1f GiB of weights on the GPU\n", double(bytes_ + bytes) / double(gib));
  bytes_ += bytes;
  return dev;
}

}  // namespace squeeze::cuda
