#!/usr/bin/env bash
# Reads a 200 MiB file inside ext4 and inside XFS through vaultfs, beside
# the kernel reading the same file from a read-only loop mount of the same
# image. Manual: CI never runs it. Needs root (loop mounts), e2fsprogs,
# xfsprogs.
#
#   tools/bench/linuxfs-bench.sh
#
# Builds (once) a 320 MiB ext4 image (`mkfs.ext4 -d` from a directory
# holding big.bin: 100 MiB random bytes, 100 MiB text) and a 320 MiB XFS
# image (mkfs.xfs, big.bin written through a loop mount). Then, for ROUNDS
# interleaved rounds, with the images read twice beforehand (warm page
# cache), times
#
#   vaultfs  vaultfs cat --image FS.img:fs/big.bin > /dev/null
#   kernel   mount -o ro,loop FS.img MNT; cat MNT/big.bin > /dev/null
#            (mounted afresh each round, so its page cache starts empty)
#
# checks both outputs' SHA-256 once per filesystem, and prints the median
# wall time, MB/s and the ratio (target: vaultfs at least as fast).
#
# Environment: ROUNDS=5  BENCH=${TMPDIR:-/tmp}/vaultfs-linuxfs-bench
#   VAULTFS_BIN=<repo>/target/release/vaultfs
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-5}
BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-linuxfs-bench}
VAULTFS_BIN=${VAULTFS_BIN:-$top/target/release/vaultfs}
if [ ! -x "$VAULTFS_BIN" ]; then
    (cd "$top" && cargo build --release --locked -p vaultfs-cli)
fi
mkdir -p "$BENCH/mnt" "$BENCH/src"
mnt=$BENCH/mnt
trap 'mountpoint -q "$mnt" && umount "$mnt"' EXIT

if [ ! -f "$BENCH/src/big.bin" ]; then
    python3 - "$BENCH/src/big.bin" <<'PY'
import random, sys
rng = random.Random(7)
words = [b"ext4", b"xfs", b"extent", b"inode", b"block", b"2026", b"vault"]
with open(sys.argv[1], "wb") as f:
    for _ in range(100):
        f.write(rng.randbytes(1 << 20))
    for _ in range(100):
        line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
        f.write((line * ((1 << 20) // len(line) + 1))[: 1 << 20])
PY
fi
if [ ! -f "$BENCH/ext4.img" ]; then
    truncate -s 320M "$BENCH/ext4.img.tmp"
    mkfs.ext4 -q -F -d "$BENCH/src" "$BENCH/ext4.img.tmp"
    mv "$BENCH/ext4.img.tmp" "$BENCH/ext4.img"
fi
if [ ! -f "$BENCH/xfs.img" ]; then
    truncate -s 320M "$BENCH/xfs.img.tmp"
    mkfs.xfs -q -f "$BENCH/xfs.img.tmp"
    mount -o loop "$BENCH/xfs.img.tmp" "$mnt"
    cp "$BENCH/src/big.bin" "$mnt/"
    umount "$mnt"
    mv "$BENCH/xfs.img.tmp" "$BENCH/xfs.img"
fi
size=$(stat -c %s "$BENCH/src/big.bin")
want=$(sha256sum "$BENCH/src/big.bin" | cut -d' ' -f1)
now() { date +%s.%N; }
results=$BENCH/results.txt
: >"$results"
for fs in ext4 xfs; do
    img=$BENCH/$fs.img
    ours=$("$VAULTFS_BIN" cat --image "$img:fs/big.bin" | sha256sum | cut -d' ' -f1)
    mount -o ro,loop "$img" "$mnt"
    theirs=$(sha256sum "$mnt/big.bin" | cut -d' ' -f1)
    umount "$mnt"
    [ "$ours" = "$want" ] && [ "$theirs" = "$want" ] ||
        { echo "$fs: content differs: vaultfs $ours, kernel $theirs, source $want" >&2; exit 1; }
done
for _ in $(seq "$ROUNDS"); do
    for fs in ext4 xfs; do
        img=$BENCH/$fs.img
        cat "$img" >/dev/null; cat "$img" >/dev/null
        t0=$(now); "$VAULTFS_BIN" cat --image "$img:fs/big.bin" >/dev/null; t1=$(now)
        echo "vaultfs-$fs $(echo "$t1 - $t0" | bc)" >>"$results"
        cat "$img" >/dev/null; cat "$img" >/dev/null
        mount -o ro,loop "$img" "$mnt"
        t0=$(now); cat "$mnt/big.bin" >/dev/null; t1=$(now)
        umount "$mnt"
        echo "kernel-$fs $(echo "$t1 - $t0" | bc)" >>"$results"
    done
done
python3 "$here/medians.py" "$results" "$size" \
    vaultfs-ext4 kernel-ext4 "vaultfs-ext4/kernel-ext4>=1" \
    vaultfs-xfs kernel-xfs "vaultfs-xfs/kernel-xfs>=1"
