"""The OpenAI-compatible server, driven by the official `openai` Python client: completions
streaming and not, concurrency (outputs independent of the other requests), stop strings,
usage counts, errors with OpenAI error objects, the API key, and KV blocks returning to idle."""
import concurrent.futures
import json
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
