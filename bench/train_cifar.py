"""CIFAR-10 with ``cnn``: first N training images (clean labels), tested on images 45,000–49,999.

Target (issue 4): ≥ 75% test accuracy in ≤ 10 minutes on 2 CPU cores with the first 10,000.

    python bench/train_cifar.py                  # the target configuration
    python bench/train_cifar.py --epochs 10 --n-train 2000   # a quick look
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED / "cifar10n" / "cifar10n_train_jpeg.npz")
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=35)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--augment", default="light")
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument(
        "--tta", action=argparse.BooleanOptionalAction, default=True, help="mirror-image test-time augmentation"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ds = concat(
        npz_rows(args.data, np.arange(args.n_train), "train", labels_key="clean_label"),
        npz_rows(args.data, np.arange(45_000, 50_000), "test", labels_key="clean_label"),
    )
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = train(
            ds,
            out,
            model="cnn",
            folds=1,
            valid_pct=0.0,
            epochs=args.epochs,
            width=args.width,
            batch_size=args.batch_size,
            lr=args.lr,
            augment=args.augment,
            flip=True,
            label_smoothing=args.label_smoothing,
            optimizer=args.optimizer,
            device=args.device,
            html=False,
            tta=args.tta,
        )
        wall = time.perf_counter() - t0
        train_seconds = pd.read_csv(Path(out, "metrics.csv"))["seconds"].sum()
    figures = {
        "n_train": args.n_train,
        "epochs": args.epochs,
        "width": args.width,
        "augment": args.augment,
        "optimizer": f"{args.optimizer} lr {args.lr}",
        "tta": args.tta,
        "device": args.device,
        "threads": args.threads,
        "test_accuracy": round(result.test["accuracy"], 4),
        "wall_seconds": round(wall, 1),
        "train_images_per_second": round(args.n_train * args.epochs / train_seconds, 1),
        "target": "accuracy >= 0.75 and wall <= 600 s on 2 CPU cores",
        "met": bool(result.test["accuracy"] >= 0.75 and wall <= 600),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
