#include "model/model_file.h"

#include <sys/stat.h>

#include <cstring>
#include <regex>

#include "util/error.h"
#include "util/mapped_file.h"

namespace squeeze {

std::string hf_to_gguf_name(const std::string& hf_name, Arch arch) {
  std::string n = hf_name;
  // Multimodal Gemma 3 checkpoints nest the text model.
  for (const char* prefix : {"language_model.model.", "model.language_model.", "language_model."}) {
    if (n.rfind(prefix, 0) == 0) {
      n = "model." + n.substr(std::strlen(prefix));
      break;
    }
  }
  if (n == "model.embed_tokens.weight") return "token_embd.weight";
  if (n == "model.norm.weight") return "output_norm.weight";
  if (n == "lm_head.weight") return "output.weight";
  static const std::regex layer_re(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (!std::regex_match(n, m, layer_re)) return "";
  const std::string blk = "blk." + m[1].str() + ".";
  const std::string rest = m[2].str();
  static const std::pair<const char*, const char*> common[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
  };
  for (const auto& [hf, gg] : common)
    if (rest == hf) return blk + gg;
  // The same Hugging Face name means the pre-FFN norm in Llama/Qwen but the attention output norm
  // in Gemma 3.
  if (rest == "post_attention_layernorm.weight")
    return blk + (arch == Arch::gemma3 ? "post_attention_norm.weight" : "ffn_norm.weight");
  return "";
}

std::unique_ptr<ModelFile> ModelFile::open(const std::string& path) {
  try {
    return open_unchecked(path);
  } catch (const Error& e) {
    // Name the model in every message (readers already do; hyperparameter checks do not).
    const std::string msg = e.what();
    if (msg.find(path) != std::string::npos) throw;
    throw Error(path + ": " + msg);
  }
}

std::unique_ptr<ModelFile> ModelFile::open_unchecked(const std::string& path) {
  auto mf = std::unique_ptr<ModelFile>(new ModelFile());
  mf->path_ = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error(fmt("model '%s' does not exist", path.c_str()));
  if (S_ISDIR(st.st_mode)) {
    const std::string cfg = path + "/config.json";
    if (::stat(cfg.c_str(), &st) != 0)
      throw Error(fmt("'%s' is a folder without config.json (expected a Hugging Face model folder)", path.c_str()));
    mf->hp_ = hparams_from_hf_config(read_text_file(cfg));
    mf->st_ = SafetensorsSet::open_dir(path);
    for (const TensorRef& t : mf->st_->tensors()) {
      std::string name = hf_to_gguf_name(t.name, mf->hp_.arch);
      if (name.empty()) continue;  // vision tower, rotary buffers and the like
      TensorRef r = t;
      r.name = name;
      if (mf->index_.count(name)) throw Error(fmt("%s: tensor '%s' appears twice", path.c_str(), t.name.c_str()));
      mf->index_[name] = mf->tensors_.size();
      mf->tensors_.push_back(std::move(r));
    }
  } else {
    mf->gguf_ = GGUFFile::open(path);
    mf->hp_ = hparams_from_gguf(*mf->gguf_);
    mf->tensors_ = mf->gguf_->tensors();
    for (size_t i = 0; i < mf->tensors_.size(); ++i) mf->index_[mf->tensors_[i].name] = i;
  }
  return mf;
}

const TensorRef* ModelFile::find(std::string_view gguf_name) const {
  auto it = index_.find(std::string(gguf_name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void ModelFile::prefetch() const {
  if (gguf_) gguf_->prefetch();
  if (st_) st_->prefetch();
}

}  // namespace squeeze
