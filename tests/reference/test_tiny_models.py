"""Tiny random-weight models of each architecture: squeeze's logits vs transformers (float32).

Fixtures: tests/fixtures/tiny/<name>/ (made by tests/fixtures/make_tiny_models.py), each an HF
folder (config.json + safetensors, no tokenizer) with reference.npz = the prompt (80 token ids) and
transformers' float32 eager-attention logits at every position.

For each model, squeeze runs (a) on the HF folder and (b) on a GGUF F32 file written from it by
scripts/hf_to_gguf.py; at every position the relative error max|ours - ref| / max|ref| over the
row must be <= 1e-4.

test_converter_* check the converter itself without squeeze: an independent numpy forward pass
that reads the GGUF file with llama.cpp's semantics (interleaved RoPE on the permuted llama Q/K,
rope_freqs, stored (1 + w) Gemma norms, sliding_window_pattern, ...) must reproduce the reference.
"""
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from gguf import GGUFReader

from conftest import FIXTURES, ROOT, run

TINY = FIXTURES / "tiny"
MODELS = ["llama_mha", "llama_gqa", "llama_mqa", "mistral_swa", "qwen2", "qwen3", "gemma3"]
TOL = 1e-4


def load_reference(name):
    ref = np.load(TINY / name / "reference.npz")
    return ref["tokens"], ref["logits"]


def rel_errors(ours, ref):
    """Per position: max|ours - ref| / max|ref| over the row."""
    return np.abs(ours - ref).max(axis=1) / np.abs(ref).max(axis=1)


def convert(name, out_dir):
    out = pathlib.Path(out_dir) / f"{name}.gguf"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "hf_to_gguf.py"),
                    str(TINY / name), str(out)], check=True, capture_output=True, text=True)
    return out


# ---------------------------------------------------------------------------------------------
# squeeze vs transformers


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The GGUF F32 file of every tiny model, written by scripts/hf_to_gguf.py."""
    d = tmp_path_factory.mktemp("tiny_gguf")
    return {name: convert(name, d) for name in MODELS}


@pytest.mark.parametrize("fmt", ["hf", "gguf"])
@pytest.mark.parametrize("name", MODELS)
def test_tiny_model_logits(squeeze_asan_bin, converted, name, fmt, tmp_path):
    tokens, ref = load_reference(name)
    model = TINY / name if fmt == "hf" else converted[name]
    out = tmp_path / "logits.bin"
    r = run([squeeze_asan_bin, "logits", "-m", model, "--tokens", " ".join(map(str, tokens)),
             "-o", out, "--kv-type", "f32", "--numerics", "exact"], timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    raw = np.fromfile(out, dtype="<f4")
    assert raw.size == ref.size, f"{raw.size} floats, expected {ref.shape}"
    err = rel_errors(raw.reshape(ref.shape).astype(np.float64), ref.astype(np.float64))
    worst = int(err.argmax())
    print(f"{name} [{fmt}]: worst relative error {err[worst]:.3e} at position {worst}")
    bad = np.nonzero(err > TOL)[0]
    assert bad.size == 0, (f"{name} [{fmt}]: {bad.size} positions over {TOL} "
                           f"(first {bad[:10].tolist()}), worst {err[worst]:.3e} at {worst}")


# ---------------------------------------------------------------------------------------------
# The converter, checked against transformers without squeeze


class Gguf:
    def __init__(self, path):
        r = GGUFReader(str(path))
        self.fields = {k: f.contents() for k, f in r.fields.items()
                       if not k.startswith("GGUF.")}
        self.arch = self.fields["general.architecture"]
        self.tensors = {}
        self.types = {}
        for t in r.tensors:
            shape = tuple(int(x) for x in reversed(t.shape))
            self.tensors[t.name] = np.asarray(t.data, dtype=np.float64).reshape(shape)
            self.types[t.name] = t.tensor_type.name

    def kv(self, key, default=None):
        return self.fields.get(f"{self.arch}.{key}", default)


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, base, d, neox, factors):
    """x [n, heads, d]; llama.cpp NORM (pairs 2i, 2i+1) or NEOX (pairs i, i + d/2)."""
    i = np.arange(d // 2)
    theta = pos[:, None] * (base ** (-2.0 * i / d))[None, :] / factors[None, :]
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    if neox:
        a, b = x[..., : d // 2], x[..., d // 2:]
    else:
        a, b = x[..., 0::2], x[..., 1::2]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    out = np.empty_like(x)
    if neox:
        out[..., : d // 2], out[..., d // 2:] = ra, rb
    else:
        out[..., 0::2], out[..., 1::2] = ra, rb
    return out


def gguf_forward(g: Gguf, tokens):
    """float64 forward pass of a GGUF file, as llama.cpp interprets the file."""
    T = g.tensors
    H, L = g.kv("embedding_length"), g.kv("block_count")
    nh, nkv = g.kv("attention.head_count"), g.kv("attention.head_count_kv")
    hd = g.kv("attention.key_length", H // nh)
    eps = g.kv("attention.layer_norm_rms_epsilon")
    base = g.kv("rope.freq_base", 10000.0)
    neox = g.arch != "llama"
    factors = T.get("rope_freqs.weight", np.ones(hd // 2))
    window = g.kv("attention.sliding_window")
    gemma = g.arch == "gemma3"
    if gemma:
        pattern = g.kv("attention.sliding_window_pattern", 6)
        if isinstance(pattern, list):
            is_swa = [bool(p) for p in pattern]
        else:
            is_swa = [i % pattern < pattern - 1 for i in range(L)]
    else:
        is_swa = [window is not None] * L
    n = len(tokens)
    pos = np.arange(n, dtype=np.float64)
    qpos, kpos = np.arange(n)[:, None], np.arange(n)[None, :]
    x = T["token_embd.weight"][tokens]
    if gemma:
        x = x * math.sqrt(H)
    for il in range(L):
        p = f"blk.{il}."
        a = rms_norm(x, T[p + "attn_norm.weight"], eps)
        q, k, v = (a @ T[p + f"attn_{t}.weight"].T + T.get(p + f"attn_{t}.bias", 0.0)
                   for t in "qkv")
        q, k, v = q.reshape(n, nh, hd), k.reshape(n, nkv, hd), v.reshape(n, nkv, hd)
        if p + "attn_q_norm.weight" in T:
            q = rms_norm(q, T[p + "attn_q_norm.weight"], eps)
            k = rms_norm(k, T[p + "attn_k_norm.weight"], eps)
        b = g.kv("rope.freq_base_swa", 10000.0) if gemma and is_swa[il] else base
        f = np.ones(hd // 2) if gemma and is_swa[il] else factors
        q, k = rope(q, pos, b, hd, neox, f), rope(k, pos, b, hd, neox, f)
        masked = kpos > qpos
        if is_swa[il]:
            masked = masked | (qpos - kpos >= window)
        o = np.empty((n, nh, hd))
        for h in range(nh):
            kh = h // (nh // nkv)
            s = q[:, h] @ k[:, kh].T / math.sqrt(hd)
            s[masked] = -np.inf
            s = np.exp(s - s.max(axis=1, keepdims=True))
            o[:, h] = (s / s.sum(axis=1, keepdims=True)) @ v[:, kh]
        o = o.reshape(n, nh * hd) @ T[p + "attn_output.weight"].T
        if p + "post_attention_norm.weight" in T:
            o = rms_norm(o, T[p + "post_attention_norm.weight"], eps)
        x = x + o
        m = rms_norm(x, T[p + "ffn_norm.weight"], eps)
        gate, up = m @ T[p + "ffn_gate.weight"].T, m @ T[p + "ffn_up.weight"].T
        if gemma:
            act = 0.5 * gate * (1 + np.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate**3)))
        else:
            act = gate / (1 + np.exp(-gate))
        f_out = (act * up) @ T[p + "ffn_down.weight"].T
        if p + "post_ffw_norm.weight" in T:
            f_out = rms_norm(f_out, T[p + "post_ffw_norm.weight"], eps)
        x = x + f_out
    x = rms_norm(x, T["output_norm.weight"], eps)
    logits = x @ T.get("output.weight", T["token_embd.weight"]).T
    cap = g.kv("final_logit_softcapping")
    if cap:
        logits = cap * np.tanh(logits / cap)
    return logits


@pytest.mark.parametrize("name", MODELS)
def test_converter_numpy_forward(converted, name):
    tokens, ref = load_reference(name)
    ours = gguf_forward(Gguf(converted[name]), tokens.astype(np.int64))
    err = rel_errors(ours, ref.astype(np.float64))
    print(f"{name} [gguf, numpy]: worst relative error {err.max():.3e}")
    assert err.max() <= TOL


@pytest.mark.parametrize("name", MODELS)
def test_converter_metadata(converted, name):
    g = Gguf(converted[name])
    cfg = json.loads((TINY / name / "config.json").read_text())
    arch = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
            "gemma3_text": "gemma3"}[cfg["model_type"]]
    assert g.arch == arch
    assert g.fields["general.file_type"] == 0
    assert set(g.types.values()) == {"F32"}
    assert g.kv("embedding_length") == cfg["hidden_size"]
    assert g.kv("block_count") == cfg["num_hidden_layers"]
    assert g.kv("feed_forward_length") == cfg["intermediate_size"]
    assert g.kv("attention.head_count") == cfg["num_attention_heads"]
    assert g.kv("attention.head_count_kv") == cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    assert g.kv("attention.key_length") == hd and g.kv("attention.value_length") == hd
    assert g.kv("context_length") == cfg["max_position_embeddings"]
    assert ("output.weight" in g.tensors) == (not cfg["tie_word_embeddings"])
    V = cfg["vocab_size"]
    assert g.tensors["token_embd.weight"].shape == (V, cfg["hidden_size"])
    assert len(g.fields["tokenizer.ggml.tokens"]) == V
    assert g.fields["tokenizer.ggml.model"] == "llama"
    has_bias = name == "qwen2"
    assert ("blk.0.attn_q.bias" in g.tensors) == has_bias
    assert ("blk.0.attn_q_norm.weight" in g.tensors) == (arch in ("qwen3", "gemma3"))
    if arch == "llama":
        assert g.kv("rope.dimension_count") == hd
        assert g.kv("vocab_size") == V
    if name == "llama_gqa":
        f = g.tensors["rope_freqs.weight"]
        assert f.shape == (hd // 2,) and f[0] == 1.0 and 1.0 < f[1] < 8.0 and np.all(f[2:] == 8)
        assert g.kv("rope.freq_base") == 500000.0
        assert g.kv("rope.scaling.type") is None
    else:
        assert "rope_freqs.weight" not in g.tensors
    if name == "mistral_swa":
        assert g.kv("attention.sliding_window") == 16
    if arch == "gemma3":
        assert g.kv("attention.sliding_window") == 16
        assert g.kv("attention.sliding_window_pattern") == 6
        assert g.kv("rope.freq_base") == 1e6 and g.kv("rope.freq_base_swa") == 1e4
        # stored norms are 1 + w
        from safetensors.numpy import load_file
        st = load_file(TINY / name / "model.safetensors")
        np.testing.assert_array_equal(
            g.tensors["blk.0.attn_q_norm.weight"],
            (st["model.layers.0.self_attn.q_norm.weight"] + np.float32(1)).astype(np.float64))
