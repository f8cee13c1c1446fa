#!/usr/bin/env bash
# Reading through the FUSE mount beside `vaultfs restore` and beside
# `restic mount` of the same vault (restic reads vaultfs repositories).
# Manual: CI never runs it. Needs root (or fuse access), fusermount3, restic.
#
#   tools/bench/mount-bench.sh
#
# Builds (once) a vault holding a 1 GiB file (half random, half text) and a
# directory of 3000 small files. Then, for ROUNDS rounds, with the vault's
# packs read twice beforehand (warm page cache, as on a backup server that
# just wrote them):
#
#   restore  vaultfs restore latest:/data/big.bin --target OUT
#   mount    cat MNT/ids/<id>/data/big.bin > OUT   (vaultfs mount)
#   restic   cat MNT/ids/<id>/data/big.bin > OUT   (restic mount)
#   ls       ls -f of the 3000-entry directory through the vaultfs mount,
#            first and second listing
#
# and prints medians: wall seconds and MB/s of the file, and the ratios the
# targets name (mount >= 0.9x restore, mount >= 3x restic mount; ls after
# the first listing < 100 ms).
#
# Environment: ROUNDS=3  BENCH=${TMPDIR:-/tmp}/vaultfs-mount-bench
#   VAULTFS_BIN=<repo>/target/release/vaultfs  RESTIC_BIN=restic
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-3}
BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-mount-bench}
VAULTFS_BIN=${VAULTFS_BIN:-$top/target/release/vaultfs}
RESTIC_BIN=${RESTIC_BIN:-restic}
if [ ! -x "$VAULTFS_BIN" ]; then
    (cd "$top" && cargo build --release --locked -p vaultfs-cli)
fi
mkdir -p "$BENCH"
repo=$BENCH/repo data=$BENCH/data mnt=$BENCH/mnt out=$BENCH/out
echo bench >"$BENCH/password"
export VAULTFS_REPOSITORY=$repo VAULTFS_PASSWORD_FILE=$BENCH/password
export RESTIC_REPOSITORY=$repo RESTIC_PASSWORD_FILE=$BENCH/password

if [ ! -d "$repo" ]; then
    mkdir -p "$data/many"
    python3 - "$data" <<'PY'
import os, random, sys
d = sys.argv[1]
rng = random.Random(11)
with open(os.path.join(d, "big.bin"), "wb") as f:
    for _ in range(512):
        f.write(rng.randbytes(1 << 20))
    words = [b"vault", b"mount", b"restore", b"blob", b"pack", b"index", b"2026"]
    for _ in range(512):
        line = b" ".join(rng.choice(words) for _ in range(10)) + b"\n"
        f.write((line * ((1 << 20) // len(line) + 1))[: 1 << 20])
for i in range(3000):
    with open(os.path.join(d, "many", "f%04d.txt" % i), "wb") as f:
        f.write(b"file %d\n" % i)
PY
    "$VAULTFS_BIN" init -q
    (cd "$BENCH" && "$VAULTFS_BIN" backup -q data)
fi
id=$("$VAULTFS_BIN" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["short_id"])')
path=$("$VAULTFS_BIN" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["paths"][0])')
size=$(stat -c %s "$data/big.bin")
want=$(sha256sum "$data/big.bin" | cut -d' ' -f1)

warm() { find "$repo" -type f -exec cat {} + >/dev/null; find "$repo" -type f -exec cat {} + >/dev/null; }
wait_for() { # path
    for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done
    echo "timed out waiting for $1" >&2; return 1
}
check() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$want" ] || { echo "$1: wrong content" >&2; exit 1; }; }
now() { date +%s.%N; }
results=$BENCH/results.txt
: >"$results"
mkdir -p "$mnt"
for round in $(seq "$ROUNDS"); do
    warm
    rm -rf "$out"; mkdir -p "$out"
    t0=$(now); "$VAULTFS_BIN" restore -q "latest:$path/big.bin" --target "$out"; t1=$(now)
    check "$out/big.bin"; echo "restore $(echo "$t1 - $t0" | bc)" >>"$results"

    warm; rm -rf "$out"; mkdir -p "$out"
    "$VAULTFS_BIN" mount "$mnt" 2>/dev/null & pid=$!
    wait_for "$mnt/ids/$id"
    t0=$(now); cat "$mnt/ids/$id$path/big.bin" >"$out/big.bin"; t1=$(now)
    check "$out/big.bin"; echo "mount $(echo "$t1 - $t0" | bc)" >>"$results"
    t0=$(now); ls -f "$mnt/ids/$id$path/many" >/dev/null; t1=$(now)
    t2=$(now); ls -f "$mnt/ids/$id$path/many" >/dev/null; t3=$(now)
    echo "ls-first $(echo "$t1 - $t0" | bc)" >>"$results"
    echo "ls-again $(echo "$t3 - $t2" | bc)" >>"$results"
    kill -TERM "$pid"; wait "$pid" || true

    if command -v "$RESTIC_BIN" >/dev/null; then
        warm; rm -rf "$out"; mkdir -p "$out"
        "$RESTIC_BIN" mount "$mnt" >/dev/null 2>&1 & pid=$!
        wait_for "$mnt/ids/$id"
        t0=$(now); cat "$mnt/ids/$id$path/big.bin" >"$out/big.bin"; t1=$(now)
        check "$out/big.bin"; echo "restic-mount $(echo "$t1 - $t0" | bc)" >>"$results"
        kill -INT "$pid"; wait "$pid" || true
        fusermount3 -u "$mnt" 2>/dev/null || true
    fi
done
rm -rf "$out"
python3 "$here/medians.py" "$results" "$size" restore mount restic-mount \
    ls-first:ms ls-again:ms "mount/restore>=0.90" "mount/restic-mount>=3"
