// Quant layer unit tests: the type table, f16/bf16 conversions, activation quantization and
// the dot-product kernels. The Python reference tests (tests/reference/test_dequant.py) prove
// dequantization and activation quantization bit-exact against gguf-py; these tests check that
// vec_dot agrees with those (tested) building blocks:
//   * loosely with the exact dot of the dequantized weights and the f32 activations (the error
//     budget of quantizing the activation to 8 bits), and
//   * tightly with the exact dot of the dequantized weights and the dequantized activation
//     (only float rounding is allowed there, so layout mistakes cannot hide in the tolerance),
//   * and the AVX2 kernels (when the CPU has them) with the scalar ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/blocks.h"
#include "quant/dequantize.h"
#include "quant/ggml_type.h"
#include "quant/kernels.h"
#include "quant/vec_dot.h"
#include "util/error.h"
#include "util/fp16.h"
#include "random_quant.h"

using namespace squeeze;
using squeeze::quant::QK;
using squeeze::quant::QK_K;
using namespace squeeze::test;

namespace {

const GGMLType kWeightTypes[] = {
    GGMLType::F32,  GGMLType::F16,  GGMLType::BF16, GGMLType::Q4_0, GGMLType::Q4_1,
    GGMLType::Q5_0, GGMLType::Q5_1, GGMLType::Q8_0, GGMLType::Q2_K, GGMLType::Q3_K,
    GGMLType::Q4_K, GGMLType::Q5_K, GGMLType::Q6_K,
};

// The activation row as the kernels see it, in f32, plus the Q8_1 "s" correction: the Q4_1 and
// Q5_1 kernels apply the weight min as m * s, where s = f16(d * sum q) is rounded.
struct DecodedAct {
  std::vector<double> a;
  std::vector<double> s;  // per 32-block s for Q8_1, else empty
};

DecodedAct decode_activation(GGMLType at, const std::vector<uint8_t>& act, int64_t n) {
  DecodedAct r;
  r.a.resize(n);
  if (at == GGMLType::Q8_0 || at == GGMLType::Q8_1) {
    const int64_t stride = type_info(at).block_bytes;
    for (int64_t b = 0; b < n / QK; ++b) {
      const uint8_t* blk = &act[b * stride];
      uint16_t d, s;
      std::memcpy(&d, blk, 2);
      std::memcpy(&s, blk + 2, 2);
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + (at == GGMLType::Q8_1 ? 4 : 2));
      for (int j = 0; j < QK; ++j) r.a[b * QK + j] = double(f16_to_f32(d)) * q[j];
      if (at == GGMLType::Q8_1) r.s.push_back(f16_to_f32(s));
    }
  } else if (at == GGMLType::Q8_K) {
    const auto* blk = reinterpret_cast<const quant::BlockQ8_K*>(act.data());
    for (int64_t b = 0; b < n / QK_K; ++b)
      for (int j = 0; j < QK_K; ++j) r.a[b * QK_K + j] = double(blk[b].d) * blk[b].qs[j];
  } else {
    std::vector<float> f(n);
    dequantize_row(at, act.data(), f.data(), n);
    for (int64_t i = 0; i < n; ++i) r.a[i] = f[i];
  }
  return r;
}

// The per-32-block min of a Q4_1/Q5_1 row (offset 2 in both layouts).
double block_min(GGMLType t, const std::vector<uint8_t>& w, int64_t b) {
  uint16_t m;
  std::memcpy(&m, &w[b * type_info(t).block_bytes + 2], 2);
  return f16_to_f32(m);
}

struct Case {
  GGMLType t;
  int64_t n;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (GGMLType t : kWeightTypes) {
    const int64_t be = type_info(t).block_elems;
    std::vector<int64_t> lens = {256, 1024, 4352};
    if (be <= QK) lens.insert(lens.end(), {32, 96, 2080});
    if (be == 1) lens.insert(lens.end(), {1, 37, 1000});
    for (int64_t n : lens) cases.push_back({t, n});
  }
  return cases;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST(GGMLTypeTable, KnownAndUnknownIds) {
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 41u, 1000u, 0xffffffffu})
    EXPECT_EQ(type_info(id), nullptr) << id;
  struct Row { uint32_t id; const char* name; int64_t elems, bytes; bool compute; };
  const Row rows[] = {
      {0, "f32", 1, 4, true},        {1, "f16", 1, 2, true},         {2, "q4_0", 32, 18, true},
      {3, "q4_1", 32, 20, true},     {6, "q5_0", 32, 22, true},      {7, "q5_1", 32, 24, true},
      {8, "q8_0", 32, 34, true},     {9, "q8_1", 32, 36, false},     {10, "q2_K", 256, 84, true},
      {11, "q3_K", 256, 110, true},  {12, "q4_K", 256, 144, true},   {13, "q5_K", 256, 176, true},
      {14, "q6_K", 256, 210, true},  {15, "q8_K", 256, 292, false},  {16, "iq2_xxs", 256, 66, false},
      {17, "iq2_xs", 256, 74, false}, {18, "iq3_xxs", 256, 98, false}, {19, "iq1_s", 256, 50, false},
      {20, "iq4_nl", 32, 18, false}, {21, "iq3_s", 256, 110, false}, {22, "iq2_s", 256, 82, false},
      {23, "iq4_xs", 256, 136, false}, {24, "i8", 1, 1, false},      {25, "i16", 1, 2, false},
      {26, "i32", 1, 4, false},      {27, "i64", 1, 8, false},       {28, "f64", 1, 8, false},
      {29, "iq1_m", 256, 56, false}, {30, "bf16", 1, 2, true},       {34, "tq1_0", 256, 54, false},
      {35, "tq2_0", 256, 66, false}, {39, "mxfp4", 32, 17, false},
  };
  for (const Row& r : rows) {
    const TypeInfo* ti = type_info(r.id);
    ASSERT_NE(ti, nullptr) << r.id;
    EXPECT_EQ(uint32_t(ti->type), r.id);
    EXPECT_STREQ(ti->name, r.name);
    EXPECT_EQ(ti->block_elems, r.elems) << r.name;
    EXPECT_EQ(ti->block_bytes, r.bytes) << r.name;
    EXPECT_EQ(ti->can_compute, r.compute) << r.name;
  }
  EXPECT_EQ(row_bytes(GGMLType::Q4_K, 4096), size_t(16 * 144));
  EXPECT_EQ(row_bytes(GGMLType::F16, 7), size_t(14));
  EXPECT_STREQ(type_name(GGMLType::Q6_K), "q6_K");
}

TEST(GGMLTypeTable, VecDotTypes) {
  EXPECT_EQ(vec_dot_type(GGMLType::F32), GGMLType::F32);
  EXPECT_EQ(vec_dot_type(GGMLType::F16), GGMLType::F16);
  EXPECT_EQ(vec_dot_type(GGMLType::BF16), GGMLType::BF16);
  for (GGMLType t : {GGMLType::Q4_0, GGMLType::Q5_0, GGMLType::Q8_0}) EXPECT_EQ(vec_dot_type(t), GGMLType::Q8_0);
  for (GGMLType t : {GGMLType::Q4_1, GGMLType::Q5_1}) EXPECT_EQ(vec_dot_type(t), GGMLType::Q8_1);
  for (GGMLType t : {GGMLType::Q2_K, GGMLType::Q3_K, GGMLType::Q4_K, GGMLType::Q5_K, GGMLType::Q6_K})
    EXPECT_EQ(vec_dot_type(t), GGMLType::Q8_K);
  EXPECT_THROW(vec_dot_type(GGMLType::IQ2_XXS), Error);
  EXPECT_THROW(vec_dot_fn(GGMLType::Q8_K), Error);
  std::vector<float> out(256);
  std::vector<uint8_t> in(256);
  EXPECT_THROW(dequantize_row(GGMLType::IQ4_XS, in.data(), out.data(), 256), Error);
  EXPECT_THROW(dequantize_row(GGMLType::Q4_0, in.data(), out.data(), 48), Error);
}

// ---------------------------------------------------------------------------------------------

TEST(Fp16, AllHalfValuesRoundTrip) {
  // Every f16 bit pattern survives f16 -> f32 -> f16, NaN payloads included (numpy keeps them).
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
    ASSERT_EQ(std::isnan(f), (h & 0x7c00) == 0x7c00 && (h & 0x3ff)) << std::hex << h;
  }
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
}

TEST(Fp16, RoundingEdges) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7bff);          // just below the tie to Inf
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);            // tie rounds to even = Inf
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and min subnormal
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp ties to even 2
  EXPECT_EQ(f32_to_f16(std::ldexp(5.0f, -25)), 0x0002);  // 2.5 ulp ties to even 2
  EXPECT_EQ(f32_to_f16(std::ldexp(2047.0f, -25)), 0x0400);  // rounds up into the normals
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, even stays
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie, odd rounds up
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(bits_to_f32(0x7f800001u)), 0x7c01);  // NaN whose payload truncates away
  EXPECT_EQ(f32_to_f16(bits_to_f32(0xffc00000u)), 0xfe00);
}

TEST(Bf16, RoundTripAndRounding) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const bool nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(uint16_t(h))), nan ? (h | 0x40) : h) << std::hex << h;
  }
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x7f7fffffu)), 0x7f80);  // max float rounds to Inf
}

// ---------------------------------------------------------------------------------------------

TEST(QuantizeActivation, Q8KInvariants) {
  std::mt19937 rng(3);
  const int64_t n = 1024;
  std::vector<float> x = random_activations(n, rng);
  x[700] = -50.0f;  // the largest magnitude is negative in block 2
  std::vector<quant::BlockQ8_K> q(n / QK_K);
  quantize_activation_row(GGMLType::Q8_K, x.data(), q.data(), n);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[b].qs[16 * g + l];
      EXPECT_EQ(q[b].bsums[g], s);
    }
    for (int j = 0; j < QK_K; ++j)
      EXPECT_NEAR(q[b].d * q[b].qs[j], x[b * QK_K + j], std::fabs(q[b].d) * 0.5001f);
  }
  EXPECT_EQ(q[2].qs[700 - 512], -127);  // the extreme element maps to exactly -127
  // An all-zero block yields d = 0 and zero sums, not NaN.
  std::vector<float> z(QK_K, 0.0f);
  quantize_activation_row(GGMLType::Q8_K, z.data(), q.data(), QK_K);
  EXPECT_EQ(q[0].d, 0.0f);
  EXPECT_EQ(q[0].bsums[5], 0);
}

// ggml's quantize_row_q8_K_ref, written out again here: the (vectorized where the CPU allows)
// quantizer must give its bytes for every input, ties of magnitude, NaN, inf and denormals too.
static void q8_k_reference(const float* x, quant::BlockQ8_K* y) {
  auto nearest = [](float f) {
    const float v = f + 12582912.f;
    int32_t i;
    std::memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
  };
  float max = 0, amax = 0;
  for (int j = 0; j < QK_K; ++j)
    if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
  std::memset(y, 0, sizeof(*y));
  if (amax == 0) return;
  const float iscale = -127.f / max;
  for (int j = 0; j < QK_K; ++j) y->qs[j] = int8_t(std::min(127, nearest(iscale * x[j])));
  for (int g = 0; g < QK_K / 16; ++g) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += y->qs[16 * g + l];
    y->bsums[g] = int16_t(sum);
  }
  y->d = 1 / iscale;
}

TEST(QuantizeActivation, Q8KMatchesReferenceQuantizer) {
  std::mt19937 rng(11);
  const int64_t n = 8 * QK_K;
  std::vector<float> x(n);
  std::vector<quant::BlockQ8_K> got(n / QK_K);
  int mismatches = 0;
  for (int iter = 0; iter < 700; ++iter) {
    const int mode = iter % 7;
    for (float& v : x) {
      const uint32_t r = uint32_t(rng());
      switch (mode) {
        case 0: v = std::normal_distribution<float>(0, 1)(rng); break;
        case 1: std::memcpy(&v, &r, 4); if (std::isnan(v)) v = 1.0f; break;    // any bits, inf too
        case 2: v = float(int(r % 255) - 127) * 0.5f; break;                   // halves: rounding ties
        case 3: v = r % 7 == 0 ? 0.0f : std::ldexp(float(int(r % 2001) - 1000), -140); break;  // denormals
        case 4: v = r % 3 == 0 ? 0.0f : (r & 1 ? 1.0f : -1.0f) * float(r % 5); break;  // equal magnitudes
        case 5: v = r % 97 == 0 ? NAN : std::normal_distribution<float>(0, 3)(rng); break;
        default: v = std::ldexp(std::normal_distribution<float>(0, 1)(rng), -120); break;  // tiny scales
      }
    }
    if (iter % 50 == 0) x[size_t(rng()) % size_t(n)] = -INFINITY;
    if (iter % 9 == 0) std::fill(x.begin(), x.begin() + QK_K, 0.0f);
    quantize_activation_row(GGMLType::Q8_K, x.data(), got.data(), n);
    for (int64_t b = 0; b < n / QK_K; ++b) {
      quant::BlockQ8_K want;
      q8_k_reference(x.data() + b * QK_K, &want);
      mismatches += std::memcmp(&want, &got[size_t(b)], sizeof(want)) != 0;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// ---------------------------------------------------------------------------------------------

class VecDot : public ::testing::TestWithParam<Case> {};

TEST_P(VecDot, MatchesDequantizedDot) {
  const auto [t, n] = GetParam();
  std::mt19937 rng(uint32_t(t) * 7919u + uint32_t(n));
  for (int rep = 0; rep < 4; ++rep) {
    const std::vector<uint8_t> w = random_weights(t, n, rng);
    const std::vector<float> x = random_activations(n, rng);
    std::vector<float> wf(n);
    dequantize_row(t, w.data(), wf.data(), n);

    const GGMLType at = vec_dot_type(t);
    std::vector<uint8_t> act(row_bytes(at, n));
    quantize_activation_row(at, x.data(), act.data(), n);
    const DecodedAct da = decode_activation(at, act, n);

    double exact = 0, exact_abs = 0, tight = 0, tight_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      exact += double(wf[i]) * x[i];
      exact_abs += std::fabs(double(wf[i]) * x[i]);
      tight += double(wf[i]) * da.a[i];
      tight_abs += std::fabs(double(wf[i]) * da.a[i]);
    }
    // Q4_1/Q5_1: the kernel applies the min as m * s with the rounded s of the Q8_1 block.
    for (size_t b = 0; b < da.s.size(); ++b) {
      double sum_a = 0;
      for (int j = 0; j < QK; ++j) sum_a += da.a[b * QK + j];
      const double m = block_min(t, w, int64_t(b));
      tight += m * (da.s[b] - sum_a);
      tight_abs += std::fabs(m * da.s[b]);
    }

    const float got = vec_dot(t, w.data(), act.data(), n);
    // Loose: the activation quantization budget (8-bit for Q8_*, 11/8-bit mantissas for
    // F16/BF16, plain f32 rounding for F32).
    const double loose = t == GGMLType::F32 ? 1e-5 : t == GGMLType::F16 ? 1e-3 : 1e-2;
    EXPECT_NEAR(got, exact, loose * exact_abs + 1e-6) << type_name(t) << " n=" << n;
    // Tight: same inputs as the kernel, so only f32 rounding of products and sums remains.
    EXPECT_NEAR(got, tight, 2e-6 * tight_abs + 1e-6) << type_name(t) << " n=" << n;

    // Every kernel the table can pick agrees with the scalar one up to float reassociation.
    const float scalar = quant::scalar_kernel(t)(w.data(), act.data(), n);
    const float best = quant::best_kernel(t)(w.data(), act.data(), n);
    EXPECT_NEAR(best, scalar, 2e-6 * tight_abs + 1e-6) << type_name(t) << " n=" << n;
    // The K-quant SIMD kernels keep the scalar float step per super-block: bit-identical.
    if (type_info(t).block_elems == QK_K) {
      EXPECT_EQ(best, scalar) << type_name(t) << " n=" << n;
    }
    // Exact mode keeps the scalar block order for the formats with tiled exact kernels.
    const bool scalar_order = t == GGMLType::Q4_0 || t == GGMLType::Q5_0 || t == GGMLType::Q8_0;
    EXPECT_EQ(vec_dot_fn(t), scalar_order ? quant::scalar_kernel(t) : quant::best_kernel(t));
  }
}

// Numerics::llamacpp: the llama.cpp-order kernels (AVX2 where available) give exactly the bits of
// their portable lane-by-lane versions, and stay within f32 rounding of the exact sum.
TEST(VecDotLlamacpp, KernelsMatchScalarLaneOrder) {
  struct K { GGMLType t; VecDotFn scalar; };
  const K kernels[] = {{GGMLType::Q8_0, quant::llamacpp_order::scalar::dot_q8_0},
                       {GGMLType::Q5_0, quant::llamacpp_order::scalar::dot_q5_0},
                       {GGMLType::Q4_K, quant::llamacpp_order::scalar::dot_q4_k},
                       {GGMLType::Q6_K, quant::llamacpp_order::scalar::dot_q6_k}};
  std::mt19937 rng(77);
  for (const K& k : kernels) {
    for (int64_t n : {int64_t(256), int64_t(2048)}) {
      for (int rep = 0; rep < 8; ++rep) {
        const std::vector<uint8_t> w = random_weights(k.t, n, rng);
        const std::vector<float> x = random_activations(n, rng);
        const GGMLType at = vec_dot_type(k.t);
        std::vector<uint8_t> act(row_bytes(at, n));
        quantize_activation_row(at, x.data(), act.data(), n, Numerics::llamacpp);
        const float ref = k.scalar(w.data(), act.data(), n);
        EXPECT_EQ(vec_dot_fn(k.t, Numerics::llamacpp)(w.data(), act.data(), n), ref) << type_name(k.t) << " n=" << n;
        const float exact = quant::scalar_kernel(k.t)(w.data(), act.data(), n);
        EXPECT_NEAR(ref, exact, 1e-5 * (std::fabs(exact) + 1.0f)) << type_name(k.t) << " n=" << n;
      }
    }
  }
}

// llama.cpp's x86 Q8_0 quantizer rounds half to even (the reference one rounds half away).
TEST(QuantizeActivation, Q8_0LlamacppRoundsHalfToEven) {
  std::vector<float> x(QK, 0.0f);
  x[0] = 127.0f;  // amax 127: the scale is exactly 1
  x[1] = 2.5f;
  x[2] = -3.5f;
  quant::BlockQ8_0 a{}, b{};
  quantize_activation_row(GGMLType::Q8_0, x.data(), &a, QK, Numerics::llamacpp);
  quantize_activation_row(GGMLType::Q8_0, x.data(), &b, QK, Numerics::exact);
  EXPECT_EQ(a.qs[1], 2);
  EXPECT_EQ(a.qs[2], -4);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -4);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VecDot, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(type_name(info.param.t)) + "_" + std::to_string(info.param.n);
                         });
