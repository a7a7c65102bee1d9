"""Continuous batching must not change results: every prompt's greedy continuation is the same
when it runs alone in a fresh engine and when it runs among all 32 (all in one batch, and again
with a KV pool small enough to force preemption, with and without a swap space for the K/V of
preempted sequences), with chunked prefill and prefix sharing (tests/tools/engine_batch_tool.cpp).

The prompts are slices of Alice in Wonderland (public domain) of mixed lengths; a third of them
share a long common prefix so the prefix cache has something to share.
"""
import re

from conftest import FIXTURES, run


def _prompts(squeeze_bin, default_model, tmp_path):
    text = (FIXTURES / "text" / "alice_ch1-4.txt").read_text(encoding="utf-8")
    words = re.findall(r"\S+", text)
    shared = " ".join(words[100:160])
    prompts = []
    lengths = [3, 9, 40, 75, 20, 120, 5, 60, 33, 90, 14, 150, 2, 48, 27, 66,
               11, 101, 7, 38, 84, 16, 130, 52, 4, 70, 25, 95, 30, 8, 57, 110]
    for i, n in enumerate(lengths):
        start = 400 + 97 * i
        body = " ".join(words[start:start + n])
        prompts.append(shared + " " + body if i % 3 == 0 else body)
    lines = []
    for p in prompts:
        out = run([str(squeeze_bin), "tokenize", "-m", str(default_model), p], text=True, check=True)
        lines.append(out.stdout.strip())
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _tokens(proc):
    return proc.stdout.splitlines()


def test_greedy_outputs_do_not_depend_on_the_batch(squeeze_bin, tools_dir, default_model, tmp_path):
    prompts = _prompts(squeeze_bin, default_model, tmp_path)
    tool = str(tools_dir / "engine_batch_tool")
    alone = run([tool, str(default_model), str(prompts), "16", "alone", "64", "64"], timeout=1800, text=True, check=True)
    # All 32 in one batch: a pool large enough for every sequence, prompts chunked under a
    # 256-token step budget and mixed with the decode steps of the others.
    wide = run([tool, str(default_model), str(prompts), "16", "together", "600", "256"], timeout=1800, text=True,
               check=True)
    # 60 blocks of 16 tokens for 32 sequences of up to ~250 tokens: preemption is certain.
    tight = run([tool, str(default_model), str(prompts), "16", "together", "60", "48"], timeout=1800, text=True,
                check=True)
    # The same with an 8 MiB swap space (28 slots of this model's blocks, fewer than the pool's 60):
    # some preempted sequences keep their K/V in host memory and resume from it, the others
    # recompute once the swap space is full.
    swapped = run([tool, str(default_model), str(prompts), "16", "together", "60", "48", "2", str(8 << 20)],
                  timeout=1800, text=True, check=True)
    a = _tokens(alone)
    assert len(a) == 32
    assert len(set(a)) > 16, "the continuations should differ between prompts"
    for name, proc in (("32 at once", wide), ("preempted", tight), ("preempted with swap", swapped)):
        b = _tokens(proc)
        assert len(b) == 32
        for i, (x, y) in enumerate(zip(a, b)):
            assert x == y, f"{name}, prompt {i}: alone {x!r} != batched {y!r}"
    m = re.search(r"preemptions (\d+) prefix-cache block hits (\d+) max running (\d+)", wide.stderr)
    assert m, wide.stderr
    assert int(m.group(3)) == 32, "all 32 requests should have run in the same steps"
    assert int(m.group(2)) > 0, "the shared prefix should have been reused"
    m = re.search(r"preemptions (\d+) prefix-cache block hits (\d+) max running (\d+)", tight.stderr)
    assert m, tight.stderr
    assert int(m.group(1)) > 0, "the small KV pool should have forced preemption"
    assert int(m.group(2)) > 0, "the shared prefix should have been reused"
    m = re.search(r"preemptions (\d+) .* swapped out (\d+) in (\d+)", swapped.stderr)
    assert m, swapped.stderr
    assert int(m.group(2)) > 0, "some preempted sequences should have kept their K/V in the swap space"
    assert int(m.group(3)) == int(m.group(2)), "every swapped-out sequence should have been swapped back in"
