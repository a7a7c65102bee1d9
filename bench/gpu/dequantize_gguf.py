#!/usr/bin/env python3
"""Writes a copy of a GGUF file with every tensor dequantized to F32 (metadata unchanged).

The GPU keeps activations in f32 where the CPU quantizes them to 8 bits before a quantized
product (as llama.cpp does), so on a quantized model the two differ by the CPU's activation
rounding. On the F32 copy both compute the same products in f32: what is left between them is
the GPU's own error. Dequantization is the `gguf` package's (an implementation independent of
squeeze).

usage: dequantize_gguf.py IN.gguf OUT.gguf
"""
import sys

import numpy as np
import gguf


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = f.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(name, f.contents(), vtype, sub_type=f.types[-1])
        else:
            w.add_key_value(name, f.contents(), vtype)
    for t in r.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        # GGUF lists dimensions fastest first; numpy wants them slowest first.
        shape = tuple(int(d) for d in reversed(t.shape))
        w.add_tensor(t.name, data.reshape(shape), raw_dtype=gguf.GGMLQuantizationType.F32)
        print(f"{t.name}: {t.tensor_type.name} -> F32 {list(shape)}", file=sys.stderr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
