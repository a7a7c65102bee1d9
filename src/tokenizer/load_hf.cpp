// Tokenizer::from_hf_dir: maps a Hugging Face tokenizer.json (models.md 6) onto the pipeline of
// tokenizer_impl.h. Only what the supported model families use is accepted; any other component
// is an error naming it, never silently skipped, because skipping changes the ids.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "tokenizer/hf_json.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace squeeze::tok {

using json = nlohmann::json;

namespace {

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A companion file's JSON object; {} when the text is empty (file absent).
json parse_object(const std::string& text, const char* name) {
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(fmt("%s is not a JSON object", name));
  return j;
}

std::string read_if_exists(const std::string& path) {
  return file_exists(path) ? read_text_file(path) : std::string();
}

// An integer field. nlohmann would convert a float such as 1e30 with undefined behavior, so
// anything but an integer in range is an error here. Unsigned values beyond int64 become -1.
int64_t json_int(const json& x, const char* what) {
  if (x.is_number_unsigned()) {
    uint64_t u = x.get<uint64_t>();
    return u <= uint64_t(std::numeric_limits<int64_t>::max()) ? int64_t(u) : -1;
  }
  if (!x.is_number_integer()) throw Error(fmt("%s is not an integer", what));
  return x.get<int64_t>();
}

std::string str_or(const json& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}
bool bool_or(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

// A tokenizer.json "pattern": {"String": s} or {"Regex": r}.
void read_pattern(const json& pat, std::string& literal, std::shared_ptr<const Regex>& regex) {
  if (pat.contains("Regex")) regex = std::make_shared<const Regex>(pat.at("Regex").get<std::string>());
  else if (pat.contains("String")) literal = pat.at("String").get<std::string>();
  else throw Error("pattern is neither String nor Regex");
}

void read_normalizer(const json& j, std::vector<Normalizer>& out) {
  if (j.is_null()) return;
  std::string type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const json& n : j.at("normalizers")) read_normalizer(n, out);
  } else if (type == "NFC") {
    out.push_back(Normalizer::nfc());
  } else if (type == "Prepend") {
    out.push_back(Normalizer::prepend(j.at("prepend").get<std::string>()));
  } else if (type == "Replace") {
    std::string literal;
    std::shared_ptr<const Regex> re;
    read_pattern(j.at("pattern"), literal, re);
    std::string content = j.at("content").get<std::string>();
    out.push_back(re ? Normalizer::replace_regex(re, content) : Normalizer::replace(literal, content));
  } else {
    throw Error(fmt("normalizer '%s' is not supported (supported: Sequence, NFC, Prepend, Replace)",
                    type.c_str()));
  }
}

SplitBehavior read_behavior(const std::string& b) {
  if (b == "Isolated") return SplitBehavior::isolated;
  if (b == "Removed") return SplitBehavior::removed;
  if (b == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (b == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (b == "Contiguous") return SplitBehavior::contiguous;
  throw Error(fmt("unknown Split behavior '%s'", b.c_str()));
}

// Metaspace's prefix rule: prepend_scheme in recent files, add_prefix_space in old ones.
PreTokenizer::Prepend read_prepend_scheme(const json& j) {
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
    std::string s = j["prepend_scheme"].get<std::string>();
    if (s == "always") return PreTokenizer::Prepend::always;
    if (s == "first") return PreTokenizer::Prepend::first;
    if (s == "never") return PreTokenizer::Prepend::never;
    throw Error(fmt("unknown Metaspace prepend_scheme '%s'", s.c_str()));
  }
  return bool_or(j, "add_prefix_space", true) ? PreTokenizer::Prepend::always
                                              : PreTokenizer::Prepend::never;
}

void read_pre_tokenizer(const json& j, std::vector<PreTokenizer>& out, bool& byte_level) {
  if (j.is_null()) return;
  std::string type = j.at("type").get<std::string>();
  PreTokenizer p;
  if (type == "Sequence") {
    for (const json& n : j.at("pretokenizers")) read_pre_tokenizer(n, out, byte_level);
    return;
  } else if (type == "Split") {
    p.kind = PreTokenizer::Kind::split;
    read_pattern(j.at("pattern"), p.literal, p.regex);
    p.behavior = read_behavior(j.at("behavior").get<std::string>());
    p.invert = bool_or(j, "invert", false);
  } else if (type == "ByteLevel") {
    p.kind = PreTokenizer::Kind::byte_level;
    p.add_prefix_space = bool_or(j, "add_prefix_space", true);
    if (bool_or(j, "use_regex", true)) p.regex = std::make_shared<const Regex>(kGpt2Regex);
    byte_level = true;
  } else if (type == "Metaspace") {
    p.kind = PreTokenizer::Kind::metaspace;
    p.replacement = str_or(j, "replacement", "\xE2\x96\x81");
    if (p.replacement.empty()) throw Error("Metaspace replacement is empty");
    p.prepend = read_prepend_scheme(j);
    p.split = bool_or(j, "split", true);
  } else if (type == "Digits") {
    p.kind = PreTokenizer::Kind::digits;
    p.individual_digits = bool_or(j, "individual_digits", false);
  } else {
    throw Error(fmt("pre-tokenizer '%s' is not supported (supported: Sequence, Split, ByteLevel, "
                    "Metaspace, Digits)", type.c_str()));
  }
  out.push_back(std::move(p));
}

// Ids of a token named in a post-processor: ["<s>", 1] pairs or TemplateProcessing entries.
void read_post_processor(const json& j, const Vocab& v, std::vector<int32_t>& prefix,
                         std::vector<int32_t>& suffix) {
  if (j.is_null()) return;
  std::string type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const json& p : j.at("processors")) read_post_processor(p, v, prefix, suffix);
  } else if (type == "ByteLevel") {
    // Offsets only; the ids are unchanged.
  } else if (type == "TemplateProcessing") {
    const json& specials = j.at("special_tokens");
    bool seen_text = false;
    for (const json& item : j.at("single")) {
      if (item.contains("Sequence")) {
        seen_text = true;
        continue;
      }
      std::string name = item.at("SpecialToken").at("id").get<std::string>();
      if (!specials.contains(name)) throw Error(fmt("TemplateProcessing names unknown token '%s'", name.c_str()));
      for (const json& id : specials.at(name).at("ids")) {
        int64_t x = json_int(id, "a TemplateProcessing id");
        if (x < 0 || x > std::numeric_limits<int32_t>::max() || !v.valid(int32_t(x)))
          throw Error(fmt("TemplateProcessing token '%s' has id %lld outside the vocabulary",
                          name.c_str(), (long long)x));
        (seen_text ? suffix : prefix).push_back(int32_t(x));
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto id_of = [&](const char* key) {
      int64_t x = json_int(j.at(key).at(1), "a post-processor id");
      if (x < 0 || x > std::numeric_limits<int32_t>::max() || !v.valid(int32_t(x))) throw Error(fmt("%s %s id outside the vocabulary", type.c_str(), key));
      return int32_t(x);
    };
    prefix.push_back(id_of("cls"));
    suffix.push_back(id_of("sep"));
  } else {
    throw Error(fmt("post-processor '%s' is not supported", type.c_str()));
  }
}

// Decoders only tell how pieces become text: GPT-2 byte map, or SentencePiece spelling with an
// optional leading-space strip (Strip decoder, or Metaspace with a prefix).
void read_decoder(const json& j, bool& byte_level, bool& strip) {
  if (j.is_null()) return;
  std::string type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const json& d : j.at("decoders")) read_decoder(d, byte_level, strip);
  } else if (type == "ByteLevel") {
    byte_level = true;
  } else if (type == "Strip") {
    if (str_or(j, "content", "") == " " && j.contains("start") && json_int(j["start"], "Strip start") >= 1)
      strip = true;
  } else if (type == "Metaspace") {
    if (read_prepend_scheme(j) != PreTokenizer::Prepend::never) strip = true;
  }
  // Replace(U+2581 -> " "), ByteFallback and Fuse are what sentencepiece pieces mean anyway.
}

// A token named in tokenizer_config.json: a string, or an AddedToken object with "content".
int32_t config_token(const json& cfg, const char* key, const Vocab& v) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return -1;
  if (it->is_string()) return v.find(it->get<std::string>());
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return v.find((*it)["content"].get<std::string>());
  return -1;
}

// config.json / generation_config.json ids: an integer or a list (the first is the EOS).
std::vector<int32_t> config_ids(const json& cfg, const char* key) {
  std::vector<int32_t> ids;
  auto it = cfg.find(key);
  if (it == cfg.end()) return ids;
  auto add = [&](const json& x) {
    if (!x.is_number_integer()) return;  // also covers unsigned
    int64_t v = json_int(x, key);
    if (v >= 0 && v <= std::numeric_limits<int32_t>::max()) ids.push_back(int32_t(v));
  };
  if (it->is_array()) for (const json& x : *it) add(x);
  else add(*it);
  return ids;
}

int32_t checked_id(const json& x, size_t limit, const char* what) {
  int64_t id = json_int(x, what);
  if (id < 0 || uint64_t(id) >= limit) throw Error(fmt("%s id %lld is out of range", what, (long long)id));
  return int32_t(id);
}

std::unique_ptr<Tokenizer> tokenizer_from_hf_json(const HfFiles& files) {
  HfTokenizerJson doc = parse_tokenizer_json(files.tokenizer, "tokenizer.json");
  const json& tj = doc.rest;
  if (!tj.contains("model") || !tj["model"].is_object()) throw Error("no \"model\" object");
  const json& model = tj["model"];
  std::string mtype = str_or(model, "type", doc.has_merges ? "BPE" : "");
  if (mtype != "BPE")
    throw Error(fmt("tokenizer.json model type '%s' is not supported (only BPE)", mtype.c_str()));
  if (!str_or(model, "continuing_subword_prefix", "").empty() ||
      !str_or(model, "end_of_word_suffix", "").empty())
    throw Error("BPE continuing_subword_prefix / end_of_word_suffix are not supported");
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
    throw Error("BPE dropout is not supported (it makes tokenization random)");

  TokenizerSpec spec;
  Vocab& v = spec.vocab;
  const size_t kMaxTokens = size_t(1) << 22;  // 4M: far above any real vocabulary; bounds memory
  if (!doc.has_vocab) throw Error("model.vocab is missing");
  if (!doc.has_merges) throw Error("model.merges is missing");
  const json empty = json::array();
  const json& added = tj.contains("added_tokens") && tj["added_tokens"].is_array() ? tj["added_tokens"] : empty;
  size_t n = 0;
  for (const auto& [text, id] : doc.vocab) {
    if (id < 0 || uint64_t(id) >= kMaxTokens) throw Error(fmt("vocab id %lld is out of range", (long long)id));
    n = std::max(n, size_t(id) + 1);
  }
  for (const json& a : added) n = std::max(n, size_t(checked_id(a.at("id"), kMaxTokens, "added token")) + 1);
  v.tokens.assign(n, std::string());
  v.types.assign(n, TokenType::normal);
  v.lstrip.assign(n, 0);
  v.rstrip.assign(n, 0);
  v.unicode_strip = true;
  for (auto& [text, id] : doc.vocab) v.tokens[size_t(id)] = std::move(text);
  spec.bpe.byte_fallback = bool_or(model, "byte_fallback", false);
  if (spec.bpe.byte_fallback)
    for (size_t i = 0; i < n; i++)
      if (parse_byte_token(v.tokens[i]) >= 0) v.types[i] = TokenType::byte;
  for (const json& a : added) {
    size_t id = size_t(json_int(a.at("id"), "added token id"));  // range-checked above
    v.tokens[id] = a.at("content").get<std::string>();
    v.types[id] = bool_or(a, "special", false) ? TokenType::control : TokenType::user_defined;
    v.lstrip[id] = bool_or(a, "lstrip", false);
    v.rstrip[id] = bool_or(a, "rstrip", false);
  }

  json cfg = parse_object(files.tokenizer_config, "tokenizer_config.json");
  json mcfg = parse_object(files.config, "config.json");
  json gcfg = parse_object(files.generation_config, "generation_config.json");
  std::string unk = str_or(model, "unk_token", "");
  v.build_index();  // special ids are looked up by text below
  v.unk = unk.empty() ? -1 : v.find(unk);
  v.bos = config_token(cfg, "bos_token", v);
  v.eos = config_token(cfg, "eos_token", v);
  v.pad = config_token(cfg, "pad_token", v);
  std::vector<int32_t> cfg_bos = config_ids(mcfg, "bos_token_id");
  std::vector<int32_t> cfg_eos = config_ids(mcfg, "eos_token_id");
  if (v.bos < 0 && !cfg_bos.empty() && v.valid(cfg_bos[0])) v.bos = cfg_bos[0];
  if (v.eos < 0 && !cfg_eos.empty() && v.valid(cfg_eos[0])) v.eos = cfg_eos[0];
  v.finalize(Vocab::SpecialRules::hf);
  for (int32_t id : cfg_eos)
    if (v.valid(id)) v.eog.insert(id);
  for (int32_t id : config_ids(gcfg, "eos_token_id"))
    if (v.valid(id)) v.eog.insert(id);

  spec.model = TokenizerSpec::Model::bpe;
  spec.bpe.ignore_merges = bool_or(model, "ignore_merges", false);
  spec.bpe.fuse_unk = bool_or(model, "fuse_unk", false);
  if (doc.merges.size() > size_t(std::numeric_limits<int32_t>::max())) throw Error("too many merges");
  spec.bpe.merges.reserve(doc.merges.size());
  for (size_t rank = 0; rank < doc.merges.size(); rank++)
    spec.bpe.add_merge(v, doc.merges[rank].first, doc.merges[rank].second, int32_t(rank));
  doc.merges.clear();

  bool byte_level = false, strip = false;
  read_normalizer(tj.value("normalizer", json()), spec.normalizers);
  read_pre_tokenizer(tj.value("pre_tokenizer", json()), spec.pre_tokenizers, byte_level);
  read_decoder(tj.value("decoder", json()), byte_level, strip);
  spec.pieces = byte_level ? TokenizerSpec::Pieces::byte_level : TokenizerSpec::Pieces::sentencepiece;
  spec.decode_strip_space = strip && !byte_level;

  if (tj.contains("post_processor") && !tj["post_processor"].is_null()) {
    read_post_processor(tj["post_processor"], v, spec.prefix, spec.suffix);
  } else {
    if (bool_or(cfg, "add_bos_token", false) && v.bos >= 0) spec.prefix.push_back(v.bos);
    if (bool_or(cfg, "add_eos_token", false) && v.eos >= 0) spec.suffix.push_back(v.eos);
  }
  spec.add_bos = !spec.prefix.empty();
  spec.add_eos = !spec.suffix.empty();
  spec.kind = byte_level ? "bpe (tokenizer.json, byte-level)"
                         : spec.bpe.byte_fallback ? "bpe (tokenizer.json, byte fallback)"
                                                  : "bpe (tokenizer.json)";
  return make_tokenizer(std::move(spec));
}

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_hf_files(const HfFiles& files) {
  try {
    return tokenizer_from_hf_json(files);
  } catch (const json::exception& e) {
    // A field of the wrong shape or type somewhere in the files.
    throw Error(fmt("malformed tokenizer files: %s", e.what()));
  }
}

}  // namespace squeeze::tok

namespace squeeze {

std::unique_ptr<Tokenizer> Tokenizer::from_hf_dir(const std::string& dir) {
  const std::string tj = dir + "/tokenizer.json";
  if (!tok::file_exists(tj)) throw Error(fmt("%s: no tokenizer.json in this folder", dir.c_str()));
  tok::HfFiles files;
  files.tokenizer = read_text_file(tj);
  files.tokenizer_config = tok::read_if_exists(dir + "/tokenizer_config.json");
  files.config = tok::read_if_exists(dir + "/config.json");
  files.generation_config = tok::read_if_exists(dir + "/generation_config.json");
  try {
    return tok::tokenizer_from_hf_files(files);
  } catch (const Error& e) {
    throw Error(fmt("%s: %s", dir.c_str(), e.what()));
  }
}

}  // namespace squeeze
