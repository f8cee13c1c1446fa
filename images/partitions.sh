#!/usr/bin/env bash
# Builds the partition-table test disks with util-linux sfdisk (Debian
# package `fdisk`; no root needed):
#   gpt.img  8 MiB, GPT, 512-byte sectors, 3 named partitions
#   mbr.img  8 MiB, DOS: 2 primaries, an extended partition holding 2
#            logical partitions (an EBR chain)
#   gpt4k.img, mbr4k.img  32 MiB, the same layouts with 4096-byte logical
#            sectors (written through a `losetup -b 4096` loop device, so
#            these two need root)
# `partitions.sh NAME...` rebuilds only the named disks (the container
# images in containers/ are made from gpt and mbr: rebuild those after).
# The first 32 KiB of each data partition is filled with its name ("p1",
# "p5", ...) repeated, so tests can check a partition reads from the right
# place. Outputs: NAME.img.zst (committed) and NAME.sfdisk.json, the
# `sfdisk --json` dump that tests use as the oracle.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

want() { local name=$1; shift; [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; }

make() { # name sfdisk-script [sector-size]
    local img=$tmp/$1.img sector=${3:-512} dev
    if [ "$sector" = 512 ]; then
        truncate -s 8M "$img"
        printf '%s\n' "$2" | sfdisk --quiet --no-reread --no-tell-kernel "$img" >/dev/null
        sfdisk --json "$img" | sed "s|$tmp/||" >"$1.sfdisk.json"
    else
        truncate -s 32M "$img"
        dev=$(losetup --find --show --sector-size "$sector" "$img")
        printf '%s\n' "$2" | sfdisk --quiet --no-reread --no-tell-kernel "$dev" >/dev/null
        sfdisk --json "$dev" | sed "s|$dev\(p\)\?|$1.img|" >"$1.sfdisk.json"
        losetup --detach "$dev"
    fi
    python3 - "$img" "$1.sfdisk.json" "$sector" <<'PY'
import json, sys
img, dump, sector = sys.argv[1], sys.argv[2], int(sys.argv[3])
table = json.load(open(dump))["partitiontable"]
with open(img, "r+b") as f:
    for p in table["partitions"]:
        if p["type"] in ("5", "f", "85"):
            continue  # the extended partition itself: its EBRs must stay
        num = int(p["node"].rsplit("img", 1)[1])
        label = b"p%d" % num
        f.seek(p["start"] * sector)
        f.write((label * 16384)[:32768])
PY
    zstd -q -19 -f "$img" -o "$1.img.zst"
}

want gpt "$@" && make gpt 'label: gpt
start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="linux data"
start=6144, size=4096, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="basic data"
start=10240, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"'

want mbr "$@" && make mbr 'label: dos
start=2048, size=2048, type=83
start=4096, size=2048, type=7
start=6144, size=8192, type=5
start=8192, size=2048, type=c
start=12288, size=2048, type=83'

want gpt4k "$@" && make gpt4k 'label: gpt
start=256, size=1024, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="linux data"
start=1280, size=1024, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="basic data"' 4096

want mbr4k "$@" && make mbr4k 'label: dos
start=256, size=1024, type=83
start=1280, size=4096, type=5
start=1536, size=1024, type=7
start=3072, size=1024, type=83' 4096
