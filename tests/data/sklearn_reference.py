#!/usr/bin/python3
"""Reference results of scikit-learn on the same split rtrain uses
(data.test_fraction: the last rows of the file, in file order):

  regress  CSV TARGET FRACTION  -> ordinary least squares (LinearRegression):
                                   {"rmse": ..., "r2": ..., "mae": ...}
  classify CSV TARGET FRACTION  -> LogisticRegression on standardised
                                   features: {"accuracy": ...}

Prints one JSON object. Usage: tests/data/sklearn_reference.py MODE CSV TARGET FRACTION
"""
import csv
import json
import math
import sys

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.preprocessing import StandardScaler


def main():
    mode, path, target, fraction = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    with open(path) as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    t = header.index(target)
    x = np.array([[float(v) for i, v in enumerate(r) if i != t] for r in rows])
    y = [r[t] for r in rows]
    # rtrain: training rows [0, floor((1 - f) * n)), test rows the rest.
    b = int(math.floor((1.0 - fraction) * len(rows)))
    if mode == "regress":
        y = np.array([float(v) for v in y])
        p = LinearRegression().fit(x[:b], y[:b]).predict(x[b:])
        out = {"rmse": math.sqrt(mean_squared_error(y[b:], p)), "r2": r2_score(y[b:], p),
               "mae": mean_absolute_error(y[b:], p)}
    else:
        scaler = StandardScaler().fit(x[:b])
        model = LogisticRegression(max_iter=1000).fit(scaler.transform(x[:b]), y[:b])
        out = {"accuracy": model.score(scaler.transform(x[b:]), y[b:])}
    out["train_rows"], out["test_rows"] = b, len(rows) - b
    print(json.dumps(out))


if __name__ == "__main__":
    main()
