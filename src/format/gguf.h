#pragma once
// GGUF v2/v3 reader over a memory map. Every count, length, type id, dimension and offset is
// validated before use; any problem throws Error with one line naming the file and the problem.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/tensor_ref.h"
#include "util/mapped_file.h"

namespace squeeze {

enum class GGUFType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GGUFType t);

// One metadata value. Scalars live in the matching field; arrays keep their element type and
// either strings (STRING elements) or numbers (every numeric/bool element widened).
struct GGUFValue {
  GGUFType type = GGUFType::UINT8;
  GGUFType elem_type = GGUFType::UINT8;  // for ARRAY
  int64_t i = 0;        // any integer or bool scalar (UINT64 values above INT64_MAX are kept in u)
  uint64_t u = 0;       // UINT64 scalar
  double f = 0;         // FLOAT32/FLOAT64 scalar
  std::string s;        // STRING scalar
  std::vector<std::string> strs;  // ARRAY of STRING
  std::vector<double> nums;       // ARRAY of numbers or bools

  bool is_integer() const;
  bool is_float() const { return type == GGUFType::FLOAT32 || type == GGUFType::FLOAT64; }
  size_t array_size() const { return elem_type == GGUFType::STRING ? strs.size() : nums.size(); }
};

struct GGUFKV {
  std::string key;
  GGUFValue value;
};

class GGUFFile {
 public:
  // Opens, maps and validates the file; throws Error("<path>: <problem>") on any defect.
  static std::unique_ptr<GGUFFile> open(const std::string& path);

  const std::string& path() const { return map_->path(); }
  void prefetch() const { map_->prefetch(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  size_t file_size() const { return map_->size(); }

  const std::vector<GGUFKV>& metadata() const { return kvs_; }
  const GGUFValue* find(std::string_view key) const;

  // Typed accessors: nullopt when the key is absent; Error when present with an unusable type.
  std::optional<int64_t> get_int(std::string_view key) const;     // any integer type
  std::optional<double> get_float(std::string_view key) const;    // FLOAT32/FLOAT64 or integer
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  const std::vector<std::string>* get_string_array(std::string_view key) const;  // nullptr if absent
  const std::vector<double>* get_number_array(std::string_view key) const;       // nullptr if absent

  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find_tensor(std::string_view name) const;

 private:
  GGUFFile() = default;
  std::unique_ptr<MappedFile> map_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<GGUFKV> kvs_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<TensorRef> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Parses GGUF bytes already in memory (used by the fuzzer); same validation as GGUFFile::open.
// Returns the number of tensors; throws Error on any defect.
size_t gguf_validate_buffer(const uint8_t* data, size_t size);

}  // namespace squeeze
