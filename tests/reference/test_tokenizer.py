"""Tokenizer parity on the hard-string corpus (tests/fixtures/tokenizer_corpus.json) for Gemma 3,
GPT-2, Llama 3 and Qwen2 style byte-level BPE, Llama 2 SentencePiece and Phi-3, each loaded both
from GGUF and from a tokenizer.json folder.

Oracles (both independent of squeeze): Hugging Face `tokenizers` for every config
(tests/fixtures/tokenizer_reference.json), and llama.cpp for the GGUF configs
(tokenizer_reference_llamacpp.json, stored as its differences from HF). A tokenizer.json folder
must match HF exactly; a GGUF file must match llama.cpp exactly, ids and pieces. Both files come
from tests/fixtures/make_tokenizer_reference.py. The folders and GGUF variants squeeze loads are
rebuilt here from the committed vocabularies (tokenizer_hf_json.py, needs only gguf).
"""
import functools
import json
import sys

import pytest

from conftest import DEFAULT_MODEL, FIXTURES, VOCAB_DIR, run

sys.path.insert(0, str(FIXTURES))
import tokenizer_hf_json as th  # noqa: E402

CORPUS = json.loads((FIXTURES / "tokenizer_corpus.json").read_text())
STRINGS = CORPUS["strings"]
INVALID = [bytes.fromhex(h) for h in CORPUS["invalid_utf8_hex"]]
REFERENCE = json.loads((FIXTURES / "tokenizer_reference.json").read_text())
assert REFERENCE["n_strings"] == len(STRINGS), "regenerate tokenizer_reference.json"
_LLAMACPP_FILE = json.loads((FIXTURES / "tokenizer_reference_llamacpp.json").read_text())
LLAMACPP = _LLAMACPP_FILE["configs"]
PRE_DIGESTS = _LLAMACPP_FILE["pre_digests"]

CONFIGS = list(th.CONFIGS)


def _vocab_file(name):
    return DEFAULT_MODEL if name == "default" else VOCAB_DIR / f"ggml-vocab-{name}.gguf"


@functools.lru_cache(maxsize=None)
def _read_vocab(name):
    return th.read_gguf_vocab(_vocab_file(name))


@pytest.fixture(scope="session")
def tokenizer_tool(tools_dir):
    p = tools_dir / "tokenizer_tool"
    assert p.exists(), f"{p} not built"
    return p


@pytest.fixture(scope="session")
def model_paths(tmp_path_factory):
    """What squeeze loads for each config: a GGUF file, a GGUF variant written here, or a
    tokenizer.json folder written here."""
    if not DEFAULT_MODEL.exists():
        pytest.skip("run scripts/setup.sh to assemble the default model")
    root = tmp_path_factory.mktemp("tokenizers")
    paths = {}
    for name, (vocab, how, builder, arg) in th.CONFIGS.items():
        if how == "gguf":
            paths[name] = _vocab_file(vocab)
        elif how.startswith("gguf:"):
            paths[name] = th.write_gguf_variant(_read_vocab(vocab), root / f"{name}.gguf", how[5:])
        else:
            tj, config = builder(_read_vocab(vocab), arg)
            paths[name] = th.write_hf_dir(root / name, tj, config)
    return paths


def _lenient_only(raw):
    """Whether llama.cpp's lenient UTF-8 decoder (unicode_cpts_from_utf8: lead-byte pattern and
    continuation bytes only) reads a character here that a strict decoder rejects: an overlong
    form, a surrogate or a value above U+10FFFF. squeeze's byte-level BPE treats those bytes as
    invalid (U+FFFD each, as llama.cpp does for all other invalid bytes); llama.cpp decodes them
    (an overlong "/" becomes "/") or throws. Its SentencePiece path keeps raw bytes, like ours."""
    i = 0
    while i < len(raw):
        c = raw[i]
        n = 1 if c < 0x80 else 2 if c & 0xE0 == 0xC0 else 3 if c & 0xF0 == 0xE0 else \
            4 if c & 0xF8 == 0xF0 else 0
        if n <= 1 or i + n > len(raw) or any(b & 0xC0 != 0x80 for b in raw[i + 1:i + n]):
            i += 1
            continue
        cp = c & (0x7F >> n)
        for b in raw[i + 1:i + n]:
            cp = (cp << 6) | (b & 0x3F)
        if cp < (0x80, 0x800, 0x10000)[n - 2] or 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF:
            return True
        i += n
    return False


def _run_tool(tool, model, texts, tmp):
    inp, out = tmp / "in.json", tmp / "out.json"
    inp.write_text(json.dumps([t.hex() for t in texts]))
    r = run([tool, model, inp, out], timeout=900)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return json.loads(out.read_text())


@pytest.fixture(scope="session")
def squeeze_results(tokenizer_tool, model_paths, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tool")
    texts = [s.encode("utf-8") for s in STRINGS]
    return {name: _run_tool(tokenizer_tool, model_paths[name], texts, tmp) for name in CONFIGS}


def _reference(name):
    vocab, _, _, arg = th.CONFIGS[name]
    return REFERENCE["refs"][f"{vocab}:{arg}"]


def _expected(name):
    """The ids squeeze must give: HF's for a tokenizer.json folder, llama.cpp's for a GGUF file."""
    hf = _reference(name)
    if name not in LLAMACPP:
        return hf
    lc = LLAMACPP[name]
    exp = {mode: list(hf[mode]) for mode in ("special", "plain")}
    for mode in ("special", "plain"):
        for i, ids in lc[f"{mode}_diff"].items():
            exp[mode][int(i)] = ids
    return exp


@pytest.mark.parametrize("name", CONFIGS)
def test_ids_match_reference(name, squeeze_results):
    """Every encoding identical to the oracle. Where llama.cpp and HF disagree on a GGUF file
    (Gemma's whitespace tokens, tokens llama.cpp turns into control tokens such as "</s>", Phi-3's
    ASCII-only rstrip), squeeze follows llama.cpp; those cases are counted in the output."""
    ours = squeeze_results[name]["results"]
    exp, hf = _expected(name), _reference(name)
    oracle = "llama.cpp" if name in LLAMACPP else "HF"
    bad, hf_diff = [], 0
    for i, s in enumerate(STRINGS):
        for mode in ("special", "plain"):
            if ours[i][mode] != exp[mode][i]:
                bad.append(f"{mode} {s[:60]!r}: squeeze {ours[i][mode][:16]} {oracle} {exp[mode][i][:16]}")
            hf_diff += ours[i][mode] != hf[mode][i]
    n = 2 * len(STRINGS)
    print(f"\n{name}: {n - len(bad)}/{n} encodings identical to {oracle}; "
          f"{n - hf_diff}/{n} identical to HF")
    assert not bad, f"{len(bad)} differences:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("name", [n for n in CONFIGS if n in LLAMACPP])
def test_pieces_match_llamacpp(name, squeeze_results):
    """token_to_piece (special off and on) for every token the corpus produced."""
    ours, theirs = squeeze_results[name]["pieces"], LLAMACPP[name]["pieces"]
    both = set(ours) & set(theirs)  # llama.cpp's list also has the ids of the invalid strings
    bad = [f"{i}: squeeze {ours[i]} llama.cpp {theirs[i]}" for i in sorted(both, key=int)
           if ours[i] != theirs[i]]
    assert len(both) == len(ours) and not bad, bad[:20]


@pytest.mark.parametrize("pre", sorted(PRE_DIGESTS))
def test_pre_tokenizer_types_match_llamacpp(pre, tokenizer_tool, tmp_path):
    """Each regex group of squeeze's tokenizer.ggml.pre table, on the GPT-2 vocabulary, against
    llama.cpp (the reference keeps 8-hex-digit digests of its id lists)."""
    from make_tokenizer_reference import ids_digest

    model = th.write_gguf_variant(_read_vocab("gpt-2"), tmp_path / f"{pre}.gguf", pre)
    res = _run_tool(tokenizer_tool, model, [s.encode("utf-8") for s in STRINGS], tmp_path)["results"]
    bad = [f"{mode} {s[:60]!r}" for i, s in enumerate(STRINGS) for mode in ("special", "plain")
           if ids_digest(res[i][mode]) != PRE_DIGESTS[pre][mode][i]]
    assert not bad, f"{len(bad)} differences from llama.cpp:\n" + "\n".join(bad[:20])


# (bos, eos, add_bos, add_eos) squeeze must report, and the end-of-generation ids of the
# tokenizer.json folders (for GGUF files, llama.cpp's set).
EXPECTED_INFO = {
    "gemma3": (2, 1, True, False),
    "gpt2": (50256, 50256, False, False),
    "llama3": (50256, 50256, True, False),
    "qwen2": (50256, 50256, False, False),
    "llama-spm": (1, 2, True, False),
    "phi3": (1, 32000, True, False),
}
EXPECTED_EOG_JSON = {
    "gemma3-json": [1, 106],  # <eos>, <end_of_turn>
    "gpt2-json": [50256], "llama3-json": [50256], "qwen2-json": [50256],
    "llama-spm-json": [2],
    "phi3-json": [32000, 32007],  # <|endoftext|>, <|end|>
}


@pytest.mark.parametrize("name", CONFIGS)
def test_special_ids(name, squeeze_results):
    info = squeeze_results[name]["info"]
    assert (info["bos"], info["eos"], info["add_bos"], info["add_eos"]) == \
        EXPECTED_INFO[name.rsplit("-", 1)[0]], info
    eog = LLAMACPP[name]["eog"] if name in LLAMACPP else EXPECTED_EOG_JSON[name]
    assert info["eog"] == eog


@pytest.mark.parametrize("name", CONFIGS)
def test_decode_roundtrip(name, squeeze_results):
    """Where HF decodes a string back exactly, squeeze must too; streaming the pieces through
    StreamDecoder must give the same bytes as joining them."""
    res = squeeze_results[name]
    ours, ref = res["results"], _reference(name)
    strip = name.startswith(("llama-spm", "phi3"))  # decode() drops the dummy-prefix space
    bad = []
    for i, s in enumerate(STRINGS):
        decoded, streamed = bytes.fromhex(ours[i]["decoded"]), bytes.fromhex(ours[i]["streamed"])
        if ref["decoded"][i] is None and decoded != s.encode("utf-8"):
            bad.append(f"decode {s[:60]!r} -> {decoded[:60]!r}")
        if streamed != decoded and not (strip and streamed == b" " + decoded):
            bad.append(f"stream {s[:60]!r} -> {streamed[:60]!r}")
    assert not bad, "\n".join(bad[:20])


@pytest.mark.parametrize("name", CONFIGS)
def test_invalid_utf8(name, tokenizer_tool, model_paths, tmp_path):
    """Bytes that are not UTF-8 must tokenize cleanly (the tool runs under ASan), with llama.cpp's
    ids for GGUF files (where llama.cpp itself does not throw). The GGUF SentencePiece path keeps
    the bytes (byte fallback), so they must also decode back, except that a space escaped to
    U+2581 can end up inside a byte-fallback run (llama.cpp sizes a character by its lead byte
    alone) and then comes back as the raw bytes of U+2581."""
    res = _run_tool(tokenizer_tool, model_paths[name], INVALID, tmp_path)["results"]
    assert len(res) == len(INVALID)
    if name in LLAMACPP:
        spm = name.startswith(("gemma3", "llama-spm", "phi3"))
        for mode in ("special", "plain"):
            theirs = LLAMACPP[name][f"invalid_{mode}"]
            bad = [raw for raw, r, ids in zip(INVALID, res, theirs)
                   if ids is not None and (spm or not _lenient_only(raw)) and r[mode] != ids]
            assert not bad, (mode, bad[:10])
    if name in ("gemma3-gguf", "llama-spm-gguf", "phi3-gguf"):
        for raw, r in zip(INVALID, res):
            space = "\u2581".encode()
            back = bytes.fromhex(r["streamed"]).replace(space, b" ")
            assert back.lstrip(b" ") == raw.replace(space, b" ").lstrip(b" "), raw


def test_gemma_load_and_encode_speed(tokenizer_tool, tmp_path):
    """The 262144-token Gemma vocabulary loads quickly and 50 KB of text encodes quickly. The
    limits are loose because this may run under ASan; release numbers are far lower."""
    if not DEFAULT_MODEL.exists():
        pytest.skip("default model missing")
    text = "\n".join(STRINGS).encode("utf-8")
    text = (text * (50_000 // len(text) + 1))[:50_000]
    f = tmp_path / "text.txt"
    f.write_bytes(text)
    r = run([tokenizer_tool, DEFAULT_MODEL, "--time", f])
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    assert t["load_s"] < 5.0 and t["encode_s"] < 5.0, t


# --- the `squeeze tokenize` command ---------------------------------------------------------


def _ids(out):
    return [int(x) for x in out.decode().split()]


def test_cli_matches_library(squeeze_asan_bin, squeeze_results):
    res = squeeze_results["gemma3-gguf"]["results"]
    for i in (0, STRINGS.index("<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n")):
        r = run([squeeze_asan_bin, "tokenize", "-m", DEFAULT_MODEL, "--", STRINGS[i]])
        assert r.returncode == 0, r.stderr
        assert _ids(r.stdout) == res[i]["special"]
        r = run([squeeze_asan_bin, "tokenize", "-m", DEFAULT_MODEL, "--no-special", "--", STRINGS[i]])
        assert r.returncode == 0, r.stderr
        assert _ids(r.stdout) == res[i]["plain"]


def test_cli_file_exact_bytes(squeeze_asan_bin, model_paths, tmp_path):
    raw = b"caf\xc3\xa9 \xff\xfe <bos>\r\n\x00end"
    f = tmp_path / "in.bin"
    f.write_bytes(raw)
    for name in ("gemma3-gguf", "gpt2-json", "llama-spm-gguf"):
        r = run([squeeze_asan_bin, "tokenize", "-m", model_paths[name], "--file", f])
        assert r.returncode == 0, r.stderr
        assert len(_ids(r.stdout)) > 0
    r = run([squeeze_asan_bin, "tokenize", "-m", model_paths["gemma3-gguf"], "--pieces", "--file", f])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "2\t<bos>" and all("\t" in ln for ln in lines)


def test_cli_empty_and_errors(squeeze_asan_bin, tmp_path):
    r = run([squeeze_asan_bin, "tokenize", "-m", DEFAULT_MODEL, ""])
    assert r.returncode == 0 and _ids(r.stdout) == [2]
    r = run([squeeze_asan_bin, "tokenize", "-m", DEFAULT_MODEL, "--no-special", ""])
    assert r.returncode == 0 and _ids(r.stdout) == []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tokenizer.json").write_text('{"model": {"type": "Unigram", "vocab": []}}')
    for model in (tmp_path / "missing.gguf", bad, tmp_path):
        r = run([squeeze_asan_bin, "tokenize", "-m", model, "hi"])
        assert r.returncode == 1, (model, r.stdout, r.stderr)
        assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
