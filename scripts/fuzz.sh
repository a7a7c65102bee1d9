#!/usr/bin/env bash
# Builds every libFuzzer target in tests/fuzz (clang, ASan+UBSan, folder build-fuzz) and runs each
# for SECONDS seconds (default 60), then prints libFuzzer's final stats (executions, coverage).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 300 fuzz_gguf
#
# Seeds: fuzz_gguf gets tests/fixtures/vocab/*.gguf plus small generated files (shrunken copies of
# those vocabularies, a tiny model with tensors of several types, every metadata value type);
# fuzz_safetensors gets small generated files; any target also gets tests/fuzz/seeds/<target>/ if
# that folder exists. The evolving corpus stays in build-fuzz/corpus/<target> between runs and
# crash inputs go to build-fuzz/artifacts/. Environment: JOBS (build parallelism, default 2),
# FUZZ_MAX_LEN (largest input libFuzzer generates, default 65536; the big vocab seeds are cut to
# it, the shrunken ones cover their tails), FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "fuzz: SECONDS must be a whole number, got '$secs'" >&2; exit 2; }

B=build-fuzz
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz: no tests/fuzz/fuzz_*.cpp targets" >&2; exit 2; }

echo "fuzz: building ${targets[*]} in $B" >&2
CC=clang CXX=clang++ cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQUEEZE_FUZZ=ON \
  -DSQUEEZE_TESTS=OFF >/dev/null
cmake --build "$B" -j"${JOBS:-2}" --target "${targets[@]}"

PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
seeds="$B/seeds"
rm -rf "$seeds"
mkdir -p "$seeds/fuzz_gguf" "$seeds/fuzz_safetensors"
cp tests/fixtures/vocab/*.gguf "$seeds/fuzz_gguf/" 2>/dev/null || true
# Small generated seeds; without the gguf/safetensors Python packages the fuzzers still run from
# whatever seeds exist.
if ! "$PY" - "$seeds" <<'PYEOF'
import pathlib, sys
import numpy as np
out = pathlib.Path(sys.argv[1])
import gguf
from gguf import GGUFWriter, GGUFReader, GGMLQuantizationType as Q, GGUFValueType as VT

g = out / "fuzz_gguf"
# Shrunken vocabularies: every key of the fixture, arrays cut to their first 24 entries.
for f in sorted(pathlib.Path("tests/fixtures/vocab").glob("*.gguf")):
    r = GGUFReader(f)
    arch = r.fields["general.architecture"].contents()
    w = GGUFWriter(g / ("small-" + f.name), arch)
    for k, field in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        v = field.contents()
        if field.types[0] == VT.ARRAY:
            w.add_key_value(k, v[:24], VT.ARRAY, sub_type=field.types[1])
        else:
            w.add_key_value(k, v, field.types[0])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

# A tiny model: tensors of several ggml types (quantized ones as raw bytes) and a custom alignment.
rng = np.random.default_rng(0)
for name, align in (("tiny-model.gguf", None), ("tiny-model-align64.gguf", 64)):
    w = GGUFWriter(g / name, "llama")
    if align:
        w.add_custom_alignment(align)
    w.add_uint32("llama.block_count", 1)
    w.add_uint32("llama.embedding_length", 32)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 32)).astype(np.float32))
    w.add_tensor("output_norm.weight", rng.standard_normal(32).astype(np.float16))
    for qname, qt, blk in (("blk.0.attn_q.weight", Q.Q4_0, 18), ("blk.0.attn_k.weight", Q.Q8_0, 34),
                           ("blk.0.ffn_up.weight", Q.Q4_K, 144)):
        ne0 = 256 if qt == Q.Q4_K else 32
        raw = rng.integers(0, 256, size=(2, blk * ne0 // (256 if qt == Q.Q4_K else 32)), dtype=np.uint8)
        w.add_tensor(qname, raw, raw_dtype=qt)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

# Every metadata value type, scalars and arrays, in a v3 file and the same bytes as v2.
w = GGUFWriter(g / "all-types.gguf", "test")
w.add_uint8("t.u8", 7); w.add_int8("t.i8", -7); w.add_uint16("t.u16", 700); w.add_int16("t.i16", -700)
w.add_uint32("t.u32", 70000); w.add_int32("t.i32", -70000); w.add_float32("t.f32", 0.5)
w.add_bool("t.bool", True); w.add_string("t.str", "hello"); w.add_uint64("t.u64", 1 << 40)
w.add_int64("t.i64", -(1 << 40)); w.add_float64("t.f64", 0.25)
w.add_array("t.arr_str", ["a", "bb", ""]); w.add_array("t.arr_i32", [1, -2, 3])
w.add_array("t.arr_f32", [0.5, 1.5]); w.add_array("t.arr_bool", [True, False])
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
b = bytearray((g / "all-types.gguf").read_bytes()); b[4] = 2
(g / "all-types-v2.gguf").write_bytes(bytes(b))

s = out / "fuzz_safetensors"
import torch
from safetensors.torch import save_file
save_file({"model.embed_tokens.weight": torch.randn(4, 8),
           "model.norm.weight": torch.randn(8).half(),
           "model.layers.0.mlp.up_proj.weight": torch.randn(3, 8).bfloat16()},
          str(s / "three-dtypes.safetensors"), metadata={"format": "pt"})
save_file({"w": torch.zeros(0, 4)}, str(s / "empty-tensor.safetensors"))
save_file({"a": torch.ones(2, 1, 3, 1)}, str(s / "four-dims.safetensors"))
PYEOF
then
  echo "fuzz: warning: could not generate the small seeds (need $PY with numpy, gguf, torch, safetensors)" >&2
fi

status=0
summary=()
for t in "${targets[@]}"; do
  bin="$B/bin/$t"
  corpus="$B/corpus/$t"
  mkdir -p "$corpus" "$B/artifacts"
  [ -d "$seeds/$t" ] && cp -n "$seeds/$t"/* "$corpus/" 2>/dev/null || true
  [ -d "tests/fuzz/seeds/$t" ] && cp -n "tests/fuzz/seeds/$t"/* "$corpus/" 2>/dev/null || true
  log="$B/$t.log"
  echo "fuzz: running $t for ${secs}s (log $log)" >&2
  rc=0
  # shellcheck disable=SC2086
  "$bin" "$corpus" -max_total_time="$secs" -print_final_stats=1 -max_len="${FUZZ_MAX_LEN:-65536}" \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$B/artifacts/$t-" ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  speed=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  rss=$(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}' || true)
  cov=$(echo "$done_line" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "fuzz: $t FAILED (exit $rc); the end of its log:" >&2
    tail -40 "$log" >&2
    summary+=("$t: FAILED exit $rc, executions ${execs:-?}, artifacts in $B/artifacts/")
  else
    summary+=("$t: ok, executions ${execs:-?} (${speed:-?}/s), ${cov:-cov: ?}, peak rss ${rss:-?} MB")
  fi
done

echo
echo "fuzz summary (${secs}s per target):"
for line in "${summary[@]}"; do echo "  $line"; done
exit "$status"
