#pragma once
// Hugging Face safetensors reader: a single file or a sharded set described by
// model.safetensors.index.json. Tensors are exposed as TensorRefs in ggml dimension order
// (PyTorch shape reversed) with their Hugging Face names unchanged.
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/tensor_ref.h"
#include "util/mapped_file.h"

namespace squeeze {

class SafetensorsSet {
 public:
  void prefetch() const {
    for (const auto& m : maps_) m->prefetch();
  }
  // dir holds model.safetensors, or model.safetensors.index.json plus its shards.
  // Throws Error naming the file and problem (bad header, dtype, overlapping or out-of-range
  // offsets, duplicate names, a shard the index names that is missing, ...).
  static std::unique_ptr<SafetensorsSet> open_dir(const std::string& dir);
  static std::unique_ptr<SafetensorsSet> open_file(const std::string& path);

  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find(std::string_view name) const;

 private:
  std::vector<std::unique_ptr<MappedFile>> maps_;
  std::vector<TensorRef> tensors_;
  std::unordered_map<std::string, size_t> index_;
  void add_file(const std::string& path);
};

// Validates one safetensors file image in memory (for the fuzzer); throws Error on any defect.
size_t safetensors_validate_buffer(const uint8_t* data, size_t size);

}  // namespace squeeze
