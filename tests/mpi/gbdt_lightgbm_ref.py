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

The split and the shards are those of the C test (test_gbdt_lightgbm.c):
training rows are the first floor(0.8 * rows), validation rows the rest;
rank r of P holds rows [r * n / P, (r + 1) * n / P) of each.
"""
import gzip
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


def main():
    if sys.argv[1] == "table":
        table(*sys.argv[2:5])
    else:
        a = sys.argv[2:]
        train(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5], a[6])


if __name__ == "__main__":
    main()
