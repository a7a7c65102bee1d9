"""The command-line contract: --help everywhere, one-line errors, seeds that reproduce."""
import pytest

from conftest import DEFAULT_MODEL, run

COMMANDS = ["run", "tokenize", "info", "perplexity", "logits", "bench"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help(squeeze_asan_bin, cmd):
    p = run([squeeze_asan_bin, cmd, "--help"], text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: squeeze {cmd}")


def test_top_level_help(squeeze_asan_bin):
    p = run([squeeze_asan_bin, "--help"], text=True)
    assert p.returncode == 0
    for cmd in COMMANDS:
        assert cmd in p.stdout


@pytest.mark.parametrize(
    "args, keyword",
    [
        (["run", "--bogus", "x"], "unknown option"),
        (["run", "-n"], "needs a value"),
        (["run", "-n", "abc", "hi"], "integer"),
        (["run", "-m", "/nonexistent.gguf", "hi"], "does not exist"),
        (["run", "--kv-type", "q9", "hi"], "kv-type"),
        (["run", "--device", "tpu", "hi"], "device"),
        (["nosuchcommand"], "unknown command"),
        (["perplexity"], "-f"),
        (["info"], "MODEL"),
    ],
)
def test_bad_flags_one_line(squeeze_asan_bin, args, keyword):
    p = run([squeeze_asan_bin, *args], text=True)
    assert p.returncode != 0
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert lines and keyword in lines[0], p.stderr
    if args[0] != "nosuchcommand":
        assert len(lines) == 1, p.stderr
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr


def test_prompt_longer_than_context(squeeze_bin, default_model):
    p = run([squeeze_bin, "run", "-m", default_model, "-c", "8", "-n", "4", "one two three four five six seven eight nine ten"], text=True)
    assert p.returncode == 1
    assert "context" in p.stderr.splitlines()[-1]


def test_seed_reproduces_and_differs(squeeze_bin, default_model):
    def gen(seed):
        p = run([squeeze_bin, "run", "-m", default_model, "-n", "24", "--temp", "1.0", "--seed", str(seed),
                 "--output-ids", "Once upon a time"], text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout.split()

    a, b, c = gen(7), gen(7), gen(8)
    assert a == b
    assert a != c


def test_default_model_runs(squeeze_bin, default_model):
    """No -m: the default model from models/ is used."""
    p = run([squeeze_bin, "run", "-n", "8", "--temp", "0", "The capital of France is"], text=True)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.strip()) > 0
    assert "gemma-3-270m-q4_k_m.gguf" in p.stderr
