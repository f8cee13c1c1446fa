#!/usr/bin/env python3
"""Helpers for ext.sh: the source tree `mkfs.ext* -d` copies, and its
manifest (the tests' oracle, written from the source side, never from a
reader). File content is xfs-tree.py's self-describing scheme: byte i of a
file is a function of its path and i alone.

  ext-tree.py make SRC MANIFEST KIND   KIND: small | big | deep | triple

Extended attributes are set on a few entries of the source tree (mke2fs -d
copies them) and recorded in the manifest as "xattrs": {name: hex value},
read back from the source tree through the kernel (os.getxattr), so POSIX
ACLs appear in the form getxattr returns. EXT_XATTR_BIG (default 3000) is
the size of the one large value on sizes/s1: past a 256-byte inode, so it
goes to the external attribute block (or an EA inode with ea_inode).
"""
import hashlib
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
xt = importlib.import_module("xfs-tree")
content, dump, sha = xt.content, xt.dump, xt.sha

LONG_TARGET = "/".join(["a-long-symlink-target-component"] * 5)
SIZES = {"s0": 0, "s1": 1, "s60": 60, "s700": 700, "s4096": 4096, "s4097": 4097,
         "s1m": 1 << 20, "s1m3": (1 << 20) + 333}


def make(src, manifest, kind):
    entries = []
    os.makedirs(src)
    n = 0

    def stamp(rel):
        nonlocal n
        n += 1
        ns = (1767225600 + n * 3607) * 10**9 + (n * 123456789) % 10**9
        os.utime(os.path.join(src, rel), ns=(ns, ns), follow_symlinks=False)
        return [ns // 10**9, ns % 10**9]

    def mkdir(rel):
        os.makedirs(os.path.join(src, rel), exist_ok=True)
        entries.append({"path": rel, "type": "dir"})

    def file(rel, size, segs=None):
        with open(os.path.join(src, rel), "wb") as f:
            if segs is None:
                f.write(content(rel, 0, size))
            else:
                for off, ln in segs:
                    f.seek(off)
                    f.write(content(rel, off, ln))
                f.truncate(size)
        data = bytearray(size)
        for off, ln in (segs if segs is not None else [[0, size]]):
            data[off:off + ln] = content(rel, off, ln)
        e = {"path": rel, "type": "file", "size": size, "sha256": sha(bytes(data)), "nlink": 1}
        if segs is not None:
            e["segments"] = segs
        entries.append(e)
        return e

    mkdir("sizes")
    for name, size in SIZES.items():
        file(f"sizes/{name}", size)
    mkdir("links")
    os.symlink("../sizes/s700", os.path.join(src, "links/short"))
    entries.append({"path": "links/short", "type": "symlink", "target": "../sizes/s700"})
    os.symlink(LONG_TARGET, os.path.join(src, "links/long"))
    entries.append({"path": "links/long", "type": "symlink", "target": LONG_TARGET})
    # A hardlink: sizes/s4097 gets a second name.
    os.link(os.path.join(src, "sizes/s4097"), os.path.join(src, "links/hard"))
    for e in entries:
        if e["path"] == "sizes/s4097":
            e["nlink"] = 2
            entries.append(dict(e, path="links/hard", same_as="sizes/s4097"))
            break
    mkdir("sparse")
    # (mke2fs 1.47.0 -d drops a trailing hole from the size: none here)
    file("sparse/holes", 2 << 20, [[0, 100], [300000, 5000], [2000000, 97152]])
    mkdir("unicode")
    for name in ["Ωμέγα.txt", "日本語のファイル", "naïve café"]:
        file(f"unicode/{name}", 77)
    mkdir("dev")
    os.mknod(os.path.join(src, "dev/null"), 0o20666, os.makedev(1, 3))
    entries.append({"path": "dev/null", "type": "chardev", "rdev": [1, 3]})
    os.mknod(os.path.join(src, "dev/loop0"), 0o60660, os.makedev(7, 0))
    entries.append({"path": "dev/loop0", "type": "blockdev", "rdev": [7, 0]})
    os.mkfifo(os.path.join(src, "dev/fifo"))
    entries.append({"path": "dev/fifo", "type": "fifo"})
    if kind in ("big", "deep"):
        count = 3000 if kind == "big" else 10000
        mkdir("htree")
        for i in range(count):
            rel = f"htree/entry-{i:05d}-" + "x" * 20
            if i % 500 == 0:
                file(rel, 100 + i)
            else:
                open(os.path.join(src, rel), "wb").close()
                entries.append({"path": rel, "type": "file", "size": 0,
                                "sha256": sha(b""), "nlink": 1})
    if kind == "deep":
        # 600 one-block extents of 1 KiB with holes between: depth 2 at 1k.
        mkdir("frag")
        file("frag/deep", 1200 * 1024, [[k * 2048, 1024] for k in range(600)])
    if kind == "small":
        # Deleted by ext.sh after mkfs (debugfs rm): for deleted().
        file("gone.txt", 5000)["delete"] = True
        mkdir("inline")
        for i in range(5):
            file(f"inline/small{i}", 20 + 10 * i)
        mkdir("inline/tinydir")
        file("inline/tinydir/a", 3)
    if kind == "triple":
        # 1 KiB blocks: 12 direct, 256 single-, 65536 double-indirect
        # blocks, then the triple-indirect range from block 65804. Each
        # segment crosses a boundary of the block map (the last two inside
        # the triple-indirect tree: a leaf indirect block's end, then 70 MiB).
        mkdir("triple")
        t = 65804 * 1024
        file("triple/sparse", (70 << 20) + 5000,
             [[0, 100], [12 * 1024 - 40, 80], [268 * 1024 - 40, 80], [t - 40, 80],
              [t + 256 * 1024 - 40, 80], [70 << 20, 5000]])
    xattrs(src, entries, int(os.environ.get("EXT_XATTR_BIG", "3000")))
    # Stamp children before parents (directories after their contents).
    for e in sorted(entries, key=lambda e: e["path"], reverse=True):
        if e.get("same_as"):
            continue
        e["mtime"] = stamp(e["path"])
    by = {e["path"]: e for e in entries}
    for e in entries:
        if e.get("same_as"):
            e["mtime"] = by[e["same_as"]]["mtime"]
    entries.append({"path": "lost+found", "type": "dir"})  # made by mke2fs
    entries.sort(key=lambda e: e["path"])
    dump({"entries": entries}, manifest)


def acl(entries):
    """A POSIX ACL in the posix_acl_xattr form (version 2)."""
    out = (2).to_bytes(4, "little")
    for tag, perm, ident in entries:
        out += tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + ident.to_bytes(4, "little")
    return out


def xattrs(src, entries, big):
    """Sets the test attributes in the source tree and records them, as the
    kernel reads them back, in the entries' "xattrs"."""
    none = 0xFFFFFFFF
    want = {
        "sizes/s0": [("user.small", b"hello"), ("user.empty", b""),
                     ("user.binary", bytes(range(256))[::7]),
                     ("security.label", b"system_u:object_r:test_t:s0\0")],
        "sizes/s1": [("user.big", content("xattr:user.big", 0, big)),
                     ("user.after-big", b"x")],
        "sizes/s700": [("system.posix_acl_access",
                        acl([(1, 6, none), (2, 4, 1000), (4, 4, none), (0x10, 4, none), (0x20, 0, none)]))],
        "sizes": [("user.dir", "a directory attribute é".encode()),
                  ("trusted.dir", b"t")],
        "links/short": [("trusted.link", b"on a symlink")],
    }
    by = {e["path"]: e for e in entries}
    for rel, attrs in want.items():
        p = os.path.join(src, rel)
        for name, value in attrs:
            os.setxattr(p, name, value, follow_symlinks=False)
        got = {}
        for name in os.listxattr(p, follow_symlinks=False):
            got[name] = os.getxattr(p, name, follow_symlinks=False).hex()
        by[rel]["xattrs"] = got


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command")
