#!/usr/bin/env python3
"""Writes a random-weight Llama model (TinyLlama 1.1B or Llama 3 8B shape) as a GGUF of one weight type,
for the GPU checks and timings of bench/gpu/run.sh and bench/gpu/bench_8b.sh (speed needs realistic
sizes, not weights).

Shapes (--shape):
  tinyllama  hidden 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000, context 2048,
             rope base 10000 (the default; bench/cpu/make_models.py's constants)
  llama3-8b  hidden 4096, 32 layers, 32 heads, 8 KV heads, FFN 14336, vocab 128256, context 8192,
             rope base 500000 (16.1 GB in F16/BF16)
  small      hidden 512, 2 layers, 8 heads, 2 KV heads, FFN 1536, vocab 4096, context 2048, rope base
             10000: every kernel of the larger shapes (head_dim 64, K-quant rows) at a size that
             compute-sanitizer's racecheck gets through in seconds
Both: RMS eps 1e-5, untied output.weight, norms ones (F32).

Types: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k: every matrix in that type (q4_k is labelled MOSTLY_Q4_K_M);
q4_k_m: llama.cpp's Q4_K_M mixture (llama_tensor_get_type): Q6_K for output.weight and for attn_v
and ffn_down of the "use_more_bits" layers (i < n/8, i >= 7n/8 or (i - n/8) % 3 == 2), Q4_K for
everything else, token_embd included.

Float types get normal(0, 0.02) weights; quantized types get random blocks written directly (random
quant bytes, scales chosen so the weights have a standard deviation near 0.02), so no quantizer is
needed. The random numbers come from torch when it is importable (else numpy), in chunks of rows
with one generator each (seeded from --seed, the tensor name and the chunk), drawn by --threads
threads at once; each tensor is written as soon as it is made (the tensor infos go first), so only
about two tensors are in memory at a time: the 16 GB BF16 8B file takes well under a minute on 16
cores (the disk permitting). The same seed gives the same file whatever the thread count, but torch
and numpy give different numbers. The vocabulary is the minimal SentencePiece-style one of
bench/cpu/make_models.py, extended to the shape's size. Progress (tensor i/N) goes to stderr.

usage: make_model.py OUT.gguf TYPE [--shape tinyllama|llama3-8b|small] [--layers N] [--seed S]
                     [--threads N] [--rng auto|torch|numpy]
Needs numpy and the gguf package (torch optional).
"""
import argparse
import concurrent.futures as cf
import hashlib
import os
import pathlib
import sys
import time

import numpy as np
import gguf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cpu"))
import make_models  # noqa: E402

SHAPES = {
    "tinyllama": dict(hidden=make_models.HIDDEN, layers=make_models.LAYERS, heads=make_models.HEADS,
                      kv_heads=make_models.KV_HEADS, ffn=make_models.FFN, vocab=make_models.VOCAB,
                      ctx=make_models.CTX, rope_base=10000.0),
    "llama3-8b": dict(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, ctx=8192,
                      rope_base=500000.0),
    "small": dict(hidden=512, layers=2, heads=8, kv_heads=2, ffn=1536, vocab=4096, ctx=2048, rope_base=10000.0),
}

Q = gguf.GGMLQuantizationType
F = gguf.LlamaFileType
# type name -> (default matrix type, file type)
TYPES = {"f32": (Q.F32, F.ALL_F32), "f16": (Q.F16, F.MOSTLY_F16), "bf16": (Q.BF16, F.MOSTLY_BF16), "q8_0": (Q.Q8_0, F.MOSTLY_Q8_0),
         "q4_0": (Q.Q4_0, F.MOSTLY_Q4_0), "q4_k": (Q.Q4_K, F.MOSTLY_Q4_K_M), "q4_k_m": (Q.Q4_K, F.MOSTLY_Q4_K_M),
         "q6_k": (Q.Q6_K, F.MOSTLY_Q6_K)}
# Byte offset of each block's f16 scale(s), and the scale giving a weight std near 0.02.
SCALES = {Q.Q8_0: ([0], 0.02 / 74), Q.Q4_0: ([0], 0.02 / 4.6), Q.Q4_K: ([0, 2], 0.02 / (32 * 4.6)),
          Q.Q6_K: ([208], 0.02 / (18 * 37))}
CHUNK_ELEMENTS = 1 << 22  # weights per generator call (16 MiB of f32): 14 chunks for an 8B FFN matrix


def use_more_bits(i, n):
    """llama.cpp's llama-quant.cpp: the layers that get more bits in the _M mixtures."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def matrix_type(type_name, tensor, layer, n_layers):
    qt = TYPES[type_name][0]
    if type_name == "q4_k_m":
        if tensor == "output.weight":
            return Q.Q6_K
        if tensor in ("attn_v.weight", "ffn_down.weight") and use_more_bits(layer, n_layers):
            return Q.Q6_K
    return qt


def chunk_seed(seed, name, k):
    h = hashlib.blake2b(f"{seed}/{name}/{k}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


class TorchRng:
    """Per-chunk draws with torch (fast vectorised normal/uniform; releases the GIL)."""
    name = "torch"

    def __init__(self):
        import torch
        self.torch = torch

    def normal_into(self, out, seed, dtype):  # out: numpy (rows, cols) float32, float16 or int16 (bf16 bits)
        t = self.torch
        g = t.Generator().manual_seed(seed)
        x = t.randn(out.shape, generator=g, dtype=t.float32).mul_(0.02)
        dst = t.from_numpy(out)
        if dtype == Q.BF16:
            dst = dst.view(t.bfloat16)
        dst.copy_(x)  # round to nearest even

    def blocks_into(self, out, seed, scale_offsets, scale):  # out: numpy (nblocks, nbytes) uint8
        t = self.torch
        g = t.Generator().manual_seed(seed)
        dst = t.from_numpy(out)
        dst.copy_(t.randint(0, 256, out.shape, generator=g, dtype=t.uint8))
        for off in scale_offsets:
            d = (t.rand(out.shape[0], generator=g, dtype=t.float32).add_(0.5).mul_(scale)).to(t.float16)
            dst[:, off:off + 2] = d.view(t.uint8).reshape(-1, 2)


class NumpyRng:
    """Per-chunk draws with numpy's PCG64 (its bulk draws release the GIL too)."""
    name = "numpy"

    def normal_into(self, out, seed, dtype):
        rng = np.random.default_rng(seed)
        a = rng.standard_normal(out.shape, dtype=np.float32)
        a *= np.float32(0.02)
        if dtype == Q.F32:
            out[...] = a
        elif dtype == Q.F16:
            out[...] = a.astype(np.float16)
        else:  # bf16, round to nearest even
            u = a.view(np.uint32)
            out[...] = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16).view(np.int16)

    def blocks_into(self, out, seed, scale_offsets, scale):
        rng = np.random.default_rng(seed)
        out[...] = rng.integers(0, 256, size=out.shape, dtype=np.uint8)
        for off in scale_offsets:
            d = (rng.uniform(0.5, 1.5, size=out.shape[0]) * scale).astype(np.float16)
            out[:, off:off + 2] = d.view(np.uint8).reshape(-1, 2)


def make_rng(kind):
    if kind in ("auto", "torch"):
        try:
            return TorchRng()
        except ImportError:
            if kind == "torch":
                raise
    return NumpyRng()


def make_tensor(rng, pool, seed, name, qt, rows, cols):
    """The data of one [rows, cols] matrix (PyTorch order) of type qt, made chunk by chunk in the pool."""
    if qt in (Q.F32, Q.F16, Q.BF16):
        out = np.empty((rows, cols), dtype={Q.F32: np.float32, Q.F16: np.float16, Q.BF16: np.int16}[qt])
        step = max(1, CHUNK_ELEMENTS // cols)
        jobs = [pool.submit(rng.normal_into, out[r:r + step], chunk_seed(seed, name, k), qt)
                for k, r in enumerate(range(0, rows, step))]
    else:
        block, nbytes = gguf.GGML_QUANT_SIZES[qt]
        assert cols % block == 0, (name, cols, block)
        out = np.empty((rows * cols // block, nbytes), dtype=np.uint8)
        step = max(1, CHUNK_ELEMENTS // block)
        offs, scale = SCALES[qt]
        jobs = [pool.submit(rng.blocks_into, out[b:b + step], chunk_seed(seed, name, k), offs, scale)
                for k, b in enumerate(range(0, out.shape[0], step))]
    for j in jobs:
        j.result()
    return out


def nbytes_of(qt, rows, cols):
    block, nbytes = gguf.GGML_QUANT_SIZES[qt]
    return rows * cols // block * nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("out", help="the GGUF file to write")
    ap.add_argument("type", choices=sorted(TYPES), help="weight type")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tinyllama", help="model shape (default tinyllama)")
    ap.add_argument("--layers", type=int, default=None, help="number of layers (default: the shape's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads drawing random numbers (default: all cores)")
    ap.add_argument("--rng", choices=["auto", "torch", "numpy"], default="auto",
                    help="random number library (default auto: torch if importable, else numpy)")
    args = ap.parse_args()
    sh = SHAPES[args.shape]
    n_layers = sh["layers"] if args.layers is None else args.layers
    H, FFN, V = sh["hidden"], sh["ffn"], sh["vocab"]
    head_dim = H // sh["heads"]
    kv = sh["kv_heads"] * head_dim
    rng = make_rng(args.rng)
    if rng.name == "torch":
        rng.torch.set_num_threads(1)  # the parallelism is ours: one chunk per thread

    # (name, qt, rows, cols) for matrices; (name, None, n, 0) for F32 norms. Order as the HF converter.
    plan = [("token_embd.weight", matrix_type(args.type, "token_embd.weight", 0, n_layers), V, H)]
    for i in range(n_layers):
        p = f"blk.{i}."
        mt = lambda t: matrix_type(args.type, t, i, n_layers)  # noqa: E731
        plan += [(p + "attn_norm.weight", None, H, 0),
                 (p + "attn_q.weight", mt("attn_q.weight"), H, H),
                 (p + "attn_k.weight", mt("attn_k.weight"), kv, H),
                 (p + "attn_v.weight", mt("attn_v.weight"), kv, H),
                 (p + "attn_output.weight", mt("attn_output.weight"), H, H),
                 (p + "ffn_norm.weight", None, H, 0),
                 (p + "ffn_gate.weight", mt("ffn_gate.weight"), FFN, H),
                 (p + "ffn_up.weight", mt("ffn_up.weight"), FFN, H),
                 (p + "ffn_down.weight", mt("ffn_down.weight"), H, FFN)]
    plan += [("output_norm.weight", None, H, 0),
             ("output.weight", matrix_type(args.type, "output.weight", n_layers, n_layers), V, H)]

    wr = gguf.GGUFWriter(args.out, "llama")
    wr.add_name(f"{args.shape}-shape-random-{args.type}")
    wr.add_context_length(sh["ctx"])
    wr.add_embedding_length(H)
    wr.add_block_count(n_layers)
    wr.add_feed_forward_length(FFN)
    wr.add_head_count(sh["heads"])
    wr.add_head_count_kv(sh["kv_heads"])
    wr.add_rope_dimension_count(head_dim)
    wr.add_rope_freq_base(sh["rope_base"])
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_vocab_size(V)
    wr.add_file_type(TYPES[args.type][1])
    make_models.add_llama_vocab(wr, V)

    total = 0
    for name, qt, rows, cols in plan:
        if qt is None:
            wr.add_tensor_info(name, (rows,), np.dtype(np.float32), rows * 4)
            total += rows * 4
        else:
            nb = nbytes_of(qt, rows, cols)
            wr.add_tensor_info(name, (rows, cols), np.dtype(np.float32), nb, raw_dtype=qt)
            total += nb
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_ti_data_to_file()

    t0 = time.time()
    print(f"make_model: {args.out}: {args.shape} {args.type}, {n_layers} layers, {len(plan)} tensors, "
          f"{total / 1e9:.2f} GB of tensor data, rng {rng.name}, {args.threads} threads", file=sys.stderr)
    # One writer thread: tensor i is written while tensor i+1 is drawn.
    with cf.ThreadPoolExecutor(args.threads) as pool, cf.ThreadPoolExecutor(1) as writer:
        pending = None
        for i, (name, qt, rows, cols) in enumerate(plan):
            if qt is None:
                data = np.ones(rows, dtype=np.float32)
            else:
                data = make_tensor(rng, pool, args.seed, name, qt, rows, cols)
            if pending is not None:
                pending.result()
            pending = writer.submit(wr.write_tensor_data, data)
            if qt is not None:
                print(f"  tensor {i + 1}/{len(plan)} {name} {qt.name} [{rows}, {cols}] ({time.time() - t0:.1f} s)",
                      file=sys.stderr, flush=True)
        if pending is not None:
            pending.result()
    wr.close()
    print(f"make_model: wrote {os.path.getsize(args.out) / 1e9:.2f} GB in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
