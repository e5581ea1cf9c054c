#!/usr/bin/env python3
"""Print the criterion results of the last `cargo bench` as a Markdown table of medians.

    cargo bench --bench codec --bench at && python3 benches/criterion_table.py

Reads target/criterion/<group>/<bench>/new/{benchmark,estimates}.json. The median is the
median of criterion's per-sample means (time per iteration); throughput is bytes (or
elements) per iteration divided by that median. MB/s are 10^6 bytes per second.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "target" / "criterion"


def fmt_time(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main() -> int:
    rows = []
    for bench in sorted(ROOT.glob("**/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        median = est["median"]["point_estimate"]  # ns per iteration
        mad = est["median_abs_dev"]["point_estimate"]
        tp = meta.get("throughput") or {}
        if "Bytes" in tp:
            rate = f"{tp['Bytes'] / (median * 1e-9) / 1e6:,.0f} MB/s"
        elif "Elements" in tp:
            rate = f"{tp['Elements'] / (median * 1e-9):,.0f} /s"
        else:
            rate = ""
        size = tp.get("Bytes", "")
        rows.append((meta["full_id"], size, fmt_time(median), fmt_time(mad), rate))
    if not rows:
        print("no criterion results under target/criterion (run cargo bench first)",
              file=sys.stderr)
        return 1
    print("| benchmark | bytes | median | MAD | throughput |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        size = f"{r[1]:,}" if r[1] != "" else ""
        print(f"| {r[0]} | {size} | {r[2]} | {r[3]} | {r[4]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
