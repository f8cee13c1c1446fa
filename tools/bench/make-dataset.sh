#!/usr/bin/env bash
# Builds the benchmark datasets (deterministic on one machine).
#
#   make-dataset.sh DIR            DIR/mixed, DIR/many-small and their sha256 manifests
#   make-dataset.sh --mutate DIR   changes DIR (a copy of DIR/mixed) in place
#
# mixed (1.7 GB apparent at SCALE=1):
#   usr/      300 MiB sample of /usr/share + /usr/lib (half each), files <= 32 MiB
#             picked in a seeded hash order
#   random/   big.bin (256 MiB) + 11 x 4 MiB of AES-256-CTR keystream (openssl)
#   image/    disk.img: a 1 GiB sparse ext4 image made by mkfs.ext4 -d from usr/usr/share
# many-small: 200 000 files of 0..4096 bytes, 1000 per directory
#
# --mutate: 1 % of files overwritten mid-file (64 bytes), 100 files appended
# (1..8 KiB), 1000 bytes inserted at the middle of random/big.bin (unaligned),
# 4 x 64 KiB rewritten in image/disk.img, usr/share/i18n renamed if present.
#
# Environment: SEED (default vaultfs-bench-1); SCALE (default 1) divides every
# size and count, for checking the scripts quickly -- numbers from SCALE > 1
# are not benchmark results.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SEED=${SEED:-vaultfs-bench-1}
SCALE=${SCALE:-1}
PY=${PYTHON:-python3}

usage() {
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need() {
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null || {
            echo "make-dataset.sh: $cmd is required" >&2
            exit 1
        }
    done
}

# keystream NAME BYTES > file: AES-256-CTR keystream keyed by the seed and NAME.
keystream() {
    local key iv
    key=$(printf '%s' "$SEED:$1" | sha256sum | cut -c1-64)
    iv=$(printf '%s' "$SEED:$1:iv" | sha256sum | cut -c1-32)
    # openssl dies of SIGPIPE when head has enough; the size is checked below.
    { openssl enc -aes-256-ctr -nosalt -K "$key" -iv "$iv" -in /dev/zero 2>/dev/null || true; } | head -c "$2"
}

# random_file NAME BYTES PATH
random_file() {
    keystream "$1" "$2" >"$3"
    [ "$(stat -c %s "$3")" = "$2" ] || {
        echo "make-dataset.sh: openssl produced a short $3" >&2
        exit 1
    }
}

manifest() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

if [ "${1:-}" = "--mutate" ]; then
    [ $# -eq 2 ] || usage
    need "$PY"
    exec "$PY" "$here/dataset.py" mutate "$2" "$SEED"
fi
[ $# -eq 1 ] || usage
need "$PY" openssl mkfs.ext4 debugfs sha256sum
DIR=$1
if [ -e "$DIR/mixed" ] || [ -e "$DIR/many-small" ]; then
    echo "make-dataset.sh: $DIR already holds a dataset; remove it first" >&2
    exit 1
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
MiB=$((1 << 20))
mixed=$DIR/mixed

echo "make-dataset.sh: sampling /usr into $mixed/usr" >&2
"$PY" "$here/dataset.py" sample "$mixed" "$SEED" $((300 * MiB / SCALE)) /usr/share /usr/lib

echo "make-dataset.sh: random data" >&2
mkdir -p "$mixed/random"
random_file big $((256 * MiB / SCALE)) "$mixed/random/big.bin"
for i in $(seq -w 1 11); do
    random_file "part$i" $((4 * MiB / SCALE)) "$mixed/random/part$i.bin"
done
"$PY" "$here/dataset.py" fixtimes "$mixed"

echo "make-dataset.sh: ext4 image" >&2
mkdir -p "$mixed/image"
uuid=$(printf '%s' "$SEED:image" | sha256sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
truncate -s $((1024 * MiB / SCALE)) "$mixed/image/disk.img"
E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -U "$uuid" -E "root_owner=0:0,hash_seed=$uuid" \
    -d "$mixed/usr/share" "$mixed/image/disk.img"
# mkfs copies each file's ctime, which nobody can set: pin it with debugfs.
(cd "$mixed/usr/share" && find . -mindepth 1 ! -name '*"*' -printf 'sif "/%P" ctime @1700000000\n') >"$DIR/debugfs.cmd"
E2FSPROGS_FAKE_TIME=1700000000 debugfs -w -f "$DIR/debugfs.cmd" "$mixed/image/disk.img" >/dev/null 2>&1
rm "$DIR/debugfs.cmd"
touch -d @1700000000 "$mixed/image/disk.img" "$mixed/image" "$mixed"

echo "make-dataset.sh: many-small" >&2
"$PY" "$here/dataset.py" small "$DIR/many-small" "$SEED" $((200000 / SCALE))
"$PY" "$here/dataset.py" fixtimes "$DIR/many-small"

manifest "$mixed" >"$DIR/mixed.sha256"
manifest "$DIR/many-small" >"$DIR/many-small.sha256"
printf 'seed=%s\nscale=%s\n' "$SEED" "$SCALE" >"$DIR/dataset.txt"
du -s --apparent-size -B1 "$mixed" "$DIR/many-small" >&2
echo "make-dataset.sh: done: $DIR" >&2
