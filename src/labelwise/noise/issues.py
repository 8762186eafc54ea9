"""``issues``: rank the labeled images whose given label is probably wrong."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_npy, write_table
from .._run import recorded
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError
from ..formats import TrainRun
from ..formats.probabilities import checked_probabilities, read_probability_table
from .detectors import DEFAULT_FILTER, get_detector, list_detectors

log = logging.getLogger("labelwise")

MIN_PER_CLASS = 5
# Epochs of the k-fold model trained for out-of-fold probabilities: label smoothing and few
# epochs keep a network from memorising the wrong labels it is meant to expose.
# Dynamics: 40 epochs, because the average is only as good as the network (CIFAR-10N 10k,
# bench/noise.py: 30 → 40 epochs, F1 0.648 → 0.660 on random_label1, 0.764 → 0.758 on
# worse_label, 9.4 → 11.7–12.8 minutes on 2 cores).
ISSUES_EPOCHS = {"dynamics": {"cnn": 40}, "oof": {"cnn": 8}}
SOURCES = ("auto", *ISSUES_EPOCHS)
# source="auto": out-of-fold below this many labeled images, training dynamics from it. On
# bench/noise.py, MNIST-5k (20% uniform noise): oof F1 0.956 vs dynamics 0.933 (an easy task
# is memorised within the dynamics' epochs); CIFAR-10N 10k: k-fold models that fit in 15 minutes reach
# 62% accuracy, one model's dynamics 75% and F1 0.62 in 400 s.
DYNAMICS_FROM = 10_000


def label_issues(
    labels: np.ndarray,
    *,
    pred_probs: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    method: str = "neighbors",
    k: int | None = None,
    filter_by: str = DEFAULT_FILTER,
    n_classes: int | None = None,
    held_out: np.ndarray | None = None,
) -> pd.DataFrame:
    """Array-level detection: one row per sample (positionally aligned with ``labels``).

    Columns: ``suggested`` (class index), ``label_quality`` (0–1, low = probably wrong),
    ``is_issue`` (the ``method``'s verdict) and ``vote_<detector>`` for every detector that
    the given inputs allow (``cleanlab`` needs ``pred_probs``, ``neighbors`` ``embeddings``).
    ``embeddings`` may be several spaces of the same samples, ``held_out`` saying which
    were learned without each sample's label (see :func:`~labelwise.noise.neighbor_probs`).

    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, .1, (20, 2)) + [1, 0], rng.normal(0, .1, (20, 2)) + [0, 1]]
    >>> y = np.r_[np.zeros(20, int), np.ones(20, int)]; y[3] = 1
    >>> np.flatnonzero(label_issues(y, embeddings=X, method="neighbors")["is_issue"]).tolist()
    [3]
    """
    labels = np.asarray(labels)
    n_classes = n_classes or (pred_probs.shape[1] if pred_probs is not None else int(labels.max()) + 1)
    options = dict(
        pred_probs=pred_probs, embeddings=embeddings, k=k, n_classes=n_classes, filter_by=filter_by, held_out=held_out
    )
    usable = [name for name in list_detectors() if _usable(name, pred_probs, embeddings)]
    if method not in usable:
        get_detector(method)  # an unknown name: a clear error
        need = "out-of-fold probabilities" if method == "cleanlab" else "embeddings"
        raise LabelwiseError(f"detector {method!r} needs {need}")
    votes = {name: get_detector(name)(labels, **options) for name in usable}
    chosen = votes[method]
    frame = pd.DataFrame({"suggested": chosen.suggested, "label_quality": chosen.quality, "is_issue": chosen.is_issue})
    for name, det in votes.items():
        frame[f"vote_{name}"] = det.is_issue
    return frame


def _usable(name: str, pred_probs: Any, embeddings: Any) -> bool:
    return {"cleanlab": pred_probs is not None, "neighbors": embeddings is not None}.get(
        name, pred_probs is not None or embeddings is not None
    )


def out_of_fold_head_probs(
    embeddings: np.ndarray, labels: np.ndarray, n_classes: int, *, folds: int = 5, random_state: int = 0
) -> np.ndarray:
    """Out-of-fold probabilities of a logistic regression on standardised ``embeddings``:
    the fast probability source when no ``train`` run is given."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probs = np.zeros((len(labels), n_classes))
    counts = np.bincount(labels, minlength=n_classes)
    folds = max(2, min(folds, int(counts[counts > 0].min())))
    with warnings.catch_warnings():  # classes smaller than the folds: issues.py warns about them by name
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=random_state).split(embeddings, labels))
    for train_idx, test_idx in splits:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.1))
        model.fit(embeddings[train_idx], labels[train_idx])
        probs[np.ix_(test_idx, model[-1].classes_)] = model.predict_proba(embeddings[test_idx])
    return probs


@dataclass
class IssuesResult:
    table: pd.DataFrame  # label_issues.csv
    noise_rates: pd.DataFrame
    method: str

    @property
    def n_issues(self) -> int:
        return int(self.table["is_issue"].sum())

    def summary(self) -> dict[str, Any]:
        return {"n_labeled": len(self.table), "n_issues": self.n_issues, "method": self.method}


@recorded("issues", inputs=dataset_inputs(files=("probs", "weights")))
def find_issues(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    probs: str | os.PathLike[str] | pd.DataFrame | None = None,
    model: str = "cnn",
    source: str = "auto",
    epochs: int | None = None,
    train_options: dict[str, Any] | None = None,
    backbone: str | None = None,
    size: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    method: str = "ensemble",
    k: int | None = None,
    filter_by: str = DEFAULT_FILTER,
    folds: int = 5,
    top: int = 24,
    html: bool = True,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> IssuesResult:
    """Find probably-wrong labels in ``data``, ranked worst first.

    Probabilities: ``probs`` (a ``train`` folder, its ``oof_probs.csv``, or any table with
    ``sample_id`` and ``prob_<class>`` columns); else ``model`` (default ``cnn``; any model of
    ``labelwise models``) is trained on the given labels (in ``out/train``; ``epochs`` default
    :data:`ISSUES_EPOCHS`; ``train_options`` go to ``train``). ``source="oof"`` trains ``folds``
    models for out-of-fold probabilities; ``"dynamics"`` trains one model on every labeled
    image and averages each image's softmax over the training epochs (a network fits wrong
    labels last): ``folds`` times cheaper. ``"auto"`` (default): oof below
    :data:`DYNAMICS_FROM` labeled images, dynamics from it. ``model="head"`` (or no PyTorch) takes a 5-fold
    logistic regression on the embeddings instead: fast, weaker. Embeddings (``backbone``,
    cached; default: the features of the models behind the probabilities, each fold model's
    space voting and the votes averaged, else ``pixels``) feed the
    ``neighbors`` votes. ``method``: ``ensemble`` (default, best on
    bench/noise.py), ``cleanlab`` or ``neighbors`` (training-free).

    Writes ``label_issues.csv`` (``sample_id, path, given_label, suggested_label,
    label_quality, is_issue, vote_<detector>``), ``noise_rates.csv``, ``top_issues.png`` and
    ``report.md`` to ``out``.
    """
    from ..features import embed

    if source not in SOURCES:
        raise LabelwiseError(f"unknown probability source {source!r}; choose one of {', '.join(SOURCES)}")
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, n_jobs=n_jobs)
    labeled = ds.labeled.reset_index(drop=True)
    if labeled.empty:
        raise LabelwiseError(f"{ds.source or 'data'}: no labeled images")
    lookup = {c: i for i, c in enumerate(ds.classes)}
    y = labeled["label"].map(lookup).to_numpy(np.int64)
    counts = np.bincount(y, minlength=len(ds.classes))
    _check_judgeable(counts, ds.classes, ds.source)
    for name, c in zip(ds.classes, counts):
        if 0 < c < MIN_PER_CLASS:
            log.warning("class %r has only %d labeled image(s): its issues cannot be judged reliably", name, c)
    pred_probs = None
    trained_dynamics = False
    if probs is None and method != "neighbors" and _trains(model):
        from ..train import train

        if out is None:
            raise LabelwiseError("training a model for the probabilities needs an output folder (out)")
        from ..train.models import get_model_spec

        if source == "auto":
            source = "dynamics" if len(labeled) >= DYNAMICS_FROM else "oof"
        options = {"flip": False, "label_smoothing": 0.1, "html": False, **(train_options or {})}
        if get_model_spec(model).input == "embedding":  # a head on the same embeddings
            options.update(backbone=backbone or "pixels", size=size, weights=weights, cache_dir=cache_dir)
        if source == "dynamics":
            options.update(folds=1, valid_pct=0.0, dynamics=True)
        else:
            options.update(folds=folds)
        train(
            Dataset(labeled.assign(split="train"), ds.classes, source=ds.source),
            Path(out) / "train",
            model=model,
            epochs=epochs or ISSUES_EPOCHS[source].get(model),
            random_state=random_state,
            n_jobs=n_jobs,
            **options,
        )
        run = TrainRun(Path(out) / "train")
        probs = run.path(TrainRun.DYNAMICS) if source == "dynamics" else run.folder
        trained_dynamics = source == "dynamics"
    if probs is not None:
        pred_probs = read_probabilities(probs, labeled["sample_id"], ds.classes)
        if not trained_dynamics:
            _warn_if_in_sample(pred_probs, y)
    embeddings: Any = None
    held_out = None
    networks = _model_folder(probs)
    if (method != "cleanlab" or pred_probs is None) and backbone is None and networks is not None:
        embeddings, held_out = _network_features(networks, labeled, n_jobs)
    elif method != "cleanlab" or pred_probs is None:
        embeddings = embed(
            Dataset(labeled, ds.classes, source=ds.source),
            backbone=backbone or "pixels",
            size=size,
            weights=weights,
            cache_dir=cache_dir,
            random_state=random_state,
        )
    if pred_probs is None and method != "neighbors":
        pred_probs = out_of_fold_head_probs(embeddings, y, len(ds.classes), folds=folds, random_state=random_state)
    found = label_issues(
        y,
        pred_probs=pred_probs,
        embeddings=embeddings,
        method=method,
        k=k,
        filter_by=filter_by,
        n_classes=len(ds.classes),
        held_out=held_out,
    )
    classes = np.asarray(ds.classes, dtype=object)
    table = pd.DataFrame(
        {
            "sample_id": labeled["sample_id"],
            "path": labeled["path"],
            "given_label": labeled["label"],
            "suggested_label": classes[found["suggested"].to_numpy()],
            "label_quality": found["label_quality"].round(6),
            "is_issue": found["is_issue"],
        }
    )
    for col in found.columns:
        if col.startswith("vote_"):
            table[col] = found[col]
    table = table.sort_values(["is_issue", "label_quality"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )
    rates = (
        table.groupby("given_label", sort=False)["is_issue"]
        .agg(n="size", n_issues="sum")
        .reindex([c for c, n in zip(ds.classes, counts) if n > 0])
        .rename_axis("class")
        .reset_index()
    )
    rates["estimated_noise_rate"] = (rates["n_issues"] / rates["n"]).round(4)
    result = IssuesResult(table, rates, method)
    if out is not None:
        _write(Path(out), result, ds, pred_probs, labeled, top=top, html=html)
    return result


def _check_judgeable(counts: np.ndarray, classes: list[str], source: str) -> None:
    """A one-line error, before any training, for labels no method can judge."""
    where = source or "data"
    present = np.flatnonzero(counts)
    if len(present) < 2:
        only = f"only class {classes[present[0]]!r} has" if len(present) else "no class has"
        raise LabelwiseError(f"{where}: {only} labeled images; judging labels needs at least two classes")
    if counts[present].max() < 2:
        raise LabelwiseError(
            f"{where}: every class has a single labeled image ({int(counts.sum())} in all); a label "
            "can be judged only against others of its class: label more images"
        )


def _model_folder(probs: Any) -> Path | None:
    """The ``train`` folder behind ``probs`` (a folder, or a file in one), if it holds models."""
    if probs is None or isinstance(probs, pd.DataFrame):
        return None
    folder = Path(probs) if Path(probs).is_dir() else Path(probs).parent
    return folder if TrainRun.holds_models(folder) else None


def _network_features(folder: Path, labeled: pd.DataFrame, n_jobs: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The embedding each model trained in ``folder`` learned (one per fold model) for the
    labeled images, and which of them each model held out. Neighbour votes in the spaces
    that held a sample out beat votes on pixels: MNIST-5k, 20% uniform noise, F1 0.966 vs
    0.855 (z-scored pixels) alone, 0.967 vs 0.946 in the ensemble (bench/noise.py)."""
    from ..train.prediction import Ensemble

    ensemble = Ensemble.load(folder)
    X = ensemble.inputs(labeled, n_jobs=n_jobs)
    return [member.transform(X) for member in ensemble.members], ~ensemble.trained_on(labeled["sample_id"])


def _trains(model: str | None) -> bool:
    """Whether ``model`` means training a network (else: the logistic-regression head)."""
    if model in (None, "head"):
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        log.warning(
            "PyTorch is not installed: out-of-fold probabilities from a logistic regression on the embeddings instead of %r",
            model,
        )
        return False
    return True


def read_probabilities(probs: Any, sample_ids: pd.Series, classes: list[str]) -> np.ndarray:
    """Probabilities aligned with ``sample_ids``, checked against ``classes``; ``probs`` may
    be a ``train`` folder (its out-of-fold and held-out test files), a file or a DataFrame."""
    if isinstance(probs, pd.DataFrame):
        where, frame = "probabilities", probs
    elif Path(probs).is_dir():
        # A train folder: out-of-fold rows plus its held-out split, which no fold model saw either.
        run = TrainRun(probs)
        held = run.held_out or run.path(TrainRun.OOF)
        files = [held] + ([run.test] if run.test else [])
        run.check(*(f.name for f in files))
        where = " + ".join(map(str, files))
        frame = pd.concat([read_probability_table(f) for f in files], ignore_index=True)
    else:
        if TrainRun.holds_models(Path(probs).parent):
            TrainRun(Path(probs).parent).check(Path(probs).name)
        where, frame = str(probs), read_probability_table(probs)
    ids, p = checked_probabilities(frame, classes, where)
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    wanted = sample_ids.astype(str)
    missing = ~wanted.isin(position.index)
    if missing.any():
        raise LabelwiseError(
            f"{where}: no probabilities for sample_id {wanted[missing].iloc[0]!r} ({int(missing.sum())} missing)"
        )
    p = p[position.loc[wanted].to_numpy()]
    return p / p.sum(1, keepdims=True)


def _warn_if_in_sample(probs: np.ndarray, y: np.ndarray) -> None:
    accuracy = float((probs.argmax(1) == y).mean())
    confidence = float(probs.max(1).mean())
    if accuracy > 0.995 and confidence > 0.98:
        log.warning(
            "the probabilities agree with %.1f%% of the given labels at %.3f mean confidence: they look "
            "in-sample (the model saw these labels). Use out-of-fold probabilities (train --folds K) "
            "or wrong labels will be missed",
            100 * accuracy,
            confidence,
        )


def _write(
    out: Path,
    result: IssuesResult,
    ds: Dataset,
    probs: np.ndarray | None,
    labeled: pd.DataFrame,
    *,
    top: int,
    html: bool,
) -> None:
    from ..report import Report

    write_table(out / "label_issues.csv", result.table)
    write_table(out / "noise_rates.csv", result.noise_rates)
    if probs is not None:
        write_npy(out / "pred_probs.npy", probs.astype(np.float32))
    worst = result.table[result.table["is_issue"]].head(top)
    if len(worst):
        _issue_grid(worst, out / "top_issues.png")
    rep = Report("labelwise issues")
    rep.paragraph(
        f"{result.n_issues} of {len(result.table)} labeled images ({result.n_issues / max(len(result.table), 1):.1%}) "
        f"have a probably wrong label (detector `{result.method}`)."
    )
    rep.heading("Estimated noise rate per class")
    rep.table(result.noise_rates)
    if len(worst):
        rep.image(out / "top_issues.png", "top issues: given → suggested")
        rep.heading("Worst issues")
        rep.table(
            worst[["sample_id", "given_label", "suggested_label", "label_quality"]],
            max_rows=top,
            note_file="label_issues.csv",
        )
    rep.write(out / "report.md", html=html)


def _issue_grid(rows: pd.DataFrame, path: Path) -> None:
    from .._io import save_figure
    from ..data import open_image
    from ..report import new_figure

    cols = min(8, len(rows))
    nrows = -(-len(rows) // cols)
    fig = new_figure(1.4 * cols, 1.6 * nrows)
    for i, (_, row) in enumerate(rows.iterrows()):
        ax = fig.add_subplot(nrows, cols, i + 1)
        try:
            image = open_image(row["path"], mode=None)
            image.thumbnail((96, 96))
            ax.imshow(np.asarray(image), cmap="gray" if image.mode in {"L", "1"} else None)
        except (OSError, ValueError):
            pass
        ax.set_title(f"{row['given_label']} → {row['suggested_label']}", fontsize=7, color="#b00")
        ax.axis("off")
    save_figure(fig, path, dpi=100)
