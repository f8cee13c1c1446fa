#!/usr/bin/env bash
# Builds one small volume per filesystem with its real mkfs and keeps the
# first 64 KiB (boot sector / superblock), enough to test signature
# detection. Needs e2fsprogs, dosfstools, exfatprogs, ntfs-3g, xfsprogs.
# Outputs: fs-heads/NAME.head.zst
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p fs-heads
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

vol() { # name size mkfs-command...
    local name=$1 size=$2
    shift 2
    truncate -s "$size" "$tmp/$name"
    "$@" "$tmp/$name" >/dev/null 2>&1
    head -c 65536 "$tmp/$name" | zstd -q -19 -f -o "fs-heads/$name.head.zst"
}

vol ext2 8M mkfs.ext2 -q -F
vol ext3 8M mkfs.ext3 -q -F
vol ext4 8M mkfs.ext4 -q -F
vol fat12 4M mkfs.vfat -F 12
vol fat16 32M mkfs.vfat -F 16
vol fat32 64M mkfs.vfat -F 32
vol exfat 8M mkfs.exfat
vol ntfs 8M mkfs.ntfs -Q -F
vol xfs 300M mkfs.xfs -q -f
