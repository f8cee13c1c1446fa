#!/usr/bin/env python3
"""Writes the seeds of the fuzz targets vmdk_sparse and vmdk_descriptor
(fuzz/seeds/vmdk_*/), each well under 64 KiB: qemu-img's sparse files carry
64 KiB of overhead, so these are laid out here by hand after the VMware
"Virtual Disk Format 1.1" specification, with 4 KiB grains:

  vmdk_sparse/plain.vmdk   monolithicSparse, embedded descriptor, redundant
                           GD, a zeroed-grain entry (flag bit 2);
  vmdk_sparse/delta.vmdk   a delta disk naming plain.vmdk as its parent
                           (the fuzz target holds plain.vmdk as a sibling);
  vmdk_sparse/stream.vmdk  streamOptimized, grain directory in the footer
                           (gdOffset = GD_AT_END), a short last grain;
  vmdk_descriptor/*        text descriptors over the target's siblings
                           flat.bin (4 KiB), sparse.vmdk (= plain.vmdk),
                           stream.vmdk and parent.vmdk (= plain.vmdk).

The reader's tests check the same layouts (formats/src/container/vmdk/
tests.rs builds its own stream file); run this again only to change seeds.
"""
import os
import struct
import zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fuzz", "seeds")
GRAIN = 8  # sectors


def header(version, flags, capacity, desc, rgd, gd, overhead, compress=0):
    h = struct.pack(
        "<4sIIQQQQIQQQB4sH",
        b"KDMV", version, flags, capacity, GRAIN, desc[0], desc[1], 512, rgd, gd,
        overhead, 0, b"\n \r\n", compress,
    )
    return h.ljust(512, b"\0")


def descriptor(cid, create, parent_cid="ffffffff", hint=None, name="x.vmdk", sectors=64):
    lines = ["# Disk DescriptorFile", "version=1", f"CID={cid}", f"parentCID={parent_cid}",
             f'createType="{create}"']
    if hint:
        lines.append(f'parentFileNameHint="{hint}"')
    lines += ["", "# Extent description", f'RW {sectors} SPARSE "{name}"', "", "#DDB",
              'ddb.geometry.cylinders = "1"', 'ddb.geometry.heads = "16"',
              'ddb.geometry.sectors = "63"', ""]
    return "\n".join(lines).encode()


def grain(i):
    return ((b"grain %d " % i) * 600)[: GRAIN * 512]


def sparse(allocated, zeroed, desc):
    # 0 header, 1-2 descriptor, 3 RGD, 4-7 RGT, 8 GD, 9-12 GT, 13.. grains
    capacity = 64
    gt = [0] * 512
    data = b""
    for n, g in enumerate(allocated):
        gt[g] = 13 + n * GRAIN
        data += grain(g)
    for g in zeroed:
        gt[g] = 1
    gt_bytes = struct.pack("<512I", *gt)
    f = header(1, 1 | 2 | 4, capacity, (1, 2), 3, 8, 13)
    f += desc.ljust(1024, b"\0")
    f += struct.pack("<I", 4).ljust(512, b"\0") + gt_bytes
    f += struct.pack("<I", 9).ljust(512, b"\0") + gt_bytes
    return f + data


def pad(b):
    return b + b"\0" * (-len(b) % 512)


def marker(sectors, kind):
    return struct.pack("<QII", sectors, 0, kind).ljust(512, b"\0")


def stream():
    capacity = 64 + 5  # a short last grain
    flags = 1 | (1 << 16) | (1 << 17)
    desc = descriptor("5eed0003", "streamOptimized", name="stream.vmdk", sectors=capacity)
    f = header(3, flags, capacity, (1, 1), 0, 0xFFFFFFFFFFFFFFFF, 2, 1)
    f += desc.ljust(512, b"\0")
    gt = [0] * 512
    for g in (0, 1, 4, 8):
        size = GRAIN * 512 if g < 8 else 5 * 512
        z = zlib.compress(grain(g)[:size])
        gt[g] = len(f) // 512
        f += pad(struct.pack("<QI", g * GRAIN, len(z)) + z)
    f += marker(4, 1)
    gt_at = len(f) // 512
    f += struct.pack("<512I", *gt)
    f += marker(1, 2)
    gd_at = len(f) // 512
    f += pad(struct.pack("<I", gt_at))
    f += marker(1, 3)
    f += header(3, flags, capacity, (1, 1), 0, gd_at, 2, 1)
    f += marker(0, 0)
    return f


def write(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    assert len(data) < 64 * 1024, name
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


plain = sparse([0, 2, 5], [3], descriptor("5eed0001", "monolithicSparse", name="plain.vmdk"))
write("vmdk_sparse", "plain.vmdk", plain)
write("vmdk_sparse", "delta.vmdk", sparse(
    [1, 2], [5],
    descriptor("5eed0002", "monolithicSparse", "5eed0001", "plain.vmdk", "delta.vmdk")))
write("vmdk_sparse", "stream.vmdk", stream())

write("vmdk_descriptor", "flat.vmdk", b"""# Disk DescriptorFile
version=1
CID=5eed0010
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 8 FLAT "flat.bin" 0

# The Disk Data Base
#DDB
ddb.geometry.cylinders = "1"
ddb.geometry.heads = "16"
ddb.geometry.sectors = "63"
""")
write("vmdk_descriptor", "multi.vmdk", b"""# Disk DescriptorFile
version=1
CID=5eed0011
parentCID=ffffffff
createType="custom"

RW 4 FLAT "flat.bin" 2
RDONLY 16 ZERO
NOACCESS 2 VMFS "flat.bin"
RW 64 SPARSE "sparse.vmdk"
RW 69 SPARSE "stream.vmdk"
""")
write("vmdk_descriptor", "delta.vmdk", b"""\xef\xbb\xbf# Disk DescriptorFile
version=1
CID=5eed0012
parentCID=5eed0001
createType="twoGbMaxExtentSparse"
parentFileNameHint="C:\\vms\\parent.vmdk"

RW 64 SPARSE "sparse.vmdk"
""")
