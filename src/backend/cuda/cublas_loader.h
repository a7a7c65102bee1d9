#pragma once
// cuBLAS, loaded at run time by the CUDA backend. Linking it would map its libraries (about half
// a gigabyte) into every squeeze process, CPU-only runs included, at about 180 MB of resident
// memory; loaded on demand it costs only the processes that create a CUDA backend.
#include <cublas_v2.h>

#include <string>

namespace squeeze::cuda {

struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  decltype(&cublasSetMathMode) set_math_mode;
  // The C entry point (cublas_api.h also declares a C++ overload of the name).
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
};

// The loaded functions, or nullptr with the reason in *why (when why is not null).
const CublasApi* cublas_api(std::string* why = nullptr);

}  // namespace squeeze::cuda
