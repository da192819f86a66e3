#!/usr/bin/python3
"""XGBoost's own distributed training, as a Python user runs it, on the
shards rtrain gives its ranks: the reference for tests/e2e/gbdt_xgboost.test.

  train CSV TARGET TEST_FRACTION WORKERS ROUNDS OUT.json KEY=VALUE...
      Rows [0, floor((1 - TEST_FRACTION) * N)) of CSV are the training rows
      (rtrain's data.test_fraction), class names of TARGET mapped to 0..K-1
      in sorted order (rtrain's class encoding); worker r takes rows
      [r*n/W, (r+1)*n/W) of them, as rtrain's rank r does. W processes join
      xgboost's Python RabitTracker (task id = r, workers sorted by task)
      and train ROUNDS rounds with the parameters KEY=VALUE (nthread=1,
      seed=0 as rtrain passes them); worker 0 writes the model (JSON).
  metrics CSV TARGET TEST_FRACTION MODEL.json TASK
      Predictions of MODEL.json on the evaluation rows (the rest) in one
      process, and sklearn's metrics of them as JSON: TASK binary (logloss,
      error at 0.5, roc_auc), multiclass (mlogloss, merror) or regression
      (rmse, mae).
"""
import csv
import json
import math
import multiprocessing
import sys

import numpy as np


def load(path, target, test_fraction, classes):
    with open(path) as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    t = header.index(target)
    x = np.array([[float(v) for i, v in enumerate(r) if i != t] for r in rows], np.float32)
    names = [r[t] for r in rows]
    if classes:
        order = sorted(set(names))
        y = np.array([order.index(v) for v in names], np.float32)
    else:
        y = np.array([float(v) for v in names], np.float32)
    n_train = int(math.floor((1.0 - test_fraction) * len(rows)))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def worker(rank, world, envs, x, y, params, rounds, out):
    import xgboost as xgb
    from xgboost import collective
    n = len(y)
    lo, hi = n * rank // world, n * (rank + 1) // world
    with collective.CommunicatorContext(**envs, DMLC_TASK_ID=str(rank)):
        d = xgb.DMatrix(x[lo:hi], label=y[lo:hi], nthread=1)
        b = xgb.train(params, d, num_boost_round=rounds)
        if collective.get_rank() == 0:
            with open(out, "wb") as f:
                f.write(b.save_raw("json"))


def train(args):
    from xgboost import RabitTracker
    path, target, frac, world, rounds, out = args[:6]
    params = dict(a.split("=", 1) for a in args[6:])
    classes = params.get("objective", "").startswith(("binary", "multi"))
    x, y, _, _ = load(path, target, float(frac), classes)
    world, rounds = int(world), int(rounds)
    tracker = RabitTracker(host_ip="127.0.0.1", n_workers=world, sortby="task")
    tracker.start(world)
    envs = tracker.worker_envs()
    procs = [multiprocessing.Process(target=worker,
                                     args=(r, world, envs, x, y, params, rounds, out))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    tracker.join()
    if any(p.exitcode != 0 for p in procs):
        sys.exit("a worker failed")


def metrics(args):
    import xgboost as xgb
    path, target, frac, model, task = args
    _, _, x, y = load(path, target, float(frac), task != "regression")
    b = xgb.Booster()
    b.load_model(model)
    print(json.dumps(sklearn_metrics(y, b.predict(xgb.DMatrix(x)).astype(np.float64), task)))


def sklearn_metrics(y, p, task):
    """sklearn's metrics of predictions p (probabilities, values) of labels
    y, as a dict named as rtrain's val_* fields (without the prefix)."""
    from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score
    if task == "binary":
        r = {"logloss": log_loss(y, p, labels=[0, 1]),
             "error": float(np.mean((p > 0.5) != (y > 0.5))),
             "auc": roc_auc_score(y, p)}
    elif task == "multiclass":
        r = {"mlogloss": log_loss(y, p, labels=list(range(p.shape[1]))),
             "merror": float(np.mean(p.argmax(1) != y))}
    else:
        r = {"rmse": math.sqrt(mean_squared_error(y, p)), "mae": mean_absolute_error(y, p)}
    return r


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("train", "metrics"):
        sys.exit(__doc__)
    (train if sys.argv[1] == "train" else metrics)(sys.argv[2:])
