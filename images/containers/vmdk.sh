#!/usr/bin/env bash
# Builds the VMDK test images from the stamped disks of stamped.sh (8 MiB
# each, GPT and MBR), with qemu-img (Debian package qemu-utils) and qemu-io:
#
#   {gpt,mbr}-<subformat>.vmdk (+ extent files): qemu-img convert -O vmdk
#       -o subformat=X for monolithicSparse, monolithicFlat,
#       twoGbMaxExtentSparse, twoGbMaxExtentFlat and streamOptimized;
#   delta-base.vmdk + delta-child.vmdk: a delta disk (qemu-img create -b)
#       over a monolithicSparse copy of the MBR disk, with a few distinct
#       writes in the child (a whole grain, part of a grain, zeros, one
#       sector); delta-child.raw is qemu-img's flattened raw of the child
#       (delta-base.vmdk itself is not kept: it is mbr-monolithicSparse.vmdk);
#   multi.vmdk: a hand-written monolithicFlat-style descriptor over the MBR
#       disk with two FLAT extents (the second at sector offset 8 of a file
#       that starts with junk), a ZERO extent and a SPARSE extent (a
#       monolithicSparse file made by qemu-img, whose own embedded
#       descriptor the reader must ignore); its expected content, hashed
#       into SHA256SUMS, is the MBR disk with the ZERO extent's sectors
#       zeroed, built here with dd because qemu 10 skips ZERO extent lines.
#
# Each image is checked with `qemu-img compare` against its raw (multi.vmdk
# excepted, see above) and its flattened content hashed into SHA256SUMS.
# Outputs, zstd -19 compressed: vmdk/*.zst and vmdk/SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")"
out=$PWD/vmdk
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"
cd "$tmp"

for name in gpt mbr; do
    zstd -q -d -f "$OLDPWD/stamped-$name.raw.zst" -o "$name.raw"
    for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized; do
        qemu-img convert -f raw -O vmdk -o subformat=$sub "$name.raw" "$name-$sub.vmdk"
        qemu-img compare -q -f raw -F vmdk "$name.raw" "$name-$sub.vmdk"
    done
done

# A delta disk: base, then a child written into with qemu-io.
cp mbr-monolithicSparse.vmdk delta-base.vmdk
qemu-img create -q -f vmdk -b delta-base.vmdk -F vmdk delta-child.vmdk
qemu-io -f vmdk -c 'write -P 0x5a 1M 64k' delta-child.vmdk >/dev/null
qemu-io -f vmdk -c 'write -P 0xa5 3000k 4k' delta-child.vmdk >/dev/null
qemu-io -f vmdk -c 'write -z 4M 64k' delta-child.vmdk >/dev/null
qemu-io -f vmdk -c 'write -P 0x11 8191k 512' delta-child.vmdk >/dev/null
qemu-img convert -f vmdk -O raw delta-child.vmdk delta-child.raw
qemu-img compare -q -f vmdk -F raw delta-child.vmdk delta-child.raw

# The multi-extent descriptor over the MBR disk (16384 sectors):
#   0..3000      FLAT  multi-a.bin at 0
#   3000..9216   FLAT  multi-b.bin at sector 8 (4 KiB of junk before)
#   9216..10240  ZERO
#   10240..16384 SPARSE multi-c.vmdk (monolithicSparse of those sectors)
dd if=mbr.raw of=multi-a.bin bs=512 count=3000 status=none
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 251 for i in range(4096)))' >multi-b.bin
dd if=mbr.raw bs=512 skip=3000 count=6216 status=none >>multi-b.bin
dd if=mbr.raw of=multi-c.raw bs=512 skip=10240 count=6144 status=none
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse multi-c.raw multi-c.vmdk
cat >multi.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=5eed0001
parentCID=ffffffff
createType="custom"

# Extent description
RW 3000 FLAT "multi-a.bin" 0
RW 6216 FLAT "multi-b.bin" 8
RW 1024 ZERO
RW 6144 SPARSE "multi-c.vmdk"

# The Disk Data Base
#DDB

ddb.geometry.cylinders = "16"
ddb.geometry.heads = "16"
ddb.geometry.sectors = "63"
ddb.adapterType = "ide"
EOF
cp mbr.raw multi.raw
dd if=/dev/zero of=multi.raw bs=512 seek=9216 count=1024 conv=notrunc status=none

# Expected contents, by image.
{
    for name in gpt mbr; do
        for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized; do
            echo "$(sha256sum <$name.raw | cut -d' ' -f1)  $name-$sub.vmdk"
        done
    done
    echo "$(sha256sum <mbr.raw | cut -d' ' -f1)  delta-base.vmdk"
    echo "$(sha256sum <delta-child.raw | cut -d' ' -f1)  delta-child.vmdk"
    echo "$(sha256sum <multi.raw | cut -d' ' -f1)  multi.vmdk"
} >"$out/SHA256SUMS"

# Not kept: the raw disks (stamped-*.raw.zst), the base (a copy of
# mbr-monolithicSparse.vmdk) and multi.raw (the MBR disk with sectors
# 9216..10240 zeroed); the tests rebuild them.
rm -f gpt.raw mbr.raw multi-c.raw delta-base.vmdk multi.raw
for f in *; do
    zstd -q -19 -f "$f" -o "$out/$f.zst"
done
ls -l "$out"
