#pragma once
// A fixed pool of worker threads for data-parallel loops. The calling thread takes part in every
// loop, so a pool of N threads runs N-1 workers. Work is split into contiguous ranges up front
// (parallel_for) or into pieces claimed as threads come free (parallel_for_pieces).
//
// A forward pass issues hundreds of short loops per token, so the hand-off is built for latency:
// workers spin on an atomic generation counter (no lock, no syscall) for a while after each loop
// and only then sleep on it (futex via std::atomic::wait). The job is passed by reference, never
// copied into a std::function, so starting a loop allocates nothing.
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace squeeze {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: all hardware threads
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over [0, n) split into one range per thread, and waits.
  // Ranges are multiples of grain (except the last) so callers can keep blocks whole. An exception
  // thrown by fn on any thread is rethrown here once every thread is done.
  template <typename Fn>
  void parallel_for(int64_t n, const Fn& fn, int64_t grain = 1) {
    run(n, grain, 1, &fn, [](const void* f, int64_t b, int64_t e, int t) { (*static_cast<const Fn*>(f))(b, e, t); });
  }
  // The same with [0, n) cut into about `pieces` runs per thread, claimed by the threads as they
  // finish the previous one: a thread that is slowed down (a vCPU the host gives to someone else
  // for a while) takes fewer of them instead of holding up the whole loop. For long loops only:
  // each run calls fn once.
  template <typename Fn>
  void parallel_for_pieces(int64_t n, const Fn& fn, int64_t grain, int pieces) {
    run(n, grain, pieces, &fn, [](const void* f, int64_t b, int64_t e, int t) { (*static_cast<const Fn*>(f))(b, e, t); });
  }

 private:
  using Trampoline = void (*)(const void*, int64_t, int64_t, int);

  void run(int64_t n, int64_t grain, int pieces, const void* fn, Trampoline call);
  void worker(int index);
  void run_range(int index);

  int n_threads_;
  std::vector<std::thread> workers_;

  // The current job; written by the caller before generation_ is bumped (release) and read by
  // workers after they see the new generation (acquire).
  const void* job_fn_ = nullptr;
  Trampoline job_call_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1, job_piece_grains_ = 0;  // 0: one static range per thread
  alignas(64) std::atomic<int64_t> next_piece_{0};

  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};  // workers still running the current job
  alignas(64) std::atomic<int> sleepers_{0};  // workers blocked in generation_.wait
  std::atomic<bool> stop_{false};
  std::mutex error_mu_;        // only taken when a loop body throws
  std::exception_ptr error_;   // the first exception a worker caught in the current job
};

}  // namespace squeeze
