#!/usr/bin/env bash
# Builds the XFS test images (mkfs.xfs from xfsprogs, a protofile made by
# xfs-tree.py, then a loop mount for what a protofile cannot express):
#
#   fs/xfs-v5.img.zst  400 MiB v5 (CRC) volume, default geometry: 4 AGs of
#                      agblocks 25600 (NOT a power of two, agblklog 15),
#                      4 KiB blocks, 512-byte inodes, ftype, reflink, bigtime.
#                      Filled from the protofile, then mounted to add a name
#                      with a space, hardlinks, a sparse file, a fragmented
#                      file (falloc + every other block written: alternating
#                      written and unwritten extents), files in AG >= 1, a
#                      reflinked copy and distinct mtimes with nanoseconds;
#                      extended attributes set through the kernel
#                      (xfs-tree.py xattrs): shortform, a leaf with a
#                      remote value, node form (xattr/many), a POSIX ACL, a
#                      directory and a symlink, read back into the manifest.
#   fs/xfs-v4.img.zst  400 MiB v4 (-m crc=0) volume, same geometry, from the
#                      protofile only (the kernel here has no V4 support, so
#                      it cannot be mounted; its mtimes are mkfs's clock and
#                      the manifest has none); extended attributes set by
#                      xfs_db attr_set (values of 'v', checked with xfs_db's
#                      printing): shortform, a leaf with a remote value,
#                      node form.
#   fs/xfs-v4nf.img.zst  the v4 tree again with `-n ftype=0`: directory
#                      entries without file types.
#   fs/xfs-1k.img.zst  300 MiB v5 volume with 1 KiB blocks and 4 KiB
#                      directory blocks (dirblklog 2: block, leaf and node
#                      directories under dirs/), holding a file of
#                      2600 alternating written/unwritten 1 KiB extents, so
#                      its bmbt has two levels below the inode root; then
#                      frozen (everything checkpointed), one inode changed
#                      and the filesystem shut down without flushing: the
#                      log is dirty (needs recovery).
#   fs/xfs-*.manifest.json  the tree as written (path, type, size, sha256,
#                      mtime [secs, nanos], symlink target, nlink, rdev,
#                      written segments of sparse files), the tests' oracle.
#
# Verified with xfs_db after building (the script fails otherwise), v5 and v4
# alike: the root, dir_sf, sizes, links and dev are shortform (core.format
# local), dir_block is a block directory (one XDB3/XD2B block), dir_leaf a
# leaf directory (a XDD3/XD2D data block and a leafn block of magic 0x3df1
# (v5) / 0xd2f1 (v4) at the leaf offset 32 GiB), dir_node a node directory
# (a da node block 0x3ebe/0xfebe at the leaf offset) whose data fork is in
# btree form; sparse/frag (v5) has a btree data fork; frag/deep (1k) has a
# bmbt root of level 2.
#
# Needs root (loop mount), xfsprogs, python3, zstd.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
tmp=$(mktemp -d)
cleanup() {
    mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
tree="python3 $here/xfs-tree.py"
mkdir -p "$tmp/mnt" fs

db() { xfs_db -r "$@"; }
ino_of() { stat -c %i "$tmp/mnt/$1"; }
want() { # want IMG PATH-INO FIELD-REGEX: one xfs_db check
    local out
    out=$(db -c "inode $2" -c "print core.format core.nextents" "$1")
    grep -Eq "$3" <<<"$out" || {
        echo "xfs.sh: inode $2 of $1: wanted $3, got: $out" >&2
        exit 1
    }
}
dirino() { db -c "path /$2" -c "inode" "$1" | sed -n 's/.*current inode number is \([0-9]*\).*/\1/p'; }
check_dirs() { # the directory forms, by xfs_db
    local img=$1
    want "$img" "$(dirino "$img" dir_sf)" 'core.format = 1 '
    want "$img" "$(dirino "$img" dir_block)" 'core.format = 2 '
    want "$img" "$(dirino "$img" dir_leaf)" 'core.format = 2 '
    want "$img" "$(dirino "$img" dir_node)" 'core.format = 3 '
    db -c "path /dir_block" -c "dblock 0" -c "print" "$img" | grep -E >/dev/null 'magic = 0x(58444233|58443242)'
    db -c "path /dir_leaf" -c "dblock 8388608" -c "print" "$img" | grep -E >/dev/null 'magic = 0x(3df1|d2f1)'
    db -c "path /dir_node" -c "dblock 8388608" -c "print" "$img" | grep -E >/dev/null 'magic = 0x(3ebe|febe)'
}

# ---- v5, default geometry ----
m5=$here/fs/xfs-v5.manifest.json
$tree proto "$tmp/src5" "$tmp/proto5" "$m5"
truncate -s 400M "$tmp/v5.img"
mkfs.xfs -q -f -L vaultfs-v5 -m uuid=5c0ffee5-0000-4000-8000-000000000005 \
    -p "$tmp/proto5" "$tmp/v5.img"
mount -o loop "$tmp/v5.img" "$tmp/mnt"
mnt=$tmp/mnt
# A name with a space (protofiles cannot have one).
$tree write "sizes/with space.txt" "$mnt/sizes/with space.txt" 0 123
# Hardlinks: sizes/s4097 gets two more names.
ln "$mnt/sizes/s4097" "$mnt/links/hard1"
ln "$mnt/sizes/s4097" "$mnt/hard_root"
s4097=$(python3 -c "import json;print([e['sha256'] for e in json.load(open('$m5'))['entries'] if e['path']=='sizes/s4097'][0])")
# Sparse: 2 MiB with three written segments.
mkdir "$mnt/sparse"
truncate -s 2M "$mnt/sparse/holes"
$tree write sparse/holes "$mnt/sparse/holes" 0 100
$tree write sparse/holes "$mnt/sparse/holes" 300000 5000
$tree write sparse/holes "$mnt/sparse/holes" 2000000 97152
# Fragmented: 600 blocks preallocated (unwritten), every other one written.
xfs_io -f -c "falloc 0 2400k" "$mnt/sparse/frag"
$tree writes sparse/frag "$mnt/sparse/frag" 4096 300 2
# Directories the kernel places in other AGs, each with a file.
for d in ag_a ag_b ag_c ag_d; do
    mkdir "$mnt/$d"
    $tree write "$d/data" "$mnt/$d/data" 0 65536
done
# A reflinked copy: shares sizes/s1m's blocks.
mkdir "$mnt/reflink"
cp --reflink=always "$mnt/sizes/s1m" "$mnt/reflink/copy"
s1m=$(python3 -c "import json;print([e['sha256'] for e in json.load(open('$m5'))['entries'] if e['path']=='sizes/s1m'][0])")
ag1=""
for d in ag_a ag_b ag_c ag_d; do
    if xfs_bmap -v "$mnt/$d/data" | awk 'NR>2 && $4 ~ /^[1-9]/ {found=1} END {exit !found}'; then
        ag1="$d/data"
        break
    fi
done
[ -n "$ag1" ] || { echo "xfs.sh: no file landed in AG >= 1" >&2; exit 1; }
python3 - "$m5" "$s4097" "$s1m" "$ag1" "$tree" <<'EOF'
import json, subprocess, sys
m, s4097, s1m, ag1 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
tree = sys.argv[5].split()
def sha(path, segs, size):
    return subprocess.check_output(tree + ["sha", path, json.dumps(segs), str(size)], text=True).strip()
holes = [[0, 100], [300000, 5000], [2000000, 97152]]
frag = [[k * 8192, 4096] for k in range(300)]
new = [
    {"path": "sizes/with space.txt", "type": "file", "size": 123, "sha256": sha("sizes/with space.txt", [[0, 123]], 123), "nlink": 1},
    {"path": "sizes/s4097", "type": "file", "size": 4097, "sha256": s4097, "nlink": 3},
    {"path": "links/hard1", "type": "file", "size": 4097, "sha256": s4097, "nlink": 3, "same_as": "sizes/s4097"},
    {"path": "hard_root", "type": "file", "size": 4097, "sha256": s4097, "nlink": 3, "same_as": "sizes/s4097"},
    {"path": "sparse", "type": "dir"},
    {"path": "sparse/holes", "type": "file", "size": 2 << 20, "sha256": sha("sparse/holes", holes, 2 << 20), "nlink": 1, "segments": holes},
    {"path": "sparse/frag", "type": "file", "size": 600 * 4096, "sha256": sha("sparse/frag", frag, 600 * 4096), "nlink": 1, "segments": frag},
    {"path": "reflink", "type": "dir"},
    {"path": "reflink/copy", "type": "file", "size": 1 << 20, "sha256": s1m, "nlink": 1, "content_of": "sizes/s1m"},
]
for d in ["ag_a", "ag_b", "ag_c", "ag_d"]:
    new.append({"path": d, "type": "dir"})
    new.append({"path": d + "/data", "type": "file", "size": 65536, "sha256": sha(d + "/data", [[0, 65536]], 65536), "nlink": 1})
subprocess.check_call(tree + ["add", m, json.dumps(new)])
subprocess.check_call(tree + ["add", m, json.dumps({"btree_file": "sparse/frag", "ag1_file": ag1})])
EOF
# Times past 2038 and before 1970 (bigtime; -1000000000.25 s is second
# -1000000001 plus 0.75 s), set before the stamping,
# which leaves them alone.
mkdir "$mnt/times"
$tree write times/future "$mnt/times/future" 0 10
$tree write times/past "$mnt/times/past" 0 10
touch -m -d @4102444800.5 "$mnt/times/future"
touch -m -d @-1000000000.25 "$mnt/times/past"
python3 - "$m5" "$tree" <<'EOF2'
import json, subprocess, sys
m, tree = sys.argv[1], sys.argv[2].split()
new = [{"path": "times", "type": "dir"}]
for name, t in [("future", [4102444800, 500000000]), ("past", [-1000000001, 750000000])]:
    sha = subprocess.check_output(tree + ["sha", "times/" + name, "[[0, 10]]", "10"], text=True).strip()
    new.append({"path": "times/" + name, "type": "file", "size": 10, "sha256": sha, "nlink": 1, "mtime": t})
subprocess.check_call(tree + ["add", m, json.dumps(new)])
EOF2
$tree xattrs "$mnt" "$m5"
$tree stamp "$mnt" "$m5"
frag_ino=$(ino_of sparse/frag)
s1_ino=$(ino_of sizes/s1)
many_ino=$(ino_of xattr/many)
s0_ino=$(ino_of sizes/s0)
umount "$mnt"
want "$tmp/v5.img" "$frag_ino" 'core.format = 3 '
# The attribute forks: shortform, leaf (with a remote value), node.
db -c "inode $s0_ino" -c "print core.aformat" "$tmp/v5.img" | grep >/dev/null 'core.aformat = 1 ' ||
    { echo "xfs.sh: sizes/s0's attributes are not shortform" >&2; exit 1; }
db -c "inode $s1_ino" -c "ablock 0" -c "print hdr.info.hdr.magic" "$tmp/v5.img" | grep >/dev/null '0x3bee' ||
    { echo "xfs.sh: sizes/s1's attributes are not a leaf" >&2; exit 1; }
db -c "inode $s1_ino" -c "ablock 0" -c "print" "$tmp/v5.img" | grep >/dev/null 'valueblk' ||
    { echo "xfs.sh: sizes/s1 has no remote value" >&2; exit 1; }
db -c "inode $many_ino" -c "ablock 0" -c "print hdr.info.hdr.magic" "$tmp/v5.img" | grep >/dev/null '0x3ebe' ||
    { echo "xfs.sh: xattr/many's attributes are not in node form" >&2; exit 1; }
check_dirs "$tmp/v5.img"
zstd -q -19 -f "$tmp/v5.img" -o fs/xfs-v5.img.zst

# ---- v4 ----
# Extended attributes set by xfs_db (the kernel cannot mount v4 here):
# attr_set fills a value of -v N bytes with 'v' (0x76), which is checked
# below with xfs_db's own printing before the manifest records it.
v4_xattrs() { # v4_xattrs IMG: shortform, leaf + remote, node form
    local img=$1 s0 s1 s700 out
    s0=$(dirino "$img" sizes/s0)
    s1=$(dirino "$img" sizes/s1)
    s700=$(dirino "$img" sizes/s700)
    xfs_db -x -c "inode $s0" -c "attr_set -n small -v 5" -c "attr_set -r -n root -v 3" \
        -c "attr_set -s -n secure -v 1" "$img" >/dev/null
    # xfs_db 6.1 crashes setting a value past the shortform on an inode
    # with no attributes yet, or a second one after a remote value: a
    # small one goes first, and the remote one in a run of its own.
    xfs_db -x -c "inode $s1" -c "attr_set -n after -v 10" "$img" >/dev/null
    xfs_db -x -c "inode $s1" -c "attr_set -n big -v 5000" "$img" >/dev/null
    xfs_db -x -c "inode $s700" -c "attr_set -n first -v 1" "$img" >/dev/null
    local cmds=(-c "inode $s700")
    for i in $(seq -w 0 59); do cmds+=(-c "attr_set -n attr-$i -v 100"); done
    xfs_db -x "${cmds[@]}" "$img" >/dev/null
    out=$(db -c "inode $s0" -c "print a" "$img")
    grep >/dev/null 'a.sfattr.list\[0\].value = "vvvvv"' <<<"$out" ||
        { echo "xfs.sh: $img: sizes/s0's shortform attributes: $out" >&2; exit 1; }
    out=$(db -c "inode $s1" -c "ablock 0" -c "print" "$img")
    grep >/dev/null 'hdr.info.magic = 0xfbee' <<<"$out" && grep >/dev/null 'valueblk' <<<"$out" ||
        { echo "xfs.sh: $img: sizes/s1 has no leaf with a remote value: $out" >&2; exit 1; }
    # The remote value's bytes, located by xfs_db (bmap of the attribute
    # fork, then AG/block to byte) and read from the image: 5000 'v's.
    local blk off ag agbno count byte
    blk=$(($(sed -n 's/.*valueblk = \(0x[0-9a-f]*\|[0-9]*\).*/\1/p' <<<"$out" | head -1)))
    read -r off ag agbno count < <(db -c "inode $s1" -c "bmap -a $blk 2" "$img" |
        sed -n 's/.*offset \([0-9]*\) startblock [0-9]* (\([0-9]*\)\/\([0-9]*\)) count \([0-9]*\).*/\1 \2 \3 \4/p' | head -1)
    [ $((off + count)) -ge $((blk + 2)) ] ||
        { echo "xfs.sh: $img: the remote value is not in one extent" >&2; exit 1; }
    byte=$(db -c "convert agno $ag agbno $((agbno + blk - off)) byte" "$img" | sed -n 's/.*(\([0-9]*\)).*/\1/p')
    python3 - "$img" "$byte" <<'PY'
import sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    if f.read(5000) != b"v" * 5000:
        sys.exit("xfs.sh: the remote value is not 5000 'v's")
PY
    xfs_repair -n "$img" >/dev/null 2>&1 || { echo "xfs.sh: xfs_repair -n finds $img damaged" >&2; exit 1; }
    db -c "inode $s700" -c "ablock 0" -c "print hdr.info.magic" "$img" | grep >/dev/null '0xfebe' ||
        { echo "xfs.sh: $img: sizes/s700's attributes are not in node form" >&2; exit 1; }
}
v4_manifest() { # v4_manifest MANIFEST: what v4_xattrs set
    python3 - "$1" "$tree" <<'PY'
import json, subprocess, sys
m, tree = sys.argv[1], sys.argv[2].split()
v = lambda n: (b"v" * n).hex()
x = {
    "sizes/s0": {"user.small": v(5), "trusted.root": v(3), "security.secure": v(1)},
    "sizes/s1": {"user.big": v(5000), "user.after": v(10)},
    "sizes/s700": {"user.first": v(1), **{f"user.attr-{i:02d}": v(100) for i in range(60)}},
}
man = json.load(open(m))
for e in man["entries"]:
    if e["path"] in x:
        e["xattrs"] = x[e["path"]]
json.dump(man, open(m, "w"))
subprocess.check_call(tree + ["dump", m])
PY
}
m4=$here/fs/xfs-v4.manifest.json
$tree proto "$tmp/src4" "$tmp/proto4" "$m4"
truncate -s 400M "$tmp/v4.img"
mkfs.xfs -q -f -L vaultfs-v4 -m crc=0,uuid=5c0ffee5-0000-4000-8000-000000000004 \
    -p "$tmp/proto4" "$tmp/v4.img"
check_dirs "$tmp/v4.img"
v4_xattrs "$tmp/v4.img"
v4_manifest "$m4"
zstd -q -19 -f "$tmp/v4.img" -o fs/xfs-v4.img.zst
# The same without ftype in directory entries (kinds come from the inodes).
cp "$m4" fs/xfs-v4nf.manifest.json
truncate -s 400M "$tmp/v4nf.img"
mkfs.xfs -q -f -L vaultfs-v4nf -m crc=0 -n ftype=0 -p "$tmp/proto4" "$tmp/v4nf.img"
v4_xattrs "$tmp/v4nf.img"
! db -c version "$tmp/v4nf.img" | grep >/dev/null FTYPE ||
    { echo "xfs.sh: v4nf has ftype" >&2; exit 1; }
check_dirs "$tmp/v4nf.img"
zstd -q -19 -f "$tmp/v4nf.img" -o fs/xfs-v4nf.img.zst

# ---- v5, 1 KiB blocks, two-level bmbt, dirty log ----
m1=$here/fs/xfs-1k.manifest.json
echo '{"entries": []}' >"$m1"
truncate -s 300M "$tmp/1k.img"
mkfs.xfs -q -f -b size=1024 -n size=4096 -L vaultfs-1k -m uuid=5c0ffee5-0000-4000-8000-000000000001 "$tmp/1k.img"
mount -o loop "$tmp/1k.img" "$mnt"
# Directories of 4 KiB blocks over 1 KiB filesystem blocks (dirblklog 2).
python3 - "$mnt" "$m1" "$tree" <<'EOF2'
import json, os, subprocess, sys
mnt, m, tree = sys.argv[1], sys.argv[2], sys.argv[3].split()
new = [{"path": "dirs", "type": "dir"}]
os.mkdir(os.path.join(mnt, "dirs"))
for d, n in [("block", 40), ("leaf", 300), ("node", 2200)]:
    os.mkdir(os.path.join(mnt, "dirs", d))
    new.append({"path": f"dirs/{d}", "type": "dir"})
    for i in range(n):
        name = f"e{i:05d}" + ("-" + "x" * 100 if d == "node" else "")
        open(os.path.join(mnt, "dirs", d, name), "wb").close()
        new.append({"path": f"dirs/{d}/{name}", "type": "file", "size": 0,
                    "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "nlink": 1})
man = json.load(open(m))
man["entries"] = sorted(man["entries"] + new, key=lambda e: e["path"])
json.dump(man, open(m, "w"))
EOF2
mkdir "$mnt/frag"
xfs_io -f -c "falloc 0 2600k" "$mnt/frag/deep"
$tree writes frag/deep "$mnt/frag/deep" 1024 1300 2
$tree write marker "$mnt/marker" 0 10
python3 - "$m1" "$tree" <<'EOF'
import json, subprocess, sys
m, tree = sys.argv[1], sys.argv[2].split()
segs = [[k * 2048, 1024] for k in range(1300)]
sha = subprocess.check_output(tree + ["sha", "frag/deep", json.dumps(segs), str(2600 * 1024)], text=True).strip()
sha_m = subprocess.check_output(tree + ["sha", "marker", "[[0, 10]]", "10"], text=True).strip()
new = [
    {"path": "frag", "type": "dir"},
    {"path": "frag/deep", "type": "file", "size": 2600 * 1024, "sha256": sha, "nlink": 1, "segments": segs},
    # Its mtime is changed after the checkpoint, in the log only.
    {"path": "marker", "type": "file", "size": 10, "sha256": sha_m, "nlink": 1, "no_mtime": True},
]
subprocess.check_call(tree + ["add", m, json.dumps(new)])
subprocess.check_call(tree + ["add", m, json.dumps({"btree_file": "frag/deep", "dirty_log": True})])
EOF
$tree stamp "$mnt" "$m1"  # (also rewrites the manifest one entry a line)
deep_ino=$(ino_of frag/deep)
xfs_freeze -f "$mnt"
xfs_freeze -u "$mnt"
touch -d @1700000000 "$mnt/marker"
xfs_io -c fsync "$mnt/marker"
xfs_io -x -c "shutdown" "$mnt"
umount "$mnt"
want "$tmp/1k.img" "$deep_ino" 'core.format = 3 '
db -c "inode $deep_ino" -c "print u3.bmbt.level" "$tmp/1k.img" | grep >/dev/null 'level = 2' ||
    { echo "xfs.sh: frag/deep's bmbt is not two levels deep" >&2; exit 1; }
db -c "sb 0" -c "print dirblklog" "$tmp/1k.img" | grep >/dev/null 'dirblklog = 2'
want "$tmp/1k.img" "$(dirino "$tmp/1k.img" dirs/block)" 'core.format = 2 '
db -c "path /dirs/block" -c "dblock 0" -c "print" "$tmp/1k.img" | grep -E >/dev/null 'magic = 0x58444233'
want "$tmp/1k.img" "$(dirino "$tmp/1k.img" dirs/leaf)" 'core.format = 2 '
db -c "path /dirs/leaf" -c "dblock 33554432" -c "print" "$tmp/1k.img" | grep -E >/dev/null 'magic = 0x3df1'
db -c "path /dirs/node" -c "dblock 33554432" -c "print" "$tmp/1k.img" | grep -E >/dev/null 'magic = 0x3ebe'
zstd -q -19 -f "$tmp/1k.img" -o fs/xfs-1k.img.zst
# ---- fuzz seeds: small trees, only the non-zero sectors ----
seeds=$here/../fuzz/seeds/xfs
mkdir -p "$seeds" "$tmp/seedsrc"
printf 'hello xfs\n' >"$tmp/seedsrc/a"
head -c 5000 /dev/zero | tr '\0' 'x' >"$tmp/seedsrc/b"
{
    echo /dev/null
    echo 0 0
    echo d--755 0 0
    echo " a ---644 0 0 $tmp/seedsrc/a"
    echo " b ---644 0 0 $tmp/seedsrc/b"
    echo " l l--777 0 0 a"
    echo " longlink l--777 0 0 $(printf 'x/%.0s' $(seq 80))end"
    echo " c c--666 0 0 1 3"
    echo " block d--755 0 0"
    for i in $(seq 40); do echo "  f$i ---644 0 0 $tmp/seedsrc/a"; done
    echo " $"
    echo " leaf d--755 0 0"
    for i in $(seq 300); do echo "  g$i ---644 0 0 $tmp/seedsrc/a"; done
    echo " $"
    echo "$"
} >"$tmp/seedproto"
for v in 5 4; do
    truncate -s 300M "$tmp/seed$v.img"
    crc=1
    [ $v = 4 ] && crc=0
    mkfs.xfs -q -f -m crc=$crc -p "$tmp/seedproto" "$tmp/seed$v.img" 2>/dev/null
done
# v5: a file whose 40 one-byte extents need a bmbt.
mount -o loop "$tmp/seed5.img" "$mnt"
for k in $(seq 0 2 78); do
    xfs_io -f -c "pwrite -q -S 0x41 $((k * 4096)) 1" "$mnt/frag"
done
umount "$mnt"
python3 "$here/xfs-fuzz-seed.py" "$tmp/seed5.img" "$seeds/v5"
python3 "$here/xfs-fuzz-seed.py" "$tmp/seed4.img" "$seeds/v4"
ls -l fs/xfs-*.zst

# ---- reflinked, copied-on-write and unwritten extents (a small v5) ----
#   fs/xfs-reflink.img.zst  48 MiB v5 (reflink=1; under 300 MB, so the
#                      xfstests override TEST_DEV), mounted and filled with:
#                      orig (1 MiB) and copy (cp --reflink) each overwritten
#                      in a different 64 KiB range afterwards (copy-on-write:
#                      the rest stays shared), range (xfs_io reflink of parts
#                      of both), unwritten (1 MiB falloc, never written: all
#                      zeros), prealloc (10000 bytes with 1 MiB preallocated
#                      past EOF, falloc -k) and hole_unwritten (written, hole,
#                      unwritten, written). The manifest gives each file's
#                      bytes as pieces [offset, length, path, source offset]
#                      of the self-describing content, zeros elsewhere.
#                      Checked: orig, copy and range share blocks (fiemap's
#                      shared flag), unwritten has an unwritten extent.
mr=$here/fs/xfs-reflink.manifest.json
echo '{"entries": []}' >"$mr"
truncate -s 48M "$tmp/reflink.img"
TEST_DEV=1 TEST_DIR=1 QA_CHECK_FS=1 mkfs.xfs -q -f -m reflink=1,uuid=5c0ffee5-0000-4000-8000-0000000000cf \
    -L vaultfs-rl "$tmp/reflink.img"
mount -o loop "$tmp/reflink.img" "$mnt"
K=1024
$tree write orig "$mnt/orig" 0 $((1024 * K))
cp --reflink=always "$mnt/orig" "$mnt/copy"
$tree write copy "$mnt/copy" $((256 * K)) $((64 * K))
$tree write orig-new "$mnt/orig" $((512 * K)) $((64 * K))
xfs_io -f -c "reflink $mnt/orig 0 0 $((128 * K))" -c "reflink $mnt/copy $((256 * K)) $((128 * K)) $((128 * K))" "$mnt/range" >/dev/null
xfs_io -f -c "falloc 0 $((1024 * K))" "$mnt/unwritten"
$tree write prealloc "$mnt/prealloc" 0 10000
xfs_io -c "falloc -k 0 $((1024 * K))" "$mnt/prealloc"
xfs_io -f -c "falloc $((192 * K)) $((64 * K))" "$mnt/hole_unwritten"
$tree write hole_unwritten "$mnt/hole_unwritten" 0 $((64 * K))
$tree write hole_unwritten "$mnt/hole_unwritten" $((256 * K)) 100
sync
flag() { # flag FILE MASK: does an extent of FILE (fiemap -v) have MASK set?
    xfs_io -r -c "fiemap -v" "$mnt/$1" | python3 -c "import sys
sys.exit(not any(int(l.split()[-1], 16) & $2 for l in sys.stdin if l.split()[-1].startswith('0x')))"
}
shared() { flag "$1" 0x2000; }
unwritten() { flag "$1" 0x800; }
for f in orig copy range; do
    shared $f || { echo "xfs.sh: $f shares no blocks" >&2; exit 1; }
done
for f in unwritten hole_unwritten; do
    unwritten $f || { echo "xfs.sh: $f has no unwritten extent" >&2; exit 1; }
done
python3 - "$mr" "$tree" <<'EOF3'
import json, subprocess, sys
m, tree = sys.argv[1], sys.argv[2].split()
K = 1024
sys.path.insert(0, tree[1].rsplit("/", 1)[0])
xt = __import__("xfs-tree")
def entry(path, size, pieces):
    data = bytearray(size)
    for off, ln, src, soff in pieces:
        data[off:off + ln] = xt.content(src, soff, ln)
    return {"path": path, "type": "file", "size": size, "sha256": xt.sha(bytes(data)),
            "nlink": 1, "pieces": pieces}
new = [
    entry("orig", 1024 * K, [[0, 512 * K, "orig", 0], [512 * K, 64 * K, "orig-new", 512 * K],
                             [576 * K, 448 * K, "orig", 576 * K]]),
    entry("copy", 1024 * K, [[0, 256 * K, "orig", 0], [256 * K, 64 * K, "copy", 256 * K],
                             [320 * K, 704 * K, "orig", 320 * K]]),
    entry("range", 256 * K, [[0, 128 * K, "orig", 0], [128 * K, 64 * K, "copy", 256 * K],
                             [192 * K, 64 * K, "orig", 320 * K]]),
    entry("unwritten", 1024 * K, []),
    entry("prealloc", 10000, [[0, 10000, "prealloc", 0]]),
    entry("hole_unwritten", 256 * K + 100, [[0, 64 * K, "hole_unwritten", 0],
                                            [256 * K, 100, "hole_unwritten", 256 * K]]),
]
subprocess.check_call(tree + ["add", m, json.dumps(new)])
EOF3
$tree stamp "$mnt" "$mr"
umount "$mnt"
xfs_repair -n "$tmp/reflink.img" >/dev/null 2>&1
zstd -q -19 -f "$tmp/reflink.img" -o fs/xfs-reflink.img.zst
ls -l fs/xfs-reflink.*
