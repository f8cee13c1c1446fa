#!/usr/bin/env python3
"""Writes a volume as a seed of the xfs fuzz target: [flags u8][volume
sectors u32 LE] then, for each run of non-zero 512-byte sectors (log sectors holding only their cycle
number and the log past its first 64 KiB count as zero),
[first sector u32 LE][sectors u16 LE][the sectors]. Flags: 1 (the harness
fixes v5 checksums after mutation).

  xfs-fuzz-seed.py VOLUME OUT
"""
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    data = f.read()
sectors = len(data) // 512
# The internal log past its first 64 KiB is left out (zeros to the reader).
bs, agblocks = struct.unpack(">I", data[4:8])[0], struct.unpack(">I", data[84:88])[0]
logstart, logblocks, agblklog = struct.unpack(">Q", data[48:56])[0], struct.unpack(">I", data[96:100])[0], data[124]
log0 = ((logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))) * bs // 512
skip = range(log0 + 128, log0 + logblocks * bs // 512)
res = bytearray(struct.pack("<BI", 1, sectors))
i = 0
zero = bytes(512)


def empty(i):
    # Zero, a log sector holding only its cycle number, or left out.
    s = data[i * 512:(i + 1) * 512]
    return i in skip or s[4:] == zero[4:]


while i < sectors:
    if empty(i):
        i += 1
        continue
    j = i
    while j < sectors and j - i < 65535 and not empty(j):
        j += 1
    res += struct.pack("<IH", i, j - i) + data[i * 512:j * 512]
    i = j
with open(out, "wb") as f:
    f.write(res)
print(f"{out}: {len(res)} bytes")
