#pragma once
// Which arithmetic the CPU kernels reproduce.
//
//   exact     the reference arithmetic: ggml's reference activation quantizers, float dot
//             products accumulated per block, full-precision GELU, double-precision RMSNorm
//             sums, Hugging Face RoPE frequencies. What the transformers comparisons use.
//   llamacpp  the operation order of llama.cpp's x86 CPU backend built with AVX2/FMA/F16C and
//             no weight repacking (bench/peers/llamacpp.sh LLAMACPP_PARITY=1): its AVX2
//             Q8_0 activation quantizer, its per-lane FMA accumulation in the K-quant dot
//             products, the fp16 GELU table, iterative RoPE angles and its flash-attention
//             kernels. See docs/architecture.md, "Numerics and parity".
namespace squeeze {

enum class Numerics { llamacpp, exact };

}  // namespace squeeze
