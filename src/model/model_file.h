#pragma once
// A model on disk, whichever format it came in: a GGUF file, or a Hugging Face folder
// (config.json + safetensors). Exposes hyperparameters and weights under GGUF tensor names, so
// everything above this layer sees one naming scheme.
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/hparams.h"

namespace squeeze {

class ModelFile {
 public:
  // path: a .gguf file or a folder with config.json. Throws Error naming the problem.
  static std::unique_ptr<ModelFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  bool is_gguf() const { return gguf_ != nullptr; }
  const GGUFFile* gguf() const { return gguf_.get(); }
  // Starts reading all weights in from disk (see MappedFile::prefetch).
  void prefetch() const;  // nullptr for a Hugging Face folder
  const HParams& hparams() const { return hp_; }
  HParams& mutable_hparams() { return hp_; }

  // Tensors under GGUF names (Hugging Face names are translated).
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find(std::string_view gguf_name) const;

 private:
  static std::unique_ptr<ModelFile> open_unchecked(const std::string& path);
  std::string path_;
  std::unique_ptr<GGUFFile> gguf_;
  std::unique_ptr<SafetensorsSet> st_;
  HParams hp_;
  std::vector<TensorRef> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// The GGUF name of a Hugging Face tensor name ("" if it is not part of the language model).
std::string hf_to_gguf_name(const std::string& hf_name, Arch arch);

}  // namespace squeeze
