#!/usr/bin/env python3
"""Summarizes an `ncu --csv --metrics gpu__time_duration.sum` log: time per kernel name (template
arguments dropped), calls, mean and share, largest first. Usage: kernel_times.py NCU.csv [STEPS]
(STEPS: decode steps the launches cover, to print microseconds per step). When the log also has
dram__bytes_read.sum, each kernel's DRAM read rate (GB/s) is printed too."""
import csv
import re
import sys
from collections import defaultdict

if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
    print(__doc__)
    sys.exit(0)
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
steps = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
tot = defaultdict(float)
calls = defaultdict(int)
dram = defaultdict(float)
for r in csv.DictReader(rows):
    metric = r.get("Metric Name")
    if metric not in ("gpu__time_duration.sum", "dram__bytes_read.sum"):
        continue
    name = r["Kernel Name"]
    short = re.sub(r"<.*", "", re.sub(r"^void ", "", name)).split("(")[0]
    # keep the template arguments that say which variant ran (type, tokens, rows, glu)
    m = re.search(r"<(.*)>", name)
    key = short + ("<" + m.group(1)[:60] + ">" if m else "")
    v = float(r["Metric Value"].replace(",", ""))
    if metric == "dram__bytes_read.sum":
        unit = r.get("Metric Unit", "byte")
        dram[key] += v * {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}.get(unit, 1)
        continue
    unit = r.get("Metric Unit", "nsecond")
    v *= {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(unit, 1e-3)
    tot[key] += v
    calls[key] += 1
all_us = sum(tot.values())
print(f"{'kernel':70s} {'calls':>6s} {'mean us':>9s} {'us/step':>9s} {'share':>6s} {'GB/s':>6s}")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
    rate = f"{dram[k] / (v * 1e3):6.0f}" if k in dram and v > 0 else ""
    print(f"{k[:70]:70s} {calls[k]:6d} {v / calls[k]:9.2f} {v / steps:9.1f} {100 * v / all_us:5.1f}% {rate}")
print(f"total {all_us / steps:.1f} us per step over {steps:g} steps")
