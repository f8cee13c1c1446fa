#!/usr/bin/env python3
"""The tree linuxdisk.sh writes into every partition, and its manifest.

    linuxdisk-tree.py SRC MANIFEST

Starts from ext-tree.py's "small" tree (sizes, symlinks short and long, a
hardlink, a sparse file, non-ASCII names, device nodes, a fifo), drops what
ext.sh deletes after mkfs and the inline-data directory, and adds a file of
a few MiB (reads cross many blocks and extents), a 1200-entry directory and
an empty `lost+found` (mke2fs makes its own; XFS gets this one, so the
partitions hold the same paths). Content is xfs-tree.py's self-describing
scheme. Mtimes are whole seconds: mke2fs 1.47.0 -d copies no nanoseconds,
and one manifest serves every partition.
"""
import importlib
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
et = importlib.import_module("ext-tree")
xt = importlib.import_module("xfs-tree")

BIG = ("data/big.bin", 3 * (1 << 20) + 4321)
MANY = 1200


def make(src, manifest):
    et.make(src, manifest, "small")
    with open(manifest) as f:
        m = __import__("json").load(f)
    keep = []
    for e in m["entries"]:
        if e.get("delete") or e["path"].startswith("inline"):
            full = os.path.join(src, e["path"])
            if os.path.isdir(full):
                shutil.rmtree(full)
            elif os.path.lexists(full):
                os.remove(full)
            continue
        keep.append(e)
    entries = keep

    def file(rel, size):
        data = xt.content(rel, 0, size)
        with open(os.path.join(src, rel), "wb") as f:
            f.write(data)
        entries.append({"path": rel, "type": "file", "size": size,
                        "sha256": xt.sha(data), "nlink": 1})

    os.makedirs(os.path.join(src, "data"))
    entries.append({"path": "data", "type": "dir"})
    file(*BIG)
    os.makedirs(os.path.join(src, "many"))
    entries.append({"path": "many", "type": "dir"})
    for i in range(MANY):
        file(f"many/entry-{i:05d}", 10 + i if i % 100 == 0 else 0)
    os.makedirs(os.path.join(src, "lost+found"), exist_ok=True)
    # Whole seconds, distinct, children before parents (a directory's mtime
    # is set after its entries are made); hardlinks share their inode's.
    n = 0
    for e in sorted(entries, key=lambda e: e["path"], reverse=True):
        e.pop("mtime", None)
        if e.get("same_as") or e["path"] == "lost+found":
            continue  # lost+found: mke2fs's own, not the source's
        n += 1
        t = 1767225600 + n * 3607
        os.utime(os.path.join(src, e["path"]), (t, t), follow_symlinks=False)
        e["mtime"] = [t, 0]
    by = {e["path"]: e for e in entries}
    for e in entries:
        if e.get("same_as"):
            e["mtime"] = by[e["same_as"]]["mtime"]
    entries.sort(key=lambda e: e["path"])
    xt.dump({"entries": entries}, manifest)


if __name__ == "__main__":
    make(sys.argv[1], sys.argv[2])
