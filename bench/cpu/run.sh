#!/usr/bin/env bash
# CPU speed comparison: squeeze bench vs llama.cpp's llama-bench on the same models, threads and
# test sizes, run alternately (A B A B ...) so that drift in machine load hits both engines alike.
#
# usage: bench/cpu/run.sh [MODEL.gguf ...]
#   Without arguments: the default Gemma 3 270M Q4_K_M plus the four TinyLlama-shaped random
#   models (F16, Q8_0, Q4_0, Q4_K_M), generated into $MODELS_DIR if missing (2.2 GB for F16).
# env: THREADS (default: nproc), P (512), N (128), REPS (3 per round), ROUNDS (3),
#      TTFT_ROUNDS (3; 0 skips the cold time-to-first-token runs),
#      LLAMACPP_BUILD (llama.cpp build dir made by bench/peers/llamacpp.sh; default
#      /work/llamacpp-build), MODELS_DIR (default bench/cpu/models, git-ignored), SQUEEZE (squeeze binary; default: build-bench/bin/squeeze, built if missing),
#      PYTHON (with numpy + gguf for make_models.py; default .venv/bin/python if present).
# Output: a table on stdout, raw JSON lines under $MODELS_DIR/../results-<time>/.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
THREADS=${THREADS:-$(nproc)}
P=${P:-512}
N=${N:-128}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-3}
LLAMACPP_BUILD=${LLAMACPP_BUILD:-/work/llamacpp-build}
MODELS_DIR=${MODELS_DIR:-$REPO/bench/cpu/models}
SQUEEZE=${SQUEEZE:-$REPO/build-bench/bin/squeeze}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
LB="$LLAMACPP_BUILD/build/bin/llama-bench"
LQ="$LLAMACPP_BUILD/build/bin/llama-quantize"

# --- tools ---------------------------------------------------------------------------------
if [[ ! -x "$SQUEEZE" ]]; then
    cmake -S "$REPO" -B "$REPO/build-bench" -DCMAKE_BUILD_TYPE=Release -DSQUEEZE_TESTS=OFF
    cmake --build "$REPO/build-bench" --target squeeze -j "${JOBS:-2}"
    SQUEEZE=$REPO/build-bench/bin/squeeze
fi
need_models=0
[[ $# -eq 0 ]] && need_models=1
# llama-quantize is only needed to make the TinyLlama files; build it with llama-bench.
if [[ ! -x "$LB" || ( $need_models == 1 && ! -x "$LQ" ) ]]; then
    LLAMACPP_TARGETS="llama-bench llama-quantize" "$REPO/bench/peers/llamacpp.sh" "$LLAMACPP_BUILD"
fi

# --- models --------------------------------------------------------------------------------
if [[ $# -gt 0 ]]; then
    MODELS=("$@")
else
    mkdir -p "$MODELS_DIR"
    TL="$MODELS_DIR/tinyllama-shape"
    if [[ ! -f "$TL-f16.gguf" ]]; then
        echo "making $TL-f16.gguf (random weights) ..." >&2
        "$PYTHON" "$REPO/bench/cpu/make_models.py" "$TL-f16.gguf.tmp"
        mv "$TL-f16.gguf.tmp" "$TL-f16.gguf"
    fi
    for q in Q8_0 Q4_0 Q4_K_M; do
        lq=$(echo "$q" | tr 'A-Z' 'a-z')
        if [[ ! -f "$TL-$lq.gguf" ]]; then
            "$LQ" "$TL-f16.gguf" "$TL-$lq.gguf.tmp" "$q" "$THREADS" >&2
            mv "$TL-$lq.gguf.tmp" "$TL-$lq.gguf"
        fi
    done
    MODELS=("$REPO/models/gemma-3-270m-q4_k_m.gguf" "$TL-f16.gguf" "$TL-q8_0.gguf" "$TL-q4_0.gguf" "$TL-q4_k_m.gguf")
fi

OUTDIR=${OUTDIR:-$REPO/bench/cpu/results-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUTDIR"

# --- copy bandwidth -------------------------------------------------------------------------
# Decode is bound by streaming the weights once per token, so the ceiling is memory bandwidth.
# Measured as memcpy of a 1 GiB buffer split over THREADS OpenMP threads, best of 5, counted as
# bytes read + bytes written (the STREAM "Copy" convention).
BW_SRC="$OUTDIR/copybw.c"
cat > "$BW_SRC" <<'EOF'
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
  const size_t n = (size_t)1 << 30;
  char *a = malloc(n), *b = malloc(n);
  if (!a || !b) return 1;
  memset(a, 1, n); memset(b, 2, n);  /* fault the pages in before timing */
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    double t0 = omp_get_wtime();
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), id = omp_get_thread_num();
      size_t chunk = n / nt, off = chunk * id, len = id == nt - 1 ? n - off : chunk;
      memcpy(b + off, a + off, len);
    }
    double t = omp_get_wtime() - t0;
    if (t < best) best = t;
  }
  printf("%.3f\n", 2.0 * n / best / 1e9);  /* GB/s, read + write */
  return b[12345] == 1 ? 0 : 2;
}
EOF
${CC:-cc} -O2 -fopenmp -o "$OUTDIR/copybw" "$BW_SRC"
COPY_GBS=$(OMP_NUM_THREADS=$THREADS "$OUTDIR/copybw")
echo "copy bandwidth: $COPY_GBS GB/s (memcpy 1 GiB, $THREADS threads, read+write bytes)" >&2

# --- runs: A B A B ... ------------------------------------------------------------------------
for m in "${MODELS[@]}"; do
    base=$(basename "$m" .gguf)
    for r in $(seq 1 "$ROUNDS"); do
        echo "[$base] round $r/$ROUNDS: squeeze" >&2
        # Peak resident memory (KiB) of the whole process, by GNU time, for both engines alike.
        /usr/bin/time -f "%M" -a -o "$OUTDIR/$base.squeeze.rss" \
            "$SQUEEZE" bench -m "$m" -p "$P" -n "$N" -r "$REPS" -t "$THREADS" --json \
            >> "$OUTDIR/$base.squeeze.jsonl" 2>> "$OUTDIR/$base.squeeze.log"
        echo "[$base] round $r/$ROUNDS: llama.cpp" >&2
        /usr/bin/time -f "%M" -a -o "$OUTDIR/$base.llamacpp.rss" \
            "$LB" -m "$m" -p "$P" -n "$N" -r "$REPS" -t "$THREADS" -o jsonl \
            >> "$OUTDIR/$base.llamacpp.jsonl" 2>> "$OUTDIR/$base.llamacpp.log"
    done
done

# --- cold time to first token -------------------------------------------------------------------
# A fresh process with the model file dropped from the page cache (posix_fadvise DONTNEED; the
# share still cached afterwards is logged), timed from exec to the end of one 512-token prompt
# (its logits are the first token's): mmap + page faults from disk + prefill, no warmup run.
evict() {
    "$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"
    fincore -b -n -o RES,SIZE "$1" >> "$OUTDIR/ttft.fincore" 2>/dev/null || true
}
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
for m in "${MODELS[@]}"; do
    base=$(basename "$m" .gguf)
    for r in $(seq 1 "${TTFT_ROUNDS:-3}"); do
        echo "[$base] cold TTFT round $r" >&2
        evict "$m"; t0=$EPOCHREALTIME
        "$SQUEEZE" bench -m "$m" -p 512 -n 0 -r 1 --no-warmup -t "$THREADS" --json > /dev/null 2>&1
        echo "$base squeeze $(since "$t0")" >> "$OUTDIR/ttft.txt"
        evict "$m"; t0=$EPOCHREALTIME
        "$LB" -m "$m" -p 512 -n 0 -r 1 --no-warmup -t "$THREADS" -o jsonl > /dev/null 2>&1
        echo "$base llamacpp $(since "$t0")" >> "$OUTDIR/ttft.txt"
    done
done

# --- table ------------------------------------------------------------------------------------
# Medians over every repetition of every round (REPS x ROUNDS samples per engine and test).
python3 - "$OUTDIR" "$COPY_GBS" "${MODELS[@]}" <<'EOF' | tee "$OUTDIR/table.md"
import json, os, statistics, sys
outdir, copy_gbs, models = sys.argv[1], float(sys.argv[2]), sys.argv[3:]

def samples(path):
    """{test: [t/s samples]} and the model size in bytes, from squeeze or llama-bench jsonl."""
    out, size = {}, 0
    if not os.path.exists(path):
        return out, size
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        o = json.loads(line)
        test = o.get("test") or (f"pp{o['n_prompt']}" if o["n_prompt"] else f"tg{o['n_gen']}")
        out.setdefault(test, []).extend(o["samples_ts"])
        size = o.get("model_size", size)
    return out, size

def peak_rss_mib(path):
    """The largest peak RSS (GNU time %M, KiB) over the rounds, in MiB."""
    if not os.path.exists(path):
        return float("nan")
    vals = [int(l) for l in open(path) if l.strip().isdigit()]
    return max(vals) / 1024 if vals else float("nan")

print(f"copy bandwidth: {copy_gbs:.1f} GB/s (memcpy of 1 GiB, read+write bytes)\n")
print("| model | test | squeeze t/s | llama.cpp t/s | squeeze/llama.cpp | squeeze GB/s (% copy) | llama.cpp GB/s (% copy) |")
print("|---|---|---:|---:|---:|---:|---:|")
for m in models:
    base = os.path.basename(m)[:-5] if m.endswith(".gguf") else os.path.basename(m)
    sq, size = samples(os.path.join(outdir, base + ".squeeze.jsonl"))
    lc, lsize = samples(os.path.join(outdir, base + ".llamacpp.jsonl"))
    for test in sorted(set(sq) | set(lc), key=lambda t: (t[:2] != "pp", t)):
        a = statistics.median(sq[test]) if test in sq else float("nan")
        b = statistics.median(lc[test]) if test in lc else float("nan")
        bw = ""
        if test.startswith("tg"):
            # Achieved bandwidth: every weight byte is read once per generated token.
            ga, gb = size * a / 1e9, (lsize or size) * b / 1e9
            bw = f" {ga:.1f} ({100 * ga / copy_gbs:.0f}%) | {gb:.1f} ({100 * gb / copy_gbs:.0f}%) |"
        else:
            bw = " | |"
        print(f"| {base} | {test} | {a:.2f} | {b:.2f} | {a / b:.2f} |{bw}")

print("\n| model | squeeze peak RSS MiB | llama.cpp peak RSS MiB | ratio | cold TTFT pp512 squeeze s | llama.cpp s |")
print("|---|---:|---:|---:|---:|---:|")
ttft = {}
tpath = os.path.join(outdir, "ttft.txt")
if os.path.exists(tpath):
    for line in open(tpath):
        base, eng, secs = line.split()
        ttft.setdefault((base, eng), []).append(float(secs))
for m in models:
    base = os.path.basename(m)[:-5] if m.endswith(".gguf") else os.path.basename(m)
    ra = peak_rss_mib(os.path.join(outdir, base + ".squeeze.rss"))
    rb = peak_rss_mib(os.path.join(outdir, base + ".llamacpp.rss"))
    ta = statistics.median(ttft.get((base, "squeeze"), [float("nan")]))
    tb = statistics.median(ttft.get((base, "llamacpp"), [float("nan")]))
    print(f"| {base} | {ra:.0f} | {rb:.0f} | {ra / rb:.2f} | {ta:.2f} | {tb:.2f} |")
EOF
echo "raw results: $OUTDIR" >&2
