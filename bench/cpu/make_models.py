#!/usr/bin/env python3
"""Writes a random-weight Llama model of the TinyLlama 1.1B shape as an F16 GGUF.

Speed benchmarks need models of a realistic size and shape, not realistic weights, and random
weights need no download. The shape is TinyLlama 1.1B's (hidden 2048, 22 layers, 32 heads,
4 KV heads, FFN 5632, vocab 32000); weights are normal(0, 0.02), norms are ones (F32, as the
HF converter writes them). A minimal SentencePiece-style vocabulary (unk/bos/eos, the 256 byte
tokens, then filler pieces) is included so that both squeeze and llama.cpp load the file and
add BOS like a real Llama (vocab() and add_llama_vocab() are also used by bench/gpu/make_model.py,
for larger vocabularies too). bench/cpu/run.sh quantizes the result with llama-quantize.

usage: make_models.py OUT.gguf [--seed S]
Needs numpy and the gguf package (requirements-test.txt).
"""
import argparse

import numpy as np
import gguf

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, VOCAB, CTX = 2048, 22, 32, 4, 5632, 32000, 2048
HEAD_DIM = HIDDEN // HEADS


def vocab(n_vocab=VOCAB):
    """Tokens, scores and types of a minimal SentencePiece-style vocabulary of n_vocab entries."""
    # SPM token types (llama.cpp LLAMA_TOKEN_TYPE): 1 normal, 2 unknown, 3 control, 6 byte.
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        toks.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(6)
    # Filler pieces: unique strings; scores decrease so merges have a well-defined order.
    i = 0
    while len(toks) < n_vocab:
        toks.append(f"\u2581t{i}")
        scores.append(-float(i))
        types.append(1)
        i += 1
    return toks, scores, types


def add_llama_vocab(wr, n_vocab=VOCAB):
    """Adds the vocabulary of vocab(n_vocab) and its tokenizer settings (llama.cpp's "llama" SPM
    tokenizer: unk 0, BOS 1 added to every prompt, EOS 2) to a gguf.GGUFWriter."""
    toks, scores, types = vocab(n_vocab)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    def w(*shape):  # PyTorch order [out, in]; GGUFWriter reverses to ggml's ne order
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    def ones(n):
        return np.ones(n, dtype=np.float32)

    wr = gguf.GGUFWriter(args.out, "llama")
    wr.add_name("tinyllama-shape-random")
    wr.add_context_length(CTX)
    wr.add_embedding_length(HIDDEN)
    wr.add_block_count(LAYERS)
    wr.add_feed_forward_length(FFN)
    wr.add_head_count(HEADS)
    wr.add_head_count_kv(KV_HEADS)
    wr.add_rope_dimension_count(HEAD_DIM)
    wr.add_rope_freq_base(10000.0)
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_vocab_size(VOCAB)
    wr.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    add_llama_vocab(wr, VOCAB)

    kv = KV_HEADS * HEAD_DIM
    wr.add_tensor("token_embd.weight", w(VOCAB, HIDDEN))
    for i in range(LAYERS):
        p = f"blk.{i}."
        wr.add_tensor(p + "attn_norm.weight", ones(HIDDEN))
        wr.add_tensor(p + "attn_q.weight", w(HIDDEN, HIDDEN))
        wr.add_tensor(p + "attn_k.weight", w(kv, HIDDEN))
        wr.add_tensor(p + "attn_v.weight", w(kv, HIDDEN))
        wr.add_tensor(p + "attn_output.weight", w(HIDDEN, HIDDEN))
        wr.add_tensor(p + "ffn_norm.weight", ones(HIDDEN))
        wr.add_tensor(p + "ffn_gate.weight", w(FFN, HIDDEN))
        wr.add_tensor(p + "ffn_up.weight", w(FFN, HIDDEN))
        wr.add_tensor(p + "ffn_down.weight", w(HIDDEN, FFN))
    wr.add_tensor("output_norm.weight", ones(HIDDEN))
    wr.add_tensor("output.weight", w(VOCAB, HIDDEN))

    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


if __name__ == "__main__":
    main()
