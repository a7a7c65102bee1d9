#pragma once
// The CUDA implementation of Backend (plain C++ header: no CUDA includes, so the app and the tests
// can use it from .cpp files). Activations and the KV cache live in GPU memory (cuda_memory());
// weights, norm weights and the batch description stay in host memory and are copied by the
// backend: weights once on first use, the batch arrays once per begin_batch().
#include <memory>

#include "backend/backend.h"

namespace squeeze {

// True when the CUDA runtime finds a driver and at least one GPU.
bool cuda_available();

// The CUDA backend on GPU device_index. Throws Error with the reason when there is no driver, no
// GPU or no such device.
std::unique_ptr<Backend> make_cuda_backend(int device_index = 0);

// Whether a product of n_tokens rows with this weight runs on tensor cores (16-bit activations)
// rather than in fp32: more than 8 tokens, weights not F32, a cuBLAS build, and
// SQUEEZE_CUDA_TENSOR_CORES not 0. For tests, which hold such products to a looser bound.
bool cuda_matmul_uses_tensor_cores(GGMLType type, int64_t k, int64_t n_out, int64_t n_tokens);
// Whether such a product first rounds the activations to 8-bit blocks of 32 (d = max|x| / 127,
// q = round(x / d)) for the integer decode kernels: at most 8 tokens, Q8_0 / Q4_0 / Q4_K / Q6_K
// weights with rows of a multiple of 256 elements (2048 for Q6_K).
bool cuda_matmul_quantizes_activations(GGMLType type, int64_t k, int64_t n_tokens);

// The GPU's memory as a DeviceMemory (cudaMalloc / cudaMemcpy; a process-lifetime object).
DeviceMemory& cuda_memory();

}  // namespace squeeze
