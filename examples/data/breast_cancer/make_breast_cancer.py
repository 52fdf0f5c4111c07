"""Writes the breast-cancer data of examples/train_logreg.rs and tests/train.rs:
scikit-learn's Wisconsin breast-cancer set, a stratified 80/20 split (seed 0), standardised
by the training rows' mean and standard deviation, the 455 training rows dealt to two data
owners (shuffled, seed 1).

    .venv/bin/python examples/data/breast_cancer/make_breast_cancer.py   # numpy + scikit-learn

Files (next to this script): owner{0,1}_x.npy float32 [n_k, 30], owner{0,1}_y.npy float32
[n_k] (1 = benign), test_x.npy float32 [114, 30], test_y.npy float32 [114].
Two runs write identical files.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
OWNERS = 2


def main():
    d = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.data, d.target, test_size=0.2, random_state=0, stratify=d.target
    )
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    x_tr = ((x_tr - mean) / std).astype(np.float32)
    x_te = ((x_te - mean) / std).astype(np.float32)
    order = np.random.default_rng(1).permutation(len(x_tr))
    for k, rows in enumerate(np.array_split(order, OWNERS)):
        np.save(HERE / f"owner{k}_x.npy", x_tr[rows])
        np.save(HERE / f"owner{k}_y.npy", y_tr[rows].astype(np.float32))
        print(f"owner {k}: {len(rows)} rows, {int(y_tr[rows].sum())} benign")
    np.save(HERE / "test_x.npy", x_te)
    np.save(HERE / "test_y.npy", y_te.astype(np.float32))
    print(f"test: {len(x_te)} rows")


if __name__ == "__main__":
    main()
