#include "tokenizer/spm.h"

#include <queue>

#include "tokenizer/unicode.h"

namespace squeeze::tok {

namespace {

struct Symbol {
  int32_t prev, next;
  size_t begin, len;  // bytes of the text; len 0 once merged into the left neighbour
};

struct Bigram {
  float score;
  int32_t left, right;
  size_t size;  // byte length of the pair when it was queued; a mismatch means it is stale
};

// Highest score first; ties go to the leftmost pair (llama.cpp llm_bigram_spm::comparator).
struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

void emit_bytes(std::string_view s, const Vocab& vocab, std::vector<int32_t>& out) {
  for (char c : s) {
    int32_t id = vocab.byte_token(uint8_t(c));
    if (id < 0) id = vocab.find(std::string_view(&c, 1));  // llama.cpp's second choice
    if (id < 0) id = vocab.unk;  // a vocabulary without byte tokens: the best we can say
    if (id >= 0) out.push_back(id);
  }
}

}  // namespace

void spm_encode(std::string_view text, const Vocab& vocab, std::vector<int32_t>& out) {
  if (text.empty()) return;
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    size_t len = spm_char_len(text.data() + off, text.size() - off);
    int32_t i = int32_t(sym.size());
    sym.push_back({i - 1, off + len == text.size() ? -1 : i + 1, off, len});
    off += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    size_t size = sym[size_t(l)].len + sym[size_t(r)].len;
    int32_t id = vocab.find(text.substr(sym[size_t(l)].begin, size));
    if (id < 0) return;
    queue.push({vocab.score(id), l, r, size});
  };
  for (int32_t i = 1; i < int32_t(sym.size()); i++) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram bg = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(bg.left)];
    Symbol& r = sym[size_t(bg.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != bg.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = bg.left;
    try_add(l.prev, bg.left);
    try_add(bg.left, l.next);
  }

  // A merged symbol is always a token (pairs are queued only when they are one), so only single
  // characters can be missing from the vocabulary; those become byte tokens.
  for (int32_t i = 0; i != -1; i = sym[size_t(i)].next) {
    std::string_view s = text.substr(sym[size_t(i)].begin, sym[size_t(i)].len);
    int32_t id = vocab.find(s);
    if (id >= 0) out.push_back(id);
    else emit_bytes(s, vocab, out);
  }
}

}  // namespace squeeze::tok
