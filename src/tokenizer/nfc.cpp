// Unicode NFC (UAX #15): full canonical decomposition, canonical ordering of combining marks,
// then canonical composition. Qwen2's tokenizer.json normalizes input this way, so a tokenizer
// that skipped it would give different ids for decomposed text (e.g. "e" + U+0301).
#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tokenizer/normalize.h"
#include "tokenizer/unicode.h"

namespace squeeze::tok {

namespace {

struct NfcDecomp {
  uint32_t cp, first, second;
  int composable;
};
struct NfcClass {
  uint32_t first, last;
  int cls;
};
#include "tokenizer/nfc_table.inc"

// Hangul syllables are composed arithmetically (Unicode 3.12), not from the table.
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

struct Tables {
  std::unordered_map<uint32_t, const NfcDecomp*> decomp;
  std::unordered_map<uint64_t, uint32_t> compose;
  Tables() {
    decomp.reserve(std::size(kNfcDecomp));
    for (const NfcDecomp& d : kNfcDecomp) {
      decomp.emplace(d.cp, &d);
      if (d.composable) compose.emplace((uint64_t(d.first) << 32) | d.second, d.cp);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

int combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  // Binary search over the sorted runs.
  size_t lo = 0, hi = std::size(kNfcClass);
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (kNfcClass[mid].last < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < std::size(kNfcClass) && kNfcClass[lo].first <= cp ? kNfcClass[lo].cls : 0;
}

void decompose(uint32_t cp, const Tables& t, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = t.decomp.find(cp);
  if (it == t.decomp.end()) {
    out.push_back(cp);
    return;
  }
  decompose(it->second->first, t, out);  // depth is bounded by the data (at most 4 levels)
  if (it->second->second) decompose(it->second->second, t, out);
}

// The primary composite of a starter and the following character, or 0.
uint32_t compose_pair(uint32_t a, uint32_t b, const Tables& t) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = t.compose.find((uint64_t(a) << 32) | b);
  return it == t.compose.end() ? 0 : it->second;
}

}  // namespace

std::string nfc(const std::string& text) {
  // Text without any code point at or above U+0300 is already in NFC: nothing below that point
  // decomposes to something NFC would not compose back, and no combining mark lies below it.
  bool simple = true;
  for (char c : text)
    if (uint8_t(c) >= 0xCC) {  // lead bytes of U+0300 and above
      simple = false;
      break;
    }
  if (simple) return text;

  const Tables& t = tables();
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8_valid_len(text.data() + i, text.size() - i);
    uint32_t cp = len ? utf8_decode(text.data() + i, len) : kReplacementChar;
    i += len ? len : 1;
    decompose(cp, t, cps);
  }

  // Canonical ordering: stable sort each run of non-starters by combining class.
  std::vector<int> cls(cps.size());
  for (size_t i = 0; i < cps.size(); i++) cls[i] = combining_class(cps[i]);
  for (size_t i = 0; i < cps.size();) {
    if (cls[i] == 0) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && cls[j] != 0) j++;
    if (j - i > 1) {
      std::vector<std::pair<int, uint32_t>> run;
      for (size_t k = i; k < j; k++) run.emplace_back(cls[k], cps[k]);
      std::stable_sort(run.begin(), run.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t k = i; k < j; k++) {
        cls[k] = run[k - i].first;
        cps[k] = run[k - i].second;
      }
    }
    i = j;
  }

  // Canonical composition, following the UAX #15 sample algorithm: a character composes with the
  // last starter unless a character of the same or higher class stands between them (blocked).
  std::string out;
  out.reserve(text.size());
  if (!cps.empty()) {
    size_t starter = 0, n = 1;
    int last_class = cls[0] == 0 ? 0 : 256;  // text starting with a mark: nothing composes into it
    for (size_t i = 1; i < cps.size(); i++) {
      uint32_t ch = cps[i];
      int c = cls[i];
      uint32_t comp = compose_pair(cps[starter], ch, t);
      if (comp && cls[starter] == 0 && (last_class < c || last_class == 0)) {
        cps[starter] = comp;
        continue;
      }
      if (c == 0) starter = n;
      last_class = c;
      cps[n] = ch;
      cls[n] = c;
      n++;
    }
    cps.resize(n);
  }
  for (uint32_t cp : cps) utf8_append(out, cp);
  return out;
}

}  // namespace squeeze::tok
