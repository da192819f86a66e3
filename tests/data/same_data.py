#!/usr/bin/python3
"""Writes one small synthetic image-classification set in the three
formats rtrain reads, holding exactly the same model inputs, so that
training from any of them must give bit-identical results:

  idx:  train-images / train-labels / test-images / test-labels (raw idx)
  hdf5: train.h5 and test.h5 with /x uint8 [N, 1, 6, 6] and /y int32 [N]
        (chunked, shuffle + gzip, as rtrain-data convert writes them)
  csv:  train.csv and test.csv, columns p0..p35 holding float32(x) / 255
        (what ToTensor makes of the uint8 pixels, printed so that it reads
        back to the same float32) and "label"

The label is the brightest of four quadrants, so the task is learnable.
Usage: tests/data/same_data.py OUTDIR
"""
import os
import struct
import sys

import h5py
import numpy as np


def idx(path, magic, arr):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in arr.shape:
            f.write(struct.pack(">I", d))
        f.write(arr.astype(np.uint8).tobytes())


def split(rng, n):
    x = rng.integers(0, 256, size=(n, 6, 6), dtype=np.uint8)
    quads = [x[:, :3, :3], x[:, :3, 3:], x[:, 3:, :3], x[:, 3:, 3:]]
    y = np.argmax(np.stack([q.reshape(n, -1).sum(1) for q in quads], 1), 1).astype(np.int32)
    return x, y


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, n in (("train", 240), ("test", 60)):
        x, y = split(rng, n)
        idx(os.path.join(out, name + "-images"), 0x803, x)
        idx(os.path.join(out, name + "-labels"), 0x801, y)
        with h5py.File(os.path.join(out, name + ".h5"), "w") as f:
            f.create_dataset("x", data=x.reshape(n, 1, 6, 6), chunks=(50, 1, 6, 6),
                             shuffle=True, compression="gzip")
            f.create_dataset("y", data=y)
        scaled = x.reshape(n, 36).astype(np.float32) / np.float32(255)
        with open(os.path.join(out, name + ".csv"), "w") as f:
            f.write(",".join(["p%d" % i for i in range(36)] + ["label"]) + "\n")
            for row, label in zip(scaled, y):
                f.write(",".join(repr(float(v)) for v in row) + ",%d\n" % label)


if __name__ == "__main__":
    main()
