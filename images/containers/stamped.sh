#!/usr/bin/env bash
# Builds the disks every container test converts: gpt.img and mbr.img from
# ../partitions.sh with the first MiB of each data partition stamped, one
# distinct line per 512-byte sector ("gpt p1 lba 2048 ..."), so a sector
# read from the wrong place never matches. The rest of each partition stays
# zero, so sparse containers have unallocated grains and blocks.
# Outputs stamped-gpt.raw.zst and stamped-mbr.raw.zst here.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in gpt mbr; do
    zstd -q -d -f ../$name.img.zst -o "$tmp/$name.raw"
    python3 - "$tmp/$name.raw" ../$name.sfdisk.json "$name" <<'PY'
import json, sys
img, dump, name = sys.argv[1], sys.argv[2], sys.argv[3]
table = json.load(open(dump))["partitiontable"]
with open(img, "r+b") as f:
    for p in table["partitions"]:
        if p["type"] in ("5", "f", "85"):
            continue  # the extended container: its EBRs must stay
        num = int(p["node"].rsplit("img", 1)[1])
        for lba in range(p["start"], p["start"] + min(p["size"], 2048)):
            line = b"%s p%d lba %d\n" % (name.encode(), num, lba)
            f.seek(lba * 512)
            f.write((line * (512 // len(line) + 1))[:512])
PY
    zstd -q -19 -f "$tmp/$name.raw" -o stamped-$name.raw.zst
done
