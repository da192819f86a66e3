#!/usr/bin/python3
"""LightGBM's own distributed training in Python, the peer of
bench/gbdt_lightgbm: what a Python user runs to train on P processes of one
machine (socket-based data parallelism: machines=, tree_learner=data,
pre_partition=true), with the same lib_lightgbm.so rtrain loads.

Same semantics as rtrain's gbdt trainer: the last TEST_FRACTION of the CSV
rows are the evaluation split, worker r of P takes rows [r*n/P, (r+1)*n/P)
of the training rows; each worker reads the whole CSV (rtrain's ranks do
too) with numpy.loadtxt; the same parameters (num_threads, seed,
deterministic, force_col_wise, the rest).

  lightgbm_dist.py CSV TARGET TEST_FRACTION WORKERS ROUNDS OUT_DIR KEY=VALUE...

Prints one JSON object from worker 0: load_s (CSV read and the Dataset
built, binning included), round_s (per-round seconds), first_round_end
(time.time() when round 1 ended), save_s (the model saved to OUT_DIR,
LightGBM's text format, once at the end).
"""
import json
import multiprocessing
import os
import socket
import sys
import time


def worker(rank, world, ports, args, out):
    import lightgbm as lgb
    from xgboost_dist import load_shard   # (imports no xgboost)
    path, target, frac, rounds, params, out_dir = args
    params = dict(params, num_machines=world, tree_learner="data", pre_partition=True,
                  machines=",".join("127.0.0.1:%d" % p for p in ports),
                  local_listen_port=ports[rank], verbosity=-1)
    t0 = time.time()
    x, y = load_shard(path, target, frac, rank, world)
    d = lgb.Dataset(x, label=y, params=params).construct()
    load = time.time() - t0
    marks = [time.time()]
    b = lgb.train(params, d, num_boost_round=rounds,
                  callbacks=[lambda env: marks.append(time.time())])
    if rank == 0:
        t1 = time.time()
        b.save_model(os.path.join(out_dir, "model.txt"))
        out.put({"load_s": load, "first_round_end": marks[1], "save_s": time.time() - t1,
                 "round_s": [y - x for x, y in zip(marks, marks[1:])]})


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    path, target, frac, world, rounds, out_dir = sys.argv[1:7]
    params = dict(a.split("=", 1) for a in sys.argv[7:])
    world = int(world)
    socks = [socket.socket() for _ in range(world)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    out = multiprocessing.Queue()
    args = (path, target, float(frac), int(rounds), params, out_dir)
    procs = [multiprocessing.Process(target=worker, args=(r, world, ports, args, out))
             for r in range(world)]
    for p in procs:
        p.start()
    result = out.get()
    for p in procs:
        p.join()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
