#include "backend/cuda/batch_arrays.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.cuh"

namespace squeeze::cuda {

BatchArrays::BatchArrays(Hooks hooks) : hooks_(std::move(hooks)) {
  SQZ_CUDA(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming));
}

BatchArrays::~BatchArrays() {
  for (auto& c : chunks_) cuda_memory().free(c.p);
  if (pinned_) cudaFreeHost(pinned_);
  cudaEventDestroy(staged_);
}

void BatchArrays::reset() {
  ints_.clear();
  placements_.clear();
  plans_.clear();
  chunk_ = 0;
  used_ = 0;
  SQZ_CUDA(cudaEventSynchronize(staged_));
  pinned_used_ = 0;
}

void BatchArrays::copies_issued(cudaStream_t s) { SQZ_CUDA(cudaEventRecord(staged_, s)); }

void* BatchArrays::alloc(size_t bytes) {
  bytes = (bytes + 255) / 256 * 256;
  while (chunk_ < chunks_.size() && used_ + bytes > chunks_[chunk_].bytes) {
    ++chunk_;
    used_ = 0;
  }
  if (chunk_ == chunks_.size()) {
    const size_t size = std::max<size_t>(size_t(1) << 20, 2 * bytes);
    chunks_.push_back(Chunk{cuda_memory().alloc(size), size});
    used_ = 0;
  }
  void* p = static_cast<uint8_t*>(chunks_[chunk_].p) + used_;
  used_ += bytes;
  return p;
}

int32_t* BatchArrays::ints(const int32_t* host, int64_t n, int64_t n_dev) {
  n_dev = std::max(n_dev, n);
  const size_t bytes = size_t(std::max<int64_t>(n_dev, 1)) * sizeof(int32_t);
  auto* dev = static_cast<int32_t*>(alloc(bytes));
  if (n_dev <= 0) return dev;
  const size_t need = (bytes + 63) / 64 * 64;
  if (pinned_used_ + need > pinned_size_) {
    hooks_.drain();  // the queued copies read the buffer: launch them, then wait for them
    pinned_used_ = 0;
    if (need > pinned_size_) {
      hooks_.invalidate();  // graphs that read the old buffer
      if (pinned_) SQZ_CUDA(cudaFreeHost(pinned_));
      pinned_ = nullptr;
      pinned_size_ = std::max<size_t>({need, 2 * pinned_size_, size_t(1) << 16});
      SQZ_CUDA(cudaMallocHost(reinterpret_cast<void**>(&pinned_), pinned_size_));
    }
  }
  uint8_t* stage = pinned_ + pinned_used_;
  std::memcpy(stage, host, size_t(n) * sizeof(int32_t));
  if (n_dev > n) std::memset(stage + size_t(n) * sizeof(int32_t), 0, size_t(n_dev - n) * sizeof(int32_t));
  hooks_.enqueue(dev, stage, size_t(n_dev) * sizeof(int32_t));
  pinned_used_ += need;
  return dev;
}

const int32_t* BatchArrays::cached_ints(const int32_t* host, int64_t n) {
  auto it = ints_.find(host);
  if (it != ints_.end() && it->second.second >= n) return it->second.first;
  const int32_t* dev = ints(host, n);
  ints_[host] = {dev, n};
  return dev;
}

DevicePlacement BatchArrays::placement(const TokenPlacement& tp, int32_t block_size) {
  auto it = placements_.find(tp.pos);
  if (it != placements_.end() && it->second.n_tokens == tp.n_tokens) return it->second;
  const int64_t n = tp.n_tokens;
  std::unordered_map<const int32_t*, int32_t> need;  // blocks needed per distinct table
  int32_t cap = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (tp.pos[t] < 0) throw Error("negative position in batch");
    int32_t& c = need[tp.blocks[t]];
    c = std::max(c, tp.pos[t] / block_size + 1);
    cap = std::max(cap, c);
  }
  cap = (cap + kTableBucket - 1) / kTableBucket * kTableBucket;
  std::vector<int32_t> host(size_t(2 * n));  // pos, offs, then the tables
  std::unordered_map<const int32_t*, int32_t> offset;
  for (int64_t t = 0; t < n; ++t) {
    host[size_t(t)] = tp.pos[t];
    auto [o, fresh] = offset.try_emplace(tp.blocks[t], int32_t(host.size() - size_t(2 * n)));
    if (fresh) {
      const int32_t nb = need[tp.blocks[t]];
      host.insert(host.end(), tp.blocks[t], tp.blocks[t] + nb);
      host.insert(host.end(), size_t(cap - nb), 0);
    }
    host[size_t(n + t)] = o->second;
  }
  const int32_t* dev = ints(host.data(), int64_t(host.size()));
  const DevicePlacement p{dev, dev + n, dev + 2 * n, n};
  placements_[tp.pos] = p;
  return p;
}

const BatchArrays::AttentionPlan& BatchArrays::attention_plan(const TokenPlacement& tp, bool flash) {
  const auto key = std::make_pair(static_cast<const void*>(tp.pos), flash);
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  AttentionPlan plan;
  std::vector<int32_t> tiles;
  const int64_t n = tp.n_tokens;
  for (int64_t a = 0; a < n;) {
    int64_t b = a + 1;
    while (b < n && tp.blocks[b] == tp.blocks[a] && tp.pos[b] == tp.pos[b - 1] + 1) ++b;
    if (flash && b - a >= kFlashMinRun) {
      for (int64_t t = a; t < b; t += flash_tile_rows()) {
        tiles.push_back(int32_t(t));
        tiles.push_back(int32_t(std::min<int64_t>(flash_tile_rows(), b - t)));
      }
    } else {
      for (int64_t t = a; t < b; ++t) plan.rest.push_back(int32_t(t));
    }
    a = b;
  }
  if (!tiles.empty()) {
    plan.n_tiles = int32_t(tiles.size() / 2);
    plan.tiles = ints(tiles.data(), int64_t(tiles.size()));
  }
  if (!plan.rest.empty() && int64_t(plan.rest.size()) != n)
    plan.rest_list = ints(plan.rest.data(), int64_t(plan.rest.size()));
  return plans_.emplace(key, std::move(plan)).first->second;
}

}  // namespace squeeze::cuda
