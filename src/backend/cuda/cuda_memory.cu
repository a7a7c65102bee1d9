// The GPU's memory as a DeviceMemory: plain cudaMalloc (never managed memory) and cudaMemcpy.
// The copies are synchronous calls on the legacy default stream, which waits for the work queued
// on the backend's (blocking) stream, so a copy always sees the results of earlier kernels.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"
#include "util/log.h"

namespace squeeze {

namespace cuda {
namespace {
std::mutex& hooks_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::pair<void (*)(void*), void*>>& hooks() {
  static std::vector<std::pair<void (*)(void*), void*>> h;
  return h;
}
}  // namespace
void add_flush_hook(void (*fn)(void*), void* ctx) {
  std::lock_guard<std::mutex> l(hooks_mutex());
  hooks().emplace_back(fn, ctx);
}
void remove_flush_hook(void (*fn)(void*), void* ctx) {
  std::lock_guard<std::mutex> l(hooks_mutex());
  auto& h = hooks();
  h.erase(std::remove(h.begin(), h.end(), std::make_pair(fn, ctx)), h.end());
}
void run_flush_hooks() {
  std::vector<std::pair<void (*)(void*), void*>> h;
  {
    std::lock_guard<std::mutex> l(hooks_mutex());
    h = hooks();
  }
  for (auto& [fn, ctx] : h) fn(ctx);
}
}  // namespace cuda

namespace {

class CudaMemory final : public DeviceMemory {
 public:
  bool is_host() const override { return false; }

  void* alloc(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear it: an allocation failure must not poison later calls
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw Error(fmt("out of GPU memory allocating %.1f MiB (%.1f MiB free of %.1f MiB): %s",
                      double(bytes) / (1 << 20), double(free_b) / (1 << 20), double(total_b) / (1 << 20),
                      cudaGetErrorString(e)));
    }
    return p;
  }
  void free(void* p) override {
    // cudaFree waits for the device; queued launches that use p must be issued first.
    try {
      cuda::run_flush_hooks();
    } catch (...) {
    }
    if (p) cudaFree(p);  // no throw: called from destructors
  }
  void zero(void* p, size_t bytes) override {
    cuda::run_flush_hooks();
    SQZ_CUDA(cudaMemset(p, 0, bytes));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    cuda::run_flush_hooks();
    SQZ_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  }
  void to_host(void* dst, const void* src, size_t bytes) override {
    cuda::run_flush_hooks();
    SQZ_CUDA(cudaDeviceSynchronize());  // reports a fault of any earlier kernel here, by name of the sync
    if (bytes < kBounceMin || !bounce_on_) {
      SQZ_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
      return;
    }
    // A logits row (128256 floats) copied into pageable memory goes through the driver's own
    // staging at a fraction of the bus rate; into page-locked memory it is one DMA, and the host
    // copy after it runs at memory speed.
    std::lock_guard<std::mutex> lock(bounce_mutex_);
    if (!bounce_ && !bounce_failed_ && cudaMallocHost(&bounce_, kBounceBytes) != cudaSuccess) {
      cudaGetLastError();
      bounce_ = nullptr;
      bounce_failed_ = true;  // not retried on every copy
      SQZ_LOG("squeeze: cuda: no page-locked memory for the copy buffer: large copies to the host go to pageable memory\n");
    }
    if (!bounce_) {
      SQZ_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
      return;
    }
    for (size_t off = 0; off < bytes; off += kBounceBytes) {
      const size_t n = std::min(kBounceBytes, bytes - off);
      SQZ_CUDA(cudaMemcpy(bounce_, static_cast<const uint8_t*>(src) + off, n, cudaMemcpyDeviceToHost));
      std::memcpy(static_cast<uint8_t*>(dst) + off, bounce_, n);
    }
  }
  void to_host_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) override {
    cuda::run_flush_hooks();
    SQZ_CUDA(cudaDeviceSynchronize());
    SQZ_CUDA(cudaMemcpy2D(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToHost));
  }
  void from_host_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) override {
    cuda::run_flush_hooks();
    SQZ_CUDA(cudaMemcpy2D(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyHostToDevice));
  }
  // Page-locked: the copies of swapped KV blocks run at the PCIe rate, with no staging copy.
  void* alloc_host(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaMallocHost(&p, bytes == 0 ? 1 : bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw Error(fmt("cannot allocate %.1f MiB of page-locked host memory: %s", double(bytes) / (1 << 20),
                      cudaGetErrorString(e)));
    }
    return p;
  }
  void free_host(void* p) override {
    if (p) cudaFreeHost(p);
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    cuda::run_flush_hooks();
    SQZ_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  }

 private:
  static constexpr size_t kBounceMin = size_t(64) << 10, kBounceBytes = size_t(4) << 20;
  std::mutex bounce_mutex_;
  void* bounce_ = nullptr;  // page-locked, kBounceBytes; kept for the process's life
  bool bounce_failed_ = false;
  // SQUEEZE_CUDA_BOUNCE=0: straight copies into the caller's memory (the A/B check).
  const bool bounce_on_ = std::getenv("SQUEEZE_CUDA_BOUNCE") == nullptr || std::getenv("SQUEEZE_CUDA_BOUNCE")[0] != '0';
};

}  // namespace

namespace cuda {

namespace {
__global__ void pdl_probe_kernel() {}
}  // namespace

// On when the GPU and the code built for it are Hopper or newer (the kernels' pdl_start() waits
// only in sm_90+ code: code built for an older architecture must not be launched early).
bool pdl_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("SQUEEZE_CUDA_PDL");
    if (e && e[0] == '0') return false;
    int dev = 0, major = 0;
    cudaFuncAttributes fa{};
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaFuncGetAttributes(&fa, pdl_probe_kernel) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 9 && fa.binaryVersion >= 90 && fa.ptxVersion >= 90;
  }();
  return on;
}

}  // namespace cuda

DeviceMemory& cuda_memory() {
  static CudaMemory m;
  return m;
}

}  // namespace squeeze
