#pragma once
// The batch's arrays on the device (positions, block tables, token lists, attention tiles) and
// the per-batch arena they live in, for the CUDA backend. Valid until reset() (begin_batch).
//
// Host arrays are copied through page-locked staging memory by copies queued with the batch's
// kernels (the enqueue callback): a CUDA graph holding such a copy reads the staging buffer's
// contents at replay, so a replayed decode step sees the new step's positions. Everything lands at
// the same arena offsets each step (tables padded to multiples of kTableBucket ids), which is what
// lets consecutive decode steps replay one graph.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/kernels.h"

namespace squeeze::cuda {

class BatchArrays {
 public:
  // enqueue(dev, stage, bytes): queue a host-to-device copy from pinned stage to dev.
  // drain(): launch the queued work and wait for it (the staging buffer is about to be reused).
  // invalidate(): forget captured graphs (the staging buffer moves).
  struct Hooks {
    std::function<void(int32_t* dev, const uint8_t* stage, size_t bytes)> enqueue;
    std::function<void()> drain, invalidate;
  };
  explicit BatchArrays(Hooks hooks);
  ~BatchArrays();
  BatchArrays(const BatchArrays&) = delete;
  BatchArrays& operator=(const BatchArrays&) = delete;

  // A new batch: the arena and the caches start over. Waits until the previous batch's copies out
  // of the staging buffer are done (they normally are: a step ends by copying its results back).
  void reset();
  // Recorded after a launch that copies out of the staging buffer.
  void copies_issued(cudaStream_t s);

  // Room in the arena (256-byte aligned).
  void* alloc(size_t bytes);
  // n ints (padded with zeros to n_dev) copied into the arena.
  int32_t* ints(const int32_t* host, int64_t n, int64_t n_dev = -1);
  // The same, once per host array per batch.
  const int32_t* cached_ints(const int32_t* host, int64_t n);

  // Positions and block tables: each distinct table once, as long as its furthest token needs,
  // padded to a multiple of kTableBucket ids.
  DevicePlacement placement(const TokenPlacement& tp, int32_t block_size);

  // How the batch's attention is split: runs of at least kFlashMinRun consecutive positions of one
  // sequence go to the tensor-core kernel in tiles (with flash), the other tokens to the
  // per-token kernels (rest_list null when that is every token, in order).
  struct AttentionPlan {
    const int32_t* tiles = nullptr;
    int32_t n_tiles = 0;
    std::vector<int32_t> rest;
    const int32_t* rest_list = nullptr;
  };
  const AttentionPlan& attention_plan(const TokenPlacement& tp, bool flash);

  static constexpr int32_t kTableBucket = 64;
  static constexpr int64_t kFlashMinRun = 16;

 private:
  struct Chunk {
    void* p = nullptr;
    size_t bytes = 0;
  };
  Hooks hooks_;
  std::vector<Chunk> chunks_;
  size_t chunk_ = 0, used_ = 0;
  uint8_t* pinned_ = nullptr;
  size_t pinned_size_ = 0, pinned_used_ = 0;
  cudaEvent_t staged_ = nullptr;  // recorded after the latest launch that copies out of pinned_
  std::unordered_map<const void*, std::pair<const int32_t*, int64_t>> ints_;
  std::unordered_map<const void*, DevicePlacement> placements_;
  std::map<std::pair<const void*, bool>, AttentionPlan> plans_;
};

}  // namespace squeeze::cuda
