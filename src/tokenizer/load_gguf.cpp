// Tokenizer::from_gguf: reads tokenizer.ggml.* (models.md 4.1) and sets up the pipeline llama.cpp
// runs for that model and pre-tokenizer type (llama-vocab.cpp, llama_vocab::impl::load).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "format/gguf.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/error.h"
#include "util/log.h"

namespace squeeze {

using namespace tok;

namespace {

// Pre-tokenizer regex lists by tokenizer.ggml.pre (llama.cpp llm_tokenizer_bpe). Each regex
// splits the pieces the previous one produced; unmatched stretches stay pieces.
struct PreType {
  std::vector<const char*> names;
  std::vector<const char*> regexes;
  bool llama3 = false;  // ignore_merges and BOS on by default (llama3 family, tekken)
};

// llama.cpp's spelling of the llama3 regex: the case-insensitive contraction group is written
// out, so that (?i) case folding (e.g. U+017F matching 's') cannot differ between engines.
const char* const kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
// Tekken and GPT-4o style: llama.cpp's rewrite of the tokenizer.json regexes, with lookaheads in
// place of the upper/lower-case letter classes. PCRE2 could run the originals, but parity with
// llama.cpp on GGUF files means running what it runs.
const char* const kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
    "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
#define SQZ_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
const char* const kGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" SQZ_CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" SQZ_CONTRACTIONS
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
#undef SQZ_CONTRACTIONS

const std::vector<PreType>& pre_types() {
  static const std::vector<PreType> types = {
      {{"default"},
       {"[\\p{P}\\$\\+<=>\\^~\\|]+",
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
        "\\p{N}+", "[0-9][0-9][0-9]"}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
        "jina-v5-nano"},
       {kLlama3},
       true},
      {{"dbrx", "smaug-bpe"}, {kLlama3}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2"}, {kQwen2}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
        "mellum", "modern-bert", "mpt", "olmo", "jais", "exaone4", "trillion", "granite-docling"},
       {kGpt2}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b",
        "mellum2"},
       {"\\p{N}", kGpt2}},
      {{"tekken"}, {kTekken}, true},
      {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4o}},
  };
  return types;
}

const PreType& find_pre_type(const std::string& pre) {
  for (const PreType& t : pre_types())
    for (const char* n : t.names)
      if (pre == n) return t;
  std::string known;
  for (const PreType& t : pre_types())
    for (const char* n : t.names) known += std::string(known.empty() ? "" : ", ") + n;
  throw Error(fmt("unknown tokenizer.ggml.pre '%s' (supported: %s)", pre.c_str(), known.c_str()));
}

// A special token id; like llama.cpp, a value outside the vocabulary keeps the default (which
// Vocab::finalize drops if it is outside too).
int32_t read_id(const GGUFFile& f, const char* key, int32_t def, size_t n_tokens) {
  std::optional<int64_t> v = f.get_int(key);
  if (!v || *v < 0 || uint64_t(*v) >= n_tokens) return def;
  return int32_t(*v);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(uint8_t(c)));
  return s;
}

// llama.cpp sets per-token strip attributes by model name; Phi-3 is the one SPM case: its
// special tokens swallow the whitespace after them, except <unk>, <s> and <|endoftext|>.
void apply_name_attributes(const GGUFFile& f, Vocab& v) {
  std::string name = lower(f.get_string("general.name").value_or(""));
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  for (int32_t id : v.special_candidates()) v.rstrip[size_t(id)] = 1;
  if (int32_t id = v.find("</s>"); id >= 0) v.rstrip[size_t(id)] = 1;
  for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
    if (int32_t id = v.find(t); id >= 0) v.rstrip[size_t(id)] = 0;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GGUFFile& f) {
  const std::string& path = f.path();
  std::string model = f.get_string("tokenizer.ggml.model").value_or("");
  if (model.empty()) throw Error(fmt("%s: no tokenizer (tokenizer.ggml.model missing)", path.c_str()));
  bool spm = model == "llama";
  if (!spm && model != "gpt2")
    throw Error(fmt("%s: tokenizer model '%s' is not supported (only 'llama' and 'gpt2')",
                    path.c_str(), model.c_str()));

  TokenizerSpec spec;
  Vocab& v = spec.vocab;
  const std::vector<std::string>* tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty())
    throw Error(fmt("%s: tokenizer.ggml.tokens is missing or empty", path.c_str()));
  if (tokens->size() > size_t(std::numeric_limits<int32_t>::max()))
    throw Error(fmt("%s: too many tokens", path.c_str()));
  const size_t n = tokens->size();
  v.tokens = *tokens;

  if (const std::vector<double>* sc = f.get_number_array("tokenizer.ggml.scores")) {
    if (sc->size() != n)
      throw Error(fmt("%s: tokenizer.ggml.scores has %zu entries for %zu tokens", path.c_str(),
                      sc->size(), n));
    v.scores.resize(n);
    // NaN would break the merge queue's ordering; it cannot be a meaningful priority anyway.
    for (size_t i = 0; i < n; i++)
      v.scores[i] = std::isnan((*sc)[i]) ? -std::numeric_limits<float>::infinity() : float((*sc)[i]);
  }
  v.types.assign(n, TokenType::normal);
  if (const std::vector<double>* tt = f.get_number_array("tokenizer.ggml.token_type")) {
    if (tt->size() != n)
      throw Error(fmt("%s: tokenizer.ggml.token_type has %zu entries for %zu tokens",
                      path.c_str(), tt->size(), n));
    for (size_t i = 0; i < n; i++) {
      double t = (*tt)[i];
      // Values outside 0..6 are not token types; llama.cpp would treat them as undefined.
      v.types[i] = (t >= 0 && t <= 6 && t == std::floor(t)) ? TokenType(int32_t(t))
                                                              : TokenType::undefined;
    }
  }

  std::string pre = f.get_string("tokenizer.ggml.pre").value_or("");
  const PreType* pre_type = nullptr;
  if (spm) {
    v.bos = read_id(f, "tokenizer.ggml.bos_token_id", 1, n);
    v.eos = read_id(f, "tokenizer.ggml.eos_token_id", 2, n);
    v.unk = read_id(f, "tokenizer.ggml.unknown_token_id", 0, n);
    spec.add_bos = true;
  } else {
    if (pre.empty()) {
      SQZ_LOG("squeeze: %s: tokenizer.ggml.pre missing, using the 'default' regexes\n", path.c_str());
      pre = "default";
    }
    pre_type = &find_pre_type(pre);
    v.bos = read_id(f, "tokenizer.ggml.bos_token_id", 11, n);
    v.eos = read_id(f, "tokenizer.ggml.eos_token_id", 11, n);
    v.unk = read_id(f, "tokenizer.ggml.unknown_token_id", -1, n);
    spec.add_bos = pre_type->llama3;
  }
  v.pad = read_id(f, "tokenizer.ggml.padding_token_id", -1, n);
  v.eot = read_id(f, "tokenizer.ggml.eot_token_id", -1, n);
  v.eom = read_id(f, "tokenizer.ggml.eom_token_id", -1, n);
  // FIM ids (and their deprecated key names) matter here only as end-of-generation tokens.
  v.fim_pre = read_id(f, "tokenizer.ggml.fim_pre_token_id", read_id(f, "tokenizer.ggml.prefix_token_id", -1, n), n);
  v.fim_suf = read_id(f, "tokenizer.ggml.fim_suf_token_id", read_id(f, "tokenizer.ggml.suffix_token_id", -1, n), n);
  v.fim_mid = read_id(f, "tokenizer.ggml.fim_mid_token_id", read_id(f, "tokenizer.ggml.middle_token_id", -1, n), n);
  v.fim_pad = read_id(f, "tokenizer.ggml.fim_pad_token_id", -1, n);
  v.fim_rep = read_id(f, "tokenizer.ggml.fim_rep_token_id", -1, n);
  v.fim_sep = read_id(f, "tokenizer.ggml.fim_sep_token_id", -1, n);
  spec.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(spec.add_bos);
  spec.add_eos = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  bool add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(spm);
  v.finalize(Vocab::SpecialRules::llama_cpp);
  apply_name_attributes(f, v);

  if (spec.add_bos) {
    if (v.bos < 0) throw Error(fmt("%s: the tokenizer adds BOS but has no valid BOS id", path.c_str()));
    spec.prefix.push_back(v.bos);
  }
  if (spec.add_eos) {
    if (v.eos < 0) throw Error(fmt("%s: the tokenizer adds EOS but has no valid EOS id", path.c_str()));
    spec.suffix.push_back(v.eos);
  }

  if (spm) {
    spec.model = TokenizerSpec::Model::spm;
    spec.pieces = TokenizerSpec::Pieces::sentencepiece;
    spec.sanitize_utf8 = false;  // llama.cpp's SPM path takes the bytes as they are
    // Every raw fragment is either first or follows a special token, so llama.cpp's dummy
    // prefix ("prefix with space if previous is special") applies to each of them.
    if (add_space_prefix) spec.normalizers.push_back(Normalizer::prepend(" "));
    spec.normalizers.push_back(Normalizer::replace(" ", "\xE2\x96\x81"));
    spec.decode_strip_space = add_space_prefix;
    spec.kind = "spm";
  } else {
    spec.model = TokenizerSpec::Model::bpe;
    spec.pieces = TokenizerSpec::Pieces::byte_level;
    for (const char* re : pre_type->regexes) {
      PreTokenizer p;
      p.kind = PreTokenizer::Kind::split;
      p.regex = std::make_shared<const Regex>(re);
      p.behavior = SplitBehavior::isolated;
      spec.pre_tokenizers.push_back(std::move(p));
    }
    PreTokenizer bytes;
    bytes.kind = PreTokenizer::Kind::byte_level;
    spec.pre_tokenizers.push_back(std::move(bytes));
    spec.bpe.ignore_merges = pre_type->llama3;
    spec.bpe.llama_unknown = true;
    const std::vector<std::string>* merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges) throw Error(fmt("%s: tokenizer.ggml.merges is missing (required for gpt2)", path.c_str()));
    spec.bpe.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size() && i < size_t(std::numeric_limits<int32_t>::max()); i++) {
      const std::string& m = (*merges)[i];
      size_t sp = m.find(' ', 1);  // split at the first space after index 0, as llama.cpp does
      if (sp == std::string::npos) continue;
      spec.bpe.add_merge(v, std::string_view(m).substr(0, sp), std::string_view(m).substr(sp + 1),
                         int32_t(i));
    }
    spec.kind = "bpe (" + pre + ")";
  }
  return make_tokenizer(std::move(spec));
}

}  // namespace squeeze
