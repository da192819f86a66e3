#!/usr/bin/python3
"""Writes the real tables that Debian's python3-sklearn ships (in its
datasets/data/ folder) as CSV files with a header row, the form rtrain's
csv format reads:

  diabetes.csv       442 rows: age, sex, bmi, bp, s1..s6 (raw, unscaled
                     values) and "progression", a measure of disease
                     progression one year later (regression).
  breast_cancer.csv  569 rows: 30 measurements and "diagnosis", the text
                     "malignant" or "benign" (binary classification).

Rows stay in the order sklearn ships them, except that breast_cancer is
shuffled with a fixed seed: its rows are not ordered by class, but a
fixed shuffle keeps data.test_fraction (the last rows) a fair sample.

Usage: examples/data/sklearn_tables.py OUTDIR
"""
import csv
import os
import sys

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes


def write(path, header, rows):
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    os.replace(path + ".tmp", path)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    d = load_diabetes(scaled=False)
    write(os.path.join(out, "diabetes.csv"), list(d.feature_names) + ["progression"],
          [[repr(float(v)) for v in x] + [repr(float(y))] for x, y in zip(d.data, d.target)])
    b = load_breast_cancer()
    order = np.random.RandomState(0).permutation(len(b.target))
    write(os.path.join(out, "breast_cancer.csv"),
          [n.replace(" ", "_") for n in b.feature_names] + ["diagnosis"],
          [[repr(float(v)) for v in b.data[i]] + [b.target_names[b.target[i]]] for i in order])


if __name__ == "__main__":
    main()
