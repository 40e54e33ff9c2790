#!/usr/bin/env python3
"""Writes graph/tests/fixtures/spec/: block-spec pickles as the original system writes them
(`pickle.dump({layer: numpy int array [C, 2]}, f)`) and, next to each, the blocks NumPy itself
reports as JSON. Files are prefixed with the NumPy major version that wrote them (np1_, np2_),
because NumPy 1.x pickles name `numpy.core.*` and 2.x `numpy._core.*`.

Run it once with each NumPy major version (tests do not run it), from the repository root:
    python3 -m venv /tmp/np1 && /tmp/np1/bin/pip install 'numpy<2' && /tmp/np1/bin/python tools/spec_pickle_fixtures.py
    python3 -m venv /tmp/np2 && /tmp/np2/bin/pip install 'numpy>=2' && /tmp/np2/bin/python tools/spec_pickle_fixtures.py
"""
import json
import pathlib
import pickle

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "graph/tests/fixtures/spec"
OUT.mkdir(parents=True, exist_ok=True)
MAJOR = int(np.__version__.split(".")[0])
PREFIX = f"np{MAJOR}_"
rng = np.random.default_rng(7 + MAJOR)

# The mnist-cnn block-ReLU layers: name, channels, activation side.
MNIST = [("stem", 16, 28), ("layer1_0_1", 32, 14), ("layer1_1_1", 32, 14),
         ("layer1_1_2", 32, 14), ("layer2_0_1", 64, 7)]


def mnist_spec(dtype):
    spec = {}
    for name, c, side in MNIST:
        blocks = rng.integers(1, side + 1, size=(c, 2))
        blocks[0] = [1, 1]  # ReLU
        blocks[1] = [0, 1]  # identity
        blocks[2] = [1, 0]  # zero
        blocks[3] = [side, side]
        spec[name] = blocks.astype(dtype)
    return spec


def dump(name, spec, protocol):
    with open(OUT / f"{PREFIX}{name}.pickle", "wb") as f:
        pickle.dump(spec, f, protocol=protocol)
    expect = {k: np.asarray(v).tolist() for k, v in spec.items()}
    (OUT / f"{PREFIX}{name}.json").write_text(json.dumps(expect, sort_keys=True) + "\n")


for protocol in (2, 4, 5):
    dump(f"mnist_int32_p{protocol}", mnist_spec(np.int32), protocol)
    dump(f"mnist_int64_p{protocol}", mnist_spec(np.int64), protocol)
    # Fortran order: protocol 5 takes the `_frombuffer(..., order='F')` path.
    fortran = np.asfortranarray(np.array([[1, 2], [3, 4], [5, 6], [7, 300]], dtype=np.int32))
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    dump(f"fortran_p{protocol}", {"stem": fortran}, protocol)
# Non-contiguous (a strided view): protocol 5 falls back to `_reconstruct`.
strided = np.arange(1, 25, dtype=np.int64).reshape(6, 4)[::2, 1:3]
assert not strided.flags.c_contiguous and not strided.flags.f_contiguous
dump("strided_p5", {"layer2_0_1": strided}, 5)
dump("bigendian_p4", {"stem": np.array([[2, 3], [0, 1], [65535, 1]], dtype=">i4")}, 4)
dump("uint16_p4", {"stem": np.array([[2, 3], [1, 0]], dtype=np.uint16)}, 4)
dump("empty_p4", {"stem": np.zeros((0, 2), dtype=np.int32)}, 4)
dump("lists_p2", {"stem": [[1, 1], [2, 2]], "layer2_0_1": [[0, 1], (7, 7)]}, 2)
dump("lists_p4", {"stem": [[1, 1], [2, 2]], "layer2_0_1": [[0, 1]]}, 4)

# compiler/tests/cli.rs imports this one by its older, unprefixed name.
if MAJOR == 2:
    for ext in ("pickle", "json"):
        (OUT / f"mnist_int32_p4.{ext}").write_bytes((OUT / f"np2_mnist_int32_p4.{ext}").read_bytes())

# SOURCES.txt keeps one line per NumPy major version.
sources = OUT / "SOURCES.txt"
lines = [l for l in (sources.read_text().splitlines() if sources.exists() else [])
         if l.startswith("np") and not l.startswith(PREFIX)]
lines.append(f"{PREFIX}*: written by tools/spec_pickle_fixtures.py with numpy {np.__version__}"
             f" (pickle protocols 2, 4, 5)")
sources.write_text("\n".join(sorted(lines)) + "\n")
print("numpy", np.__version__, "->", OUT)
