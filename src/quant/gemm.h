#pragma once
// Tiled weight x activation products: many (weight row, token) dot products at once.
//
// A tile of R weight rows x T tokens is computed together, so each weight block is unpacked
// once for T tokens and each activation block loaded once for R rows. Every output still gets
// exactly the arithmetic of vec_dot_fn(type, numerics) for its pair: the integer lane sums are
// the same (integers add exactly in any order), and each output's float accumulation runs block
// by block in the same order. So the result is bit-identical to the one-pair-at-a-time path,
// and the tests check that.
#include <cstddef>
#include <cstdint>

#include "quant/ggml_type.h"
#include "quant/numerics.h"

namespace squeeze {

// y[t * ldy + r] = dot(weight row r, activation row t) for r < n_rows, t < n_tok. Weight row r
// starts at w + r * w_stride, activation row t (already in vec_dot_type) at a + t * a_stride; k
// is the row length in elements.
using GemmFn = void (*)(const uint8_t* w, size_t w_stride, const uint8_t* a, size_t a_stride, int64_t k,
                        int64_t n_rows, int64_t n_tok, float* y, int64_t ldy);

// The instruction sets with tiled kernels, in increasing order.
enum class GemmIsa { none, avx2, avx512_vnni };

// The best one this CPU runs, and its name ("avx512-vnni", "avx2", "none").
GemmIsa gemm_isa();
const char* gemm_isa_name(GemmIsa isa);

// The tiled kernel for this weight type and numerics with the CPU's best instruction set (or a
// given one, which must not exceed gemm_isa(): tests compare them), or nullptr when there is
// none (the caller then loops over vec_dot_fn).
GemmFn gemm_fn(GGMLType weight_type, Numerics numerics);
GemmFn gemm_fn(GGMLType weight_type, Numerics numerics, GemmIsa isa);

// The x4 weight layout: rows in groups of 4 interleaved block by block (rows past the last full
// group unchanged; same size as the plain layout, and a group starts where its first row did).
// The kernels read one sequential stream that feeds 4 independent accumulation chains, which is
// what decode needs (one chain per row waits on the FMA latency every block). Same bits as
// gemm_fn. For Q4_0, Q5_0 and Q4_K in Numerics::llamacpp, and Q8_0 with AVX-512 VNNI (its
// row-pair decode kernel; the plain-layout decode measured as fast with AVX2); nullptr otherwise. Q4_K gains
// less (its float chain is one FMA per 256 elements): decode takes the group's 4 rows from one
// stream, TinyLlama-shape Q4_K_M tg128 about 3% faster on 2 Zen 4 cores (5 of 6 alternating pairs). w must start at
// a row that is a multiple of 4 of the repacked tensor; w_stride is unused.
GemmFn gemm_x4_fn(GGMLType weight_type, Numerics numerics);
GemmFn gemm_x4_fn(GGMLType weight_type, Numerics numerics, GemmIsa isa);
void repack_x4(const uint8_t* src, uint8_t* dst, int64_t n_rows, size_t row_bytes, size_t block_bytes);
// Row `row` of an x4-layout tensor of n_rows rows, back in the plain layout (row_bytes to dst).
void x4_row(const uint8_t* packed, int64_t n_rows, int64_t row, size_t row_bytes, size_t block_bytes, uint8_t* dst);

}  // namespace squeeze
