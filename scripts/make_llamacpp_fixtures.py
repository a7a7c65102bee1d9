#!/usr/bin/env python3
"""Makes tests/fixtures/llamacpp/gemma3_270m.json: llama.cpp reference values for the Gemma 3 270M
parity tests (tests/reference/test_gemma_parity.py).

All values come from llama.cpp as vendored in the llama-cpp-python sdist on PyPI, built by
bench/peers/llamacpp.sh (CPU, Release), never from squeeze:
  * greedy: bench/peers/llamacpp_ref.cpp `greedy` (llama_tokenize with BOS and special-token parsing,
    prompt prefilled in one batch, then argmax of the logits token by token; no sampler chain);
  * teacher-forced top-1: llamacpp_ref `ppl` (llama-perplexity's chunking: whole file tokenized with
    BOS, n_ctx 512, chunk k = tokens [k*512, (k+1)*512) with its first token replaced by BOS, argmax
    of the logits at positions 256..510);
  * perplexity: the final estimate printed by llama.cpp's own `llama-perplexity -c 512 -t 2`.

The reference is the parity build (LLAMACPP_PARITY=1: AVX2/FMA/F16C, no weight repacking, no
llamafile sgemm, -ffp-contract=off), run with GGML_CPU_TILED_MM=0 (llama.cpp's own switch for its
tiled K-quant matmul, so every matmul uses the plain vec_dot kernels): the arithmetic that squeeze's
`--numerics llamacpp` reproduces bit for bit. Both are recorded in the fixture.

usage:
  LLAMACPP_PARITY=1 bench/peers/llamacpp.sh /work/llamacpp-parity
  .venv/bin/python scripts/make_llamacpp_fixtures.py [--llama-build /work/llamacpp-parity]
"""
import argparse
import hashlib
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 20 varied prompts: questions, code, lists, other languages and scripts, numbers, a story opening,
# markup, and one using Gemma's chat control tokens (exercises special-token parsing).
PROMPTS = [
    "The capital of France is",
    "Question: What is the boiling point of water at sea level in degrees Celsius?\nAnswer:",
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
    "#include <stdio.h>\n\nint main(void) {\n",
    "Shopping list:\n1. Eggs\n2. Milk\n3.",
    "Once upon a time, in a small village at the edge of a dark forest, there lived",
    "La tour Eiffel est située à Paris. Elle a été construite en",
    "Der schnellste Weg, eine neue Sprache zu lernen, ist",
    "東京は日本の首都です。人口は",
    "1, 2, 3, 5, 8, 13, 21,",
    "The square root of 144 is 12, and the square root of 169 is",
    "SQL query to count orders per customer:\nSELECT",
    "<html>\n<head>\n  <title>My Page</title>\n</head>\n<body>\n",
    "Dear Sir or Madam,\n\nI am writing to",
    "Here are the three primary colors:\n-",
    "In 1969, Neil Armstrong became the first person to",
    "¿Cuál es el río más largo del mundo? El río más largo del mundo es",
    "The mitochondria is the powerhouse of the cell. It produces",
    '{"name": "Alice", "age": 30, "city":',
    "<start_of_turn>user\nWrite a short poem about the sea.<end_of_turn>\n<start_of_turn>model\n",
]

N_PREDICT = 64
N_CTX = 512
THREADS = 2
# Runtime settings for every llama.cpp process (see the module docstring).
RUNTIME_ENV = {"GGML_CPU_TILED_MM": "0"}


def sh(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env={**os.environ, **RUNTIME_ENV}, **kw)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}")
    return r


def ids(line, tag):
    assert line.startswith(tag), (tag, line[:80])
    return [int(x) for x in line[len(tag):].split()]


def greedy(ref, model, tmp):
    files = []
    for i, p in enumerate(PROMPTS):
        f = pathlib.Path(tmp) / f"prompt{i:02d}.txt"
        f.write_bytes(p.encode("utf-8"))
        files.append(f)
    out = sh([ref, "greedy", "-m", model, "-n", N_PREDICT, "-t", THREADS, *files]).stdout.splitlines()
    assert len(out) == 4 * len(PROMPTS), out[:8]
    res = []
    for i, p in enumerate(PROMPTS):
        pi, gi, st, fa = out[4 * i: 4 * i + 4]
        res.append({
            "prompt": p,
            "prompt_ids": ids(pi, "PROMPT_IDS"),
            "greedy_ids": ids(gi, "GEN_IDS"),
            "stop": st.split()[1],
        })
        flash = fa.split()[1]
    return res, flash


def teacher_forced(ref, model, text):
    out = sh([ref, "ppl", "-m", model, "-f", text, "-c", N_CTX, "-t", THREADS]).stdout.splitlines()
    n_tokens = int(out[0].split()[1])
    tokens = ids(out[1], "TOKENS")
    assert len(tokens) == n_tokens
    chunks, ppl, flash = [], None, None
    for line in out[2:]:
        f = line.split()
        if f[0] == "CHUNK" and f[2] == "TOP1":
            k = int(f[1])
            assert k == len(chunks)
            chunks.append({"top1": [int(x) for x in f[3:]]})
        elif f[0] == "CHUNK" and f[2] == "NLL":
            chunks[int(f[1])]["nll_sum"] = float(f[3])
        elif f[0] == "PPL":
            ppl = float(f[1])
        elif f[0] == "FLASH_ATTN":
            flash = f[1]
    return tokens, chunks, ppl, flash


def llama_perplexity(bindir, model, text):
    # -v only makes the log show the graph (FLASH_ATTN_EXT nodes tell the resolved -fa auto setting)
    cmd = [bindir / "llama-perplexity", "-m", model, "-f", text, "-c", N_CTX, "-t", THREADS, "-v"]
    r = sh(cmd)
    log = r.stdout + r.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    n = re.search(r"calculating perplexity over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+), n_seq=(\d+)", log)
    assert m and n, log[-3000:]
    running = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+)", log)]
    fa_auto = re.search(r"flash_attn\s+= auto", log)
    return {
        "command": "llama-perplexity " + " ".join(str(c) for c in cmd[1:]).replace(str(ROOT) + "/", ""),
        "ppl": float(m.group(1)),
        "ppl_stderr": float(m.group(2)),
        "n_chunks": int(n.group(1)),
        "n_ctx": int(n.group(2)),
        "batch_size": int(n.group(3)),
        "n_seq": int(n.group(4)),
        "running_ppl": running,
        "kv_cache_type": "f16 (default)",
        "flash_attn": ("auto" if fa_auto else "?") + (" (enabled)" if "FLASH_ATTN_EXT" in log else " (disabled)"),
    }


def dump(obj):
    """JSON with one line per list of numbers (small diffs, readable)."""
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s*(-?[0-9.e+-]+(?:,\s*-?[0-9.e+-]+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-build", default="/work/llamacpp-parity")
    ap.add_argument("--model", default=ROOT / "models" / "gemma-3-270m-q4_k_m.gguf", type=pathlib.Path)
    ap.add_argument("--text", default=ROOT / "tests" / "fixtures" / "text" / "alice_ch1-4.txt", type=pathlib.Path)
    ap.add_argument("--out", default=ROOT / "tests" / "fixtures" / "llamacpp" / "gemma3_270m.json", type=pathlib.Path)
    a = ap.parse_args()
    build = pathlib.Path(a.llama_build)
    bindir = build / "build" / "bin"
    ref = bindir / "llamacpp_ref"
    t0 = time.time()

    version = (build / "VERSION").read_text() if (build / "VERSION").exists() else ""
    vr = subprocess.run([bindir / "llama-perplexity", "--version"], capture_output=True, text=True,
                        env={**os.environ, **RUNTIME_ENV})
    info = sh([ref, "info", "-m", a.model]).stdout
    system = re.search(r"^SYSTEM (.*)$", info, re.M).group(1).strip()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        prompts, flash_g = greedy(ref, a.model, tmp)
        t_greedy = time.time() - t
    t = time.time()
    tokens, chunks, ref_ppl, flash_t = teacher_forced(ref, a.model, a.text)
    t_tf = time.time() - t
    t = time.time()
    lp = llama_perplexity(bindir, a.model, a.text)
    t_ppl = time.time() - t

    assert len(chunks) == lp["n_chunks"] == len(tokens) // N_CTX, (len(chunks), lp["n_chunks"])
    n_scored = sum(len(c["top1"]) for c in chunks)
    cpu = ""
    try:
        cpu = re.search(r"^model name\s*:\s*(.*)$", pathlib.Path("/proc/cpuinfo").read_text(), re.M).group(1)
    except Exception:
        pass

    fixture = {
        "about": "llama.cpp reference values for tests/reference/test_gemma_parity.py; "
                 "made by scripts/make_llamacpp_fixtures.py, never from squeeze",
        "llamacpp": {
            "source": "llama.cpp vendored in the llama-cpp-python sdist (PyPI), built by bench/peers/llamacpp.sh",
            "version_file": version.strip().splitlines(),
            "version_output": (vr.stdout + vr.stderr).strip().splitlines()[-2:],
            "system_info": system,
            "cpu": cpu,
            "machine": platform.machine(),
            "threads": THREADS,
            "env": RUNTIME_ENV,
        },
        "model": {
            "file": str(a.model.relative_to(ROOT)) if a.model.is_relative_to(ROOT) else str(a.model),
            "sha256": hashlib.sha256(a.model.read_bytes()).hexdigest(),
        },
        "greedy": {
            "method": "bench/peers/llamacpp_ref greedy: llama_tokenize(add_special=true, parse_special=true); "
                      "prompt prefilled in one batch (n_batch = n_ubatch = prompt length), then one token per "
                      "decode; next token = argmax of the logits (lowest id on ties), no sampler chain; "
                      "stops after n_predict tokens or at an end-of-generation token (not included)",
            "n_predict": N_PREDICT,
            "kv_cache_type": "f16",
            "flash_attn": f"auto ({flash_g})",
            "prompts": prompts,
        },
        "perplexity": {
            "text": str(a.text.relative_to(ROOT)),
            "text_sha256": hashlib.sha256(a.text.read_bytes()).hexdigest(),
            "n_ctx": N_CTX,
            "n_tokens": len(tokens),
            "n_chunks": len(chunks),
            "scored_positions": [N_CTX // 2, N_CTX - 2],
            "n_scored": n_scored,
            "llama_perplexity": lp,
            "top1_method": "bench/peers/llamacpp_ref ppl: tokenize(add_special=true, parse_special=false); chunk k = "
                           "tokens[k*n_ctx:(k+1)*n_ctx] with the first replaced by BOS, one chunk per decode "
                           "(n_batch = n_ubatch = n_ctx = 512, n_seq 1), KV cleared per chunk, f16 KV cache; "
                           "top1[k][j-256] = argmax of the logits at position j (lowest id on ties), j = 256..510",
            "top1_flash_attn": f"auto ({flash_t})",
            "ppl_llamacpp_ref": ref_ppl,
            "tokens": tokens,
            "chunks": chunks,
        },
        "timing_s": {"greedy": round(t_greedy, 1), "teacher_forced": round(t_tf, 1),
                     "llama_perplexity": round(t_ppl, 1), "total": round(time.time() - t0, 1)},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(dump(fixture) + "\n")
    short = sum(1 for p in prompts if len(p["greedy_ids"]) < N_PREDICT)
    print(f"wrote {a.out} ({a.out.stat().st_size} bytes)")
    print(f"greedy: {len(prompts)} prompts, {short} stopped early at EOG; flash_attn {flash_g}")
    print(f"text: {len(tokens)} tokens, {len(chunks)} chunks, {n_scored} scored positions")
    print(f"llama-perplexity PPL = {lp['ppl']} +/- {lp['ppl_stderr']} ({lp['n_chunks']} chunks, "
          f"batch {lp['batch_size']}, n_seq {lp['n_seq']}); llamacpp_ref PPL = {ref_ppl}")
    print(f"timing: {fixture['timing_s']}")


if __name__ == "__main__":
    main()
