"""F16 and BF16 Hugging Face weights load and compute: a tiny model's safetensors rewritten in
half precision (rounded with numpy, an independent implementation) must still give transformers'
float32 logits to within the precision of the weights, and the top-1 token at nearly every
position."""
import json
import shutil
import struct

import numpy as np
import pytest

from conftest import FIXTURES, run

TINY = FIXTURES / "tiny"


def to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        assert info["dtype"] == "F32"
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(info["shape"])
    return out


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        data = (a.astype("<f2") if dtype == "F16" else to_bf16_bits(a)).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.mark.parametrize("dtype, tol", [("F16", 5e-3), ("BF16", 4e-2)])
@pytest.mark.parametrize("name", ["llama_gqa", "gemma3"])
def test_half_precision_weights(squeeze_asan_bin, tmp_path, name, dtype, tol):
    src = TINY / name
    dst = tmp_path / name
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    write_safetensors(dst / "model.safetensors", read_safetensors(src / "model.safetensors"), dtype)
    ref = np.load(src / "reference.npz")
    tokens, want = ref["tokens"], ref["logits"].astype(np.float64)
    out = tmp_path / "logits.bin"
    r = run([squeeze_asan_bin, "logits", "-m", dst, "--tokens", " ".join(map(str, tokens)), "-o", out,
             "--kv-type", "f32", "--numerics", "exact"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = np.fromfile(out, dtype="<f4").reshape(want.shape).astype(np.float64)
    err = np.abs(got - want).max(axis=1) / np.abs(want).max(axis=1)
    agree = (got.argmax(1) == want.argmax(1)).mean()
    print(f"{name} {dtype}: worst relative error {err.max():.2e}, top-1 agreement {agree:.3f}")
    assert err.max() < tol
    assert agree >= 0.9
