// ThreadPool: every index of a loop is visited exactly once, by static ranges or by pieces
// claimed as threads come free; ranges keep whole grains; an exception reaches the caller.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "backend/cpu/thread_pool.h"

namespace squeeze {
namespace {

void expect_each_once(ThreadPool& pool, int64_t n, int64_t grain, int pieces) {
  std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
  std::atomic<bool> ragged{false};
  auto body = [&](int64_t b, int64_t e, int t) {
    if (t < 0 || t >= pool.size()) ragged = true;
    if (b % grain != 0 || (e != n && e % grain != 0)) ragged = true;
    for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
  };
  if (pieces > 1) pool.parallel_for_pieces(n, body, grain, pieces);
  else pool.parallel_for(n, body, grain);
  EXPECT_FALSE(ragged) << "n=" << n << " grain=" << grain << " pieces=" << pieces;
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << "index " << i << " n=" << n << " grain=" << grain << " pieces=" << pieces;
}

TEST(ThreadPool, EveryIndexOnceStaticAndPieces) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 16, 100, 1023, 4096})
      for (int64_t grain : {1, 4, 16})
        for (int pieces : {1, 2, 8, 1000}) expect_each_once(pool, n, grain, pieces);
  }
}

TEST(ThreadPool, PiecesRethrow) {
  ThreadPool pool(3);
  auto body = [&](int64_t b, int64_t, int) {
    if (b == 0) throw std::runtime_error("piece 0");
  };
  EXPECT_THROW(pool.parallel_for_pieces(1000, body, 1, 8), std::runtime_error);
  // The pool still works after a throwing loop.
  expect_each_once(pool, 500, 4, 8);
}

}  // namespace
}  // namespace squeeze
