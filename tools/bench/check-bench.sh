#!/usr/bin/env bash
# `vaultfs check --read-data` beside `restic check --read-data` on the same
# clean vault of about 2 GiB. Manual: CI never runs it. Needs restic,
# openssl, python3, /usr/bin/time; no root.
#
#   tools/bench/check-bench.sh
#
# The vault is made once by `vaultfs backup`, so both tools read the same
# packs (~2 GiB of repository bytes), from one of two datasets:
#   DATASET=random (default): 1.7 GiB of AES-CTR keystream (incompressible,
#     stored as is, large blobs) and 1 GiB of generated text;
#   DATASET=usr: a 3 GiB sample of /usr/share and /usr/lib (programs,
#     libraries, documentation: compressible, many small files and blobs)
#     and 400 MiB of keystream, as tools/bench/make-dataset.sh samples.
# Each
# of ROUNDS interleaved rounds (the order alternates) reads the whole vault
# twice to warm the page cache, then runs each tool under
# /usr/bin/time -f '%e %U %S %M'. Prints per tool the median wall time,
# MB/s (repository bytes / wall), CPU seconds (user + sys), peak RSS, and
# the vaultfs/restic ratios.
#
# Environment: ROUNDS=5  DATASET=random|usr  BENCH=${TMPDIR:-/tmp}/vaultfs-check-bench[-usr]
#   VAULTFS_BIN=<repo>/target/release/vaultfs  RESTIC_BIN=restic
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-5}
DATASET=${DATASET:-random}
case $DATASET in
    random) BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-check-bench} ;;
    usr) BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-check-bench-usr} ;;
    *) echo "DATASET must be random or usr" >&2; exit 2 ;;
esac
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
# The progress file of `check --read-data` goes here, not into ~/.local.
export XDG_STATE_HOME=$BENCH/state

if [ ! -f "$repo/config" ]; then
    src=$BENCH/src
    rm -rf "$src" "$repo" && mkdir -p "$src/random" "$src/text"
    if [ "$DATASET" = usr ]; then
        python3 "$here/dataset.py" sample "$src/usr" check-bench $((3 << 30)) /usr/share /usr/lib
        nrandom=3
    else
        nrandom=16
    fi
    for i in $(seq 0 "$nrandom"); do
        # openssl ends on SIGPIPE when head has enough: not a failure.
        (openssl enc -aes-256-ctr -nosalt -pass pass:"check-bench-$i" \
            -in /dev/zero 2>/dev/null || true) | head -c $((100 << 20)) > "$src/random/r$i.bin"
    done
    [ "$DATASET" = usr ] || python3 - "$src/text" <<'PY'
import os, random, sys
rng = random.Random(7)
words = ("vault snapshot chunk pack index tree blob restore backup the of and "
         "a to in is deduplicated encrypted compressed filesystem partition "
         "sector cluster inode extent journal superblock").split()
for i in range(64):
    with open(os.path.join(sys.argv[1], f"t{i}.txt"), "w") as f:
        n = 0
        while n < 16 << 20:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 16)))
            line += f" {rng.getrandbits(48):x}\n"
            f.write(line)
            n += len(line)
PY
    "$VAULTFS_BIN" -r "$repo" init >/dev/null
    "$VAULTFS_BIN" -r "$repo" backup -q "$src" >/dev/null
    rm -rf "$src"
fi
repo_bytes=$(du -sb "$repo" | cut -f1)
echo "vault: $repo ($((repo_bytes >> 20)) MiB, $(find "$repo/data" -type f | wc -l) packs)"

out=$BENCH/results.txt
: > "$out"
warm() { find "$repo" -type f -exec cat {} + > /dev/null; find "$repo" -type f -exec cat {} + > /dev/null; }
run() {
    local tool=$1 t
    warm
    case $tool in
        vaultfs) t=$( { /usr/bin/time -f '%e %U %S %M' "$VAULTFS_BIN" -r "$repo" -q check --read-data > /dev/null; } 2>&1 | tail -1) ;;
        restic) t=$( { /usr/bin/time -f '%e %U %S %M' "$RESTIC_BIN" -r "$repo" -q check --read-data > /dev/null; } 2>&1 | tail -1) ;;
    esac
    echo "$tool $t" | tee -a "$out"
}
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run vaultfs; run restic; else run restic; run vaultfs; fi
done

python3 - "$out" "$repo_bytes" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tool, wall, user, sys_, rss = line.split()
    rows.setdefault(tool, []).append((float(wall), float(user) + float(sys_), int(rss)))
size = int(sys.argv[2])
med = {}
print(f"{'tool':8} {'wall s':>8} {'MB/s':>8} {'CPU s':>8} {'RSS MiB':>8}  rounds (wall s)")
for tool, v in rows.items():
    wall = statistics.median(x[0] for x in v)
    cpu = statistics.median(x[1] for x in v)
    rss = statistics.median(x[2] for x in v) / 1024
    med[tool] = (wall, cpu)
    print(f"{tool:8} {wall:8.2f} {size / wall / 1e6:8.0f} {cpu:8.2f} {rss:8.0f}  "
          + " ".join(f"{x[0]:.2f}" for x in v))
if "vaultfs" in med and "restic" in med:
    print(f"vaultfs/restic: {med['restic'][0] / med['vaultfs'][0]:.2f}x the speed (wall), "
          f"{med['restic'][1] / med['vaultfs'][1]:.2f}x less CPU (target 3x)")
PY
