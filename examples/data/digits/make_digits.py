"""Writes the digits data of examples/federated.rs: scikit-learn's 8x8 digits, pixels / 16
as float32, the same stratified 80/20 split as fixtures/fixture_lib.load_digits_split()
(seed 0), with the 1437 training rows shuffled (seed 1) and dealt to three data owners.

    .venv/bin/python examples/data/digits/make_digits.py   # numpy + scikit-learn only

Files (next to this script): owner{0,1,2}_x.npy float32 [n_k, 64], owner{0,1,2}_y.npy int64
[n_k], test_x.npy float32 [360, 64], test_y.npy int64 [360]. Two runs write identical files.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
OWNERS = 3


def main():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    order = np.random.default_rng(1).permutation(len(x_tr))
    for k, rows in enumerate(np.array_split(order, OWNERS)):
        np.save(HERE / f"owner{k}_x.npy", x_tr[rows])
        np.save(HERE / f"owner{k}_y.npy", y_tr[rows])
        print(f"owner {k}: {len(rows)} rows, labels {np.bincount(y_tr[rows], minlength=10)}")
    np.save(HERE / "test_x.npy", x_te)
    np.save(HERE / "test_y.npy", y_te)
    print(f"test: {len(x_te)} rows")


if __name__ == "__main__":
    main()
