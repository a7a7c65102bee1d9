#!/usr/bin/env python3
"""A small HF safetensors -> GGUF (F32) converter for the test fixtures.

Usage: hf_to_gguf.py HF_DIR OUT.gguf

Handles LlamaForCausalLM / MistralForCausalLM (GGUF arch `llama`), Qwen2ForCausalLM (`qwen2`),
Qwen3ForCausalLM (`qwen3`) and Gemma3ForCausalLM text models (`gemma3`), reading config.json in
either the transformers v4 spelling (rope_theta, rope_scaling, rope_local_base_freq,
sliding_window_pattern) or the v5 one (rope_parameters, possibly nested per layer type).
It follows llama.cpp convert_hf_to_gguf.py (see docs/reference models.md sections 3.3-3.5, 3.7):

- `{arch}.*` hparams: context_length, embedding_length, block_count, feed_forward_length,
  attention.head_count, attention.head_count_kv, attention.layer_norm_rms_epsilon,
  attention.key_length / value_length (head_dim), rope.freq_base; llama also vocab_size and
  rope.dimension_count; linear rope scaling -> rope.scaling.type/factor.
- llama (and Mistral): q_proj/k_proj rows (and biases) permuted from HF's half-split order to the
  interleaved order (convert_hf_to_gguf's LlamaModel.permute, "undo_permute"); llama3 rope scaling
  -> an F32 tensor `rope_freqs.weight` of head_dim/2 factors and no rope.scaling.* keys.
  Note: llama.cpp's converter reads original_max_position_embeddings from the top level of the
  config (default 8192); this one reads it from the rope parameters, where transformers reads it.
- gemma3: 1 added to every `*norm.weight`; rope.freq_base (global layers) and rope.freq_base_swa
  (local layers); attention.sliding_window; attention.sliding_window_pattern (u32 P when
  layer_types follows "layer i is global iff i % P == P - 1", else a per-layer bool array, true =
  sliding); final_logit_softcapping when set.
- Tied embeddings: no output.weight.
- Sliding window for llama/mistral: llama.cpp has no SWA for arch `llama` and its converter writes
  no window; this converter DOES write `llama.attention.sliding_window` when config.json has a
  non-null sliding_window (deviation on purpose, so that the mistral_swa fixture stays meaningful;
  squeeze honours the key when present). Qwen2 with use_sliding_window = true is refused.
- Every tensor is written as F32 (general.file_type 0).
- A minimal tokenizer so that the file is a complete model file: tokenizer.ggml.model "llama",
  pre "default", vocab_size dummy tokens "<tok_i>" with score 0 and type normal (bos/eos: control),
  bos/eos ids from config.json, add_bos_token / add_eos_token false.
"""
import json
import math
import pathlib
import sys

import gguf
import numpy as np
from safetensors import safe_open

ARCHES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Gemma3ForCausalLM": "gemma3",
}

LAYER_MAP_COMMON = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
LAYER_MAP_LLAMA_QWEN = {"post_attention_layernorm.weight": "ffn_norm.weight"}
LAYER_MAP_GEMMA3 = {
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}


def load_tensors(hf_dir: pathlib.Path) -> dict[str, np.ndarray]:
    index = hf_dir / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for f in files:
        try:
            with safe_open(hf_dir / f, framework="np") as st:
                for name in st.keys():
                    out[name] = st.get_tensor(name).astype(np.float32)
        except (TypeError, ValueError):  # bf16 has no numpy dtype: go through torch
            with safe_open(hf_dir / f, framework="pt") as st:
                for name in st.keys():
                    out[name] = st.get_tensor(name).float().numpy()
    return out


def rope_params(cfg: dict) -> tuple[dict, dict | None]:
    """(global rope params, local/sliding rope params or None), each with rope_type and rope_theta."""
    rp = cfg.get("rope_parameters")
    if rp is not None and ("full_attention" in rp or "sliding_attention" in rp):
        full = dict(rp.get("full_attention") or {})
        local = dict(rp.get("sliding_attention") or {})
    else:
        full = dict(rp or cfg.get("rope_scaling") or {})
        local = {}
    if "type" in full and "rope_type" not in full:
        full["rope_type"] = full["type"]
    full.setdefault("rope_type", "default")
    is_gemma3 = cfg.get("model_type") in ("gemma3_text", "gemma3")
    full.setdefault("rope_theta", cfg.get("rope_theta", 1e6 if is_gemma3 else 10000.0))
    if not is_gemma3:
        return full, None
    local.setdefault("rope_type", "default")
    local.setdefault("rope_theta", cfg.get("rope_local_base_freq", 10000.0))
    return full, local


def llama3_factors(rp: dict, head_dim: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf LlamaModel.generate_extra_tensors (rope_freqs.weight)."""
    base = np.float32(rp["rope_theta"])
    freqs = np.float32(1.0) / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))
    factor = rp.get("factor", 8.0)
    low = rp.get("low_freq_factor", 1.0)
    high = rp.get("high_freq_factor", 4.0)
    old_ctx = rp.get("original_max_position_embeddings", 8192)
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF half-split rows -> interleaved rows, per head (llama.cpp LlamaModel.permute)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def swa_pattern(layer_types: list[str]):
    n = len(layer_types)
    is_swa = [t == "sliding_attention" for t in layer_types]
    for p in range(1, n + 1):
        if all(is_swa[i] == (i % p < p - 1) for i in range(n)):
            return p
    return is_swa


def convert(hf_dir: pathlib.Path, out_path: pathlib.Path) -> None:
    cfg = json.loads((hf_dir / "config.json").read_text())
    if "text_config" in cfg:
        raise SystemExit("multimodal configs are not handled")
    hf_arch = cfg["architectures"][0]
    if hf_arch not in ARCHES:
        raise SystemExit(f"unsupported architecture {hf_arch}")
    arch = ARCHES[hf_arch]
    H = cfg["hidden_size"]
    L = cfg["num_hidden_layers"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    V = cfg["vocab_size"]
    tied = cfg.get("tie_word_embeddings", arch == "gemma3")
    eps = cfg.get("rms_norm_eps", 1e-6 if arch == "gemma3" else 1e-5)
    full_rp, local_rp = rope_params(cfg)

    w = gguf.GGUFWriter(str(out_path), arch)
    w.add_name(hf_dir.name)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(cfg.get("max_position_embeddings", 131072 if arch == "gemma3" else 4096))
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_layer_norm_rms_eps(eps)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_freq_base(float(full_rp["rope_theta"]))
    rope_type = full_rp["rope_type"]
    if rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(full_rp["factor"]))
    elif rope_type == "llama3":
        if arch != "llama":
            raise SystemExit("llama3 rope scaling only for llama")
    elif rope_type != "default":
        raise SystemExit(f"rope type {rope_type} not handled")

    if arch == "llama":
        w.add_vocab_size(V)
        w.add_rope_dimension_count(hd)
        if cfg.get("sliding_window") is not None:
            w.add_sliding_window(int(cfg["sliding_window"]))  # not llama.cpp: see the docstring
    if arch == "qwen2" and cfg.get("use_sliding_window"):
        raise SystemExit("qwen2 with use_sliding_window is not handled")
    if arch == "gemma3":
        assert cfg.get("attn_logit_softcapping") is None
        if cfg.get("final_logit_softcapping"):
            w.add_final_logit_softcapping(float(cfg["final_logit_softcapping"]))
        w.add_rope_freq_base_swa(float(local_rp["rope_theta"]))
        w.add_sliding_window(int(cfg["sliding_window"]))
        layer_types = cfg.get("layer_types")
        if layer_types is None:
            p = cfg.get("sliding_window_pattern", cfg.get("_sliding_window_pattern", 6))
            layer_types = ["sliding_attention" if (i + 1) % p else "full_attention"
                           for i in range(L)]
        w.add_sliding_window_pattern(swa_pattern(layer_types))
        if cfg.get("query_pre_attn_scalar", hd) != hd:
            print(f"warning: query_pre_attn_scalar {cfg['query_pre_attn_scalar']} != head_dim {hd};"
                  " GGUF has no key for it", file=sys.stderr)

    # tokenizer (dummy)
    bos = cfg.get("bos_token_id")
    eos = cfg.get("eos_token_id")
    if isinstance(eos, list):
        eos = eos[0]
    bos = 1 if bos is None else bos
    eos = 2 if eos is None else eos
    types = [gguf.TokenType.NORMAL] * V
    for t in (bos, eos):
        types[t] = gguf.TokenType.CONTROL
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([f"<tok_{i}>" for i in range(V)])
    w.add_token_scores([0.0] * V)
    w.add_token_types(types)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)

    src = load_tensors(hf_dir)
    tensors: list[tuple[str, np.ndarray]] = []
    if arch == "llama" and rope_type == "llama3":
        tensors.append(("rope_freqs.weight", llama3_factors(full_rp, hd)))

    layer_map = dict(LAYER_MAP_COMMON)
    layer_map.update(LAYER_MAP_GEMMA3 if arch == "gemma3" else LAYER_MAP_LLAMA_QWEN)
    used = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return src[name]

    def emit(gname: str, hname: str, data: np.ndarray) -> None:
        if arch == "gemma3" and hname.endswith("norm.weight"):
            data = data + np.float32(1.0)
        if arch == "llama":
            if hname.endswith(("q_proj.weight", "q_proj.bias")):
                data = permute(data, nh)
            elif hname.endswith(("k_proj.weight", "k_proj.bias")):
                data = permute(data, nkv)
        tensors.append((gname, np.ascontiguousarray(data, dtype=np.float32)))

    emit("token_embd.weight", "model.embed_tokens.weight", take("model.embed_tokens.weight"))
    for i in range(L):
        for suffix, gsuffix in layer_map.items():
            hname = f"model.layers.{i}.{suffix}"
            if hname in src:
                emit(f"blk.{i}.{gsuffix}", hname, take(hname))
    emit("output_norm.weight", "model.norm.weight", take("model.norm.weight"))
    if "lm_head.weight" in src:
        used.add("lm_head.weight")
        if not tied:
            emit("output.weight", "lm_head.weight", src["lm_head.weight"])
    elif not tied:
        raise SystemExit("lm_head.weight missing and embeddings not tied")
    unused = sorted(set(src) - used)
    if unused:
        raise SystemExit(f"unmapped tensors: {unused}")

    for name, data in tensors:
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: hf_to_gguf.py HF_DIR OUT.gguf")
    convert(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))


if __name__ == "__main__":
    main()
