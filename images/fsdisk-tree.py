#!/usr/bin/env python3
"""The tree fsdisk.sh writes into both filesystems, and its manifest.

    fsdisk-tree.py DIR MANIFEST          writes the tree and the manifest
    fsdisk-tree.py --add DIR MANIFEST P  adds file DIR/P to the manifest

Every file's content names its path and repeats it with a counter, so a
block read from the wrong place never matches. Mtimes are whole even
seconds in UTC (FAT keeps 2 s steps). The manifest lists each entry as
{path, type, size, sha256, mtime}, sorted by path.
"""
import hashlib
import json
import os
import sys

T0 = 1767225600  # 2026-01-01T00:00:00Z

FILES = {
    "readme.txt": 300,
    "empty": 0,
    "one byte": 1,
    "docs/report 2026.txt": 4096,
    "docs/4097.txt": 4097,
    "docs/ünïcödé résumé.txt": 777,
    "docs/Ελληνικά.txt": 1500,
    "docs/日本語のファイル.txt": 2500,
    "data/big.bin": 3 * 1024 * 1024 + 123,
    "data/odd.bin": 65537,
    "deep/a/b/c/d/e/leaf.txt": 42,
    "a long name with many words to need several LFN entries.txt": 99,
}


def content(path, size):
    out = bytearray()
    n = 0
    while len(out) < size:
        out += b"%s #%d\n" % (path.encode(), n)
        n += 1
    return bytes(out[:size])


def entry(root, rel):
    full = os.path.join(root, rel)
    st = os.lstat(full)
    if os.path.isdir(full):
        return {"path": rel, "type": "dir", "mtime": int(st.st_mtime)}
    data = open(full, "rb").read()
    return {
        "path": rel,
        "type": "file",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "mtime": int(st.st_mtime),
    }


def write(root, manifest):
    os.makedirs(root)
    dirs = set()
    for i, (rel, size) in enumerate(sorted(FILES.items())):
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(content(rel, size))
        t = T0 + 2 * i * 3601
        os.utime(full, (t, t))
        parent = os.path.dirname(rel)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    # Directories last, deepest first, so writing files does not move them.
    for i, rel in enumerate(sorted(dirs, key=lambda d: -d.count("/"))):
        t = T0 + 86400 * 30 + 2 * i
        os.utime(os.path.join(root, rel), (t, t))
    entries = [entry(root, rel) for rel in sorted(set(FILES) | dirs)]
    save(manifest, entries)


def save(manifest, entries):
    entries.sort(key=lambda e: e["path"])
    with open(manifest, "w") as f:
        json.dump(entries, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    if sys.argv[1] == "--add":
        root, manifest, rel = sys.argv[2:5]
        entries = [e for e in json.load(open(manifest)) if e["path"] != rel]
        entries.append(entry(root, rel))
        save(manifest, entries)
    else:
        write(sys.argv[1], sys.argv[2])


main()
