// The tiled kernels for AVX-512 with VNNI (compiled with those -m flags; see CMakeLists.txt).
#if defined(__x86_64__)
#define SQZ_GEMM_NS gemm_avx512
#include "quant/gemm_x86.inc"
#endif
