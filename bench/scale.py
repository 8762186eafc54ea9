"""The Ray engine against the local one on this machine, and what a cluster would take.

In one run, on the same files: ``embed`` throughput with ``--engine ray`` (a local Ray with one
actor per core) against the local engine, both with the cache off; then 5-fold ``cnn`` training
wall time on each engine. Each pair is printed as a ratio (targets: embed ≥ 0.9 of the local
throughput, training no slower than local), with how far the answers differ. Ray is started
once before the timings, as a cluster that is already up would be; the time to start a local
Ray is printed apart. Then a projection on paper, from the measured per-image costs, of the
wall time for 100,000 and 1,000,000 images on 1, 4 and 16 workers, with its assumptions.

Images: CIFAR-10 training JPEGs from ../shared/data (scikit-learn digits if absent), written
once into ``--work``. Prints figures and writes ``figures.json`` into ``--work``; not a test.

    python bench/scale.py                       # about 8 minutes on 2 idle cores
    python bench/scale.py --n-embed 1000 --n-train 1000 --epochs 2   # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed_throughput import CIFAR, make_jpegs

import labelwise
from labelwise import Dataset, load_dataset
from labelwise.train.kfold import train

FOLDS = 5


def images(folder: Path, n: int, side: int) -> Path:
    """``folder/<class>/<i>.jpg``: the first ``n`` CIFAR-10 training images under their clean labels."""
    marker = folder / f".made-{n}-{side}"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        make_jpegs(folder, n, side)
        if CIFAR.is_file():  # make_jpegs files image i under i % 10; put each under its true class
            with np.load(CIFAR) as npz:
                classes, labels = npz["classes"], npz["clean_label"][:n]
            for i, label in enumerate(labels):
                target = folder / str(classes[label]) / f"{i}.jpg"
                target.parent.mkdir(exist_ok=True)
                (folder / str(i % 10) / f"{i}.jpg").rename(target)
            for k in range(10):
                with contextlib.suppress(OSError):
                    (folder / str(k)).rmdir()
        marker.touch()
    return folder


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0


def bench_embed(folder: Path, backbone: str, size: int) -> dict[str, Any]:
    """Each engine on a quarter of the images and on all of them: the total rate on all, and the
    fixed cost (starting actors, loading the backbone) and steady rate from the two times."""
    ds = load_dataset(folder)
    n = len(ds.table)
    small = Dataset(ds.table.iloc[: n // 4], ds.classes)
    options = {"backbone": backbone, "size": size, "cache_dir": False}
    # This process imports torch and timm once, as any command does before it embeds; each Ray call
    # starts its actors afresh, and they import both every time (that is in Ray's fixed cost).
    labelwise.embed(Dataset(ds.table.iloc[:8], ds.classes), **options)
    vectors, seconds = {}, {}
    for engine in ("local", "ray"):
        _, t_small = timed(labelwise.embed, small, **options, engine=engine)
        vectors[engine], t_all = timed(labelwise.embed, ds, **options, engine=engine)
        per_image = (t_all - t_small) / (n - len(small.table))
        seconds[engine] = {"small": t_small, "all": t_all, "fixed": t_all - n * per_image, "steady": 1 / per_image}
    figures = {
        "n": n,
        "backbone": backbone,
        "size": size,
        "local_img_s": n / seconds["local"]["all"],
        "ray_img_s": n / seconds["ray"]["all"],
        "ratio": seconds["local"]["all"] / seconds["ray"]["all"],
        "steady_ratio": seconds["ray"]["steady"] / seconds["local"]["steady"],
        "seconds": seconds,
        "max_abs_diff": float(np.abs(vectors["local"] - vectors["ray"]).max()),
    }
    print(
        f"embed {backbone} {size}px, {n:,} images: local {figures['local_img_s']:.1f} img/s, "
        f"ray {figures['ray_img_s']:.1f} img/s (whole calls: ratio {figures['ratio']:.2f}); steady throughput "
        f"{seconds['local']['steady']:.1f} vs {seconds['ray']['steady']:.1f} img/s → ratio {figures['steady_ratio']:.2f} "
        f"(target ≥ 0.90) after a fixed {seconds['local']['fixed']:.1f} s local, {seconds['ray']['fixed']:.1f} s ray "
        f"per call (actors start, import torch and timm, load the backbone); whole calls reach 0.90 from "
        f"{_break_even(seconds):,} images; largest difference {figures['max_abs_diff']:.2g}"
    )
    return figures


def _break_even(seconds: dict[str, dict[str, float]], target: float = 0.9) -> int | str:
    """Images from which a whole Ray call takes at most 1/target of a local one's time."""
    local, on_ray = seconds["local"], seconds["ray"]
    # local_time(n) >= target * ray_time(n), each time = fixed + n / steady
    slack = 1 / local["steady"] - target / on_ray["steady"]
    extra = target * on_ray["fixed"] - local["fixed"]
    if extra <= 0:
        return 0
    return math.ceil(extra / slack) if slack > 0 else "never"


def bench_train(folder: Path, work: Path, epochs: int) -> dict[str, Any]:
    ds = load_dataset(folder)
    options = {"folds": FOLDS, "epochs": epochs, "check_leaks": False, "html": False, "patience": None}
    runs: dict[str, float] = {}
    for engine in ("local", "ray"):
        out = work / f"train-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        _, runs[engine] = timed(train, ds, out, engine=engine, **options)
    oof = {e: np.load(work / f"train-{e}" / "oof_probs.npy") for e in runs}
    folds_equal = (work / "train-local" / "dataset.csv").read_text() == (work / "train-ray" / "dataset.csv").read_text()
    n = len(ds.table)
    figures = {
        "n": n,
        "epochs": epochs,
        "local_s": runs["local"],
        "ray_s": runs["ray"],
        "ratio": runs["local"] / runs["ray"],
        "same_folds": folds_equal,
        "oof_max_abs_diff": float(np.abs(oof["local"] - oof["ray"]).max()),
        "oof_accuracy_local": _accuracy(work / "train-local"),
        "oof_accuracy_ray": _accuracy(work / "train-ray"),
        # one fold's model sees (k-1)/k of the rows each epoch
        "s_per_img_epoch_fold": runs["local"] / (FOLDS * epochs * n * (FOLDS - 1) / FOLDS),
    }
    print(
        f"train cnn, {FOLDS} folds × {epochs} epochs on {n:,} images: local {runs['local']:.1f} s, ray "
        f"{runs['ray']:.1f} s → ratio {figures['ratio']:.2f} (target ≥ 1.00); same folds {folds_equal}; "
        f"out-of-fold accuracy {figures['oof_accuracy_local']:.4f} local vs {figures['oof_accuracy_ray']:.4f} ray "
        f"(largest probability difference {figures['oof_max_abs_diff']:.2g}: one torch thread per fold on Ray, "
        "two locally, sum in different orders)"
    )
    return figures


def _accuracy(out: Path) -> float:
    return float(json.loads((out / "run.json").read_text())["result"]["held_out"]["accuracy"])


def projection(embed: dict[str, Any], fit: dict[str, Any], epochs: int, cores: int) -> list[dict[str, Any]]:
    """Wall time on W workers of this machine's kind, from the measured per-image costs."""
    rows = []
    per_img_machine = 1 / embed["seconds"]["ray"]["steady"]  # seconds per image on one `cores`-core machine
    fold_per_img_epoch = fit["s_per_img_epoch_fold"]
    for n in (100_000, 1_000_000):
        for workers in (1, 4, 16):
            embed_s = embed["seconds"]["ray"]["fixed"] + n * per_img_machine / workers
            fold_s = n * (FOLDS - 1) / FOLDS * epochs * fold_per_img_epoch
            waves = math.ceil(FOLDS / workers)  # a fold is one task: at most FOLDS run at once
            rows.append({"n": n, "workers": workers, "embed_h": embed_s / 3600, "train_h": waves * fold_s / 3600})
    print(
        f"\nprojection (each worker a {cores}-core CPU machine like this one; time linear in images; images and "
        f"output on shared storage that keeps up; {FOLDS}-fold cnn at 32 px, {epochs} epochs; a fold is one task, so "
        f"training stops scaling at {FOLDS} workers; no GPU):"
    )
    print("| images | workers | embed | 5-fold train |\n|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['n']:,} | {row['workers']} | {_hours(row['embed_h'])} | {_hours(row['train_h'])} |")
    return rows


def _hours(h: float) -> str:
    return f"{h:.1f} h" if h >= 1 else f"{h * 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-embed", type=int, default=4000)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "labelwise-scale-bench")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("LABELWISE_PROGRESS", "0")
    import ray

    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    start_s = time.perf_counter() - t0
    print(f"a local Ray on {cores} cores started in {start_s:.1f} s (not counted below)")
    args.work.mkdir(parents=True, exist_ok=True)
    embed = bench_embed(images(args.work / "embed-images", args.n_embed, 64), args.backbone, args.size)
    fit = bench_train(images(args.work / "train-images", args.n_train, 32), args.work, args.epochs)
    rows = projection(embed, fit, args.epochs, cores)
    figures = {"cores": cores, "ray_start_s": start_s, "embed": embed, "train": fit, "projection": rows}
    (args.work / "figures.json").write_text(json.dumps(figures, indent=1))
    print(f"figures: {args.work / 'figures.json'}")


if __name__ == "__main__":
    main()
