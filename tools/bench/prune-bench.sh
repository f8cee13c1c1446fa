#!/usr/bin/env bash
# `vaultfs prune` beside `restic prune` on copies of the same vault: many
# small snapshots of a changing tree, most of them forgotten. Manual: CI
# never runs it. Needs restic, openssl, /usr/bin/time; no root.
#
#   tools/bench/prune-bench.sh
#
# The vault is made once by SNAPSHOTS `vaultfs backup` runs of a tree of
# FILES files; before each run the next CHANGE files (round robin) get new
# incompressible content (AES-CTR keystream) of FILE_SIZE bytes, so each
# snapshot adds CHANGE * FILE_SIZE bytes (defaults: 5000 snapshots of 25
# new 16 KiB files: ~2 GiB) and a file's content lives FILES / CHANGE = 8
# snapshots.
# Every 250 backups the index is folded into few files (`repair index`),
# as a real vault's would be by its prunes. Then every snapshot but each
# KEEP_EVERY-th is forgotten (its file removed: about 20% of the data,
# spread over all packs, is then unused), and the vault is copied
# twice: `vaultfs prune` runs on one copy, `restic prune` on the other,
# each under /usr/bin/time -f '%e %U %S %M' (both with their default
# --max-unused 5%). Both results are checked with `restic check` and the
# sizes of data/ before and after are printed.
#
# Environment: SNAPSHOTS=5000 FILES=200 CHANGE=25 FILE_SIZE=16384
#   KEEP_EVERY=10 BENCH=${TMPDIR:-/tmp}/vaultfs-prune-bench
#   VAULTFS_BIN=<repo>/target/release/vaultfs  RESTIC_BIN=restic
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
SNAPSHOTS=${SNAPSHOTS:-5000}
FILES=${FILES:-200}
CHANGE=${CHANGE:-25}
FILE_SIZE=${FILE_SIZE:-16384}
KEEP_EVERY=${KEEP_EVERY:-10}
BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-prune-bench}
VAULTFS_BIN=${VAULTFS_BIN:-$top/target/release/vaultfs}
RESTIC_BIN=${RESTIC_BIN:-restic}
if [ ! -x "$VAULTFS_BIN" ]; then
    (cd "$top" && cargo build --release --locked -p vaultfs-cli)
fi
mkdir -p "$BENCH"
repo=$BENCH/repo
pw=$BENCH/password
echo "bench-password" > "$pw"
export VAULTFS_PASSWORD_FILE=$pw RESTIC_PASSWORD_FILE=$pw

keystream() { # seed bytes
    (openssl enc -aes-256-ctr -nosalt -pass pass:"prune-bench-$1" \
        -in /dev/zero 2>/dev/null || true) | head -c "$2"
}

if [ ! -f "$BENCH/made" ]; then
    src=$BENCH/src
    rm -rf "$src" "$repo" && mkdir -p "$src"
    for f in $(seq 0 $((FILES - 1))); do
        mkdir -p "$src/d$((f % 10))"
        keystream "init-$f" 4096 > "$src/d$((f % 10))/f$f"
    done
    "$VAULTFS_BIN" -r "$repo" init > /dev/null
    start=$(date +%s)
    for s in $(seq 1 "$SNAPSHOTS"); do
        # One keystream cut into the CHANGE new file contents.
        keystream "$s" $((CHANGE * FILE_SIZE)) | split -b "$FILE_SIZE" -d -a 4 - "$BENCH/new."
        for c in $(seq 0 $((CHANGE - 1))); do
            f=$(( (s * CHANGE + c) % FILES ))
            mv "$BENCH/new.$(printf %04d "$c")" "$src/d$((f % 10))/f$f"
        done
        "$VAULTFS_BIN" -r "$repo" -q backup --host bench "$src" > /dev/null
        if [ $((s % 250)) -eq 0 ]; then
            "$VAULTFS_BIN" -r "$repo" -q repair index > /dev/null
            echo "$s snapshots ($(( $(date +%s) - start )) s)" >&2
        fi
    done
    # Forget all but every KEEP_EVERY-th snapshot (oldest first).
    "$RESTIC_BIN" -r "$repo" --no-lock --no-cache snapshots --json |
        python3 -c '
import json, sys
snaps = sorted(json.load(sys.stdin), key=lambda s: s["time"])
keep = int(sys.argv[1])
for i, s in enumerate(snaps):
    if i % keep != keep - 1:
        print(s["id"])
' "$KEEP_EVERY" | while read -r id; do rm "$repo/snapshots/$id"; done
    touch "$BENCH/made"
fi

size() { du -sb --apparent-size "$1/data" | cut -f1; }
echo "vault: $(ls "$repo/snapshots" | wc -l) snapshots left, data/ $(size "$repo") bytes"
for tool in vaultfs restic; do
    rm -rf "$BENCH/$tool" && cp -a "$repo" "$BENCH/$tool"
    sync
    if [ "$tool" = vaultfs ]; then
        cmd=("$VAULTFS_BIN" -r "$BENCH/$tool" prune)
    else
        cmd=("$RESTIC_BIN" -r "$BENCH/$tool" --no-cache prune)
    fi
    /usr/bin/time -f '%e %U %S %M' -o "$BENCH/$tool.time" "${cmd[@]}" > "$BENCH/$tool.out" 2>&1
    read -r wall user sys rss < "$BENCH/$tool.time"
    cpu=$(python3 -c "print(round($user + $sys, 2))")
    echo "$tool prune: wall ${wall}s, CPU ${cpu}s, peak RSS $((rss / 1024)) MiB, data/ after $(size "$BENCH/$tool") bytes"
    "$RESTIC_BIN" -r "$BENCH/$tool" --no-lock --no-cache check > "$BENCH/$tool.check" 2>&1 ||
        { echo "restic check failed after $tool prune (see $BENCH/$tool.check)"; exit 1; }
done
