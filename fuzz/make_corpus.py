#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/
(committed; run again only to change them): small valid inputs in the
input layout each target's file comment describes.

    /usr/bin/python3 fuzz/make_corpus.py        (from the source tree; needs h5py)
"""
import gzip
import json
import os
import struct
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)   # mtime 0: the same bytes every run


# ---- csv: one options byte, then the file (see fuzz/fuzz_csv.c) ----------------
CLASS, VECTOR = 0x00, 0x01
FILL_ZERO, FILL_MEAN = 0x02, 0x04
TRAIN, TEST, HALF = 0x08, 0x10, 0x18
CATEGORICAL, FEATURES, ENCODING = 0x20, 0x40, 0x80

numeric = b"y,a,b\n" + b"".join(b"%d,%g,%d\n" % (i % 3, i * 0.5, 10 - i) for i in range(10))
regression = (b"a,b,y\n1.5,2,0.25\n-3e2,,1\n4,5.5,2.5\n, 7,-1\n8,9,1e3\n"
              b"0.1,0.2,0.3\n1,1,1\n2,2,2\n")
quoted = (b'a,"c","y"\n'
          b'1,"p, with comma",yes\n'
          b'2,"q ""quoted""",no\n'
          b'3,"line\nbreak",yes\n'
          b'4,p,"no"\n'
          b'5,,yes\n')
crlf = b"\xef\xbb\xbfy,a,b\r\n0,1,2\r\n\r\n1,3,\r\n2,\"5\",6\r\n"
encoding = (b'{"format":"csv","target":"y","target_kind":"class","classes":["no","yes"],'
            b'"features":[{"name":"a"},{"name":"c","categories":["p","q"]}]}')
put("csv", "numeric-class", bytes([CLASS]) + numeric)
put("csv", "regression-mean", bytes([VECTOR | FILL_MEAN | TRAIN]) + regression)
put("csv", "quoted-categorical", bytes([CATEGORICAL | FEATURES | FILL_ZERO]) + quoted)
put("csv", "quoted-categorical-gz", bytes([CATEGORICAL | FEATURES | FILL_ZERO]) + gz(quoted))
put("csv", "crlf-bom-blank", bytes([FILL_ZERO | TEST]) + crlf)
put("csv", "given-encoding", bytes([ENCODING | CATEGORICAL | FEATURES | FILL_ZERO])
    + encoding + b"\0" + quoted)
put("csv", "regression-half-gz", bytes([VECTOR | HALF | FILL_ZERO]) + gz(regression))

# ---- hdf5: the file, then one options byte (see fuzz/fuzz_hdf5.c) --------------
H5_VECTOR = 0x01
H5_TRAIN, H5_TEST = 0x02, 0x04
H5_GROUP = 0x10
H5_STREAM, H5_NODE = 0x20, 0x40


def h5(build):
    path = os.path.join(HERE, "corpus", ".tmp.h5")
    with h5py.File(path, "w", libver="earliest") as f:
        build(f)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def classes(f):
    f.create_dataset("x", data=np.arange(32, dtype=np.float32).reshape(8, 4) / 7,
                     track_times=False)
    f.create_dataset("y", data=np.arange(8, dtype=np.int64) % 3, track_times=False)


def grouped(f):   # uint8 images, chunked and compressed, vector targets, in a group
    g = f.create_group("g", track_order=False)
    g.create_dataset("x", data=np.arange(6 * 2 * 9, dtype=np.uint8).reshape(6, 2, 3, 3),
                     chunks=(2, 2, 3, 3), compression="gzip", shuffle=True,
                     track_times=False)
    g.create_dataset("y", data=np.linspace(-1, 1, 12).reshape(6, 2), track_times=False)


def compact(f):   # 1-D int16 inputs stored in the object header, [N, 1] labels
    space = h5py.h5s.create_simple((5,))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    dcpl.set_obj_track_times(False)
    d = h5py.h5d.create(f.id, b"x", h5py.h5t.STD_I16LE, space, dcpl=dcpl)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([3, -1, 4, 1, -5], dtype=np.int16))
    f.create_dataset("y", data=np.array([[0], [1], [1], [0], [2]], dtype=np.int32),
                     track_times=False)


put("hdf5", "classes-cached", h5(classes) + bytes([0]))
put("hdf5", "classes-streamed-test", h5(classes) + bytes([H5_STREAM | H5_TEST]))
put("hdf5", "group-u8-gzip-vector-node", h5(grouped)
    + bytes([H5_GROUP | H5_VECTOR | H5_TRAIN | H5_NODE]))
put("hdf5", "compact-i16-node", h5(compact) + bytes([H5_NODE]))

# ---- idx: 2-byte big-endian images length, images, labels (fuzz/fuzz_idx.c) -----
images = struct.pack(">IIII", 0x803, 3, 4, 4) + bytes(range(0, 240, 5))
labels = struct.pack(">II", 0x801, 3) + bytes([0, 9, 4])


def idx(im, lb):
    return struct.pack(">H", len(im)) + im + lb


put("idx", "raw", idx(images, labels))
put("idx", "gzip", idx(gz(images), gz(labels)))
put("idx", "raw-images-gzip-labels", idx(images, gz(labels)))
put("idx", "one-1x1", idx(struct.pack(">IIII", 0x803, 1, 1, 1) + b"\x7f",
                          struct.pack(">II", 0x801, 1) + b"\x01"))

# ---- config: the file, then NUL-separated overrides (fuzz/fuzz_config.c) --------
def example(name):
    with open(os.path.join(TOP, "examples", name), "rb") as f:
        return f.read()


put("config", "mnist_mlp", example("mnist_mlp.cfg"))
put("config", "cnn-overrides", example("fashion_mnist_cnn.cfg")
    + b"\0optimizer.lr=0.01\0train.epochs=2\0data.dir=/tmp")
put("config", "breast_cancer", example("breast_cancer.cfg"))
put("config", "diabetes-overrides", example("diabetes_linear.cfg")
    + b"\0data.batch_size=8\0data.features=[\"age\", \"bmi\"]\0run.name=2024")
put("config", "resnet18", example("fashion_mnist_resnet18.cfg"))
put("config", "empty-overrides", b"# no settings\n\0optimizer.type=sgd\0optimizer.momentum=0.9"
    b"\0schedule.type=cosine\0comm.bucket_mb=4")

# ---- safetensors: the whole file (fuzz/fuzz_safetensors.c) ------------------------
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


put("safetensors", "mlp-f32", safetensors(
    [("linear_relu_stack.0.weight", "F32", [2, 3], struct.pack("<6f", *range(6))),
     ("linear_relu_stack.0.bias", "F32", [2], struct.pack("<2f", 0.5, -0.5))],
    {"format": "pt"}))
put("safetensors", "bn-mixed", safetensors(
    [("1.num_batches_tracked", "I64", [], struct.pack("<q", 3)),
     ("1.running_mean", "F16", [2], struct.pack("<2H", 0x3c00, 0xbc00)),
     ("1.running_var", "BF16", [2], struct.pack("<2H", 0x3f80, 0x4000)),
     ("1.weight", "F64", [2], struct.pack("<2d", 1.0, 2.0)),
     ("mask", "BOOL", [1, 2], b"\x01\x00"),
     ("small", "I8", [3], b"\xff\x00\x01")]))
put("safetensors", "empty", safetensors([]))

sys.exit(0)
