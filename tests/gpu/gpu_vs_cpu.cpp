// GPU checks, run on a machine with a GPU (bench/gpu/run.sh); not part of ctest.
//
//   gpu_vs_cpu kernels [--threshold X] [--tc-threshold Y]
//       every weight type's matmul (n_tokens 1, 3, 5, 17, 64) and get_rows on random data: the CUDA
//       backend against a double-precision product of the dequantized weights (and the CPU
//       backend's matmul, Numerics::exact, for information); outputs poisoned with NaN first, so
//       an element left unwritten fails. Products that run on tensor cores (more than 8 tokens,
//       16-bit or quantized weights, a cuBLAS build: activations rounded to f16/bf16) are held to
//       Y (default 5e-3), the others to X.
//   gpu_vs_cpu model PATH [--threshold X] [--kv f32|f16] [--tokens N] [--prefill P] [--threads T]
//       the same N tokens through SequenceRunner on CpuBackend(T, exact) and on the CUDA backend,
//       once as one prefill and once as a P-token prefill followed by one-token decode steps;
//       per position the relative error ||gpu - cpu|| / ||cpu|| of the logits and argmax agreement.
//   gpu_vs_cpu greedy PATH [--prompts N] [--tokens T] [--kv f32|f16] [--threads T]
//       greedy continuations of T tokens (default 32) of N random prompts (default 10) on both
//       backends (CPU exact): how many prompts agree on every token; at a difference, the CPU's
//       gap between its two best logits (how near a tie rounding had to flip).
//   gpu_vs_cpu speed
//       timings of the matmul kernels (decode GB/s, prefill TFLOP/s) per weight type.
//   gpu_vs_cpu attention-speed [--tokens CTX]
//       decode attention at a context of CTX (default 32768) keys, batch 1 and 16 (Llama-3-8B's
//       heads, F16 cache): KV bytes read per second against the device-to-device copy bandwidth.
// Exit status 1 when an error is above the threshold (or a value is not finite), 2 on bad usage.
// The last line of each check is "RESULT ..." for the summary table of bench/gpu/run.sh.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "kv/kv_cache.h"
#include "engine/sequence_runner.h"
#include "model/model.h"
#include "quant/dequantize.h"
#include "random_quant.h"
#include "util/error.h"

using namespace squeeze;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ||a - b|| / ||b|| over n floats (infinity when a holds a non-finite value).
double rel_err(const float* a, const double* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

double rel_err(const float* a, const float* b, int64_t n) {
  std::vector<double> bd(b, b + n);
  return rel_err(a, bd.data(), n);
}

// A float array in GPU memory, filled from the host or with NaN.
struct GpuArray {
  DeviceMemory& mem = cuda_memory();
  float* p = nullptr;
  size_t n = 0;
  explicit GpuArray(size_t count) : p(static_cast<float*>(mem.alloc(count * sizeof(float)))), n(count) {}
  ~GpuArray() { mem.free(p); }
  void upload(const std::vector<float>& v) { mem.from_host(p, v.data(), n * sizeof(float)); }
  void poison() { upload(std::vector<float>(n, kNaN)); }
  std::vector<float> download() {
    std::vector<float> v(n);
    mem.to_host(v.data(), p, n * sizeof(float));
    return v;
  }
};

// x rounded as the GPU's 8-bit activations (blocks of 32: d = max|x| / 127, q = round(x / d),
// ties to even), written independently of the kernel.
std::vector<float> round_q8(const std::vector<float>& x) {
  std::vector<float> r(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0.0f;
    for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b + i]));
    const float d = amax / 127.0f;
    for (size_t i = 0; i < 32; ++i) r[b + i] = amax == 0.0f ? 0.0f : float(std::nearbyint(x[b + i] / d)) * d;
  }
  return r;
}

// x rounded to the 16-bit weight type, as the decode products of F16 / BF16 weights (and the CPU
// backend) take their activations.
std::vector<float> round_half(const std::vector<float>& x, GGMLType type) {
  std::vector<float> r(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    r[i] = type == GGMLType::F16 ? f16_to_f32(f32_to_f16(x[i])) : bf16_to_f32(f32_to_bf16(x[i]));
  return r;
}

// Backend::argmax_rows on the GPU against a plain scan (first index of the largest value, NaN
// skipped, 0 for a row without a number): random rows, a tie, NaNs, a row of -inf, a row of NaN.
int check_argmax(std::mt19937& rng) {
  const int64_t rows = 7, n = 128256;
  std::vector<float> x = test::random_activations(rows * n, rng);
  x[size_t(1 * n + 5000)] = 9.0f;  // row 1: a tie, the first wins
  x[size_t(1 * n + 90000)] = 9.0f;
  x[size_t(2 * n + 7)] = kNaN;     // row 2: NaN beside the maximum
  x[size_t(2 * n + 100)] = 50.0f;
  for (int64_t i = 0; i < n; ++i) x[size_t(3 * n + i)] = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) x[size_t(4 * n + i)] = kNaN;
  x[size_t(5 * n + n - 1)] = 1e30f;  // row 5: the last element
  auto gpu = make_cuda_backend(0);
  GpuArray dx(x.size());
  dx.upload(x);
  std::vector<int32_t> got(size_t(rows), -1);
  gpu->begin_batch();
  const bool ok_call = gpu->argmax_rows(dx.p, rows, n, got.data());
  int bad = ok_call ? 0 : 1;
  for (int64_t r = 0; r < rows; ++r) {
    int32_t want = 0;
    float best = -std::numeric_limits<float>::infinity();
    bool any = false;
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[size_t(r * n + i)];
      if (v > best || (!any && v == best)) {
        best = v;
        want = int32_t(i);
        any = true;
      }
    }
    if (got[size_t(r)] != want) {
      std::printf("  FAIL argmax row %lld: gpu %d, expected %d\n", (long long)r, got[size_t(r)], want);
      ++bad;
    }
  }
  std::printf("RESULT kernel argmax_rows %lld rows of %lld (ties, NaN, -inf, NaN-only rows) %s\n", (long long)rows,
              (long long)n, bad ? "FAIL" : "ok");
  return bad ? 1 : 0;
}

int check_kernels(double threshold, double tc_threshold) {
  const GGMLType types[] = {GGMLType::F32,  GGMLType::F16,  GGMLType::BF16, GGMLType::Q4_0, GGMLType::Q4_1,
                            GGMLType::Q5_0, GGMLType::Q5_1, GGMLType::Q8_0, GGMLType::Q2_K, GGMLType::Q3_K,
                            GGMLType::Q4_K, GGMLType::Q5_K, GGMLType::Q6_K};
  struct Shape { int64_t k, n_out; };
  // k = 2048 also takes Q6_K's repacked layout (rows of a multiple of 8 super-blocks).
  const Shape shapes[] = {{512, 200}, {256, 67}, {2048, 37}};
  const int64_t token_counts[] = {1, 3, 5, 17, 64};
  CpuBackend cpu(4, Numerics::exact);
  std::mt19937 rng(1234);
  int failures = 0;
  for (GGMLType type : types) {
    double worst = 0, worst_tc = 0, worst_cpu = 0, worst_rows = 0;
    bool fail = false;
    for (const Shape& sh : shapes) {
      // A fresh backend per weight: its upload cache is keyed by host pointer.
      auto gpu = make_cuda_backend(0);
      std::vector<uint8_t> w = test::random_weights(type, sh.k * sh.n_out, rng);
      TensorRef tr;
      tr.name = "w";
      tr.type = type;
      tr.n_dims = 2;
      tr.ne = {sh.k, sh.n_out, 1, 1};
      tr.data = w.data();
      tr.nbytes = w.size();
      const std::vector<uint8_t> w_copy = w;
      TensorRef tr_copy = tr;
      tr_copy.data = w_copy.data();
      std::vector<float> wf(size_t(sh.k * sh.n_out));
      dequantize_row(type, w.data(), wf.data(), sh.k * sh.n_out);

      for (int64_t n : token_counts) {
        std::vector<float> x(size_t(n * sh.k));
        for (int64_t t = 0; t < n; ++t) {
          std::vector<float> row = test::random_activations(sh.k, rng);
          std::copy(row.begin(), row.end(), x.begin() + t * sh.k);
        }
        // Where the GPU rounds the activations to 8 bits, the reference multiplies the rounded
        // values, so the check bounds the kernel's own error.
        const bool q8 = cuda_matmul_quantizes_activations(type, sh.k, n);
        const bool half_x = !q8 && n <= 8 && (type == GGMLType::F16 || type == GGMLType::BF16);
        const std::vector<float> xr = q8 ? round_q8(x) : half_x ? round_half(x, type) : x;
        std::vector<double> ref(size_t(n * sh.n_out));
        for (int64_t t = 0; t < n; ++t)
          for (int64_t o = 0; o < sh.n_out; ++o) {
            double s = 0;
            for (int64_t i = 0; i < sh.k; ++i) s += double(wf[size_t(o * sh.k + i)]) * double(xr[size_t(t * sh.k + i)]);
            ref[size_t(t * sh.n_out + o)] = s;
          }
        std::vector<float> ycpu(size_t(n * sh.n_out), kNaN);
        cpu.matmul(tr, x.data(), n, ycpu.data());

        // The weight and a copy of it (another host pointer: uploaded apart) on the same
        // activations: the backend launches the two as one grouped product.
        GpuArray dx(x.size()), dy(ycpu.size()), dy2(ycpu.size());
        dx.upload(x);
        dy.poison();
        dy2.poison();
        gpu->begin_batch();
        gpu->matmul(tr, dx.p, n, dy.p);
        gpu->matmul(tr_copy, dx.p, n, dy2.p);
        std::vector<float> y = dy.download();
        const std::vector<float> y2 = dy2.download();
        for (size_t i = 0; i < y.size(); ++i)
          if (!(y2[i] == y[i])) y[i] = kNaN;  // the grouped twin must give the same bits
        const bool tc = cuda_matmul_uses_tensor_cores(type, sh.k, sh.n_out, n);
        const double thr = tc ? tc_threshold : threshold;
        for (int64_t t = 0; t < n; ++t) {
          const double e = rel_err(y.data() + t * sh.n_out, ref.data() + t * sh.n_out, sh.n_out);
          const double ec = rel_err(ycpu.data() + t * sh.n_out, ref.data() + t * sh.n_out, sh.n_out);
          (tc ? worst_tc : worst) = std::max(tc ? worst_tc : worst, e);
          worst_cpu = std::max(worst_cpu, ec);
          fail |= !(e <= thr);
          if (!(e <= thr))
            std::printf("  FAIL matmul %s k=%lld n_out=%lld n_tokens=%lld token %lld: rel err %.3g\n", type_name(type),
                        (long long)sh.k, (long long)sh.n_out, (long long)n, (long long)t, e);
        }
      }

      // get_rows: three rows (first, last, one between) against the dequantized table.
      const std::vector<int32_t> ids = {0, int32_t(sh.n_out - 1), int32_t(sh.n_out / 3)};
      GpuArray rows(ids.size() * size_t(sh.k));
      rows.poison();
      gpu->begin_batch();
      gpu->get_rows(tr, ids.data(), int64_t(ids.size()), rows.p);
      const std::vector<float> r = rows.download();
      for (size_t i = 0; i < ids.size(); ++i)
        worst_rows = std::max(worst_rows, rel_err(r.data() + i * sh.k, wf.data() + size_t(ids[i]) * sh.k, sh.k));
    }
    const bool ok = !fail && worst_rows <= threshold;
    failures += !ok;
    std::printf("RESULT kernel matmul %-5s gpu_vs_ref=%.2e tensor_cores_vs_ref=%.2e cpu_exact_vs_ref=%.2e get_rows=%.2e %s\n",
                type_name(type), worst, worst_tc, worst_cpu, worst_rows, ok ? "ok" : "FAIL");
  }
  failures += check_argmax(rng);
  return failures ? 1 : 0;
}

// Kernel timings (not checks): the decode matrix-vector product (1 token) as weight GB/s and the
// prefill GEMM (512 tokens) as TFLOP/s, on a 14336 x 4096 weight of each type (Llama-3-8B's FFN
// shape). Four copies of the weight are used in turn so that L2 (50 MB) does not hold them.
int speed() {
  const GGMLType types[] = {GGMLType::F32, GGMLType::F16, GGMLType::BF16, GGMLType::Q8_0,
                            GGMLType::Q4_0, GGMLType::Q4_K, GGMLType::Q6_K};
  const int64_t k = 4096, n_out = 14336;
  constexpr int kCopies = 4;
  std::mt19937 rng(7);
  for (GGMLType type : types) {
    auto gpu = make_cuda_backend(0);
    std::vector<std::vector<uint8_t>> w(kCopies, test::random_weights(type, k * n_out, rng));
    std::vector<TensorRef> tr(kCopies);
    for (int c = 0; c < kCopies; ++c) {
      tr[size_t(c)].name = "w";
      tr[size_t(c)].type = type;
      tr[size_t(c)].n_dims = 2;
      tr[size_t(c)].ne = {k, n_out, 1, 1};
      tr[size_t(c)].data = w[size_t(c)].data();
      tr[size_t(c)].nbytes = w[size_t(c)].size();
    }
    GpuArray x(size_t(512 * k)), y(size_t(512 * n_out));
    x.upload(std::vector<float>(x.n, 0.01f));
    float probe;
    auto time_it = [&](int64_t n, int reps) {
      for (int c = 0; c < kCopies; ++c) gpu->matmul(tr[size_t(c)], x.p, n, y.p);  // warm-up and uploads
      cuda_memory().to_host(&probe, y.p, sizeof(float));
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) gpu->matmul(tr[size_t(r % kCopies)], x.p, n, y.p);
      cuda_memory().to_host(&probe, y.p, sizeof(float));
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    };
    const double t1 = time_it(1, 200), t512 = time_it(512, 8);
    std::printf("RESULT speed %-5s 14336x4096: matvec (1 token) %7.1f us = %6.0f GB/s of weights; gemm (512 tokens) %7.1f us = %5.1f TFLOP/s\n",
                type_name(type), t1 * 1e6, double(w[0].size()) / t1 / 1e9, t512 * 1e6, 2.0 * k * n_out * 512 / t512 / 1e12);
  }
  return 0;
}

// Device-to-device copy bandwidth as (bytes read + bytes written) / time, the median of 5 copies
// of 2 GiB.
double copy_bandwidth() {
  const size_t bytes = size_t(2) << 30;
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) throw Error("cudaMalloc failed");
  cudaMemset(a, 1, bytes);
  std::vector<double> t;
  for (int r = 0; r < 6; ++r) {
    cudaDeviceSynchronize();
    const auto t0 = std::chrono::steady_clock::now();
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
    if (r > 0) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  cudaFree(a);
  cudaFree(b);
  std::sort(t.begin(), t.end());
  return 2.0 * double(bytes) / t[t.size() / 2];
}

// Decode attention of a batch of B tokens, each of its own sequence at position ctx - 1, over L
// layers in one step (so that the step's host work is small beside the GPU time).
int attention_speed(int64_t ctx) {
  const int32_t n_head = 32, n_kv = 8, d = 128, bs = 16;
  const double copy = copy_bandwidth();
  std::printf("RESULT attention copy bandwidth: %.0f GB/s (device-to-device, read + write)\n", copy / 1e9);
  std::mt19937 rng(3);
  for (int64_t batch : {int64_t(1), int64_t(16)}) {
    const int32_t layers = batch == 1 ? 16 : 4;
    KVGeometry g;
    g.n_layers = layers;
    g.n_kv_heads = n_kv;
    g.head_dim = d;
    g.block_size = bs;
    g.n_blocks = int32_t(batch * ((ctx + bs - 1) / bs));
    g.type = GGMLType::F16;
    KVCache kv(g, cuda_memory());
    {  // random halves in [-1, 1): a 64 MiB pattern repeated over K and V
      std::vector<uint16_t> pat(size_t(32) << 20);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (auto& h : pat) h = f32_to_f16(u(rng));
      const size_t total = kv.bytes() / 2, chunk = pat.size() * 2;
      for (size_t off = 0; off < total; off += chunk) {
        cuda_memory().from_host(kv.k_data() + off, pat.data(), std::min(chunk, total - off));
        cuda_memory().from_host(kv.v_data() + off, pat.data(), std::min(chunk, total - off));
      }
    }
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(batch));
    std::vector<const int32_t*> blocks(static_cast<size_t>(batch), nullptr);
    std::vector<int32_t> pos(size_t(batch), int32_t(ctx - 1));
    const int32_t per = int32_t((ctx + bs - 1) / bs);
    for (int64_t b = 0; b < batch; ++b) {
      for (int32_t i = 0; i < per; ++i) tables[size_t(b)].push_back(int32_t(b) * per + i);
      blocks[size_t(b)] = tables[size_t(b)].data();
    }
    const TokenPlacement tp{pos.data(), blocks.data(), batch};
    GpuArray q(size_t(batch * n_head * d)), out(size_t(batch * n_head * d));
    q.upload(test::random_activations(batch * n_head * d, rng));
    auto gpu = make_cuda_backend(0);
    float probe;
    auto step = [&] {
      gpu->begin_batch();
      for (int32_t l = 0; l < layers; ++l) {
        AttentionParams ap{l, n_head, n_kv, d, 1.0f / std::sqrt(float(d)), 0};
        gpu->attention(kv, ap, q.p, tp, out.p);
      }
    };
    for (int r = 0; r < 3; ++r) step();  // graph captured by the second
    cuda_memory().to_host(&probe, out.p, sizeof(float));
    const int reps = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) step();
    cuda_memory().to_host(&probe, out.p, sizeof(float));
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / (reps * layers);
    const double kv_bytes = double(batch) * double(ctx) * n_kv * d * 2 /*K, V*/ * 2 /*f16*/;
    std::printf("RESULT attention decode ctx=%lld batch=%lld: %.1f us per layer, KV %.0f GB/s = %.0f%% of copy bandwidth%s\n",
                (long long)ctx, (long long)batch, t * 1e6, kv_bytes / t / 1e9, 100.0 * kv_bytes / t / copy,
                std::isfinite(probe) ? "" : " (output not finite: FAIL)");
    if (!std::isfinite(probe)) return 1;
  }
  return 0;
}

struct Stats {
  double max_rel = 0;
  int argmax_agree = 0;
  std::string worst;  // the positions over the threshold, for the log
};

Stats compare(const std::vector<float>& gpu, const std::vector<float>& cpu, int64_t n_vocab, double threshold) {
  Stats s;
  const int64_t rows = int64_t(cpu.size()) / n_vocab;
  int shown = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gpu.data() + r * n_vocab;
    const float* c = cpu.data() + r * n_vocab;
    const double rel = rel_err(g, c, n_vocab);
    s.max_rel = std::max(s.max_rel, rel);
    if (rel > threshold && shown++ < 12) {
      char item[48];
      std::snprintf(item, sizeof item, " %lld:%.2e", (long long)r, rel);
      s.worst += item;
    }
    int64_t ag = 0, ac = 0;
    for (int64_t i = 1; i < n_vocab; ++i) {
      if (g[i] > g[ag]) ag = i;
      if (c[i] > c[ac]) ac = i;
    }
    s.argmax_agree += ag == ac;
  }
  return s;
}

int check_model(const std::string& path, double threshold, GGMLType kv_type, int64_t n_tokens, int64_t prefill,
                int threads) {
  auto model = Model::load(path);
  const int64_t n_vocab = model->hparams().n_vocab;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(n_vocab - 1));
  std::vector<int32_t> tokens(static_cast<size_t>(n_tokens));
  for (auto& t : tokens) t = tok(rng);
  prefill = std::clamp<int64_t>(prefill, 1, n_tokens);

  std::vector<float> cpu_logits;
  {
    CpuBackend cpu(threads, Numerics::exact);
    SequenceRunner r(*model, cpu, int32_t(n_tokens), kv_type);
    r.eval(tokens, 0, cpu_logits);
  }
  auto gpu = make_cuda_backend(0);
  // One batch of every token (the GEMM path and prefill attention).
  std::vector<float> one(cpu_logits.size(), kNaN);
  {
    SequenceRunner r(*model, *gpu, int32_t(n_tokens), kv_type);
    r.eval(tokens, 0, one);
  }
  // A prefill chunk, then one token per step (the matrix-vector path and decode attention).
  std::vector<float> steps(cpu_logits.size(), kNaN);
  {
    SequenceRunner r(*model, *gpu, int32_t(n_tokens), kv_type);
    std::vector<float> l;
    r.eval(std::span<const int32_t>(tokens.data(), size_t(prefill)), 0, l);
    std::copy(l.begin(), l.end(), steps.begin());
    for (int64_t i = prefill; i < n_tokens; ++i) {
      r.eval(std::span<const int32_t>(tokens.data() + i, 1), 0, l);
      std::copy(l.begin(), l.end(), steps.begin() + i * n_vocab);
    }
  }
  const Stats a = compare(one, cpu_logits, n_vocab, threshold), b = compare(steps, cpu_logits, n_vocab, threshold);
  if (!a.worst.empty()) std::printf("  prefill positions over the threshold (position:error):%s\n", a.worst.c_str());
  if (!b.worst.empty()) std::printf("  decode positions over the threshold (position:error):%s\n", b.worst.c_str());
  const bool ok = a.max_rel <= threshold && b.max_rel <= threshold;
  std::string name = path;
  while (!name.empty() && name.back() == '/') name.pop_back();
  name = name.substr(name.find_last_of('/') + 1);
  std::printf("RESULT model %s kv=%s tokens=%lld prefill_max_rel=%.2e argmax=%d/%lld decode_max_rel=%.2e argmax=%d/%lld "
              "threshold=%g %s\n",
              name.c_str(), kv_type == GGMLType::F16 ? "f16" : "f32", (long long)n_tokens, a.max_rel, a.argmax_agree,
              (long long)n_tokens, b.max_rel, b.argmax_agree, (long long)n_tokens, threshold, ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}

// The two largest values of a row: their gap is how far rounding must move for argmax to change.
std::pair<int64_t, float> argmax_gap(const float* x, int64_t n) {
  int64_t a = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[a]) a = i;
  float second = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i)
    if (i != a) second = std::max(second, x[i]);
  return {a, x[a] - second};
}

// Greedy continuations on both backends: n_prompts prompts of 3..8 random ids (BOS = 1 first),
// n_gen tokens each through SequenceRunner (a prefill, then one token per step). Per prompt, the
// leading tokens that agree, and at the first disagreement the CPU's gap between its two best
// logits there.
int check_greedy(const std::string& path, int n_prompts, int n_gen, GGMLType kv_type, int threads) {
  auto model = Model::load(path);
  const int64_t n_vocab = model->hparams().n_vocab;
  std::mt19937 rng(1000);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n_prompts));
  for (auto& p : prompts) {
    p.assign(1, 1);
    const int len = 3 + int(rng() % 6);
    while (int(p.size()) < len) p.push_back(int32_t(rng() % uint32_t(n_vocab)));
  }
  auto generate = [&](Backend& be, const std::vector<int32_t>& prompt, std::vector<float>* gaps) {
    SequenceRunner r(*model, be, int32_t(prompt.size()) + n_gen, kv_type);
    std::vector<float> logits;
    std::vector<int32_t> out;
    r.eval(prompt, int64_t(prompt.size()) - 1, logits);
    for (int i = 0; i < n_gen; ++i) {
      const auto [tok, gap] = argmax_gap(logits.data(), n_vocab);
      out.push_back(int32_t(tok));
      if (gaps) gaps->push_back(gap);
      if (i + 1 < n_gen) r.eval(std::span<const int32_t>(&out.back(), 1), 0, logits);
    }
    return out;
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<int32_t>> cpu_out, gpu_out;
  std::vector<std::vector<float>> gaps(prompts.size());
  {
    CpuBackend cpu(threads, Numerics::exact);
    for (size_t i = 0; i < prompts.size(); ++i) cpu_out.push_back(generate(cpu, prompts[i], &gaps[i]));
  }
  const auto t1 = std::chrono::steady_clock::now();
  {
    auto gpu = make_cuda_backend(0);
    for (const auto& p : prompts) gpu_out.push_back(generate(*gpu, p, nullptr));
  }
  const auto t2 = std::chrono::steady_clock::now();
  int agree = 0;
  float min_gap = std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < prompts.size(); ++i) {
    int same = 0;
    while (same < n_gen && cpu_out[i][size_t(same)] == gpu_out[i][size_t(same)]) ++same;
    agree += same == n_gen;
    for (float g : gaps[i]) min_gap = std::min(min_gap, g);
    std::printf("  prompt %zu (%zu ids): %d/%d tokens agree", i, prompts[i].size(), same, n_gen);
    if (same < n_gen) std::printf(" (cpu's top-2 gap at the first difference: %.3g)", gaps[i][size_t(same)]);
    std::printf("\n");
  }
  std::printf("RESULT greedy %s kv=%s: %d/%d prompts agree on all %d tokens, cuda vs cpu (smallest cpu top-2 gap "
              "%.3g; cpu %.0f s, cuda %.0f s) %s\n",
              path.substr(path.find_last_of('/') + 1).c_str(), kv_type == GGMLType::F16 ? "f16" : "f32", agree,
              n_prompts, n_gen, min_gap, std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count(), agree == n_prompts ? "ok" : "FAIL");
  return agree == n_prompts ? 0 : 1;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: gpu_vs_cpu kernels [--threshold X]\n"
               "       gpu_vs_cpu speed\n"
               "       gpu_vs_cpu attention-speed [--tokens CTX]\n"
               "       gpu_vs_cpu model PATH [--threshold X] [--kv f32|f16] [--tokens N] [--prefill P] [--threads T]\n"
               "       gpu_vs_cpu greedy PATH [--prompts N] [--tokens T] [--kv f32|f16] [--threads T]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const std::string mode = argv[1];
  std::string path;
  double threshold = -1, tc_threshold = 5e-3;
  GGMLType kv = GGMLType::F32;
  int64_t n_tokens = 80, prefill = 48;
  int threads = 8;
  bool mode_tokens_set = false;
  int i = 2;
  int n_prompts = 10;
  if (mode == "model" || mode == "greedy") {
    if (argc < 3) usage();
    path = argv[2];
    i = 3;
  } else if (mode != "kernels" && mode != "speed" && mode != "attention-speed") {
    usage();
  }
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    const std::string v = argv[++i];
    if (a == "--threshold") threshold = std::atof(v.c_str());
    else if (a == "--tc-threshold") tc_threshold = std::atof(v.c_str());
    else if (a == "--kv") kv = v == "f16" ? GGMLType::F16 : GGMLType::F32;
    else if (a == "--tokens") n_tokens = std::atoll(v.c_str()), mode_tokens_set = true;
    else if (a == "--prefill") prefill = std::atoll(v.c_str());
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--prompts") n_prompts = std::atoi(v.c_str());
    else usage();
  }
  try {
    if (!cuda_available()) throw Error("no CUDA GPU");
    if (mode == "kernels") return check_kernels(threshold > 0 ? threshold : 1e-4, tc_threshold);
    if (mode == "speed") return speed();
    if (mode == "attention-speed") return attention_speed(mode_tokens_set ? n_tokens : 32768);
    if (n_tokens < 1) usage();
    if (mode == "greedy") return check_greedy(path, n_prompts, mode_tokens_set ? int(n_tokens) : 32, kv, threads);
    return check_model(path, threshold > 0 ? threshold : 1e-3, kv, n_tokens, prefill, threads);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_vs_cpu: %s\n", e.what());
    std::printf("RESULT %s %s error: %s FAIL\n", mode.c_str(), path.c_str(), e.what());
    return 1;
  }
}
