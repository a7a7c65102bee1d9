#pragma once
// IEEE binary16 and bfloat16 conversions, bit-exact with numpy / ggml (round to nearest even,
// subnormals and NaN/Inf preserved). NaN payloads follow numpy: the top mantissa bits are kept
// and a NaN is never quieted (a payload that would truncate to zero becomes 1, so it stays NaN).
// The conversions are written with selects rather than early returns so that GCC can
// if-convert and vectorize loops that call them.
#include <cstdint>
#include <cstring>

namespace squeeze {

inline float bits_to_f32(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  // Exponent and mantissa. Signed on purpose: int -> float converts in one SSE2 instruction,
  // unsigned does not.
  const int32_t em = h & 0x7fff;
  // Zero or subnormal: value = mantissa * 2^-24. float(em) is exact, and scaling it by 2^-24
  // is done on the exponent bits (the result is always a normal f32) rather than with a float
  // multiply: under GCC's default -ftrapping-math a float multiply may trap, so GCC would keep
  // it behind a branch and not vectorize loops over this function. Zero must stay zero.
  const uint32_t sub = (f32_to_bits(float(em)) - (24u << 23)) & (em != 0 ? ~0u : 0u);
  // Normal: shift into place and rebias the exponent by 127 - 15 = 112. Inf/NaN (exponent 31)
  // need another 112 to land on f32's all-ones exponent; the mantissa (NaN payload) is kept.
  const uint32_t nrm = (uint32_t(em) << 13) + (112u << 23) + (em >= 0x7c00 ? (112u << 23) : 0u);
  return bits_to_f32(sign | (em < 0x400 ? sub : nrm));
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) {
    // NaN: keep the top 10 payload bits like numpy; never let it collapse into Inf.
    const uint32_t m = (ax & 0x7fffffu) >> 13;
    return uint16_t(sign | 0x7c00u | (m ? m : 1u));
  }
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // Inf, or overflow after rounding
  if (ax < 0x38800000u) {
    // Result is subnormal (or zero): round ax * 2^24 to an integer, ties to even. The scaling
    // is exact and v < 1024, so the fraction is exact too.
    const float v = bits_to_f32(ax) * 16777216.0f;
    uint32_t r = uint32_t(v);
    const float frac = v - float(r);
    if (frac > 0.5f || (frac == 0.5f && (r & 1))) r++;
    return uint16_t(sign | r);
  }
  // Normal: rebias the exponent (-112 << 23 == 0xc8000000 mod 2^32) and round to nearest even
  // by adding 0xfff plus the lowest kept bit before truncating 13 bits. A carry out of the
  // mantissa correctly bumps the exponent.
  const uint32_t m = ax + 0xc8000fffu + ((ax >> 13) & 1);
  return uint16_t(sign | (m >> 13));
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

// Same as ggml_compute_fp32_to_bf16 and gguf-py: NaN is quieted, everything else rounds to
// nearest even (large finite values may round to Inf).
inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 64);  // quiet NaN
  return uint16_t((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

}  // namespace squeeze
