#!/usr/bin/python3
"""PyTorch peer of bench/bench_allreduce for bench/run: gloo all_reduce.

torch.distributed all_reduce (SUM, gloo, CPU) of one float32 tensor of each
gradient size rtrain's benchmark reduces: the MLP 784-512-512-10 (669,706
floats) and the FashionMNIST ResNet18 (11,175,370 floats). This is what DDP
over gloo has to move per step (DDP cuts it into 25 MiB buckets; one call of
the whole size is gloo's best case). Two warm-up calls, then --reps timed
calls between barriers; rank 0 writes one JSON line per model to --out with
the median seconds. Launched by bench/run with RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT in the environment.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads_early(sys.argv)

SIZES = (("mlp", 669706), ("resnet18", 11175370))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=10, help="timed calls per size")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--out", required=True, help="JSON lines written here by rank 0")
    p.add_argument("--epochs", type=int, help="ignored (bench/run passes it to every peer)")
    p.add_argument("--seed", type=int, help="ignored (bench/run passes it to every peer)")
    args = p.parse_args()
    import torch
    import torch.distributed as dist
    torch.set_num_threads(args.threads)
    d = common.Dist()
    out = open(args.out, "w") if d.rank == 0 else None
    for name, count in SIZES:
        t = torch.full((count,), 1e-3, dtype=torch.float32)
        times = []
        for r in range(-2, args.reps):
            if d.dist:
                dist.barrier()
            t0 = time.perf_counter()
            if d.dist:
                dist.all_reduce(t)
            dt = time.perf_counter() - t0
            if r >= 0:
                times.append(dt)
        if out:
            out.write(json.dumps({"model": name, "ranks": d.world, "grad_bytes": count * 4,
                                  "reps": args.reps,
                                  "allreduce_s": statistics.median(times)}) + "\n")
    if out:
        out.close()
    d.finish(0)


if __name__ == "__main__":
    main()
