// Elementwise and normalization ops of the CPU backend. The matmul lives in matmul.cpp and the
// attention in attention.cpp.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/dequantize.h"
#include "quant/gemm.h"
#include "util/error.h"
#include "util/fp16.h"

namespace squeeze {

CpuBackend::CpuBackend(int n_threads, Numerics numerics)
    : pool_(n_threads), numerics_(numerics), thread_scratch_(size_t(pool_.size())) {}

namespace {

// tanh-approximation GELU, evaluated in float in this operation order (llama.cpp's too).
float gelu_tanh(float x) {
  constexpr float k = 0.79788456080286535587989211986876f;  // sqrt(2 / pi)
  constexpr float a = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(k * x * (1.0f + a * x * x)));
}

// llama.cpp's GELU (GGML_GELU_FP16): the input rounded to f16 indexes a table of f16 results;
// inputs at or beyond +-10 pass through (or give 0).
float gelu_f16_table(float x) {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = f32_to_f16(gelu_tanh(f16_to_f32(uint16_t(i))));
    return t;
  }();
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return f16_to_f32(table[f32_to_f16(x)]);
}

}  // namespace

void CpuBackend::get_rows(const TensorRef& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t dim = table.ne[0];
  const size_t rb = row_bytes(table.type, dim);
  // An embedding table tied to the output matmul may have an x4 copy (matmul.cpp), whose making
  // released the original's pages: rows are read from the copy, so they do not fault the
  // original back in (with the kernel's fault-around, 512 prompt tokens brought back ~60 MiB
  // of Gemma 3's table).
  const auto packed = repacked_.find(table.data);
  if (packed != repacked_.end() && row_scratch_.size() < rb) row_scratch_.resize(rb);
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= table.ne[1]) throw Error(fmt("token id %d is outside the vocabulary", ids[i]));
    const uint8_t* src = table.data + size_t(ids[i]) * rb;
    if (packed != repacked_.end()) {
      x4_row(packed->second.get(), table.ne[1], ids[i], rb, size_t(type_info(table.type).block_bytes), row_scratch_.data());
      src = row_scratch_.data();
    }
    dequantize_row(table.type, src, out + i * dim, dim);
  }
}

void CpuBackend::rms_norm_row(const float* xr, const float* w, float w_offset, int64_t n, float eps, float* yr) const {
  double ss = 0;  // double, as llama.cpp: rows can be long and values large
  if (numerics_ == Numerics::llamacpp)  // llama.cpp squares in float, then sums in double
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i] * xr[i]);
  else
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * double(xr[i]);
  const float s = 1.0f / std::sqrt(float(ss / double(n)) + eps);
  for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] * s) * (w[i] + w_offset);
}

void CpuBackend::rms_norm(const float* x, const float* w, float w_offset, int64_t rows, int64_t n, float eps,
                          float* y) {
  pool_.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) rms_norm_row(x + r * n, w, w_offset, n, eps, y + r * n);
  });
}

void CpuBackend::add_rms_norm(float* x, const float* delta, const float* w, float w_offset, int64_t rows, int64_t n,
                              float eps, float* y) {
  pool_.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      float* xr = x + r * n;
      const float* dr = delta + r * n;
      for (int64_t i = 0; i < n; ++i) xr[i] += dr[i];
      rms_norm_row(xr, w, w_offset, n, eps, y + r * n);
    }
  });
}

void CpuBackend::gather_rows(const float* src, int64_t width, const int32_t* rows, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + i * width, src + int64_t(rows[i]) * width, size_t(width) * sizeof(float));
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuBackend::add_bias(float* x, const float* bias, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) x[r * n + i] += bias[i];
}

void CpuBackend::scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void CpuBackend::softcap(float* x, float c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = c * std::tanh(x[i] / c);
}

void CpuBackend::rope(float* x, int64_t n_heads, const TokenPlacement& tp, const RopeParams& rp) {
  const int32_t d = rp.head_dim, half = d / 2;
  pool_.parallel_for(tp.n_tokens, [&](int64_t t0, int64_t t1, int ti) {
    std::vector<float>& cs = thread_scratch_[size_t(ti)];
    if (cs.size() < size_t(d)) cs.resize(size_t(d));
    for (int64_t t = t0; t < t1; ++t) {
      const float p = float(tp.pos[t]);
      if (numerics_ == Numerics::llamacpp) {
        // llama.cpp: theta_i = p * theta_scale^i built by repeated float multiplication, then
        // divided by the frequency factor and scaled, with float cosf/sinf.
        const float theta_scale = std::pow(rp.base, -2.0f / float(d));
        float theta = p;
        for (int32_t i = 0; i < half; ++i) {
          const float ff = rp.freq_factors ? rp.freq_factors[i] : 1.0f;
          const float th = rp.freq_scale * (theta / ff);
          cs[size_t(i)] = std::cos(th);
          cs[size_t(half + i)] = std::sin(th);
          theta *= theta_scale;
        }
      }
      for (int32_t i = 0; i < half && numerics_ != Numerics::llamacpp; ++i) {
        // Frequencies as Hugging Face computes them in float32: base^(-2i/d), then scaled.
        float inv = 1.0f / std::pow(rp.base, float(2 * i) / float(d));
        inv *= rp.freq_scale;
        if (rp.freq_factors) inv /= rp.freq_factors[i];
        const float theta = p * inv;
        cs[size_t(i)] = float(std::cos(double(theta)));
        cs[size_t(half + i)] = float(std::sin(double(theta)));
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * d;
        for (int32_t i = 0; i < half; ++i) {
          const int32_t a = rp.neox ? i : 2 * i, b = rp.neox ? i + half : 2 * i + 1;
          const float c = cs[size_t(i)], s = cs[size_t(half + i)];
          const float x0 = v[a], x1 = v[b];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      }
    }
  });
}

void CpuBackend::glu(const float* gate, const float* up, float* out, int64_t n, GluKind kind) {
  pool_.parallel_for(n, [&](int64_t i0, int64_t i1, int) {
    if (kind == GluKind::silu) {
      for (int64_t i = i0; i < i1; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    } else if (numerics_ == Numerics::llamacpp) {
      for (int64_t i = i0; i < i1; ++i) out[i] = gate[i] <= -10.0f ? 0.0f : gelu_f16_table(gate[i]) * up[i];
    } else {
      constexpr float k = 0.7978845608028654f;  // sqrt(2 / pi)
      for (int64_t i = i0; i < i1; ++i) {
        const float g = gate[i];
        out[i] = 0.5f * g * (1.0f + std::tanh(k * (g + 0.044715f * g * g * g))) * up[i];
      }
    }
  }, 1024);
}

}  // namespace squeeze
