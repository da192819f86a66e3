"""Reads an rtrain checkpoint and an `rtrain-ckpt export` file with h5py
only, and compares them bit for bit with raw float32 dumps that the test
program wrote from the same training state without HDF5 (expected.txt
lists names, slab offsets, shapes and the scalar attributes).
Usage: ckpt_h5py.py CHECKPOINT.h5 EXPORT.h5 DUMP_DIR"""
import os
import sys

import h5py
import numpy as np

ckpt_path, export_path, dump_dir = sys.argv[1:4]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def raw(name):
    return np.fromfile(os.path.join(dump_dir, "raw_%s.bin" % name), dtype="<f4")


slots, tensors, attrs = [], [], None
with open(os.path.join(dump_dir, "expected.txt")) as f:
    for line in f:
        w = line.split()
        if w[0] == "attrs":
            attrs = w[1:]
        elif w[0] == "slot":
            slots.append(w[1])
        elif w[0] == "tensor":
            name, slab, off, count, ndim = w[1], w[2], int(w[3]), int(w[4]), int(w[5])
            tensors.append((name, slab, off, count, tuple(int(x) for x in w[6:6 + ndim])))

slabs = {"params": raw("params"), "buffers": raw("buffers")}
slab_of_slot = {s: raw(s) for s in slots}


def text(v):
    """A string attribute: rtrain writes fixed-length UTF-8, which h5py
    gives as bytes (variable-length strings, as str, are accepted too)."""
    return v.decode("utf-8") if isinstance(v, bytes) else v


def same_bits(ds, ref, shape, what):
    check(ds.dtype == np.dtype("<f4"), "%s: dtype %s" % (what, ds.dtype))
    check(ds.shape == shape, "%s: shape %s, expected %s" % (what, ds.shape, shape))
    got = np.asarray(ds[()], dtype="<f4").reshape(-1)
    check(got.tobytes() == ref.tobytes(), "%s: values differ" % what)


with h5py.File(ckpt_path, "r") as f:
    it, step, epoch, next_batch, seed, digest = attrs
    check(text(f.attrs["format"]) == "rtrain-checkpoint", "format attribute")
    check(int(f.attrs["format_version"]) == 1, "format_version")
    check(int(f.attrs["training_iteration"]) == int(it), "training_iteration")
    check(int(f.attrs["step"]) == int(step), "step")
    check(int(f.attrs["epoch"]) == int(epoch), "epoch")
    check(int(f.attrs["world_size"]) == 2, "world_size")
    check(text(f.attrs["config_digest"]) == digest, "config_digest")
    check(int(f["data"].attrs["next_batch"]) == int(next_batch), "next_batch")
    check(int(f["data"].attrs["epoch"]) == int(epoch), "/data epoch")
    check(int(f["rng"].attrs["seed"]) == int(seed), "seed")
    check(int(f["scheduler"].attrs["step"]) == int(step), "scheduler step")
    check(text(f["optimizer"].attrs["type"]) == "adam", "optimizer type")
    check(int(f["optimizer"].attrs["step"]) == int(step), "optimizer step")
    check(abs(float(f.attrs["metric.loss"]) - 1.0 / int(it)) < 1e-15, "metric.loss")
    check(sorted(f["model"].keys()) == sorted(t[0] for t in tensors), "model tensor names")
    for name, slab, off, count, shape in tensors:
        ref = slabs[slab][off:off + count]
        same_bits(f["model"][name], ref, shape, "/model/" + name)
        if slab == "params":
            for s in slots:
                same_bits(f["optimizer"][s][name], slab_of_slot[s][off:off + count], shape,
                          "/optimizer/%s/%s" % (s, name))

with h5py.File(export_path, "r") as f:
    check(sorted(f.keys()) == sorted(t[0] for t in tensors), "export: names %s" % list(f.keys()))
    for name, slab, off, count, shape in tensors:
        same_bits(f[name], slabs[slab][off:off + count], shape, "export " + name)

for what in failures:
    print("FAIL:", what)
print("%d tensors checked, %d failures" % (len(tensors), len(failures)))
sys.exit(1 if failures else 0)
