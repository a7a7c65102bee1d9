"""The OpenAI-compatible server, driven by the official `openai` Python client: completions
streaming and not, concurrency (outputs independent of the other requests), stop strings,
usage counts, errors with OpenAI error objects, the API key, KV blocks returning to idle, and
logprobs (checked for consistency, and against llama.cpp's logits when its parity build is here)."""
import concurrent.futures
import json
import math
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import openai
import pytest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(squeeze_bin, default_model, *extra):
    port = _free_port()
    template = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "chat_templates" / "google-gemma-3-it.jinja"
    proc = subprocess.Popen([str(squeeze_bin), "serve", "-m", str(default_model), "--port", str(port),
                             "--kv-memory", "48M", "-c", "1024", "--chat-template-file", str(template), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + proc.stderr.read())
        try:
            urllib.request.urlopen(base + "/health", timeout=1).read()
            return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not come up")


@pytest.fixture(scope="module")
def server(squeeze_asan_bin, default_model):
    proc, base = _start(squeeze_asan_bin, default_model)
    yield base
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=600)


def _metrics(base):
    text = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(squeeze_\w+) (\S+)$", text, re.M)}


PROMPTS = ["The capital of France is", "Alice was beginning to get very tired of sitting",
           "def fibonacci(n):", "1, 2, 3, 4,", "The quick brown fox", "Water boils at",
           "In the beginning", "Once upon a time, in a small village,"]


def test_models_and_health(client, server):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["gemma-3-270m-q4_k_m.gguf"]
    assert json.loads(urllib.request.urlopen(server + "/health").read()) == {"status": "ok"}


def test_stream_equals_non_stream_with_usage(client):
    full = client.completions.create(model="", prompt=PROMPTS[1], max_tokens=20, temperature=0)
    assert full.choices[0].finish_reason == "length"
    assert full.usage.completion_tokens == 20 and full.usage.prompt_tokens > 5
    assert full.usage.total_tokens == full.usage.prompt_tokens + 20
    chunks = list(client.completions.create(model="", prompt=PROMPTS[1], max_tokens=20, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == full.choices[0].text and len(text) > 10
    assert chunks[-1].usage.completion_tokens == 20


def test_concurrent_requests_match_sequential(client, server):
    def one(p):
        return client.completions.create(model="", prompt=p, max_tokens=24, temperature=0).choices[0].text

    sequential = [one(p) for p in PROMPTS]
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as ex:
        together = list(ex.map(one, PROMPTS))
    assert together == sequential
    assert len(set(sequential)) == len(PROMPTS)
    m = _metrics(server)
    assert m["squeeze_kv_blocks_used"] == 0 and m["squeeze_requests_running"] == 0
    assert m["squeeze_time_to_first_token_seconds_count"] >= 2 * len(PROMPTS)
    assert m["squeeze_time_per_output_token_seconds_count"] >= 2 * len(PROMPTS)


def test_chat_completions(client):
    messages = [{"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": "What is the capital of France?"}]
    full = client.chat.completions.create(model="", messages=messages, max_tokens=16, temperature=0)
    msg = full.choices[0].message
    assert msg.role == "assistant" and len(msg.content) > 0
    assert full.usage.completion_tokens == 16 and full.usage.prompt_tokens > 15
    chunks = list(client.chat.completions.create(model="", messages=messages, max_tokens=16, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == msg.content
    assert chunks[-1].usage.prompt_tokens == full.usage.prompt_tokens
    # Gemma's template rejects roles that do not alternate, with its own message.
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="", messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                                       max_tokens=2)
    assert "alternate" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="", messages=[], max_tokens=2)


def test_parallel_samples(client, server):
    prompt = " ".join(PROMPTS)
    greedy = client.completions.create(model="", prompt=prompt, max_tokens=12, temperature=0, n=3)
    assert [c.index for c in greedy.choices] == [0, 1, 2]
    assert len({c.text for c in greedy.choices}) == 1  # greedy samples agree
    assert greedy.usage.completion_tokens == 36
    sampled = client.completions.create(model="", prompt=prompt, max_tokens=12, temperature=1.0, seed=3, n=4)
    assert len({c.text for c in sampled.choices}) > 1  # different seeds per sample
    chunks = list(client.completions.create(model="", prompt=prompt, max_tokens=12, temperature=1.0, seed=3, n=4,
                                            stream=True))
    streamed = [""] * 4
    for c in chunks:
        streamed[c.choices[0].index] += c.choices[0].text
    assert streamed == [c.text for c in sampled.choices]
    assert _metrics(server)["squeeze_kv_blocks_used"] == 0


def test_prefix_cache_reuses_a_long_prompt(client, server):
    long_prompt = " ".join(PROMPTS) * 3  # well over two 16-token blocks
    first = client.completions.create(model="", prompt=long_prompt, max_tokens=8, temperature=0).choices[0].text
    before = _metrics(server)
    again = client.completions.create(model="", prompt=long_prompt, max_tokens=8, temperature=0).choices[0].text
    after = _metrics(server)
    assert again == first
    assert after["squeeze_prefix_cache_hit_rate"] > before["squeeze_prefix_cache_hit_rate"]
    assert after["squeeze_kv_blocks_cached"] >= 2 and after["squeeze_kv_blocks_used"] == 0


def test_stop_strings_and_seeded_sampling(client):
    base = client.completions.create(model="", prompt=PROMPTS[3], max_tokens=16, temperature=0).choices[0].text
    assert " 6" in base
    cut = client.completions.create(model="", prompt=PROMPTS[3], max_tokens=16, temperature=0, stop=[" 6"])
    assert cut.choices[0].finish_reason == "stop" and cut.choices[0].text == base[:base.index(" 6")]
    a = client.completions.create(model="", prompt=PROMPTS[4], max_tokens=16, temperature=1.0, seed=7).choices[0].text
    b = client.completions.create(model="", prompt=PROMPTS[4], max_tokens=16, temperature=1.0, seed=7).choices[0].text
    assert a == b


@pytest.mark.parametrize("kwargs, status", [
    ({"model": "no-such-model", "prompt": "hi"}, 404),
    ({"model": "", "prompt": "hi " * 2000}, 400),               # longer than the context
    ({"model": "", "prompt": "hi", "max_tokens": 5000}, 400),   # beyond the context
    ({"model": "", "prompt": "hi", "temperature": "hot"}, 400),
    ({"model": "", "prompt": "hi", "n": 17}, 400),
    ({"model": "", "prompt": [10 ** 9]}, 400),
])
def test_bad_requests_get_openai_errors(client, kwargs, status):
    with pytest.raises(openai.APIStatusError) as e:
        client.completions.create(**kwargs)
    assert e.value.status_code == status
    assert e.value.body["message"]


def test_malformed_bodies(server):
    for body in [b"nope", b"[1,2]", b'{"prompt": {"x": 1}}', b"{\"prompt\": \"\\ud800\"}", b"\xff\xfe"]:
        req = urllib.request.Request(server + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=60)
        assert e.value.code == 400
        assert "error" in json.loads(e.value.read())
    assert json.loads(urllib.request.urlopen(server + "/health").read())["status"] == "ok"


def test_api_key(squeeze_bin, default_model):
    proc, base = _start(squeeze_bin, default_model, "--api-key", "sekrit")
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
        ok = openai.OpenAI(base_url=base + "/v1", api_key="sekrit", max_retries=0)
        assert ok.completions.create(model="", prompt="Hi", max_tokens=2, temperature=0).usage.completion_tokens == 2
    finally:
        proc.terminate()
        proc.wait(timeout=60)


# ---- logprobs (issue 4): log-softmax of the raw logits of each step ----

def _check_step(sampled_text, sampled_lp, alternatives, k, greedy):
    """alternatives: [(text, logprob)] in response order."""
    values = [lp for _, lp in alternatives]
    assert k <= len(values) <= k + 1
    assert values == sorted(values, reverse=True)
    assert all(v <= 0 for v in values) and sampled_lp <= 0
    assert sum(math.exp(v) for v in values) <= 1 + 1e-4
    if greedy:  # the sampled token is the most likely one, with the same number
        assert alternatives[0] == (sampled_text, sampled_lp)
        assert sampled_lp == max(values)


def _legacy_lists(lp):
    return [lp.tokens, lp.token_logprobs, lp.top_logprobs, lp.text_offset]


@pytest.mark.parametrize("prompt, stop", [(PROMPTS[1], None), (PROMPTS[3], [" 6"])])
def test_completion_logprobs_greedy(client, prompt, stop):
    full = client.completions.create(model="", prompt=prompt, max_tokens=14, temperature=0, logprobs=5, stop=stop)
    choice = full.choices[0]
    lp = choice.logprobs
    n = full.usage.completion_tokens
    assert n > 0 and all(len(x) == n for x in _legacy_lists(lp))
    for tok, tlp, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        _check_step(tok, tlp, list(top.items()), 5, greedy=True)
    if stop is None:
        assert choice.finish_reason == "length"
        assert "".join(lp.tokens) == choice.text
    else:  # every generated token is listed, the one that completed the stop string included
        assert choice.finish_reason == "stop" and "".join(lp.tokens).startswith(choice.text)
        assert len("".join(lp.tokens)) > len(choice.text)
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(n)]

    chunks = list(client.completions.create(model="", prompt=prompt, max_tokens=14, temperature=0, logprobs=5, stop=stop,
                                            stream=True))
    streamed = [[], [], [], []]
    for c in chunks:
        if c.choices[0].logprobs is None:
            assert c.choices[0].text == ""
            continue
        for acc, part in zip(streamed, _legacy_lists(c.choices[0].logprobs)):
            acc += part
        if stop is None:  # a chunk carries the entries of the tokens whose text it carries
            assert "".join(c.choices[0].logprobs.tokens) == c.choices[0].text
    assert streamed == _legacy_lists(lp)
    # Logprobs off: null, as before.
    assert client.completions.create(model="", prompt=prompt, max_tokens=2, temperature=0).choices[0].logprobs is None


def test_completion_logprobs_zero_and_sampled(client):
    # logprobs=0: only the sampled token; with sampling, a sampled token outside the top k is
    # added to its step's top_logprobs ("up to logprobs+1 elements", as OpenAI documents).
    zero = client.completions.create(model="", prompt=PROMPTS[4], max_tokens=6, temperature=0, logprobs=0)
    assert [list(t) for t in zero.choices[0].logprobs.top_logprobs] == [[t] for t in zero.choices[0].logprobs.tokens]
    sampled = client.completions.create(model="", prompt=PROMPTS[6], max_tokens=24, temperature=2.0, top_p=1.0, seed=1,
                                        logprobs=1)
    lp = sampled.choices[0].logprobs
    assert len(lp.tokens) == sampled.usage.completion_tokens
    outside = 0
    for tok, tlp, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        _check_step(tok, tlp, list(top.items()), 1, greedy=False)
        assert top[tok] == tlp
        outside += len(top) == 2
    assert outside > 0, "temperature 2 should draw some token other than the most likely one"


def test_logprobs_are_raw_and_per_choice(client):
    """The same prompt gives the same first-step logprobs at any temperature (they are of the
    model's logits, before the sampling settings), and each of n choices has its own."""
    greedy = client.completions.create(model="", prompt=PROMPTS[0], max_tokens=1, temperature=0, logprobs=4)
    hot = client.completions.create(model="", prompt=PROMPTS[0], max_tokens=8, temperature=1.5, top_p=0.5,
                                    presence_penalty=1.0, seed=3, logprobs=4, n=3)
    expected = greedy.choices[0].logprobs.top_logprobs[0]
    total = 0
    for c in hot.choices:
        lp = c.logprobs
        total += len(lp.tokens)
        top0 = dict(list(lp.top_logprobs[0].items())[:4])
        assert top0 == expected
        for tok, tlp, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
            assert top[tok] == tlp
    assert total == hot.usage.completion_tokens
    assert len({tuple(c.logprobs.tokens) for c in hot.choices}) > 1
    chunks = list(client.completions.create(model="", prompt=PROMPTS[0], max_tokens=8, temperature=1.5, top_p=0.5,
                                            presence_penalty=1.0, seed=3, logprobs=4, n=3, stream=True))
    streamed = {i: [[], [], [], []] for i in range(3)}
    for ch in chunks:
        if ch.choices[0].logprobs is not None:
            for acc, part in zip(streamed[ch.choices[0].index], _legacy_lists(ch.choices[0].logprobs)):
                acc += part
    assert [streamed[i] for i in range(3)] == [_legacy_lists(c.logprobs) for c in hot.choices]


def test_chat_logprobs(client):
    messages = [{"role": "user", "content": "Name three colours."}]
    full = client.chat.completions.create(model="", messages=messages, max_tokens=12, temperature=0, logprobs=True,
                                          top_logprobs=3)
    choice = full.choices[0]
    content = choice.logprobs.content
    assert len(content) == full.usage.completion_tokens
    for e in content:
        _check_step(e.token, e.logprob, [(a.token, a.logprob) for a in e.top_logprobs], 3, greedy=True)
        assert len(e.top_logprobs) == 3
        for t in [e, *e.top_logprobs]:
            assert bytes(t.bytes).decode("utf-8", errors="replace") == t.token
    texts = [e.token for e in content]
    if choice.finish_reason == "stop":
        assert texts[-1] == "<end_of_turn>"  # the end-of-generation token is listed, as its text
        texts = texts[:-1]
    assert "".join(texts) == choice.message.content

    chunks = list(client.chat.completions.create(model="", messages=messages, max_tokens=12, temperature=0,
                                                 logprobs=True, top_logprobs=3, stream=True))
    assert chunks[0].choices[0].logprobs is None  # the role chunk
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [e.model_dump() for e in streamed] == [e.model_dump() for e in content]

    # logprobs without top_logprobs: no alternatives; logprobs false: null.
    bare = client.chat.completions.create(model="", messages=messages, max_tokens=4, temperature=0, logprobs=True)
    assert [e.top_logprobs for e in bare.choices[0].logprobs.content] == [[]] * 4
    assert [(e.token, e.logprob) for e in bare.choices[0].logprobs.content] == [(e.token, e.logprob) for e in content[:4]]
    off = client.chat.completions.create(model="", messages=messages, max_tokens=2, temperature=0, logprobs=False)
    assert off.choices[0].logprobs is None


@pytest.mark.parametrize("kwargs", [
    {"logprobs": 21}, {"logprobs": -1}, {"logprobs": True}, {"logprobs": "5"}, {"logprobs": 2.5},
    {"logprobs": 2, "echo": True},  # echo + logprobs: no logprobs for prompt tokens (explicit 400)
])
def test_completion_logprobs_bad_values(client, kwargs):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="", prompt="Hi", max_tokens=2, **kwargs)
    assert e.value.body["param"] in ("logprobs", "echo") and e.value.body["message"]


@pytest.mark.parametrize("kwargs", [
    {"logprobs": True, "top_logprobs": 21}, {"logprobs": True, "top_logprobs": -1},
    {"top_logprobs": 2}, {"logprobs": False, "top_logprobs": 2},  # top_logprobs needs logprobs true
    {"logprobs": 1}, {"logprobs": "yes"}, {"logprobs": True, "top_logprobs": "3"}, {"logprobs": True, "top_logprobs": 1.5},
])
def test_chat_logprobs_bad_values(client, kwargs):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="", messages=[{"role": "user", "content": "Hi"}], max_tokens=2, **kwargs)
    assert e.value.body["param"] in ("logprobs", "top_logprobs") and e.value.body["message"]


def _llamacpp_build():
    """The llama.cpp parity build of bench/peers/llamacpp.sh (LLAMACPP_PARITY=1), or None."""
    for d in [os.environ.get("LLAMACPP_PARITY_BUILD"), "/work/llamacpp-parity"]:
        if d and (pathlib.Path(d) / "build" / "bin").is_dir() and (pathlib.Path(d) / "src" / "vendor" / "llama.cpp").is_dir():
            version = pathlib.Path(d) / "VERSION"
            if version.exists() and "parity build" in version.read_text():
                return pathlib.Path(d)
    return None


def test_logprobs_match_llamacpp(squeeze_bin, default_model, tmp_path):
    """Independent reference: the raw logits of llama.cpp (its parity build, libllama driven by
    tests/fixtures/llamacpp_logits.cpp), log-softmax in numpy float64, against the server's
    logprobs for every step of a greedy completion. The driver evaluates each step's whole
    sequence (64+ tokens) in one batch, so llama.cpp's attention takes its key-tiled path, the
    one the serving engine uses at every step (batch invariance): with llama.cpp's parity
    build and settings the logits are the same computation, and the logprobs agree to float
    rounding."""
    import numpy as np

    build = _llamacpp_build()
    if build is None:
        pytest.skip("no llama.cpp parity build (LLAMACPP_PARITY=1 bench/peers/llamacpp.sh; LLAMACPP_PARITY_BUILD=DIR)")
    src = build / "src" / "vendor" / "llama.cpp"
    lib = build / "build" / "bin"
    driver = tmp_path / "llamacpp_logits"
    subprocess.run(["g++", "-O1", "-std=c++17", "-o", str(driver),
                    str(pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "llamacpp_logits.cpp"),
                    "-I", str(src / "include"), "-I", str(src / "ggml" / "include"), "-L", str(lib),
                    "-lllama", "-lggml", "-lggml-base", f"-Wl,-rpath,{lib}"], check=True)
    text = (pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "text" / "alice_ch1-4.txt").read_text(encoding="utf-8")
    words = re.findall(r"\S+", text)
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(" ".join(words[200:260]), encoding="utf-8")
    steps = 3
    out = subprocess.run([str(driver), str(default_model), str(prompt_file), str(steps), str(tmp_path)],
                         env={**os.environ, "GGML_CPU_TILED_MM": "0"}, capture_output=True, text=True, check=True)
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    prompt_ids = [int(x) for x in lines["PROMPT_IDS"].split()]
    gen_ids = [int(x) for x in lines["GEN_IDS"].split()]
    assert len(prompt_ids) >= 64
    pieces = {}
    for line in (tmp_path / "pieces.txt").read_text().splitlines():
        i, h = line.split(" ")
        pieces[int(i)] = b"" if h == "-" else bytes.fromhex(h)
    logits = np.fromfile(tmp_path / "logits.f32", dtype=np.float32).reshape(steps, -1).astype(np.float64)
    mx = logits.max(axis=1, keepdims=True)
    ref = logits - mx - np.log(np.exp(logits - mx).sum(axis=1, keepdims=True))

    proc, base = _start(squeeze_bin, default_model)
    try:
        c = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=600)
        r = c.completions.create(model="", prompt=prompt_ids, max_tokens=steps, temperature=0, logprobs=5)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert r.usage.prompt_tokens == len(prompt_ids)
    lp = r.choices[0].logprobs
    assert lp.tokens == [pieces[t].decode("utf-8", errors="replace") for t in gen_ids]
    for step in range(steps):
        tol = 1e-5
        order = np.argsort(-ref[step], kind="stable")[:5]
        expected = {pieces[int(t)].decode("utf-8", errors="replace"): ref[step][t] for t in order}
        got = lp.top_logprobs[step]
        assert list(got) == list(expected), f"step {step}"
        for key, value in expected.items():
            assert abs(got[key] - value) <= tol, f"step {step} {key!r}: squeeze {got[key]} llama.cpp {value}"
        assert abs(lp.token_logprobs[step] - ref[step][gen_ids[step]]) <= tol


def test_logprobs_of_tokens_that_split_a_character(client):
    """Gemma spells some emoji as byte tokens: each token's `bytes` are its raw bytes (not valid
    UTF-8 alone, its `token` string then has U+FFFD), and a streamed chunk carries the entries of
    the tokens whose bytes make up its text (an unfinished character waits for its last byte)."""
    messages = [{"role": "user", "content": "Repeat exactly: 🦒 🦓 🦔 🦕"}]
    full = client.chat.completions.create(model="", messages=messages, max_tokens=12, temperature=0, logprobs=True,
                                          top_logprobs=2)
    content = full.choices[0].logprobs.content
    raw = [bytes(e.bytes) for e in content]

    def valid(b):
        try:
            b.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False

    assert any(not valid(b) for b in raw), "expected a character split over byte tokens: " + repr(raw)
    for e in content:
        for t in [e, *e.top_logprobs]:
            assert bytes(t.bytes).decode("utf-8", errors="replace") == t.token
    assert full.choices[0].finish_reason == "length"
    assert b"".join(raw) == full.choices[0].message.content.encode()
    chunks = list(client.chat.completions.create(model="", messages=messages, max_tokens=12, temperature=0,
                                                 logprobs=True, top_logprobs=2, stream=True))
    streamed = []
    for c in chunks[1:]:
        if c.choices and c.choices[0].logprobs:
            part = [bytes(e.bytes) for e in c.choices[0].logprobs.content]
            assert b"".join(part) == (c.choices[0].delta.content or "").encode()
            streamed += part
    assert streamed == raw

    # /v1/completions: text_offset points at the character holding the token's first byte.
    r = client.completions.create(model="", prompt="Emoji list: 🦒 🦓 🦔 🦕 🦖 🦗 🦘", max_tokens=8, temperature=0,
                                  logprobs=1)
    lp, text = r.choices[0].logprobs, r.choices[0].text
    assert "\ufffd" in lp.tokens
    assert lp.text_offset == sorted(lp.text_offset) and all(0 <= o < len(text) for o in lp.text_offset)
    for tok, off in zip(lp.tokens, lp.text_offset):
        if tok != "\ufffd":
            assert text[off:off + len(tok)] == tok
        else:  # a byte of a character outside ASCII
            assert ord(text[off]) > 127


def test_preempted_requests_resume_from_the_swap_space(squeeze_asan_bin, default_model):
    """A KV pool of 7 blocks (112 tokens) for 6 concurrent requests of ~80 tokens: preemption is
    certain. With a swap space, preempted requests keep their K/V in host memory and resume from it:
    every request completes, /metrics counts swaps out and in, and the pool is whole afterwards.
    The greedy texts equal those of the same requests run one at a time."""
    proc, base = _start(squeeze_asan_bin, default_model, "--kv-memory", "2M", "--swap-space", "16M")
    try:
        c = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=600)

        def ask(p):
            r = c.completions.create(model="", prompt=p, max_tokens=60, temperature=0, extra_body={"ignore_eos": True})
            assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 60
            return r.choices[0].text

        prompts = PROMPTS[:6]
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            together = list(ex.map(ask, prompts))
        m = _metrics(base)
        alone = [ask(p) for p in prompts]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=120)
    assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err
    assert m["squeeze_preemptions_total"] > 0, m
    assert m["squeeze_kv_swapped_out_total"] > 0, m
    assert m["squeeze_kv_swapped_in_total"] == m["squeeze_kv_swapped_out_total"], m
    assert m["squeeze_kv_blocks_free"] == m["squeeze_kv_blocks_total"], m
    assert together == alone
