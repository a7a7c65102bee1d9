#pragma once
// A hash map from 64-bit keys to two int32 values with open addressing and linear probing. The
// tokenizer's hot lookups (BPE merge pairs, the special-token trie) hit tables of up to a million
// entries; std::unordered_map costs a node allocation per entry and a pointer chase per probe.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace squeeze::tok {

class FlatMap64 {
 public:
  struct Entry {
    uint64_t key;
    int32_t a;  // -1 marks an empty slot, so stored values must have a >= 0
    int32_t b;
  };

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;  // load factor <= 1/2 keeps probe runs short
    if (cap <= slots_.size()) return;
    std::vector<Entry> old = std::move(slots_);
    slots_.assign(cap, Entry{0, -1, -1});
    mask_ = cap - 1;
    size_ = 0;
    for (const Entry& e : old)
      if (e.a >= 0) insert(e.key, e.a, e.b);
  }

  // Adds key -> (a, b) unless the key is present; returns the entry either way.
  Entry& insert(uint64_t key, int32_t a, int32_t b) {
    if (2 * (size_ + 1) > slots_.size()) reserve(size_ + 1 > 8 ? 2 * (size_ + 1) : 16);
    for (size_t i = slot_of(key, mask_);; i = (i + 1) & mask_) {
      Entry& e = slots_[i];
      if (e.a < 0) {
        e = Entry{key, a, b};
        size_++;
        return e;
      }
      if (e.key == key) return e;
    }
  }

  const Entry* find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = slot_of(key, mask_);; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.a < 0) return nullptr;
      if (e.key == key) return &e;
    }
  }

  size_t size() const { return size_; }

 private:
  static size_t slot_of(uint64_t key, size_t mask) {
    key ^= key >> 33;  // murmur3 finalizer: ids and bytes in the low bits spread to all bits
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return size_t(key) & mask;
  }
  std::vector<Entry> slots_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace squeeze::tok
