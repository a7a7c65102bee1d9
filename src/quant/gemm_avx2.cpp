// The tiled kernels for AVX2 + FMA + F16C (compiled with those -m flags; see CMakeLists.txt).
#if defined(__x86_64__)
#define SQZ_GEMM_NS gemm_avx2
#include "quant/gemm_x86.inc"
#endif
