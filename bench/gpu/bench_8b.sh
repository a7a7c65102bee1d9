#!/usr/bin/env bash
# The Llama-3-8B-shaped benchmark of issue 5 on the device machine: squeeze vs llama.cpp's CUDA
# build on the same random-weight GGUF files, and (GREEDY=1) squeeze's greedy text on the GPU vs
# the CPU. Run from the repo root after bench/gpu/run.sh has built squeeze (build-gpu/) and
# bench/gpu/build_llamacpp_cuda.sh has built llama-bench:
#
#   TYPES="bf16 f16" bash bench/gpu/bench_8b.sh        # one device call (< 10 min) per few types
#   TYPES="q8_0 q4_0 q4_k_m" bash bench/gpu/bench_8b.sh
#   TYPES= GREEDY=1 bash bench/gpu/bench_8b.sh
#
# 1. Device rates, measured once with torch (kept in $STATE/device.env; MEASURE=1 measures again,
#    COPY_GBS / GEMM_TFLOPS in the environment override): copy bandwidth = 2 x bytes / time of a
#    4 GiB device-to-device copy (it reads and writes every byte: the issue's "about 3.0 TB/s"),
#    median of 10; bf16 GEMM rate = 2 x 8192^3 / time of an 8192^3 bf16 matmul, median of 10.
# 2. For each type of $TYPES: makes $MODELS/llama3-8b-TYPE.gguf (bench/gpu/make_model.py --shape
#    llama3-8b: hidden 4096, 32 layers, 32/8 heads, FFN 14336, vocab 128256; needs the gguf
#    package: installed from .whl/ into /tmp/site as run.sh does), then $ROUNDS rounds of, in turn,
#      A  squeeze bench -m FILE --device cuda -p 512 -n 256 -r $REPS --json   (pp512, tg256)
#         squeeze bench -m FILE --device cuda -p 2048 -n 0 -r $REPS --json   (pp2048)
#      B  llama-bench -m FILE -p 512,2048 -n 256 -fa on -ngl 99 -r $REPS -o jsonl
#         llama-bench -m FILE -p 2048 -n 0 -ub 2048 -fa on -ngl 99 -r $REPS -o jsonl
#    (squeeze runs its default ubatch, 2048 on cuda; llama.cpp pp2048 both with its default
#    ubatch, 512, and with 2048, and the better of the two counts)
#    takes the median over the rounds of each run's figure (squeeze: median of its repetitions;
#    llama-bench: mean of its repetitions) and deletes the file (KEEP=1 keeps it).
#    Columns: the file size; squeeze tg256 in tokens/s and as a share of the bandwidth limit
#    (tokens/s x file bytes / copy bandwidth: every weight byte read once per token, as the issue
#    counts it: 16.1 GB in BF16); llama.cpp tg256 and the ratio squeeze / llama.cpp; the same for
#    pp512; squeeze pp2048 in TFLOP/s (2 x parameters x tokens/s, all parameters of the file, the
#    embedding table included, as llama-bench counts them) and as a share of the GEMM rate;
#    llama.cpp pp2048 and the ratio.
#    Each type's row goes to $STATE/rows.jsonl and as a RESULT line to stdout and
#    $OUT/summary.txt; the table at the end shows every row in $STATE (RESET=1 empties it first),
#    so calls with different TYPES add up to one table while the machine stays warm.
# 3. GREEDY=1: for each of GREEDY_TYPES (default "f32 bf16"; files made if missing), `gpu_vs_cpu
#    greedy`: 10 prompts of 3..8 random token ids (BOS first), 32 greedy tokens each (a prefill,
#    then one-token steps), --device cuda vs the CPU backend (exact numerics, $(nproc) threads), KV
#    cache $GREEDY_KV; one process per type, so the model loads once per backend:
#    RESULT greedy FILE kv=KV: N/10 prompts agree on all 32 tokens, cuda vs cpu (...)
#    F32 weights show the backends' arithmetic; 16-bit ones add the rounding of activations to
#    the weight type, which on random weights (near-ties everywhere) flips some choices.
#
# env: BIN (squeeze's bin dir, default build-gpu/bin), LLAMA_BENCH (default
#      .peers/build-llamacpp-cuda/bin/llama-bench; without it only squeeze runs), TYPES (default
#      "bf16 f16 q8_0 q4_0 q4_k_m"; any type of make_model.py), ROUNDS (2), REPS (3), MODELS
#      (/tmp/sq8b), STATE (.peers/bench8b), OUT (logs; default /tmp/sq8b-log), KEEP, RESET,
#      MEASURE, COPY_GBS, GEMM_TFLOPS, GREEDY, GREEDY_TYPES, GREEDY_KV (f32), MAKE_ARGS
#      (more make_model.py options, e.g. "--layers 2" for a quick try of the script itself), PYTHON
#      (default python3),
#      BUDGET_S (570) and TYPE_EST_S (150): a type is not started when fewer than TYPE_EST_S
#      seconds of BUDGET_S are left (it says which TYPES to run next).
# Timing (H100, estimates): making the BF16 file under a minute; one round of BF16 about a minute.
case "${1:-}" in -h|--help) sed -n '2,/^case /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;; esac
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${BIN:-build-gpu/bin}
LLAMA_BENCH=${LLAMA_BENCH:-.peers/build-llamacpp-cuda/bin/llama-bench}
TYPES=${TYPES-bf16 f16 q8_0 q4_0 q4_k_m}
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-3}
MODELS=${MODELS:-/tmp/sq8b}
STATE=${STATE:-.peers/bench8b}
LOG=${OUT:-/tmp/sq8b-log}
BUDGET_S=${BUDGET_S:-570}
TYPE_EST_S=${TYPE_EST_S:-150}
GREEDY_KV=${GREEDY_KV:-f32}
mkdir -p "$MODELS" "$STATE" "$LOG"
[ "${RESET:-0}" = 1 ] && rm -f "$STATE/rows.jsonl"
SUMMARY=$LOG/summary.txt
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
note() { echo "$*" | tee -a "$SUMMARY"; }
say() { echo "[$(el) s] $*"; }

PYP=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
py() { env -u LD_LIBRARY_PATH PYTHONPATH="$PYP" "${PYTHON:-python3}" "$@"; }
if ! py -c "import gguf" 2>/dev/null && ls .whl/gguf-*.whl >/dev/null 2>&1; then
  py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/gguf-*.whl >"$LOG/pip.log" 2>&1
fi
py -c "import gguf" 2>/dev/null || { note "no gguf package (carry .whl/)"; exit 1; }

# squeeze as run.sh runs it (its -dev libraries unpacked in /tmp/deps).
SQ_LD=${LD_LIBRARY_PATH:-}
[ -d /tmp/deps ] && SQ_LD=$SQ_LD${SQ_LD:+:}/tmp/deps/usr/lib/x86_64-linux-gnu:/tmp/deps/lib/x86_64-linux-gnu
sq() { LD_LIBRARY_PATH=$SQ_LD "$BIN/squeeze" "$@"; }
if ! sq --help >/dev/null 2>&1; then
  note "squeeze does not run from $BIN (build it with bench/gpu/run.sh first):"; sq --help 2>&1 | tail -3; exit 1
fi
HAVE_LCPP=1
if [ ! -x "$LLAMA_BENCH" ]; then
  HAVE_LCPP=0
  note "no llama-bench at $LLAMA_BENCH (bench/gpu/build_llamacpp_cuda.sh): squeeze only"
else
  sed -n "1s/^/peer: /p" "$(dirname "$(dirname "$LLAMA_BENCH")")/VERSION" 2>/dev/null
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1 | sed 's/^/gpu: /'

# ---- 1. device rates ---------------------------------------------------------------------------
if [ "${MEASURE:-0}" = 1 ] || [ ! -s "$STATE/device.env" ]; then
  py - >"$STATE/device.env.tmp" 2>"$LOG/measure.log" <<'EOF'
import statistics, torch
d = torch.device("cuda")
def timed(fn, n=10, warm=3):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(n):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); e1.synchronize()
        ts.append(e0.elapsed_time(e1) / 1e3)
    return statistics.median(ts)
n = 4 << 30
a = torch.empty(n, dtype=torch.uint8, device=d); b = torch.empty_like(a)
copy = 2 * n / timed(lambda: b.copy_(a)) / 1e9
del a, b
x = torch.randn(8192, 8192, device=d, dtype=torch.bfloat16); y = torch.randn_like(x)
gemm = 2 * 8192 ** 3 / timed(lambda: x @ y) / 1e12
print(f"COPY_GBS_M={copy:.0f}\nGEMM_TFLOPS_M={gemm:.0f}\nGPU_NAME='{torch.cuda.get_device_name(d)}'")
EOF
  if [ -s "$STATE/device.env.tmp" ]; then mv "$STATE/device.env.tmp" "$STATE/device.env"; else tail -5 "$LOG/measure.log"; fi
fi
COPY_GBS_M=3000; GEMM_TFLOPS_M=776; GPU_NAME=unknown
[ -s "$STATE/device.env" ] && . "$STATE/device.env"
COPY_GBS=${COPY_GBS:-$COPY_GBS_M}
GEMM_TFLOPS=${GEMM_TFLOPS:-$GEMM_TFLOPS_M}
note "RESULT 8b device: $GPU_NAME: copy $COPY_GBS GB/s (2 x 4 GiB / time), bf16 GEMM 8192^3 $GEMM_TFLOPS TFLOP/s  [$(el) s]"

# ---- 2. squeeze vs llama.cpp per type ----------------------------------------------------------
summarize() {  # summarize TYPE FILE: RESULT line + row in $STATE/rows.jsonl
  py - "$1" "$2" "$LOG" "$ROUNDS" "$COPY_GBS" "$GEMM_TFLOPS" "$STATE/rows.jsonl" <<'EOF'
import json, os, statistics, sys
ty, path, log, rounds, copy, gemm, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
def lines(p):
    try:
        return [json.loads(l) for l in open(p) if l.startswith("{")]
    except (OSError, ValueError):
        return []
def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
sq = {"pp512": [], "tg256": [], "pp2048": []}; lc = {"pp512": [], "tg256": [], "pp2048": []}
params = None
for r in range(1, rounds + 1):
    # By position, not by name: the first run's pp is pp512, the second's pp2048, its tg tg256.
    got = {}
    for name, file in (("512", "sq"), ("2048", "sq2048")):
        for j in lines(f"{log}/8b-{ty}-r{r}-{file}.jsonl"):
            got["tg256" if j["test"].startswith("tg") else "pp" + name] = j["ts_median"]
            params = j.get("model_n_params", params)
    for k in sq: sq[k].append(got.get(k))
    got = {}
    js = lines(f"{log}/8b-{ty}-r{r}-lcpp.jsonl")
    pps = sorted(j["n_prompt"] for j in js if j.get("n_gen", 0) == 0)
    for j in js:
        k = "tg256" if j.get("n_gen", 0) else ("pp512", "pp2048")[min(1, pps.index(j["n_prompt"]))]
        got[k] = max(got.get(k, 0.0), j["avg_ts"]); params = params or j.get("model_n_params")  # the better ubatch
    for k in lc: lc[k].append(got.get(k))
row = {"type": ty, "bytes": os.path.getsize(path), "params": params, "copy_gbs": copy, "gemm_tflops": gemm,
       "rounds": rounds, "squeeze": {k: med(v) for k, v in sq.items()}, "llamacpp": {k: med(v) for k, v in lc.items()},
       "squeeze_rounds": sq, "llamacpp_rounds": lc}
f = lambda x, fmt="%.1f": "n/a" if x is None else fmt % x
ratio = lambda a, b: "n/a" if a is None or b is None else "x%.2f" % (a / b)
s, l, gb = row["squeeze"], row["llamacpp"], row["bytes"] / 1e9
share = None if s["tg256"] is None else 100 * s["tg256"] * gb / copy
tflops = None if s["pp2048"] is None or params is None else 2 * params * s["pp2048"] / 1e12
print(f"RESULT 8b {ty}: {gb:.2f} GB | tg256 squeeze {f(s['tg256'])} t/s = {f(share, '%.0f')}% of {copy:.0f} GB/s, "
      f"llama.cpp {f(l['tg256'])}, {ratio(s['tg256'], l['tg256'])} | pp512 squeeze {f(s['pp512'], '%.0f')}, "
      f"llama.cpp {f(l['pp512'], '%.0f')}, {ratio(s['pp512'], l['pp512'])} | pp2048 squeeze {f(s['pp2048'], '%.0f')} t/s "
      f"= {f(tflops, '%.0f')} TFLOP/s = {f(None if tflops is None else 100 * tflops / gemm, '%.0f')}% of {gemm:.0f}, "
      f"llama.cpp {f(l['pp2048'], '%.0f')}, {ratio(s['pp2048'], l['pp2048'])} (median of {rounds} rounds)")
old = [json.loads(x) for x in open(rows)] if os.path.exists(rows) else []
with open(rows, "w") as out:
    for x in old:
        if x["type"] != ty:
            out.write(json.dumps(x) + "\n")
    out.write(json.dumps(row) + "\n")
EOF
}

table() {
  [ -s "$STATE/rows.jsonl" ] || return 0
  py - "$STATE/rows.jsonl" <<'EOF'
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1])]
order = ["bf16", "f16", "q8_0", "q6_k", "q4_0", "q4_k_m", "q4_k"]
rows.sort(key=lambda r: order.index(r["type"]) if r["type"] in order else 99)
f = lambda x, fmt="%.1f": "n/a" if x is None else fmt % x
ratio = lambda a, b: "n/a" if a is None or b is None else "%.2f" % (a / b)
hdr = ["type", "file GB", "sq tg256", "% of BW", "lcpp tg256", "ratio", "sq pp512", "lcpp pp512", "ratio",
       "sq pp2048", "TFLOP/s", "% GEMM", "lcpp pp2048", "ratio"]
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join("---" for _ in hdr) + "|")
for r in rows:
    s, l, gb = r["squeeze"], r["llamacpp"], r["bytes"] / 1e9
    share = None if s["tg256"] is None else 100 * s["tg256"] * gb / r["copy_gbs"]
    tf = None if s["pp2048"] is None or not r["params"] else 2 * r["params"] * s["pp2048"] / 1e12
    cells = [r["type"], "%.2f" % gb, f(s["tg256"]), f(share, "%.0f%%"), f(l["tg256"]), ratio(s["tg256"], l["tg256"]),
             f(s["pp512"], "%.0f"), f(l["pp512"], "%.0f"), ratio(s["pp512"], l["pp512"]), f(s["pp2048"], "%.0f"),
             f(tf, "%.0f"), f(None if tf is None else 100 * tf / r["gemm_tflops"], "%.0f%%"), f(l["pp2048"], "%.0f"),
             ratio(s["pp2048"], l["pp2048"])]
    print("| " + " | ".join(cells) + " |")
c = rows[0]
print(f"(tokens/s; medians of {c['rounds']} alternating rounds; % of BW = tg x file bytes / {c['copy_gbs']:.0f} GB/s copy "
      f"bandwidth; TFLOP/s = 2 x params x pp2048 t/s, % of the {c['gemm_tflops']:.0f} TFLOP/s bf16 GEMM)")
EOF
}

make_model() {  # make_model TYPE -> path on stdout; "" on failure
  local ty=$1 f=$MODELS/llama3-8b-$1.gguf t
  t=$(date +%s)
  if [ ! -s "$f" ]; then
    rm -f "$MODELS"/*.tmp
    # shellcheck disable=SC2086
    if ! py bench/gpu/make_model.py "$f.tmp" "$ty" --shape llama3-8b ${MAKE_ARGS:-} >"$LOG/make-$ty.log" 2>&1; then
      tail -5 "$LOG/make-$ty.log" >&2; rm -f "$f.tmp"; return 1
    fi
    mv "$f.tmp" "$f"
    say "$ty: made $f ($(( $(stat -c %s "$f") / 1000000 )) MB) in $(( $(date +%s) - t )) s" >&2
  fi
  echo "$f"
}

KEEP_BF16=0
[ "${GREEDY:-0}" = 1 ] && KEEP_BF16=1
read -r -a TYPE_LIST <<<"$TYPES"
for ((k = 0; k < ${#TYPE_LIST[@]}; k++)); do
  ty=${TYPE_LIST[k]}
  if [ $(( $(el) + TYPE_EST_S )) -gt "$BUDGET_S" ]; then
    note "not started (time budget BUDGET_S=$BUDGET_S s): run again with TYPES=\"${TYPE_LIST[*]:k}\""
    break
  fi
  f=$(make_model "$ty") || { note "RESULT 8b $ty: make_model FAILED (see make-$ty.log)"; continue; }
  for r in $(seq 1 "$ROUNDS"); do
    t=$(date +%s)
    sq bench -m "$f" --device cuda -p 512 -n 256 -r "$REPS" --json >"$LOG/8b-$ty-r$r-sq.jsonl" 2>"$LOG/8b-$ty-r$r-sq.err" \
      || { note "squeeze bench $ty pp512/tg256 FAILED (round $r):"; tail -3 "$LOG/8b-$ty-r$r-sq.err"; }
    sq bench -m "$f" --device cuda -p 2048 -n 0 -r "$REPS" --json >"$LOG/8b-$ty-r$r-sq2048.jsonl" 2>"$LOG/8b-$ty-r$r-sq2048.err" \
      || { note "squeeze bench $ty pp2048 FAILED (round $r):"; tail -3 "$LOG/8b-$ty-r$r-sq2048.err"; }
    say "$ty round $r: squeeze $(( $(date +%s) - t )) s"
    if [ $HAVE_LCPP = 1 ]; then
      t=$(date +%s)
      { "$LLAMA_BENCH" -m "$f" -p 512,2048 -n 256 -fa on -ngl 99 -r "$REPS" -o jsonl &&
        "$LLAMA_BENCH" -m "$f" -p 2048 -n 0 -ub 2048 -fa on -ngl 99 -r "$REPS" -o jsonl; } >"$LOG/8b-$ty-r$r-lcpp.jsonl" 2>"$LOG/8b-$ty-r$r-lcpp.err" \
        || { note "llama-bench $ty FAILED (round $r):"; tail -3 "$LOG/8b-$ty-r$r-lcpp.err"; }
      say "$ty round $r: llama.cpp $(( $(date +%s) - t )) s"
    fi
  done
  summarize "$ty" "$f" | tee -a "$SUMMARY"
  if [ "${KEEP:-0}" != 1 ] && ! { [ "$ty" = bf16 ] && [ $KEEP_BF16 = 1 ]; }; then rm -f "$f"; fi
done

# ---- 3. greedy text, GPU vs CPU ----------------------------------------------------------------
if [ "${GREEDY:-0}" = 1 ]; then
  for ty in ${GREEDY_TYPES:-f32 bf16}; do
    if f=$(make_model "$ty"); then
      LD_LIBRARY_PATH=$SQ_LD "$BIN/gpu_vs_cpu" greedy "$f" --prompts 10 --tokens 32 --kv "$GREEDY_KV" --threads "$(nproc)" >"$LOG/greedy-$ty.log" 2>&1
      cat "$LOG/greedy-$ty.log" | tee -a "$SUMMARY"
      [ "${KEEP:-0}" != 1 ] && rm -f "$f"
    else
      note "RESULT 8b greedy $ty: make_model FAILED"
    fi
  done
fi

echo
echo "==== Llama-3-8B shape: squeeze vs llama.cpp ($(el) s; logs in $LOG) ===="
table | tee -a "$SUMMARY"
