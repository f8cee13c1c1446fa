#!/usr/bin/env bash
# The layout of the disk that tests `backup --disk` on four filesystems: a
# GPT disk (sfdisk) whose partitions hold the committed FAT32, NTFS, ext4
# and XFS v5 images (fat.sh, ntfs.sh, ext.sh, xfs.sh) in that order, then
# 1 MiB of unpartitioned space. Only the table areas are committed (the
# filesystems are already): fs/fsdisk4-head.bin.zst (the first MiB: MBR,
# GPT header and entries) and fs/fsdisk4-tail.bin.zst (the last MiB: the
# gap and the GPT backup), with fsdisk4.sfdisk.json, the `sfdisk --json`
# dump the test assembles the disk from and checks it against.
#
# Needs sfdisk (Debian package fdisk), zstd; no root.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sectors() { echo $(($(zstd -dc "fs/$1.img.zst" | wc -c) / 512)); }
fat=$(sectors fat32) ntfs=$(sectors ntfs) ext=$(sectors ext4) xfs=$(sectors xfs-v5)
total=$((2048 + fat + ntfs + ext + xfs + 2048))
truncate -s $((total * 512)) "$tmp/disk.img"
sfdisk --quiet --no-reread --no-tell-kernel "$tmp/disk.img" >/dev/null <<TABLE
label: gpt
label-id: 2D7C3A1E-4B5F-4E8A-9C61-0F1E2D3C4B5A
start=2048, size=$fat, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="fat32"
size=$ntfs, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="ntfs"
size=$ext, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="ext4"
size=$xfs, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="xfs"
TABLE
sfdisk --json "$tmp/disk.img" | sed "s|$tmp/||" >fsdisk4.sfdisk.json
head -c 1M "$tmp/disk.img" | zstd -q -19 -f -o fs/fsdisk4-head.bin.zst
tail -c 1M "$tmp/disk.img" | zstd -q -19 -f -o fs/fsdisk4-tail.bin.zst
echo "fsdisk4.sh: $total sectors; $(cat fs/fsdisk4-*.bin.zst | wc -c) bytes of tables committed"
