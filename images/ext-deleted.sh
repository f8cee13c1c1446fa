#!/usr/bin/env bash
# Builds ext3 and ext4 images with files deleted by the kernel (a loop
# mount, then rm), for the reader's deleted-file listing:
#
#   fs/ext3-kdel.img.zst  8 MiB ext3, 1 KiB blocks
#   fs/ext4-kdel.img.zst  8 MiB ext4, 1 KiB blocks (metadata_csum)
#   fs/ext-kdel.json      per image, each deleted file as debugfs sees it
#                         after the unmount: path, inode, mode, size,
#                         links, mtime, dtime, whether it still has blocks
#                         or extents, and whether `debugfs ls -d` of its
#                         directory still shows its name (`named`).
#
# The kernel clears a deleted inode's block map (extents) and size but
# keeps its mode, owner and times; Linux since 5.x also wipes the removed
# directory record, so `named` is expected to be false on current kernels.
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

oracle=()
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
        list="$list $p:$(stat -c %i "$mnt/$p")"
        rm "$mnt/$p"
    done
    umount "$mnt"
    e2fsck -fn "$img" >/dev/null 2>&1
    json=$(python3 - "$img" $list <<'PY'
import json, re, subprocess, sys
img = sys.argv[1]
def debugfs(cmd):
    return subprocess.run(["debugfs", "-R", cmd, img], capture_output=True, text=True).stdout
out = []
for arg in sys.argv[2:]:
    path, ino = arg.rsplit(":", 1)
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
        "named": f"<{ino}>" in ls and path.rsplit("/", 1)[-1] in ls,
    })
print(json.dumps(out))
PY
)
    oracle+=("\"$kind-kdel\": $json")
    zstd -q -19 -f "$img" -o "fs/$kind-kdel.img.zst"
done
(IFS=,; echo "{${oracle[*]}}") | python3 -m json.tool >fs/ext-kdel.json
