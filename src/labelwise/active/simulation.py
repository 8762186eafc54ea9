"""``simulate``: compare active-learning strategies on a fully labeled dataset, with the
given labels as the oracle, and draw their learning curves."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .._engine import resolve_engine, run_tasks, scoped_engine
from .._io import write_table
from .._run import recorded
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError
from .curves import DEFAULT_TARGET, RESULT_COLUMNS, curve_summary, draw_curves
from .grid import SETTINGS, check_grid, expand_grid, read_grid
from .loop import STARTS, LoopResult, run_loop
from .models import get_loop_model
from .querying import pixels_of
from .strategies import get_strategy

log = logging.getLogger("labelwise")

EXPERIMENT_COLUMNS = (
    "experiment",
    "model",
    "backbone",
    "pca",
    "semi",
    "pretrained",
    "start",
    "n_start",
    "per_class",
    "n_new",
    "rounds",
    "patience",
    "epochs",
    "augment",
)


@dataclass
class SimulationResult:
    """``results``: one row per (experiment, strategy, seed, round); ``curves``: one per
    (experiment, strategy) (see :func:`~labelwise.active.curves.curve_summary`);
    ``picks``: the labeled rows of every run, by ``sample_id``; ``figures``: counts and time."""

    results: pd.DataFrame
    curves: pd.DataFrame
    picks: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {**self.figures, "curves": self.curves.to_dict("records")}


@recorded("simulate", inputs=dataset_inputs(files=("weights", "grid")))
@scoped_engine
def simulate(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    grid: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    strategies: Sequence[str] | str | None = None,
    models: Sequence[str] | str | None = None,
    backbones: Sequence[str] | str | None = None,
    seeds: Sequence[int] | str | None = None,
    n_start: int | None = None,
    per_class: bool | None = None,
    start: str | None = None,
    n_new: int | None = None,
    rounds: int | None = None,
    patience: int | None = None,
    epochs: int | None = None,
    semi: bool | None = None,
    augment: str | None = None,
    pretrained: bool | None = None,
    weights: str | os.PathLike[str] | None = None,
    size: int | None = None,
    pca: int | None = None,
    test_pct: float = 0.2,
    target: float = DEFAULT_TARGET,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    html: bool = True,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
    engine: str | None = None,
    ray_address: str | None = None,
) -> SimulationResult:
    """Pool-based active learning experiments with an oracle on the labeled images of ``data``.

    The test set is the ``test`` split when there is one, else a stratified ``test_pct``
    of the labeled images (seeded by ``random_state``); the other labeled images form the
    pool, whose labels are revealed only when a strategy asks for them. Unlabeled images
    are not used.

    Every combination of ``strategies`` × ``models`` × ``backbones`` (default ``simclr``
    when PyTorch is installed, else ``pixels``) × ``seeds`` is one run
    (:func:`~labelwise.active.loop.run_loop`): start with ``n_start`` labels (per class
    with ``per_class``; ``start`` random or typiclust), then ``rounds`` rounds of ``n_new``
    labels, stopping early after ``patience`` rounds without a better test accuracy.
    ``grid`` (a YAML file or a mapping, see :mod:`labelwise.active.grid`) describes more
    runs; options given here are the defaults it overrides. Runs of one seed share their
    start set.

    Writes to ``out``: ``results.csv`` (``experiment, strategy, seed, round, n_labels,
    accuracy, balanced_accuracy``), ``experiments.csv``, ``picks.csv``, the learning curves
    (``curves.png``, ``curves.csv``, ``summary.csv``; see
    :func:`~labelwise.active.curves.plot_curves`) and ``report.md``.

    ``engine``: ``local`` (default, or ``$LABELWISE_ENGINE``) or ``ray``: each run is one Ray
    task (the embeddings, computed once, are shared through Ray's object store); the results
    are the local engine's. ``ray_address``: the cluster to join (default ``$RAY_ADDRESS``).
    """
    t0 = time.perf_counter()
    strategies, models, backbones = (
        _names(v, n) for v, n in ((strategies, "strategies"), (models, "models"), (backbones, "backbones"))
    )
    seeds = _seeds(seeds)
    given = {
        "strategies": strategies,
        "models": models,
        "backbones": backbones,
        "seeds": seeds,
        "n_start": n_start,
        "per_class": per_class,
        "start": start,
        "n_new": n_new,
        "rounds": rounds,
        "patience": patience,
        "epochs": epochs,
        "semi": semi,
        "augment": augment,
        "pretrained": pretrained,
        "weights": weights,
        "size": size,
        "pca": pca,
    }
    base = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in given.items() if v is not None}
    spec = read_grid(grid) if isinstance(grid, (str, os.PathLike)) else check_grid(grid or {})
    ds = data if isinstance(data, Dataset) else None
    if backbones is None and "backbones" not in spec:
        from ..features import auto_backbone

        ds = ds or as_read_options(read).load(cast("str | os.PathLike[str]", data), n_jobs=n_jobs)
        chosen, auto_size = auto_backbone(ds.table, purpose="simulate")
        base["backbones"] = [chosen]
        if auto_size and size is None and "size" not in spec:
            base["size"] = auto_size
    runs = expand_grid(spec, base)
    for run in runs:
        _check_run(run)
    ds = ds or as_read_options(read).load(cast("str | os.PathLike[str]", data), n_jobs=n_jobs)
    pool, test = _pool_and_test(ds, test_pct, random_state)
    lookup = {c: i for i, c in enumerate(ds.classes)}
    y_pool = pool["label"].map(lookup).to_numpy(np.int64)
    y_test = test["label"].map(lookup).to_numpy(np.int64)
    both = Dataset(pd.concat([pool, test], ignore_index=True), ds.classes, source=ds.source)
    log.info("simulate: %d pool and %d test images, %d runs", len(pool), len(test), len(runs))

    embeddings: dict[str, np.ndarray] = {}
    pixels: dict[str, np.ndarray] = {}  # per loop model on pixels
    jobs = []
    for run in runs:
        key = repr((run["backbone"], run["size"], str(run["weights"]), run["pca"]))
        if key not in embeddings:
            embeddings[key] = _embed(both, run, cache_dir=cache_dir, device=device)
        on_pixels = get_loop_model(run["model"]).input == "pixels"
        if on_pixels and run["model"] not in pixels:
            pixels[run["model"]] = pixels_of(both, run["model"], n_jobs=n_jobs)
        jobs.append(SimulationJob(run, key, run["model"] if on_pixels else None, len(pool), len(ds.classes), device))
    arrays = {"embeddings": embeddings, "pixels": pixels, "y_pool": y_pool, "y_test": y_test}
    results, picks = [], []

    def finished(i: int, rounds: pd.DataFrame) -> None:
        run, last = runs[i], rounds.iloc[-1]
        log.info(
            "run %d/%d %s · %s · seed %s: %d labels, accuracy %.4f",
            i + 1,
            len(runs),
            run["experiment"],
            run["strategy"],
            run["seed"],
            last["n_labels"],
            last["accuracy"],
        )

    where = resolve_engine(engine, ray_address)
    if where.is_ray:
        loops = run_tasks(where, run_simulation, jobs, shared=arrays, on_done=lambda i, r: finished(i, r.rounds))
    else:
        loops = []
        for i, job in enumerate(jobs):
            loops.append(run_simulation(job, **arrays))
            finished(i, loops[-1].rounds)
    for run, loop in zip(runs, loops, strict=True):
        tag = {"experiment": run["experiment"], "strategy": run["strategy"], "seed": int(run["seed"])}
        results.append(loop.rounds.assign(**tag))
        picks.append(
            pd.DataFrame(
                {
                    **tag,
                    "round": loop.picks["round"],
                    "sample_id": pool["sample_id"].to_numpy()[loop.picks["row"].to_numpy()],
                }
            )
        )
    table = pd.concat(results, ignore_index=True)
    table = table[[*RESULT_COLUMNS, "seconds"]]
    picks_table = pd.concat(picks, ignore_index=True)
    summary = curve_summary(table, target=target)
    info = {
        "n_pool": len(pool),
        "n_test": len(test),
        "n_runs": len(runs),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if out is not None:
        out = Path(out)
        write_table(out / "results.csv", table)
        experiments = pd.DataFrame(runs).drop_duplicates("experiment")
        write_table(out / "experiments.csv", experiments[[c for c in EXPERIMENT_COLUMNS if c in experiments]])
        write_table(out / "picks.csv", picks_table)
        summary = draw_curves(table, out, target=target, html=html)
    return SimulationResult(table, summary, picks_table, info)


def _names(value: Sequence[str] | str | None, option: str) -> list[str] | None:
    """A list option given as a list or as ``"a,b"``."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    if not names:
        raise LabelwiseError(f"{option}: give at least one name")
    return names


def _seeds(value: Sequence[int] | str | None) -> list[int] | None:
    names = _names(value if isinstance(value, str) or value is None else [str(v) for v in value], "seeds")
    if names is None:
        return None
    try:
        return [int(v) for v in names]
    except ValueError:
        raise LabelwiseError(f"seeds: expected comma-separated whole numbers, got {value!r}") from None


def _check_run(run: Mapping[str, Any]) -> None:
    """A one-line error for a run setting that cannot work, before any image is read."""
    get_strategy(run["strategy"])
    get_loop_model(run["model"])
    from ..features import list_backbones
    from ..features.backbones import BACKBONES

    if run["backbone"] not in BACKBONES:  # a prefix such as timm/<name> counts
        raise LabelwiseError(f"unknown backbone {run['backbone']!r}; choose one of {', '.join(list_backbones())}")
    if run["start"] not in STARTS:
        raise LabelwiseError(f"unknown start {run['start']!r}; choose one of {', '.join(STARTS)}")
    if get_loop_model(run["model"]).input == "pixels":  # augment concerns only these (and imports torch)
        from ..train.augment import PRESETS

        if run["augment"] not in PRESETS:
            raise LabelwiseError(f"unknown augment {run['augment']!r}; choose one of {', '.join(PRESETS)}")
    for name in ("n_start", "n_new", "rounds", "epochs"):
        value = run[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "rounds" else 1):
            raise LabelwiseError(f"{name} must be a whole number >= {0 if name == 'rounds' else 1}, got {value!r}")
    if run["patience"] is not None and (not isinstance(run["patience"], int) or run["patience"] < 1):
        raise LabelwiseError(f"patience must be a whole number >= 1, got {run['patience']!r}")
    unknown = set(run) - set(SETTINGS) - {"strategy", "model", "backbone", "seed", "experiment"}
    if unknown:  # pragma: no cover - check_grid catches these first
        raise LabelwiseError(f"unknown setting(s) {', '.join(sorted(unknown))}")


def _pool_and_test(ds: Dataset, test_pct: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    labeled = ds.labeled.reset_index(drop=True)
    where = ds.source or "data"
    if labeled.empty:
        raise LabelwiseError(f"{where}: no labeled images; simulate needs labels to act as the oracle")
    if "split" in labeled.columns and (labeled["split"].astype(str) == "test").any():
        is_test = (labeled["split"].astype(str) == "test").to_numpy()
    else:
        if not 0 < test_pct < 1:
            raise LabelwiseError(f"test_pct must be between 0 and 1, got {test_pct}")
        from sklearn.model_selection import train_test_split

        counts = labeled["label"].value_counts()
        stratify = labeled["label"] if counts.min() >= 2 else None
        _, test_idx = train_test_split(
            np.arange(len(labeled)), test_size=test_pct, stratify=stratify, random_state=seed
        )
        is_test = np.isin(np.arange(len(labeled)), test_idx)
    pool, test = labeled[~is_test].reset_index(drop=True), labeled[is_test].reset_index(drop=True)
    if len(pool) < 2 or len(test) < 1:
        raise LabelwiseError(f"{where}: {len(pool)} pool and {len(test)} test images are too few to simulate")
    if pool["label"].nunique() < 2:
        raise LabelwiseError(
            f"{where}: only class {pool['label'].iloc[0]!r} has labeled images in the pool; a simulation "
            "needs at least two classes (with one, every model scores 1.0)"
        )
    return pool, test


@dataclass(frozen=True)
class SimulationJob:
    """One run of a grid: its settings and which of the shared inputs it reads."""

    run: dict[str, Any]
    embedding: str  # key into the shared embeddings
    pixels: str | None  # key into the shared pixels, for loop models on pixels
    n_pool: int
    n_classes: int
    device: str


def run_simulation(
    job: SimulationJob,
    *,
    embeddings: Mapping[str, np.ndarray],
    pixels: Mapping[str, np.ndarray],
    y_pool: np.ndarray,
    y_test: np.ndarray,
) -> LoopResult:
    """One run of the grid (:func:`~labelwise.active.loop.run_loop`), here or as a Ray task."""
    run, n = job.run, job.n_pool
    Z = embeddings[job.embedding]
    images = pixels[job.pixels] if job.pixels is not None else None
    options = {
        "epochs": run["epochs"],
        "augment": run["augment"],
        "device": job.device,
        "pretrained": bool(run["pretrained"]),
    }
    return run_loop(
        Z[:n],
        y_pool,
        Z[n:],
        y_test,
        strategy=run["strategy"],
        model=run["model"],
        semi=bool(run["semi"]),
        n_start=int(run["n_start"]),
        start=run["start"],
        per_class=bool(run["per_class"]),
        n_new=int(run["n_new"]),
        rounds=int(run["rounds"]),
        patience=run["patience"],
        n_classes=job.n_classes,
        inputs=None if images is None else images[:n],
        test_inputs=None if images is None else images[n:],
        model_options=options,
        random_state=int(run["seed"]),
    )


def _embed(ds: Dataset, run: Mapping[str, Any], *, cache_dir: Any, device: str) -> np.ndarray:
    from ..features import embed

    return embed(
        ds,
        backbone=run["backbone"],
        size=run["size"],
        weights=run["weights"],
        pca=run["pca"],
        cache_dir=cache_dir,
        device=device,
    )
