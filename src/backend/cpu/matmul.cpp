// Weight x activation products on the CPU. Activations are converted once per call to the weight
// type's vec_dot format (as llama.cpp does). Rows are split across threads; each thread runs the
// tiled kernels of quant/gemm.h over its rows, or, for types without them, one vec_dot per
// (weight row, token) pair, walking tokens in tiles so converted activations stay in cache.
// Both give the same bits. Q4_0/Q5_0/Q4_K weights in llama.cpp numerics are repacked on first
// use into the x4 layout of quant/gemm.h (4 rows interleaved block by block), once per backend.
#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "quant/gemm.h"
#include "quant/vec_dot.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace squeeze {

namespace {
#ifndef SQZ_PIECES
#define SQZ_PIECES 8
#endif
// Pieces per thread for prefill. TinyLlama-shape F16 pp512 on 2 Ice Lake vCPUs, 6 alternating
// rounds: one static range per thread 65.1/54.2/59.0/54.1/49.1/57.3 t/s, 8 pieces per thread
// 69.2/65.7/63.6/52.8/61.9/58.1 (4 per thread: the same median as static in 5 rounds).
constexpr int kPrefillPieces = SQZ_PIECES;
constexpr int64_t kPieceMinTokens = 16;
}  // namespace

void CpuBackend::matmul(const TensorRef& w, const float* x, int64_t n_tokens, float* y) {
  const int64_t k = w.ne[0], n_out = w.ne[1];
  const GGMLType act_type = vec_dot_type(w.type);
  const size_t w_row = row_bytes(w.type, k);
  const size_t a_row = row_bytes(act_type, k);
  if (n_tokens <= 0) return;

  const uint8_t* act;
  if (act_type == GGMLType::F32) {
    act = reinterpret_cast<const uint8_t*>(x);
  } else {
    if (act_scratch_.size() < a_row * size_t(n_tokens)) act_scratch_.resize(a_row * size_t(n_tokens));
    pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) quantize_activation_row(act_type, x + t * k, act_scratch_.data() + size_t(t) * a_row, k, numerics_);
    });
    act = act_scratch_.data();
  }

  if (k % type_info(w.type).block_elems != 0) throw Error("matmul: row length is not a multiple of the block size");
  // Prefill products run for milliseconds: their rows go out in pieces (parallel_for_pieces).
  const int pieces = n_tokens >= kPieceMinTokens ? kPrefillPieces : 1;
  if (const GemmFn gemm = gemm_x4_fn(w.type, numerics_)) {
    const uint8_t* packed = repacked(w);
    // Threads take whole groups of 4 rows (the last one may be shorter).
    pool_.parallel_for_pieces((n_out + 3) / 4, [&](int64_t g0, int64_t g1, int) {
      const int64_t o0 = 4 * g0, o1 = std::min(n_out, 4 * g1);
      gemm(packed + size_t(o0) * w_row, w_row, act, a_row, k, o1 - o0, n_tokens, y + o0, n_out);
    }, 4, pieces);
    return;
  }
  if (const GemmFn gemm = gemm_fn(w.type, numerics_)) {
    pool_.parallel_for_pieces(n_out, [&](int64_t o0, int64_t o1, int) {
      gemm(w.data + size_t(o0) * w_row, w_row, act, a_row, k, o1 - o0, n_tokens, y + o0, n_out);
    }, 16, pieces);
    return;
  }
  const VecDotFn dot = vec_dot_fn(w.type, numerics_);
  constexpr int64_t kRowTile = 16, kTokTile = 32;
  pool_.parallel_for(n_out, [&](int64_t o0, int64_t o1, int) {
    for (int64_t ob = o0; ob < o1; ob += kRowTile) {
      const int64_t oe = std::min(o1, ob + kRowTile);
      for (int64_t tb = 0; tb < n_tokens; tb += kTokTile) {
        const int64_t te = std::min(n_tokens, tb + kTokTile);
        for (int64_t o = ob; o < oe; ++o) {
          const uint8_t* wr = w.data + size_t(o) * w_row;
          for (int64_t t = tb; t < te; ++t) y[t * n_out + o] = dot(wr, act + size_t(t) * a_row, k);
        }
      }
    }
  }, kRowTile);
}

const uint8_t* CpuBackend::repacked(const TensorRef& w) {
  auto it = repacked_.find(w.data);
  if (it != repacked_.end()) return it->second.get();
  const int64_t k = w.ne[0], n_out = w.ne[1];
  const size_t w_row = row_bytes(w.type, k), block_bytes = size_t(type_info(w.type).block_bytes);
  // Not value-initialized: pages are touched only as they are written.
  std::unique_ptr<uint8_t[]> packed(new uint8_t[w_row * size_t(n_out)]);
  // The original pages are not read by the matmuls any more: each chunk's are given back as soon
  // as it is copied, so the copy never doubles the resident size, not even at its peak (an
  // embedding table shared with the output keeps working: looked-up rows fault back in).
  constexpr int64_t kChunkGroups = 64;
  pool_.parallel_for((n_out + 3) / 4, [&](int64_t g0, int64_t g1, int) {
    for (int64_t c = g0; c < g1; c += kChunkGroups) {
      const int64_t o0 = 4 * c, o1 = std::min(n_out, 4 * std::min(g1, c + kChunkGroups));
      repack_x4(w.data + size_t(o0) * w_row, packed.get() + size_t(o0) * w_row, o1 - o0, w_row, block_bytes);
      MappedFile::release_pages(w.data + size_t(o0) * w_row, size_t(o1 - o0) * w_row);
    }
  });
  return repacked_.emplace(w.data, std::move(packed)).first->second.get();
}

}  // namespace squeeze
