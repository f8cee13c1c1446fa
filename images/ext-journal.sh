#!/usr/bin/env bash
# Builds ext images whose journal needs recovery, with committed but not
# checkpointed transactions, through a kernel loop mount (needs root):
#
#   fs/ext4-dirty.img.zst  16 MiB ext4 defaults (4 KiB blocks, metadata_csum,
#                          64bit: journal csum v3 and 64-bit tags), mounted
#                          with data=journal so file data is journalled too.
#   fs/ext3-dirty.img.zst  8 MiB ext3, 1 KiB blocks (journal without
#                          checksums or 64bit: the older 8-byte tags),
#                          mounted as ext3 (data=ordered), filled up so
#                          that the last transaction's file reuses blocks
#                          revoked before (replay must honour revokes).
#   fs/ext*-dirty.manifest.json.zst  the tree the kernel shows after its own
#                          recovery (path, type, size, sha256, mtime
#                          [secs, nanos], target, nlink), and facts checked
#                          here with e2fsprogs: `commits` and `first_seq` /
#                          `last_seq` (commit blocks `debugfs logdump`
#                          lists), `revokes` (revoke blocks it lists),
#                          `absent_on_disk` (paths created after the crash
#                          point's last checkpoint that debugfs, which does
#                          not replay, cannot find).
#   ../fuzz/seeds/ext/dirty  a 4 MiB ext4 (1 KiB blocks) with a journal to
#                          replay, as sparse chunks (the ext target's form).
#
# Each volume gets a base tree written and unmounted cleanly (checkpointed),
# then a mount where files are created, appended to, overwritten, renamed
# and deleted, directories made and removed (revokes), with an fsync (one
# commit, nothing checkpointed) between batches; then `xfs_io -x -c
# 'shutdown -f'` (flush the log, stop the journal) and a copy of the backing
# file taken before umount (which would write the dirty buffers home): the
# crash image. A copy of it is then mounted (the kernel replays the
# journal) and walked for the manifest. The script fails if needs_recovery
# is not set or if every change reached the disk anyway. Timing matters
# little: periodic commits only add transactions; a checkpoint by writeback
# before the shutdown would show in `absent_on_disk`.
#
# Needs root, e2fsprogs, xfsprogs (xfs_io), python3, zstd.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
tmp=$(mktemp -d)
mnt=$tmp/mnt
mkdir -p "$mnt" fs
cleanup() {
    umount "$mnt" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# Self-describing content (xfs-tree.py's scheme): byte i of a file depends
# on a tag and i only.
put() { # put PATH LEN [TAG]: writes LEN bytes of TAG's content at PATH
    python3 -c '
import importlib, os, sys
sys.path.insert(0, sys.argv[4])
xt = importlib.import_module("xfs-tree")
with open(sys.argv[1], "wb") as f:
    f.write(xt.content(sys.argv[3], 0, int(sys.argv[2])))
' "$1" "$2" "${3:-$1}" "$here"
}

# One journal commit, without writing anything else home: fsync of the
# root directory (sync and syncfs would also write the block device's dirty
# buffers, i.e. checkpoint the metadata).
commit() {
    python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"
}

changes() { # the dirty mount's batches, one commit each; $1 = mountpoint
    local m=$1
    # Batch 1: new files and a directory, an append (size change).
    mkdir "$m/new"
    put "$m/new/a.txt" 3000 new/a
    put "$m/new/big" 70000 new/big
    ln -s ../base/keep.txt "$m/new/link"
    put "$m/base/grow.txt" 9000 base/grow
    put "$m/new/victim" 30000 new/victim
    mkdir "$m/new/victim-dir"
    for i in $(seq 60); do put "$m/new/victim-dir/entry-with-a-long-name-$i" 10 v$i; done
    commit "$m"
    # Batch 2: a rename, deleted files and directories (those made in
    # batch 1 had their blocks journalled: revokes), an overwrite in place.
    mv "$m/base/moved-from.txt" "$m/new/moved-to.txt"
    rm "$m/base/gone.txt"
    rm -r "$m/base/dir-gone" "$m/new/victim" "$m/new/victim-dir"
    dd if=/dev/zero of="$m/base/keep.txt" bs=1 count=100 seek=50 conv=notrunc status=none
    mkdir -p "$m/deep/a/b/c"
    for i in $(seq 40); do put "$m/deep/a/b/c/f$i" $((i * 37)) deep/f$i; done
    commit "$m"
    # Batch 3 (the last transaction): a file and a directory made only now.
    mkdir "$m/late"
    put "$m/late/last.txt" 5000 late/last
    if [ -n "${FILL:-}" ]; then
        # The volume was filled up to a little room: this file takes the
        # blocks freed in batch 2, some of them revoked metadata blocks
        # whose old copies lie in the journal (ordered mode writes its
        # data in place: a replay ignoring the revokes would put the old
        # directory blocks over it).
        local avail
        avail=$(df -B1 --output=avail "$m" | tail -1)
        put "$m/late/reuse" $((avail - 24 * 1024)) late/reuse
    fi
    touch -d '2030-01-02 03:04:05.123456789' "$m/late/last.txt"
    commit "$m"
}

base() { # the clean base tree; $1 = mountpoint
    local m=$1
    mkdir -p "$m/base/dir-gone"
    put "$m/base/keep.txt" 4000 base/keep
    put "$m/base/grow.txt" 1000 base/grow
    put "$m/base/moved-from.txt" 2000 base/moved
    put "$m/base/gone.txt" 20000 base/gone
    for i in $(seq 80); do put "$m/base/dir-gone/entry-with-a-long-name-$i" 10 g$i; done
    ln -s keep.txt "$m/base/sym"
    if [ -n "${FILL:-}" ]; then
        # Zeros up to 400 KiB of room (see changes).
        local avail
        avail=$(df -B1 --output=avail "$m" | tail -1)
        head -c $((avail - 400 * 1024)) /dev/zero >"$m/base/fill"
    fi
}

manifest() { # manifest MOUNTPOINT OUT: the tree the kernel shows
    python3 - "$1" "$2" "$here" <<'PY'
import hashlib, importlib, os, stat, sys
root, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
xt = importlib.import_module("xfs-tree")
entries = []
for d, dirs, files in os.walk(root):
    for name in dirs + files:
        p = os.path.join(d, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        e = {"path": rel, "mtime": [st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9],
             "nlink": st.st_nlink}
        if stat.S_ISDIR(st.st_mode):
            e["type"] = "dir"
            del e["nlink"]  # directories' link counts are not compared
        elif stat.S_ISLNK(st.st_mode):
            e["type"] = "symlink"
            e["target"] = os.readlink(p)
        else:
            e["type"] = "file"
            e["size"] = st.st_size
            e["sha256"] = hashlib.sha256(open(p, "rb").read()).hexdigest()
        entries.append(e)
entries.sort(key=lambda e: e["path"])
xt.dump({"entries": entries}, out)
PY
}

facts() { # facts IMG MANIFEST: adds the e2fsprogs facts to the manifest
    local img=$1 m=$2
    debugfs -R logdump "$img" >"$tmp/logdump" 2>&1
    local absent=()
    for p in new/a.txt new/moved-to.txt late/last.txt deep/a/b/c/f40; do
        if ! debugfs -R "stat /$p" "$img" 2>&1 | grep -q '^Inode:'; then
            absent+=("$p")
        fi
    done
    python3 - "$m" "$tmp/logdump" "$here" "${absent[@]}" <<'PY'
import importlib, json, re, sys
m, log = sys.argv[1], open(sys.argv[2]).read()
sys.path.insert(0, sys.argv[3])
xt = importlib.import_module("xfs-tree")
commits = [int(s) for s in re.findall(r"Found expected sequence (\d+), type 2 \(commit block\)", log)]
revokes = len(re.findall(r"type 5 \(revoke table\)", log))
man = json.load(open(m))
assert commits, "no commit block in the journal:\n" + log
man["commits"] = len(commits)
man["first_seq"], man["last_seq"] = commits[0], commits[-1]
man["revokes"] = revokes
man["absent_on_disk"] = sys.argv[4:]
xt.dump(man, m)
PY
}

build() { # build NAME SIZE MOUNT-OPTS MKFS-ARGS...
    local name=$1 size=$2 opts=$3
    shift 3
    local img=$tmp/$name.img m=$here/fs/$name.manifest.json
    truncate -s "$size" "$img"
    "$@" -q -F -U 5c0ffee5-0000-4000-8000-0000000000e4 -L "vfs-$name" \
        -E lazy_itable_init=0,lazy_journal_init=0 "$img"
    mount -o loop "$img" "$mnt"
    base "$mnt"
    umount "$mnt"
    mount -o "loop,$opts" "$img" "$mnt"
    changes "$mnt"
    xfs_io -x -c 'shutdown -f' "$mnt"
    # The crash image: what reached the loop device by now (umount would
    # write the dirty, not yet checkpointed buffers home).
    cp "$img" "$img.crash"
    umount "$mnt"
    mv "$img.crash" "$img"
    dumpe2fs -h "$img" 2>/dev/null | grep -q needs_recovery || {
        echo "$name: needs_recovery is not set" >&2
        exit 1
    }
    cp "$img" "$tmp/$name-replayed.img"
    mount -o loop "$tmp/$name-replayed.img" "$mnt"
    manifest "$mnt" "$m"
    umount "$mnt"
    facts "$img" "$m"
    python3 -c 'import json,sys; sys.exit(not json.load(open(sys.argv[1]))["absent_on_disk"])' "$m" || {
        echo "$name: every change reached the disk: nothing left to replay" >&2
        exit 1
    }
    grep -E '"(commits|revokes|absent_on_disk|first_seq|last_seq)"' "$m"
    zstd -q -19 -f "$img" -o "fs/$name.img.zst"
    zstd -q -19 -f --rm "$m" -o "$m.zst"
}

build ext4-dirty 16M data=journal mkfs.ext4 -b 4096
FILL=1 build ext3-dirty 8M data=ordered mkfs.ext3 -b 1024 -m 0

# ---- fuzz seed: a tiny dirty ext4, as sparse chunks ----
seeds=$here/../fuzz/seeds/ext
img=$tmp/seed.img
truncate -s 4M "$img"
mkfs.ext4 -q -F -b 1024 -N 64 -J size=1 -E lazy_itable_init=0,lazy_journal_init=0 "$img"
mount -o loop,data=journal "$img" "$mnt"
mkdir "$mnt/d"
printf 'hello journal\n' >"$mnt/a"
commit "$mnt"
for i in $(seq 20); do printf 'f' >"$mnt/d/file-$i"; done
rm "$mnt/a"
ln -s d "$mnt/l"
commit "$mnt"
xfs_io -x -c 'shutdown -f' "$mnt"
cp "$img" "$img.crash"
umount "$mnt"
mv "$img.crash" "$img"
python3 - "$img" "$seeds/dirty" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
n = len(data) // 512
out = bytearray(struct.pack("<BI", 1, n))
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
ls -l fs/ext*-dirty* "$seeds/dirty"
