#pragma once
// What the CUDA files share: error checks that turn CUDA failures into squeeze::Error, and the
// small device helpers (f16/bf16 to float, warp sums).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "util/error.h"

namespace squeeze::cuda {

// Throws Error naming the call and CUDA's message.
inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(fmt("CUDA error in %s: %s", what, cudaGetErrorString(e)));
}
// After a kernel launch: a bad configuration is reported here, a fault at the next sync.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Deferred work (the CUDA backend queues its launches): every DeviceMemory call of cuda_memory()
// first runs the registered flush hooks, so copies and sets see every operation issued before them.
void add_flush_hook(void (*fn)(void*), void* ctx);
void remove_flush_hook(void (*fn)(void*), void* ctx);
void run_flush_hooks();

#define SQZ_CUDA(call) ::squeeze::cuda::check((call), #call)

// Programmatic dependent launch (Hopper): a kernel launched with launch_pdl() may be scheduled
// while the kernel before it in the stream is still finishing, so the launch latency between the
// many small kernels of a decode step overlaps the previous kernel's tail. Such a kernel starts
// with pdl_start(): it waits there until the previous grid has completed and its writes are
// visible (nothing is read or written before), then lets the next kernel be scheduled in turn.
// SQUEEZE_CUDA_PDL=0 turns it off (plain launches).
__device__ __forceinline__ void pdl_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// Weights are never written during a step, so a kernel may start fetching its weight rows into
// L2 before pdl_start(): that fetch then overlaps the end of the kernels before it (a norm, the
// attention). One bulk request per call (Hopper's cp.async.bulk.prefetch); the range is shrunk to
// whole 16-byte units inside [p, p + bytes), so nothing outside the tensor is touched.
__device__ __forceinline__ void prefetch_l2(const void* p, size_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + 15) & ~uintptr_t(15);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~uintptr_t(15);
  if (e > a)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(a), "r"(uint32_t(e - a)) : "memory");
#endif
}
bool pdl_enabled();
template <class... P, class... A>
void launch_pdl(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = &attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...), "kernel launch");
}

inline unsigned blocks_for(int64_t n, int threads) { return unsigned((n + threads - 1) / threads); }

__device__ __forceinline__ float h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t f2h(float f) { return __half_as_ushort(__float2half_rn(f)); }
__device__ __forceinline__ float bf2f(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }
__device__ __forceinline__ float gelu_tanh(float g) {
  constexpr float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g)));
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace squeeze::cuda
