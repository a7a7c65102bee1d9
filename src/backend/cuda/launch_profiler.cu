#include "backend/cuda/launch_profiler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "backend/cuda/cuda_common.cuh"

namespace squeeze::cuda {

LaunchProfiler::LaunchProfiler() {
  const char* p = std::getenv("SQUEEZE_CUDA_PROFILE");
  mode_ = p && p[0] == '1' ? 1 : p && p[0] == '2' ? 2 : 0;
}

LaunchProfiler::~LaunchProfiler() {
  if (mode_ == 1) {
    double total = 0;
    for (auto& [k, v] : per_name_) total += v.second;
    std::fprintf(stderr,
                 "squeeze: cuda profile: %lld flushes, GPU %.2f ms in operations, host %.2f ms building + %.2f ms "
                 "issuing and waiting\n",
                 flushes_, total, host_build_s_ * 1e3, host_issue_s_ * 1e3);
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [k, v] : per_name_) rows.push_back({v.second, k});
    std::sort(rows.rbegin(), rows.rend());
    for (auto& [t, k] : rows)
      std::fprintf(stderr, "squeeze: cuda profile: %-40s %8lld calls %10.3f ms %8.2f us/call %5.1f%%\n", k.c_str(),
                   per_name_[k].first, t, 1e3 * t / double(per_name_[k].first), 100.0 * t / std::max(total, 1e-9));
  }
  if (mode_ == 2 && f_flushes_ > 0)
    std::fprintf(stderr,
                 "squeeze: cuda profile: %lld flushes (%lld graph replays): per flush %.1f us host building the "
                 "operations, %.1f us GPU, %.1f us host issuing\n",
                 f_flushes_, f_replays_, 1e6 * f_build_s_ / double(f_flushes_), 1e3 * f_gpu_ms_ / double(f_flushes_),
                 1e6 * f_issue_s_ / double(f_flushes_));
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
  for (cudaEvent_t e : ev_)
    if (e) cudaEventDestroy(e);
}

std::string LaunchProfiler::tag_name(int tag) {
  static const char* names[] = {"?",        "matmul",          "get_rows",      "gather_rows",      "rms_norm",
                                "add_rms_norm", "add",         "add_bias",      "scale",            "softcap",
                                "glu",      "rope",            "kv_write",      "attention",        "flash_attention",
                                "rope_kv_write", "decode_attention", "?",        "argmax_rows",
                                "top_k_rows"};
  if (tag == 100) return "h2d batch arrays";
  return tag >= 0 && tag < int(sizeof(names) / sizeof(names[0])) ? names[tag] : "?";
}

void LaunchProfiler::queued(int tag) {
  if (mode_ != 1) return;
  names_.push_back(next_.empty() ? tag_name(tag) : next_);
  next_.clear();
}

void LaunchProfiler::rename_last(std::string name) {
  if (mode_ == 1 && !names_.empty()) names_.back() = std::move(name);
}

void LaunchProfiler::run_timed(const std::vector<std::function<void(cudaStream_t)>>& ops, cudaStream_t s) {
  const auto t_issue = std::chrono::steady_clock::now();
  host_build_s_ += std::chrono::duration<double>(t_issue - batch_start_).count();
  while (events_.size() < ops.size() + 1) {
    cudaEvent_t e;
    SQZ_CUDA(cudaEventCreate(&e));
    events_.push_back(e);
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    SQZ_CUDA(cudaEventRecord(events_[i], s));
    ops[i](s);
  }
  SQZ_CUDA(cudaEventRecord(events_[ops.size()], s));
  SQZ_CUDA(cudaEventSynchronize(events_[ops.size()]));
  for (size_t i = 0; i < ops.size(); ++i) {
    float ms = 0;
    SQZ_CUDA(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
    auto& [n, t] = per_name_[i < names_.size() ? names_[i] : std::string("?")];
    ++n;
    t += ms;
  }
  ++flushes_;
  host_issue_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_issue).count();
  batch_start_ = std::chrono::steady_clock::now();
  names_.clear();
}

void LaunchProfiler::flush_begin(cudaStream_t s) {
  if (ev_[0] == nullptr) {
    SQZ_CUDA(cudaEventCreate(&ev_[0]));
    SQZ_CUDA(cudaEventCreate(&ev_[1]));
  }
  flush_t0_ = std::chrono::steady_clock::now();
  flush_build_s_ = std::chrono::duration<double>(flush_t0_ - batch_start_).count();
  SQZ_CUDA(cudaEventRecord(ev_[0], s));
}

void LaunchProfiler::flush_end(cudaStream_t s, bool count, bool replay) {
  SQZ_CUDA(cudaEventRecord(ev_[1], s));
  const double issue = std::chrono::duration<double>(std::chrono::steady_clock::now() - flush_t0_).count();
  SQZ_CUDA(cudaEventSynchronize(ev_[1]));
  float ms = 0;
  SQZ_CUDA(cudaEventElapsedTime(&ms, ev_[0], ev_[1]));
  if (count) {
    f_gpu_ms_ += ms;
    ++f_flushes_;
    f_replays_ += replay;
    f_build_s_ += flush_build_s_;
    f_issue_s_ += issue;
  }
  batch_start_ = std::chrono::steady_clock::now();
}

}  // namespace squeeze::cuda
