#!/usr/bin/env python3
"""Writes MNIST's IDX files as class folders of greyscale PNGs (`OUT/train/<digit>/<i>.png`,
`OUT/val/<digit>/<i>.png`): the `folders` dataset layout, which ksnn resizes and centre-crops
to any model's input (grey becomes three equal channels). It lets an imported RGB model such
as MobileNetV3-small at 64x64 train and run on the digits `tools/setup.sh` installs.

    python3 tools/mnist_folders.py data/mnist OUT [--train N] [--val N]

The first N images of each split (default: all). Standard library only.
"""
import argparse
import struct
import zlib
from pathlib import Path


def read_idx(path):
    data = Path(path).read_bytes()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x00000803:
        rows, cols = struct.unpack(">II", data[8:16])
        size = rows * cols
        return [data[16 + i * size:16 + (i + 1) * size] for i in range(n)], (rows, cols)
    if magic == 0x00000801:
        return list(data[8:8 + n]), None
    raise SystemExit(f"{path}: not an MNIST IDX file (magic {magic:#x})")


def png(pixels, rows, cols):
    """An 8-bit greyscale PNG, filter 0 on every row."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + pixels[r * cols:(r + 1) * cols] for r in range(rows))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mnist", type=Path, help="folder with the four IDX files")
    ap.add_argument("out", type=Path, help="where train/ and val/ are written")
    ap.add_argument("--train", type=int, default=None, help="training images (default all)")
    ap.add_argument("--val", type=int, default=None, help="validation images (default all)")
    a = ap.parse_args()
    for split, prefix, limit in [("train", "train", a.train), ("val", "t10k", a.val)]:
        images, (rows, cols) = read_idx(a.mnist / f"{prefix}-images-idx3-ubyte")
        labels, _ = read_idx(a.mnist / f"{prefix}-labels-idx1-ubyte")
        n = len(images) if limit is None else min(limit, len(images))
        for d in range(10):
            (a.out / split / str(d)).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (a.out / split / str(labels[i]) / f"{i:05d}.png").write_bytes(png(images[i], rows, cols))
        print(f"{split}: {n} images in {a.out / split}")


if __name__ == "__main__":
    main()
