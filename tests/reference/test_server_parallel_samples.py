"""Parallel sampling (n > 1) stores the shared prompt once: read from the server's /metrics
while the four samples of one request are still generating, the KV blocks in use stay near one
copy of the prompt plus a few private blocks per sample, far below four copies."""
import openai

from conftest import FIXTURES
from test_server import _metrics, _start


def test_n4_shares_the_prompt_blocks(squeeze_asan_bin, default_model):
    proc, base = _start(squeeze_asan_bin, default_model)
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=600)
        model = client.models.list().data[0].id
        words = (FIXTURES / "text" / "alice_ch1-4.txt").read_text(encoding="utf-8").split()
        prompt = " ".join(words[2000:2380])
        n_prompt = client.completions.create(model=model, prompt=prompt, max_tokens=1).usage.prompt_tokens
        prompt_blocks = n_prompt // 16  # full 16-token blocks
        assert prompt_blocks >= 25
        assert _metrics(base)["squeeze_kv_blocks_used"] == 0

        stream = client.completions.create(model=model, prompt=prompt + " And then", n=4, max_tokens=400,
                                           temperature=1.0, seed=7, stream=True, extra_body={"ignore_eos": True})
        seen = [0, 0, 0, 0]
        used = None
        for chunk in stream:
            for c in chunk.choices:
                seen[c.index] += 1
            if used is None and min(seen) >= 3:
                m = _metrics(base)
                used = m["squeeze_kv_blocks_used"]
                running = m["squeeze_requests_running"]
        print(f"prompt {n_prompt} tokens = {prompt_blocks} full blocks; 4 samples in flight hold {used} blocks")
        assert used is not None, "the samples finished before /metrics was read"
        assert running >= 1
        # One copy of the prompt, then per sample a copied partial block and the blocks of what
        # it has generated so far (tens of tokens at most): well under two copies of the prompt.
        assert prompt_blocks <= used < 2 * prompt_blocks, (used, prompt_blocks)
        assert _metrics(base)["squeeze_kv_blocks_used"] == 0
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err
