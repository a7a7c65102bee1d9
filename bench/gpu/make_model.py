#!/usr/bin/env python3
"""Writes a random-weight Llama model of the TinyLlama 1.1B shape as a GGUF of one weight type,
for the GPU checks and timings of bench/gpu/run.sh (speed needs realistic sizes, not weights).

Float types get normal(0, 0.02) weights; quantized types get random blocks written directly (random
quant bytes, scales chosen so the weights have a standard deviation near 0.02), so no quantizer
is needed and the file is written in seconds. Norms are ones (F32). The vocabulary is the minimal
SentencePiece-style one of bench/cpu/make_models.py.

usage: make_model.py OUT.gguf TYPE [--layers N] [--seed S]     TYPE: f16 bf16 q8_0 q4_0 q4_k q6_k
Needs numpy and the gguf package.
"""
import argparse
import pathlib
import sys

import numpy as np
import gguf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cpu"))
from make_models import CTX, FFN, HEADS, HIDDEN, KV_HEADS, LAYERS, VOCAB, vocab  # noqa: E402

Q = gguf.GGMLQuantizationType
TYPES = {"f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_k": Q.Q4_K, "q6_k": Q.Q6_K}
FILE_TYPES = {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
              "q4_k": gguf.LlamaFileType.MOSTLY_Q4_K_M, "q6_k": gguf.LlamaFileType.MOSTLY_Q6_K}
# Byte offset of each block's f16 scale(s), and the scale giving a weight std near 0.02.
SCALES = {Q.Q8_0: ([0], 0.02 / 74), Q.Q4_0: ([0], 0.02 / 4.6), Q.Q4_K: ([0, 2], 0.02 / (32 * 4.6)),
          Q.Q6_K: ([208], 0.02 / (18 * 37))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("type", choices=sorted(TYPES))
    ap.add_argument("--layers", type=int, default=LAYERS)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    qt = TYPES[args.type]

    def w(rows, cols):  # PyTorch order [out, in]
        if qt in (Q.F16, Q.BF16):
            a = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
            if qt == Q.F16:
                return a.astype(np.float16), None
            return (a.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(rows, 2 * cols), qt
        block, nbytes = gguf.GGML_QUANT_SIZES[qt]
        b = rng.integers(0, 256, size=(rows * cols // block, nbytes), dtype=np.uint8)
        offs, scale = SCALES[qt]
        for off in offs:
            d = (rng.uniform(0.5, 1.5, size=b.shape[0]) * scale).astype(np.float16)
            b[:, off:off + 2] = d.view(np.uint8).reshape(-1, 2)
        return b.reshape(rows, cols // block * nbytes), qt

    def add(wr, name, rows, cols):
        data, raw = w(rows, cols)
        wr.add_tensor(name, data, raw_dtype=raw)

    wr = gguf.GGUFWriter(args.out, "llama")
    wr.add_name(f"tinyllama-shape-random-{args.type}")
    wr.add_context_length(CTX)
    wr.add_embedding_length(HIDDEN)
    wr.add_block_count(args.layers)
    wr.add_feed_forward_length(FFN)
    wr.add_head_count(HEADS)
    wr.add_head_count_kv(KV_HEADS)
    wr.add_rope_dimension_count(HIDDEN // HEADS)
    wr.add_rope_freq_base(10000.0)
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_vocab_size(VOCAB)
    wr.add_file_type(FILE_TYPES[args.type])
    toks, scores, types = vocab()
    wr.add_tokenizer_model("llama")
    wr.add_tokenizer_pre("default")
    wr.add_token_list(toks)
    wr.add_token_scores(scores)
    wr.add_token_types(types)
    wr.add_unk_token_id(0)
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)
    wr.add_add_bos_token(True)
    wr.add_add_eos_token(False)

    ones = lambda n: np.ones(n, dtype=np.float32)  # noqa: E731
    kv = KV_HEADS * (HIDDEN // HEADS)
    add(wr, "token_embd.weight", VOCAB, HIDDEN)
    for i in range(args.layers):
        p = f"blk.{i}."
        wr.add_tensor(p + "attn_norm.weight", ones(HIDDEN))
        add(wr, p + "attn_q.weight", HIDDEN, HIDDEN)
        add(wr, p + "attn_k.weight", kv, HIDDEN)
        add(wr, p + "attn_v.weight", kv, HIDDEN)
        add(wr, p + "attn_output.weight", HIDDEN, HIDDEN)
        wr.add_tensor(p + "ffn_norm.weight", ones(HIDDEN))
        add(wr, p + "ffn_gate.weight", FFN, HIDDEN)
        add(wr, p + "ffn_up.weight", FFN, HIDDEN)
        add(wr, p + "ffn_down.weight", HIDDEN, FFN)
    wr.add_tensor("output_norm.weight", ones(HIDDEN))
    add(wr, "output.weight", VOCAB, HIDDEN)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


if __name__ == "__main__":
    main()
