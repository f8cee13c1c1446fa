#!/usr/bin/env bash
# Reads whole virtual disks through vaultfs beside qemu-img. Manual: CI
# never runs it.
#
#   tools/bench/image-bench.sh
#
# Builds (once) a 1 GiB raw disk: a GPT with three partitions holding 256 MiB
# of random bytes, 256 MiB of compressible text and 256 MiB of zeros with
# scattered 4 KiB writes, and converts it with qemu-img to each FORMATS
# entry. Then, for ROUNDS interleaved rounds, times
#
#   qemu-img convert -O raw IMAGE OUT        (qemu's default 8 coroutines)
#   vaultfs cat --image IMAGE:disk.raw > OUT
#
# with OUT on the same filesystem, right after the image was read twice
# (warm page cache), checks that both outputs have the same SHA-256, and
# prints the median wall time, MB/s of virtual disk and CPU seconds.
#
# Environment:
#   ROUNDS=3  FORMATS="vmdk:streamOptimized vmdk:monolithicSparse vhdx:dynamic vpc:dynamic"
#   BENCH=${TMPDIR:-/tmp}/vaultfs-image-bench  VAULTFS_BIN=<repo>/target/release/vaultfs
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-3}
FORMATS=${FORMATS:-"vmdk:streamOptimized vmdk:monolithicSparse vhdx:dynamic vpc:dynamic"}
BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-image-bench}
VAULTFS_BIN=${VAULTFS_BIN:-$top/target/release/vaultfs}
mkdir -p "$BENCH"
if [ ! -x "$VAULTFS_BIN" ]; then
    (cd "$top" && cargo build --release --locked -p vaultfs-cli)
fi

disk=$BENCH/disk.raw
if [ ! -f "$disk" ]; then
    truncate -s 1G "$disk.tmp"
    printf 'label: gpt\nstart=2048, size=524288\nstart=526336, size=524288\nstart=1050624, size=1024000\n' |
        sfdisk --quiet --no-reread --no-tell-kernel "$disk.tmp" >/dev/null
    python3 - "$disk.tmp" <<'PY'
import os, random, sys
rng = random.Random(7)
with open(sys.argv[1], "r+b") as f:
    f.seek(2048 * 512)
    for _ in range(256):
        f.write(rng.randbytes(1 << 20))
    f.seek(526336 * 512)
    words = [b"backup", b"vault", b"disk", b"sector", b"grain", b"extent", b"2026", b"log:"]
    for i in range(256):
        line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
        f.write((line * ((1 << 20) // len(line) + 1))[: 1 << 20])
    for _ in range(2000):
        f.seek(1050624 * 512 + rng.randrange(0, 1024000 * 512 - 4096) // 4096 * 4096)
        f.write(rng.randbytes(4096))
PY
    mv "$disk.tmp" "$disk"
fi
want=$(sha256sum "$disk" | cut -d' ' -f1)

for spec in $FORMATS; do
    fmt=${spec%%:*} sub=${spec#*:}
    img=$BENCH/disk-$sub.$fmt
    if [ ! -f "$img" ]; then
        opts="subformat=$sub"
        [ "$fmt" = vpc ] && opts="$opts,force_size=on"
        qemu-img convert -O "$fmt" -o "$opts" "$disk" "$img"
    fi
done

out=$BENCH/out.raw
results=$BENCH/results.txt
: >"$results"
run() { # command... (label in $label)
    rm -f "$out"
    local t
    /usr/bin/time -o "$BENCH/time.txt" -f '%e %U %S' "$@" >/dev/null
    t=$(tail -n 1 "$BENCH/time.txt")
    local got
    got=$(sha256sum "$out" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "$1: output differs from the raw disk" >&2; exit 1; }
    echo "$label $t" >>"$results"
}
for round in $(seq "$ROUNDS"); do
    for spec in $FORMATS; do
        fmt=${spec%%:*} sub=${spec#*:}
        img=$BENCH/disk-$sub.$fmt
        cat "$img" >/dev/null; cat "$img" >/dev/null
        if [ $((round % 2)) = 1 ]; then order="qemu vaultfs"; else order="vaultfs qemu"; fi
        for tool in $order; do
            label="$fmt:$sub $tool"
            if [ "$tool" = qemu ]; then
                run qemu-img convert -O raw "$img" "$out"
            else
                run sh -c '"$1" cat --image "$2:disk.raw" >"$3"' sh "$VAULTFS_BIN" "$img" "$out"
            fi
        done
    done
done
rm -f "$out"
python3 - "$results" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    fmt, tool, wall, user, sys_ = line.split()
    rows[(fmt, tool)].append((float(wall), float(user) + float(sys_)))
size = 1 << 30
print(f"{'image':<24} {'tool':<8} {'wall s':>7} {'MB/s':>7} {'CPU s':>7}")
for (fmt, tool), v in sorted(rows.items()):
    wall = statistics.median(w for w, _ in v)
    cpu = statistics.median(c for _, c in v)
    print(f"{fmt:<24} {tool:<8} {wall:>7.2f} {size / 1e6 / wall:>7.0f} {cpu:>7.2f}")
PY
