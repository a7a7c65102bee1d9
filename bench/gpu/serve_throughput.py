#!/usr/bin/env python3
"""Serving throughput of `squeeze serve` (issue 5): N concurrent requests of a P-token prompt and G
output tokens each (greedy, ignore_eos, so every request generates exactly G tokens), all sent at
once from N client threads; reports output tokens/s = all generated tokens / wall time from the
first request sent to the last response received, plus the time to the first completed request.

Prompts are random token ids (BOS first), different per request, so no prefix is shared.
Standard library only. Starts the server itself (and stops it) unless --url is given.

usage: bench/gpu/serve_throughput.py -m MODEL [--squeeze build-gpu/bin/squeeze] [--requests 128]
       [--prompt 512] [--gen 256] [--kv-memory 16G] [--step-tokens 8192] [--device cuda]
       [--url http://127.0.0.1:PORT] [--server-log FILE] [--server-arg ARG ...]
"""
import argparse
import concurrent.futures
import http.client
import json
import random
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def post(url, body, timeout):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {data[:300]!r}")
    return json.loads(data)


def wait_ready(url, proc, limit_s):
    t0 = time.time()
    while time.time() - t0 < limit_s:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if urllib.request.urlopen(url + "/health", timeout=5).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model")
    ap.add_argument("--squeeze", default="build-gpu/bin/squeeze")
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=512, help="prompt tokens per request")
    ap.add_argument("--gen", type=int, default=256, help="output tokens per request")
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--kv-memory", default="16G")
    ap.add_argument("--step-tokens", type=int, default=8192)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--port", type=int, default=8181)
    ap.add_argument("--url", help="use a running server")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--server-log", default="/tmp/serve_throughput.err", help="the server's stderr")
    ap.add_argument("--server-arg", action="append", default=[], help="one more argument for squeeze serve (repeatable)")
    args = ap.parse_args()

    proc = None
    url = args.url
    if url is None:
        if not args.model:
            ap.error("-m MODEL is required unless --url is given")
        url = f"http://127.0.0.1:{args.port}"
        cmd = [args.squeeze, "serve", "-m", args.model, "--device", args.device, "--port", str(args.port),
               "--kv-memory", args.kv_memory, "--parallel", str(args.requests), "--step-tokens",
               str(args.step_tokens), "-c", str(args.prompt + args.gen + 8)] + args.server_arg
        print("server:", " ".join(cmd), flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(args.server_log, "w"))
    try:
        wait_ready(url, proc, 300)
        rng = random.Random(0)
        # Warm-up: one short request (weights uploaded, graphs captured for small batches).
        post(url, {"prompt": [1] + [rng.randrange(3, args.vocab) for _ in range(16)], "max_tokens": 8,
                   "temperature": 0, "ignore_eos": True}, args.timeout)
        prompts = [[1] + [rng.randrange(3, args.vocab) for _ in range(args.prompt - 1)] for _ in range(args.requests)]
        done_at = []

        def one(p):
            r = post(url, {"prompt": p, "max_tokens": args.gen, "temperature": 0, "ignore_eos": True}, args.timeout)
            done_at.append(time.time())
            return r["usage"]["completion_tokens"]

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.requests) as ex:
            counts = list(ex.map(one, prompts))
        wall = time.time() - t0
        total = sum(counts)
        short = sum(1 for c in counts if c != args.gen)
        print(f"RESULT serve throughput: {args.requests} concurrent requests x ({args.prompt} prompt + {args.gen} output "
              f"tokens): {total / wall:.0f} output tokens/s ({total} tokens in {wall:.2f} s; first request done after "
              f"{min(done_at) - t0:.2f} s){'' if short == 0 else f'; {short} requests stopped short: FAIL'}")
        return 1 if short else 0
    except Exception:
        if proc is not None:
            time.sleep(1)
            state = "running" if proc.poll() is None else f"exited with status {proc.returncode}"
            print(f"the server ({state}) wrote, last lines of {args.server_log}:", file=sys.stderr)
            sys.stderr.writelines(open(args.server_log).readlines()[-15:])
        raise
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
