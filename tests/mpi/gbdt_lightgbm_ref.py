#!/usr/bin/python3
"""LightGBM's own distributed training, the reference of gbdt_lightgbm.test.

  table SKLEARN_CSV KIND OUT      -> writes a table (binary: int64 rows, int64
                                     cols, float32 x[rows][cols], float32
                                     y[rows]) from one of scikit-learn's
                                     bundled tables (KIND: cancer, wine,
                                     diabetes)
  train TABLE OBJECTIVE NUM_CLASS ROUNDS RANK PORTS OUT
                                  -> one of two processes of LightGBM's
                                     socket-based data-parallel training
                                     (machines=, num_machines=2,
                                     tree_learner=data, pre_partition=true) on
                                     this rank's contiguous shard of the
                                     training rows; writes the model string to
                                     OUT and the transformed predictions of
                                     its validation shard (float64) to
                                     OUT.pred. PORTS "single": one process on
                                     all rows (num_machines=1, tree_learner=
                                     serial), RANK 0.
  csv-train CSV TARGET TEST_FRACTION WORKERS ROUNDS OUT KEY=VALUE...
                                  -> the same socket-based training of
                                     rtrain's shards of a CSV table, as
                                     tests/e2e/gbdt_lightgbm.test runs
                                     rtrain: the rows and class encoding of
                                     tests/gbdt/xgboost_reference.py's load
                                     (rtrain's data.test_fraction and sorted
                                     class names), WORKERS processes (free
                                     loopback ports), the parameters
                                     KEY=VALUE besides the network's; worker
                                     0 writes the model string to OUT.
  same-model OURS REF [TREES]      -> exit 1 unless the two model texts
                                     have the same trees (TREES of them,
                                     when given) and the same parameters,
                                     but for those only the socket-based
                                     training sets or Python sets for itself:
                                     machines, local_listen_port, time_out
                                     (its network) and num_iterations
                                     (lgb.train's num_boost_round; rtrain
                                     counts rounds itself).
  csv-metrics CSV TARGET TEST_FRACTION MODEL TASK
                                  -> sklearn's metrics (JSON) of the
                                     predictions of MODEL, loaded with
                                     lightgbm.Booster(model_file=...), on
                                     the whole evaluation split in one
                                     process; TASK binary, multiclass or
                                     regression. The float64 predictions are
                                     rounded to float32 first, as rtrain's
                                     are.

The split and the shards are those of the C test (test_gbdt_lightgbm.c):
training rows are the first floor(0.8 * rows), validation rows the rest;
rank r of P holds rows [r * n / P, (r + 1) * n / P) of each.
"""
import gzip
import os
import sys

import numpy as np


def write_table(path, x, y):
    x = np.ascontiguousarray(x, dtype=np.float32)
    with open(path, "wb") as f:
        np.array(x.shape, dtype=np.int64).tofile(f)
        x.tofile(f)
        np.ascontiguousarray(y, dtype=np.float32).tofile(f)


def read_table(path):
    with open(path, "rb") as f:
        rows, cols = np.fromfile(f, dtype=np.int64, count=2)
        x = np.fromfile(f, dtype=np.float32, count=rows * cols).reshape(rows, cols)
        y = np.fromfile(f, dtype=np.float32, count=rows)
    return x, y


def table(src, kind, out):
    if kind == "diabetes":
        # diabetes_data_raw.csv.gz (space separated) + diabetes_target.csv.gz
        x = np.loadtxt(gzip.open(src + "/diabetes_data_raw.csv.gz"))
        y = np.loadtxt(gzip.open(src + "/diabetes_target.csv.gz"))
    else:
        # breast_cancer.csv, wine_data.csv: a count line, then features and
        # the class in the last column
        name = {"cancer": "breast_cancer.csv", "wine": "wine_data.csv"}[kind]
        data = np.loadtxt(src + "/" + name, delimiter=",", skiprows=1)
        x, y = data[:, :-1], data[:, -1]
    write_table(out, x, y)


def shard(n, rank, size):
    return slice(rank * n // size, (rank + 1) * n // size)


def train(path, objective, num_class, rounds, rank, ports, out):
    import lightgbm as lgb

    x, y = read_table(path)
    size = 1 if ports == "single" else 2
    n_train = int(0.8 * len(y))
    s = shard(n_train, rank, size)
    v = shard(len(y) - n_train, rank, size)
    xv = x[n_train:][v]
    if size == 1:
        network = {"num_machines": 1, "tree_learner": "serial"}
    else:
        ports = [int(p) for p in ports.split(",")]
        network = {
            "num_machines": 2,
            "machines": ",".join(f"127.0.0.1:{p}" for p in ports),
            "local_listen_port": ports[rank],
            "time_out": 1,
            "tree_learner": "data",
        }
    params = {
        "objective": objective,
        "num_class": num_class,
        **network,
        "pre_partition": True,
        "num_threads": 1,
        "seed": 7,
        "deterministic": True,
        "force_col_wise": True,
        "num_leaves": 15,
        "verbosity": -1,
    }
    train_set = lgb.Dataset(x[s], label=y[s], params=params)
    booster = lgb.train(params, train_set, num_boost_round=rounds)
    with open(out, "w") as f:
        f.write(booster.model_to_string())
    booster.predict(xv).astype(np.float64).tofile(out + ".pred")


def csv_worker(rank, world, ports, x, y, params, rounds, out):
    import lightgbm as lgb
    params = dict(params, num_machines=world, tree_learner="data", pre_partition=True,
                  machines=",".join("127.0.0.1:%d" % p for p in ports),
                  local_listen_port=ports[rank], time_out=1)
    s = shard(len(y), rank, world)
    booster = lgb.train(params, lgb.Dataset(x[s], label=y[s], params=params),
                        num_boost_round=rounds)
    if rank == 0:
        with open(out, "w") as f:
            f.write(booster.model_to_string())


def free_ports(n):
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def csv_train(args):
    import multiprocessing
    from xgboost_reference import load
    path, target, frac, world, rounds, out = args[:6]
    params = dict(a.split("=", 1) for a in args[6:])
    classes = params.get("objective", "").startswith(("binary", "multi"))
    x, y, _, _ = load(path, target, float(frac), classes)
    world = int(world)
    ports = free_ports(world)
    procs = [multiprocessing.Process(target=csv_worker,
                                     args=(r, world, ports, x, y, params, int(rounds), out))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        sys.exit("a worker failed")


def csv_metrics(args):
    import json
    import lightgbm as lgb
    from xgboost_reference import load, sklearn_metrics
    path, target, frac, model, task = args
    _, _, x, y = load(path, target, float(frac), task != "regression")
    p = lgb.Booster(model_file=model).predict(x).astype(np.float32).astype(np.float64)
    print(json.dumps(sklearn_metrics(y, p, task)))


def same_model(args):
    ours, ref = (open(p).read() for p in args[:2])
    differ_ok = ("machines", "local_listen_port", "time_out", "num_iterations")

    def parts(text):
        trees, rest = text.split("\nparameters:\n", 1)
        params = rest.split("\nend of parameters\n", 1)[0].splitlines()
        return trees, [l for l in params
                       if not l.startswith(tuple("[" + k + ":" for k in differ_ok))]
    (t1, p1), (t2, p2) = parts(ours), parts(ref)
    n_trees = t2.count("\nTree=")
    if n_trees == 0 or t1 != t2:
        sys.exit("trees differ (%d reference trees)" % n_trees)
    if len(args) > 2 and n_trees != int(args[2]):
        sys.exit("%d trees, expected %s" % (n_trees, args[2]))
    if p1 != p2:
        sys.exit("parameters differ: %s" % sorted(set(p1) ^ set(p2)))
    print("%s: %d trees identical to %s" % (args[0], n_trees, args[1]))


def main():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gbdt"))
    if sys.argv[1] == "same-model":
        same_model(sys.argv[2:])
    elif sys.argv[1] == "csv-train":
        csv_train(sys.argv[2:])
    elif sys.argv[1] == "csv-metrics":
        csv_metrics(sys.argv[2:])
    elif sys.argv[1] == "table":
        table(*sys.argv[2:5])
    else:
        a = sys.argv[2:]
        train(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5], a[6])


if __name__ == "__main__":
    main()
