#!/usr/bin/python3
"""PyTorch peer of bench/bench_ckpt for bench/run: torch.save / torch.load.

Builds the same training state as rtrain's benchmark and times one
torch.save of {"model": state_dict, "optimizer": Adam state_dict} followed by
flush and os.fsync (rtrain's save is durable, so this one must be too), then
torch.load of that file (it was just written: the read may come from the
page cache, as for rtrain and dd). --state resnet18: torchvision ResNet18
with a 1-channel 7x7/2 conv1, 10 classes, after one Adam step (exp_avg and
exp_avg_sq allocated), ~134 MB. --state MIB: the Linear stack bench_ckpt
builds (L square bias-free layers of width D, parameters + 2 Adam slabs
~ MIB MiB). Writes one JSON line to --out; the file goes to --dir.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads_early(sys.argv)


def build(state):
    import torch
    from torch import nn
    if state == "resnet18":
        import torchvision
        model = torchvision.models.resnet18(num_classes=10)
        model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        # Same shapes as sized_spec() in bench/bench_ckpt.c.
        params = float(state) * 1048576.0 / 12.0
        layers = max(1, min(64, math.ceil(params / 16777216.0)))
        d = int(math.floor(math.sqrt(params / layers)))
        model = nn.Sequential(*[nn.Linear(d, d, bias=False) for _ in range(layers)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e-3)
    opt.step()  # allocates exp_avg, exp_avg_sq
    return model, opt


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state", required=True, help="resnet18 or a size in MiB")
    p.add_argument("--dir", required=True, help="directory for the checkpoint file")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="JSON line written here")
    p.add_argument("--epochs", type=int, help="ignored (bench/run passes it to every peer)")
    p.add_argument("--seed", type=int, help="ignored (bench/run passes it to every peer)")
    args = p.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    model, opt = build(args.state)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    nbytes += sum(v.numel() * v.element_size() for s in opt.state_dict()["state"].values()
                  for v in s.values() if torch.is_tensor(v) and v.dim() > 0)
    path = os.path.join(args.dir, "torch_ckpt.pt")
    tw, tr = [], []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        tw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = torch.load(path)
        tr.append(time.perf_counter() - t0)
        del back
        os.unlink(path)
    w, r = statistics.median(tw), statistics.median(tr)
    with open(args.out, "w") as f:
        f.write(json.dumps({"state": args.state, "bytes": nbytes, "write_s": w, "read_s": r,
                            "write_gb_s": nbytes / w / 1e9, "read_gb_s": nbytes / r / 1e9})
                + "\n")


if __name__ == "__main__":
    main()
