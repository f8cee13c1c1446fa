"""Turns a qemu-made dynamic VHD or VHDX into a differencing child, and
flattens a child with libvhdi (the oracle). Used by vhd.sh.

    vhd-diff.py vhd|vhdx CHILD PARENT PARENT_NAME   (edits CHILD in place)
    vhd-diff.py flatten CHILD PARENT OUT_RAW
    vhd-diff.py pending-log VHDX           (adds a log entry never replayed)

Sources: Microsoft "Virtual Hard Disk Image Format Specification" (2006) and
[MS-VHDX] v1.0. The sectors qemu-io wrote are found by content: a sector
that is not all zeros belongs to the child (the writes use non-zero
patterns), every other sector reads from the parent.
"""
import os
import struct
import sys
import uuid

SECTOR = 512


def vhd_checksum(buf, at):
    b = bytearray(buf)
    b[at:at + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def to_vhd(path, parent_path, parent_name):
    data = bytearray(open(path, "rb").read())
    parent = open(parent_path, "rb").read()
    pfooter = parent[-512:]
    footer = bytearray(data[-512:])
    assert footer[:8] == b"conectix"
    hdr_off = struct.unpack_from(">Q", footer, 16)[0]
    hdr = bytearray(data[hdr_off:hdr_off + 1024])
    assert hdr[:8] == b"cxsparse"
    bat_off = struct.unpack_from(">Q", hdr, 16)[0]
    entries, block = struct.unpack_from(">II", hdr, 28)
    spb = block // SECTOR
    bitmap_len = (spb // 8 + SECTOR - 1) // SECTOR * SECTOR
    # Per-sector bitmaps, MSB first: set only where the child has data.
    for i in range(entries):
        (sec,) = struct.unpack_from(">I", data, bat_off + 4 * i)
        if sec == 0xFFFFFFFF:
            continue
        bm_at = sec * SECTOR
        bitmap = bytearray(bitmap_len)
        for s in range(spb):
            at = bm_at + bitmap_len + s * SECTOR
            if any(data[at:at + SECTOR]):
                bitmap[s // 8] |= 0x80 >> (s % 8)
        data[bm_at:bm_at + bitmap_len] = bitmap
    # Parent identity, name and locators (data after the last block).
    hdr[40:56] = pfooter[68:84]  # parent unique id = the parent's footer id
    hdr[56:60] = pfooter[24:28]  # parent time stamp
    name = parent_name.encode("utf-16-be")
    hdr[64:576] = name.ljust(512, b"\0")
    end = len(data) - 512
    locs = [(b"W2ru", ".\\" + parent_name), (b"W2ku", "C:\\vms\\" + parent_name)]
    blob = bytearray()
    for i, (code, text) in enumerate(locs):
        raw = text.encode("utf-16-le")
        at = end + len(blob)
        struct.pack_into(">4sIIIQ", hdr, 576 + 24 * i, code, 1, len(raw), 0, at)
        blob += raw.ljust(SECTOR, b"\0")
    struct.pack_into(">I", hdr, 36, vhd_checksum(hdr, 36))
    data[hdr_off:hdr_off + 1024] = hdr
    struct.pack_into(">I", footer, 60, 4)  # disk type: differencing
    struct.pack_into(">I", footer, 64, vhd_checksum(footer, 64))
    data = data[:end] + blob + footer
    data[:512] = footer
    open(path, "wb").write(data)


def le_guid(b):
    return uuid.UUID(bytes_le=bytes(b))


def to_vhdx(path, parent_path, parent_name):
    data = bytearray(open(path, "rb").read())
    parent = open(parent_path, "rb").read()
    # The parent's DataWriteGuid from its newer header.
    heads = [parent[o:o + 4096] for o in (65536, 131072)]
    best = max(heads, key=lambda h: struct.unpack_from("<Q", h, 8)[0])
    linkage = "{%s}" % le_guid(best[32:48])
    # Region table: BAT and metadata.
    regi = data[196608:196608 + 65536]
    assert regi[:4] == b"regi"
    regions = {}
    for i in range(struct.unpack_from("<I", regi, 8)[0]):
        e = regi[16 + 32 * i:48 + 32 * i]
        regions[str(le_guid(e[:16]))] = struct.unpack_from("<QI", e, 16)
    bat_off, bat_len = regions["2dc27766-f623-4200-9d64-115e9bfd4a08"]
    meta_off, _ = regions["8b7ca206-4790-4b9a-b8fe-575f050f886e"]
    meta = data[meta_off:meta_off + 65536]
    assert meta[:8] == b"metadata"
    count = struct.unpack_from("<H", meta, 10)[0]
    items = {}
    last_end = 0
    for i in range(count):
        e = 32 + 32 * i
        g = str(le_guid(meta[e:e + 16]))
        off, ln = struct.unpack_from("<II", meta, e + 16)
        items[g] = (e, off, ln)
        last_end = max(last_end, off + ln)
    _, fp_off, _ = items["caa16737-fa36-4d43-b3b6-33f0aa44e76b"]
    block, flags = struct.unpack_from("<II", data, meta_off + fp_off)
    struct.pack_into("<I", data, meta_off + fp_off + 4, flags | 2)  # HasParent
    _, ls_off, _ = items["8141bf1d-a96f-4709-ba47-f233a8faab5f"]
    lss = struct.unpack_from("<I", data, meta_off + ls_off)[0]
    _, vs_off, _ = items["2fa54224-cd1b-4876-b211-5dbed83bf4b8"]
    vsize = struct.unpack_from("<Q", data, meta_off + vs_off)[0]
    # The parent locator item, after the last item.
    kv = [("parent_linkage", linkage), ("relative_path", ".\\" + parent_name),
          ("absolute_win32_path", "C:\\vms\\" + parent_name)]
    loc = bytearray(uuid.UUID("b04aefb7-d19e-4a81-b789-25b8e9445913").bytes_le)
    loc += struct.pack("<HH", 0, len(kv))
    strings = bytearray()
    base = 20 + 12 * len(kv)
    for k, v in kv:
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        ko = base + len(strings)
        strings += kb
        vo = base + len(strings)
        strings += vb
        loc += struct.pack("<IIHH", ko, vo, len(kb), len(vb))
    loc += strings
    loc_off = (last_end + 7) // 8 * 8
    data[meta_off + loc_off:meta_off + loc_off + len(loc)] = loc
    e = 32 + 32 * count
    data[meta_off + e:meta_off + e + 16] = uuid.UUID(
        "a8d35f2d-b30b-454d-abf7-d3d84834ab0c").bytes_le
    struct.pack_into("<IIII", data, meta_off + e + 16, loc_off, len(loc), 6, 0)
    struct.pack_into("<H", data, meta_off + 10, count + 1)
    # BAT: differencing layout, a bitmap entry after every chunk.
    chunk = (1 << 23) * lss // block
    blocks = (vsize + block - 1) // block
    chunks = (blocks + chunk - 1) // chunk
    assert chunks * (chunk + 1) * 8 <= bat_len
    spb = block // lss
    # One sector-bitmap block (1 MiB) per chunk, appended at the end.
    bitmaps = {}
    for b in range(blocks):
        idx = b + b // chunk
        (ent,) = struct.unpack_from("<Q", data, bat_off + 8 * idx)
        state, off = ent & 7, (ent >> 20) << 20
        if state != 6:
            struct.pack_into("<Q", data, bat_off + 8 * idx, 0)  # NOT_PRESENT
            continue
        secs = [any(data[off + s * lss:off + (s + 1) * lss]) for s in range(spb)]
        if all(secs):
            continue  # FULLY_PRESENT stays
        c = b // chunk
        if c not in bitmaps:
            at = (len(data) + (1 << 20) - 1) >> 20 << 20
            data += bytes(at + (1 << 20) - len(data))
            bitmaps[c] = at
            struct.pack_into("<Q", data, bat_off + 8 * ((c + 1) * (chunk + 1) - 1),
                             (at >> 20) << 20 | 6)
        first = (b % chunk) * spb
        for s, present in enumerate(secs):
            if present:
                n = first + s
                data[bitmaps[c] + n // 8] |= 1 << (n % 8)  # LSB first
        struct.pack_into("<Q", data, bat_off + 8 * idx, off | 7)  # PARTIALLY
    open(path, "wb").write(data)


def crc32c(b):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    c = 0xFFFFFFFF
    for x in b:
        c = table[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def pending_log(path):
    """Writes one log entry as a writer that crashed before applying it
    would have left it ([MS-VHDX] 2.3): a data descriptor replacing the
    first 4 KiB of the block at virtual 1 MiB with 0xC3 bytes, a zero
    descriptor clearing the 8 KiB after it, and a second data descriptor
    turning BAT entry 5 into PAYLOAD_BLOCK_ZERO; then sets the headers'
    LogGuid. qemu-img check -r all replays it (the oracle)."""
    data = bytearray(open(path, "rb").read())
    heads = [65536, 131072]
    log_guid = uuid.UUID("0d15ea5e-1234-4321-8765-fedcba987654").bytes_le
    h0 = data[65536:65536 + 4096]
    log_len, log_off = struct.unpack_from("<IQ", h0, 68)
    regi = data[196608:196608 + 65536]
    regions = {}
    for i in range(struct.unpack_from("<I", regi, 8)[0]):
        e = regi[16 + 32 * i:48 + 32 * i]
        regions[str(le_guid(e[:16]))] = struct.unpack_from("<QI", e, 16)
    bat_off, _ = regions["2dc27766-f623-4200-9d64-115e9bfd4a08"]
    (b1,) = struct.unpack_from("<Q", data, bat_off + 8)
    assert b1 & 7 == 6, "block 1 must be present"
    blk1 = (b1 >> 20) << 20
    seq = 0x1122334455
    payload1 = bytes([0xC3]) * 4096
    bat_sector = bytearray(data[bat_off:bat_off + 4096])
    struct.pack_into("<Q", bat_sector, 5 * 8, 2)  # block 5: ZERO
    datas = [(blk1, payload1), (bat_off, bytes(bat_sector))]
    desc = bytearray()
    for off, pl in datas:
        desc += b"desc" + pl[4092:4096] + pl[:8] + struct.pack("<QQ", off, seq)
    desc += b"zero" + struct.pack("<IQQQ", 0, 8192, blk1 + 4096, seq)
    count = len(datas) + 1
    head_len = (64 + 32 * count + 4095) // 4096 * 4096
    entry_len = head_len + 4096 * len(datas)
    entry = bytearray(entry_len)
    size = len(data)
    struct.pack_into("<4sIIIQII16sQQ", entry, 0, b"loge", 0, entry_len, 0, seq,
                     count, 0, log_guid, size, size)
    entry[64:64 + len(desc)] = desc
    for i, (off, pl) in enumerate(datas):
        at = head_len + 4096 * i
        struct.pack_into("<4sI", entry, at, b"data", seq >> 32)
        entry[at + 8:at + 4092] = pl[8:4092]
        struct.pack_into("<I", entry, at + 4092, seq & 0xFFFFFFFF)
    struct.pack_into("<I", entry, 4, crc32c(entry))
    assert entry_len <= log_len
    data[log_off:log_off + log_len] = bytes(log_len)
    data[log_off:log_off + entry_len] = entry
    for at in heads:
        h = bytearray(data[at:at + 4096])
        h[48:64] = log_guid
        h[4:8] = b"\0\0\0\0"
        struct.pack_into("<I", h, 4, crc32c(h))
        data[at:at + 4096] = h
    open(path, "wb").write(data)


def flatten(child, parent, out):
    import pyvhdi

    p = pyvhdi.file()
    p.open(parent)
    c = pyvhdi.file()
    c.open(child)
    c.set_parent(p)
    size = c.get_media_size()
    with open(out, "wb") as f:
        at = 0
        while at < size:
            n = min(1 << 20, size - at)
            f.write(c.read_buffer_at_offset(n, at))
            at += n


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "vhd":
        to_vhd(*sys.argv[2:5])
    elif kind == "vhdx":
        to_vhdx(*sys.argv[2:5])
    elif kind == "pending-log":
        pending_log(sys.argv[2])
    elif kind == "flatten":
        flatten(*sys.argv[2:5])
    else:
        sys.exit("usage: vhd-diff.py vhd|vhdx|flatten ...")
