#!/usr/bin/env bash
# Builds the disk that tests filesystems through containers and partitions:
# a 72 MiB GPT disk with an NTFS partition (p1, mkfs.ntfs, filled through an
# ntfs-3g mount) and a FAT32 partition (p2, mkfs.vfat, filled with mcopy),
# both holding the same tree, converted by qemu-img to a streamOptimized
# VMDK. The tree (made by fsdisk-tree.py) has self-describing content, names
# with spaces and non-ASCII letters, nested directories, a 3 MiB file and a
# 1.44 MB FAT12 floppy image `floppy.img` (an image inside a filesystem
# inside an image).
#
# Needs root (the ntfs-3g mount), sfdisk (fdisk), ntfs-3g, dosfstools,
# mtools, qemu-utils, zstd, python3.
# Outputs: fs/fsdisk.vmdk.zst and fs/fsdisk.manifest.json, the tree as
# written (path, type, size, sha256, mtime), the tests' oracle.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD
tmp=$(mktemp -d)
cleanup() {
    mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
export TZ=UTC # FAT stores local time: UTC keeps the manifest's mtimes exact

python3 "$here/fsdisk-tree.py" "$tmp/tree" "$here/fs/fsdisk.manifest.json"

# The floppy inside the tree: FAT12 holding one file, made before the
# manifest's hashes were taken (fsdisk-tree.py leaves floppy.img to us).
truncate -s 1440K "$tmp/tree/floppy.img"
mkfs.vfat -F 12 -n FLOPPY -i 0f1e2d3c "$tmp/tree/floppy.img" >/dev/null
printf 'inside the floppy inside the disk\n' >"$tmp/hello.txt"
touch -d '2026-01-02 03:04:06' "$tmp/hello.txt"
mcopy -m -i "$tmp/tree/floppy.img" "$tmp/hello.txt" ::/HELLO.TXT
touch -d '2026-01-02 03:04:08' "$tmp/tree/floppy.img"
python3 "$here/fsdisk-tree.py" --add "$tmp/tree" "$here/fs/fsdisk.manifest.json" floppy.img

# p1: NTFS, 24 MiB.
truncate -s 24M "$tmp/p1.img"
mkfs.ntfs -F -Q -q -L vaultfs-ntfs -s 512 -c 4096 -p 2048 -H 255 -S 63 "$tmp/p1.img"
mkdir "$tmp/mnt"
ntfs-3g "$tmp/p1.img" "$tmp/mnt"
cp -a "$tmp/tree/." "$tmp/mnt/"
umount "$tmp/mnt"

# p2: FAT32, 40 MiB (enough clusters to be FAT32 with 512-byte clusters).
truncate -s 40M "$tmp/p2.img"
mkfs.vfat -F 32 -s 1 -n VAULTFS -i 1a2b3c4d "$tmp/p2.img" >/dev/null
mcopy -s -m -i "$tmp/p2.img" "$tmp/tree/"* ::/

truncate -s 72M "$tmp/disk.raw"
sfdisk --quiet --no-reread --no-tell-kernel "$tmp/disk.raw" >/dev/null <<'TABLE'
label: gpt
label-id: 6B1E4F52-7A1D-4E55-9C0B-2C5F2A0D6E11
start=2048, size=49152, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="ntfs data"
start=51200, size=81920, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="fat32 data"
TABLE
dd if="$tmp/p1.img" of="$tmp/disk.raw" bs=512 seek=2048 conv=notrunc status=none
dd if="$tmp/p2.img" of="$tmp/disk.raw" bs=512 seek=51200 conv=notrunc status=none
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$tmp/disk.raw" "$tmp/fsdisk.vmdk"
zstd -q -19 -f "$tmp/fsdisk.vmdk" -o fs/fsdisk.vmdk.zst
echo "fsdisk.sh: $(stat -c %s fs/fsdisk.vmdk.zst) bytes in fs/fsdisk.vmdk.zst"
