// safetensors reader: single files, sharded folders with an index, and malformed headers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "util/error.h"

using namespace squeeze;
namespace fs = std::filesystem;

namespace {

// A safetensors image: u64 header length, the JSON header as given, then `data_bytes` bytes
// whose value is their index (so tests can see which bytes a tensor points at).
std::vector<uint8_t> st_image(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8);
  uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  b.insert(b.end(), header.begin(), header.end());
  for (size_t k = 0; k < data_bytes; ++k) b.push_back(uint8_t(k));
  return b;
}

void write_file(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A fresh empty folder per test, removed at the end.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("squeeze_test_st_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void expect_error(const std::vector<uint8_t>& buf, const std::string& needle) {
  try {
    safetensors_validate_buffer(buf.data(), buf.size());
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

const char* kGoodHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("w.f32":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"("w.f16":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
    R"("w.bf16":{"dtype":"BF16","shape":[1,2,2],"data_offsets":[32,40]},)"
    R"("w.empty":{"dtype":"F32","shape":[0,5],"data_offsets":[40,40]}})";

std::vector<uint8_t> good_image() { return st_image(kGoodHeader, 40); }

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t b, uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(b) + "," + std::to_string(e) + "]}";
}

}  // namespace

TEST(Safetensors, SingleFileShapesAreReversed) {
  TempDir d("single");
  write_file(d.path / "model.safetensors", good_image());
  auto s = SafetensorsSet::open_dir(d.path.string());
  ASSERT_EQ(s->tensors().size(), 4u);
  const TensorRef* f32 = s->find("w.f32");
  ASSERT_NE(f32, nullptr);
  EXPECT_EQ(f32->type, GGMLType::F32);
  EXPECT_EQ(f32->n_dims, 2);
  EXPECT_EQ(f32->ne[0], 3);  // PyTorch [2, 3] -> ggml {3, 2}
  EXPECT_EQ(f32->ne[1], 2);
  EXPECT_EQ(f32->ne[2], 1);
  EXPECT_EQ(f32->nbytes, 24u);
  EXPECT_EQ(f32->data[0], 0);
  const TensorRef* f16 = s->find("w.f16");
  ASSERT_NE(f16, nullptr);
  EXPECT_EQ(f16->type, GGMLType::F16);
  EXPECT_EQ(f16->ne[0], 4);
  EXPECT_EQ(f16->data - f32->data, 24);
  EXPECT_EQ(f16->data[0], 24);
  const TensorRef* bf = s->find("w.bf16");
  ASSERT_NE(bf, nullptr);
  EXPECT_EQ(bf->type, GGMLType::BF16);
  EXPECT_EQ(bf->n_dims, 3);
  EXPECT_EQ(bf->ne[0], 2);
  EXPECT_EQ(bf->ne[1], 2);
  EXPECT_EQ(bf->ne[2], 1);
  EXPECT_EQ(s->find("w.empty")->n_elements(), 0);
  EXPECT_EQ(s->find("__metadata__"), nullptr);

  auto same = SafetensorsSet::open_file((d.path / "model.safetensors").string());
  EXPECT_EQ(same->tensors().size(), 4u);
  auto img = good_image();
  EXPECT_EQ(safetensors_validate_buffer(img.data(), img.size()), 4u);
}

TEST(Safetensors, ShardedFolder) {
  TempDir d("sharded");
  write_file(d.path / "model-00001-of-00002.safetensors",
             st_image("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F16", "[2]", 8, 12) + "}", 12));
  write_file(d.path / "model-00002-of-00002.safetensors",
             st_image("{" + entry("c", "BF16", "[3,1]", 0, 6) + "}", 6));
  write_text(d.path / "model.safetensors.index.json",
             R"({"metadata":{"total_size":18},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
             R"("b":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  auto s = SafetensorsSet::open_dir(d.path.string());
  EXPECT_EQ(s->tensors().size(), 3u);
  ASSERT_NE(s->find("c"), nullptr);
  EXPECT_EQ(s->find("c")->ne[0], 1);
  EXPECT_EQ(s->find("c")->ne[1], 3);
}

TEST(Safetensors, FolderErrors) {
  auto expect_dir_error = [](const fs::path& dir, const std::string& needle) {
    try {
      SafetensorsSet::open_dir(dir.string());
      ADD_FAILURE() << "expected an error containing '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  {
    TempDir d("empty");
    expect_dir_error(d.path, "no model.safetensors");
  }
  {
    TempDir d("missing_shard");
    write_file(d.path / "s1.safetensors", st_image("{" + entry("a", "F32", "[1]", 0, 4) + "}", 4));
    write_text(d.path / "model.safetensors.index.json",
               R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
    expect_dir_error(d.path, "shard 's2.safetensors' named by the index is missing");
  }
  {
    TempDir d("missing_tensor");
    write_file(d.path / "s1.safetensors", st_image("{" + entry("a", "F32", "[1]", 0, 4) + "}", 4));
    write_text(d.path / "model.safetensors.index.json",
               R"({"weight_map":{"a":"s1.safetensors","zz":"s1.safetensors"}})");
    expect_dir_error(d.path, "tensor 'zz' listed in the index is missing from shard 's1.safetensors'");
  }
  {
    TempDir d("wrong_shard");
    write_file(d.path / "s1.safetensors", st_image("{" + entry("a", "F32", "[1]", 0, 4) + "}", 4));
    write_file(d.path / "s2.safetensors", st_image("{" + entry("b", "F32", "[1]", 0, 4) + "}", 4));
    write_text(d.path / "model.safetensors.index.json",
               R"({"weight_map":{"a":"s2.safetensors","b":"s1.safetensors"}})");
    expect_dir_error(d.path, "missing from shard");
  }
  {
    TempDir d("dup_across");
    write_file(d.path / "s1.safetensors", st_image("{" + entry("a", "F32", "[1]", 0, 4) + "}", 4));
    write_file(d.path / "s2.safetensors", st_image("{" + entry("a", "F32", "[1]", 0, 4) + "}", 4));
    write_text(d.path / "model.safetensors.index.json",
               R"({"weight_map":{"a":"s1.safetensors","x":"s2.safetensors"}})");
    expect_dir_error(d.path, "duplicate tensor name 'a'");
  }
  {
    TempDir d("traversal");
    write_text(d.path / "model.safetensors.index.json", R"({"weight_map":{"a":"../x.safetensors"}})");
    expect_dir_error(d.path, "not a file in the model folder");
  }
  {
    TempDir d("bad_index");
    write_text(d.path / "model.safetensors.index.json", R"({"weight_map":)");
    expect_dir_error(d.path, "invalid JSON");
  }
  {
    TempDir d("no_weight_map");
    write_text(d.path / "model.safetensors.index.json", R"({"metadata":{}})");
    expect_dir_error(d.path, "weight_map");
  }
}

TEST(Safetensors, BadHeadersThrow) {
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* needle;
  };
  auto hdr_len_beyond = good_image();
  uint64_t huge = 1ull << 40;
  std::memcpy(hdr_len_beyond.data(), &huge, 8);
  auto trunc = good_image();
  trunc.resize(trunc.size() - 1);
  std::vector<Case> cases = {
      {"too small", {1, 2, 3}, "truncated"},
      {"header length beyond file", hdr_len_beyond, "header length"},
      {"invalid json", st_image("{\"a\": {", 0), "invalid JSON"},
      {"not an object", st_image("[1,2]", 0), "not a JSON object"},
      {"entry not object", st_image(R"({"a": 5})", 0), "not an object"},
      {"missing dtype", st_image(R"({"a": {"shape":[1],"data_offsets":[0,4]}})", 4), "dtype"},
      {"missing shape", st_image(R"({"a": {"dtype":"F32","data_offsets":[0,4]}})", 4), "shape"},
      {"bad offsets form", st_image(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
       "data_offsets"},
      {"bad dtype", st_image("{" + entry("a", "I64", "[1]", 0, 8) + "}", 8), "unsupported dtype 'I64'"},
      {"offsets beyond file", st_image("{" + entry("a", "F32", "[4]", 0, 16) + "}", 8), "beyond the end"},
      {"truncated data", trunc, "truncated"},
      {"size mismatch", st_image("{" + entry("a", "F32", "[3]", 0, 8) + "}", 8), "size mismatch"},
      {"begin after end", st_image("{" + entry("a", "F32", "[0]", 8, 4) + "}", 8), "begin"},
      {"negative offset", st_image(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8),
       "not non-negative"},
      {"negative dim", st_image("{" + entry("a", "F32", "[-1]", 0, 0) + "}", 0), "shape entry 0"},
      {"float dim", st_image("{" + entry("a", "F32", "[1.5]", 0, 0) + "}", 0), "shape entry 0"},
      {"five dims", st_image("{" + entry("a", "F32", "[1,1,1,1,1]", 0, 4) + "}", 4), "5 dimensions"},
      {"numel overflow",
       st_image("{" + entry("a", "F32", "[4294967296,4294967296,4294967296]", 0, 0) + "}", 0), "overflow"},
      {"bytes overflow", st_image("{" + entry("a", "F32", "[4611686018427387904]", 0, 0) + "}", 0),
       "overflow"},
      {"duplicate names",
       st_image("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 4, 8) + "}", 8),
       "duplicate entry 'a'"},
      {"overlapping",
       st_image("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", 12),
       "overlap"},
      {"same range", st_image("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 0, 4) + "}", 4),
       "overlap"},
      {"deep nesting", st_image(std::string(100000, '[') + std::string(100000, ']'), 0), "nests deeper"},
      {"control chars", st_image("{" + entry("a\\nb", "Q9", "[1]", 0, 4) + "}", 4), "a\\x0ab"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    expect_error(c.bytes, c.needle);
  }
}

TEST(Safetensors, EveryPrefixOfAValidFileIsHandled) {
  auto full = good_image();
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    EXPECT_THROW(safetensors_validate_buffer(prefix.data(), prefix.size()), Error) << n;
  }
}
