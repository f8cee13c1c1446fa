#!/usr/bin/env python3
"""Summarises the timing lines the single-file bench scripts write
(`KEY SECONDS`, one per round): the median per key as seconds and MB/s of
SIZE bytes, and throughput ratios between keys with their targets.

usage: medians.py RESULTS SIZE [KEY | KEY:ms | A/B>=TARGET] ...

  KEY          print its median time, MB/s and every round's time
  KEY:ms       print its median time in milliseconds (no MB/s)
  A/B>=TARGET  print the throughput of A relative to B (median time of B
               over median time of A) against TARGET
Keys with no rounds in RESULTS are skipped.
"""

import statistics
import sys
from collections import defaultdict


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    rows = defaultdict(list)
    with open(argv[1]) as f:
        for line in f:
            key, secs = line.split()
            rows[key].append(float(secs))
    size = int(argv[2])
    med = {k: statistics.median(v) for k, v in rows.items()}
    width = max((len(k) for k in rows), default=8) + 1
    for spec in argv[3:]:
        if ">=" in spec:
            pair, target = spec.split(">=")
            a, b = pair.split("/")
            if a in med and b in med:
                print(f"{a} / {b} throughput: {med[b] / med[a]:.2f}x (target >= {target})")
        elif spec.endswith(":ms"):
            k = spec[: -len(":ms")]
            if k in med:
                print(f"{k:<{width}} {med[k] * 1000:7.1f} ms")
        elif spec in med:
            runs = " ".join(f"{v:.3f}" for v in rows[spec])
            print(f"{spec:<{width}} {med[spec]:7.3f} s {size / 1e6 / med[spec]:8.0f} MB/s  (runs: {runs})")


if __name__ == "__main__":
    main(sys.argv)
