#pragma once
// Byte layouts of the quantized blocks squeeze computes with (ggml-common.h order; see
// docs models.md section 2). Internal to the quant layer: other layers only see raw bytes and
// type_info() sizes. f16 fields are kept as raw uint16_t bits.
#include <cstdint>

namespace squeeze::quant {

constexpr int QK = 32;    // elements per legacy block
constexpr int QK_K = 256; // elements per K-quant super-block

struct BlockQ4_0 { uint16_t d; uint8_t qs[QK / 2]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[QK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[QK]; };
struct BlockQ8_1 { uint16_t d, s; int8_t qs[QK]; };  // s = d * sum(qs), as f16

struct BlockQ2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct BlockQ3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct BlockQ6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// The 6-bit scale and min of sub-block t (0..7) of a Q4_K/Q5_K super-block. Bytes 0-3 hold
// sc0-3 plus the top 2 bits of sc4-7, bytes 4-7 the same for the mins, bytes 8-11 the low
// nibbles of sc4-7 (low half) and m4-7 (high half).
inline void k_scale_min(const uint8_t* s, int t, uint8_t& sc, uint8_t& m) {
  if (t < 4) {
    sc = s[t] & 63;
    m = s[t + 4] & 63;
  } else {
    sc = uint8_t((s[t + 4] & 15) | ((s[t - 4] >> 6) << 4));
    m = uint8_t((s[t + 4] >> 4) | ((s[t] >> 6) << 4));
  }
}

// The 16 signed 6-bit scales of a Q3_K super-block, each in [-32, 31].
inline void q3k_scales(const uint8_t* s, int8_t out[16]) {
  for (int k = 0; k < 16; ++k) {
    const int lo4 = k < 8 ? (s[k] & 15) : (s[k - 8] >> 4);
    const int hi2 = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
    out[k] = int8_t((lo4 | (hi2 << 4)) - 32);
  }
}

}  // namespace squeeze::quant
