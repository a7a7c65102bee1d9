#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace squeeze {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// How long an idle worker keeps spinning before it sleeps: longer than the gap between two ops
// of a forward pass (sampling, a small serial op), far shorter than a human-visible pause.
constexpr auto kSpinTime = std::chrono::microseconds(2000);

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_range(int index) {
  const int64_t grains = (job_n_ + job_grain_ - 1) / job_grain_;
  if (job_piece_grains_ > 0) {
    const int64_t pieces = (grains + job_piece_grains_ - 1) / job_piece_grains_;
    for (int64_t p; (p = next_piece_.fetch_add(1, std::memory_order_relaxed)) < pieces;) {
      const int64_t b = p * job_piece_grains_ * job_grain_;
      job_call_(job_fn_, b, std::min(job_n_, b + job_piece_grains_ * job_grain_), index);
    }
    return;
  }
  // Split [0, n) into n_threads_ nearly equal runs of whole grains.
  const int64_t per = grains / n_threads_, extra = grains % n_threads_;
  const int64_t g0 = index * per + std::min<int64_t>(index, extra);
  const int64_t g1 = g0 + per + (index < extra ? 1 : 0);
  const int64_t b = g0 * job_grain_, e = std::min(job_n_, g1 * job_grain_);
  if (b < e) job_call_(job_fn_, b, e, index);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin (checking the clock only now and then), then sleep until the generation moves.
    uint64_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      const auto until = std::chrono::steady_clock::now() + kSpinTime;
      for (int i = 1; (g = generation_.load(std::memory_order_acquire)) == seen; ++i) {
        cpu_relax();
        // Yield now and then so an oversubscribed machine (more threads than free cores) still
        // runs the thread that has the work.
        if (i % 64 == 0) std::this_thread::yield();
        if (i % 1024 == 0 && std::chrono::steady_clock::now() > until) {
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          // Re-check after announcing ourselves, so a bump between the two is not missed.
          if (generation_.load(std::memory_order_seq_cst) == seen) generation_.wait(seen, std::memory_order_acquire);
          sleepers_.fetch_sub(1, std::memory_order_relaxed);
        }
      }
    }
    seen = g;
    if (stop_.load(std::memory_order_relaxed)) return;
    try {
      run_range(index);
    } catch (...) {
      std::lock_guard<std::mutex> lk(error_mu_);
      if (!error_) error_ = std::current_exception();
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, int pieces, const void* fn, Trampoline call) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t grains = (n + grain - 1) / grain;
  job_piece_grains_ = pieces > 1 ? std::max<int64_t>(1, grains / (int64_t(n_threads_) * pieces)) : 0;
  next_piece_.store(0, std::memory_order_relaxed);
  if (n_threads_ == 1 || n <= grain) {
    call(fn, 0, n, 0);
    return;
  }
  job_fn_ = fn;
  job_call_ = call;
  job_n_ = n;
  job_grain_ = grain;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  std::exception_ptr error;
  try {
    run_range(0);
  } catch (...) {
    error = std::current_exception();
  }
  // Workers finish within one op, so the caller only spins here; fn must outlive them.
  for (int i = 1; pending_.load(std::memory_order_acquire) != 0; ++i) {
    cpu_relax();
    if (i % 64 == 0) std::this_thread::yield();
  }
  if (!error) {
    std::lock_guard<std::mutex> lk(error_mu_);
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace squeeze
