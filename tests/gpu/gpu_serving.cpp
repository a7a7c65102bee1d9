// GPU checks of the serving path, run on a machine with a GPU (bench/gpu/run.sh); not part of ctest.
//
//   gpu_serving top-k [--quick]
//       Backend::top_k_rows on the GPU against a plain sort on the host, for k = 1, 40, 1000 and
//       1024 over rows with ties, NaN, -inf, +inf, -0 beside +0, and fewer candidates than k:
//       every id and value equal. Then its time against what it replaces (the rows copied to the
//       host and Sampler::sample there), for 1 and 64 rows of 128256. --quick: the short rows
//       only, no timing (for compute-sanitizer).
//   gpu_serving swap
//       SwapSpace on a KV cache in GPU memory: a block's K and V of every layer go to pinned host
//       memory and back into another block, bit for bit, and nothing else changes.
//   gpu_serving engine MODEL [--prompts N] [--tokens T]
//       the Engine on the CUDA backend over N random prompts:
//       1. seeded sampling (top-k, top-p, min-p, one greedy row in the batch): the tokens drawn
//          from the device's k best (top_k_rows) equal those drawn from whole rows copied back
//          (SQUEEZE_CUDA_TOP_K=0);
//       2. preemption into a swap space: a KV pool too small for every prompt at once, greedy;
//          swaps out equal swaps in (> 0), every block and slot comes back, and the texts are
//          compared with each prompt run alone (batching changes the rounding of the products on
//          the GPU, so this counts agreeing prompts; fewer than N - 1 fails).
// Exit status 1 on a failed check, 2 on bad usage; each check ends with a "RESULT ..." line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "kv/swap_space.h"
#include "model/model.h"
#include "util/error.h"

using namespace squeeze;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A device copy of host floats, freed on scope exit.
struct DeviceFloats {
  float* p;
  explicit DeviceFloats(const std::vector<float>& v)
      : p(static_cast<float*>(cuda_memory().alloc(v.size() * sizeof(float)))) {
    cuda_memory().from_host(p, v.data(), v.size() * sizeof(float));
  }
  ~DeviceFloats() { cuda_memory().free(p); }
};

// The expected top_k_rows answer for one row: candidates (not -inf, not NaN) sorted larger first,
// ties to the lower index (a stable sort of increasing indices), padded with (-inf, -1).
void reference_best(const float* row, int64_t n, int32_t k, float* values, int32_t* ids) {
  std::vector<int32_t> order;
  for (int64_t i = 0; i < n; ++i)
    if (row[i] > -kInf) order.push_back(int32_t(i));
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  for (int32_t i = 0; i < k; ++i) {
    const bool have = size_t(i) < order.size();
    ids[i] = have ? order[size_t(i)] : -1;
    values[i] = have ? row[order[size_t(i)]] : -kInf;
  }
}

// Rows that exercise the order: 0 random; 1 coarse values (many ties, some straddling the k-th);
// 2 NaN and -inf sprinkled, +inf twice; 3 every value equal; 4 fewer candidates than k; 5 -0 and
// +0 tied at the top; 6 all NaN; 7 random with the largest value last.
std::vector<float> make_rows(int64_t rows, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(size_t(rows * n));
  for (float& v : x) v = nd(rng);
  auto row = [&](int64_t r) { return x.data() + r * n; };
  for (int64_t i = 0; i < n; ++i) row(1)[i] = std::round(row(1)[i] * 2.0f) / 2.0f;
  for (int64_t i = 0; i < n; i += 7) row(2)[i] = i % 2 ? kNaN : -kInf;
  row(2)[n / 3] = kInf;
  row(2)[n / 5] = kInf;
  std::fill(row(3), row(3) + n, 0.25f);
  for (int64_t i = 0; i < n; ++i)
    if (i % 997 != 0) row(4)[i] = i % 3 ? -kInf : kNaN;
  std::fill(row(5), row(5) + n, -1.0f);
  for (int64_t i = 0; i < n; i += 101) row(5)[i] = (i / 101) % 2 ? 0.0f : -0.0f;
  std::fill(row(6), row(6) + n, kNaN);
  row(7)[n - 1] = 1e30f;
  return x;
}

int check_top_k(bool quick) {
  const int64_t rows = 8;
  int bad = 0;
  auto gpu = make_cuda_backend(0);
  std::mt19937 rng(5);
  for (const int64_t n : {int64_t(128256), int64_t(3001)}) {
    if (quick && n > 3001) continue;
    const std::vector<float> x = make_rows(rows, n, rng);
    const DeviceFloats dx(x);
    for (const int32_t k : {1, 40, 1000, 1024}) {
      std::vector<float> got_v(size_t(rows * k)), want_v(got_v.size());
      std::vector<int32_t> got_i(got_v.size(), -7), want_i(got_v.size());
      gpu->begin_batch();
      if (!gpu->top_k_rows(dx.p, rows, n, k, got_v.data(), got_i.data())) {
        std::printf("  FAIL top_k_rows declined k = %d\n", k);
        ++bad;
        continue;
      }
      for (int64_t r = 0; r < rows; ++r) {
        reference_best(x.data() + r * n, n, k, want_v.data() + r * k, want_i.data() + r * k);
        for (int32_t j = 0; j < k; ++j) {
          const size_t o = size_t(r * k + j);
          const bool same_value = got_v[o] == want_v[o] || (std::isinf(got_v[o]) && got_v[o] == want_v[o]);
          if (got_i[o] != want_i[o] || !same_value) {
            std::printf("  FAIL n %lld k %d row %lld entry %d: gpu (%g, %d), expected (%g, %d)\n", (long long)n, k,
                        (long long)r, j, got_v[o], got_i[o], want_v[o], want_i[o]);
            ++bad;
            break;
          }
        }
      }
    }
  }
  std::printf("RESULT top_k_rows k 1/40/1000/1024, rows of 128256 and 3001 (ties, NaN, -inf, +inf, -0, "
              "short rows) %s\n", bad ? "FAIL" : "ok");
  if (gpu->top_k_rows(nullptr, 1, 10, 1025, nullptr, nullptr)) {  // beyond the kernel: declined
    std::printf("  FAIL top_k_rows accepted k = 1025\n");
    ++bad;
  }
  if (quick) return bad ? 1 : 0;

  // Time: what one sampling step costs each way (median of 50), defaults (T 0.8, top-k 40,
  // top-p 0.95, min-p 0.05).
  const int64_t n = 128256;
  for (const int64_t r : {int64_t(1), int64_t(64)}) {
    std::vector<float> x(size_t(r * n));
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (float& v : x) v = nd(rng);
    const DeviceFloats dx(x);
    std::vector<float> host(x.size()), vals(size_t(r * 40));
    std::vector<int32_t> ids(vals.size());
    std::vector<Sampler> samplers(size_t(r), Sampler(SamplingParams{}));
    auto median_us = [](std::vector<double> t) {
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    std::vector<double> t_dev, t_host;
    for (int rep = 0; rep < 50; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      gpu->begin_batch();
      gpu->top_k_rows(dx.p, r, n, 40, vals.data(), ids.data());
      for (int64_t i = 0; i < r; ++i)
        samplers[size_t(i)].sample_best(std::span<const float>(vals).subspan(size_t(i * 40), 40),
                                        std::span<const int32_t>(ids).subspan(size_t(i * 40), 40));
      auto t1 = std::chrono::steady_clock::now();
      cuda_memory().to_host(host.data(), dx.p, host.size() * sizeof(float));
      for (int64_t i = 0; i < r; ++i)
        samplers[size_t(i)].sample(std::span<float>(host).subspan(size_t(i * n), size_t(n)), {});
      auto t2 = std::chrono::steady_clock::now();
      t_dev.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      t_host.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    }
    std::printf("RESULT top-k sampling %lld rows of %lld: device top-k %.1f us, rows to host + host sampler %.1f us "
                "(medians of 50)\n", (long long)r, (long long)n, median_us(t_dev), median_us(t_host));
  }
  return bad ? 1 : 0;
}

int check_swap() {
  KVGeometry g;
  g.n_layers = 3;
  g.n_kv_heads = 2;
  g.head_dim = 64;
  g.block_size = 16;
  g.n_blocks = 6;
  g.type = GGMLType::F16;
  KVCache kv(g, cuda_memory());
  const size_t bytes = size_t(g.n_layers) * size_t(g.n_blocks) * size_t(g.n_kv_heads) * size_t(g.block_size) *
                       size_t(g.head_dim) * 2;
  std::vector<uint8_t> k0(bytes), v0(bytes);
  std::mt19937 rng(9);
  for (auto& b : k0) b = uint8_t(rng());
  for (auto& b : v0) b = uint8_t(rng());
  cuda_memory().from_host(kv.k_data(), k0.data(), bytes);
  cuda_memory().from_host(kv.v_data(), v0.data(), bytes);
  SwapSpace swap(kv, 4 << 20);
  const int32_t slot = swap.store(2);
  // Scribble over block 2 in between, as the block's next holder would.
  std::vector<uint8_t> junk(bytes / size_t(g.n_layers) / size_t(g.n_blocks), 0xAB);
  for (int32_t l = 0; l < g.n_layers; ++l) cuda_memory().from_host(kv.k(l, 2, 0, 0), junk.data(), junk.size());
  swap.load(slot, 5);
  std::vector<uint8_t> k1(bytes), v1(bytes);
  cuda_memory().to_host(k1.data(), kv.k_data(), bytes);
  cuda_memory().to_host(v1.data(), kv.v_data(), bytes);
  const size_t block = junk.size();
  int bad = 0;
  for (int32_t l = 0; l < g.n_layers; ++l)
    for (int32_t b = 0; b < g.n_blocks; ++b) {
      const size_t at = (size_t(l) * size_t(g.n_blocks) + size_t(b)) * block;
      const size_t from = (size_t(l) * size_t(g.n_blocks) + size_t(b == 5 ? 2 : b)) * block;
      const bool k_ok = b == 2 ? std::all_of(k1.begin() + long(at), k1.begin() + long(at + block), [](uint8_t c) { return c == 0xAB; })
                               : std::equal(k1.begin() + long(at), k1.begin() + long(at + block), k0.begin() + long(from));
      const bool v_ok = std::equal(v1.begin() + long(at), v1.begin() + long(at + block), v0.begin() + long(from));
      if (!k_ok || !v_ok) {
        std::printf("  FAIL layer %d block %d: %s differs\n", l, b, k_ok ? "V" : "K");
        ++bad;
      }
    }
  if (swap.n_free() != swap.n_slots()) ++bad;
  std::printf("RESULT swap space on the GPU: block 2 out to pinned memory and back into block 5, %d layers, K and V: %s\n",
              g.n_layers, bad ? "FAIL" : "bit for bit, the rest untouched: ok");
  return bad ? 1 : 0;
}

struct EngineRun {
  std::vector<std::vector<int32_t>> out;
  uint64_t preemptions = 0, swapped_out = 0, swapped_in = 0;
};

// Every prompt through one engine (or, alone, each through its own), on a fresh CUDA backend.
EngineRun run_engine(Model& model, const std::vector<std::vector<int32_t>>& prompts,
                     const std::vector<SamplingParams>& params, int32_t max_tokens, const EngineConfig& cfg, bool alone) {
  auto backend = make_cuda_backend(0);
  EngineRun r;
  r.out.resize(prompts.size());
  const size_t per = alone ? 1 : prompts.size();
  for (size_t first = 0; first < prompts.size(); first += per) {
    Engine engine(model, *backend, nullptr, cfg);
    std::vector<int64_t> ids;
    for (size_t i = first; i < first + per; ++i) ids.push_back(engine.add(prompts[i], params[i], max_tokens, true));
    while (engine.step()) {
    }
    for (size_t i = first; i < first + per; ++i) {
      const Sequence& s = engine.sequence(ids[i - first]);
      r.out[i].assign(s.tokens.begin() + s.n_prompt, s.tokens.end());
    }
    for (int64_t id : ids) engine.release(id);
    r.preemptions += engine.scheduler().n_preemptions();
    r.swapped_out += engine.scheduler().n_swapped_out();
    r.swapped_in += engine.scheduler().n_swapped_in();
    if (const SwapSpace* sw = engine.swap_space(); sw && sw->n_free() != sw->n_slots()) throw Error("swap slots leaked");
    if (engine.prefix_cache().n_available() != cfg.n_blocks) throw Error("KV blocks leaked");
  }
  return r;
}

int check_engine(const std::string& path, int32_t n_prompts, int32_t max_tokens) {
  auto model = Model::load(path);
  const int32_t vocab = model->hparams().n_vocab;
  std::mt19937 rng(21);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n_prompts));
  for (auto& p : prompts) {
    p.resize(size_t(8 + rng() % 40));
    for (auto& t : p) t = int32_t(rng() % uint32_t(vocab));
  }
  int bad = 0;

  // 1. Sampling from the device's k best == sampling from whole rows.
  std::vector<SamplingParams> sampled(prompts.size());
  for (size_t i = 0; i < sampled.size(); ++i) {
    SamplingParams& sp = sampled[i];
    sp.seed = 1000 + i;
    sp.temperature = i % 4 == 3 ? 1.3f : 0.8f;
    sp.top_k = i % 3 == 0 ? 40 : i % 3 == 1 ? 5 : 1000;
    sp.top_p = i % 2 ? 0.95f : 0.8f;
    sp.min_p = i % 5 == 0 ? 0.0f : 0.05f;
    if (i == 2) sp.temperature = 0.0f;  // a greedy row in the same batches
  }
  EngineConfig cfg;
  cfg.n_blocks = 2048;
  cfg.n_ctx = 512;
  const EngineRun dev = run_engine(*model, prompts, sampled, max_tokens, cfg, false);
  setenv("SQUEEZE_CUDA_TOP_K", "0", 1);
  const EngineRun rows = run_engine(*model, prompts, sampled, max_tokens, cfg, false);
  unsetenv("SQUEEZE_CUDA_TOP_K");
  int same = 0;
  for (size_t i = 0; i < prompts.size(); ++i) same += dev.out[i] == rows.out[i];
  if (same != n_prompts) ++bad;
  std::printf("RESULT engine sampling on the GPU: %d/%d seeded prompts draw the same %d tokens from the device's "
              "top-k as from whole rows %s\n", same, n_prompts, max_tokens, same == n_prompts ? "ok" : "FAIL");

  // 2. Preemption into the swap space.
  std::vector<SamplingParams> greedy(prompts.size());
  for (auto& sp : greedy) sp.temperature = 0.0f;
  const int32_t per_seq = (48 + max_tokens + 15) / 16;
  cfg.n_blocks = std::max(per_seq + 1, n_prompts * per_seq / 3);
  cfg.swap_bytes = size_t(256) << 20;
  const EngineRun tight = run_engine(*model, prompts, greedy, max_tokens, cfg, false);
  cfg.n_blocks = 2048;
  cfg.swap_bytes = 0;
  const EngineRun alone = run_engine(*model, prompts, greedy, max_tokens, cfg, true);
  int agree = 0;
  for (size_t i = 0; i < prompts.size(); ++i) agree += tight.out[i] == alone.out[i];
  const bool ok = tight.swapped_out > 0 && tight.swapped_in == tight.swapped_out && agree >= n_prompts - 1;
  if (!ok) ++bad;
  std::printf("RESULT engine swap on the GPU: %llu preemptions, %llu swapped out, %llu in; %d/%d greedy texts equal "
              "to the prompt run alone %s\n", (unsigned long long)tight.preemptions,
              (unsigned long long)tight.swapped_out, (unsigned long long)tight.swapped_in, agree, n_prompts,
              ok ? "ok" : "FAIL");
  return bad ? 1 : 0;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: gpu_serving top-k [--quick]\n"
               "       gpu_serving swap\n"
               "       gpu_serving engine MODEL [--prompts N] [--tokens T]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const std::string mode = argv[1];
  try {
    if (!cuda_available()) throw Error("no CUDA GPU");
    if (mode == "top-k" && (argc == 2 || (argc == 3 && std::string(argv[2]) == "--quick")))
      return check_top_k(argc == 3);
    if (mode == "swap" && argc == 2) return check_swap();
    if (mode != "engine" || argc < 3) usage();
    int32_t n_prompts = 12, max_tokens = 48;
    for (int i = 3; i < argc; i += 2) {
      const std::string a = argv[i];
      if (i + 1 >= argc) usage();
      if (a == "--prompts") n_prompts = std::atoi(argv[i + 1]);
      else if (a == "--tokens") max_tokens = std::atoi(argv[i + 1]);
      else usage();
    }
    if (n_prompts < 2 || max_tokens < 1) usage();
    return check_engine(argv[2], n_prompts, max_tokens);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_serving: %s\n", e.what());
    std::printf("RESULT gpu_serving %s error: %s FAIL\n", mode.c_str(), e.what());
    return 1;
  }
}
