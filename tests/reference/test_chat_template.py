"""Chat templates render byte for byte as transformers renders them with jinja2.

tests/fixtures/chat_templates/expected.json (from scripts/make_chat_template_fixtures.py) holds
what jinja2 produced for real model templates (Gemma 2/3, Llama 3.1/3.2/3.3, Qwen2.5, Qwen3,
Mistral Nemo, Mistral Small 3.2) on a range of conversations, tools and edge cases, and for
small templates exercising one language feature each. chat_template_tool renders each case
with squeeze's ChatTemplate; the output must be identical, and where jinja2 fails squeeze must
fail too: with jinja2's message for runtime errors (raise_exception's text, type errors, ...),
with a syntax error where jinja2 rejected the template.
"""
import json
import subprocess

import pytest

from conftest import FIXTURES

FOLDER = FIXTURES / "chat_templates"
DOC = json.loads((FOLDER / "expected.json").read_text(encoding="utf-8"))
CASES = DOC["cases"]


@pytest.fixture(scope="session")
def chat_template_tool(tools_dir):
    p = tools_dir / "chat_template_tool"
    assert p.exists(), f"{p} not built"
    return p


def _template_path(case, tmp_path):
    if "template" in case:
        return FOLDER / case["template"]
    path = tmp_path / "template.jinja"
    path.write_bytes(case["source"].encode("utf-8"))  # bytes: keep \r\n and trailing newlines as given
    return path


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_chat_template_matches_jinja2(case, chat_template_tool, tmp_path):
    template = _template_path(case, tmp_path)
    context = json.dumps(case["context"], ensure_ascii=False).encode("utf-8")
    r = subprocess.run([str(chat_template_tool), "--now", DOC["now"], str(template)], input=context,
                       capture_output=True, timeout=120)
    stderr = r.stderr.decode("utf-8", "replace")
    if "expected" in case:
        assert r.returncode == 0, stderr
        assert r.stdout == case["expected"].encode("utf-8")
    else:
        assert r.returncode == 1, f"expected an error, got {r.stdout!r}"
        if case["error_kind"] == "syntax":
            assert "syntax error" in stderr, stderr
        else:
            assert case["error"] in stderr, stderr


def test_every_template_file_is_covered():
    used = {c["template"] for c in CASES if "template" in c}
    assert used == {p.name for p in FOLDER.glob("*.jinja")}
