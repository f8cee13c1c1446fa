#!/usr/bin/env bash
# Builds the disk that tests the Linux filesystems through a container and a
# partition table: an 80 MiB GPT disk with
#
#   p1  16 MiB ext4 (mkfs.ext4 -d: 4 KiB blocks, extents, metadata_csum),
#   p2  48 MiB XFS v5 (mkfs.xfs, then the tree copied in by `cp -a` through
#       a loop mount: mkfs.xfs -p cannot make hardlinks, holes or mtimes),
#   p3  12 MiB ext2 with 1 KiB blocks (mkfs.ext2 -d: block maps, the 3 MiB
#       file reaches the double-indirect block),
#
# all holding the one tree linuxdisk-tree.py makes (sizes, symlinks, a
# hardlink, a sparse file, device nodes, a fifo, a 3 MiB file, a 1200-entry
# directory), converted by qemu-img to a monolithicSparse VMDK (its grains
# stay uncompressed, so zstd packs the self-describing content well).
# The script checks that p1's and p3's 1200-entry directory is an htree
# (e2fsck -D indexes it) and that p2's is no shortform or block directory.
#
# mkfs.xfs refuses filesystems under 300 MB unless TEST_DEV/TEST_DIR/
# QA_CHECK_FS is set (as in xfstests); 48 MiB keeps the disk small.
#
# Needs root (loop mount), e2fsprogs, xfsprogs, fdisk (sfdisk), qemu-utils,
# zstd, python3.
# Outputs: fs/linuxdisk.vmdk.zst and fs/linuxdisk.manifest.json.zst (path, type,
# size, sha256, mtime [secs, nanos], target, nlink, rdev, segments; written
# from the source side), the tests' oracle.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
tmp=$(mktemp -d)
cleanup() {
    mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
m=$here/fs/linuxdisk.manifest.json

python3 "$here/linuxdisk-tree.py" "$tmp/tree" "$m"

# p1: ext4; p3: ext2, 1 KiB blocks. -D indexes the big directory.
truncate -s 16M "$tmp/p1.img"
mkfs.ext4 -q -F -b 4096 -U 5c0ffee5-0000-4000-8000-0000000000d1 -L linuxdisk-p1 \
    -d "$tmp/tree" "$tmp/p1.img"
truncate -s 12M "$tmp/p3.img"
mkfs.ext2 -q -F -b 1024 -U 5c0ffee5-0000-4000-8000-0000000000d3 -L linuxdisk-p3 \
    -d "$tmp/tree" "$tmp/p3.img"
for p in p1 p3; do
    e2fsck -fyD "$tmp/$p.img" >/dev/null 2>&1 || [ $? -le 1 ]
    e2fsck -fn "$tmp/$p.img" >/dev/null 2>&1
    debugfs -R "htree /many" "$tmp/$p.img" 2>/dev/null | grep -q 'Root node dump' ||
        { echo "linuxdisk.sh: $p: /many is not indexed" >&2; exit 1; }
done

# p2: XFS v5, filled through a loop mount.
truncate -s 48M "$tmp/p2.img"
TEST_DEV=1 TEST_DIR=1 QA_CHECK_FS=1 mkfs.xfs -q -f -L linuxdisk-p2 \
    -m uuid=5c0ffee5-0000-4000-8000-0000000000d2 "$tmp/p2.img"
mkdir "$tmp/mnt"
mount -o loop "$tmp/p2.img" "$tmp/mnt"
cp -a --sparse=always "$tmp/tree/." "$tmp/mnt/"
umount "$tmp/mnt"
xfs_db -r -c "path /many" -c "print core.format" "$tmp/p2.img" | grep -Eq 'core.format = [23] ' ||
    { echo "linuxdisk.sh: p2: /many is not in extents or btree form" >&2; exit 1; }
xfs_repair -n "$tmp/p2.img" >/dev/null 2>&1

truncate -s 80M "$tmp/disk.raw"
sfdisk --quiet --no-reread --no-tell-kernel "$tmp/disk.raw" >/dev/null <<'TABLE'
label: gpt
label-id: 6B1E4F52-7A1D-4E55-9C0B-2C5F2A0D6E22
start=2048, size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="ext4 data"
start=34816, size=98304, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="xfs data"
start=133120, size=24576, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="ext2 data"
TABLE
dd if="$tmp/p1.img" of="$tmp/disk.raw" bs=512 seek=2048 conv=notrunc status=none
dd if="$tmp/p2.img" of="$tmp/disk.raw" bs=512 seek=34816 conv=notrunc status=none
dd if="$tmp/p3.img" of="$tmp/disk.raw" bs=512 seek=133120 conv=notrunc status=none
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$tmp/disk.raw" "$tmp/linuxdisk.vmdk"
zstd -q -19 -f "$tmp/linuxdisk.vmdk" -o fs/linuxdisk.vmdk.zst
zstd -q -19 -f --rm "$m" -o "$m.zst"
echo "linuxdisk.sh: $(stat -c %s fs/linuxdisk.vmdk.zst) bytes in fs/linuxdisk.vmdk.zst"
