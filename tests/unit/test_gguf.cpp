// GGUF reader: real vocab-only files, hand-built buffers for every value type, and a table of
// corruptions that must each raise squeeze::Error naming the problem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "util/error.h"

using namespace squeeze;

namespace {

// Writes GGUF fields byte by byte so tests can produce both valid and deliberately broken files.
struct GGUFBuilder {
  std::vector<uint8_t> b;
  template <typename T>
  GGUFBuilder& put(T v) {
    size_t n = b.size();
    b.resize(n + sizeof(T));
    std::memcpy(b.data() + n, &v, sizeof(T));
    return *this;
  }
  GGUFBuilder& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  GGUFBuilder& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  GGUFBuilder& key(const std::string& k, GGUFType t) { return str(k).put<uint32_t>(uint32_t(t)); }
  GGUFBuilder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t off) {
    str(name).put<uint32_t>(uint32_t(ne.size()));
    for (uint64_t d : ne) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(off);
  }
  GGUFBuilder& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  GGUFBuilder& bytes(size_t n, uint8_t v) {
    b.insert(b.end(), n, v);
    return *this;
  }
};

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("squeeze_test_gguf_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string p = temp_path(name);
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return p;
}

// Expects gguf_validate_buffer to throw an Error whose single-line message contains `needle`.
void expect_error(const std::vector<uint8_t>& buf, const std::string& needle) {
  try {
    gguf_validate_buffer(buf.data(), buf.size());
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// A valid file with two tensors (f32 {4,2} and q4_0 {32,1}) and one kv; tests break pieces of it.
GGUFBuilder two_tensor_file(uint32_t q_type = 2, uint64_t q_off = 32, uint32_t n_dims_hack = 0) {
  GGUFBuilder g;
  g.header(2, 1).key("general.architecture", GGUFType::STRING).str("llama");
  g.tensor("a.weight", {4, 2}, 0, 0);
  if (n_dims_hack) {
    g.str("b.weight").put<uint32_t>(n_dims_hack);
    for (uint32_t d = 0; d < std::min(n_dims_hack, 8u); ++d) g.put<uint64_t>(32);
    g.put<uint32_t>(q_type).put<uint64_t>(q_off);
  } else {
    g.tensor("b.weight", {32}, q_type, q_off);
  }
  g.pad_to(32);
  for (int k = 0; k < 8; ++k) g.put<float>(float(k));
  g.bytes(18, 0xAB);  // one q4_0 block at offset 32
  return g;
}

}  // namespace

TEST(GGUF, VocabOnlyFixturesLoad) {
  const std::string dir = std::string(SQUEEZE_SOURCE_DIR) + "/tests/fixtures/vocab/";
  struct Case {
    const char* file;
    const char* arch;
    size_t n_tokens;
    bool has_scores;
    const char* token0;
  };
  const Case cases[] = {
      {"ggml-vocab-llama-spm.gguf", "llama", 32000, true, "<unk>"},
      {"ggml-vocab-phi-3.gguf", "phi3", 32064, true, "<unk>"},
      {"ggml-vocab-gpt-2.gguf", "gpt2", 50257, false, "!"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    auto f = GGUFFile::open(dir + c.file);
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->alignment(), 32u);
    EXPECT_EQ(f->tensors().size(), 0u);
    EXPECT_EQ(f->get_string("general.architecture").value(), c.arch);
    const auto* tokens = f->get_string_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->size(), c.n_tokens);
    EXPECT_EQ((*tokens)[0], c.token0);
    const auto* types = f->get_number_array("tokenizer.ggml.token_type");
    ASSERT_NE(types, nullptr);
    EXPECT_EQ(types->size(), c.n_tokens);
    EXPECT_EQ(f->find("tokenizer.ggml.token_type")->elem_type, GGUFType::INT32);
    const auto* scores = f->get_number_array("tokenizer.ggml.scores");
    EXPECT_EQ(scores != nullptr, c.has_scores);
    if (scores) EXPECT_EQ(scores->size(), c.n_tokens);
    EXPECT_GT(f->get_int("tokenizer.ggml.eos_token_id").value(), 0);
    // The same bytes through the fuzzer's entry point agree.
    std::ifstream in(dir + c.file, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(gguf_validate_buffer(bytes.data(), bytes.size()), 0u);
  }
  auto spm = GGUFFile::open(dir + "ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(spm->get_int("llama.vocab_size").value(), 32000);
  EXPECT_EQ(spm->get_bool("tokenizer.ggml.add_bos_token").value(), true);
  EXPECT_EQ(spm->get_bool("tokenizer.ggml.add_eos_token").value(), false);
  EXPECT_NEAR(spm->get_float("llama.attention.layer_norm_rms_epsilon").value(), 1e-5, 1e-9);
}

TEST(GGUF, EveryValueTypeRoundTrips) {
  for (uint32_t version : {2u, 3u}) {
    GGUFBuilder g;
    g.header(0, 20, version);
    g.key("u8", GGUFType::UINT8).put<uint8_t>(250);
    g.key("i8", GGUFType::INT8).put<int8_t>(-120);
    g.key("u16", GGUFType::UINT16).put<uint16_t>(65000);
    g.key("i16", GGUFType::INT16).put<int16_t>(-32000);
    g.key("u32", GGUFType::UINT32).put<uint32_t>(4000000000u);
    g.key("i32", GGUFType::INT32).put<int32_t>(-2000000000);
    g.key("f32", GGUFType::FLOAT32).put<float>(1.5f);
    g.key("bool", GGUFType::BOOL).put<uint8_t>(1);
    g.key("str", GGUFType::STRING).str("h\xc3\xa9llo");
    g.key("u64", GGUFType::UINT64).put<uint64_t>(18000000000000000000ull);
    g.key("i64", GGUFType::INT64).put<int64_t>(-9000000000000000000ll);
    g.key("f64", GGUFType::FLOAT64).put<double>(-2.25);
    g.key("arr_str", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::STRING)).put<uint64_t>(3);
    g.str("a").str("").str("ccc");
    g.key("arr_i32", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::INT32)).put<uint64_t>(2);
    g.put<int32_t>(-7).put<int32_t>(9);
    g.key("arr_f32", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::FLOAT32)).put<uint64_t>(2);
    g.put<float>(0.5f).put<float>(-3.0f);
    g.key("arr_bool", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::BOOL)).put<uint64_t>(2);
    g.put<uint8_t>(0).put<uint8_t>(1);
    g.key("arr_u8", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::UINT8)).put<uint64_t>(1);
    g.put<uint8_t>(200);
    g.key("arr_i16", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::INT16)).put<uint64_t>(1);
    g.put<int16_t>(-5);
    g.key("arr_f64", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::FLOAT64)).put<uint64_t>(1);
    g.put<double>(0.125);
    g.key("arr_empty", GGUFType::ARRAY).put<uint32_t>(uint32_t(GGUFType::UINT64)).put<uint64_t>(0);

    std::string p = write_temp("types_v" + std::to_string(version), g.b);
    auto f = GGUFFile::open(p);
    std::filesystem::remove(p);
    EXPECT_EQ(f->version(), version);
    ASSERT_EQ(f->metadata().size(), 20u);
    EXPECT_EQ(f->metadata()[0].key, "u8");  // file order is kept
    EXPECT_EQ(f->get_int("u8").value(), 250);
    EXPECT_EQ(f->get_int("i8").value(), -120);
    EXPECT_EQ(f->get_int("u16").value(), 65000);
    EXPECT_EQ(f->get_int("i16").value(), -32000);
    EXPECT_EQ(f->get_int("u32").value(), 4000000000ll);
    EXPECT_EQ(f->get_int("i32").value(), -2000000000);
    EXPECT_EQ(f->get_float("f32").value(), 1.5);
    EXPECT_EQ(f->get_bool("bool").value(), true);
    EXPECT_EQ(f->get_string("str").value(), "h\xc3\xa9llo");
    EXPECT_EQ(f->find("u64")->u, 18000000000000000000ull);
    EXPECT_THROW(f->get_int("u64"), Error);  // does not fit int64
    EXPECT_EQ(f->get_float("u64").value(), 18000000000000000000.0);
    EXPECT_EQ(f->get_int("i64").value(), -9000000000000000000ll);
    EXPECT_EQ(f->get_float("f64").value(), -2.25);
    EXPECT_EQ(f->get_float("u16").value(), 65000.0);  // integers widen to float
    EXPECT_EQ(*f->get_string_array("arr_str"), (std::vector<std::string>{"a", "", "ccc"}));
    EXPECT_EQ(*f->get_number_array("arr_i32"), (std::vector<double>{-7, 9}));
    EXPECT_EQ(*f->get_number_array("arr_f32"), (std::vector<double>{0.5, -3.0}));
    EXPECT_EQ(*f->get_number_array("arr_bool"), (std::vector<double>{0, 1}));
    EXPECT_EQ(*f->get_number_array("arr_u8"), (std::vector<double>{200}));
    EXPECT_EQ(*f->get_number_array("arr_i16"), (std::vector<double>{-5}));
    EXPECT_EQ(*f->get_number_array("arr_f64"), (std::vector<double>{0.125}));
    EXPECT_EQ(f->find("arr_empty")->array_size(), 0u);
    EXPECT_EQ(f->find("arr_f32")->elem_type, GGUFType::FLOAT32);

    EXPECT_FALSE(f->get_int("absent").has_value());
    EXPECT_EQ(f->get_string_array("absent"), nullptr);
    EXPECT_THROW(f->get_int("str"), Error);
    EXPECT_THROW(f->get_int("f32"), Error);
    EXPECT_THROW(f->get_string("u8"), Error);
    EXPECT_THROW(f->get_bool("u8"), Error);
    EXPECT_THROW(f->get_float("arr_f32"), Error);
    EXPECT_THROW(f->get_string_array("arr_i32"), Error);
    EXPECT_THROW(f->get_number_array("arr_str"), Error);
  }
}

TEST(GGUF, TensorsPointIntoTheMapping) {
  GGUFBuilder g = two_tensor_file();
  std::string p = write_temp("tensors", g.b);
  auto f = GGUFFile::open(p);
  std::filesystem::remove(p);  // the mapping stays valid after unlink
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  const TensorRef* a = f->find_tensor("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, GGMLType::F32);
  EXPECT_EQ(a->n_dims, 2);
  EXPECT_EQ(a->ne[0], 4);
  EXPECT_EQ(a->ne[1], 2);
  EXPECT_EQ(a->ne[2], 1);
  EXPECT_EQ(a->nbytes, 32u);
  float v[8];
  std::memcpy(v, a->data, sizeof v);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(v[k], float(k));
  const TensorRef* b = f->find_tensor("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, GGMLType::Q4_0);
  EXPECT_EQ(b->nbytes, 18u);
  EXPECT_EQ(b->data, a->data + 32);
  EXPECT_EQ(b->data[0], 0xAB);
  EXPECT_EQ(f->find_tensor("c.weight"), nullptr);
}

TEST(GGUF, CustomAlignment) {
  GGUFBuilder g;
  g.header(1, 1).key("general.alignment", GGUFType::UINT32).put<uint32_t>(64);
  g.tensor("x", {3}, 0, 0).pad_to(64).put<float>(1).put<float>(2).put<float>(3);
  auto buf = g.b;
  EXPECT_EQ(gguf_validate_buffer(buf.data(), buf.size()), 1u);

  GGUFBuilder bad;  // offset 32 is aligned for the default but not for 64
  bad.header(1, 1).key("general.alignment", GGUFType::UINT32).put<uint32_t>(64);
  bad.tensor("x", {3}, 0, 32).pad_to(64).bytes(64, 0);
  expect_error(bad.b, "alignment");

  for (uint32_t a : {0u, 3u, 48u}) {
    GGUFBuilder h;
    h.header(0, 1).key("general.alignment", GGUFType::UINT32).put<uint32_t>(a);
    expect_error(h.b, "power of two");
  }
  GGUFBuilder wrong_type;
  wrong_type.header(0, 1).key("general.alignment", GGUFType::UINT64).put<uint64_t>(32);
  expect_error(wrong_type.b, "general.alignment");
}

TEST(GGUF, BadInputsThrow) {
  struct Case {
    const char* what;
    std::function<std::vector<uint8_t>()> make;
    const char* needle;
  };
  auto base = [] { return two_tensor_file().b; };
  auto kv_file = [](GGUFType t, std::function<void(GGUFBuilder&)> body) {
    GGUFBuilder g;
    g.header(0, 1).key("k", t);
    body(g);
    return g.b;
  };
  std::vector<Case> cases = {
      {"empty", [] { return std::vector<uint8_t>{}; }, "truncated"},
      {"bad magic", [&] { auto b = base(); b[0] = 'X'; return b; }, "magic"},
      {"short header", [&] { auto b = base(); b.resize(10); return b; }, "truncated"},
      {"version 1", [] { GGUFBuilder g; g.header(0, 0, 1); return g.b; }, "version 1"},
      {"version 4", [] { GGUFBuilder g; g.header(0, 0, 4); return g.b; }, "version 4"},
      {"byte-swapped", [] { GGUFBuilder g; g.header(0, 0, 0x03000000); return g.b; }, "byte-swapped"},
      {"absurd tensor count", [] { GGUFBuilder g; g.header(1ull << 60, 0); return g.b; }, "tensor count"},
      {"absurd kv count", [] { GGUFBuilder g; g.header(0, ~0ull); return g.b; }, "kv count"},
      {"absurd string length",
       [] { GGUFBuilder g; g.header(0, 1).put<uint64_t>(1ull << 62); g.bytes(32, 'a'); return g.b; },
       "metadata key length 4611686018427387904"},
      {"absurd array length",
       [&] {
         return kv_file(GGUFType::ARRAY, [](GGUFBuilder& g) {
           g.put<uint32_t>(uint32_t(GGUFType::INT32)).put<uint64_t>(1ull << 61).bytes(16, 0);
         });
       },
       "array length"},
      {"absurd string array length",
       [&] {
         return kv_file(GGUFType::ARRAY, [](GGUFBuilder& g) {
           g.put<uint32_t>(uint32_t(GGUFType::STRING)).put<uint64_t>(~0ull).bytes(16, 0);
         });
       },
       "array length"},
      {"nested array",
       [&] {
         return kv_file(GGUFType::ARRAY, [](GGUFBuilder& g) {
           g.put<uint32_t>(uint32_t(GGUFType::ARRAY)).put<uint64_t>(0);
         });
       },
       "nested"},
      {"unknown array elem type",
       [&] {
         return kv_file(GGUFType::ARRAY, [](GGUFBuilder& g) { g.put<uint32_t>(13).put<uint64_t>(0); });
       },
       "unknown value type 13"},
      {"unknown value type",
       [] { GGUFBuilder g; g.header(0, 1).str("k").put<uint32_t>(99).put<uint64_t>(0); return g.b; },
       "unknown value type 99"},
      {"bad bool", [&] { return kv_file(GGUFType::BOOL, [](GGUFBuilder& g) { g.put<uint8_t>(2); }); },
       "bool"},
      {"truncated value", [&] { return kv_file(GGUFType::UINT64, [](GGUFBuilder& g) { g.put<uint32_t>(1); }); },
       "truncated"},
      {"empty key", [] { GGUFBuilder g; g.header(0, 1).key("", GGUFType::UINT8).put<uint8_t>(0); return g.b; },
       "empty"},
      {"duplicate key",
       [] {
         GGUFBuilder g;
         g.header(0, 2).key("a", GGUFType::UINT8).put<uint8_t>(0).key("a", GGUFType::UINT8).put<uint8_t>(1);
         return g.b;
       },
       "duplicate metadata key 'a'"},
      {"unknown tensor type", [] { return two_tensor_file(4).b; }, "unknown ggml type id 4"},
      {"unknown tensor type 1000", [] { return two_tensor_file(1000).b; }, "type id 1000"},
      {"misaligned offset", [] { return two_tensor_file(2, 33).b; }, "not a multiple of the alignment"},
      {"n_dims 5", [] { return two_tensor_file(2, 32, 5).b; }, "n_dims 5"},
      {"n_dims huge", [] { return two_tensor_file(2, 32, ~0u).b; }, "n_dims 4294967295"},
      {"n_dims 0",
       [] { GGUFBuilder g; g.header(1, 0).str("x").put<uint32_t>(0).put<uint32_t>(0).put<uint64_t>(0); return g.b; },
       "n_dims 0"},
      {"tensor past end", [] { return two_tensor_file(2, 64).b; }, "beyond the end"},
      {"truncated data", [&] { auto b = base(); b.resize(b.size() - 1); return b; }, "truncated"},
      {"data section past end",
       [] { GGUFBuilder g; g.header(1, 0).tensor("x", {0}, 0, 0); return g.b; },
       "past the end"},
      {"duplicate tensor",
       [] {
         GGUFBuilder g;
         g.header(2, 0).tensor("x", {1}, 0, 0).tensor("x", {1}, 0, 32).pad_to(32).bytes(64, 0);
         return g.b;
       },
       "duplicate tensor name 'x'"},
      {"empty tensor name", [] { GGUFBuilder g; g.header(1, 0).tensor("", {1}, 0, 0).pad_to(32).bytes(4, 0); return g.b; },
       "empty name"},
      {"long tensor name",
       [] { GGUFBuilder g; g.header(1, 0).tensor(std::string(64, 'n'), {1}, 0, 0).pad_to(32).bytes(4, 0); return g.b; },
       "64 bytes"},
      {"negative dim", [] { GGUFBuilder g; g.header(1, 0).tensor("x", {~0ull}, 0, 0); return g.b; }, "negative"},
      {"dim product overflow",
       [] { GGUFBuilder g; g.header(1, 0).tensor("x", {1ull << 40, 1ull << 40}, 0, 0); return g.b; },
       "overflow"},
      {"byte size overflow",
       [] { GGUFBuilder g; g.header(1, 0).tensor("x", {1ull << 62}, 0, 0); return g.b; }, "overflow"},
      {"block size", [] { GGUFBuilder g; g.header(1, 0).tensor("x", {33}, 2, 0).pad_to(32).bytes(64, 0); return g.b; },
       "block size"},
      {"control chars in key",
       [] { GGUFBuilder g; g.header(0, 1).key("a\nb", GGUFType::BOOL).put<uint8_t>(7); return g.b; },
       "a\\x0ab"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    expect_error(c.make(), c.needle);
  }
}

TEST(GGUF, EveryPrefixOfAValidFileIsHandled) {
  // Truncation at any byte must be a clean Error (or, for prefixes that end inside tensor data,
  // never a read past the buffer: ASan checks that).
  auto full = two_tensor_file().b;
  EXPECT_EQ(gguf_validate_buffer(full.data(), full.size()), 2u);
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    EXPECT_THROW(gguf_validate_buffer(prefix.data(), prefix.size()), Error) << n;
  }
}

TEST(GGUF, OpenErrorsNameTheFile) {
  std::string missing = temp_path("does_not_exist.gguf");
  try {
    GGUFFile::open(missing);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos);
  }
  auto b = two_tensor_file().b;
  b[0] = 'X';
  std::string p = write_temp("badmagic.gguf", b);
  try {
    GGUFFile::open(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), p + ": not a GGUF file (bad magic)");
  }
  std::filesystem::remove(p);
}
