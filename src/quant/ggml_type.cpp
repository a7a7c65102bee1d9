#include "quant/ggml_type.h"

#include "util/error.h"

namespace squeeze {

namespace {

// One row per ggml type id that can appear in a GGUF file. Block sizes and byte counts follow
// ggml-common.h (Q8_1 is ggml's 36-byte struct with f16 d and s, not gguf-py's legacy 40).
// Ids 4, 5 (removed Q4_2/Q4_3), 31-33 and 36-38 (repacked runtime layouts) have no row.
constexpr TypeInfo kTypes[] = {
    {GGMLType::F32, "f32", 1, 4, true},
    {GGMLType::F16, "f16", 1, 2, true},
    {GGMLType::Q4_0, "q4_0", 32, 18, true},
    {GGMLType::Q4_1, "q4_1", 32, 20, true},
    {GGMLType::Q5_0, "q5_0", 32, 22, true},
    {GGMLType::Q5_1, "q5_1", 32, 24, true},
    {GGMLType::Q8_0, "q8_0", 32, 34, true},
    {GGMLType::Q8_1, "q8_1", 32, 36, false},  // activation-only format
    {GGMLType::Q2_K, "q2_K", 256, 84, true},
    {GGMLType::Q3_K, "q3_K", 256, 110, true},
    {GGMLType::Q4_K, "q4_K", 256, 144, true},
    {GGMLType::Q5_K, "q5_K", 256, 176, true},
    {GGMLType::Q6_K, "q6_K", 256, 210, true},
    {GGMLType::Q8_K, "q8_K", 256, 292, false},  // activation-only format
    {GGMLType::IQ2_XXS, "iq2_xxs", 256, 66, false},
    {GGMLType::IQ2_XS, "iq2_xs", 256, 74, false},
    {GGMLType::IQ3_XXS, "iq3_xxs", 256, 98, false},
    {GGMLType::IQ1_S, "iq1_s", 256, 50, false},
    {GGMLType::IQ4_NL, "iq4_nl", 32, 18, false},
    {GGMLType::IQ3_S, "iq3_s", 256, 110, false},
    {GGMLType::IQ2_S, "iq2_s", 256, 82, false},
    {GGMLType::IQ4_XS, "iq4_xs", 256, 136, false},
    {GGMLType::I8, "i8", 1, 1, false},
    {GGMLType::I16, "i16", 1, 2, false},
    {GGMLType::I32, "i32", 1, 4, false},
    {GGMLType::I64, "i64", 1, 8, false},
    {GGMLType::F64, "f64", 1, 8, false},
    {GGMLType::IQ1_M, "iq1_m", 256, 56, false},
    {GGMLType::BF16, "bf16", 1, 2, true},
    {GGMLType::TQ1_0, "tq1_0", 256, 54, false},
    {GGMLType::TQ2_0, "tq2_0", 256, 66, false},
    {GGMLType::MXFP4, "mxfp4", 32, 17, false},
};

constexpr uint32_t kMaxId = 40;

// Direct id -> row index lookup built once at compile time; -1 marks ids without a type.
struct Index {
  int8_t row[kMaxId];
  constexpr Index() : row{} {
    for (auto& r : row) r = -1;
    for (size_t i = 0; i < sizeof(kTypes) / sizeof(kTypes[0]); ++i)
      row[uint32_t(kTypes[i].type)] = int8_t(i);
  }
};
constexpr Index kIndex;

}  // namespace

const TypeInfo* type_info(uint32_t id) {
  if (id >= kMaxId || kIndex.row[id] < 0) return nullptr;
  return &kTypes[kIndex.row[id]];
}

const TypeInfo& type_info(GGMLType t) {
  const TypeInfo* ti = type_info(uint32_t(t));
  // A GGMLType value outside the table can only come from an unchecked cast of file data.
  if (!ti) throw Error(fmt("unknown ggml type id %u", unsigned(t)));
  return *ti;
}

}  // namespace squeeze
