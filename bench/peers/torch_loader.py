#!/usr/bin/python3
"""PyTorch peer of bench/bench_loader for bench/run: a DataLoader over an HDF5 file held in memory.

Each rank (plain processes, gloo, as the other peers) reads the file's
inputs and targets with h5py into memory and turns them into tensors the
way a PyTorch user would: inputs float32 (8-bit pixels divided by 255, as
ToTensor), targets int64, in a TensorDataset; that is the timed "open". It
then reads Rss and Pss of the process from /proc/self/smaps_rollup (as
bench_loader does) and, for each --workers value, makes a DataLoader over
the dataset with a DistributedSampler (shuffle on; each rank takes its
share) and batch_size = global batch / ranks, and runs --epochs epochs,
timing only the next() calls on the loader's iterator. workers 0 loads in
the calling process (DataLoader's default, no prefetching); workers N > 0
uses N worker processes with prefetch_factor 2 (the nearest thing to
rtrain's prefetch 2).

Writes one JSON line per workers value to --out (rank 0), with
bench_loader's keys: open_s (slowest rank), next_s and samples_per_s_rank
per epoch (the slowest rank's), samples_per_s_rank_mean (mean over ranks),
pss_mib_sum, rss_mib_max, open_pss_mib_sum (Pss of the open summed over
ranks).
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads_early(sys.argv)


def mem_now():
    """(Rss, Pss) of this process in MiB."""
    rss = pss = -1.0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024.0
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024.0
    return rss, pss


def reduce(d, values, op):
    """values (floats) reduced over the ranks with op ('sum' or 'max')."""
    import torch
    t = torch.tensor(values, dtype=torch.float64)
    if d.dist:
        d.dist.all_reduce(t, op=d.dist.ReduceOp.SUM if op == "sum" else d.dist.ReduceOp.MAX)
    return t.tolist()


def barrier(d):
    if d.dist:
        d.dist.barrier()


def open_dataset(path, x_name, y_name):
    import h5py
    import numpy as np
    import torch
    from torch.utils.data import TensorDataset
    with h5py.File(path, "r") as f:
        x = f[x_name][()]
        y = f[y_name][()]
    xt = torch.from_numpy(x)
    xt = xt.float().div_(255.0) if x.dtype == np.uint8 else xt.float()
    return TensorDataset(xt, torch.from_numpy(y.astype(np.int64)))


def run_epochs(ds, d, args, workers):
    """Per epoch: seconds in next() and samples of this rank."""
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler
    sampler = DistributedSampler(ds, num_replicas=d.world, rank=d.rank, shuffle=True,
                                 seed=args.seed)
    extra = {"prefetch_factor": 2, "persistent_workers": True} if workers > 0 else {}
    loader = DataLoader(ds, batch_size=args.batch // d.world, sampler=sampler,
                        num_workers=workers, **extra)
    out = []
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        barrier(d)
        it = iter(loader)
        secs, n = 0.0, 0
        while True:
            t0 = time.perf_counter()
            try:
                x, _ = next(it)
            except StopIteration:
                secs += time.perf_counter() - t0
                break
            secs += time.perf_counter() - t0
            n += x.shape[0]
        out.append((secs, n))
    del loader
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--file", required=True, help="HDF5 file (rtrain-data convert output)")
    p.add_argument("--x", default="/x")
    p.add_argument("--y", default="/y")
    p.add_argument("--batch", type=int, default=256, help="global batch (split over ranks)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", default="0,1",
                   help="comma-separated DataLoader num_workers values, one run each")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="JSON lines written here by rank 0")
    args = p.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    d = common.Dist()
    before = mem_now()
    barrier(d)
    t0 = time.perf_counter()
    ds = open_dataset(args.file, args.x, args.y)
    open_s = time.perf_counter() - t0
    after = mem_now()
    open_s, rss_max = reduce(d, [open_s, after[0]], "max")
    pss, open_pss = reduce(d, [after[1], after[1] - before[1]], "sum")
    lines = []
    for w in [int(v) for v in args.workers.split(",") if v]:
        per_epoch = run_epochs(ds, d, args, w)
        rec = {"name": "torch DataLoader, %d worker%s" % (w, "" if w == 1 else "s"),
               "workers": w, "ranks": d.world, "samples": len(ds), "global_batch": args.batch,
               "epochs": args.epochs, "open_s": open_s, "pss_mib_sum": pss,
               "rss_mib_max": rss_max, "open_pss_mib_sum": open_pss,
               "next_s": [], "samples_per_s_rank": [], "samples_per_s_rank_mean": []}
        for secs, n in per_epoch:
            sps = n / secs if secs > 0 else 0.0
            slow, neg_fast = reduce(d, [secs, -sps], "max")
            total, = reduce(d, [sps], "sum")
            rec["next_s"].append(slow)
            rec["samples_per_s_rank"].append(-neg_fast)
            rec["samples_per_s_rank_mean"].append(total / d.world)
        lines.append(rec)
    if d.rank == 0:
        with open(args.out, "w") as f:
            for rec in lines:
                f.write(json.dumps(rec) + "\n")
    d.finish(0)


if __name__ == "__main__":
    main()
