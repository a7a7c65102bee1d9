"""Corrupt model files must fail cleanly: `squeeze info FILE` exits non-zero with exactly one
stderr line naming the problem, and no sanitizer report. The valid originals must load.

A tiny llama GGUF is written with the `gguf` package's GGUFWriter and a tiny HF folder with
`safetensors`, both at test time; every corruption starts from them. GGUF corruptions patch
bytes at offsets found by walking the file layout (models.md 1.1-1.4) independently of squeeze.
"""
import json
import shutil
import struct

import numpy as np
import pytest

from conftest import run

gguf = pytest.importorskip("gguf")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

H, FF, NH, NKV, HD = 16, 32, 4, 2, 4
TOKENS = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b", "\u2581ab"]
V = len(TOKENS)

GGUF_TENSORS = {  # GGUF name -> PyTorch-order shape
    "token_embd.weight": (V, H),
    "output_norm.weight": (H,),
    "output.weight": (V, H),
    "blk.0.attn_norm.weight": (H,),
    "blk.0.attn_q.weight": (NH * HD, H),
    "blk.0.attn_k.weight": (NKV * HD, H),
    "blk.0.attn_v.weight": (NKV * HD, H),
    "blk.0.attn_output.weight": (H, NH * HD),
    "blk.0.ffn_norm.weight": (H,),
    "blk.0.ffn_gate.weight": (FF, H),
    "blk.0.ffn_up.weight": (FF, H),
    "blk.0.ffn_down.weight": (H, FF),
}

HF_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
    "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
    "blk.0.attn_k.weight": "model.layers.0.self_attn.k_proj.weight",
    "blk.0.attn_v.weight": "model.layers.0.self_attn.v_proj.weight",
    "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
    "blk.0.ffn_norm.weight": "model.layers.0.post_attention_layernorm.weight",
    "blk.0.ffn_gate.weight": "model.layers.0.mlp.gate_proj.weight",
    "blk.0.ffn_up.weight": "model.layers.0.mlp.up_proj.weight",
    "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight",
}


def write_gguf(path, arch="llama", skip_keys=(), skip_tensors=()):
    rng = np.random.default_rng(1)
    w = gguf.GGUFWriter(str(path), arch)
    kv = {
        "context_length": ("u32", 128),
        "embedding_length": ("u32", H),
        "block_count": ("u32", 1),
        "feed_forward_length": ("u32", FF),
        "attention.head_count": ("u32", NH),
        "attention.head_count_kv": ("u32", NKV),
        "rope.dimension_count": ("u32", HD),
        "attention.layer_norm_rms_epsilon": ("f32", 1e-5),
        "rope.freq_base": ("f32", 10000.0),
    }
    for k, (t, v) in kv.items():
        key = f"{arch}.{k}"
        if key in skip_keys:
            continue
        (w.add_uint32 if t == "u32" else w.add_float32)(key, v)
    w.add_name("tiny-bad-input-test")
    w.add_tokenizer_model("llama")
    w.add_token_list(TOKENS)
    w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -0.5])
    w.add_token_types([2, 3, 3, 1, 1, 1, 1, 1])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    for name, shape in GGUF_TENSORS.items():
        if name not in skip_tensors:
            w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


class Layout:
    """Byte offsets of every field of a GGUF file, found by walking it (v2/v3, little-endian)."""

    SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def __init__(self, b):
        self.b = b
        self.n_tensors, self.n_kv = struct.unpack_from("<QQ", b, 8)
        p = 24
        self.kv = {}  # key -> dict(key_len=offset, type=offset, value=offset, count=offset)
        for _ in range(self.n_kv):
            rec = {"key_len": p}
            n = struct.unpack_from("<Q", b, p)[0]
            key = b[p + 8:p + 8 + n].decode()
            p += 8 + n
            rec["type"] = p
            t = struct.unpack_from("<I", b, p)[0]
            p += 4
            rec["value"] = p
            if t == 9:
                et, cnt = struct.unpack_from("<IQ", b, p)
                rec["count"] = p + 4
                p += 12
                for _ in range(cnt):
                    p = self._skip(et, p)
            else:
                p = self._skip(t, p)
            self.kv[key] = rec
        self.tensors = {}  # name -> dict(name=offset of length, n_dims, type, offset)
        for _ in range(self.n_tensors):
            rec = {"name": p}
            n = struct.unpack_from("<Q", b, p)[0]
            name = b[p + 8:p + 8 + n].decode()
            p += 8 + n
            rec["n_dims"] = p
            nd = struct.unpack_from("<I", b, p)[0]
            p += 4 + 8 * nd
            rec["type"] = p
            rec["offset"] = p + 4
            p += 12
            self.tensors[name] = rec

    def _skip(self, t, p):
        if t == 8:
            return p + 8 + struct.unpack_from("<Q", self.b, p)[0]
        return p + self.SIZES[t]


def patch(b, off, fmt, value):
    b = bytearray(b)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def gguf_cases(good):
    """name -> (bytes, keyword the one-line error must contain)."""
    L = Layout(good)
    first_key = next(iter(L.kv))
    q, k = L.tensors["blk.0.attn_q.weight"], L.tensors["blk.0.attn_k.weight"]
    last = list(L.tensors.values())[-1]
    q_name = good[q["name"]:q["name"] + 8 + len("blk.0.attn_q.weight")]
    bos = L.kv["tokenizer.ggml.bos_token_id"]
    dup_name = bytearray(good)
    dup_name[k["name"]:k["name"] + len(q_name)] = q_name
    dup_key = bytearray(good)
    # bos_token_id and eos_token_id have keys of the same length: rename the first to the second.
    eos_rec = L.kv["tokenizer.ggml.eos_token_id"]
    eos_key = good[eos_rec["key_len"]:eos_rec["type"]]
    dup_key[bos["key_len"]:bos["type"]] = eos_key
    return {
        "bad magic": (b"GGUX" + good[4:], "magic"),
        "truncated header": (good[:40], "truncated"),
        "truncated data": (good[:-100], "truncated"),
        "tensor beyond end of file": (patch(good, last["offset"], "<Q", 1 << 20), "beyond the end"),
        "absurd tensor count": (patch(good, 8, "<Q", 1 << 60), "tensor count"),
        "absurd kv count": (patch(good, 16, "<Q", (1 << 64) - 1), "kv count"),
        "absurd string length": (patch(good, L.kv[first_key]["key_len"], "<Q", 1 << 62), "length"),
        "absurd array length": (patch(good, L.kv["tokenizer.ggml.tokens"]["count"], "<Q", 1 << 61),
                                "array length"),
        "unknown tensor type id": (patch(good, q["type"], "<I", 1000), "type id 1000"),
        "removed tensor type id": (patch(good, q["type"], "<I", 4), "type id 4"),
        "unknown metadata value type": (patch(good, L.kv[first_key]["type"], "<I", 99), "value type 99"),
        "misaligned offset": (patch(good, last["offset"], "<Q",
                                    struct.unpack_from("<Q", good, last["offset"])[0] + 4), "align"),
        "duplicate tensor names": (bytes(dup_name), "duplicate tensor name 'blk.0.attn_q.weight'"),
        "duplicate keys": (bytes(dup_key), "duplicate metadata key 'tokenizer.ggml.eos_token_id'"),
        "n_dims > 4": (patch(good, q["n_dims"], "<I", 5), "n_dims 5"),
        "unsupported version 4": (patch(good, 4, "<I", 4), "version 4"),
        "unsupported version 1": (patch(good, 4, "<I", 1), "version 1"),
        "byte-swapped": (patch(good, 4, ">I", 3), "byte-swapped"),
        "empty file": (b"", "truncated"),
    }


def check_fails(bin_, model, keyword):
    r = run([bin_, "info", model], timeout=120, text=True, errors="replace")
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0, f"accepted a bad model: {r.stdout[-500:]}"
    assert "ERROR: AddressSanitizer" not in r.stderr and "runtime error:" not in r.stderr, r.stderr
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {r.stderr[-2000:]}"
    assert lines[0].startswith("squeeze info: error:"), lines[0]
    # The temporary path contains the test's name, so it must not count as naming the problem.
    msg = lines[0].replace(str(model), "MODEL")
    assert keyword.lower() in msg.lower(), f"'{keyword}' not in: {msg}"


def check_ok(bin_, model):
    r = run([bin_, "info", model], timeout=120, text=True, errors="replace")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ERROR: AddressSanitizer" not in r.stderr and "runtime error:" not in r.stderr, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def good_gguf(tmp_path_factory):
    return write_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


def test_valid_gguf_loads(squeeze_asan_bin, good_gguf):
    out = check_ok(squeeze_asan_bin, good_gguf)
    assert "llama" in out and "blk.0.attn_k.weight" in out


GGUF_CASE_NAMES = [
    "bad magic", "truncated header", "truncated data", "tensor beyond end of file",
    "absurd tensor count", "absurd kv count", "absurd string length", "absurd array length",
    "unknown tensor type id", "removed tensor type id", "unknown metadata value type",
    "misaligned offset", "duplicate tensor names", "duplicate keys", "n_dims > 4",
    "unsupported version 4", "unsupported version 1", "byte-swapped", "empty file",
]


@pytest.mark.parametrize("case", GGUF_CASE_NAMES)
def test_corrupt_gguf(squeeze_asan_bin, good_gguf, tmp_path, case):
    data, keyword = gguf_cases(good_gguf.read_bytes())[case]
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(data)
    check_fails(squeeze_asan_bin, bad, keyword)


@pytest.mark.parametrize("case,writer_args,keywords", [
    ("missing tensor", {"skip_tensors": {"blk.0.attn_k.weight"}}, ["blk.0.attn_k.weight"]),
    ("missing metadata", {"skip_keys": {"llama.embedding_length"}}, ["llama.embedding_length"]),
    ("unknown architecture", {"arch": "notarealarch"}, ["unknown architecture", "notarealarch"]),
])
def test_invalid_gguf_model(squeeze_asan_bin, tmp_path, case, writer_args, keywords):
    p = write_gguf(tmp_path / "model.gguf", **writer_args)
    for kw in keywords:
        check_fails(squeeze_asan_bin, p, kw)


# ---- Hugging Face folders --------------------------------------------------------------------

CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
    "intermediate_size": FF, "num_hidden_layers": 1, "num_attention_heads": NH,
    "num_key_value_heads": NKV, "head_dim": HD, "vocab_size": V, "max_position_embeddings": 128,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "torch_dtype": "float32",
}


def hf_weights():
    rng = np.random.default_rng(2)
    return {HF_NAMES[n]: rng.standard_normal(s).astype(np.float32) for n, s in GGUF_TENSORS.items()}


def write_hf(d, weights=None):
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(CONFIG))
    safetensors_numpy.save_file(weights or hf_weights(), str(d / "model.safetensors"),
                                metadata={"format": "pt"})
    return d


def split_st(b):
    n = struct.unpack_from("<Q", b, 0)[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def join_st(header_text, data):
    h = header_text.encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


@pytest.fixture(scope="module")
def good_hf(tmp_path_factory):
    return write_hf(tmp_path_factory.mktemp("hf") / "tiny-llama")


def st_cases(good):
    header, data = split_st(good)
    q = "model.layers.0.self_attn.q_proj.weight"
    k = "model.layers.0.self_attn.k_proj.weight"
    norm = "model.norm.weight"
    ln = "model.layers.0.input_layernorm.weight"

    def edited(fn):
        h = json.loads(json.dumps(header))
        fn(h)
        return join_st(json.dumps(h), data)

    def set_field(name, field, value):
        return edited(lambda h: h[name].__setitem__(field, value))

    n = struct.unpack_from("<Q", good, 0)[0]
    hdr_text = good[8:8 + n].decode()
    # Two entries with one name: JSON parsers keep the last silently, so write the text by hand.
    entry = json.dumps({norm: header[norm]})[1:-1]
    dup = join_st(hdr_text.rstrip()[:-1] + "," + entry + "}", data)
    return {
        "header length beyond file": (patch(good, 0, "<Q", len(good)), "header length"),
        "truncated header": (good[:6], "truncated"),
        "invalid JSON": (b"".join([good[:8], b"!", good[9:]]), "invalid json"),
        "bad dtype": (set_field(q, "dtype", "I64"), "dtype"),
        "float8 dtype": (set_field(q, "dtype", "F8_E4M3"), "F8_E4M3"),
        "offsets beyond file": (good[:-64], "beyond the end"),
        "offsets past data": (set_field(norm, "data_offsets",
                                        [len(data) + 8, len(data) + 8 + 4 * H]), "beyond the end"),
        "size mismatch": (set_field(q, "shape", [NH * HD, H + 1]), "size mismatch"),
        "begin after end": (set_field(norm, "data_offsets", [64, 0]), "begin"),
        "overlapping": (set_field(ln, "data_offsets", header[norm]["data_offsets"]), "overlap"),
        "partly overlapping": (set_field(k, "data_offsets",
                                         [header[q]["data_offsets"][0] + 4,
                                          header[q]["data_offsets"][0] + 4 + 4 * NKV * HD * H]),
                               "overlap"),
        "duplicate names": (dup, "duplicate"),
        "five dims": (set_field(norm, "shape", [1, 1, 1, 1, H]), "dimensions"),
    }


ST_CASE_NAMES = ["header length beyond file", "truncated header", "invalid JSON", "bad dtype",
                 "float8 dtype", "offsets beyond file", "offsets past data", "size mismatch",
                 "begin after end", "overlapping", "partly overlapping", "duplicate names",
                 "five dims"]


def test_valid_hf_folder_loads(squeeze_asan_bin, good_hf):
    out = check_ok(squeeze_asan_bin, good_hf)
    assert "blk.0.ffn_down.weight" in out


@pytest.mark.parametrize("case", ST_CASE_NAMES)
def test_corrupt_safetensors(squeeze_asan_bin, good_hf, tmp_path, case):
    data, keyword = st_cases((good_hf / "model.safetensors").read_bytes())[case]
    d = tmp_path / "hf"
    d.mkdir()
    shutil.copy(good_hf / "config.json", d / "config.json")
    (d / "model.safetensors").write_bytes(data)
    check_fails(squeeze_asan_bin, d, keyword)


def write_sharded(d, drop_shard=False, drop_tensor=None):
    """Two shards plus an index; optionally delete shard 2 or a tensor the index still names."""
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(CONFIG))
    w = hf_weights()
    names = sorted(w)
    parts = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
             "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    wm = {}
    for fname, ns in parts.items():
        wm.update({n: fname for n in ns})
        keep = {n: w[n] for n in ns if n != drop_tensor}
        safetensors_numpy.save_file(keep, str(d / fname))
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": wm}))
    if drop_shard:
        (d / "model-00002-of-00002.safetensors").unlink()
    return d


def test_valid_sharded_folder_loads(squeeze_asan_bin, tmp_path):
    check_ok(squeeze_asan_bin, write_sharded(tmp_path / "sharded"))


def test_missing_shard(squeeze_asan_bin, tmp_path):
    d = write_sharded(tmp_path / "sharded", drop_shard=True)
    check_fails(squeeze_asan_bin, d, "model-00002-of-00002.safetensors")
    check_fails(squeeze_asan_bin, d, "missing")


def test_tensor_missing_from_shard(squeeze_asan_bin, tmp_path):
    victim = "model.layers.0.self_attn.k_proj.weight"
    d = write_sharded(tmp_path / "sharded", drop_tensor=victim)
    check_fails(squeeze_asan_bin, d, victim)


def test_hf_missing_tensor(squeeze_asan_bin, tmp_path):
    w = hf_weights()
    del w["model.layers.0.self_attn.k_proj.weight"]
    d = write_hf(tmp_path / "hf", w)
    check_fails(squeeze_asan_bin, d, "attn_k")


def test_hf_unknown_architecture(squeeze_asan_bin, tmp_path):
    d = write_hf(tmp_path / "hf")
    (d / "config.json").write_text(json.dumps(dict(CONFIG, model_type="notarealarch")))
    check_fails(squeeze_asan_bin, d, "unknown architecture")
    check_fails(squeeze_asan_bin, d, "notarealarch")
