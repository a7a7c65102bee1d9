// The tiled matmul kernels (quant/gemm.h) against the one-pair-at-a-time vec_dot kernels: every
// output must be bit-identical, for every tile shape the driver uses (full tiles and the row and
// token remainders) and both numerics modes.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "quant/gemm.h"
#include "quant/vec_dot.h"
#include "random_quant.h"

using namespace squeeze;
using namespace squeeze::test;

namespace {

struct GemmCase {
  GGMLType type;
  int64_t k;
};

class Gemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(Gemm, BitIdenticalToVecDot) {
  const GemmCase c = GetParam();
  for (GemmIsa isa : {GemmIsa::avx2, GemmIsa::avx512_vnni})
  for (Numerics numerics : {Numerics::llamacpp, Numerics::exact}) {
    const GemmFn gemm = gemm_fn(c.type, numerics, isa);
    if (!gemm) continue;  // no tiled kernel on this CPU / for this mode
    const VecDotFn dot = vec_dot_fn(c.type, numerics);
    const GGMLType at = vec_dot_type(c.type);
    std::mt19937 rng(uint32_t(c.type) * 31u + uint32_t(c.k));
    for (int64_t n_rows : {1, 2, 3, 4, 5, 8, 11, 17}) {
      for (int64_t n_tok : {1, 2, 3, 4, 5, 7, 9, 33, 70}) {
        const size_t wr = row_bytes(c.type, c.k), ar = row_bytes(at, c.k);
        std::vector<uint8_t> w(wr * size_t(n_rows)), a(ar * size_t(n_tok));
        for (int64_t r = 0; r < n_rows; ++r) {
          const std::vector<uint8_t> row = random_weights(c.type, c.k, rng);
          std::memcpy(w.data() + size_t(r) * wr, row.data(), wr);
        }
        for (int64_t t = 0; t < n_tok; ++t) {
          const std::vector<float> x = random_activations(c.k, rng);
          quantize_activation_row(at, x.data(), a.data() + size_t(t) * ar, c.k, numerics);
        }
        const int64_t ldy = n_rows + 3;  // a padded output stride, as a column slice of y would have
        auto check = [&](const char* layout, const std::vector<float>& y) {
          for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < ldy; ++r) {
              const float got = y[size_t(t * ldy + r)];
              if (r >= n_rows) {
                ASSERT_EQ(got, -1.0f) << "wrote outside its rows";
                continue;
              }
              const float want = dot(w.data() + size_t(r) * wr, a.data() + size_t(t) * ar, c.k);
              ASSERT_EQ(std::memcmp(&got, &want, 4), 0)
                  << layout << " " << type_name(c.type) << " k=" << c.k << " rows=" << n_rows << " tokens=" << n_tok
                  << " r=" << r << " t=" << t << " numerics=" << int(numerics) << " isa=" << gemm_isa_name(isa) << ": "
                  << got << " vs " << want;
            }
        };
        std::vector<float> y(size_t(ldy * n_tok), -1.0f);
        gemm(w.data(), wr, a.data(), ar, c.k, n_rows, n_tok, y.data(), ldy);
        check("plain", y);
        // The same products from the x4 layout (4 rows interleaved block by block).
        if (const GemmFn x4 = gemm_x4_fn(c.type, numerics, isa)) {
          std::vector<uint8_t> packed(w.size());
          repack_x4(w.data(), packed.data(), n_rows, wr, size_t(type_info(c.type).block_bytes));
          // Each row read back from the x4 layout (what get_rows does with a repacked table).
          std::vector<uint8_t> row(wr);
          for (int64_t r = 0; r < n_rows; ++r) {
            x4_row(packed.data(), n_rows, r, wr, size_t(type_info(c.type).block_bytes), row.data());
            ASSERT_EQ(std::memcmp(row.data(), w.data() + size_t(r) * wr, wr), 0) << "x4_row " << r << " of " << n_rows;
          }
          std::vector<float> y4(size_t(ldy * n_tok), -1.0f);
          x4(packed.data(), wr, a.data(), ar, c.k, n_rows, n_tok, y4.data(), ldy);
          check("x4", y4);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Gemm,
                         ::testing::Values(GemmCase{GGMLType::F16, 640}, GemmCase{GGMLType::F16, 77}, GemmCase{GGMLType::F16, 2048},
                                           GemmCase{GGMLType::Q4_0, 640}, GemmCase{GGMLType::Q5_0, 640},
                                           GemmCase{GGMLType::Q8_0, 640}, GemmCase{GGMLType::Q4_0, 32},
                                           GemmCase{GGMLType::Q4_K, 512}, GemmCase{GGMLType::Q6_K, 512},
                                           GemmCase{GGMLType::Q4_K, 256}, GemmCase{GGMLType::Q6_K, 2048}),
                         [](const auto& info) {
                           return std::string(type_name(info.param.type)) + "_k" + std::to_string(info.param.k);
                         });

TEST(Gemm, ExistsWhereTheCpuHasAvx2) {
  if (gemm_isa() == GemmIsa::none) GTEST_SKIP() << "no AVX2";
  for (GGMLType t : {GGMLType::Q4_0, GGMLType::Q5_0, GGMLType::Q8_0})
    EXPECT_NE(gemm_fn(t, Numerics::exact), nullptr) << type_name(t);
  for (GGMLType t : {GGMLType::Q4_K, GGMLType::Q6_K}) {
    EXPECT_NE(gemm_fn(t, Numerics::llamacpp), nullptr) << type_name(t);
    EXPECT_NE(gemm_fn(t, Numerics::exact), nullptr) << type_name(t);
  }
  EXPECT_EQ(gemm_fn(GGMLType::Q4_0, Numerics::exact, GemmIsa::none), nullptr);
  // Q8_0's x4 layout only pays with the AVX-512 row-pair decode kernel.
  EXPECT_EQ(gemm_x4_fn(GGMLType::Q8_0, Numerics::llamacpp, GemmIsa::avx2), nullptr);
  EXPECT_EQ(gemm_x4_fn(GGMLType::Q8_0, Numerics::llamacpp) != nullptr, gemm_isa() == GemmIsa::avx512_vnni);
  for (GGMLType t : {GGMLType::Q4_0, GGMLType::Q5_0, GGMLType::Q4_K}) {
    EXPECT_NE(gemm_x4_fn(t, Numerics::llamacpp), nullptr) << type_name(t);
    EXPECT_EQ(gemm_x4_fn(t, Numerics::exact), nullptr) << type_name(t);
  }
}

}  // namespace
