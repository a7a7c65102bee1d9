#pragma once
// What the model-running subcommands share: the model/threads/KV flags and loading.
#include <memory>
#include <string>

#include "args.h"
#include "engine/sampler.h"
#include "backend/cpu/cpu_backend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace squeeze::cli {

// Adds -m, -t, --kv-type (and --device) to a command's flags.
void add_model_flags(Args& a, bool model_required);

// --temp, --top-k, --top-p, --min-p, penalties and --seed, as `run` and `chat` take them.
void add_sampling_flags(Args& a);
SamplingParams sampling_from(const Args& a);

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;  // nullptr for a Hugging Face folder without tokenizer.json
  std::unique_ptr<Backend> backend;  // CPU or CUDA (--device)
  std::string device;                // "cpu" or "cuda"
  GGMLType kv_type = GGMLType::F16;
};

// --device auto: "cuda" when this build has the CUDA backend and a GPU is present, else "cpu";
// other values are returned as they are.
std::string resolve_device(const std::string& device);

// The backend for --device: "cpu" (threads, numerics) or "cuda" (GPU 0; numerics does not apply).
// Throws Error when the device is unknown, or cuda is asked for without a CUDA build or a GPU.
std::unique_ptr<Backend> make_backend(const std::string& device, int threads, Numerics numerics);

// Loads the model named by -m (or the default model), its tokenizer and the backend.
LoadedModel load_model(const Args& a, bool need_tokenizer);

// The tokenizer of a model file (GGUF metadata, or tokenizer.json in a Hugging Face folder);
// nullptr when a Hugging Face folder has none.
std::unique_ptr<Tokenizer> load_tokenizer(const ModelFile& f);

// Parses "1 2 3" / "1,2,3" into token ids; throws Error on anything else.
std::vector<int32_t> parse_ids(const std::string& s);

}  // namespace squeeze::cli
