#!/usr/bin/python3
"""Writes the PyTorch reference fixtures for tests/unit/test_reference.c.

Run with Debian's interpreter (torch 1.13 CPU, torchvision 0.14) from the
repository root:

    /usr/bin/python3 tests/gen_fixtures.py [outdir]      # default tests/fixtures

The output is deterministic (torch.manual_seed) and committed, so the C test
needs no Python. Parameters and inputs are drawn in float32; the reference
computation itself runs in float64 (model.double()) and is rounded to
float32 when written, so a fixture value is the exact answer to within half
a float32 ulp and the C test's tolerances measure only rtrain's own rounding.

Binary format (ref_*.bin), all little-endian, a sequence of records until
end of file:
    uint16  name_len          bytes of the name that follow (1..255)
    bytes   name              not NUL-terminated
    uint8   ndim              0..4 (0: a scalar, one value)
    int32   dims[ndim]        each >= 1
    float32 data[prod(dims)]  row-major (C order)
Integer tensors (labels, num_batches_tracked) are stored as float32; they
are small enough to be exact.

Record names used by the cases:
    input, labels, output, loss         the step's data and results
    dout                                d(loss)/d(output) when loss = sum(output * dout)
    grad_input                          d(loss)/d(input)
    state/<state_dict name>             every state_dict tensor before the step
    after/<state_dict name>             every buffer after the forward (train mode)
    grad/<parameter name>               d(loss)/d(parameter)

Cases:
    ref_mlp.bin        Flatten + Linear(784,32) + ReLU + Linear(32,10), named as
                       rtrain's mlp arch; input [4,1,28,28]; mean cross entropy.
    ref_conv.bin       nn.Sequential(Conv2d(3,8,3,2,1), BatchNorm2d(8), ReLU,
                       MaxPool2d(3,2,1), Conv2d(8,4,1), Flatten, Linear(36,5)),
                       train mode, input [3,3,11,9]; mean cross entropy.
    ref_basicblock.bin torchvision BasicBlock(16, 32, stride 2, 1x1 downsample),
                       wrapped in nn.Sequential so names start with "0.";
                       train mode, input [2,16,7,7]; loss = sum(out * dout).
    ref_resnet18.txt + ref_resnet18.bin
                       torchvision resnet18(num_classes=10) with
                       conv1 = Conv2d(1,64,7,2,3,bias=False). Its 11M parameters
                       are too big to commit, so both sides fill them from an
                       integer hash (see fill_hashed); the text file lists, per
                       state_dict tensor in order, one line
                           <name> <param|buffer> <ndim> <dims...> <seed> <base> <scale>
                       and value i of the tensor is base + u(seed, i) * scale
                       in float32. The .bin holds the input [2,1,28,28] and the
                       eval-mode logits.
"""
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision


def write_records(path, records):
    """records: list of (name, tensor-like). Writes the format above."""
    with open(path, "wb") as f:
        for name, value in records:
            a = np.array(value.detach().cpu().double().numpy() if torch.is_tensor(value)
                         else value, dtype=np.float64, order="C").astype("<f4")
            nb = name.encode()
            assert 0 < len(nb) < 256 and a.ndim <= 4
            f.write(struct.pack("<H", len(nb)) + nb)
            f.write(struct.pack("<B", a.ndim))
            f.write(struct.pack("<%di" % a.ndim, *a.shape))
            f.write(a.tobytes())
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


# Records are copied when taken: the forward pass updates buffers in place.
def state_records(model, prefix):
    return [(prefix + k, v.detach().clone()) for k, v in model.state_dict().items()]


def buffer_records(model, prefix):
    return [(prefix + k, v.detach().clone()) for k, v in model.named_buffers()]


def grad_records(model):
    return [("grad/" + k, p.grad) for k, p in model.named_parameters()]


def case_mlp(outdir):
    torch.manual_seed(1)

    class MLP(nn.Module):
        # The getting-started model, with the sizes of rtrain's mlp arch.
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(
                nn.Linear(28 * 28, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            return self.linear_relu_stack(self.flatten(x))

    model = MLP()
    x = torch.randn(4, 1, 28, 28)
    labels = torch.tensor([3, 0, 9, 3])
    records = [("input", x), ("labels", labels)] + state_records(model, "state/")
    model.double()
    out = model(x.double())
    loss = nn.functional.cross_entropy(out, labels)
    loss.backward()
    records += [("output", out), ("loss", loss)] + grad_records(model)
    write_records(os.path.join(outdir, "ref_mlp.bin"), records)


def case_conv(outdir):
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=True), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 4, 1), nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    # Non-trivial affine and running statistics, so that the momentum
    # update and the use of gamma/beta are visible in the results.
    with torch.no_grad():
        bn = model[1]
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.num_batches_tracked.fill_(3)
    model.train()
    x = torch.randn(3, 3, 11, 9)
    labels = torch.tensor([4, 1, 1])
    records = [("input", x), ("labels", labels)] + state_records(model, "state/")
    model.double()
    out = model(x.double())
    loss = nn.functional.cross_entropy(out, labels)
    loss.backward()
    records += [("output", out), ("loss", loss)] + grad_records(model)
    records += buffer_records(model, "after/")
    write_records(os.path.join(outdir, "ref_conv.bin"), records)


def case_basicblock(outdir):
    torch.manual_seed(3)
    from torchvision.models.resnet import BasicBlock, conv1x1
    down = nn.Sequential(conv1x1(16, 32, 2), nn.BatchNorm2d(32))
    # rtrain's sequential arch names its one layer "0", as nn.Sequential does.
    model = nn.Sequential(BasicBlock(16, 32, stride=2, downsample=down))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    model.train()
    x = torch.randn(2, 16, 7, 7)
    records = [("input", x)] + state_records(model, "state/")
    model.double()
    xd = x.double().requires_grad_(True)
    out = model(xd)
    dout = torch.randn(out.shape, dtype=torch.float32)
    loss = (out * dout.double()).sum()
    loss.backward()
    records += [("output", out), ("dout", dout), ("loss", loss), ("grad_input", xd.grad)]
    records += grad_records(model) + buffer_records(model, "after/")
    write_records(os.path.join(outdir, "ref_basicblock.bin"), records)


def hash_u32(seed, n):
    """lowbias32 of (i * 0x9E3779B1 + seed * 0x85EBCA77) mod 2^32, i = 0..n-1."""
    m = np.uint64(0xFFFFFFFF)
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1)
         + np.uint64(seed * 0x85EBCA77 & 0xFFFFFFFF)) & m
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & m
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & m
    x ^= x >> np.uint64(16)
    return x


def fill_hashed(seed, n, base, scale):
    """Value i = base + u * scale, u = ((h(seed,i) mod 2001) - 1000) / 1000,
    every operation in float32 (the C test repeats it bit for bit)."""
    q = (hash_u32(seed, n) % np.uint64(2001)).astype(np.int64) - 1000
    u = q.astype(np.float32) / np.float32(1000)
    return u * np.float32(scale) + np.float32(base)


def resnet18_init(name, shape):
    """(base, scale) per tensor: He-like convolutions, BN near identity."""
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    leaf = name.rsplit(".", 1)[1]
    if name.startswith("fc."):
        return 0.0, 1.0 / math.sqrt(512)
    if len(shape) == 4:
        return 0.0, math.sqrt(6.0 / fan_in)
    return {"weight": (1.0, 0.2), "bias": (0.0, 0.1), "running_mean": (0.0, 0.1),
            "running_var": (1.0, 0.5), "num_batches_tracked": (7.0, 0.0)}[leaf]


def case_resnet18(outdir):
    torch.manual_seed(4)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    params = dict(model.named_parameters())
    lines = []
    with torch.no_grad():
        for seed, (name, t) in enumerate(model.state_dict().items(), start=1):
            shape = list(t.shape)
            base, scale = resnet18_init(name, shape)
            base, scale = np.float32(base), np.float32(scale)
            v = fill_hashed(seed, t.numel(), base, scale).reshape(shape)
            t.copy_(torch.from_numpy(v))   # state_dict shares storage
            kind = "param" if name in params else "buffer"
            lines.append("%s %s %d %s %d %.9g %.9g" % (
                name, kind, len(shape), " ".join(str(d) for d in shape), seed, base, scale))
    with open(os.path.join(outdir, "ref_resnet18.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    model.eval()
    x = torch.randn(2, 1, 28, 28)
    model.double()
    with torch.no_grad():
        out = model(x.double())
    write_records(os.path.join(outdir, "ref_resnet18.bin"), [("input", x), ("output", out)])
    print("resnet18 logits:", out.numpy().round(3).tolist())


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "fixtures")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    case_mlp(outdir)
    case_conv(outdir)
    case_basicblock(outdir)
    case_resnet18(outdir)


if __name__ == "__main__":
    main()
