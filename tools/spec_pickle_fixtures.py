#!/usr/bin/env python3
"""Writes compiler/tests/fixtures/spec/: block-spec pickles as the original system writes them
(a dict layer name -> numpy int array [C, 2]) and the expected blocks as JSON.

Run once with any Python that has numpy (CI does not run it):
    python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy && /tmp/np/bin/python tools/spec_pickle_fixtures.py
"""
import json
import pathlib
import pickle

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "compiler/tests/fixtures/spec"
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)


def mnist_spec(dtype):
    spec = {}
    for name, c, side in [("stem", 16, 28), ("layer1_0_1", 32, 14), ("layer1_1_1", 32, 14),
                          ("layer1_1_2", 32, 14), ("layer2_0_1", 64, 7)]:
        blocks = rng.integers(1, side + 1, size=(c, 2))
        blocks[0] = [1, 1]
        blocks[1] = [0, 1]
        blocks[2] = [1, 0]
        spec[name] = blocks.astype(dtype)
    return spec


def dump(name, spec, protocol):
    with open(OUT / f"{name}.pickle", "wb") as f:
        pickle.dump(spec, f, protocol=protocol)
    expect = {k: np.asarray(v).tolist() for k, v in spec.items()}
    (OUT / f"{name}.json").write_text(json.dumps(expect, sort_keys=True) + "\n")


dump("mnist_int32_p4", mnist_spec(np.int32), 4)
dump("mnist_int64_p5", mnist_spec(np.int64), 5)
dump("mnist_int32_p2", mnist_spec(np.int32), 2)
fortran = {"stem": np.asfortranarray(np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int32))}
dump("fortran_p4", fortran, 4)
big = {"stem": np.array([[2, 3], [0, 1]], dtype=">i4")}
dump("bigendian_p4", big, 4)
lists = {"stem": [[1, 1], [2, 2]], "layer2_0_1": [[0, 1]]}
dump("lists_p4", lists, 4)
(OUT / "SOURCES.txt").write_text(
    f"Written by tools/spec_pickle_fixtures.py with numpy {np.__version__} (pickle protocols 2, 4, 5).\n")
print("numpy", np.__version__, "->", OUT)
