"""Shared pytest fixtures: where the squeeze binaries, tools and test data are."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
VOCAB_DIR = FIXTURES / "vocab"  # copies of ../shared/data/vocab (CI has no ../shared)
DEFAULT_MODEL = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"


def _bin(env, default):
    return pathlib.Path(os.environ.get(env, default))


@pytest.fixture(scope="session")
def squeeze_bin():
    """Release build: used for the long model-parity runs."""
    p = _bin("SQUEEZE_BIN", ROOT / "build" / "bin" / "squeeze")
    assert p.exists(), f"{p} not built"
    return p


@pytest.fixture(scope="session")
def squeeze_asan_bin():
    """Sanitizer build when available (bad-input and tokenizer tests), else the release build."""
    p = _bin("SQUEEZE_ASAN_BIN", ROOT / "build-asan" / "bin" / "squeeze")
    if not p.exists():
        p = _bin("SQUEEZE_BIN", ROOT / "build" / "bin" / "squeeze")
    assert p.exists(), f"{p} not built"
    return p


@pytest.fixture(scope="session")
def tools_dir():
    p = _bin("SQUEEZE_TOOLS_DIR", ROOT / "build-asan" / "bin")
    if not p.exists():
        p = ROOT / "build" / "bin"
    return p


@pytest.fixture(scope="session")
def default_model():
    assert DEFAULT_MODEL.exists(), "run scripts/setup.sh to assemble the default model"
    return DEFAULT_MODEL


def run(cmd, **kw):
    """Runs a command, returning CompletedProcess with text stdout/stderr."""
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 1800)
    return subprocess.run([str(c) for c in cmd], **kw)
