#!/usr/bin/python3
"""XGBoost's own distributed training in Python, the peer of bench/gbdt_xgboost:
what a Python user runs to train on P processes of one machine without Ray
or Dask (xgboost.RabitTracker, xgboost.collective, xgboost.train).

Same semantics as rtrain's gbdt trainer: the last TEST_FRACTION of the CSV
rows are the evaluation split, worker r of P takes rows [r*n/P, (r+1)*n/P)
of the training rows; each worker reads the whole CSV (rtrain's ranks do
too) with numpy.loadtxt (all columns numbers, one header row); the same
parameters (nthread, seed, the rest).

  xgboost_dist.py CSV TARGET TEST_FRACTION WORKERS ROUNDS KEY=VALUE...

Prints one JSON object: load_s (worker 0: CSV to DMatrix), per-round
seconds of worker 0 (round_s), first_round_end (time.time() when worker 0
finished round 1).
"""
import json
import math
import multiprocessing
import sys
import time


def load_shard(path, target, frac, rank, world):
    """Worker rank's training rows of the CSV: features, labels (float32)."""
    import numpy as np
    with open(path) as f:
        t = f.readline().strip().split(",").index(target)
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    n = int(math.floor((1.0 - frac) * len(table)))
    part = table[n * rank // world:n * (rank + 1) // world]
    return np.delete(part, t, axis=1), part[:, t]


def worker(rank, world, envs, args, out):
    import xgboost as xgb
    from xgboost import collective
    path, target, frac, rounds, params = args
    with collective.CommunicatorContext(**envs, DMLC_TASK_ID=str(rank)):
        t0 = time.time()
        x, y = load_shard(path, target, frac, rank, world)
        d = xgb.DMatrix(x, label=y, nthread=int(params["nthread"]))
        load = time.time() - t0
        marks = []

        class Clock(xgb.callback.TrainingCallback):
            def before_training(self, model):
                marks.append(time.time())
                return model

            def after_iteration(self, model, epoch, evals_log):
                marks.append(time.time())
                return False

        xgb.train(params, d, num_boost_round=rounds, callbacks=[Clock()])
        if rank == 0:
            out.put({"load_s": load, "first_round_end": marks[1],
                     "round_s": [b - a for a, b in zip(marks, marks[1:])]})


def main():
    from xgboost import RabitTracker
    path, target, frac, world, rounds = sys.argv[1:6]
    params = dict(a.split("=", 1) for a in sys.argv[6:])
    world = int(world)
    tracker = RabitTracker(host_ip="127.0.0.1", n_workers=world, sortby="task")
    tracker.start(world)
    envs = tracker.worker_envs()
    out = multiprocessing.Queue()
    args = (path, target, float(frac), int(rounds), params)
    procs = [multiprocessing.Process(target=worker, args=(r, world, envs, args, out))
             for r in range(world)]
    for p in procs:
        p.start()
    result = out.get()
    for p in procs:
        p.join()
    tracker.join()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
