#!/usr/bin/env bash
# `vaultfs backup --disk` beside `restic backup --stdin` on the same disk
# image: a 4 GiB sparse GPT disk whose one ext4 partition holds 300 MiB of
# files (150 MiB random, 150 MiB text), with 200 MiB of deleted random data
# in its free blocks. Manual: CI never runs it. Needs e2fsprogs (mkfs.ext4
# -d, debugfs), sfdisk (fdisk), restic; no root.
#
#   tools/bench/disk-bench.sh
#
# Times, each into a fresh repository, and then a second time into the same
# one (nothing changed):
#
#   vaultfs         vaultfs backup --disk disk.img       (free space as zeros)
#   vaultfs-forens  vaultfs backup --disk disk.img --include-unused
#   restic          restic backup --stdin --stdin-filename disk.img < disk.img
#
# and prints wall time and the repository's growth for each run (the image
# is read once beforehand: every run starts with a warm page cache).
#
# Environment: BENCH=${TMPDIR:-/tmp}/vaultfs-disk-bench
#   VAULTFS_BIN=<repo>/target/release/vaultfs  RESTIC_BIN=restic
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-disk-bench}
VAULTFS_BIN=${VAULTFS_BIN:-$top/target/release/vaultfs}
RESTIC_BIN=${RESTIC_BIN:-restic}
if [ ! -x "$VAULTFS_BIN" ]; then
    (cd "$top" && cargo build --release --locked -p vaultfs-cli)
fi
mkdir -p "$BENCH"
disk=$BENCH/disk.img

if [ ! -f "$disk" ]; then
    rm -rf "$BENCH/src" && mkdir -p "$BENCH/src"
    python3 - "$BENCH/src" <<'PY'
import os, random, sys
rng = random.Random(11)
words = [b"disk", b"vault", b"extent", b"inode", b"block", b"2026", b"grain"]
root = sys.argv[1]
for i in range(150):
    d = os.path.join(root, f"d{i % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"r{i}.bin"), "wb") as f:
        f.write(rng.randbytes(1 << 20))
    line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    with open(os.path.join(d, f"t{i}.txt"), "wb") as f:
        f.write((line * ((1 << 20) // len(line) + 1))[: 1 << 20])
# Deleted later: random bytes left in free blocks.
with open(os.path.join(root, "deleted.bin"), "wb") as f:
    f.write(rng.randbytes(200 << 20))
PY
    truncate -s 4G "$disk.tmp"
    printf 'label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
        sfdisk --quiet "$disk.tmp" >/dev/null
    start=$((2048 * 512))
    size=$(( ($(stat -c %s "$disk.tmp") - start - 34 * 512) / 4096 ))
    mkfs.ext4 -q -F -E offset=$start -d "$BENCH/src" "$disk.tmp" "$size"
    # Delete the 200 MiB file: its blocks become free but keep their bytes.
    python3 - "$disk.tmp" "$start" <<'PY'
import subprocess, sys
# debugfs works on a filesystem at an offset through the "?offset=" syntax.
img, off = sys.argv[1], sys.argv[2]
subprocess.run(["debugfs", "-w", "-R", "rm /deleted.bin", f"{img}?offset={off}"],
               check=True, capture_output=True)
PY
    mv "$disk.tmp" "$disk"
fi

export VAULTFS_PASSWORD_FILE=$BENCH/password RESTIC_PASSWORD_FILE=$BENCH/password
echo bench >"$BENCH/password"

size() { du -sb "$1" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

run() { # NAME REPO COMMAND...
    local name=$1 repo=$2
    shift 2
    local before after t0 t1
    before=$(size "$repo")
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    after=$(size "$repo")
    printf '%-16s %8.2f s  +%s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(mib $((after - before)))"
}

# Warm page cache for every run alike.
cat "$disk" >/dev/null
echo "disk: $(mib "$(stat -c %s "$disk")") apparent, $(mib "$(du -B1 "$disk" | cut -f1)") allocated"
for mode in vaultfs vaultfs-forens restic; do
    repo=$BENCH/repo-$mode
    rm -rf "$repo"
    case $mode in
    vaultfs | vaultfs-forens)
        "$VAULTFS_BIN" -r "$repo" init >/dev/null
        extra=()
        [ "$mode" = vaultfs-forens ] && extra=(--include-unused)
        for round in first second; do
            run "$mode $round" "$repo" "$VAULTFS_BIN" -r "$repo" backup -q --disk "$disk" "${extra[@]}"
        done
        ;;
    restic)
        "$RESTIC_BIN" -r "$repo" init >/dev/null
        for round in first second; do
            run "restic $round" "$repo" sh -c \
                "'$RESTIC_BIN' -r '$repo' backup -q --stdin --stdin-filename disk.img < '$disk'"
        done
        ;;
    esac
done
