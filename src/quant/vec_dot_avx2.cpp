#include "quant/kernels.h"
namespace squeeze::quant::avx2 {
bool supported() { return false; }
VecDotFn kernel(GGMLType) { return nullptr; }
}  // namespace squeeze::quant::avx2
