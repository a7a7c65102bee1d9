#!/usr/bin/env python3
"""Load test for `squeeze serve` (not part of CI).

Sends N requests (default 1000) from C concurrent clients (default 64): streaming completions with
mixed prompt lengths (slices of tests/fixtures/text/alice_ch1-4.txt) and output lengths; a share
of them (default 10%) is cancelled mid-stream by closing the connection. The server runs with a
small KV pool (--kv-memory) so that preemption happens. While it runs, /metrics and the server's
resident memory are sampled.

Pass criteria (printed at the end, exit status 1 if any fails): no failed request other than the
cancelled ones; /metrics back to idle afterwards (no KV blocks held, nothing running or waiting);
resident memory flat (the last quarter of the run within 5% of the second quarter).

Reports: throughput (generated tokens/s and requests/s), TTFT and TPOT percentiles, preemptions,
and KV waste at steady state (allocated but unfilled token slots as a share of allocated).

usage: bench/serve/load_test.py [--squeeze build/bin/squeeze] [-m MODEL] [--requests 1000]
       [--clients 64] [--cancel 0.1] [--kv-memory 24M] [--url http://HOST:PORT (use a running server)]
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]


def metrics(base):
    text = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(squeeze_\w+) (\S+)$", text, re.M)}


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def one_request(host, port, prompt, max_tokens, cancel_after, out):
    """A streaming completion; cancel_after: close after this many chunks (None: read to the end)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=600)
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "stream": True,
                       "stream_options": {"include_usage": True}})
    try:
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            out.update(ok=False, error=f"HTTP {resp.status}: {resp.read()[:200]!r}")
            return
        chunks, first, usage, finish = 0, None, None, None
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            obj = json.loads(data)
            if "error" in obj:
                out.update(ok=False, error=obj["error"]["message"])
                return
            if obj.get("usage"):
                usage = obj["usage"]
            for c in obj.get("choices", []):
                if first is None and c.get("text"):
                    first = time.perf_counter()
                if c.get("finish_reason"):
                    finish = c["finish_reason"]
            chunks += 1
            if cancel_after is not None and chunks >= cancel_after:
                out.update(ok=True, cancelled=True)
                return
        t1 = time.perf_counter()
        n = usage["completion_tokens"] if usage else 0
        out.update(ok=finish is not None, cancelled=False, ttft=(first or t1) - t0,
                   tpot=(t1 - first) / (n - 1) if first and n > 1 else None, tokens=n, finish=finish)
        if finish is None:
            out["error"] = "stream ended without a finish_reason"
    except Exception as e:  # noqa: BLE001 - every failure is reported
        out.update(ok=False, error=repr(e))
    finally:
        conn.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squeeze", default=str(ROOT / "build" / "bin" / "squeeze"))
    ap.add_argument("-m", "--model", default=str(ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--cancel", type=float, default=0.10)
    ap.add_argument("--kv-memory", default="24M")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--url", help="use an already running server instead of starting one")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    words = re.findall(r"\S+", (ROOT / "tests/fixtures/text/alice_ch1-4.txt").read_text(encoding="utf-8"))
    proc = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([args.squeeze, "serve", "-m", args.model, "--port", str(port), "--kv-memory", args.kv_memory,
                                 "-c", "2048", "-t", str(args.threads), "--parallel", "64"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
    host, port = base.split("//")[1].split(":")
    port = int(port)
    idle = metrics(base)

    jobs = []
    for i in range(args.requests):
        n_words = rng.choice([5, 20, 60, 150, 300])
        start = rng.randrange(0, len(words) - n_words)
        cancel = rng.randint(2, 6) if rng.random() < args.cancel else None
        jobs.append((" ".join(words[start:start + n_words]), rng.choice([16, 32, 64, 128]), cancel))
    results = [dict() for _ in jobs]
    next_job = [0]
    lock = threading.Lock()

    def client():
        while True:
            with lock:
                i = next_job[0]
                next_job[0] += 1
            if i >= len(jobs):
                return
            one_request(host, port, *jobs[i], results[i])

    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            m = metrics(base)
            samples.append((time.perf_counter(), m, rss_kib(proc.pid) if proc else 0))
            stop.wait(0.5)

    t0 = time.perf_counter()
    st = threading.Thread(target=sampler)
    st.start()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stop.set()
    st.join()
    time.sleep(1.0)
    after = metrics(base)

    done = [r for r in results if r.get("ok") and not r.get("cancelled")]
    cancelled = [r for r in results if r.get("cancelled")]
    failed = [r for r in results if not r.get("ok")]
    tokens = sum(r["tokens"] for r in done)
    ttft = [r["ttft"] for r in done]
    tpot = [r["tpot"] for r in done if r.get("tpot")]
    busy = [m for _, m, _ in samples if m.get("squeeze_kv_slots_allocated", 0) > 0]
    waste = [1 - m["squeeze_kv_slots_filled"] / m["squeeze_kv_slots_allocated"] for m in busy]
    rss = [r for _, _, r in samples if r]
    q = len(rss) // 4
    rss_flat = (not rss) or q == 0 or abs(statistics.median(rss[3 * q:]) - statistics.median(rss[q:2 * q])) <= 0.05 * statistics.median(rss[q:2 * q])
    back_to_idle = (after["squeeze_kv_blocks_used"] == 0 and after["squeeze_requests_running"] == 0 and
                    after["squeeze_requests_waiting"] == 0)
    report = {
        "requests": len(jobs), "clients": args.clients, "completed": len(done), "cancelled": len(cancelled),
        "failed": len(failed), "failures": [r.get("error") for r in failed][:10], "wall_s": wall,
        "generated_tokens_per_s": tokens / wall, "requests_per_s": len(done) / wall,
        "ttft_p50_s": pct(ttft, 50), "ttft_p90_s": pct(ttft, 90), "ttft_p99_s": pct(ttft, 99),
        "tpot_p50_s": pct(tpot, 50), "tpot_p90_s": pct(tpot, 90), "tpot_p99_s": pct(tpot, 99),
        "preemptions": after["squeeze_preemptions_total"] - idle["squeeze_preemptions_total"],
        "kv_waste_median": statistics.median(waste) if waste else float("nan"),
        "kv_waste_p90": pct(waste, 90), "rss_kib_first_quarter": rss[q] if rss else 0, "rss_kib_last": rss[-1] if rss else 0,
        "rss_flat": rss_flat, "back_to_idle": back_to_idle, "kv_blocks_used_after": after["squeeze_kv_blocks_used"],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    if proc:
        proc.terminate()
        proc.wait(timeout=60)
    ok = not failed and back_to_idle and rss_flat
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
