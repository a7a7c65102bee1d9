#pragma once
// Reads a tokenizer.json without building a JSON tree for its two big members: model.vocab
// (262144 entries for Gemma) and model.merges (515k). nlohmann's tree costs a std::map node per
// vocabulary entry, which made a Gemma tokenizer.json take seconds to load; those two are
// streamed straight into vectors instead, and the rest becomes an ordinary json value.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace squeeze::tok {

struct HfTokenizerJson {
  nlohmann::json rest;  // the document, with model.vocab and model.merges left out
  bool has_vocab = false, has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;        // token text, id
  std::vector<std::pair<std::string, std::string>> merges;  // left, right in rank order
};

// Parses tokenizer.json text; throws Error (prefixed with `name`) on malformed input.
HfTokenizerJson parse_tokenizer_json(const std::string& text, const std::string& name);

}  // namespace squeeze::tok
