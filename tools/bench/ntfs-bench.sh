#!/usr/bin/env bash
# Reads a 200 MiB file inside NTFS inside a VMDK through vaultfs, beside the
# same file read from an ntfs-3g mount of the raw disk. Manual: CI never
# runs it. Needs root (ntfs-3g mount), ntfs-3g, sfdisk, qemu-img.
#
#   tools/bench/ntfs-bench.sh
#
# Builds (once) a 320 MiB GPT disk whose one partition is NTFS holding
# big.bin (200 MiB: half random bytes, half text), written through ntfs-3g,
# and a monolithicSparse VMDK of it (`qemu-img convert -O vmdk`, the form
# VMware Workstation writes). Then, for ROUNDS interleaved rounds, with the
# image files read twice beforehand (warm page cache), times
#
#   vaultfs   vaultfs cat --image disk.vmdk:p1/big.bin > /dev/null
#   ntfs-3g   ntfs-3g -o ro of a read-only loop device on the partition of
#             disk.raw; cat MNT/big.bin > /dev/null (mounted afresh each
#             round, so its page cache starts empty)
#
# checks both outputs' SHA-256 once, and prints the median wall time, MB/s
# and the ratio (target: vaultfs at least as fast as ntfs-3g).
#
# Environment: ROUNDS=5  BENCH=${TMPDIR:-/tmp}/vaultfs-ntfs-bench
#   VAULTFS_BIN=<repo>/target/release/vaultfs
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-5}
BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-ntfs-bench}
VAULTFS_BIN=${VAULTFS_BIN:-$top/target/release/vaultfs}
if [ ! -x "$VAULTFS_BIN" ]; then
    (cd "$top" && cargo build --release --locked -p vaultfs-cli)
fi
mkdir -p "$BENCH"
disk=$BENCH/disk.raw vmdk=$BENCH/disk.vmdk mnt=$BENCH/mnt
start=2048
mkdir -p "$mnt"
if [ ! -f "$vmdk" ]; then
    truncate -s 320M "$BENCH/part.img"
    mkfs.ntfs -F -Q -q -L bench -p $start "$BENCH/part.img" 2>/dev/null
    ntfs-3g "$BENCH/part.img" "$mnt"
    python3 - "$mnt/big.bin" <<'PY'
import random, sys
rng = random.Random(5)
words = [b"ntfs", b"vmdk", b"cluster", b"run", b"mft", b"2026", b"vault"]
with open(sys.argv[1], "wb") as f:
    for _ in range(100):
        f.write(rng.randbytes(1 << 20))
    for _ in range(100):
        line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
        f.write((line * ((1 << 20) // len(line) + 1))[: 1 << 20])
PY
    umount "$mnt"
    truncate -s 330M "$disk"
    printf 'label: gpt\nstart=%d, size=655360, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' $start |
        sfdisk --quiet --no-reread --no-tell-kernel "$disk" >/dev/null
    dd if="$BENCH/part.img" of="$disk" bs=1M seek=1 conv=notrunc status=none
    rm "$BENCH/part.img"
    qemu-img convert -f raw -O vmdk "$disk" "$vmdk.tmp"
    mv "$vmdk.tmp" "$vmdk"
fi
size=$((200 << 20))
warm() { cat "$disk" "$vmdk" >/dev/null; cat "$disk" "$vmdk" >/dev/null; }
now() { date +%s.%N; }

loop=$(losetup --find --show --read-only --offset $((start * 512)) "$disk")
trap 'mountpoint -q "$mnt" && umount "$mnt"; losetup -d "$loop"' EXIT
ours=$("$VAULTFS_BIN" cat --image "$vmdk:p1/big.bin" | sha256sum | cut -d' ' -f1)
ntfs-3g -o ro "$loop" "$mnt"
theirs=$(sha256sum "$mnt/big.bin" | cut -d' ' -f1)
umount "$mnt"
[ "$ours" = "$theirs" ] || { echo "different content: vaultfs $ours, ntfs-3g $theirs" >&2; exit 1; }

results=$BENCH/results.txt
: >"$results"
for _ in $(seq "$ROUNDS"); do
    warm
    t0=$(now); "$VAULTFS_BIN" cat --image "$vmdk:p1/big.bin" >/dev/null; t1=$(now)
    echo "vaultfs $(echo "$t1 - $t0" | bc)" >>"$results"
    warm
    ntfs-3g -o ro "$loop" "$mnt"
    t0=$(now); cat "$mnt/big.bin" >/dev/null; t1=$(now)
    umount "$mnt"
    echo "ntfs-3g $(echo "$t1 - $t0" | bc)" >>"$results"
done
python3 "$here/medians.py" "$results" "$size" vaultfs ntfs-3g "vaultfs/ntfs-3g>=1"
