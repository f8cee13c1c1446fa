#!/usr/bin/env python3
"""Deterministic benchmark data for tools/bench (called by make-dataset.sh).

Subcommands:
  sample DEST SEED BYTES SRC...  copy regular files <= 32 MiB from each SRC
                                 (an equal share of BYTES each), chosen in a
                                 seeded hash order, to DEST/<SRC path>
  small DEST SEED COUNT          COUNT files of 0..4096 bytes, 1000 per
                                 directory, half random and half text
  mutate DIR SEED                change a copy of the mixed dataset in place
  fixtimes DIR                   give every entry below DIR one fixed mtime

Same arguments, same machine: same bytes.
"""

import hashlib
import os
import random
import shutil
import stat
import sys

MAX_FILE = 32 << 20
FIXED_TIME = 1_700_000_000
WORDS = (
    "vault snapshot chunk pack index tree blob restore backup the of and a to in is "
    "deduplicated encrypted compressed polynomial filesystem partition sector cluster "
    "inode extent journal superblock bitmap directory symlink hardlink"
).split()


def seeded_key(seed, path):
    return hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()


def regular_files(root):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE and os.access(path, os.R_OK):
                yield path, st.st_size


def sample(dest, seed, total, sources):
    share = total // len(sources)
    for src in sources:
        files = sorted(regular_files(src), key=lambda f: seeded_key(seed, f[0]))
        taken = 0
        for path, size in files:
            if taken >= share:
                break
            if taken + size > share + (1 << 20):
                continue
            target = os.path.join(dest, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                shutil.copyfile(path, target)
            except OSError:
                continue
            os.chmod(target, 0o755 if os.access(path, os.X_OK) else 0o644)
            taken += size
        print(f"sample: {taken} bytes from {src}", file=sys.stderr)


def text(rng, n):
    out = bytearray()
    while len(out) < n:
        out += rng.choice(WORDS).encode()
        out += b"\n" if rng.randrange(12) == 0 else b" "
    return bytes(out[:n])


def small(dest, seed, count):
    rng = random.Random(f"{seed}:small")
    for i in range(count):
        d = os.path.join(dest, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        n = rng.randrange(4097)
        data = rng.randbytes(n) if i % 2 == 0 else text(rng, n)
        with open(os.path.join(d, f"f{i:06d}"), "wb") as f:
            f.write(data)


def all_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                out.append(path)
    return out


def insert_bytes(path, offset, data):
    tmp = path + ".mutate-tmp"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        left = offset
        while left > 0:
            buf = src.read(min(left, 1 << 20))
            if not buf:
                break
            dst.write(buf)
            left -= len(buf)
        dst.write(data)
        shutil.copyfileobj(src, dst, 1 << 20)
    shutil.copymode(path, tmp)
    os.replace(tmp, path)


def mutate(root, seed):
    rng = random.Random(f"{seed}:mutate")
    big = os.path.join(root, "random", "big.bin")
    image = os.path.join(root, "image", "disk.img")
    files = [f for f in all_files(root) if f not in (big, image)]
    chosen = rng.sample(files, max(1, len(files) // 100))
    for path in chosen:
        size = os.path.getsize(path)
        n = min(64, size)
        with open(path, "r+b") as f:
            f.seek(max(0, size // 2 - n // 2))
            f.write(rng.randbytes(n))
    for path in rng.sample(files, min(100, len(files))):
        with open(path, "ab") as f:
            f.write(rng.randbytes(rng.randrange(1024, 8193)))
    if os.path.exists(big):
        size = os.path.getsize(big)
        insert_bytes(big, size // 2 + 7, rng.randbytes(1000))
    if os.path.exists(image):
        size = os.path.getsize(image)
        with open(image, "r+b") as f:
            for _ in range(4):
                f.seek(rng.randrange(0, size - (64 << 10)) & ~4095)
                f.write(rng.randbytes(64 << 10))
    i18n = os.path.join(root, "usr", "share", "i18n")
    if os.path.isdir(i18n):
        os.rename(i18n, i18n + "-renamed")
    print(
        f"mutate: {len(chosen)} files overwritten, 100 appended, 1000 bytes inserted "
        f"into random/big.bin, 4 x 64 KiB rewritten in image/disk.img",
        file=sys.stderr,
    )


def fixtimes(root):
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (FIXED_TIME, FIXED_TIME), follow_symlinks=False)
    os.utime(root, (FIXED_TIME, FIXED_TIME))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "sample" and len(argv) >= 6:
        sample(argv[2], argv[3], int(argv[4]), argv[5:])
    elif cmd == "small" and len(argv) == 5:
        small(argv[2], argv[3], int(argv[4]))
    elif cmd == "mutate" and len(argv) == 4:
        mutate(argv[2], argv[3])
    elif cmd == "fixtimes" and len(argv) == 3:
        fixtimes(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
