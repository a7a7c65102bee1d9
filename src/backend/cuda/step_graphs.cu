#include "backend/cuda/step_graphs.h"

#include <algorithm>
#include <iterator>

#include "backend/cuda/cuda_common.cuh"
#include "util/log.h"

namespace squeeze::cuda {

uint64_t StepGraphs::hash(const std::vector<uint64_t>& s) {
  uint64_t h = 1469598103934665603ull ^ s.size();
  for (uint64_t w : s) {
    h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 1099511628211ull;
  }
  return h;
}

bool StepGraphs::has(const std::vector<uint64_t>& sig) const {
  auto it = graphs_.find(hash(sig));
  return it != graphs_.end() && it->second.sig == sig;
}

void StepGraphs::clear() {
  for (auto& [h, g] : graphs_) cudaGraphExecDestroy(g.exec);
  graphs_.clear();
  std::fill(std::begin(recent_), std::end(recent_), 0);
}

void StepGraphs::launch(std::vector<uint64_t> sig, cudaStream_t s, const std::function<void()>& run) {
  if (!enabled_) return run();
  const uint64_t h = hash(sig);
  if (auto it = graphs_.find(h); it != graphs_.end() && it->second.sig == sig) {
    SQZ_CUDA(cudaGraphLaunch(it->second.exec, s));
    return;
  }
  if (std::find(std::begin(recent_), std::end(recent_), h) == std::end(recent_)) {  // first sighting: plain launches
    recent_[recent_next_] = h;
    recent_next_ = (recent_next_ + 1) % kRecent;
    return run();
  }
  // Seen recently: capture, instantiate, keep, launch.
  if (graphs_.size() >= kMaxGraphs) clear();
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaError_t e = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  bool ran = false;
  if (e == cudaSuccess) {
    try {
      run();
      ran = true;
    } catch (...) {
    }
    e = cudaStreamEndCapture(s, &graph);
    if (e == cudaSuccess && !ran) e = cudaErrorStreamCaptureInvalidated;
  }
  if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    cudaGetLastError();
    SQZ_LOG("squeeze: cuda: graph capture failed (%s); graphs off\n", cudaGetErrorString(e));
    if (exec) cudaGraphExecDestroy(exec);
    disable();
    return run();
  }
  if (auto old = graphs_.find(h); old != graphs_.end()) cudaGraphExecDestroy(old->second.exec);  // a hash collision
  graphs_[h] = Graph{std::move(sig), exec};
  std::replace(std::begin(recent_), std::end(recent_), h, uint64_t(0));
  SQZ_CUDA(cudaGraphLaunch(exec, s));
}

}  // namespace squeeze::cuda
