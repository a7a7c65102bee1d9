#!/usr/bin/env python3
"""Copies the tiny float32 HF test models (tests/fixtures/tiny/*) with their weights cast to BF16
and F16, for the GPU-vs-CPU checks of bench/gpu/run.sh.

Usage: make_half_models.py OUT_DIR [MODEL_DIR ...]   (default: every folder of tests/fixtures/tiny)
Writes OUT_DIR/<name>-bf16 and OUT_DIR/<name>-f16 (config.json, shard index and every
*.safetensors, tensors cast with torch).
"""
import pathlib
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file


def main():
    out = pathlib.Path(sys.argv[1])
    root = pathlib.Path(__file__).resolve().parents[2]
    dirs = [pathlib.Path(d) for d in sys.argv[2:]] or sorted(
        p for p in (root / "tests/fixtures/tiny").iterdir() if (p / "config.json").exists())
    for d in dirs:
        for name, dtype in (("bf16", torch.bfloat16), ("f16", torch.float16)):
            dst = out / f"{d.name}-{name}"
            dst.mkdir(parents=True, exist_ok=True)
            for f in d.iterdir():
                if f.suffix == ".safetensors":
                    t = load_file(str(f))
                    save_file({k: v.to(dtype).contiguous() for k, v in t.items()}, str(dst / f.name),
                              metadata={"format": "pt"})
                elif f.suffix == ".json":
                    shutil.copy(f, dst / f.name)
            print(dst)


if __name__ == "__main__":
    main()
