#include "common.h"

#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "util/error.h"
#include "util/log.h"
#ifdef SQUEEZE_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace squeeze::cli {

void add_model_flags(Args& a, bool model_required) {
  a.value("-m", "--model", "PATH",
          model_required ? "model: a .gguf file or a Hugging Face folder"
                         : "model: a .gguf file or a Hugging Face folder (default: Gemma 3 270M Q4_K_M)");
  a.value("-t", "--threads", "N", "CPU threads", std::to_string(std::max(1u, std::thread::hardware_concurrency())));
  a.value("", "--kv-type", "TYPE", "KV cache element type: f16 or f32", "f16");
  a.value("", "--device", "DEV", "device to run on: cuda (GPU 0), cpu, or auto (cuda when this build has it and a GPU is present)", "auto");
  a.value("", "--numerics", "MODE",
          "CPU arithmetic to reproduce: llamacpp (llama.cpp's x86 AVX2 CPU kernels, op for op) or exact "
          "(reference arithmetic, for comparisons with transformers); --device cpu only",
          "llamacpp");
}

std::unique_ptr<Tokenizer> load_tokenizer(const ModelFile& f) {
  if (f.gguf()) return Tokenizer::from_gguf(*f.gguf());
  struct stat st {};
  if (::stat((f.path() + "/tokenizer.json").c_str(), &st) != 0) return nullptr;
  return Tokenizer::from_hf_dir(f.path());
}

std::string resolve_device(const std::string& device) {
  if (device != "auto") return device;
#ifdef SQUEEZE_HAVE_CUDA
  // Starting the CUDA runtime costs ~200 MB of resident memory even where it then finds no GPU,
  // so it is asked only where an NVIDIA driver is loaded.
  struct stat st {};
  const bool driver = ::stat("/dev/nvidiactl", &st) == 0 || ::stat("/proc/driver/nvidia/version", &st) == 0;
  if (driver && cuda_available()) return "cuda";
#endif
  return "cpu";
}

std::unique_ptr<Backend> make_backend(const std::string& device, int threads, Numerics numerics) {
  if (device == "cpu") return std::make_unique<CpuBackend>(threads, numerics);
  if (device == "cuda") {
#ifdef SQUEEZE_HAVE_CUDA
    return make_cuda_backend(0);  // throws Error saying why when there is no GPU
#else
    throw Error("--device cuda: this build of squeeze has no CUDA backend (nvcc was not found when it was built)");
#endif
  }
  throw Error(fmt("--device must be cuda or cpu, not '%s'", device.c_str()));
}

LoadedModel load_model(const Args& a, bool need_tokenizer) {
  LoadedModel lm;
  const std::string device = resolve_device(a.str("--device"));
  if (device != "cpu" && device != "cuda") throw Error(fmt("--device must be cuda, cpu or auto, not '%s'", device.c_str()));
  const std::string kv = a.str("--kv-type");
  if (kv == "f16") lm.kv_type = GGMLType::F16;
  else if (kv == "f32") lm.kv_type = GGMLType::F32;
  else throw Error(fmt("--kv-type must be f16 or f32, not '%s'", kv.c_str()));
  const std::string num = a.str("--numerics");
  Numerics numerics;
  if (num == "llamacpp") numerics = Numerics::llamacpp;
  else if (num == "exact") numerics = Numerics::exact;
  else throw Error(fmt("--numerics must be llamacpp or exact, not '%s'", num.c_str()));
  const long long threads = a.integer("--threads");
  if (threads < 1 || threads > 1024) throw Error("--threads must be between 1 and 1024");

  const std::string path = a.has("--model") ? a.str("--model") : default_model_path();
  const auto t0 = std::chrono::steady_clock::now();
  lm.model = Model::load(path);
  lm.tokenizer = load_tokenizer(lm.model->file());
  if (need_tokenizer && !lm.tokenizer) throw Error(fmt("%s: no tokenizer (tokenizer.json) found", path.c_str()));
  lm.backend = make_backend(device, int(threads), numerics);
  lm.device = device;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const HParams& hp = lm.model->hparams();
  if (device == "cpu")
    SQZ_LOG("squeeze: loaded %s (%s, %d layers, %d embd, vocab %d) in %.0f ms, %lld threads\n", path.c_str(),
            arch_name(hp.arch), hp.n_layer, hp.n_embd, hp.n_vocab, ms, threads);
  else
    SQZ_LOG("squeeze: loaded %s (%s, %d layers, %d embd, vocab %d) in %.0f ms, device %s\n", path.c_str(),
            arch_name(hp.arch), hp.n_layer, hp.n_embd, hp.n_vocab, ms, device.c_str());
  return lm;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == ',' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i || j - i > 9) throw Error(fmt("bad token id list near '%s'", s.substr(i, 16).c_str()));
    out.push_back(int32_t(std::stol(s.substr(i, j - i))));
    i = j;
  }
  return out;
}

void add_sampling_flags(Args& a) {
  a.value("", "--temp", "T", "temperature; 0 is greedy", "0.8");
  a.value("", "--top-k", "K", "keep the K most likely tokens (0: off)", "40");
  a.value("", "--top-p", "P", "nucleus sampling threshold (1: off)", "0.95");
  a.value("", "--min-p", "P", "drop tokens below P x the top probability (0: off)", "0.05");
  a.value("", "--repeat-penalty", "X", "repetition penalty over the last --repeat-last-n tokens (1: off)", "1.0");
  a.value("", "--repeat-last-n", "N", "tokens the penalties look back over (-1: all)", "64");
  a.value("", "--presence-penalty", "X", "presence penalty (0: off)", "0");
  a.value("", "--frequency-penalty", "X", "frequency penalty (0: off)", "0");
  a.value("", "--seed", "S", "random seed (default: random)");
}

SamplingParams sampling_from(const Args& a) {
  SamplingParams sp;
  sp.temperature = float(a.number("--temp"));
  sp.top_k = int32_t(a.integer("--top-k"));
  sp.top_p = float(a.number("--top-p"));
  sp.min_p = float(a.number("--min-p"));
  sp.repetition_penalty = float(a.number("--repeat-penalty"));
  sp.penalty_last_n = int32_t(a.integer("--repeat-last-n"));
  sp.presence_penalty = float(a.number("--presence-penalty"));
  sp.frequency_penalty = float(a.number("--frequency-penalty"));
  if (a.has("--seed")) sp.seed = uint64_t(a.integer("--seed"));
  return sp;
}

}  // namespace squeeze::cli
