#!/usr/bin/env python3
"""Helpers for xfs.sh: the source tree, the mkfs.xfs protofile and the
manifest (the tests' oracle, written from what we create, never from a
reader).

Content is self-describing: a file is 64-byte lines, line n being
"<tag> <n as 12 digits>" padded with '.' to 63 bytes and a newline, where
tag is the first 16 hex digits of sha256(path). Byte i of a file is thus a
function of its path and i alone (formats/tests/xfs.rs recomputes it);
sparse files hold these bytes only in their written segments, zeros
elsewhere.

  xfs-tree.py proto SRC PROTO MANIFEST [--v4]   make the tree and protofile
  xfs-tree.py write PATH-IN-FS REAL-PATH OFF LEN  write content at OFF (used
                                                  on the mounted filesystem)
  xfs-tree.py add MANIFEST JSON                  add or replace entries
  xfs-tree.py dump MANIFEST                      rewrite in the one-entry-a-line form
"""
import hashlib
import json
import os
import sys


def dump(m, path):
    """Writes manifest `m`: top-level facts, then one entry per line."""
    facts = {k: v for k, v in m.items() if k != "entries"}
    lines = [json.dumps(e, ensure_ascii=False) for e in m["entries"]]
    with open(path, "w") as f:
        f.write("{\n")
        for k, v in facts.items():
            f.write(f" {json.dumps(k)}: {json.dumps(v)},\n")
        f.write(' "entries": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n")


def tag(path):
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def content(path, off, length):
    t = tag(path)
    first = off // 64
    last = (off + length + 63) // 64
    out = bytearray()
    for n in range(first, last):
        line = f"{t} {n:012d}".ljust(63, ".") + "\n"
        out += line.encode()
    skip = off - first * 64
    return bytes(out[skip:skip + length])


def sha(data):
    return hashlib.sha256(data).hexdigest()


# Entry sizes at the root's sizes/ directory.
SIZES = {"s0": 0, "s1": 1, "s700": 700, "s4096": 4096, "s4097": 4097, "s1m": 1 << 20}
# Directory forms and how many entries each gets (xfs.sh checks the forms
# with xfs_db).
DIRS = {"dir_sf": 5, "dir_block": 40, "dir_leaf": 300, "dir_node": 2200}
LONG_TARGET = "/".join(["a-long-symlink-target-component"] * 10)


def node_name(i):
    # Long names push the node directory's data fork past the inode.
    return f"entry-{i:05d}-" + "n" * 180


def make_proto(src, proto_path, manifest_path):
    entries = []
    lines = ["/dev/null", "0 0", "d--755 0 0"]
    os.makedirs(src, exist_ok=True)

    def add_file(rel, name, size, indent):
        real = os.path.join(src, rel.replace("/", "__"))
        data = content(rel, 0, size)
        with open(real, "wb") as f:
            f.write(data)
        lines.append(f"{indent}{name} ---644 0 0 {real}")
        entries.append({"path": rel, "type": "file", "size": size,
                        "sha256": sha(data), "nlink": 1})

    lines.append(" sizes d--755 0 0")
    entries.append({"path": "sizes", "type": "dir"})
    for name, size in SIZES.items():
        add_file(f"sizes/{name}", name, size, "  ")
    lines.append(" $")
    for d, n in DIRS.items():
        lines.append(f" {d} d--755 0 0")
        entries.append({"path": d, "type": "dir"})
        for i in range(n):
            name = node_name(i) if d == "dir_node" else f"f{i:04d}"
            if i % 50 == 0:
                add_file(f"{d}/{name}", name, 100 + i, "  ")
            else:
                empty = os.path.join(src, "empty")
                open(empty, "wb").close()
                lines.append(f"  {name} ---644 0 0 {empty}")
                entries.append({"path": f"{d}/{name}", "type": "file", "size": 0,
                                "sha256": sha(b""), "nlink": 1})
        lines.append(" $")
    lines.append(" links d--755 0 0")
    entries.append({"path": "links", "type": "dir"})
    lines.append("  short l--777 0 0 ../sizes/s700")
    entries.append({"path": "links/short", "type": "symlink", "target": "../sizes/s700"})
    lines.append(f"  long l--777 0 0 {LONG_TARGET}")
    entries.append({"path": "links/long", "type": "symlink", "target": LONG_TARGET})
    lines.append(" $")
    lines.append(" dev d--755 0 0")
    entries.append({"path": "dev", "type": "dir"})
    lines.append("  null c--666 0 0 1 3")
    entries.append({"path": "dev/null", "type": "chardev", "rdev": [1, 3]})
    lines.append("  loop0 b--660 0 6 7 0")
    entries.append({"path": "dev/loop0", "type": "blockdev", "rdev": [7, 0]})
    lines.append("  fifo p--600 1000 1000")
    entries.append({"path": "dev/fifo", "type": "fifo"})
    lines.append(" $")
    lines.append("$")
    with open(proto_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    dump({"entries": entries}, manifest_path)


def write(rel, real, off, length):
    with open(real, "r+b" if os.path.exists(real) else "wb") as f:
        f.seek(off)
        f.write(content(rel, off, length))
        f.flush()
        os.fsync(f.fileno())


def add(manifest_path, js):
    with open(manifest_path) as f:
        m = json.load(f)
    new = json.loads(js)
    if isinstance(new, dict) and "entries" not in new and "path" not in new:
        m.update(new)  # top-level facts
    else:
        for e in (new if isinstance(new, list) else [new]):
            m["entries"] = [x for x in m["entries"] if x["path"] != e["path"]]
            m["entries"].append(e)
    m["entries"].sort(key=lambda e: e["path"])
    dump(m, manifest_path)


def stamp(mnt, manifest_path):
    """Sets every entry's mtime (and atime) to a distinct time with
    nanoseconds, children before parents, and records it."""
    with open(manifest_path) as f:
        m = json.load(f)
    for i, e in enumerate(sorted(m["entries"], key=lambda e: e["path"], reverse=True)):
        if e.get("no_mtime") or e.get("same_as") or "mtime" in e:
            continue
        ns = (1767225600 + i * 3607) * 10**9 + (i * 123456789) % 10**9
        os.utime(os.path.join(mnt, e["path"]), ns=(ns, ns), follow_symlinks=False)
        e["mtime"] = [ns // 10**9, ns % 10**9]
    by_path = {e["path"]: e for e in m["entries"]}
    for e in m["entries"]:
        if e.get("same_as"):
            e["mtime"] = by_path[e["same_as"]]["mtime"]
    dump(m, manifest_path)


def acl(entries):
    """A POSIX ACL in the posix_acl_xattr form (version 2)."""
    out = (2).to_bytes(4, "little")
    for tag, perm, ident in entries:
        out += tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + ident.to_bytes(4, "little")
    return out


def xattrs(mnt, manifest_path):
    """Sets extended attributes through the kernel on a mounted XFS and
    records them, as the kernel reads them back, in the manifest entries'
    "xattrs" ({name: hex}): shortform (sizes/s0), a leaf with a remote
    value (sizes/s1), node form (xattr/many: 200 values of 100 bytes), a
    POSIX ACL (sizes/s700), a directory (sizes) and a symlink (links/short,
    trusted.* as Linux allows no user.* there)."""
    with open(manifest_path) as f:
        m = json.load(f)
    none = 0xFFFFFFFF
    os.makedirs(os.path.join(mnt, "xattr"), exist_ok=True)
    open(os.path.join(mnt, "xattr/many"), "wb").close()
    new = [{"path": "xattr", "type": "dir"},
           {"path": "xattr/many", "type": "file", "size": 0, "sha256": sha(b""), "nlink": 1}]
    m["entries"] = [e for e in m["entries"] if e["path"] not in ("xattr", "xattr/many")] + new
    want = {
        "sizes/s0": [("user.small", b"hello"), ("user.empty", b""),
                     ("user.binary", bytes(range(256))[::7]),
                     ("security.label", b"system_u:object_r:test_t:s0\0")],
        "sizes/s1": [("user.big", content("xattr:user.big", 0, 5000)),
                     ("user.after-big", b"x"), ("trusted.t", b"root namespace")],
        "sizes/s700": [("system.posix_acl_access",
                        acl([(1, 6, none), (2, 4, 1000), (4, 4, none), (0x10, 4, none), (0x20, 0, none)]))],
        "sizes": [("user.dir", "a directory attribute \u00e9".encode()), ("trusted.dir", b"t")],
        "links/short": [("trusted.link", b"on a symlink")],
        "xattr/many": [(f"user.attr-{i:04d}", content(f"xattr:{i}", 0, 100)) for i in range(200)],
    }
    by = {e["path"]: e for e in m["entries"]}
    for rel, attrs in want.items():
        p = os.path.join(mnt, rel)
        for name, value in attrs:
            os.setxattr(p, name, value, follow_symlinks=False)
        by[rel]["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False).hex()
                             for n in os.listxattr(p, follow_symlinks=False)}
    m["entries"].sort(key=lambda e: e["path"])
    dump(m, manifest_path)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "proto":
        make_proto(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "write":
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "writes":
        # writes PATH-IN-FS REAL-PATH BLOCK COUNT STEP: write block k*STEP for
        # k in 0..COUNT, one fsync each (a fragmented file)
        rel, real = sys.argv[2], sys.argv[3]
        bs, count, step = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        with open(real, "r+b") as f:
            for k in range(count):
                f.seek(k * step * bs)
                f.write(content(rel, k * step * bs, bs))
                f.flush()
                os.fsync(f.fileno())
    elif cmd == "xattrs":
        xattrs(sys.argv[2], sys.argv[3])
    elif cmd == "stamp":
        stamp(sys.argv[2], sys.argv[3])
    elif cmd == "dump":
        with open(sys.argv[2]) as f:
            dump(json.load(f), sys.argv[2])
    elif cmd == "add":
        add(sys.argv[2], sys.argv[3])
    elif cmd == "sha":
        # sha PATH-IN-FS SEGMENTS-JSON SIZE: the hash of a sparse file
        segs = json.loads(sys.argv[3])
        size = int(sys.argv[4])
        data = bytearray(size)
        for off, ln in segs:
            data[off:off + ln] = content(sys.argv[2], off, ln)
        print(sha(bytes(data)))
    else:
        sys.exit(f"unknown command {cmd}")
