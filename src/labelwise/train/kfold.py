"""``train``: a model, or a stratified k-fold ensemble with out-of-fold probabilities."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import record_made, write_json, write_npy, write_table
from .._run import config_differences, flatten, recorded
from .._version import __version__
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError, require
from ..formats import TrainRun
from ..formats.probabilities import probability_table
from .models import check_size, get_model_spec

log = logging.getLogger("labelwise")

MODEL_FILE = TrainRun.MODEL
TRAIN_CONFIG_FILE = TrainRun.CONFIG
DEFAULT_EPOCHS = {"cnn": 20, "embedding": 60, "torchvision": 10}
DEFAULT_BATCH = {"cnn": 128, "embedding": 256, "torchvision": 32}


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
def train(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str = "cnn",
    folds: int = 5,
    valid_pct: float = 0.1,
    hold_out: str = "test",
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    optimizer: str = "adamw",
    weight_decay: float = 5e-4,
    schedule: str = "onecycle",
    step_size: int = 10,
    gamma: float = 0.1,
    warmup_epochs: float = 1.0,
    augment: str = "light",
    flip: bool = True,
    balance: str = "none",
    label_smoothing: float = 0.0,
    patience: int | None = None,
    monitor: str = "balanced_accuracy",
    size: int | None = None,
    width: int = 16,
    dropout: float = 0.2,
    hidden: int = 256,
    freeze: bool = False,
    weights: str | os.PathLike[str] | None = None,
    backbone: str = "pixels",
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    amp: bool = True,
    tta: bool = False,
    dynamics: bool = False,
    weight_col: str | None = None,
    resume: bool = False,
    overfit_batch: bool = False,
    skip_missing: bool = False,
    tensorboard: bool = False,
    mlflow: bool = False,
    html: bool = True,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
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
    Other parameters: see :class:`NeuralClassifier`.

    Writes ``model.json``, ``classes.json``, ``dataset.csv`` (rows used, with ``fold``),
    ``fold-K/model.pt``, ``metrics.csv`` (per epoch), ``curves.png``, out-of-fold /
    validation / test probabilities, ``report.md`` (+ ``.html``).
    """
    require("torch", "torch", "labelwise train")
    from .classifier import NeuralClassifier

    t_start = time.perf_counter()
    out = Path(out)
    spec = get_model_spec(model)
    kind = "cnn" if model == "cnn" else spec.input if spec.input == "embedding" else "torchvision"
    epochs = epochs or DEFAULT_EPOCHS[kind]
    batch_size = batch_size or DEFAULT_BATCH[kind]
    if folds < 1:
        raise LabelwiseError(f"folds must be at least 1, got {folds}")
    if model == "cnn" and weights is not None:
        log.warning("--weights is for torchvision models and --backbone; the cnn starts from scratch")
    if spec.input == "embedding" and freeze:
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
    lookup = {c: i for i, c in enumerate(ds.classes)}
    y_pool = pool["label"].map(lookup).to_numpy(np.int64)
    y_test = test["label"].map(lookup).to_numpy(np.int64)
    pool["fold"] = _assign_folds(pool, y_pool, folds, valid_pct, ds.classes, random_state)
    w_pool = _row_weights(pool, weight_col, ds.source) if weight_col else None
    test["fold"] = -1

    params: dict[str, Any] = dict(
        model=model,
        n_classes=len(ds.classes),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        schedule=schedule,
        step_size=step_size,
        gamma=gamma,
        warmup_epochs=warmup_epochs,
        augment=augment,
        flip=flip,
        balance=balance,
        label_smoothing=label_smoothing,
        patience=patience,
        monitor=monitor,
        freeze=freeze,
        weights=_network_weights(model, spec.input, weights),
        width=width,
        dropout=dropout,
        hidden=hidden,
        device=device,
        amp=amp,
        random_state=random_state,
    )
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
        features.update(backbone=backbone, size=size, weights=str(weights) if weights else None, random_state=random_state)
    X_all = load_inputs(features, rows, ds.classes, cache_dir=cache_dir, device=device, n_jobs=n_jobs)
    if spec.input == "embedding":
        features["dim"] = int(X_all.shape[1])
    X_pool, X_test = X_all[: len(pool)], X_all[len(pool) :]

    config = {"params": {k: v for k, v in params.items() if k != "device"}, "features": features,
              "folds": folds, "valid_pct": valid_pct, "weight_col": weight_col, "hold_out": hold_out, "n_pool": len(pool), "n_test": len(test), "classes": ds.classes}
    _check_resume(out, config, resume)

    if overfit_batch:
        return _run_overfit(out, params, X_pool, y_pool, ds.classes, model, t_start)

    write_json(out / TRAIN_CONFIG_FILE, config)
    write_json(out / "classes.json", ds.classes)
    write_table(out / "dataset.csv", pd.concat([pool, test]).reset_index(drop=True))

    # ---- folds
    n_models = folds
    pool_fold = pool["fold"].to_numpy()
    held_probs = np.full((len(pool), len(ds.classes)), np.nan, np.float32)
    dyn_sum, dyn_models = np.zeros((len(pool), len(ds.classes))), np.zeros(len(pool))
    test_probs = []
    histories = []
    summary = []
    trackers = _trackers(out, tensorboard, mlflow, config)
    for k in range(n_models):
        fold_dir = out / f"fold-{k}"
        valid_mask = pool_fold == k
        train_mask = fold_training_rows(pool_fold, k, folds)
        model_path = fold_dir / "model.pt"
        if resume and model_path.exists():
            log.info("fold %d: already trained, loading %s", k, model_path)
            clf = NeuralClassifier.load(model_path, device=device)
            history = pd.read_csv(fold_dir / "metrics.csv")
        else:
            log.info("fold %d/%d: %d training, %d validation images", k + 1, n_models, train_mask.sum(), valid_mask.sum())
            clf = NeuralClassifier(**params)
            clf.fit(
                X_pool[train_mask],
                y_pool[train_mask],
                X_valid=X_pool[valid_mask],
                y_valid=y_pool[valid_mask],
                checkpoint=fold_dir / "checkpoint.pt",
                resume=resume,
                on_epoch=trackers(k),
                track_train_probs=dynamics,
                sample_weight=None if w_pool is None else w_pool[train_mask],
            )
            if dynamics and len(clf.train_probs_):
                with np.errstate(invalid="ignore"):
                    mean = np.nanmean(clf.train_probs_[_dynamics_epochs(clf.train_probs_)].astype(np.float32), axis=0)
                seen = ~np.isnan(mean).any(1)
                where = np.flatnonzero(train_mask)[seen]
                dyn_sum[where] += mean[seen]
                dyn_models[where] += 1
            history = clf.history_.assign(fold=k)
            write_table(fold_dir / "metrics.csv", history)
            clf.save(model_path)
            (fold_dir / "checkpoint.pt").unlink(missing_ok=True)
        histories.append(history)
        if valid_mask.any():
            held_probs[valid_mask] = clf.predict_proba(X_pool[valid_mask], tta=tta)
        if len(test):
            test_probs.append(clf.predict_proba(X_test, tta=tta))
        best = history[history["epoch"] == clf.best_epoch_]
        summary.append({"fold": k, "n_train": int(train_mask.sum()), "n_valid": int(valid_mask.sum()),
                        "best_epoch": int(clf.best_epoch_), "epochs_run": int(history["epoch"].max()),
                        **{c: float(best[c].iloc[0]) for c in best if c.startswith("valid_")}})

    # ---- outputs
    from .metrics import classification_metrics

    metrics = pd.concat(histories, ignore_index=True)
    write_table(out / "metrics.csv", metrics[["fold"] + [c for c in metrics if c != "fold"]])
    _plot_curves(metrics, monitor, out / "curves.png")
    held_name = "oof_probs" if folds >= 2 else "valid_probs"
    has_held = ~np.isnan(held_probs).any(1)
    held_out = None
    if has_held.any():
        _write_probs(out / held_name, pool["sample_id"].to_numpy()[has_held], held_probs[has_held], ds.classes)
        held_out = _short(classification_metrics(y_pool[has_held], held_probs[has_held], ds.classes))
    if dynamics and (dyn_models > 0).any():
        has = dyn_models > 0
        mean = dyn_sum[has] / dyn_models[has, None]
        _write_probs(out / "dynamics_probs", pool["sample_id"].to_numpy()[has], mean / mean.sum(1, keepdims=True), ds.classes)
    test_metrics = None
    if len(test):
        mean = np.mean(test_probs, axis=0)
        _write_probs(out / "test_probs", test["sample_id"].to_numpy(), mean, ds.classes)
        test_metrics = _short(classification_metrics(y_test, mean, ds.classes))
    write_json(out / MODEL_FILE, {
        "format": "labelwise.ensemble", "labelwise": __version__, "model": model, "folds": n_models,
        "members": [f"fold-{k}/model.pt" for k in range(n_models)], "classes": ds.classes,
        "features": features, "params": {k: v for k, v in params.items() if k != "device"},
    })
    result = TrainResult(out, model, n_models, len(pool), len(test), ds.classes, summary, held_out, test_metrics,
                         seconds=round(time.perf_counter() - t_start, 2))
    _write_report(out, result, held_name, html=html)
    return result


def check_trainable(labeled: pd.DataFrame, hold_out: str, source: str) -> None:
    """A one-line error, before any training, when the labeled rows cannot train a classifier."""
    rows = labeled[labeled["split"].ne(hold_out)] if "split" in labeled else labeled
    present = rows["label"].value_counts()
    if len(present) < 2:
        only = f"only class {present.index[0]!r} has" if len(present) else "no class has"
        raise LabelwiseError(f"{source or 'data'}: {only} labeled images outside the {hold_out!r} split; a classifier "
                             "needs at least two classes")


def load_inputs(
    features: dict[str, Any], table: pd.DataFrame, classes: list[str], *, cache_dir: Any = None, device: str = "auto", n_jobs: int = 2
) -> np.ndarray:
    """What a model described by ``features`` (``model.json``) takes for ``table``'s images:
    decoded pixels, or embeddings from the same backbone, size, weights and seed (cached)."""
    if features["input"] == "pixels":
        from ..data.pixels import load_pixels

        return load_pixels(table["path"].tolist(), int(features["size"]), int(features["channels"]), n_jobs=n_jobs)
    from ..features import embed

    return embed(
        Dataset(table.reset_index(drop=True), classes),
        backbone=features["backbone"],
        size=features.get("size"),
        weights=features.get("weights"),
        cache_dir=cache_dir,
        device=device,
        random_state=features.get("random_state", 0),
    )


# ---------------------------------------------------------------- helpers


def _assign_folds(pool: pd.DataFrame, y: np.ndarray, folds: int, valid_pct: float, classes: list[str], seed: int) -> np.ndarray:
    """Fold per pool row: 0..folds-1 for k-fold; for one model 0 = validation, -1 = training."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    counts = np.bincount(y, minlength=len(classes))
    if folds >= 2:
        small = [(classes[i], int(c)) for i, c in enumerate(counts) if 0 < c < folds]
        if small:
            name, c = min(small, key=lambda item: item[1])
            fix = (f"lower --folds to {c} or label more images of it" if c >= 2 else
                   "label at least one more image of it, remove its label, or train one model (--folds 1)")
            raise LabelwiseError(
                f"class {name!r} has {c} labeled image{'s' if c != 1 else ''}, fewer than --folds {folds}: every fold "
                f"needs one; {fix}" + (f" ({len(small) - 1} more such classes)" if len(small) > 1 else "")
            )
        fold = np.full(len(y), -1)
        for k, (_, idx) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)):
            fold[idx] = k
        return fold
    split = pool["split"].to_numpy() if "split" in pool else np.full(len(y), None)
    if (split == "valid").any():
        return np.where(split == "valid", 0, -1)
    if valid_pct <= 0:
        return np.full(len(y), -1)
    stratify = y if counts[counts > 0].min() >= 2 else None
    _, valid_idx = train_test_split(np.arange(len(y)), test_size=valid_pct, stratify=stratify, random_state=seed)
    fold = np.full(len(y), -1)
    fold[valid_idx] = 0
    return fold


def fold_training_rows(fold: np.ndarray, k: int, folds: int) -> np.ndarray:
    """Which pool rows model ``k`` trains on, given each row's ``fold``: every row outside
    fold ``k`` with ``folds ≥ 2``; with one model fold 0 is its validation split and -1 its
    training rows."""
    return fold != k if folds >= 2 else fold == -1


def _dynamics_epochs(train_probs: np.ndarray) -> slice:
    """The epochs whose softmax the dynamics average: all but the first third, where the
    network has not yet learned the classes and says little about any one sample
    (CIFAR-10N first 10k, 30 epochs: F1 0.656 → 0.666 on random_label1 and 0.753 → 0.761 on
    worse_label, bench/noise.py)."""
    return slice(len(train_probs) // 3, None)


def _row_weights(pool: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """The ``column`` values of the training rows as loss weights (missing: 1)."""
    where = source or "data"
    if column not in pool.columns:
        raise LabelwiseError(f"{where}: no column {column!r} for the sample weights; columns are: {', '.join(map(str, pool.columns))}")
    w = pd.to_numeric(pool[column], errors="coerce")
    bad = pool[column].notna() & pool[column].astype(str).str.strip().ne("") & w.isna()
    if bad.any():
        row = bad.to_numpy().argmax()
        raise LabelwiseError(f"{where}: {column} of {pool['sample_id'].iloc[row]} is {pool[column].iloc[row]!r}, not a number")
    w = w.fillna(1.0).to_numpy(np.float32)
    if (w < 0).any() or not np.isfinite(w).all():
        row = int(np.flatnonzero((w < 0) | ~np.isfinite(w))[0])
        raise LabelwiseError(f"{where}: {column} of {pool['sample_id'].iloc[row]} is {w[row]}; weights must be finite and non-negative")
    return w


def _network_weights(model: str, kind: str, weights: Any) -> str | None:
    """What the network itself starts from: ``weights`` for a torchvision model (the cached
    official file when None), nothing for ``cnn`` and for heads (their ``weights`` are the
    embedding backbone's)."""
    if kind != "pixels" or model == "cnn":
        return None
    return str(weights) if weights is not None else "hub"


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


def _run_overfit(out: Path, params: dict[str, Any], X: np.ndarray, y: np.ndarray, classes: list[str], model: str, t0: float) -> TrainResult:
    from .classifier import NeuralClassifier, overfit_batch

    n = min(len(y), params["batch_size"], 64)
    rng = np.random.default_rng(params["random_state"])
    idx = rng.choice(len(y), n, replace=False)
    losses = overfit_batch(NeuralClassifier(**params), X[idx], y[idx])
    write_table(out / "overfit.csv", losses)
    report = {"batch": int(n), "steps": int(len(losses)), "first_loss": float(losses["loss"].iloc[0]),
              "final_loss": float(losses["loss"].iloc[-1]), "passed": bool(losses.attrs["passed"])}
    write_json(out / "overfit.json", report)
    return TrainResult(out, model, 0, int(n), 0, classes, overfit=report, seconds=round(time.perf_counter() - t0, 2))


def _trackers(out: Path, tensorboard: bool, mlflow: bool, config: dict[str, Any]) -> Callable[[int], Callable[[dict[str, Any]], None] | None]:
    """A factory of per-fold epoch callbacks logging to TensorBoard and/or MLflow."""
    if not (tensorboard or mlflow):
        return lambda k: None
    writers: dict[int, Any] = {}
    mlf = None
    if tensorboard:
        require("tensorboard", "tensorboard", "--tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        record_made(out / "tensorboard")
    if mlflow:
        mlf = require("mlflow", "mlflow", "--mlflow")
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # A plain local file store, as asked for: no server, no database. MLflow ≥ 3.x
            # refuses it unless opted in; the opt-in only affects this process.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlf.set_tracking_uri((out / "mlruns").resolve().as_uri())
            record_made(out / "mlruns")
        mlf.set_experiment("labelwise")

    def for_fold(k: int) -> Callable[[dict[str, Any]], None]:
        if tensorboard:
            writers[k] = SummaryWriter(str(out / "tensorboard" / f"fold-{k}"))
        if mlf is not None:
            if mlf.active_run():
                mlf.end_run()
            mlf.start_run(run_name=f"fold-{k}")
            mlf.log_params({k2: str(v) for k2, v in flatten(config).items() if not k2.startswith("classes")})

        def log_row(row: dict[str, Any]) -> None:
            step = int(row["epoch"])
            scalars = {m: float(v) for m, v in row.items() if m != "epoch"}
            if k in writers:
                for m, v in scalars.items():
                    writers[k].add_scalar(m, v, step)
                writers[k].flush()
            if mlf is not None:
                mlf.log_metrics(scalars, step=step)

        return log_row

    return for_fold


def _plot_curves(metrics: pd.DataFrame, monitor: str, path: Path) -> None:
    from .._io import save_figure
    from ..report import new_figure

    key = "valid_loss" if monitor == "valid_loss" else f"valid_{monitor}"
    has_valid = key in metrics
    fig = new_figure(10 if has_valid else 5, 3.6)
    axes = fig.subplots(1, 2 if has_valid else 1, squeeze=False)[0]
    for fold, part in metrics.groupby("fold"):
        line = axes[0].plot(part["epoch"], part["train_loss"], label=f"fold {fold} train")[0]
        if "valid_loss" in part:
            axes[0].plot(part["epoch"], part["valid_loss"], "--", color=line.get_color(), label=f"fold {fold} valid")
        if has_valid:
            axes[1].plot(part["epoch"], part[key], color=line.get_color(), label=f"fold {fold}")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss (solid: train, dashed: valid)")
    if has_valid:
        axes[1].set(xlabel="epoch", ylabel=key.removeprefix("valid_").replace("_", " "), title=f"validation {key.removeprefix('valid_')}")
    if metrics["fold"].nunique() <= 5:
        axes[-1].legend(fontsize=7)
    save_figure(fig, path)


def _write_report(out: Path, result: TrainResult, held_name: str, *, html: bool) -> None:
    from ..report import Report

    rep = Report(f"labelwise train: {result.model}")
    rep.paragraph(
        f"{result.folds} model{'s' if result.folds > 1 else ''} on {result.n_train} labeled images "
        f"({len(result.classes)} classes), {result.n_test} test images held out; {result.seconds:.0f} s."
    )
    rep.heading("Folds (best epoch)")
    rep.table(pd.DataFrame(result.fold_summary).round(4))
    for title, metrics in ((f"Held out ({held_name}.csv)", result.held_out), ("Test split (ensemble mean)", result.test)):
        if metrics:
            rep.heading(title)
            rep.table(pd.DataFrame([metrics]).round(4))
    rep.image(out / "curves.png", "training curves")
    rep.write(out / "report.md", html=html)
