#!/usr/bin/env bash
# Builds the partition-table test disks with util-linux sfdisk (Debian
# package `fdisk`; no root needed):
#   gpt.img  8 MiB, GPT, 512-byte sectors, 3 named partitions
#   mbr.img  8 MiB, DOS: 2 primaries, an extended partition holding 2
#            logical partitions (an EBR chain)
# The first 32 KiB of each data partition is filled with its name ("p1",
# "p5", ...) repeated, so tests can check a partition reads from the right
# place. Outputs: NAME.img.zst (committed) and NAME.sfdisk.json, the
# `sfdisk --json` dump that tests use as the oracle.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make() { # name sfdisk-script
    local img=$tmp/$1.img
    truncate -s 8M "$img"
    printf '%s\n' "$2" | sfdisk --quiet --no-reread --no-tell-kernel "$img" >/dev/null
    sfdisk --json "$img" | sed "s|$tmp/||" >"$1.sfdisk.json"
    python3 - "$img" "$1.sfdisk.json" <<'PY'
import json, sys
img, dump = sys.argv[1], sys.argv[2]
table = json.load(open(dump))["partitiontable"]
with open(img, "r+b") as f:
    for p in table["partitions"]:
        if p["type"] in ("5", "f", "85"):
            continue  # the extended partition itself: its EBRs must stay
        num = int(p["node"].rsplit("img", 1)[1])
        label = b"p%d" % num
        f.seek(p["start"] * 512)
        f.write((label * 16384)[:32768])
PY
    zstd -q -19 -f "$img" -o "$1.img.zst"
}

make gpt 'label: gpt
start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="linux data"
start=6144, size=4096, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="basic data"
start=10240, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"'

make mbr 'label: dos
start=2048, size=2048, type=83
start=4096, size=2048, type=7
start=6144, size=8192, type=5
start=8192, size=2048, type=c
start=12288, size=2048, type=83'
