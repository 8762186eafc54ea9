"""How good each annotator is, and how much the annotators agree overall."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .methods import Aggregation, Encoded, encode

ANNOTATOR_COLUMNS = (
    "worker",
    "n_answers",
    "n_gold",
    "accuracy_on_gold",
    "skill",
    "agreement_with_consensus",
    "worst_class",
)


def annotator_table(
    answers: pd.DataFrame, result: Aggregation, *, gold: pd.Series | None = None, classes: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per worker: ``worker, n_answers, n_gold, accuracy_on_gold, skill,
    agreement_with_consensus, worst_class``, worst annotators first.

    ``accuracy_on_gold`` is the raw share right on tasks with a known answer (empty when the
    worker answered none); ``skill`` is the method's own estimate; ``agreement_with_consensus``
    is the share of answers equal to the aggregated label; ``worst_class`` is the consensus
    class the worker most often gets wrong (recall against consensus, lowest first).

    >>> from labelwise.crowd.methods import aggregate_labels
    >>> df = pd.DataFrame({"task": list("aabb"), "worker": list("xyxy"), "label": list("ccdc")})
    >>> annotator_table(df, aggregate_labels(df, "mv"))[["worker", "agreement_with_consensus"]].values.tolist()
    [['x', 0.5], ['y', 1.0]]
    """
    enc = encode(answers, classes or list(result.probas.columns))
    consensus = result.labels.reindex(enc.tasks).map({c: i for i, c in enumerate(enc.classes)}).to_numpy(np.int64)
    W = len(enc.workers)
    n = np.bincount(enc.worker, minlength=W)
    agree = np.bincount(enc.worker, weights=(enc.label == consensus[enc.task]).astype(float), minlength=W) / n
    truth = np.full(len(enc.tasks), -1)
    if gold is not None and len(gold):
        pos = enc.tasks.get_indexer(gold.index.astype(str))
        lookup = {c: i for i, c in enumerate(enc.classes)}
        truth[pos[pos >= 0]] = gold.astype(str).map(lookup).fillna(-1).to_numpy(np.int64)[pos >= 0]
    known = truth[enc.task] >= 0
    n_gold = np.bincount(enc.worker[known], minlength=W)
    right = np.bincount(
        enc.worker[known], weights=(enc.label[known] == truth[enc.task][known]).astype(float), minlength=W
    )
    table = pd.DataFrame(
        {
            "worker": enc.workers.astype(str),
            "n_answers": n,
            "n_gold": n_gold,
            "accuracy_on_gold": np.where(n_gold > 0, right / np.maximum(n_gold, 1), np.nan),
            "skill": result.skills.reindex(enc.workers).to_numpy(np.float64),
            "agreement_with_consensus": agree,
            "worst_class": _worst_class(enc, consensus),
        }
    )
    return table.sort_values(["agreement_with_consensus", "worker"], kind="stable").reset_index(drop=True)


def _worst_class(enc: Encoded, consensus: np.ndarray) -> list[str]:
    W, K = len(enc.workers), len(enc.classes)
    true = consensus[enc.task]
    seen = np.bincount(enc.worker * K + true, minlength=W * K).reshape(W, K)
    hit = np.bincount(enc.worker * K + true, weights=(enc.label == true).astype(float), minlength=W * K).reshape(W, K)
    recall = np.where(seen > 0, hit / np.maximum(seen, 1), np.inf)
    worst = recall.argmin(1)
    return [enc.classes[k] if np.isfinite(recall[w, k]) and recall[w, k] < 1 else "" for w, k in enumerate(worst)]


def krippendorff_alpha(answers: pd.DataFrame) -> float:
    """Krippendorff's alpha for nominal labels; handles any number of answers per task.

    1 is perfect agreement, 0 is chance; tasks with a single answer carry no information
    and are left out. NaN when no task has two answers.

    >>> df = pd.DataFrame({"task": list("aabbcc"), "worker": list("xyxyxy"), "label": list("ppqqpp")})
    >>> krippendorff_alpha(df)
    1.0
    """
    enc = encode(answers)
    counts = enc.counts()
    m = counts.sum(1)
    counts, m = counts[m >= 2], m[m >= 2]
    if not len(m):
        return float("nan")
    # coincidences o[c, k] = sum over tasks of n_c n_k (minus the pair with itself) / (m - 1)
    o = (counts / (m - 1)[:, None]).T @ counts - np.diag((counts / (m - 1)[:, None]).sum(0))
    n_c = o.sum(1)
    total = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = (total**2 - (n_c**2).sum()) / (total - 1)
    return float(1 - observed / expected) if expected > 0 else 1.0


def fleiss_kappa(answers: pd.DataFrame) -> float:
    """Fleiss' kappa; only defined when every task has the same number (≥ 2) of answers, else NaN."""
    counts = encode(answers).counts()
    m = counts.sum(1)
    if not len(m) or m.min() != m.max() or m[0] < 2:
        return float("nan")
    n = m[0]
    p_i = ((counts**2).sum(1) - n) / (n * (n - 1))
    p_j = counts.sum(0) / counts.sum()
    p_e = (p_j**2).sum()
    return float((p_i.mean() - p_e) / (1 - p_e)) if p_e < 1 else 1.0


def task_agreement(answers: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Per task: ``n_answers`` and ``agreement`` (the share of answers equal to ``labels``)."""
    frame = answers[["task", "label"]].astype(str)
    hit = frame["label"].to_numpy() == labels.reindex(frame["task"]).astype(str).to_numpy()
    grouped = frame.assign(hit=hit).groupby("task", sort=False)["hit"]
    return pd.DataFrame({"n_answers": grouped.size(), "agreement": grouped.mean()}).reindex(labels.index)
