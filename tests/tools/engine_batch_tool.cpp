// Drives the serving Engine directly (no HTTP) for the batch-invariance tests: every prompt of
// a file is generated greedily, either all at once (continuous batching, chunked prefill,
// prefix sharing, preemption when the KV pool is small) or one at a time in a fresh engine, and
// the generated token ids are printed one line per prompt, in input order. SWAP_BYTES > 0 gives
// the engine a swap space (preempted sequences keep their K/V there instead of recomputing).
//
// usage: engine_batch_tool MODEL PROMPTS_FILE MAX_TOKENS together|alone [KV_BLOCKS [STEP_TOKENS [THREADS [SWAP_BYTES]]]]
//   PROMPTS_FILE: one prompt per line, as space-separated token ids.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "util/error.h"

using namespace squeeze;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL PROMPTS_FILE MAX_TOKENS together|alone [KV_BLOCKS [STEP_TOKENS [THREADS [SWAP_BYTES]]]]\n", argv[0]);
    return 2;
  }
  try {
    auto model = Model::load(argv[1]);
    std::vector<std::vector<int32_t>> prompts;
    std::ifstream in(argv[2]);
    for (std::string line; std::getline(in, line);) {
      std::istringstream ss(line);
      std::vector<int32_t> p;
      for (int32_t t; ss >> t;) p.push_back(t);
      if (!p.empty()) prompts.push_back(std::move(p));
    }
    const int32_t max_tokens = std::stoi(argv[3]);
    const bool together = std::string(argv[4]) == "together";
    EngineConfig cfg;
    cfg.n_blocks = argc > 5 ? std::stoi(argv[5]) : 1024;
    cfg.max_step_tokens = argc > 6 ? std::stoi(argv[6]) : 512;
    const int threads = argc > 7 ? std::stoi(argv[7]) : 2;
    cfg.swap_bytes = argc > 8 ? size_t(std::stoll(argv[8])) : 0;
    CpuBackend backend(threads, Numerics::llamacpp);
    SamplingParams greedy;
    greedy.temperature = 0.0f;

    std::vector<std::vector<int32_t>> outputs(prompts.size());
    uint64_t preemptions = 0, hits = 0, swapped_out = 0, swapped_in = 0;
    size_t max_running = 0;  // the most sequences in one step's batch
    auto run = [&](size_t first, size_t last) {
      Engine engine(*model, backend, nullptr, cfg);
      std::vector<int64_t> ids;
      for (size_t i = first; i < last; ++i) ids.push_back(engine.add(prompts[i], greedy, max_tokens, true));
      while (engine.step()) max_running = std::max(max_running, engine.scheduler().n_running());
      for (size_t i = first; i < last; ++i) {
        const Sequence& s = engine.sequence(ids[i - first]);
        outputs[i].assign(s.tokens.begin() + s.n_prompt, s.tokens.end());
        engine.release(ids[i - first]);
      }
      preemptions += engine.scheduler().n_preemptions();
      swapped_out += engine.scheduler().n_swapped_out();
      swapped_in += engine.scheduler().n_swapped_in();
      if (const SwapSpace* sw = engine.swap_space(); sw && sw->n_free() != sw->n_slots())
        throw Error("swap slots leaked");
      hits += engine.prefix_cache().hits();
      // Everything is back: free blocks plus idle cached blocks cover the pool.
      if (engine.prefix_cache().n_available() != cfg.n_blocks) throw Error("KV blocks leaked");
    };
    if (together) run(0, prompts.size());
    else
      for (size_t i = 0; i < prompts.size(); ++i) run(i, i + 1);
    for (const auto& o : outputs) {
      for (size_t j = 0; j < o.size(); ++j) std::printf(j ? " %d" : "%d", o[j]);
      std::printf("\n");
    }
    std::fprintf(stderr, "preemptions %llu prefix-cache block hits %llu max running %zu swapped out %llu in %llu\n",
                 (unsigned long long)preemptions, (unsigned long long)hits, max_running,
                 (unsigned long long)swapped_out, (unsigned long long)swapped_in);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
