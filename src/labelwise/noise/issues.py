"""``issues``: rank the labeled images whose given label is probably wrong."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._engine import scoped_engine
from .._run import recorded
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError
from ..formats import TrainRun
from .detectors import DEFAULT_FILTER
from .issues_report import write_issues
from .probabilities import (
    model_folder,
    network_features,
    out_of_fold_head_probs,
    read_probabilities,
    warn_if_in_sample,
)
from .verdict import MIN_ACCURACY, MIN_DOUBT, SURE_DOUBT, Evidence, label_issues

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


@dataclass
class IssuesResult:
    table: pd.DataFrame  # label_issues.csv
    noise_rates: pd.DataFrame
    method: str
    verdict: dict[str, Any] = field(default_factory=dict)  # how sure: see _verdict

    @property
    def n_issues(self) -> int:
        return int(self.table["is_issue"].sum())

    def summary(self) -> dict[str, Any]:
        return {"n_labeled": len(self.table), "n_issues": self.n_issues, "method": self.method, **self.verdict}


@recorded("issues", inputs=dataset_inputs(files=("probs", "weights")))
@scoped_engine
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
    pretrained: bool | None = None,
    min_doubt: float = MIN_DOUBT,
    k: int | None = None,
    filter_by: str = DEFAULT_FILTER,
    folds: int = 5,
    top: int = 24,
    html: bool = True,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
    engine: str | None = None,
    ray_address: str | None = None,
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

    For colour photos the ``ensemble`` also weighs ImageNet features (``efficientnet_lite0``,
    ``labelwise[pretrained]``): a logistic regression's out-of-fold probabilities and neighbour
    votes on them; ``pretrained=False`` leaves them out, ``True`` insists on them. The verdict
    knows how sure it is (:mod:`labelwise.noise.verdict`): every label gets a ``doubt`` (its
    chance of being wrong once the evidence's own error is accounted for); a candidate is
    flagged only when its doubt reaches ``min_doubt``, and when the evidence is too weak to
    judge labels at all (estimated accuracy below 50%) only labels it is sure of are flagged,
    with a warning saying what would help.

    Writes ``label_issues.csv`` (``sample_id, path, given_label, suggested_label,
    label_quality, doubt, is_issue, vote_<detector>``), ``noise_rates.csv``, ``top_issues.png`` and
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
            warn_if_in_sample(pred_probs, y)
    embeddings: Any = None
    held_out = None
    networks = model_folder(probs)
    if (method != "cleanlab" or pred_probs is None) and backbone is None and networks is not None:
        embeddings, held_out = network_features(networks, labeled, n_jobs)
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
    extra: list[np.ndarray] = []
    if method == "ensemble" and backbone is None and pretrained is not False:
        extra = _pretrained_sources(
            labeled, ds, y, folds=folds, cache_dir=cache_dir, random_state=random_state, required=pretrained is True
        )
    found = label_issues(
        y,
        pred_probs=pred_probs,
        embeddings=embeddings,
        method=method,
        k=k,
        filter_by=filter_by,
        n_classes=len(ds.classes),
        held_out=held_out,
        extra_sources=extra,
        min_doubt=min_doubt,
    )
    evidence = found.attrs.get("evidence")
    classes = np.asarray(ds.classes, dtype=object)
    table = pd.DataFrame(
        {
            "sample_id": labeled["sample_id"],
            "path": labeled["path"],
            "given_label": labeled["label"],
            "suggested_label": classes[found["suggested"].to_numpy()],
            "label_quality": found["label_quality"].round(6),
            "doubt": found["doubt"].round(6),
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
    result = IssuesResult(table, rates, method, _verdict(evidence, table, extra))
    if out is not None:
        write_issues(Path(out), result, pred_probs, top=top, html=html)
    return result


def _pretrained_sources(
    labeled: pd.DataFrame,
    ds: Dataset,
    y: np.ndarray,
    *,
    folds: int,
    cache_dir: Any,
    random_state: int,
    required: bool,
) -> list[np.ndarray]:
    """Evidence from ImageNet features for colour photos: a logistic regression's out-of-fold
    probabilities and the neighbour votes in that space (none for grayscale images, or
    without the weights unless ``required``)."""
    from ..data.pixels import infer_channels
    from ..features import auto_backbone, embed, pretrained_available
    from ..features.choice import PHOTO_BACKBONE
    from .detectors import auto_neighbors, neighbor_probs

    if not required and (infer_channels(labeled) != 3 or not pretrained_available()):
        if infer_channels(labeled) == 3:
            log.warning(
                "issues: colour photos without pretrained features: the verdict rests on a network trained "
                "on these labels alone (pip install 'labelwise[pretrained]' adds ImageNet evidence)"
            )
        return []
    backbone, size = auto_backbone(labeled, purpose="issues: pretrained evidence")
    if backbone != PHOTO_BACKBONE:
        return []
    features = embed(
        Dataset(labeled, ds.classes, source=ds.source),
        backbone=backbone,
        size=size,
        cache_dir=cache_dir,
        random_state=random_state,
    )
    k = len(ds.classes)
    return [
        # Unit-length rows and a milder penalty than the default head's: on pretrained features the
        # standardised head learns the wrong labels along with the right ones (bench/noise.py, CIFAR-10N).
        out_of_fold_head_probs(features, y, k, folds=folds, random_state=random_state, scale="l2", C=1.0),
        neighbor_probs(features, y, k, k=auto_neighbors(y)),
    ]


def _verdict(evidence: Evidence | None, table: pd.DataFrame, extra: list[np.ndarray]) -> dict[str, Any]:
    """How sure the verdict is, for run.json and the report; warns when the evidence is too weak."""
    if evidence is None:
        return {}
    n = len(table)
    flagged = int(table["is_issue"].sum())
    verdict = {
        "estimated_accuracy": round(evidence.accuracy, 4),
        "estimated_noise_rate": round(evidence.noise_rate, 4),
        "expected_wrong_labels": round(evidence.expected_errors, 1),
        "judgeable": evidence.judgeable,
        "pretrained_evidence": bool(extra),
    }
    if not evidence.judgeable:
        log.warning(
            "issues: the evidence is too weak to judge labels: its estimated accuracy is %.0f%% (below %.0f%%), so "
            "only the %d label(s) it is sure of (doubt >= %.2f) are flagged; label_quality still ranks every label. "
            "What would help: %s",
            100 * evidence.accuracy,
            100 * MIN_ACCURACY,
            flagged,
            SURE_DOUBT,
            "more labeled images"
            if extra
            else "a pretrained backbone (pip install 'labelwise[pretrained]') or more labeled images",
        )
    elif flagged > 2 * max(evidence.expected_errors, 1.0) + 10:
        log.warning(
            "issues: %d flagged where the evidence expects about %.0f wrong labels of %d: read the flags as candidates",
            flagged,
            evidence.expected_errors,
            n,
        )
    return verdict


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
