#!/usr/bin/python3
"""Writes regression.csv, a synthetic regression table like the one Ray's
PyTorch and TensorFlow/Keras regression examples read (100 features
x000..x099 and a target y), with scikit-learn's make_regression: 10
informative features, noise 10, fixed seed. Usage: make_regression.py OUTDIR [ROWS]
"""
import os
import sys

import numpy as np
from sklearn.datasets import make_regression


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out, rows = sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 5000
    os.makedirs(out, exist_ok=True)
    x, y = make_regression(n_samples=rows, n_features=100, n_informative=10, noise=10.0,
                           random_state=0)
    path = os.path.join(out, "regression.csv")
    header = ",".join(["x%03d" % i for i in range(100)] + ["y"])
    np.savetxt(path + ".tmp", np.column_stack([x, y]), delimiter=",", header=header,
               comments="", fmt="%.9g")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
