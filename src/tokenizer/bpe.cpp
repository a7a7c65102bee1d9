#include "tokenizer/bpe.h"

#include <queue>

#include "tokenizer/unicode.h"

namespace squeeze::tok {

bool BpeModel::add_merge(const Vocab& vocab, std::string_view left, std::string_view right,
                         int32_t rank) {
  int32_t a = vocab.find(left), b = vocab.find(right);
  if (a < 0 || b < 0) return false;
  thread_local std::string joined;  // reused: loaders add hundreds of thousands of merges
  joined.assign(left).append(right);
  int32_t m = vocab.find(joined);
  if (m < 0) return false;
  // The first occurrence of a duplicated merge keeps its rank (llama.cpp's bpe_ranks.emplace).
  merges.insert(key(a, b), rank, m);
  return true;
}

namespace {

struct Symbol {
  int32_t id;          // -1: not a token (llama.cpp semantics only)
  int32_t prev, next;  // neighbours in the live chain
  size_t begin, len;   // bytes of the piece this symbol spells; len 0 once merged away
};

struct Merge {
  int32_t rank;
  int32_t left, right;      // symbol indices
  int32_t left_id, right_id;  // their ids when queued: a pair that changed since is stale
  int32_t result;
};

// Lowest rank first, then leftmost.
struct MergeLess {
  bool operator()(const Merge& a, const Merge& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void bpe_encode(std::string_view piece, const Vocab& vocab, const BpeModel& model,
                std::vector<int32_t>& out) {
  if (piece.empty()) return;
  if (model.ignore_merges) {
    int32_t id = vocab.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }

  std::vector<Symbol> sym;
  sym.reserve(piece.size());
  auto push = [&](int32_t id, size_t begin, size_t len) {
    sym.push_back({id, -1, -1, begin, len});
  };
  for (size_t off = 0; off < piece.size();) {
    size_t len = utf8_valid_len(piece.data() + off, piece.size() - off);
    if (len == 0) len = 1;  // cannot happen on sanitized text; keeps the loop total anyway
    int32_t id = vocab.find(piece.substr(off, len));
    if (id >= 0 || model.llama_unknown) {
      push(id, off, len);
    } else {
      bool done = false;
      if (model.byte_fallback) {
        int32_t ids[4];
        done = true;
        for (size_t k = 0; k < len; k++)
          if ((ids[k] = vocab.byte_token(uint8_t(piece[off + k]))) < 0) done = false;
        if (done)
          for (size_t k = 0; k < len; k++) push(ids[k], off + k, 1);
      }
      if (!done && vocab.unk >= 0) {
        if (model.fuse_unk && !sym.empty() && sym.back().id == vocab.unk &&
            sym.back().begin + sym.back().len == off)
          sym.back().len += len;
        else
          push(vocab.unk, off, len);
      }
      // Neither: HF drops the character.
    }
    off += len;
  }
  for (size_t i = 0; i < sym.size(); i++) {
    sym[i].prev = int32_t(i) - 1;
    sym[i].next = i + 1 < sym.size() ? int32_t(i + 1) : -1;
  }

  std::priority_queue<Merge, std::vector<Merge>, MergeLess> queue;
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t a = sym[size_t(l)].id, b = sym[size_t(r)].id;
    if (a < 0 || b < 0) return;
    const FlatMap64::Entry* e = model.merges.find(BpeModel::key(a, b));
    if (!e) return;
    queue.push({e->a, l, r, a, b, e->b});
  };
  for (int32_t i = 1; i < int32_t(sym.size()); i++) try_add(i - 1, i);

  while (!queue.empty()) {
    Merge m = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(m.left)];
    Symbol& r = sym[size_t(m.right)];
    if (l.len == 0 || r.len == 0 || l.next != m.right || l.id != m.left_id || r.id != m.right_id)
      continue;
    l.id = m.result;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = m.left;
    try_add(l.prev, m.left);
    try_add(m.left, l.next);
  }

  for (int32_t i = sym.empty() ? -1 : 0; i != -1; i = sym[size_t(i)].next) {
    const Symbol& s = sym[size_t(i)];
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    // llama.cpp: a symbol that is not a token goes out as the tokens of its single bytes.
    for (size_t k = 0; k < s.len; k++) {
      int32_t id = vocab.find(piece.substr(s.begin + k, 1));
      if (id >= 0) out.push_back(id);
    }
  }
}

}  // namespace squeeze::tok
