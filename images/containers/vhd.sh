#!/usr/bin/env bash
# Builds the VHD and VHDX test images from stamped-gpt.raw.zst and
# stamped-mbr.raw.zst (see stamped.sh) with qemu-img, into vhd/ here:
#
#   {gpt,mbr}-fixed.vhd, {gpt,mbr}-dynamic.vhd   qemu-img -O vpc, force_size=on
#   gpt-chs.vhd        dynamic without force_size: qemu rounds the size up to
#                      a CHS geometry (8390656 bytes, creator "qemu")
#   {gpt,mbr}-fixed.vhdx, {gpt,mbr}-dynamic.vhdx, gpt-bs1m.vhdx (1 MiB blocks)
#   gpt-log.vhdx       gpt-bs1m.vhdx with a log entry never replayed (made
#                      by vhd-diff.py: qemu applies and clears its log on
#                      every write); its disk is qemu's after
#                      `qemu-img check -r all` replays the log
#   diff.vhd, diff.vhdx   differencing children of gpt-dynamic.vhd(x), named
#                      base.vhd(x) by their parent locators
#   *.raw.zst          the flattened disk of each differencing child
#   SHA256SUMS         SHA-256 of every image's virtual disk, by image name
#
# qemu-img cannot create differencing VHD or VHDX images ("Backing file not
# supported"), so vhd-diff.py makes them: qemu-img creates an empty dynamic
# image, qemu-io writes the child's sectors into it, and the script turns it
# into a differencing disk as the specifications describe (disk type 4,
# parent UUID and locators, per-sector bitmaps for VHD; HasParent, a parent
# locator item, PARTIALLY_PRESENT blocks and a sector-bitmap block for
# VHDX). The flattened disks come from libvhdi (Debian python3-libvhdi), an
# independent reader, and must equal the parent with the writes applied.
# Every non-differencing image is checked with `qemu-img compare` against
# its raw disk, and its SHA-256 is that of `qemu-img convert -O raw`.
#
# Needs qemu-utils, zstd and a python3 that can `import pyvhdi` (Debian:
# python3-libvhdi; set PYTHON if it is not the first python3 on PATH).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=vhd
rm -rf "$out"
mkdir -p "$out"

for name in gpt mbr; do
    zstd -q -d -f stamped-$name.raw.zst -o "$tmp/$name.raw"
    for sub in fixed dynamic; do
        qemu-img convert -f raw -O vpc -o subformat=$sub,force_size=on \
            "$tmp/$name.raw" "$tmp/$name-$sub.vhd"
        qemu-img convert -f raw -O vhdx -o subformat=$sub \
            "$tmp/$name.raw" "$tmp/$name-$sub.vhdx"
    done
done
qemu-img convert -f raw -O vpc -o subformat=dynamic "$tmp/gpt.raw" "$tmp/gpt-chs.vhd"
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=1M \
    "$tmp/gpt.raw" "$tmp/gpt-bs1m.vhdx"

cp "$tmp/gpt-bs1m.vhdx" "$tmp/gpt-log.vhdx"
"$PYTHON" vhd-diff.py pending-log "$tmp/gpt-log.vhdx"

# The children: the same writes into an empty dynamic image of each format.
# They cover a partial sector run inside a block, a run crossing a block
# boundary and a whole 1 MiB block (FULLY_PRESENT in the 1 MiB-block VHDX).
writes=(-c 'write -P 0x5a 1M 64k' -c 'write -P 0xa5 3M 4k'
    -c 'write -P 0x3c 4190208 4k' -c 'write -P 0x77 6M 1M')
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$tmp/diff.vhd" 8M
qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M "$tmp/diff.vhdx" 8M
qemu-io -f vpc "${writes[@]}" "$tmp/diff.vhd" >/dev/null
qemu-io -f vhdx "${writes[@]}" "$tmp/diff.vhdx" >/dev/null
"$PYTHON" vhd-diff.py vhd "$tmp/diff.vhd" "$tmp/gpt-dynamic.vhd" base.vhd
"$PYTHON" vhd-diff.py vhdx "$tmp/diff.vhdx" "$tmp/gpt-dynamic.vhdx" base.vhdx

: >"$tmp/SHA256SUMS"
for img in "$tmp"/*.vhd "$tmp"/*.vhdx; do
    base=$(basename "$img")
    case $base in
    diff.*)
        # libvhdi's flattening must equal the parent with the writes
        # applied (the same writes through qemu-io on a raw copy).
        cp "$tmp/gpt.raw" "$tmp/expect.raw"
        qemu-io -f raw "${writes[@]}" "$tmp/expect.raw" >/dev/null
        ext=${base#diff.}
        cp "$tmp/gpt-dynamic.$ext" "$tmp/base.$ext"
        "$PYTHON" vhd-diff.py flatten "$img" "$tmp/base.$ext" "$tmp/$base.raw"
        cmp "$tmp/expect.raw" "$tmp/$base.raw"
        zstd -q -19 -f "$tmp/$base.raw" -o "$out/$base.raw.zst"
        ;;
    gpt-log.vhdx)
        # qemu refuses a read-only open; replay a copy, then convert.
        cp "$img" "$tmp/replayed.vhdx"
        qemu-img check -q -r all "$tmp/replayed.vhdx" >/dev/null
        qemu-img convert -f vhdx -O raw "$tmp/replayed.vhdx" "$tmp/$base.raw"
        qemu-img compare -q -f vhdx -F raw "$tmp/replayed.vhdx" "$tmp/$base.raw"
        ;;
    *)
        fmt=vpc
        [[ $base == *.vhdx ]] && fmt=vhdx
        qemu-img convert -f $fmt -O raw "$img" "$tmp/$base.raw"
        qemu-img compare -q -f $fmt -F raw "$img" "$tmp/$base.raw"
        ;;
    esac
    echo "$(sha256sum <"$tmp/$base.raw" | cut -d' ' -f1)  $base" >>"$tmp/SHA256SUMS"
    zstd -q -19 -f "$img" -o "$out/$base.zst"
done
cp "$tmp/SHA256SUMS" "$out/SHA256SUMS"
