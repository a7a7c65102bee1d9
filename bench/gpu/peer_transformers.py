#!/usr/bin/env python3
"""Hugging Face transformers as a peer on the Llama-3-8B shape (issue 5), random weights, BF16.

The model is a LlamaForCausalLM made from a LlamaConfig (hidden 4096, 32 layers, 32 heads, 8 KV
heads, FFN 14336, vocab 128256, context 8192, rope base 500000, RMS eps 1e-5, untied output), built
directly on the device in BF16 and initialised in place: matrices normal(0, 0.02), norms ones, the
same distribution as bench/gpu/make_model.py's files (not the same numbers). No file is read or
downloaded. Prompts are random token ids; generation is greedy with EOS disabled, so every sequence
gets exactly the asked number of new tokens (checked).

Modes:
  bs1      batch 1: prompt --prompt (512) tokens, --new (256) new tokens, attention --bs1-attn
           (eager: the issue's "eager, dynamic cache" baseline), DynamicCache. Prints
           RESULT transformers bs1 eager decode: X tokens/s (prefill 512: Y s)
           Prefill = from generate() to the first sampled token; decode tokens/s = (new - 1) / time
           from the first to the last sampled token (a logits processor takes a CUDA-synchronised
           timestamp at each step).
  batched  --batch (128) prompts of --prompt tokens, --new new tokens each, in one generate() call,
           for each configuration of --configs (default sdpa-dynamic; sdpa-static = static cache,
           which recent transformers versions compile by themselves on CUDA; sdpa-static-compile =
           static cache + torch.compile of the forward, which compiles for minutes): output
           tokens/s = batch x new / wall time of generate(). On CUDA out-of-memory the batch is
           halved and retried; the line names the batch that ran:
           RESULT transformers bs128 sdpa-dynamic: X output tokens/s (512+256 each, wall W s, prefill P s)
           and last, the best of the configurations:
           RESULT transformers batched best: ...
Each measurement follows one untimed warmup generate() with the same settings (a few new tokens;
all of them with a static cache).

usage: peer_transformers.py [--mode bs1|batched|both] [--prompt N] [--new N] [--batch N]
                            [--configs LIST] [--bs1-attn eager|sdpa] [--layers N] [--seed S]
                            [--device cuda|cpu] [--quick] [--tiny]
  --quick  a small sanity run on the real shape: prompt 64, 16 new tokens, batch 4
  --tiny   2 layers, hidden 256, 4 heads, 2 KV heads, FFN 512 (to exercise the code on a CPU)
Needs torch and transformers (4.4x or 5.x).
"""
import argparse
import gc
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessor, LogitsProcessorList

SHAPE_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192)
SHAPE_TINY = dict(vocab_size=128256, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(LogitsProcessor):
    """Records a synchronised timestamp each time generate() asks for the next token's scores."""

    def __init__(self, device):
        self.device = device
        self.times = []

    def __call__(self, input_ids, scores):
        sync(self.device)
        self.times.append(time.perf_counter())
        return scores


def build_model(shape, attn, device, seed, layers=None):
    cfg = dict(shape)
    if layers is not None:
        cfg["num_hidden_layers"] = layers
    config = LlamaConfig(**cfg, rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                         hidden_act="silu", initializer_range=0.02, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, use_cache=True, attn_implementation=attn)
    config._attn_implementation = attn  # older versions ignore the keyword argument
    t0 = time.perf_counter()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(old)
    model.to(device=device, dtype=torch.bfloat16)
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02, generator=g)
            else:
                p.fill_(1.0)  # RMSNorm weights
    model.eval()
    # EOS off: generation runs to max_new_tokens (and min_new_tokens needs no EOS then).
    gc_ = model.generation_config
    gc_.eos_token_id = None
    gc_.bos_token_id = 1
    gc_.pad_token_id = 0
    gc_.do_sample = False
    for k in ("temperature", "top_p", "top_k"):
        if hasattr(gc_, k):
            setattr(gc_, k, None)
    sync(device)
    n = sum(p.numel() for p in model.parameters())
    log(f"model: {n / 1e9:.3f} B parameters, attention {attn}, built in {time.perf_counter() - t0:.1f} s")
    return model


def random_prompts(batch, n, vocab, device, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, n), generator=g)
    ids[:, 0] = 1  # BOS
    return ids.to(device), torch.ones_like(ids, device=device)


def generate(model, ids, mask, new, timer=None, cache=None):
    kw = dict(attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False,
              eos_token_id=None, pad_token_id=0)
    if timer is not None:
        kw["logits_processor"] = LogitsProcessorList([timer])
    if cache is not None:
        kw["cache_implementation"] = cache
    with torch.inference_mode():
        out = model.generate(ids, **kw)
    got = out.shape[1] - ids.shape[1]
    if got != new:
        raise RuntimeError(f"generate() made {got} new tokens, not {new}")
    return out


def free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_bs1(args, device, shape):
    model = build_model(shape, args.bs1_attn, device, args.seed, args.layers)
    ids, mask = random_prompts(1, args.prompt, shape["vocab_size"], device, args.seed + 1)
    generate(model, ids[:, : min(16, args.prompt)], mask[:, : min(16, args.prompt)], 4)  # warmup
    timer = StepTimer(device)
    sync(device)
    t0 = time.perf_counter()
    generate(model, ids, mask, args.new, timer)
    sync(device)
    t1 = time.perf_counter()
    prefill = timer.times[0] - t0
    decode = (args.new - 1) / (timer.times[-1] - timer.times[0]) if args.new > 1 else float("nan")
    print(f"RESULT transformers bs1 {args.bs1_attn} decode: {decode:.1f} tokens/s (prefill {args.prompt}: "
          f"{prefill:.3f} s; {args.new} tokens in {t1 - t0:.2f} s, {args.new / (t1 - t0):.1f} tokens/s overall)",
          flush=True)
    del model
    free(device)
    return decode


def batched_config(name):
    """(attention, cache implementation or None, compile?) of a configuration name."""
    parts = name.split("-")
    attn = parts[0]
    cache = "static" if "static" in parts else None
    return attn, cache, "compile" in parts


def run_batched(args, device, shape):
    results = []
    for cname in args.configs.split(","):
        attn, cache, comp = batched_config(cname)
        model = build_model(shape, attn, device, args.seed, args.layers)
        if comp:
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
        batch = args.batch
        ids = mask = None
        while batch >= 1:
            oom = False
            try:
                ids, mask = random_prompts(batch, args.prompt, shape["vocab_size"], device, args.seed + 2)
                tw = time.perf_counter()
                # Warmup (and compilation): same batch and prompt, a few new tokens; the whole length
                # with a static cache, whose size (prompt + new) is part of the compiled shapes.
                generate(model, ids, mask, args.new if cache or comp else min(4, args.new), cache=cache)
                log(f"{cname}: warmup at batch {batch}: {time.perf_counter() - tw:.1f} s")
                timer = StepTimer(device)
                sync(device)
                t0 = time.perf_counter()
                generate(model, ids, mask, args.new, timer, cache=cache)
                sync(device)
                wall = time.perf_counter() - t0
                break
            except RuntimeError as e:  # torch.cuda.OutOfMemoryError is one
                if "out of memory" not in str(e).lower():
                    raise
                oom = True
            if oom:  # outside the except block, so the traceback's tensors are gone
                log(f"{cname}: out of memory at batch {batch}; halving")
                ids = mask = None
                free(device)
                batch //= 2
        else:
            print(f"RESULT transformers batched {cname}: out of memory even at batch 1", flush=True)
            del model
            free(device)
            continue
        tps = batch * args.new / wall
        prefill = timer.times[0] - t0
        line = (f"{tps:.0f} output tokens/s ({args.prompt}+{args.new} each, wall {wall:.1f} s, "
                f"prefill {prefill:.2f} s)")
        note = "" if batch == args.batch else f" [asked for batch {args.batch}: out of memory]"
        print(f"RESULT transformers bs{batch} {cname}: {line}{note}", flush=True)
        results.append((tps, f"bs{batch} {cname}: {line}{note}"))
        del model, ids, mask
        free(device)
    if results:
        best = max(results)
        print(f"RESULT transformers batched best: {best[1]}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--mode", choices=["bs1", "batched", "both"], default="both")
    ap.add_argument("--prompt", type=int, default=512, help="prompt tokens (default 512)")
    ap.add_argument("--new", type=int, default=256, help="new tokens per sequence (default 256)")
    ap.add_argument("--batch", type=int, default=128, help="sequences in the batched mode (default 128)")
    ap.add_argument("--configs", default="sdpa-dynamic",
                    help="batched configurations, comma-separated: ATTN-CACHE[-compile] with ATTN eager|sdpa "
                         "and CACHE dynamic|static (default sdpa-dynamic)")
    ap.add_argument("--bs1-attn", default="eager", choices=["eager", "sdpa"], help="batch-1 attention (default eager)")
    ap.add_argument("--layers", type=int, default=None, help="override the number of layers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="prompt 64, 16 new tokens, batch 4")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer, hidden-256 model (for a CPU)")
    args = ap.parse_args()
    if args.quick:
        args.prompt, args.new, args.batch = 64, 16, 4
    for c in args.configs.split(","):
        a, cache, _ = batched_config(c)
        if a not in ("eager", "sdpa") or not any(x in c.split("-") for x in ("dynamic", "static")):
            ap.error(f"bad configuration {c!r}")
    device = torch.device(args.device)
    shape = SHAPE_TINY if args.tiny else SHAPE_8B
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"transformers {transformers.__version__}, torch {torch.__version__}, device {gpu}; "
        f"{'tiny' if args.tiny else 'llama3-8b'} shape, prompt {args.prompt}, new {args.new}, batch {args.batch}")
    print(f"RESULT transformers setup: transformers {transformers.__version__}, torch {torch.__version__}, {gpu}",
          flush=True)
    torch.manual_seed(args.seed)
    if args.mode in ("bs1", "both"):
        run_bs1(args, device, shape)
    if args.mode in ("batched", "both"):
        run_batched(args, device, shape)


if __name__ == "__main__":
    main()
