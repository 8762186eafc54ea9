"""``train``: a model, or a stratified k-fold ensemble with out-of-fold probabilities."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._engine import resolve_engine, scoped_engine
from .._io import write_json, write_npy, write_table
from .._run import config_differences, recorded
from .._version import __version__
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError, require
from ..formats import TrainRun
from ..formats.probabilities import probability_table
from .folds import FoldJob, run_folds
from .inputs import (
    assign_folds,
    check_trainable,
    load_inputs,
    network_weights,
    row_weights,
    warn_leaks,
)
from .models import check_size, get_model_spec
from .report import plot_curves, write_report
from .tracking import trackers

log = logging.getLogger("labelwise")

MODEL_FILE = TrainRun.MODEL
TRAIN_CONFIG_FILE = TrainRun.CONFIG
DEFAULT_EPOCHS = {"cnn": 20, "embedding": 60, "pretrained": 10}
DEFAULT_BATCH = {"cnn": 128, "embedding": 256, "pretrained": 32}


@dataclass
class TrainResult:
    """What :func:`train` produced; ``as_dict`` is what run.json records."""

    out: Path
    model: str
    folds: int
    n_train: int
    n_test: int
    classes: list[str]
    fold_summary: list[dict[str, Any]] = field(default_factory=list)
    held_out: dict[str, Any] | None = None  # out-of-fold (k ≥ 2) or validation (k = 1) metrics
    test: dict[str, Any] | None = None
    overfit: dict[str, Any] | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d

    def summary(self) -> dict[str, Any]:
        return self.as_dict()


@recorded("train", inputs=dataset_inputs(files=("weights",)))
@scoped_engine
def train(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str = "cnn",
    folds: int = 5,
    valid_pct: float = 0.1,
    hold_out: str = "test",
    size: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    backbone: str = "pixels",
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    tta: bool = False,
    dynamics: bool = False,
    weight_col: str | None = None,
    resume: bool = False,
    overfit_batch: bool = False,
    skip_missing: bool = False,
    check_leaks: bool = True,
    tensorboard: bool = False,
    mlflow: bool = False,
    html: bool = True,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
    engine: str | None = None,
    ray_address: str | None = None,
    **hyperparameters: Any,
) -> TrainResult:
    """Train ``model`` on the labeled images of ``data`` and write everything to ``out``.

    Rows whose ``split`` is ``hold_out`` (default ``test``) are never trained on; they are predicted by the
    finished model (ensemble) and scored. With ``folds >= 2`` the other labeled rows are
    split into stratified folds: fold *k*'s model trains on the rest, early-stops on fold
    *k* and predicts it, so every labeled row gets exactly one **out-of-fold**
    probability row (``oof_probs.csv``/``.npy``), what finding wrong labels and active
    learning need. (Early stopping on the same fold makes these probabilities slightly
    optimistic; use ``patience=None`` for strictly unseen ones.) With ``folds=1`` one model
    trains on the ``train`` rows and validates on ``valid`` rows (or a stratified
    ``valid_pct`` share when there are none): ``valid_probs.csv``.

    Parameters
    ----------
    data : a :class:`Dataset` or anything :func:`labelwise.load_dataset` reads (as ``read`` says).
    model : a name from :func:`list_models`: ``cnn``, a torchvision network, or ``linear`` /
        ``mlp`` on embeddings of ``backbone`` (computed once and cached in ``cache_dir``).
    size : input side; default: the images' own side (16–64 px) for ``cnn``, 224 for
        torchvision networks, the backbone's default for heads.
    weights : pretrained weights file for a torchvision model (or for ``backbone``); default
        the official file when it is already in the torch hub cache. Nothing is downloaded.
    resume : continue an interrupted run in ``out``: finished folds are kept and an
        unfinished one continues from its last epoch. The settings must match.
    overwrite : replace the results of an earlier run in ``out`` (they are removed as a whole).
    overfit_batch : only train on one batch and report whether the loss reaches ~0.
    tta : average held-out and test probabilities over test-time views (mirror images, or
        small shifts when ``flip=False``).
    dynamics : also write ``dynamics_probs.csv``: each training row's softmax from its
        training passes, averaged over the epochs after the first third (and over the fold
        models that trained on it).
        A network fits wrong labels late, so these expose them almost as well as out-of-fold
        probabilities at a fraction of the cost (one model on all rows; see ``issues``).
        Folds reloaded by ``resume`` contribute none.
    weight_col : a numeric column of ``data`` that weights each training row's loss, e.g.
        ``confidence`` of ``pseudolabel``'s output, so that doubtful pseudo labels count less.
        Missing values weigh 1.
    skip_missing : train without images that the labels name but that do not exist
        (default: a one-line error naming the first).
    check_leaks : warn when near-duplicates of held-out images (``hold_out``, and for one model
        a given ``valid`` split) are among the training rows (each labeled image measured once, a
        few seconds per thousand; ``False`` skips it).
    engine : ``local`` (default, or ``$LABELWISE_ENGINE``) or ``ray``: each fold is one Ray task
        with an equal share of the cluster's CPUs and GPUs, writing into ``out`` (which every
        worker must reach: shared storage on a cluster); a fold whose worker dies is rerun and
        continues from its last epoch's checkpoint. Embeddings are computed on the same engine.
        ``ray_address``: the cluster to join (default ``$RAY_ADDRESS``, else a local Ray).
    hyperparameters : options of :class:`NeuralClassifier` (``epochs``, ``lr``, ``augment``,
        ``patience`` …), whose defaults are the classifier's; ``epochs`` and ``batch_size``
        default per kind of model (:data:`DEFAULT_EPOCHS`, :data:`DEFAULT_BATCH`). A name the
        classifier does not take is a one-line error.

    Writes ``model.json``, ``classes.json``, ``dataset.csv`` (rows used, with ``fold``),
    ``fold-K/model.pt``, ``metrics.csv`` (per epoch), ``curves.png``, out-of-fold /
    validation / test probabilities, ``report.md`` (+ ``.html``).
    """
    require("torch", "torch", "labelwise train")
    from .classifier import NeuralClassifier

    t_start = time.perf_counter()
    chosen = resolve_engine(engine, ray_address)
    out = Path(out)
    spec = get_model_spec(model)
    kind = "cnn" if model == "cnn" else spec.input if spec.input == "embedding" else "pretrained"
    defaults = NeuralClassifier().get_params()
    own = {"model", "n_classes", "weights", "device", "random_state"}  # set here, from train's own arguments
    unknown = sorted(set(hyperparameters) - (set(defaults) - own))
    if unknown:
        raise LabelwiseError(
            f"unknown training option(s) {', '.join(unknown)}; the classifier takes "
            f"{', '.join(sorted(set(defaults) - own))}"
        )
    given = {k: v for k, v in hyperparameters.items() if v is not None}
    if folds < 1:
        raise LabelwiseError(f"folds must be at least 1, got {folds}")
    if model == "cnn" and weights is not None:
        log.warning("--weights is for pretrained networks and --backbone; the cnn starts from scratch")
    if spec.input == "embedding" and given.get("freeze"):
        log.warning("--freeze has no effect on %s (a head on embeddings)", model)

    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, n_jobs=n_jobs)
    missing = ds.problems[ds.problems["reason"].eq("missing file")] if len(ds.problems) else ds.problems
    if len(missing) and not skip_missing:
        raise LabelwiseError(
            f"{ds.source or 'data'}: {len(missing)} labeled image(s) do not exist (first: {missing['path'].iloc[0]}); "
            "fix the file names (see --images, --suffix) or pass --skip-missing to train without them"
        )
    table = ds.table.reset_index(drop=True)
    labeled = table[table["label"].notna()]
    if labeled.empty:
        raise LabelwiseError(f"{ds.source or 'data'}: no labeled images to train on")
    unknown = sorted(set(labeled["label"]) - set(ds.classes))
    if unknown:
        raise LabelwiseError(f"labels {unknown[:3]} are not in the class list {ds.classes[:10]}")
    check_trainable(labeled, hold_out, ds.source)
    is_test = labeled["split"].eq(hold_out) if "split" in labeled else pd.Series(False, index=labeled.index)
    pool = labeled[~is_test].copy()
    test = labeled[is_test].copy()
    if check_leaks:
        warn_leaks(pool, test, hold_out, folds, n_jobs)
    lookup = {c: i for i, c in enumerate(ds.classes)}
    y_pool = pool["label"].map(lookup).to_numpy(np.int64)
    y_test = test["label"].map(lookup).to_numpy(np.int64)
    pool["fold"] = assign_folds(pool, y_pool, folds, valid_pct, ds.classes, random_state)
    w_pool = row_weights(pool, weight_col, ds.source) if weight_col else None
    test["fold"] = -1

    params: dict[str, Any] = {
        **defaults,
        "epochs": DEFAULT_EPOCHS[kind],
        "batch_size": DEFAULT_BATCH[kind],
        **given,
        "model": model,
        "n_classes": len(ds.classes),
        "weights": network_weights(model, spec.input, weights),
        "device": device,
        "random_state": random_state,
    }
    NeuralClassifier(**params)._validate_params()

    # ---- inputs
    features: dict[str, Any] = {"input": spec.input}
    rows = pd.concat([pool, test])
    if spec.input == "pixels":
        from ..data.pixels import infer_channels, infer_size

        size = size or spec.default_size or infer_size(rows)
        check_size(spec, size)
        features.update(size=size, channels=spec.channels or infer_channels(rows))
    else:
        features.update(
            backbone=backbone, size=size, weights=str(weights) if weights else None, random_state=random_state
        )
    X_all = load_inputs(features, rows, ds.classes, cache_dir=cache_dir, device=device, n_jobs=n_jobs)
    if spec.input == "embedding":
        features["dim"] = int(X_all.shape[1])
    X_pool, X_test = X_all[: len(pool)], X_all[len(pool) :]

    config = {
        "params": {k: v for k, v in params.items() if k != "device"},
        "features": features,
        "folds": folds,
        "valid_pct": valid_pct,
        "weight_col": weight_col,
        "hold_out": hold_out,
        "n_pool": len(pool),
        "n_test": len(test),
        "classes": ds.classes,
    }
    _check_resume(out, config, resume)

    if overfit_batch:
        return _run_overfit(out, params, X_pool, y_pool, ds.classes, model, t_start)

    write_json(out / TRAIN_CONFIG_FILE, config)
    write_json(out / "classes.json", ds.classes)
    write_table(out / "dataset.csv", pd.concat([pool, test]).reset_index(drop=True))

    # ---- folds
    n_models = folds
    jobs = [FoldJob(k, folds, params, out / f"fold-{k}", resume, dynamics, tta, device) for k in range(n_models)]
    arrays = {
        "X_pool": X_pool,
        "y_pool": y_pool,
        "pool_fold": pool["fold"].to_numpy(),
        "X_test": X_test,
        "w_pool": w_pool,
    }
    outcomes = run_folds(chosen, jobs, arrays, trackers(out, tensorboard, mlflow, config))
    held_probs = np.full((len(pool), len(ds.classes)), np.nan, np.float32)
    dyn_sum, dyn_models = np.zeros((len(pool), len(ds.classes))), np.zeros(len(pool))
    for outcome in outcomes:
        if outcome.held is not None:
            held_probs[arrays["pool_fold"] == outcome.k] = outcome.held
        if outcome.dynamics_rows is not None and outcome.dynamics is not None:
            dyn_sum[outcome.dynamics_rows] += outcome.dynamics
            dyn_models[outcome.dynamics_rows] += 1
    test_probs = [o.test for o in outcomes if o.test is not None]
    histories = [o.history for o in outcomes]
    summary = [o.summary() for o in outcomes]

    # ---- outputs
    from .metrics import classification_metrics

    metrics = pd.concat(histories, ignore_index=True)
    write_table(out / "metrics.csv", metrics[["fold"] + [c for c in metrics if c != "fold"]])
    plot_curves(metrics, params["monitor"], out / "curves.png")
    held_name = "oof_probs" if folds >= 2 else "valid_probs"
    has_held = ~np.isnan(held_probs).any(1)
    held_out = None
    if has_held.any():
        _write_probs(out / held_name, pool["sample_id"].to_numpy()[has_held], held_probs[has_held], ds.classes)
        held_out = _short(classification_metrics(y_pool[has_held], held_probs[has_held], ds.classes))
    if dynamics and (dyn_models > 0).any():
        has = dyn_models > 0
        mean = dyn_sum[has] / dyn_models[has, None]
        _write_probs(
            out / "dynamics_probs", pool["sample_id"].to_numpy()[has], mean / mean.sum(1, keepdims=True), ds.classes
        )
    test_metrics = None
    if len(test):
        mean = np.mean(test_probs, axis=0)
        _write_probs(out / "test_probs", test["sample_id"].to_numpy(), mean, ds.classes)
        test_metrics = _short(classification_metrics(y_test, mean, ds.classes))
    write_json(
        out / MODEL_FILE,
        {
            "format": "labelwise.ensemble",
            "labelwise": __version__,
            "model": model,
            "folds": n_models,
            "members": [f"fold-{k}/model.pt" for k in range(n_models)],
            "classes": ds.classes,
            "features": features,
            "params": {k: v for k, v in params.items() if k != "device"},
        },
    )
    result = TrainResult(
        out,
        model,
        n_models,
        len(pool),
        len(test),
        ds.classes,
        summary,
        held_out,
        test_metrics,
        seconds=round(time.perf_counter() - t_start, 2),
    )
    write_report(out, result, held_name, html=html)
    return result


def _check_resume(out: Path, config: dict[str, Any], resume: bool) -> None:
    path = out / TRAIN_CONFIG_FILE
    if not resume:
        return
    if not path.exists():
        log.warning("--resume: %s has no earlier run; starting from the beginning", out)
        return
    diff = config_differences(json.loads(path.read_text(encoding="utf-8")), json.loads(json.dumps(config)))
    if diff:
        raise LabelwiseError(
            f"{out}: --resume needs the same settings and data as the interrupted run, but {diff}; "
            "use the old settings or drop --resume (or use a new --out)"
        )


def _write_probs(stem: Path, sample_ids: np.ndarray, probs: np.ndarray, classes: list[str]) -> None:
    write_table(stem.with_suffix(".csv"), probability_table(sample_ids, probs, classes))
    write_npy(stem.with_suffix(".npy"), probs.astype(np.float32))


def _short(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1", "ece", "hter", "roc_auc")
    return {k: metrics[k] for k in keys if k in metrics}


def _run_overfit(
    out: Path, params: dict[str, Any], X: np.ndarray, y: np.ndarray, classes: list[str], model: str, t0: float
) -> TrainResult:
    from .classifier import NeuralClassifier, overfit_batch

    n = min(len(y), params["batch_size"], 64)
    rng = np.random.default_rng(params["random_state"])
    idx = rng.choice(len(y), n, replace=False)
    losses = overfit_batch(NeuralClassifier(**params), X[idx], y[idx])
    write_table(out / "overfit.csv", losses)
    report = {
        "batch": int(n),
        "steps": int(len(losses)),
        "first_loss": float(losses["loss"].iloc[0]),
        "final_loss": float(losses["loss"].iloc[-1]),
        "passed": bool(losses.attrs["passed"]),
    }
    write_json(out / "overfit.json", report)
    return TrainResult(out, model, 0, int(n), 0, classes, overfit=report, seconds=round(time.perf_counter() - t0, 2))
