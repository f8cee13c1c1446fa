#!/usr/bin/env bash
# Builds ext3 and ext4 images with files deleted by the kernel (a loop
# mount, then rm), for the reader's deleted-file listing:
#
#   fs/ext3-kdel.img.zst  8 MiB ext3, 1 KiB blocks
#   fs/ext4-kdel.img.zst  8 MiB ext4, 1 KiB blocks (metadata_csum)
#   fs/ext4-dbgdel.img.zst  4 MiB ext4, 1 KiB blocks, files written and
#                         removed by debugfs (no mount): `debugfs rm` keeps
#                         the inode's map and size and leaves the removed
#                         record in the slack of the one before it (no
#                         e2fsck -D afterwards, which would compact it).
#   fs/ext-deleted.json      per image, each deleted file as debugfs sees it
#                         after the unmount: path, inode, mode, size,
#                         links, mtime, dtime, whether it still has blocks
#                         or extents, whether `debugfs ls -d` of its
#                         directory still shows its name (`named`), and
#                         the SHA-256 of its content before deletion.
#
# The kernel clears a deleted inode's block map (extents) and size but
# keeps its mode, owner and times; a current kernel (6.18 when made) also
# wipes the removed directory record, so `named` is false there.
#
# Needs root (loop mount), e2fsprogs, python3, zstd.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
tmp=$(mktemp -d)
mnt=$tmp/mnt
cleanup() {
    mountpoint -q "$mnt" && umount "$mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p fs "$mnt"
export TZ=UTC

# oracle IMG PATH:INO:SHA256...: the JSON list of the deleted files.
oracle() {
    python3 - "$@" <<'PY'
import json, re, subprocess, sys
img = sys.argv[1]
def debugfs(cmd):
    return subprocess.run(["debugfs", "-R", cmd, img], capture_output=True, text=True).stdout
out = []
for arg in sys.argv[2:]:
    path, ino, sha = arg.rsplit(":", 2)
    st = debugfs(f"stat <{ino}>")
    field = lambda name: re.search(name + r":\s*(\S+)", st).group(1)
    d = path.rsplit("/", 1)[0] if "/" in path else ""
    ls = debugfs(f"ls -d /{d}")
    out.append({
        "path": path,
        "ino": int(ino),
        "mode": int(field("Mode"), 8),
        "size": int(re.search(r"\sSize: (\d+)", st).group(1)),
        "links": int(field("Links")),
        "mtime": int(field("mtime").split(":")[0], 16),
        "dtime": int(field("dtime").split(":")[0], 16),
        "has_blocks": bool(re.search(r"^\(\d", st, re.M)),
        "named": bool(re.search(r"<%s>\s+\(\d+\)\s+%s(\s|$)" % (ino, re.escape(path.rsplit("/", 1)[-1])), ls)),
        "sha256": sha,
    })
print(json.dumps(out))
PY
}

json=()
for kind in ext3 ext4; do
    img=$tmp/$kind-kdel.img
    truncate -s 8M "$img"
    "mkfs.$kind" -q -F -b 1024 -U 5c0ffee5-0000-4000-8000-0000000000d3 -L "vfs-$kind-kdel" "$img"
    mount -o loop "$img" "$mnt"
    mkdir "$mnt/d" "$mnt/d/sub"
    for i in 1 2 3 4 5; do
        head -c $((i * 1500)) /dev/zero | tr '\0' "$i" >"$mnt/d/file$i.txt"
    done
    printf 'top\n' >"$mnt/top.txt"
    printf 'keep\n' >"$mnt/keep.txt"
    head -c 70000 /dev/zero | tr '\0' 'b' >"$mnt/d/sub/big.bin"
    touch -d '2026-01-02 03:04:05' "$mnt/d/file2.txt" "$mnt/top.txt" "$mnt/d/sub/big.bin"
    sync
    list=""
    for p in d/file2.txt d/file4.txt top.txt d/sub/big.bin; do
        list="$list $p:$(stat -c %i "$mnt/$p"):$(sha256sum <"$mnt/$p" | cut -d' ' -f1)"
        rm "$mnt/$p"
    done
    umount "$mnt"
    e2fsck -fn "$img" >/dev/null 2>&1
    # shellcheck disable=SC2086
    json+=("\"$kind-kdel\": $(oracle "$img" $list)")
    zstd -q -19 -f "$img" -o "fs/$kind-kdel.img.zst"
done
# debugfs rm: the record stays in the slack of the one before it.
img=$tmp/ext4-dbgdel.img
truncate -s 4M "$img"
mkfs.ext4 -q -F -b 1024 -U 5c0ffee5-0000-4000-8000-0000000000d4 -L vfs-ext4-dbgdel "$img"
debugfs -w -R "mkdir d" "$img" >/dev/null 2>&1
printf 'keep\n' >"$tmp/src"
debugfs -w -R "write $tmp/src keep.txt" "$img" >/dev/null 2>&1
list=""
for p in a.txt gone.txt c.txt d/one.txt d/two.bin d/three.txt; do
    printf 'content of %s\n' "$p" >"$tmp/src"
    [ "$p" = d/two.bin ] && head -c 5000 /dev/zero | tr '\0' 't' >"$tmp/src"
    debugfs -w -R "write $tmp/src $p" "$img" >/dev/null 2>&1
    sha=$(sha256sum <"$tmp/src" | cut -d' ' -f1)
    case $p in gone.txt | d/two.bin) list="$list $p:INO:$sha" ;; esac
done
for p in gone.txt d/two.bin; do
    ino=$(debugfs -R "stat /$p" "$img" 2>/dev/null | sed -n 's/^Inode: \([0-9]*\).*/\1/p')
    list=${list/ $p:INO:/ $p:$ino:}
    debugfs -w -R "rm /$p" "$img" >/dev/null 2>&1
done
e2fsck -fn "$img" >/dev/null 2>&1
# shellcheck disable=SC2086
json+=("\"ext4-dbgdel\": $(oracle "$img" $list)")
zstd -q -19 -f "$img" -o fs/ext4-dbgdel.img.zst

(IFS=,; echo "{${json[*]}}") | python3 -m json.tool >fs/ext-deleted.json
