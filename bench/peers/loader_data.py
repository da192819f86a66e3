#!/usr/bin/python3
"""Input files of the loader workload of bench/run, from FashionMNIST's idx files.

Writes into --dir (the harness's scratch directory, never the source tree):
  train.csv     784 pixel columns p0..p783 (integers 0-255) and a last
                column "label", one row per training image, with a header;
  x_f32.npy     the training images as float32 [N, 1, 28, 28] = pixel / 255
  y.npy         the labels as int32 [N]
(bench/run converts the .npy pair to HDF5 with rtrain-data convert, as it
converts the idx files themselves.) --limit N keeps the first N images
(bench/run --quick). Prints one JSON line with the files and their sizes.
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def write_csv(path, x, y):
    """Integers as text through a table of the 256 spellings (numpy's
    savetxt formats every value on its own and takes far longer)."""
    import numpy as np
    spell = np.array([str(i) for i in range(256)], dtype=object)
    n, width = x.shape[0], x.shape[1] * x.shape[2]
    flat = x.reshape(n, width)
    with open(path, "w") as f:
        f.write(",".join(["p%d" % i for i in range(width)] + ["label"]) + "\n")
        for i in range(n):
            f.write(",".join(spell[flat[i]]) + "," + str(int(y[i])) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=common.DATA_DIR)
    p.add_argument("--dir", required=True, help="where the files go")
    p.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    p.add_argument("--no-csv", action="store_true")
    p.add_argument("--no-float", action="store_true")
    args = p.parse_args()
    import numpy as np
    x = common.read_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte"))
    y = common.read_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte"))
    if args.limit > 0:
        x, y = x[:args.limit], y[:args.limit]
    out = {"samples": int(x.shape[0])}
    t0 = time.perf_counter()
    if not args.no_csv:
        path = os.path.join(args.dir, "train.csv")
        write_csv(path, x, y)
        out["csv"], out["csv_bytes"] = path, os.path.getsize(path)
    if not args.no_float:
        xp, yp = os.path.join(args.dir, "x_f32.npy"), os.path.join(args.dir, "y.npy")
        np.save(xp, (x.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28))
        np.save(yp, y.astype(np.int32))
        out["x_npy"], out["y_npy"] = xp, yp
    out["seconds"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
