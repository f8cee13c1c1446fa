#!/usr/bin/env bash
# Builds the NTFS test volume with the real tools: mkfs.ntfs, then the tree
# written through an ntfs-3g mount (root and /dev/fuse needed; Debian
# packages ntfs-3g, attr, zstd, python3).
#
# Outputs:
#   fs/ntfs.img.zst          the 40 MiB volume
#   fs/ntfs.manifest.json    every path as written (from the source side,
#                            by the Python writer below, never by our
#                            reader): type, size, sha256, mtime, symlink
#                            target, nlink, streams (name, size, sha256),
#                            plus the deleted file and the volume label
#   fs/ntfs4k.img.zst, fs/ntfs4k.manifest.json
#                            an 8 MiB volume with 4096-byte sectors (4 KiB
#                            MFT records and index blocks) and the SHA-256
#                            of each file on it
#   ../fuzz/seeds/ntfs/compact-volume
#                            a small volume (3 MiB, 1 KiB clusters) in the
#                            fuzz target's compact form (`ntfs.sh seed`
#                            remakes only this)
#
# What the volume holds, and the feature each part exercises:
#   compressed/      directory flagged compressed (FILE_ATTRIBUTE_COMPRESSED
#                    through system.ntfs_attrib_be) before its files were
#                    written: LZNT1 units, uncompressed units (random),
#                    sparse units (zeros), a resident file, an odd size
#   sparse.bin       16 MiB with three written islands (sparse runs)
#   fragmented.bin   every other cluster written: ~700 data runs, so $DATA
#                    spreads over several MFT records behind a non-resident
#                    $ATTRIBUTE_LIST
#   streams/         alternate data streams (user.* xattrs): a small
#                    resident one and a 60000-byte non-resident one
#   hard/            one file under three names (nlink 3)
#   bigdir/          3000 entries: $INDEX_ALLOCATION with several levels
#   unicode/         accents, Greek, Japanese, an emoji, a space
#   case/            two POSIX-namespace names differing only in case
#   dos/             a long name given an 8.3 DOS name (Win32 + DOS pair)
#   nested/          six levels deep
#   sizes/           0, 1, 4096 and 4097 bytes
#   $RECYCLE.BIN/    a `$` name in the root that is not a system file
#   links/           an ntfs-3g (Interix) symlink from `ln -s`; reparse
#                    points written by hand through system.ntfs_reparse_data:
#                    a relative and an absolute IO_REPARSE_TAG_SYMLINK and
#                    a junction (IO_REPARSE_TAG_MOUNT_POINT)
#   deleted_me.txt   written, synced and deleted: an MFT record not in use
#                    but intact (listed in the manifest's "deleted")
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p fs ../fuzz/seeds/ntfs
tmp=$(mktemp -d)
mnt=$tmp/mnt
mkdir "$mnt"
cleanup() {
    mountpoint -q "$mnt" && fusermount -u "$mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT

# `ntfs.sh [main] [seed] [4k]` remakes only the named outputs (all by
# default).
want() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
only="$*"

if want main; then
img=$tmp/ntfs.img
truncate -s 40M "$img"
mkfs.ntfs -Q -F -q -L vaultfs-ntfs "$img"
ntfs-3g -o streams_interface=xattr "$img" "$mnt"

python3 - "$mnt" fs/ntfs.manifest.json <<'PY'
import hashlib, json, os, subprocess, sys

mnt, manifest_path = sys.argv[1], sys.argv[2]
T0 = 1_600_000_000          # 2020-09-13, the base of every mtime set here
entries = {}                # path -> record
deleted = []

def sha(b):
    return hashlib.sha256(b).hexdigest()

def noise(path, n):
    """Poorly compressible bytes, a function of the path only."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{path}#{i}".encode()).digest()
        i += 1
    return bytes(out[:n])

def text(path, n):
    """Self-describing lines: the path and the line number."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += f"{path} line {i:06d} the quick brown fox\n".encode()
        i += 1
    return bytes(out[:n])

def full(p):
    return os.path.join(mnt, p)

def mkdir(p):
    os.makedirs(full(p), exist_ok=True)
    entries[p] = {"type": "dir"}

def write(p, data, streams=None):
    with open(full(p), "wb") as f:
        f.write(data)
    entries[p] = {"type": "file", "size": len(data), "sha256": sha(data), "nlink": 1}

def add_stream(p, name, data):
    subprocess.run(["setfattr", "-n", "user." + name, "-v", "0x" + data.hex(), full(p)], check=True)
    entries[p].setdefault("streams", {})[name] = {"size": len(data), "sha256": sha(data)}

def reparse(p, tag, data):
    hdr = tag.to_bytes(4, "little") + len(data).to_bytes(2, "little") + b"\0\0"
    subprocess.run(["setfattr", "-n", "system.ntfs_reparse_data", "-v",
                    "0x" + (hdr + data).hex(), full(p)], check=True)

def link_buffer(subst, printn, flags=None):
    """REPARSE_DATA_BUFFER body of a symlink (flags given) or junction
    (MS-FSCC 2.1.2.4 and 2.1.2.5): offsets, lengths, [flags], then the
    substitute name and the print name in UTF-16LE."""
    s, pr = subst.encode("utf-16-le"), printn.encode("utf-16-le")
    body = (0).to_bytes(2, "little") + len(s).to_bytes(2, "little")
    body += len(s).to_bytes(2, "little") + len(pr).to_bytes(2, "little")
    if flags is not None:
        body += flags.to_bytes(4, "little")
    return body + s + pr

# --- compressed directory
mkdir("compressed")
subprocess.run(["setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000800",
                full("compressed")], check=True)
write("compressed/text.txt", text("compressed/text.txt", 300_000))
write("compressed/text_zeros_text.bin",
      text("a", 70_000) + bytes(200_000) + text("b", 50_001))
write("compressed/random.bin", noise("compressed/random.bin", 100_000))
write("compressed/small.txt", text("compressed/small.txt", 300))
write("compressed/odd.bin", text("odd", 30_000) + noise("odd", 41_001))

# --- sparse file: islands at 0, 5 MiB and the last 100 bytes of 16 MiB
p = "sparse.bin"
size = 16 << 20
with open(full(p), "wb") as f:
    f.truncate(size)
    for off, n in [(0, 5000), (5 << 20, 70_000), (size - 100, 100)]:
        f.seek(off)
        f.write(text(f"sparse@{off}", n))
data = bytearray(size)
for off, n in [(0, 5000), (5 << 20, 70_000), (size - 100, 100)]:
    data[off:off + n] = text(f"sparse@{off}", n)
entries[p] = {"type": "file", "size": size, "sha256": sha(bytes(data)), "nlink": 1}

# --- fragmented: every other 4 KiB cluster written
p = "fragmented.bin"
clusters = 1400
with open(full(p), "wb") as f:
    f.truncate(clusters * 4096)
    for c in range(0, clusters, 2):
        f.seek(c * 4096)
        f.write(text(f"frag{c}", 4096))
data = bytearray(clusters * 4096)
for c in range(0, clusters, 2):
    data[c * 4096:(c + 1) * 4096] = text(f"frag{c}", 4096)
entries[p] = {"type": "file", "size": len(data), "sha256": sha(bytes(data)), "nlink": 1}

# --- alternate data streams
mkdir("streams")
write("streams/one.bin", b"main data of one\n")
add_stream("streams/one.bin", "streamname", b"small ADS 17 byte")
write("streams/4k.bin", text("streams/4k.bin", 4096))
add_stream("streams/4k.bin", "bigstream", noise("bigstream", 60_000))

# --- hardlinks
mkdir("hard")
mkdir("hard/sub")
write("hard/a.txt", text("hard/a.txt", 1234))
os.link(full("hard/a.txt"), full("hard/b.txt"))
os.link(full("hard/a.txt"), full("hard/sub/c.txt"))
for q in ["hard/a.txt", "hard/b.txt", "hard/sub/c.txt"]:
    entries[q] = dict(entries["hard/a.txt"], nlink=3)

# --- a large directory
mkdir("bigdir")
for i in range(3000):
    q = f"bigdir/entry_{i:04d}_with_a_longer_name.txt"
    write(q, f"{q}\n".encode())

# --- names
mkdir("unicode")
for name in ["café crème.txt", "Ελληνικά.txt", "日本語のファイル.txt", "emoji 😀.txt",
             "with space"]:
    write(f"unicode/{name}", f"unicode/{name}\n".encode())
mkdir("case")
write("case/Readme", b"the capitalised one\n")
write("case/README", b"the upper-case one, a different file\n")
mkdir("dos")
write("dos/LongFileName.text", b"has a DOS name too\n")
subprocess.run(["setfattr", "-n", "system.ntfs_dos_name", "-v", "LONGFI~1.TEX",
                full("dos/LongFileName.text")], check=True)
mkdir("nested/a/b/c/d/e")
for q in ["nested", "nested/a", "nested/a/b", "nested/a/b/c", "nested/a/b/c/d"]:
    entries[q] = {"type": "dir"}
write("nested/a/b/c/d/e/deep.txt", b"six levels down\n")

# --- `$` names that are not system files: listed (ntfs-3g lists them)
mkdir("$RECYCLE.BIN")
write("$RECYCLE.BIN/desktop.ini", b"[.ShellClassInfo]\n")

# --- sizes
mkdir("sizes")
write("sizes/empty", b"")
write("sizes/one", b"1")
write("sizes/4k", text("sizes/4k", 4096))
write("sizes/4k1", text("sizes/4k1", 4097))

# --- links
mkdir("links")
os.symlink("../sizes/one", full("links/interix"))
entries["links/interix"] = {"type": "symlink", "target": "../sizes/one", "nlink": 1}
mkdir("links/target_dir")
write("links/target_dir/inside.txt", b"reached through a junction\n")
open(full("links/reparse_rel"), "wb").close()
reparse("links/reparse_rel", 0xA000000C, link_buffer("..\\sizes\\4k", "..\\sizes\\4k", flags=1))
entries["links/reparse_rel"] = {"type": "symlink", "target": "../sizes/4k", "nlink": 1}
open(full("links/reparse_abs"), "wb").close()
reparse("links/reparse_abs", 0xA000000C,
        link_buffer("\\??\\C:\\Windows\\notepad.exe", "C:\\Windows\\notepad.exe", flags=0))
entries["links/reparse_abs"] = {"type": "symlink", "target": "C:/Windows/notepad.exe", "nlink": 1}
os.mkdir(full("links/junction"))
reparse("links/junction", 0xA0000003,
        link_buffer("\\??\\C:\\links\\target_dir", "C:\\links\\target_dir"))
entries["links/junction"] = {"type": "symlink", "target": "C:/links/target_dir", "nlink": 1}

# --- a deleted file: written, synced, removed
write("deleted_me.txt", text("deleted_me.txt", 2000))
os.sync()
del_rec = entries.pop("deleted_me.txt")
os.unlink(full("deleted_me.txt"))
deleted.append(dict(del_rec, path="deleted_me.txt"))

# --- fixed times: files first, then directories bottom-up (writing into
# a directory changes its mtime)
for i, (q, e) in enumerate(sorted(entries.items())):
    e["mtime"] = T0 + 1000 * i + 7
    e["mtime_ns"] = 123_456_700
# Hard links are one file with one mtime.
for q in ["hard/b.txt", "hard/sub/c.txt"]:
    entries[q]["mtime"] = entries["hard/a.txt"]["mtime"]
for q in sorted(entries, key=lambda q: -q.count("/")):
    e = entries[q]
    if e["type"] == "symlink":
        continue
    t = e["mtime"] * 1_000_000_000 + e["mtime_ns"]
    os.utime(full(q), ns=(t, t))
os.sync()

json.dump({"label": "vaultfs-ntfs", "entries": entries, "deleted": deleted},
          open(manifest_path, "w"), indent=1, sort_keys=True, ensure_ascii=False)
PY

fusermount -u "$mnt"

# Symlink times were not set (ntfs-3g stats a new reparse point only after
# a remount): record them as ntfs-3g shows them.
ntfs-3g -o ro "$img" "$mnt"
python3 - "$mnt" fs/ntfs.manifest.json <<'PY'
import json, os, sys
mnt, path = sys.argv[1], sys.argv[2]
m = json.load(open(path))
for q, e in m["entries"].items():
    if e["type"] == "symlink":
        e["mtime"] = int(os.lstat(os.path.join(mnt, q)).st_mtime)
        e.pop("mtime_ns", None)
# One entry per line: small, and diffs stay readable.
line = lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False)
with open(path, "w") as f:
    f.write('{"label": %s,\n "deleted": %s,\n "entries": {\n' % (line(m["label"]), line(m["deleted"])))
    f.write(",\n".join("  %s: %s" % (line(k), line(v)) for k, v in sorted(m["entries"].items())))
    f.write("\n }\n}\n")
PY
fusermount -u "$mnt"
zstd -q -19 -f "$img" -o fs/ntfs.img.zst
fi

if want seed; then
# A small volume for the fuzz target: a few files of each kind.
seed=$tmp/seed.img
truncate -s 3M "$seed"
mkfs.ntfs -Q -F -q -c 1024 -L seed "$seed"
ntfs-3g -o streams_interface=xattr "$seed" "$mnt"
mkdir "$mnt/c" "$mnt/d"
setfattr -n system.ntfs_attrib_be -v 0x00000800 "$mnt/c"
python3 - "$mnt" <<'PY'
import os, sys
m = sys.argv[1]
open(f"{m}/c/text", "w").write("compress me " * 2000)
with open(f"{m}/sparse", "wb") as f:
    f.truncate(300_000)
    for c in range(0, 60, 2):
        f.seek(c * 1024 * 3)
        f.write(b"x" * 1024)
for i in range(40):
    open(f"{m}/d/file_{i:02d}", "w").write(f"{i}\n")
open(f"{m}/ads", "w").write("a")
os.symlink("d/file_01", f"{m}/link")
os.link(f"{m}/ads", f"{m}/d/hard")
PY
setfattr -n user.s -v 0x616263 "$mnt/ads"
fusermount -u "$mnt"
# The fuzz target's compact form: $LogFile and $UpCase (which the reader
# can do without) zeroed, then only the non-zero 512-byte sectors kept as
# [u32 LE volume sectors] then runs of [u32 LE first sector][u16 LE count]
# [count x 512 bytes] (see fuzz/fuzz_targets/ntfs.rs).
rm -f ../fuzz/seeds/ntfs/small-volume
for inode in 2 10; do
    ntfsinfo -i "$inode" -v "$seed" 2>/dev/null |
        awk '/Runlist:/ {on=1; next} on && $1 ~ /^0x/ && $2 ~ /^0x/ {print $2, $3}' |
        sort -u
done >"$tmp/zero-runs"
python3 - "$seed" "$tmp/zero-runs" ../fuzz/seeds/ntfs/compact-volume <<'PY'
import struct, sys
vol = bytearray(open(sys.argv[1], "rb").read())
cluster = struct.unpack_from("<H", vol, 11)[0] * vol[13]
for line in open(sys.argv[2]):
    lcn, n = (int(x, 16) for x in line.split())
    vol[lcn * cluster:(lcn + n) * cluster] = bytes(n * cluster)
out = bytearray(struct.pack("<I", len(vol) // 512))
sectors = len(vol) // 512
i = 0
while i < sectors:
    if not any(vol[i * 512:(i + 1) * 512]):
        i += 1
        continue
    j = i
    while j < sectors and j - i < 0xFFFF and any(vol[j * 512:(j + 1) * 512]):
        j += 1
    out += struct.pack("<IH", i, j - i) + vol[i * 512:j * 512]
    i = j
open(sys.argv[3], "wb").write(out)
PY
fi

if want 4k; then
# 4096-byte sectors: 4 KiB MFT records (eight fixup blocks each) and index
# blocks, 4 KiB clusters. A 300-entry directory, a compressed file and a
# random one; the manifest maps each file to its SHA-256.
img=$tmp/ntfs4k.img
truncate -s 8M "$img"
mkfs.ntfs -Q -F -q -s 4096 -L four-k "$img"
ntfs-3g "$img" "$mnt"
python3 - "$mnt" fs/ntfs4k.manifest.json <<'PY'
import hashlib, json, os, subprocess, sys
mnt, out = sys.argv[1], sys.argv[2]
files = {}
def write(p, data):
    with open(os.path.join(mnt, p), "wb") as f:
        f.write(data)
    files[p] = hashlib.sha256(data).hexdigest()
os.mkdir(os.path.join(mnt, "d"))
for i in range(300):
    write(f"d/file_{i:03d}.txt", f"file {i} of the 4k volume\n".encode())
os.mkdir(os.path.join(mnt, "c"))
subprocess.run(["setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000800",
                os.path.join(mnt, "c")], check=True)
write("c/text.txt", b"".join(f"line {i} compressed on 4k sectors\n".encode() for i in range(5000)))
noise = b"".join(hashlib.sha256(b"4k%d" % i).digest() for i in range(625))
write("random.bin", noise)
json.dump(files, open(out, "w"), indent=0, sort_keys=True)
PY
fusermount -u "$mnt"
zstd -q -19 -f "$img" -o fs/ntfs4k.img.zst
fi
ls -l fs/ ../fuzz/seeds/ntfs/
