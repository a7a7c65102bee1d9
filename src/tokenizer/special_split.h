#pragma once
// Cuts input text at special-token texts (models.md 4.3), giving the same fragments as
// llama.cpp's tokenizer_st_partition: candidates longest first, each taking its leftmost
// non-overlapping occurrences in the text not yet taken. llama.cpp searches the text once per
// candidate (6000+ for Gemma); here one pass with a byte trie finds every occurrence of every
// candidate, and the per-candidate order is then replayed on that list.
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/flat_map.h"
#include "tokenizer/vocab.h"

namespace squeeze::tok {

struct Fragment {
  int32_t token = -1;      // >= 0: a special token; -1: raw text [begin, end)
  size_t begin = 0, end = 0;
};

class SpecialSplitter {
 public:
  explicit SpecialSplitter(const Vocab& vocab);  // vocab must outlive the splitter

  // parse_special=false still matches user-defined tokens (llama.cpp and HF agree on this).
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  const Vocab& vocab_;
  // Trie over candidate texts: child of (node, byte) in one flat hash map (value a = child);
  // terminal_[node] is the candidate's rank in Vocab::special_candidates() or -1.
  FlatMap64 child_;
  std::vector<int32_t> terminal_;
  bool first_byte_[256] = {};
};

}  // namespace squeeze::tok
