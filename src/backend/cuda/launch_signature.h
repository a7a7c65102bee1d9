#pragma once
// The words a deferred launch adds to its step's signature (step_graphs.h): every kernel
// argument, device pointers included, so that two steps with equal signatures launch the same
// kernels with the same arguments and one's CUDA graph can replay the other.
#include <bit>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "backend/cuda/kernels.h"

namespace squeeze {

inline void sig_word(std::vector<uint64_t>& s, const void* p) { s.push_back(uint64_t(reinterpret_cast<uintptr_t>(p))); }
inline void sig_word(std::vector<uint64_t>& s, float f) { s.push_back(std::bit_cast<uint32_t>(f)); }
inline void sig_word(std::vector<uint64_t>& s, const cuda::DeviceKV& kv) {
  sig_word(s, kv.k);
  sig_word(s, kv.v);
  s.push_back(uint64_t(uint32_t(kv.n_kv_heads)) << 32 | uint32_t(kv.head_dim));
  s.push_back(uint64_t(uint32_t(kv.block_size)) << 1 | uint64_t(kv.f16));
}
inline void sig_word(std::vector<uint64_t>& s, const cuda::DevicePlacement& p) {
  sig_word(s, p.pos);
  sig_word(s, p.offs);
  sig_word(s, p.ids);
  s.push_back(uint64_t(p.n_tokens));
}
template <class T>
  requires(std::is_integral_v<T> || std::is_enum_v<T>)
inline void sig_word(std::vector<uint64_t>& s, T v) {
  s.push_back(uint64_t(int64_t(v)));
}

}  // namespace squeeze
