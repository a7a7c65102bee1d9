#ifdef SQUEEZE_HAVE_CUBLAS
#include "backend/cuda/cublas_loader.h"

#include <dlfcn.h>

#define SQZ_STR2(x) #x
#define SQZ_STR(x) SQZ_STR2(x)

namespace squeeze::cuda {

namespace {

struct Loaded {
  CublasApi api{};
  bool ok = false;
  std::string why;
};

template <typename F>
bool resolve(void* lib, const char* name, F& f, std::string& why) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f) why = std::string("libcublas has no ") + name;
  return f != nullptr;
}

Loaded load() {
  Loaded l;
  void* lib = nullptr;
  for (const char* name : {"libcublas.so." SQZ_STR(CUBLAS_VER_MAJOR), "libcublas.so"})
    if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  if (!lib) {
    const char* e = dlerror();
    l.why = e ? e : "libcublas not found";
    return l;
  }
  CublasApi& a = l.api;
  l.ok = resolve(lib, "cublasCreate_v2", a.create, l.why) && resolve(lib, "cublasDestroy_v2", a.destroy, l.why) &&
         resolve(lib, "cublasSetStream_v2", a.set_stream, l.why) &&
         resolve(lib, "cublasSetWorkspace_v2", a.set_workspace, l.why) &&
         resolve(lib, "cublasSetMathMode", a.set_math_mode, l.why) && resolve(lib, "cublasGemmEx", a.gemm_ex, l.why);
  return l;  // the library stays loaded for the process
}

}  // namespace

const CublasApi* cublas_api(std::string* why) {
  static const Loaded loaded = load();
  if (!loaded.ok && why) *why = loaded.why;
  return loaded.ok ? &loaded.api : nullptr;
}

}  // namespace squeeze::cuda

#endif  // SQUEEZE_HAVE_CUBLAS
