// The k best entries of each logits row, for top-k sampling without copying the rows to the host.
// The order is the CPU sampler's total order (engine/sampler.cpp): larger value first, ties to
// the lower index; -inf and NaN are never taken. The host then draws from these k exactly as it
// would from the whole row.
//
// Each value maps to an order-preserving 32-bit key. A radix select finds the k-th largest key in
// three histogram passes (11, 11 and 10 bits); when that key is tied, a second radix select over
// the tied ids finds how far the ties go; one more pass gathers exactly k entries. Two stages, so
// that one row is spread over many blocks: blocks of 4096 values each keep their k best, then
// one block per row selects from those candidates and sorts them (bitonic, in shared memory).
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace squeeze::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kBins = 2048;  // the widest digit is 11 bits
constexpr int kChunk = 4096;  // values per stage-1 block (16 KiB of keys in shared memory)
static_assert(kMaxTopK == kThreads, "the sort gives each thread one of the k entries");

// Larger value -> larger key. -inf and NaN -> 0, which no value reaches (-FLT_MAX maps to
// 0x00800000), so 0 means "not a candidate". -0 is made +0 first: the sampler compares with ==,
// which holds them equal (so their tie goes to the lower index).
__device__ __forceinline__ uint32_t order_key(float v) {
  if (!(v > -INFINITY)) return 0u;
  const uint32_t b = __float_as_uint(v == 0.0f ? 0.0f : v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// The rank-th largest nonzero key_of(i) over i < n (1 <= rank <= the number of nonzero keys),
// by three digit passes, each counting the keys that match the digits found so far.
// *greater receives how many keys are strictly larger, *equal how many equal it.
// Every thread of the block calls it; every thread gets the answer.
template <class KeyOf>
__device__ uint32_t radix_select(KeyOf key_of, int64_t n, uint32_t rank, uint32_t* hist, uint32_t* greater,
                                 uint32_t* equal) {
  __shared__ uint32_t s_prefix, s_rank, s_greater, s_bin_count;
  uint32_t prefix = 0, mask = 0, above = 0, bin_count = 0;
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = pass == 0 ? 21 : pass == 1 ? 10 : 0;
    const uint32_t digit_mask = pass == 2 ? 0x3ffu : 0x7ffu;
    for (int b = threadIdx.x; b < kBins; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const uint32_t key = key_of(i);
      if (key != 0u && (key & mask) == prefix) atomicAdd(&hist[(key >> shift) & digit_mask], 1u);
    }
    __syncthreads();
    // Warp 0 finds the bin where the count from the top reaches rank: each lane sums 64 bins,
    // a suffix scan over the lanes finds the lane, and that lane walks its bins down.
    if (threadIdx.x < 32) {
      const int lane = int(threadIdx.x);
      const int per_lane = kBins / 32;
      uint32_t sum = 0;
      for (int b = 0; b < per_lane; ++b) sum += hist[lane * per_lane + b];
      uint32_t suffix = sum;  // inclusive: this lane's bins and every higher lane's
      for (int o = 1; o < 32; o <<= 1) {
        const uint32_t v = __shfl_down_sync(0xffffffffu, suffix, o);
        if (lane + o < 32) suffix += v;
      }
      const uint32_t higher = suffix - sum;  // in the lanes above this one
      if (higher < rank && suffix >= rank) {  // exactly one lane holds the crossing
        uint32_t cum = higher;
        for (int b = per_lane - 1; b >= 0; --b) {
          const uint32_t c = hist[lane * per_lane + b];
          if (cum + c >= rank) {
            s_prefix = prefix | (uint32_t(lane * per_lane + b) << shift);
            s_rank = rank - cum;
            s_greater = above + cum;
            s_bin_count = c;
            break;
          }
          cum += c;
        }
      }
    }
    __syncthreads();
    prefix = s_prefix;
    rank = s_rank;
    above = s_greater;
    bin_count = s_bin_count;
    mask |= digit_mask << shift;
    __syncthreads();  // the shared answers are read before the next pass overwrites them
  }
  *greater = above;
  *equal = bin_count;
  return prefix;
}

// Which entries a selection keeps: every key above threshold, and those equal to it whose id is at
// most last_tie_id. threshold 0 keeps every candidate.
struct Cut {
  uint32_t threshold = 0;
  uint32_t last_tie_id = 0xFFFFFFFFu;
  __device__ bool keeps(uint32_t key, int32_t id) const {
    return key > threshold || (key == threshold && key != 0u && uint32_t(id) <= last_tie_id);
  }
};

// The cut that keeps exactly min(k, valid) of count entries (valid: how many have a nonzero
// key): the k best in the total order, ties to the lower id.
template <class KeyOf, class IdOf>
__device__ Cut find_cut(KeyOf key_of, IdOf id_of, int64_t count, uint32_t k, uint32_t valid, uint32_t* hist) {
  Cut c;
  if (valid <= k) return c;
  uint32_t greater, equal;
  c.threshold = radix_select(key_of, count, k, hist, &greater, &equal);
  const uint32_t ties = k - greater;
  if (equal > ties) {  // the lowest ids of the tie first: the ties-th largest ~id among them
    const uint32_t t = c.threshold;
    const auto tie_key = [key_of, id_of, t](int64_t i) { return key_of(i) == t ? ~uint32_t(id_of(i)) : 0u; };
    uint32_t g2, e2;
    c.last_tie_id = ~radix_select(tie_key, count, ties, hist, &g2, &e2);
  }
  return c;
}

// Block-wide count of the nonzero keys.
template <class KeyOf>
__device__ uint32_t count_valid(KeyOf key_of, int64_t count) {
  __shared__ uint32_t s_valid;
  if (threadIdx.x == 0) s_valid = 0;
  __syncthreads();
  uint32_t v = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) v += key_of(i) != 0u;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0 && v) atomicAdd(&s_valid, v);
  __syncthreads();
  return s_valid;
}

// Stage 1: block (chunk, row) keeps the k best of its kChunk values, held in shared memory while
// it selects, and writes them (unordered, padded with key 0 / id -1) as that chunk's k
// candidates. The row's k best are all among its chunks' candidates: an entry of the row's k
// best has fewer than k better entries in the whole row, so fewer in its chunk.
__global__ void __launch_bounds__(kThreads) top_k_chunks_kernel(const float* x, int64_t n, int32_t k,
                                                                 uint32_t* cand_key, int32_t* cand_id) {
  pdl_start();
  __shared__ uint32_t hist[kBins];
  __shared__ uint32_t s_key[kChunk];
  __shared__ uint32_t s_fill;
  const int64_t first = int64_t(blockIdx.x) * kChunk;
  const int count = n - first < kChunk ? int(n - first) : kChunk;
  const float* r = x + int64_t(blockIdx.y) * n + first;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s_key[i] = order_key(r[i]);
  if (threadIdx.x == 0) s_fill = 0;
  __syncthreads();
  const auto key_of = [](int64_t i) { return s_key[i]; };
  const auto id_of = [](int64_t i) { return int32_t(i); };
  const Cut cut = find_cut(key_of, id_of, count, uint32_t(k), count_valid(key_of, count), hist);
  const int64_t out = (int64_t(blockIdx.y) * gridDim.x + blockIdx.x) * k;
  for (int i = threadIdx.x; i < count; i += blockDim.x) {
    const uint32_t key = s_key[i];
    if (cut.keeps(key, i)) {
      const uint32_t slot = atomicAdd(&s_fill, 1u);
      cand_key[out + slot] = key;
      cand_id[out + slot] = int32_t(first + i);
    }
  }
  __syncthreads();
  for (int i = int(s_fill) + int(threadIdx.x); i < k; i += blockDim.x) {
    cand_key[out + i] = 0u;
    cand_id[out + i] = -1;
  }
}

__device__ __forceinline__ bool ranks_before(uint32_t ka, int32_t ia, uint32_t kb, int32_t ib) {
  return ka > kb || (ka == kb && uint32_t(ia) < uint32_t(ib));  // id -1 (padding) sorts last
}

// Stage 2: block row keeps the k best of the row's candidates, sorts them and writes (value, id).
__global__ void __launch_bounds__(kThreads) top_k_merge_kernel(const float* x, int64_t n, int64_t n_cand, int32_t k,
                                                                const uint32_t* cand_key, const int32_t* cand_id,
                                                                float* values, int32_t* ids) {
  pdl_start();
  __shared__ uint32_t hist[kBins];
  __shared__ uint32_t s_key[kThreads];
  __shared__ int32_t s_id[kThreads];
  __shared__ uint32_t s_fill;
  const uint32_t* ck = cand_key + int64_t(blockIdx.x) * n_cand;
  const int32_t* ci = cand_id + int64_t(blockIdx.x) * n_cand;
  const auto key_of = [ck](int64_t i) { return ck[i]; };
  const auto id_of = [ci](int64_t i) { return ci[i]; };
  const Cut cut = find_cut(key_of, id_of, n_cand, uint32_t(k), count_valid(key_of, n_cand), hist);
  s_key[threadIdx.x] = 0;
  s_id[threadIdx.x] = -1;
  if (threadIdx.x == 0) s_fill = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n_cand; i += blockDim.x) {
    const uint32_t key = ck[i];
    const int32_t id = ci[i];
    if (cut.keeps(key, id)) {
      const uint32_t slot = atomicAdd(&s_fill, 1u);
      s_key[slot] = key;
      s_id[slot] = id;
    }
  }
  __syncthreads();
  // Bitonic sort of the kThreads entries (the unused ones are key 0, id -1: last).
  const int t = int(threadIdx.x);
  for (int size = 2; size <= kThreads; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      const int j = t ^ stride;
      if (j > t) {
        const bool ascending_block = (t & size) == 0;  // this half of the network sorts best-first
        const bool j_first = ranks_before(s_key[j], s_id[j], s_key[t], s_id[t]);
        if (j_first == ascending_block) {
          const uint32_t kk = s_key[t];
          const int32_t ii = s_id[t];
          s_key[t] = s_key[j];
          s_id[t] = s_id[j];
          s_key[j] = kk;
          s_id[j] = ii;
        }
      }
      __syncthreads();
    }
  }
  if (t < k) {
    const int32_t id = s_id[t];
    values[int64_t(blockIdx.x) * k + t] = id >= 0 ? x[int64_t(blockIdx.x) * n + id] : -INFINITY;
    ids[int64_t(blockIdx.x) * k + t] = id;
  }
}

}  // namespace

size_t top_k_scratch_bytes(int64_t rows, int64_t n, int32_t k) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  return size_t(rows) * size_t(chunks) * size_t(k) * (sizeof(uint32_t) + sizeof(int32_t));
}

void top_k_rows(const float* x, int64_t rows, int64_t n, int32_t k, float* values, int32_t* ids, void* scratch,
                cudaStream_t s) {
  if (rows <= 0) return;
  if (k < 1 || k > kMaxTopK) throw Error(fmt("CUDA top-k: k = %d is outside 1..%d", k, kMaxTopK));
  if (rows > 65535 || n >= 0x7fffffff) throw Error("CUDA top-k: too many rows or columns");
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t n_cand = chunks * k;
  auto* cand_key = static_cast<uint32_t*>(scratch);
  auto* cand_id = reinterpret_cast<int32_t*>(cand_key + rows * n_cand);
  launch_pdl(top_k_chunks_kernel, dim3(unsigned(chunks), unsigned(rows)), dim3(kThreads), 0, s, x, n, k, cand_key,
             cand_id);
  check_launch("top_k_chunks");
  launch_pdl(top_k_merge_kernel, dim3(unsigned(rows)), dim3(kThreads), 0, s, x, n, n_cand, k,
             static_cast<const uint32_t*>(cand_key), static_cast<const int32_t*>(cand_id), values, ids);
  check_launch("top_k_merge");
}

}  // namespace squeeze::cuda
