#include <utility>

#include "tokenizer/special_split.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace squeeze::tok {

namespace {

std::string unescape_spaces(const std::string& s) {
  static const std::string kSpace = "\xE2\x96\x81";  // U+2581
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

class VocabTokenizer final : public Tokenizer {
 public:
  explicit VocabTokenizer(TokenizerSpec spec)
      : spec_(std::move(spec)), splitter_(spec_.vocab) {}

  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special) const override {
    std::vector<int32_t> out;
    if (add_special) out = spec_.prefix;
    std::vector<std::string> pieces;
    for (const Fragment& f : splitter_.split(text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        continue;
      }
      std::string_view raw = text.substr(f.begin, f.end - f.begin);
      std::string s = spec_.sanitize_utf8 ? utf8_sanitize(raw) : std::string(raw);
      normalize(spec_.normalizers, s);
      if (spec_.model == TokenizerSpec::Model::spm) {
        spm_encode(s, spec_.vocab, out);
        continue;
      }
      pieces.clear();
      pre_tokenize(spec_.pre_tokenizers, s, f.begin == 0, pieces);
      for (const std::string& p : pieces) bpe_encode(p, spec_.vocab, spec_.bpe, out);
    }
    if (add_special) out.insert(out.end(), spec_.suffix.begin(), spec_.suffix.end());
    return out;
  }

  std::string token_to_piece(int32_t id, bool special) const override {
    const Vocab& v = spec_.vocab;
    if (!v.valid(id)) return {};
    const std::string& text = v.tokens[size_t(id)];
    switch (v.type(id)) {
      case TokenType::control:
      case TokenType::unknown:
        return special ? text : std::string();
      case TokenType::user_defined:
        return text;
      case TokenType::byte: {
        int b = parse_byte_token(text);
        return b >= 0 ? std::string(1, char(b)) : text;
      }
      case TokenType::normal:
        if (spec_.pieces == TokenizerSpec::Pieces::sentencepiece) return unescape_spaces(text);
        {
          std::string bytes;
          // A token outside the byte alphabet (possible in hand-made vocabularies) goes out as
          // its own UTF-8, as HF's ByteLevel decoder does.
          if (!unicode_string_to_bytes(text, bytes)) return text;
          return bytes;
        }
      case TokenType::undefined:
      case TokenType::unused:
        break;
    }
    return {};
  }

  std::string decode(const std::vector<int32_t>& ids, bool special) const override {
    std::string out;
    for (int32_t id : ids) out += token_to_piece(id, special);
    if (spec_.decode_strip_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
  }

  int32_t find_token(std::string_view text) const override { return spec_.vocab.find(text); }
  int32_t n_vocab() const override { return spec_.vocab.size(); }
  int32_t bos_id() const override { return spec_.vocab.bos; }
  int32_t eos_id() const override { return spec_.vocab.eos; }
  bool add_bos() const override { return spec_.add_bos; }
  bool add_eos() const override { return spec_.add_eos; }
  bool is_eog(int32_t id) const override { return spec_.vocab.eog.count(id) != 0; }
  std::string kind() const override { return spec_.kind; }
  std::string token_text(int32_t id) const override {
    return spec_.vocab.valid(id) ? spec_.vocab.tokens[size_t(id)] : std::string();
  }

 private:
  TokenizerSpec spec_;
  SpecialSplitter splitter_;  // refers to spec_.vocab
};

}  // namespace

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerSpec spec) {
  return std::make_unique<VocabTokenizer>(std::move(spec));
}

}  // namespace squeeze::tok
