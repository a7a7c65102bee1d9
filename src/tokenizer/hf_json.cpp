#include "tokenizer/hf_json.h"

#include "util/error.h"

namespace squeeze::tok {

namespace {

using json = nlohmann::json;

// SAX handler: builds the tree like nlohmann's own DOM parser, except inside model.vocab and
// model.merges, whose entries go straight to the output vectors.
class Reader : public nlohmann::json_sax<json> {
 public:
  explicit Reader(HfTokenizerJson& out) : out_(out) {}

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return number(v, json(v)); }
  bool number_unsigned(number_unsigned_t v) override {
    return number(v <= uint64_t(INT64_MAX) ? int64_t(v) : -1, json(v));
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (mode_ != Mode::tree) return fail("a vocabulary id or merge is not an integer/string");
    return value(json(v));
  }
  bool binary(binary_t&) override { return fail("binary value"); }

  bool string(string_t& s) override {
    switch (mode_) {
      case Mode::vocab: return fail("a vocabulary id is a string");
      case Mode::merges: {
        size_t sp = s.find(' ', 1);  // "left right", split as llama.cpp and HF do
        if (sp == std::string::npos) return fail(("merge '" + s.substr(0, 100) + "' has no space").c_str());
        out_.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
        return true;
      }
      case Mode::merge_pair:
        if (pair_.size() >= 2) return fail("a merge pair has more than two entries");
        pair_.push_back(std::move(s));
        return true;
      case Mode::tree: return value(json(std::move(s)));
    }
    return false;
  }

  bool key(string_t& k) override {
    if (mode_ == Mode::vocab) vocab_key_ = std::move(k);
    else key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t) override {
    if (mode_ != Mode::tree) return fail("unexpected object in model.vocab or model.merges");
    if (in_model() && key_ == "vocab") {
      mode_ = Mode::vocab;
      out_.has_vocab = true;
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == Mode::vocab) {
      mode_ = Mode::tree;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    if (mode_ == Mode::merges) {
      mode_ = Mode::merge_pair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::tree) return fail("unexpected array in model.vocab");
    if (in_model() && key_ == "merges") {
      mode_ = Mode::merges;
      out_.has_merges = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::merge_pair) {
      if (pair_.size() != 2) return fail("a merge pair does not have two entries");
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::merges;
      return true;
    }
    if (mode_ == Mode::merges) {
      mode_ = Mode::tree;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return fail(e.what());
  }

  const std::string& error() const { return error_; }

 private:
  enum class Mode { tree, vocab, merges, merge_pair };

  bool in_model() const { return stack_.size() == 2 && keys_[1] == "model"; }

  bool fail(const char* msg) {
    if (error_.empty()) error_ = msg;
    return false;
  }

  bool number(int64_t id, json v) {
    if (mode_ == Mode::vocab) {
      out_.vocab.emplace_back(std::move(vocab_key_), id);
      return true;
    }
    if (mode_ != Mode::tree) return fail("a merge entry is a number");
    return value(std::move(v));
  }

  // Places a scalar in the current container (or as the root).
  bool value(json v) {
    if (mode_ != Mode::tree) return fail("unexpected value in model.vocab or model.merges");
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return true;
    }
    json& top = *stack_.back();
    if (top.is_object()) top[key_] = std::move(v);
    else top.push_back(std::move(v));
    return true;
  }

  // Places a container and makes it current. Pointers stay valid: objects live in std::map
  // nodes, and an array only grows at its end after its open last element is closed.
  bool open(json v) {
    json* slot;
    if (stack_.empty()) {
      out_.rest = std::move(v);
      slot = &out_.rest;
      keys_.emplace_back();
    } else {
      json& top = *stack_.back();
      if (top.is_object()) {
        slot = &(top[key_] = std::move(v));
        keys_.push_back(key_);
      } else {
        top.push_back(std::move(v));
        slot = &top.back();
        keys_.emplace_back();
      }
    }
    stack_.push_back(slot);
    return true;
  }

  HfTokenizerJson& out_;
  Mode mode_ = Mode::tree;
  std::vector<json*> stack_;
  std::vector<std::string> keys_;  // key each open container sits under ("" in arrays)
  std::string key_, vocab_key_;
  std::vector<std::string> pair_;
  std::string error_;
};

}  // namespace

HfTokenizerJson parse_tokenizer_json(const std::string& text, const std::string& name) {
  HfTokenizerJson out;
  Reader reader(out);
  bool ok = json::sax_parse(text, &reader);
  if (!ok)
    throw Error(fmt("%s: not a valid tokenizer.json: %s", name.c_str(),
                    reader.error().empty() ? "parse error" : reader.error().c_str()));
  if (!out.rest.is_object()) throw Error(fmt("%s: not a JSON object", name.c_str()));
  return out;
}

}  // namespace squeeze::tok
