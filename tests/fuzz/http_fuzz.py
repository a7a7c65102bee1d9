#!/usr/bin/env python3
"""Randomized client for the HTTP/JSON request path of `squeeze serve` (run it against the
ASan/UBSan build; not part of CI). Sends malformed and adversarial requests for --seconds:
broken JSON, wrong types, huge and negative numbers, deep nesting, invalid UTF-8, random
headers, truncated bodies, abrupt disconnects mid-stream, unknown routes and methods. Between
rounds it checks the server is alive and still answers a valid request correctly; at the end it
checks that no KV block is held and that the process exited cleanly without sanitizer reports.

usage: tests/fuzz/http_fuzz.py [--squeeze build-asan/bin/squeeze] [-m MODEL] [--seconds 600]
"""
import argparse
import http.client
import json
import pathlib
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEYS = ["prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "n", "stream",
        "stream_options", "logprobs", "top_logprobs", "echo", "model", "presence_penalty", "frequency_penalty",
        "best_of", "messages", "max_completion_tokens", "x"]
ROLES = ["system", "user", "assistant", "tool", "x", ""]


def rand_messages(rng):
    """Mostly well-formed chat turns (so the template runs) with random contents and roles."""
    msgs = []
    for _ in range(rng.randint(0, 5)):
        m = {"role": rng.choice(ROLES + [rand_value(rng)]), "content": rng.choice(["Hi", rand_value(rng)])}
        if rng.random() < 0.2:
            m["content"] = [{"type": rng.choice(["text", "image", "x"]), "text": rand_value(rng)}]
        msgs.append(m)
    return msgs


def rand_value(rng, depth=0):
    r = rng.random()
    if depth > 3 or r < 0.15:
        return rng.choice([None, True, False, 0, -1, 1, 2 ** 63, -2 ** 63, 1e308, -1e-308, 0.5, float(rng.randint(-5, 5))])
    if r < 0.45:
        return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0x80, 0x7ff), rng.randint(0x800, 0xffff),
                                       0x1F600, 0])) for _ in range(rng.randint(0, 40)))
    if r < 0.6:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    if r < 0.7:
        return [rng.randint(-10, 300000) for _ in range(rng.randint(0, 30))]
    return {rng.choice(KEYS): rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def rand_body(rng):
    r = rng.random()
    if r < 0.5:
        obj = {k: rand_value(rng) for k in rng.sample(KEYS, rng.randint(0, 6))}
        if rng.random() < 0.6:
            obj["prompt"] = rng.choice(["Hello", "a" * rng.randint(1, 3000), [1, 2, 3], rand_value(rng)])
        if rng.random() < 0.5:
            obj["max_tokens"] = rng.choice([1, 2, 4, rand_value(rng)])
        if rng.random() < 0.3:
            obj["messages"] = rand_messages(rng)
        if rng.random() < 0.2:
            obj["logprobs"] = rng.choice([True, 1, 5, 20, 21])
            obj["top_logprobs"] = rng.choice([0, 3, 20, 21, None])
        body = json.dumps(obj, allow_nan=True).encode()
    elif r < 0.7:
        body = json.dumps({"prompt": "Hi", "max_tokens": 3}).encode()
        cut = rng.randint(0, len(body))
        body = body[:cut] + bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 8)))
    elif r < 0.8:
        body = b"[" * rng.randint(1, 20000)
    elif r < 0.9:
        body = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 400)))
    else:
        body = ('{"prompt": "' + "\\ud800" * rng.randint(1, 5) + '", "max_tokens": 2}').encode()
    return body


def send(host, port, rng):
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        method = rng.choice(["POST"] * 8 + ["GET", "PUT", "DELETE"])
        path = rng.choice(["/v1/completions"] * 5 + ["/v1/chat/completions"] * 4 +
                          ["/v1/models", "/health", "/metrics", "/v1/x", "/" + "a" * 3000])
        headers = {"Content-Type": rng.choice(["application/json", "text/plain", "x" * 100])}
        if rng.random() < 0.2:
            headers["Authorization"] = "Bearer " + "k" * rng.randint(0, 100)
        conn.request(method, path, rand_body(rng) if method == "POST" else None, headers)
        resp = conn.getresponse()
        if rng.random() < 0.3:
            resp.read(rng.randint(0, 50))  # and hang up mid-response
            return resp.status
        resp.read()
        return resp.status
    except (ConnectionError, http.client.HTTPException, socket.timeout):
        return None
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squeeze", default=str(ROOT / "build-asan" / "bin" / "squeeze"))
    ap.add_argument("-m", "--model", default=str(ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    template = ROOT / "tests" / "fixtures" / "chat_templates" / "google-gemma-3-it.jinja"
    proc = subprocess.Popen([args.squeeze, "serve", "-m", args.model, "--port", str(port), "--kv-memory", "16M", "-c", "512",
                             "--chat-template-file", str(template)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    good = json.dumps({"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0})
    reference = json.loads(urllib.request.urlopen(urllib.request.Request(base + "/v1/completions", good.encode(), {"Content-Type": "application/json"})).read())["choices"][0]["text"]
    t_end = time.time() + args.seconds
    n, statuses = 0, {}
    while time.time() < t_end:
        for _ in range(20):
            st = send("127.0.0.1", port, rng)
            statuses[st] = statuses.get(st, 0) + 1
            n += 1
        if proc.poll() is not None:
            print("server died:\n" + proc.stderr.read(), file=sys.stderr)
            return 1
        again = json.loads(urllib.request.urlopen(urllib.request.Request(base + "/v1/completions", good.encode(), {"Content-Type": "application/json"})).read())["choices"][0]["text"]
        if again != reference:
            print(f"valid request changed its answer: {again!r} != {reference!r}", file=sys.stderr)
            return 1
    time.sleep(2)
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    used = float(re.search(r"^squeeze_kv_blocks_used (\S+)$", text, re.M).group(1))
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    bad = "ERROR: AddressSanitizer" in err or "runtime error" in err or "LeakSanitizer" in err
    print(f"{n} requests in {args.seconds:.0f} s, statuses {dict(sorted(statuses.items(), key=str))}, "
          f"KV blocks held after: {used:.0f}, exit {proc.returncode}, sanitizer reports: {bad}")
    if bad:
        print(err[-5000:], file=sys.stderr)
    return 0 if (used == 0 and proc.returncode == 0 and not bad) else 1


if __name__ == "__main__":
    sys.exit(main())
