"""safetensors both ways between rtrain and PyTorch (tests/e2e/safetensors_torch.test).

Usage: safetensors_torch.py TMPDIR TOP_BUILDDIR TOP_SRCDIR MPIRUN

1. rtrain -> PyTorch, ResNet-18: a 1-rank rtrain run of
   examples/fashion_mnist_resnet18.cfg (2 steps, so that BatchNorm's running
   statistics have moved), exported with `rtrain-ckpt export --format
   safetensors`, loads into torchvision's resnet18(num_classes=10) (conv1 made
   Conv2d(1, 64, 7, 2, 3, bias=False) for the grey images, as the config and
   tests/gen_fixtures.py have it) with strict=True, and its eval-mode logits
   on 8 test images equal rtrain's (st_logits with model.init_from = the
   checkpoint itself).
2. PyTorch -> rtrain, a CNN with BatchNorm (model.arch = "sequential"):
   weights saved by safetensors.torch.save_file (num_batches_tracked as
   int64) load through model.init_from and give PyTorch's logits.
3. PyTorch -> rtrain through the rtrain program on 2 ranks: an MLP saved
   with safetensors starts a run (model.init_from) that trains one step at
   lr 0 (the weights do not move) and evaluates the whole test set:
   val_loss and val_accuracy equal PyTorch's on the same weights; the same
   run on a backend whose memory stands in for a GPU's
   (RTRAIN_FAULT=device_memory) gives the same numbers.
4. Fine-tuning a new head: the same MLP saved with a 5-class head is
   refused by a 10-class run (exit 2, one message naming both mis-shaped
   tensors), and accepted with model.init_exclude = ["linear_relu_stack.2.*"].

Tolerances. Logits: |rtrain - torch| <= 1e-5 + 1e-4 |torch|: both compute
in float32 but sum in other orders (im2col + sgemm or oneDNN against
PyTorch's kernels); the largest differences measured here were 2.3e-7
(ResNet-18, logits up to 0.14) and 3e-8 (the CNN), so the bound leaves a
margin of about 40 for other BLAS builds. val_loss: 1e-5 relative (float32 per-sample
losses summed in double by both). val_accuracy: at most 2 of the 10000
predictions may differ (an argmax between two logits closer than float32
rounding can go either way).
"""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision
from safetensors.torch import load_file, save_file

tmp, builddir, srcdir, mpirun = sys.argv[1:5]
RTRAIN = os.path.join(builddir, "src/cli/rtrain")
CKPT = os.path.join(builddir, "tools/rtrain-ckpt")
LOGITS = os.path.join(builddir, "tests/unit/st_logits")
DATA = "/usr/share/datasets/fashion-mnist"
failures = []
torch.manual_seed(0)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(cmd, expect=0, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600, env=dict(os.environ, **(env or {})))
    if p.returncode != expect:
        print(p.stdout)
        raise SystemExit("FAIL: %s exited %d, expected %d" % (" ".join(cmd), p.returncode,
                                                                expect))
    return p.stdout


def test_images(n, mean=0.0, std=1.0):
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    x = (x.astype(np.float32) / np.float32(255) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)


def rtrain_logits(x, cfg, *overrides):
    path_in, path_out = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
    x.tofile(path_in)
    n, c, h, w = x.shape
    print(run([LOGITS, path_in, str(n), str(c), str(h), str(w), path_out, cfg] +
              list(overrides)).strip())
    return np.fromfile(path_out, np.float32).reshape(n, -1)


def close(what, got, want, atol=1e-5, rtol=1e-4):
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    print("%s: max |rtrain - torch| = %.3g (max |torch| %.3g)" % (what, err.max(),
                                                                 np.abs(want).max()))
    check(got.shape == want.shape and np.all(err <= atol + rtol * np.abs(want)),
          "%s: logits differ beyond the tolerance" % what)


def resnet18_to_torch():
    cfg = os.path.join(srcdir, "examples/fashion_mnist_resnet18.cfg")
    run([mpirun, "-np", "1", "--bind-to", "none", RTRAIN, cfg, "train.epochs=1",
         "train.steps_per_epoch=2", "data.batch_size=16", "train.eval_every=0",
         "checkpoint.num_to_keep=0", "run.storage_path=" + tmp, "run.name=r18"])
    ckpt = os.path.join(tmp, "r18/checkpoint_000000")
    out = os.path.join(tmp, "r18.safetensors")
    run([CKPT, "export", "--format", "safetensors", ckpt, out])
    sd = load_file(out)
    check(float(sd["bn1.num_batches_tracked"]) == 2, "bn1.num_batches_tracked is not 2")
    check(all(v.dtype == torch.float32 for v in sd.values()), "a tensor is not float32")
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.load_state_dict(sd, strict=True)
    model.eval()
    x, _ = test_images(8, 0.28604, 0.32025)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = rtrain_logits(x, cfg, "model.init_from=" + ckpt)
    close("resnet18 rtrain -> torch", got, want)


CNN_CFG = """model = { arch = "sequential"; layers = (
  { type = "conv2d"; out = 8; kernel = 3; padding = 1; },
  { type = "batchnorm2d"; },
  { type = "relu"; },
  { type = "maxpool2d"; kernel = 2; },
  { type = "flatten"; },
  { type = "linear"; out = 10; } ); };
"""


def cnn_to_rtrain():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 10))
    x, _ = test_images(64)
    model.train()
    with torch.no_grad():   # running statistics that differ from 0/1
        for i in range(3):
            model(torch.from_numpy(x[i * 16:(i + 1) * 16]) * (i + 1))
    model.eval()
    path = os.path.join(tmp, "cnn.safetensors")
    save_file(model.state_dict(), path)
    check(load_file(path)["1.num_batches_tracked"].dtype == torch.int64,
          "PyTorch's num_batches_tracked is not int64")
    cfg = os.path.join(tmp, "cnn.cfg")
    with open(cfg, "w") as f:
        f.write(CNN_CFG)
    with torch.no_grad():
        want = model(torch.from_numpy(x[:8])).numpy()
    close("cnn torch -> rtrain", rtrain_logits(x[:8], cfg, "model.init_from=" + path), want)


def mlp(classes):
    torch.manual_seed(classes)
    return torch.nn.ModuleDict({"linear_relu_stack": torch.nn.Sequential(
        torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, classes),
        torch.nn.ReLU())})


def rtrain_run(name, *overrides, expect=0, env=None):
    cfg = os.path.join(srcdir, "examples/fashion_mnist_mlp.cfg")
    return run([mpirun, "-np", "2", "--oversubscribe", "--bind-to", "none", RTRAIN, cfg,
                "model.hidden=[64]", "train.epochs=1", "train.steps_per_epoch=1",
                "optimizer.lr=0", "scaling.threads_per_worker=1", "run.storage_path=" + tmp,
                "run.name=" + name] + list(overrides), expect, env)


def mlp_through_rtrain():
    model = mlp(10)
    path = os.path.join(tmp, "mlp.safetensors")
    save_file(model.state_dict(), path)
    rtrain_run("mlp", "model.init_from=" + path)
    row = json.loads(open(os.path.join(tmp, "mlp/result.json")).readline())
    x, y = test_images(10000)
    with torch.no_grad():
        out = model["linear_relu_stack"](torch.from_numpy(x).flatten(1))
        losses = torch.nn.functional.cross_entropy(out, torch.from_numpy(y),
                                                   reduction="none").double()
    loss, acc = float(losses.mean()), float((out.argmax(1).numpy() == y).mean())
    print("mlp: val_loss rtrain %.9g torch %.9g, val_accuracy rtrain %.4f torch %.4f"
          % (row["val_loss"], loss, row["val_accuracy"], acc))
    check(abs(row["val_loss"] - loss) <= 1e-5 * loss, "mlp: val_loss differs")
    check(abs(row["val_accuracy"] - acc) <= 2e-4, "mlp: val_accuracy differs")
    # The same where the model's memory is not the host's (a GPU's path:
    # the weights are downloaded, filled and uploaded; test-only stand-in,
    # only in a build with fault injection).
    version = subprocess.run([RTRAIN, "--version"], capture_output=True, text=True).stdout
    if "\nfault injection: on" not in version:
        print("mlp: device-memory stand-in skipped: this build has no fault injection "
              "(configure --enable-fault-injection)")
        return
    rtrain_run("mlp_device", "model.init_from=" + path, env={"RTRAIN_FAULT": "device_memory"})
    dev = json.loads(open(os.path.join(tmp, "mlp_device/result.json")).readline())
    check(dev["val_loss"] == row["val_loss"] and dev["val_accuracy"] == row["val_accuracy"],
          "mlp: device-memory backend gives %r, host %r" % (dev["val_loss"], row["val_loss"]))


def new_head():
    path = os.path.join(tmp, "mlp5.safetensors")
    save_file(mlp(5).state_dict(), path)
    out = rtrain_run("head_refused", "model.init_from=" + path, expect=2)
    lines = [l for l in out.splitlines() if "does not fit the model" in l]
    check(len(lines) == 1 and "shapes differ (2)" in lines[0] and
          "linear_relu_stack.2.weight is [5,64] in the file, [10,64] in the model" in lines[0]
          and "linear_relu_stack.2.bias is [5]" in lines[0],
          "the mis-shaped head is not named in one message: %s" % lines)
    out = rtrain_run("head_new", "model.init_from=" + path,
                     "model.init_exclude=[\"linear_relu_stack.2.*\"]")
    check("2 tensors loaded, 2 kept their fresh initialisation" in out,
          "init_exclude: no message saying what was loaded")


resnet18_to_torch()
cnn_to_rtrain()
mlp_through_rtrain()
new_head()
if failures:
    sys.exit(1)
print("safetensors with PyTorch: ok")
