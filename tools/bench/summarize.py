#!/usr/bin/env python3
"""Summarises bench.sh's raw.csv: medians over rounds per step and tool, and
the vaultfs/restic ratio (median of same-round ratios, which the noise of a
shared machine distorts less than a ratio of medians).

usage: summarize.py RAW_CSV OUTDIR   (writes OUTDIR/summary.csv and summary.txt)
"""

import csv
import os
import statistics
import sys

STEPS = ["init", "backup1", "backup2", "backup3", "restore", "small"]
# (column, header, format)
COLUMNS = [
    ("wall", "wall s", "{:.2f}"),
    ("mbps", "MB/s", "{:.0f}"),
    ("cpu", "CPU s", "{:.2f}"),
    ("rss", "peak RSS MiB", "{:.0f}"),
    ("repo", "repo MB", "{:.1f}"),
]


def metrics(row):
    wall = float(row["wall_s"] or "nan")
    inp = int(row["input_bytes"] or 0)
    return {
        "wall": wall,
        "mbps": inp / 1e6 / wall if inp and wall > 0 else float("nan"),
        "cpu": float(row["user_s"] or "nan") + float(row["sys_s"] or "nan"),
        "rss": int(row["max_rss_kib"] or 0) / 1024,
        "repo": int(row["repo_bytes"] or 0) / 1e6,
    }


def median(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def fmt(spec, v):
    return "-" if v != v else spec.format(v)


def main(raw_path, outdir):
    with open(raw_path, newline="") as f:
        rows = list(csv.DictReader(f))
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    steps = [s for s in STEPS if any(r["step"] == s for r in rows)]
    by = {}
    for r in rows:
        by.setdefault((r["step"], r["tool"]), {})[r["round"]] = r

    out = []
    for step in steps:
        for tool in tools:
            runs = by.get((step, tool), {})
            if not runs:
                continue
            m = [metrics(r) for r in runs.values()]
            line = {"step": step, "tool": tool, "rounds": len(m)}
            for col, _, _ in COLUMNS:
                line[col] = median([x[col] for x in m])
            fails = sum(1 for r in runs.values() if r["exit"] != "0")
            bad = sum(1 for r in runs.values() if r["verify"] == "FAIL")
            line["notes"] = ", ".join(
                n for n in [f"{fails} failed" if fails else "", f"{bad} restore(s) differ" if bad else ""] if n
            )
            out.append(line)
        if "vaultfs" in tools and "restic" in tools:
            ours, theirs = by.get((step, "vaultfs"), {}), by.get((step, "restic"), {})
            common = sorted(set(ours) & set(theirs))
            if common:
                line = {"step": step, "tool": "vaultfs/restic", "rounds": len(common), "notes": "ratio"}
                for col, _, _ in COLUMNS:
                    ratios = []
                    for rnd in common:
                        a, b = metrics(ours[rnd])[col], metrics(theirs[rnd])[col]
                        if b and b == b and a == a:
                            ratios.append(a / b)
                    line[col] = median(ratios)
                out.append(line)

    with open(os.path.join(outdir, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "tool", "rounds"] + [c for c, _, _ in COLUMNS] + ["notes"])
        for line in out:
            w.writerow(
                [line["step"], line["tool"], line["rounds"]]
                + ["" if line[c] != line[c] else round(line[c], 4) for c, _, _ in COLUMNS]
                + [line["notes"]]
            )

    header = ["step", "tool"] + [h for _, h, _ in COLUMNS] + ["notes"]
    table = [header]
    for line in out:
        ratio = line["tool"] == "vaultfs/restic"
        cells = [fmt("{:.2f}x" if ratio else spec, line[col]) for col, _, spec in COLUMNS]
        table.append([line["step"], line["tool"]] + cells + [line["notes"]])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for i, r in enumerate(table):
        lines.append("| " + " | ".join(c.ljust(widths[j]) if j < 2 or j == len(r) - 1 else c.rjust(widths[j]) for j, c in enumerate(r)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text = "\n".join(lines) + "\n"
    rounds = len({r["round"] for r in rows})
    text = f"medians over {rounds} round(s); MB = 10^6 bytes; MB/s = input bytes / wall\n\n" + text
    with open(os.path.join(outdir, "summary.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
