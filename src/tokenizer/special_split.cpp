#include "tokenizer/special_split.h"

#include <algorithm>
#include <cstdint>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace squeeze::tok {

namespace {

uint64_t key(int32_t node, uint8_t byte) { return (uint64_t(uint32_t(node)) << 8) | byte; }

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool is_unicode_space(uint32_t cp) {
  return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// Byte length of the whitespace character starting at text[i], or 0.
size_t space_at(std::string_view text, size_t i, bool unicode) {
  if (!unicode) return is_ascii_space(text[i]) ? 1 : 0;
  size_t len = utf8_valid_len(text.data() + i, text.size() - i);
  return len && is_unicode_space(utf8_decode(text.data() + i, len)) ? len : 0;
}

// Byte length of the whitespace character ending just before text[i], or 0.
size_t space_before(std::string_view text, size_t i, bool unicode) {
  if (!unicode) return is_ascii_space(text[i - 1]) ? 1 : 0;
  for (size_t len = 1; len <= 3 && len <= i; len++)
    if ((uint8_t(text[i - len]) & 0xC0) != 0x80) return space_at(text, i - len, true) == len ? len : 0;
  return 0;
}

// Byte states while replaying the matches.
enum : uint8_t { kRaw = 0, kTaken = 1, kStripped = 2 };

bool all_raw(const std::vector<uint8_t>& state, size_t b, size_t e) {
  for (size_t i = b; i < e; i++)
    if (state[i] != kRaw) return false;
  return true;
}

}  // namespace

SpecialSplitter::SpecialSplitter(const Vocab& vocab) : vocab_(vocab) {
  terminal_.push_back(-1);  // root
  const auto& cands = vocab.special_candidates();
  for (size_t rank = 0; rank < cands.size(); rank++) {
    const std::string& t = vocab.tokens[size_t(cands[rank])];
    int32_t node = 0;
    for (char c : t) {
      const FlatMap64::Entry& e = child_.insert(key(node, uint8_t(c)), int32_t(terminal_.size()), 0);
      if (e.a == int32_t(terminal_.size())) terminal_.push_back(-1);  // a new node
      node = e.a;
    }
    // Identical texts (duplicate vocabulary entries): the first candidate in order wins.
    if (terminal_[size_t(node)] < 0) terminal_[size_t(node)] = int32_t(rank);
    first_byte_[uint8_t(t[0])] = true;
  }
}

std::vector<Fragment> SpecialSplitter::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> out;
  if (text.empty()) return out;
  const auto& cands = vocab_.special_candidates();
  auto allowed = [&](int32_t rank) {
    if (parse_special) return true;
    TokenType t = vocab_.type(cands[size_t(rank)]);
    return t != TokenType::control && t != TokenType::unknown;
  };

  if (text.size() > UINT32_MAX) throw Error("text too long to tokenize (4 GiB or more)");

  // Every occurrence of every candidate, as runs of consecutive start positions per candidate:
  // a run of N newlines holds 31 newline tokens at almost every position, and runs keep that
  // O(candidates) instead of O(31 N).
  struct Run {
    int32_t rank;
    uint32_t begin, end;  // start positions [begin, end)
  };
  std::vector<Run> runs;
  std::vector<int32_t> last_run;  // rank -> index of its latest run; sized on the first match
  if (!cands.empty()) {
    for (size_t p = 0; p < text.size(); p++) {
      if (!first_byte_[uint8_t(text[p])]) continue;
      int32_t node = 0;
      for (size_t q = p; q < text.size(); q++) {
        const FlatMap64::Entry* e = child_.find(key(node, uint8_t(text[q])));
        if (!e) break;
        node = e->a;
        int32_t rank = terminal_[size_t(node)];
        if (rank < 0 || !allowed(rank)) continue;
        if (last_run.empty()) last_run.assign(cands.size(), -1);
        int32_t& lr = last_run[size_t(rank)];
        if (lr >= 0 && runs[size_t(lr)].end == p) {
          runs[size_t(lr)].end = uint32_t(p + 1);
        } else {
          lr = int32_t(runs.size());
          runs.push_back({rank, uint32_t(p), uint32_t(p + 1)});
        }
      }
    }
  }
  if (runs.empty()) {
    out.push_back({-1, 0, text.size()});
    return out;
  }
  // Runs of one candidate are already in text order; a stable sort by rank gives llama.cpp's
  // order: longest candidate first, each scanned left to right.
  std::stable_sort(runs.begin(), runs.end(),
                   [](const Run& a, const Run& b) { return a.rank < b.rank; });

  // Replay. Candidates come longest first, so a taken region inside an occurrence would have to
  // hold a longer token: checking the two end bytes is enough to know the span is all raw.
  std::vector<uint8_t> state(text.size(), kRaw);
  std::vector<std::pair<size_t, int32_t>> taken;  // (position, token)
  for (const Run& r : runs) {
    int32_t id = cands[size_t(r.rank)];
    size_t len = vocab_.tokens[size_t(id)].size();
    for (size_t p = r.begin; p < r.end;) {
      if (state[p] != kRaw || state[p + len - 1] != kRaw) {
        p++;
        continue;
      }
      for (size_t k = p; k < p + len; k++) state[k] = kTaken;
      taken.emplace_back(p, id);
      const bool uni = vocab_.unicode_strip;
      if (vocab_.lstrip[size_t(id)])
        for (size_t k = p, w; k > 0 && (w = space_before(text, k, uni)) > 0; k -= w) {
          if (!all_raw(state, k - w, k)) break;
          std::fill(state.begin() + long(k - w), state.begin() + long(k), kStripped);
        }
      if (vocab_.rstrip[size_t(id)])
        for (size_t k = p + len, w; k < text.size() && (w = space_at(text, k, uni)) > 0; k += w) {
          if (!all_raw(state, k, k + w)) break;
          std::fill(state.begin() + long(k), state.begin() + long(k + w), kStripped);
        }
      p += len;  // the next occurrence of this token cannot overlap this one
    }
  }
  std::sort(taken.begin(), taken.end());

  size_t p = 0, next_taken = 0;
  while (p < text.size()) {
    if (next_taken < taken.size() && taken[next_taken].first == p) {
      int32_t id = taken[next_taken++].second;
      out.push_back({id, p, p + vocab_.tokens[size_t(id)].size()});
      p += vocab_.tokens[size_t(id)].size();
    } else if (state[p] == kStripped) {
      p++;
    } else {
      size_t q = p;
      while (q < text.size() && state[q] == kRaw) q++;
      out.push_back({-1, p, q});
      p = q;
    }
  }
  return out;
}

}  // namespace squeeze::tok
