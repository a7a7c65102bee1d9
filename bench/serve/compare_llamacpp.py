#!/usr/bin/env python3
"""Serving throughput, squeeze serve vs llama.cpp's llama-server (built from the llama-cpp-python
source package by `LLAMACPP_TARGETS=llama-server bench/peers/llamacpp.sh DIR`), on the same model
file and thread count, at several concurrency levels. Each level runs the same request set on
both servers, alternating A B A B for --rounds rounds; the figure is generated tokens per second
of wall time (median over rounds). Requests: /v1/completions, mixed prompt lengths (slices of
tests/fixtures/text/alice_ch1-4.txt), temperature 0, ignore_eos so both generate exactly
max_tokens. Not part of CI.

usage: bench/serve/compare_llamacpp.py [--llama-server DIR/build/bin/llama-server] [-m MODEL]
       [--levels 1,8,32] [--rounds 3] [--max-tokens 64] [-t THREADS]
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(base, proc):
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + proc.stderr.read()[-2000:])
        try:
            if urllib.request.urlopen(base + "/health", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not come up")


def complete(base, prompt, max_tokens):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}).encode()
    req = urllib.request.Request(base + "/v1/completions", body, {"Content-Type": "application/json"})
    out = json.loads(urllib.request.urlopen(req, timeout=3600).read())
    return out["usage"]["completion_tokens"]


def run_level(base, prompts, concurrency, max_tokens):
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
        tokens = sum(ex.map(lambda p: complete(base, p, max_tokens), prompts))
    return tokens / (time.perf_counter() - t0), tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squeeze", default=str(ROOT / "build" / "bin" / "squeeze"))
    ap.add_argument("--llama-server", default="/work/llamacpp-build/build/bin/llama-server")
    ap.add_argument("-m", "--model", default=str(ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    top = max(levels)
    ctx = 1024  # per sequence

    words = re.findall(r"\S+", (ROOT / "tests/fixtures/text/alice_ch1-4.txt").read_text(encoding="utf-8"))
    rng = random.Random(7)

    def prompts_for(n):
        out = []
        for _ in range(n):
            k = rng.choice([10, 40, 120, 300])
            s = rng.randrange(0, len(words) - k)
            out.append(" ".join(words[s:s + k]))
        return out

    sq_port, ll_port = free_port(), free_port()
    sq = subprocess.Popen([args.squeeze, "serve", "-m", args.model, "--port", str(sq_port), "-t", str(args.threads),
                           "--parallel", str(top), "-c", str(ctx), "--kv-memory", "2G"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ll = subprocess.Popen([args.llama_server, "-m", args.model, "--port", str(ll_port), "-t", str(args.threads),
                           "-tb", str(args.threads), "-np", str(top), "-c", str(ctx * top), "--cont-batching",
                           "--no-webui", "-fa", "on"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    engines = {"squeeze": f"http://127.0.0.1:{sq_port}", "llama-server": f"http://127.0.0.1:{ll_port}"}
    try:
        wait_up(engines["squeeze"], sq)
        wait_up(engines["llama-server"], ll)
        results = {}
        for level in levels:
            prompts = prompts_for(level * args.requests_per_client)
            for name, base in engines.items():  # warm up both on this level's prompts
                complete(base, prompts[0], 4)
            for r in range(args.rounds):
                for name, base in engines.items():
                    tps, tokens = run_level(base, prompts, level, args.max_tokens)
                    results.setdefault((level, name), []).append(tps)
                    print(f"level {level} round {r + 1} {name}: {tps:.1f} tok/s ({tokens} tokens)", file=sys.stderr)
        print(f"| concurrency | squeeze tok/s | llama-server tok/s | squeeze / llama-server |")
        print(f"|---:|---:|---:|---:|")
        for level in levels:
            a = statistics.median(results[(level, "squeeze")])
            b = statistics.median(results[(level, "llama-server")])
            print(f"| {level} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    finally:
        for p in (sq, ll):
            p.terminate()
            p.wait(timeout=60)


if __name__ == "__main__":
    main()
