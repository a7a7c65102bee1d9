#pragma once
// CUDA graphs of repeating steps. A decode step issues the same launches every time (same
// kernels, same argument words, device pointers included), so the backend gives each flush a
// signature of those words: a signature seen again within the last kRecent flushes (a step goes
// out in a few flushes) is captured as a graph, and later flushes with it replay the graph with
// one launch instead of dozens.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace squeeze::cuda {

class StepGraphs {
 public:
  StepGraphs() = default;
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;
  ~StepGraphs() { clear(); }

  bool enabled() const { return enabled_; }
  void disable() {
    clear();
    enabled_ = false;
  }
  // How many graphs are kept, and whether one exists for sig.
  size_t size() const { return graphs_.size(); }
  bool has(const std::vector<uint64_t>& sig) const;
  // Forgets every graph (their launches read buffers that are about to change).
  void clear();

  // Runs one flush on stream s: its cached graph when sig was captured before; run() itself the
  // first time; captured from run() and launched when sig is one of the recent flushes'. If the
  // graph machinery fails, graphs are turned off (with a log line) and run() launches directly.
  void launch(std::vector<uint64_t> sig, cudaStream_t s, const std::function<void()>& run);

 private:
  static constexpr size_t kMaxGraphs = 64, kRecent = 16;
  struct Graph {
    std::vector<uint64_t> sig;
    cudaGraphExec_t exec = nullptr;
  };
  static uint64_t hash(const std::vector<uint64_t>& sig);

  bool enabled_ = true;
  std::unordered_map<uint64_t, Graph> graphs_;
  // Hashes of the latest flushes that ran without a graph (a ring). A hash match only decides
  // that a graph is captured; a replay needs the whole signature to match.
  uint64_t recent_[kRecent] = {};
  size_t recent_next_ = 0;
};

}  // namespace squeeze::cuda
