#!/usr/bin/env bash
# Builds the FAT12, FAT16 and FAT32 test volumes with mkfs.vfat (dosfstools)
# and mtools, no root needed. Needs dosfstools, mtools, python3, zstd.
# Outputs: fs/fat{12,16,32}.img.zst and fs/fat{12,16,32}.json.zst, the manifest
# of the SOURCE tree each volume was filled from (path, type, size,
# SHA-256, mtime) plus the deleted file's bytes, for the tests' oracle.
#
# File content is a function of the path (the tests recompute it for
# random reads): block k of 32 bytes is SHA-256("<path>:<k>"), cut to the
# file's size. Every mtime is an even second (FAT keeps 2 s), TZ=UTC.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p fs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LC_ALL=C.UTF-8 TZ=UTC MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0

# gen.py SRC FAT: writes the source tree for one volume.
cat >"$tmp/gen.py" <<'PY'
import hashlib, os, sys
src, fat = sys.argv[1], int(sys.argv[2])
small = fat == 12
def content(path, size):
    out = bytearray()
    k = 0
    while len(out) < size:
        out += hashlib.sha256(f"{path}:{k}".encode()).digest()
        k += 1
    return bytes(out[:size])
t0 = 1592222400  # 2020-06-15 12:00:00 UTC
n = 0
def put(path, size):
    global n
    full = os.path.join(src, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(content(path, size))
    n += 1
    os.utime(full, (t0 + 2 * n, t0 + 2 * n))
put("hello.txt", 1234)
put("empty.txt", 0)
put("one.bin", 1)
put("UPPER.TXT", 17)
put("lower.txt", 18)
put("UP.low", 19)
put("Mixed.Txt", 20)
put("brød.txt", 21)
put("Ελληνικά αρχεία.txt", 3001)
put("日本語のファイル.txt", 2049)
put("café au lait.txt", 777)
put("this is a rather long file name of more than 45 characters.txt", 4097)
put("readonly.txt", 100)
put("hidden.txt", 101)
put("dir/nested_ñ.txt", 55)
put("dir/sub dir/deeper/deep.txt", 999)
put("a/b/c/d/e/leaf.bin", 5)
put("big/random.bin", 100_000 if small else 300_000)
put("big/odd.bin", 65_537)
for i in range(300 if small else 3000):
    put(f"many/{i:04} entry.txt", i % 5)
# The fragmentation set: frag.sh copies small_* first, deletes the odd
# ones, then copies big.bin into the gaps.
for i in range(16):
    put(f"frag/small_{i:02}.bin", 3 * 2048)
put("frag/big.bin", 8 * 3 * 2048 + 5000)
put("gone.txt", 5000)
PY

# manifest.py SRC OUT FAT: the manifest of SRC after the deletions.
cat >"$tmp/manifest.py" <<'PY'
import hashlib, json, os, sys
src, out, fat = sys.argv[1], sys.argv[2], int(sys.argv[3])
entries = []
for root, dirs, files in os.walk(src):
    dirs.sort()
    for name in sorted(dirs) + sorted(files):
        full = os.path.join(root, name)
        rel = os.path.relpath(full, src)
        if rel == "gone.txt":
            continue
        st = os.lstat(full)
        e = {"path": rel, "type": "dir" if os.path.isdir(full) else "file",
             "mtime": int(st.st_mtime)}
        if e["type"] == "file":
            data = open(full, "rb").read()
            e["size"] = len(data)
            e["sha256"] = hashlib.sha256(data).hexdigest()
        entries.append(e)
gone = open(os.path.join(src, "gone.txt"), "rb").read()
m = {"fat": fat, "label": f"FAT{fat}TEST", "entries": entries,
     "deleted": {"path": "gone.txt", "size": len(gone),
                 "sha256": hashlib.sha256(gone).hexdigest()}}
with open(out, "w") as f:
    f.write('{"fat": %d, "label": %s, "deleted": %s, "entries": [\n' % (
        fat, json.dumps(m["label"]), json.dumps(m["deleted"])))
    f.write(",\n".join(json.dumps(e, ensure_ascii=False) for e in entries))
    f.write("\n]}\n")
PY

vol() { # fat size-MiB sectors-per-cluster
    local fat=$1 size=$2 spc=$3
    local img="$tmp/fat$fat.img" src="$tmp/src$fat"
    python3 "$tmp/gen.py" "$src" "$fat"
    truncate -s "${size}M" "$img"
    mkfs.vfat -F "$fat" -s "$spc" -n "FAT${fat}TEST" -i "1234${fat}AB" "$img" >/dev/null
    local m=(-i "$img")
    # Fragmentation: 16 files of 6 KiB, every other one deleted, then a
    # file larger than the gaps (mtools fills the first free clusters).
    mmd "${m[@]}" ::/frag
    for i in $(seq -w 0 15); do mcopy -m "${m[@]}" "$src/frag/small_$i.bin" ::/frag/; done
    for i in 01 03 05 07 09 11 13 15; do
        mdel "${m[@]}" "::/frag/small_$i.bin"
        rm "$src/frag/small_$i.bin"
    done
    mcopy -m "${m[@]}" "$src/frag/big.bin" ::/frag/
    # Everything else, recursively, keeping mtimes.
    for top in "$src"/*; do
        [ "$(basename "$top")" = frag ] || [ "$(basename "$top")" = gone.txt ] && continue
        mcopy -s -m "${m[@]}" "$top" ::/
    done
    mattrib "${m[@]}" +r ::/readonly.txt
    mattrib "${m[@]}" +h ::/hidden.txt
    # A deleted file whose clusters nothing reuses.
    mcopy -m "${m[@]}" "$src/gone.txt" ::/
    mdel "${m[@]}" ::/gone.txt
    python3 "$tmp/manifest.py" "$src" "$tmp/fat$fat.json" "$fat"
    zstd -q -19 -f "$tmp/fat$fat.json" -o "fs/fat$fat.json.zst"
    zstd -q -19 -f "$img" -o "fs/fat$fat.img.zst"
}

# FAT12: 4 MiB, 2 KiB clusters; FAT16: 24 MiB, 2 KiB clusters; FAT32:
# 40 MiB with 512-byte clusters (FAT32 needs 65525 clusters or more).
vol 12 4 4
vol 16 24 4
vol 32 40 1

# Fuzz seeds: a flags byte, then a tiny FAT12 volume (64 and 128 KiB).
mkdir -p ../fuzz/seeds/fat
seed() { # name size-KiB mkfs options...
    local name=$1 size=$2
    shift 2
    local img="$tmp/seed-$name"
    truncate -s "${size}K" "$img"
    mkfs.vfat -F 12 -i 5EED0000 "$@" "$img" >/dev/null
    printf 'hello, fat\n' >"$tmp/hello.txt"
    head -c 3000 /dev/zero | tr '\0' 'x' >"$tmp/A file with a long name.txt"
    printf 'gone' >"$tmp/gone.txt"
    mmd -i "$img" ::/sub
    mcopy -i "$img" "$tmp/hello.txt" "$tmp/A file with a long name.txt" ::/
    mcopy -i "$img" "$tmp/hello.txt" ::/sub/
    mcopy -i "$img" "$tmp/gone.txt" ::/sub/
    mdel -i "$img" ::/sub/gone.txt
    # The target's first byte holds flags (bit 0: code page 437).
    { printf '\0'; cat "$img"; } >"../fuzz/seeds/fat/$name"
}
seed tiny-512 64 -s 1 -r 32 -n SEED
seed small-1k 128 -s 2 -f 1
