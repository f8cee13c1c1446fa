#!/usr/bin/env bash
# Builds the ext2/3/4 test images with mke2fs -d (e2fsprogs) from source
# trees made by ext-tree.py (no mount needed; root only for mknod of the
# device nodes in the source tree):
#
#   fs/ext2-1k.img.zst    16 MiB ext2, 1 KiB blocks: indirect block maps,
#                         1 MiB files reach the double-indirect block.
#   fs/ext3.img.zst       24 MiB ext3, 4 KiB blocks, journal, no extents;
#                         then `needs_recovery` set by debugfs (a journal
#                         to replay: the reader must warn).
#   fs/ext4.img.zst       32 MiB ext4 defaults (4 KiB, metadata_csum, 64bit,
#                         flex_bg, extents) with a 3000-entry htree dir.
#   fs/ext4-inline.img.zst  16 MiB ext4 with inline_data: small files,
#                         a small directory and an 80-byte symlink inline.
#   fs/ext4-old.img.zst   16 MiB ext4, 2 KiB blocks, 128-byte inodes (no
#                         nanoseconds, no crtime), 32-byte group descriptors,
#                         uninit_bg's CRC-16 instead of metadata_csum.
#   fs/ext4-deep.img.zst  32 MiB ext4, 1 KiB blocks, meta_bg (no
#                         resize_inode), large_dir, a 10000-entry htree
#                         dir and a file of 600 one-block extents (extent
#                         tree of depth 2).
#   (Each but the ext4 defaults and ext4-deep also has gone.txt deleted by
#   debugfs rm, which keeps the block map; the e2fsck -D run below then
#   compacts the directories, so deleted() finds the inode, not its name;
#   on ext4-inline no inode with a deletion time is left to find.)
#   Every image: extended attributes set in the source tree by ext-tree.py
#   (user.*, trusted.* on a directory and a symlink, security.*, a POSIX
#   ACL, one large value on sizes/s1 that goes to the external attribute
#   block; on ext4-deep, made with ea_inode, to an EA inode).
#   fs/ext*.manifest.json.zst the source tree (path, type, size, sha256, mtime
#                         [secs, nanos], target, nlink, rdev, segments).
#
# mke2fs 1.47.0 copies whole seconds only, so the manifest's nanoseconds are
# zeroed, and then two inodes get exact times by debugfs `sif`: sizes/s1
# 123456789 ns, sizes/s60 an mtime past 2106 (epoch bits 01).
# The script checks with debugfs that the deep file's extent tree has depth
# 2 and that htree dirs are indexed.
#
# Needs e2fsprogs, python3, zstd; root (mknod) for the device nodes.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p fs

build() { # build NAME KIND SIZE MKFS-ARGS...
    local name=$1 kind=$2 size=$3
    shift 3
    local m=$here/fs/$name.manifest.json img=$tmp/$name.img
    python3 "$here/ext-tree.py" make "$tmp/$name-src" "$m" "$kind"
    truncate -s "$size" "$img"
    "$@" -q -F -U 5c0ffee5-0000-4000-8000-0000000000e4 -L "vfs-$name" -d "$tmp/$name-src" "$img"
    # Files the tree marks for deletion go (debugfs rm: links 0, dtime set).
    for p in $(python3 -c "import json,sys;print(' '.join(e['path'] for e in json.load(open(sys.argv[1]))['entries'] if e.get('delete')))" "$m"); do
        debugfs -w -R "rm /$p" "$img" >/dev/null 2>&1
    done
    # Whole seconds only from -d; exact times on two files.
    python3 - "$m" "${TIMES:-exact}" <<'PY'
import json, sys
m = sys.argv[1]
man = json.load(open(m))
man["deleted"] = [e for e in man["entries"] if e.get("delete")]
man["entries"] = [e for e in man["entries"] if not e.get("delete")]
for e in man["entries"]:
    if "mtime" in e:
        e["mtime"][1] = 0
    if sys.argv[2] != "exact":
        continue  # 128-byte inodes: no extra time fields
    if e["path"] == "sizes/s1":
        e["mtime"][1] = 123456789
    if e["path"] == "sizes/s60":
        e["mtime"] = [0x12345678 + (1 << 32), 5]
import importlib, os
sys.path.insert(0, os.path.dirname(m) + "/..")
importlib.import_module("xfs-tree").dump(man, m)
PY
    if [ "${TIMES:-exact}" = exact ]; then
        debugfs -w -R "sif /sizes/s1 mtime_extra $((123456789 << 2))" "$img" 2>/dev/null
        debugfs -w -R "sif /sizes/s60 mtime 0x12345678" "$img" 2>/dev/null
        debugfs -w -R "sif /sizes/s60 mtime_extra $(((5 << 2) | 1))" "$img" 2>/dev/null
        debugfs -R "stat /sizes/s1" "$img" 2>/dev/null | grep -q 'mtime: 0x[0-9a-f]*:1d6f3454' ||
            { echo "ext.sh: $name: sizes/s1 mtime_extra not set" >&2; exit 1; }
    fi
    # mke2fs -d writes linear directories; -D indexes the large ones.
    e2fsck -fyD "$img" >/dev/null 2>&1 || [ $? -le 1 ]
    e2fsck -fn "$img" >/dev/null 2>&1
}

EXT_XATTR_BIG=700 build ext2-1k small 16M mkfs.ext2 -b 1024
build ext3 small 24M mkfs.ext3 -b 4096
debugfs -w -R "feature needs_recovery" "$tmp/ext3.img" >/dev/null 2>&1
build ext4 big 32M mkfs.ext4 -b 4096
build ext4-inline small 16M mkfs.ext4 -b 4096 -O inline_data
# An 80-byte symlink: past i_block, so debugfs puts it in system.data
# (mke2fs -d gives it a block).
mid=$(printf 'm%.0s' $(seq 70))/123456789
debugfs -w -R "symlink /links/mid $mid" "$tmp/ext4-inline.img" >/dev/null 2>&1
python3 "$here/xfs-tree.py" add "$here/fs/ext4-inline.manifest.json" \
    "{\"path\": \"links/mid\", \"type\": \"symlink\", \"target\": \"$mid\"}"
EXT_XATTR_BIG=1500 TIMES=seconds build ext4-old small 16M mkfs.ext4 -b 2048 -I 128 -O ^metadata_csum,^64bit,uninit_bg
build ext4-deep deep 32M mkfs.ext4 -b 1024 -N 12000 -O meta_bg,^resize_inode,large_dir,ea_inode

debugfs -R "ex /frag/deep" "$tmp/ext4-deep.img" 2>/dev/null | grep -q '^ 0/ 2' ||
    { echo "ext.sh: frag/deep's extent tree is not of depth 2" >&2; exit 1; }
for i in ext4 ext4-deep; do
    debugfs -R "htree /htree" "$tmp/$i.img" 2>/dev/null | grep -q 'Root node dump' ||
        { echo "ext.sh: $i: /htree is not indexed" >&2; exit 1; }
done
debugfs -R "stat /inline/small1" "$tmp/ext4-inline.img" 2>/dev/null | grep -q 'Size of inline data' ||
    { echo "ext.sh: inline/small1 is not inline" >&2; exit 1; }
debugfs -R "stat /inline/tinydir" "$tmp/ext4-inline.img" 2>/dev/null | grep -q 'Size of inline data' ||
    { echo "ext.sh: inline/tinydir is not inline" >&2; exit 1; }
debugfs -R "stat /links/mid" "$tmp/ext4-inline.img" 2>/dev/null | grep -q 'Flags: 0x10000000' ||
    { echo "ext.sh: links/mid is not inline" >&2; exit 1; }
for i in ext2-1k ext3 ext4 ext4-inline ext4-old; do
    debugfs -R "stat /sizes/s1" "$tmp/$i.img" 2>/dev/null | grep -q 'File ACL: [1-9]' ||
        { echo "ext.sh: $i: sizes/s1 has no external attribute block" >&2; exit 1; }
done
debugfs -R "stat /sizes/s1" "$tmp/ext4-deep.img" 2>/dev/null | grep -q 'File ACL: 0' ||
    { echo "ext.sh: ext4-deep: sizes/s1 should keep user.big in an EA inode" >&2; exit 1; }
for i in ext2-1k ext3 ext4 ext4-inline ext4-old ext4-deep; do
    zstd -q -19 -f "$tmp/$i.img" -o "fs/$i.img.zst"
    zstd -q -19 -f --rm "fs/$i.manifest.json" -o "fs/$i.manifest.json.zst"
done

# ---- fuzz seeds: a tiny ext2 and ext4, as sparse chunks ----
seeds=$here/../fuzz/seeds/ext
mkdir -p "$seeds" "$tmp/seedsrc/d"
printf 'hello ext\n' >"$tmp/seedsrc/a"
head -c 5000 /dev/zero | tr '\0' 'x' >"$tmp/seedsrc/b"
ln -s a "$tmp/seedsrc/l"
ln -s "$(printf 'x/%.0s' $(seq 40))end" "$tmp/seedsrc/longlink"
for i in $(seq 60); do printf 'f' >"$tmp/seedsrc/d/file-$i"; done
truncate -s 1M "$tmp/seed2.img" "$tmp/seed4.img"
mkfs.ext2 -q -F -b 1024 -N 128 -d "$tmp/seedsrc" "$tmp/seed2.img"
mkfs.ext4 -q -F -b 1024 -N 128 -O inline_data,^has_journal -d "$tmp/seedsrc" "$tmp/seed4.img"
seed() { # the fuzz target's input form: [flags u8][sectors u32 LE] then
    # per run of non-zero 512-byte sectors [first u32 LE][count u16 LE][bytes]
    python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
n = len(data) // 512
out = bytearray(struct.pack("<BI", int(sys.argv[3]), n))
i = 0
while i < n:
    if data[i * 512:(i + 1) * 512] == bytes(512):
        i += 1
        continue
    j = i
    while j < n and j - i < 65535 and data[j * 512:(j + 1) * 512] != bytes(512):
        j += 1
    out += struct.pack("<IH", i, j - i) + data[i * 512:j * 512]
    i = j
open(sys.argv[2], "wb").write(out)
PY
}
seed "$tmp/seed2.img" "$seeds/ext2" 0
seed "$tmp/seed4.img" "$seeds/ext4" 1
ls -l fs/ext*.zst "$seeds"

# ---- more block-size and layout variants ----
#   fs/ext4-64k.img.zst      16 MiB ext4 with 64 KiB blocks (too big for
#                            the kernel's 4 KiB pages: mke2fs warns, no
#                            journal fits; mke2fs -d and the reader work).
#   fs/ext2-triple.img.zst   16 MiB ext2, 1 KiB blocks, a 70 MiB sparse file
#                            whose data crosses the direct, single-, double-
#                            and triple-indirect ranges (checked: TIND).
#   fs/ext4-cluster.img.zst  32 MiB ext4 bigalloc, 4 KiB blocks in 16 KiB
#                            clusters (131072 blocks per group).
build ext4-64k small 16M mkfs.ext4 -b 65536
build ext2-triple triple 16M mkfs.ext2 -b 1024
build ext4-cluster small 32M mkfs.ext4 -b 4096 -O bigalloc -C 16384
debugfs -R "stat /triple/sparse" "$tmp/ext2-triple.img" 2>/dev/null | grep -q '(TIND)' ||
    { echo "ext.sh: triple/sparse has no triple-indirect block" >&2; exit 1; }
dumpe2fs -h "$tmp/ext4-64k.img" 2>/dev/null | grep -q 'Block size: *65536' ||
    { echo "ext.sh: ext4-64k has no 64 KiB blocks" >&2; exit 1; }
dumpe2fs -h "$tmp/ext4-cluster.img" 2>/dev/null | grep -q 'Cluster size: *16384' ||
    { echo "ext.sh: ext4-cluster has no 16 KiB clusters" >&2; exit 1; }
for i in ext4-64k ext2-triple ext4-cluster; do
    zstd -q -19 -f "$tmp/$i.img" -o "fs/$i.img.zst"
    zstd -q -19 -f --rm "fs/$i.manifest.json" -o "fs/$i.manifest.json.zst"
done
ls -l fs/ext4-64k.* fs/ext2-triple.* fs/ext4-cluster.*
