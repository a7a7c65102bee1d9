"""Continuous batching must not change results: every prompt's greedy continuation is the same
when it runs alone in a fresh engine and when it runs among all the others with chunked prefill,
prefix sharing and a KV pool small enough to force preemption (tests/tools/engine_batch_tool.cpp).

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
    for i, n in enumerate([3, 9, 40, 75, 20, 120, 5, 60, 33, 90, 14, 150]):
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


def test_greedy_outputs_do_not_depend_on_the_batch(squeeze_bin, tools_dir, default_model, tmp_path):
    prompts = _prompts(squeeze_bin, default_model, tmp_path)
    tool = str(tools_dir / "engine_batch_tool")
    alone = run([tool, str(default_model), str(prompts), "16", "alone", "64", "64"], timeout=900, text=True, check=True)
    # 40 blocks of 16 tokens for 12 sequences of up to ~250 tokens: preemption is certain.
    together = run([tool, str(default_model), str(prompts), "16", "together", "40", "48"], timeout=900, text=True, check=True)
    a, b = alone.stdout.splitlines(), together.stdout.splitlines()
    assert len(a) == 12 and len(b) == 12
    assert len({line for line in a}) > 6, "the continuations should differ between prompts"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"prompt {i}: alone {x!r} != batched {y!r}"
    stats = together.stderr
    m = re.search(r"preemptions (\d+) prefix-cache block hits (\d+)", stats)
    assert m, stats
    assert int(m.group(1)) > 0, "the small KV pool should have forced preemption"
    assert int(m.group(2)) > 0, "the shared prefix should have been reused"
