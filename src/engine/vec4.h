#pragma once
// Four-lane float helpers for loops over a whole vocabulary row (the sampler's max and softmax
// weights, the log-sum-exp of logprobs): the fast exp below, a NaN-ignoring max, selects.
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>

namespace squeeze::vec4 {

// The vocabulary-wide loops (max, exp) are written with GCC/Clang vector extensions: plain
// loops do not vectorize here, because a float max or sum reduction may not be reordered
// without -ffast-math and GCC will not if-convert the selects. 4-wide vectors map to SSE2 (the
// x86-64 baseline) and NEON, and other targets still get correct generic code. Selects are
// spelled as bit masks because Clang does not accept `?:` on these types in every version.
using v4f = float __attribute__((vector_size(16)));
using v4i = int32_t __attribute__((vector_size(16)));
using v2d = double __attribute__((vector_size(16)));  // 16 bytes: stays in a register on SSE2

inline v4f splat(float x) { return v4f{x, x, x, x}; }
inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}
inline void store4(float* p, v4f v) { std::memcpy(p, &v, sizeof v); }
// mask lanes are all-ones or all-zeros, as produced by vector comparisons.
inline v4f select(v4i mask, v4f a, v4f b) {
  return reinterpret_cast<v4f>((mask & reinterpret_cast<v4i>(a)) | (~mask & reinterpret_cast<v4i>(b)));
}
// `a > b ? a : b` per lane: NaN in a loses, which is how NaN logits are ignored.
inline v4f vmax(v4f a, v4f b) { return select(a > b, a, b); }
inline float hmax(v4f v) {
  float m = v[0];
  for (int j = 1; j < 4; ++j) m = v[j] > m ? v[j] : m;
  return m;
}

// Largest value, ignoring NaN; -inf for an empty or all-NaN range. Four independent vector
// accumulators hide the latency of the max.
inline float max_value(std::span<const float> x) {
  const float* p = x.data();
  v4f m0 = splat(-std::numeric_limits<float>::infinity()), m1 = m0, m2 = m0, m3 = m0;
  size_t i = 0;
  for (; i + 16 <= x.size(); i += 16) {
    m0 = vmax(load4(p + i), m0);
    m1 = vmax(load4(p + i + 4), m1);
    m2 = vmax(load4(p + i + 8), m2);
    m3 = vmax(load4(p + i + 12), m3);
  }
  float m = hmax(vmax(vmax(m0, m1), vmax(m2, m3)));
  for (; i < x.size(); ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// exp(x) for x <= 0, with -inf and NaN giving 0, four lanes at a time. std::exp is a scalar
// libm call per element — the single biggest cost of sampling from a 262k vocabulary.
// Cephes expf: range reduction by ln2, then a degree-6 polynomial; ~1 ulp. Results below
// exp(-87) (~1e-38 relative to the top token) are flushed to 0.
inline v4f exp_nonpositive(v4f x) {
  const v4i live = x >= splat(-87.0f);  // false for NaN and -inf as well
  const v4f xc = select(live, x, splat(-87.0f));  // keep the arithmetic finite in dead lanes
  // Round to nearest by the 1.5 * 2^23 trick: no libm call, no SSE4.1 needed.
  const v4f n = (xc * splat(1.44269504088896341f) + splat(12582912.0f)) - splat(12582912.0f);
  v4f r = xc - n * splat(0.693359375f);
  r = r - n * splat(-2.12194440e-4f);
  v4f poly = splat(1.9875691500e-4f);
  poly = poly * r + splat(1.3981999507e-3f);
  poly = poly * r + splat(8.3334519073e-3f);
  poly = poly * r + splat(4.1665795894e-2f);
  poly = poly * r + splat(1.6666665459e-1f);
  poly = poly * r + splat(5.0000001201e-1f);
  const v4f y = poly * r * r + r + splat(1.0f);
  // 2^n through the exponent field; n is in [-126, 0] here, so the scale is a normal float.
  const v4i bits = (__builtin_convertvector(n, v4i) + 127) << 23;
  return select(live, y * reinterpret_cast<v4f>(bits), splat(0.0f));
}
inline float exp_nonpositive(float x) { return exp_nonpositive(splat(x))[0]; }

}  // namespace squeeze::vec4
