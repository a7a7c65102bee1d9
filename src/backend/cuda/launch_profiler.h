#pragma once
// SQUEEZE_CUDA_PROFILE for the CUDA backend: where a step's time goes.
//   1: every queued operation runs on its own (no graphs) between two events; at exit, the GPU
//      time per kind of operation, the host time spent building and issuing them.
//   2: graphs on; each flush of the queue is timed as a whole (host time building the
//      operations, GPU time of the launch, host time issuing it); at exit, the averages.
#include <cuda_runtime.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace squeeze::cuda {

class LaunchProfiler {
 public:
  LaunchProfiler();  // reads SQUEEZE_CUDA_PROFILE
  ~LaunchProfiler();  // prints what was measured
  LaunchProfiler(const LaunchProfiler&) = delete;
  LaunchProfiler& operator=(const LaunchProfiler&) = delete;

  bool per_op() const { return mode_ == 1; }
  bool per_flush() const { return mode_ == 2; }

  // per_op: the names of the queued operations, in queue order. name_next() names the next one
  // queued (else queued() uses the operation's tag name); rename_last() renames the latest.
  void name_next(std::string name) { next_ = std::move(name); }
  void queued(int tag);
  void rename_last(std::string name);
  void clear_queue() { names_.clear(); }

  // The host starts building a step.
  void batch_started() { batch_start_ = std::chrono::steady_clock::now(); }

  // per_op: runs the queued operations one by one on s, timing each.
  void run_timed(const std::vector<std::function<void(cudaStream_t)>>& ops, cudaStream_t s);

  // per_flush: around the launch of a queue; count: whether it enters the averages (a step that
  // uploaded weights does not), replay: whether it replayed a captured graph.
  void flush_begin(cudaStream_t s);
  void flush_end(cudaStream_t s, bool count, bool replay);

  static std::string tag_name(int tag);

 private:
  int mode_ = 0;
  std::chrono::steady_clock::time_point batch_start_ = std::chrono::steady_clock::now();
  // per_op
  std::string next_;
  std::vector<std::string> names_;
  std::vector<cudaEvent_t> events_;
  std::map<std::string, std::pair<long long, double>> per_name_;  // calls, ms
  long long flushes_ = 0;
  double host_build_s_ = 0, host_issue_s_ = 0;
  // per_flush
  cudaEvent_t ev_[2] = {nullptr, nullptr};
  std::chrono::steady_clock::time_point flush_t0_;
  double flush_build_s_ = 0;
  long long f_flushes_ = 0, f_replays_ = 0;
  double f_build_s_ = 0, f_issue_s_ = 0, f_gpu_ms_ = 0;
};

}  // namespace squeeze::cuda
