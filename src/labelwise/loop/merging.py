"""After a round's answers: decide the asked images' labels, merge them into the label set with a
history, give the rest their pseudo labels, and measure a model retrained on the result."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .deciding import Decision, decide
from .scoring import Scores, fit_head, unit_rows

GIVEN_WORKER = "(given label)"
#: The neighbours searched for near-duplicates of each image (an ANN-free exact search on unit rows).
DUPLICATE_NEIGHBORS = 5


def duplicate_groups(features: np.ndarray, similarity: float) -> np.ndarray:
    """Group id of every row: rows whose embeddings' cosine similarity reaches ``similarity`` (and their
    chains) share one."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import NearestNeighbors

    n = len(features)
    if n < 2 or similarity >= 1.0:
        return np.arange(n)
    x = unit_rows(features)
    k = min(DUPLICATE_NEIGHBORS + 1, n)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    close = 1 - dist**2 / 2 >= similarity  # euclidean distance of unit rows → cosine similarity
    rows = np.repeat(np.arange(n), k)[close.ravel()]
    cols = idx.ravel()[close.ravel()]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def decide_round(ctx: Any, scores: Scores) -> tuple[Decision, np.ndarray, pd.DataFrame]:
    """The decision for every image asked so far: ``(decision, rows, answers)`` with the decision's rows
    ``rows`` into the pool."""
    answers = ctx.answer_table()
    lookup = {c: i for i, c in enumerate(ctx.classes)}
    rows = np.unique(answers["row"].to_numpy(int))
    local = {r: i for i, r in enumerate(rows)}
    frame = pd.DataFrame(
        {
            "row": answers["row"].map(local).to_numpy(int),
            "worker": answers["worker"].to_numpy(),
            "label": answers["label"].map(lookup).to_numpy(int),
        }
    )
    given = ctx.given_codes()[rows]
    had = np.flatnonzero(given >= 0)
    # the given label is one more vote, as reliable as its agreement with the people says
    votes = pd.DataFrame({"row": had, "worker": GIVEN_WORKER, "label": given[had]})
    gold = pd.concat([ctx.gold_table(), _given_record(frame, given, ctx.skill_estimate(), len(ctx.classes))])
    decision = decide(scores.model[rows], pd.concat([frame, votes], ignore_index=True), gold=gold)
    return decision, rows, answers


def given_accuracy(agreement: float, skill: float, n_classes: int) -> float:
    """How often the given labels of the asked images are right, from how often people (right with
    probability ``skill``, else any other class) agree with them: ``agreement = g * skill + (1 - g) *
    (1 - skill) / (K - 1)`` solved for ``g``. The asked images are the ones the model doubts, so their
    given labels are much less reliable than the dataset's on the whole: only people can say how much."""
    chance = (1 - skill) / (n_classes - 1)
    return float(np.clip((agreement - chance) / max(skill - chance, 1e-6), 1.0 / n_classes, 0.99))


def _given_record(frame: pd.DataFrame, given: np.ndarray, skill: float, n_classes: int) -> pd.DataFrame:
    """The given label's record as if it were gold: ``worker, correct, n`` for :func:`decide`."""
    labels = given[frame["row"].to_numpy(int)]
    known = labels >= 0
    if not known.any():
        return pd.DataFrame(columns=["worker", "correct", "n"])
    agreement = float((frame["label"].to_numpy(int)[known] == labels[known]).mean())
    n = int(known.sum())
    return pd.DataFrame(
        {"worker": [GIVEN_WORKER], "correct": [given_accuracy(agreement, skill, n_classes) * n], "n": [n]}
    )


def merge_round(
    ctx: Any, scores: Scores, decided: tuple[Decision, np.ndarray, pd.DataFrame], number: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The round's label changes (for the history) and its figures."""
    decision, rows, answers = decided
    classes = np.asarray(ctx.classes, dtype=object)
    before, before_source = ctx.current()
    given = ctx.given_codes()
    codes = np.where(np.isin(before_source, ["given", "human"]), before, -1)
    source = np.where(codes >= 0, before_source, "").astype(object)
    confidence = np.where(given >= 0, 1 - scores.doubt, 0.0)
    evidence = np.full(len(codes), "", dtype=object)
    by_row = answers.groupby("row")
    for i, r in enumerate(rows):
        codes[r], source[r], confidence[r] = decision.labels[i], "human", decision.confidence[i]
        said = ", ".join(f"{w}: {lab}" for w, lab in zip(by_row.get_group(r)["worker"], by_row.get_group(r)["label"]))
        model = scores.model[r]
        evidence[r] = (
            f"answers {said}; given {classes[given[r]] if given[r] >= 0 else 'none'}; "
            f"model {classes[model.argmax()]} {model.max():.2f}; decided {decision.confidence[i]:.2f}"
        )
    # an unlabeled near-duplicate of a decided image takes its label
    groups = ctx.groups
    decided_group = {int(groups[r]): r for r in rows}
    for j in np.flatnonzero((given < 0) & (source == "")):
        twin = decided_group.get(int(groups[j]))
        if twin is not None:
            codes[j], source[j], confidence[j] = codes[twin], "propagated", confidence[twin]
            evidence[j] = f"near-duplicate of {ctx.pool['sample_id'].iloc[twin]}"
    rest = source == ""
    if rest.any():
        codes[rest] = scores.model[rest].argmax(1)
        source[rest], confidence[rest] = "pseudo", scores.model[rest].max(1)
        evidence[rest] = "model"
    changed = (codes != before) | (source != before_source)
    ids = ctx.pool["sample_id"].astype(str).to_numpy()
    changes = pd.DataFrame(
        {
            "sample_id": ids[changed],
            "old_label": [classes[c] if c >= 0 else None for c in before[changed]],
            "new_label": classes[codes[changed]],
            "source": source[changed],
            "confidence": np.round(confidence[changed], 4),
            "evidence": evidence[changed],
        }
    )
    people = [s for w, s in decision.skills.items() if w != GIVEN_WORKER]
    metrics: dict[str, Any] = {
        "answers_total": len(answers),
        "images_asked": int(len(rows)),
        "changed_by_people": int(((codes != given) & (source == "human") & (given >= 0)).sum()),
        "labeled_by_people": int(((source == "human") & (given < 0)).sum()),
        "pseudo": int((source == "pseudo").sum()),
        "propagated": int((source == "propagated").sum()),
        "estimated_label_accuracy": round(float(confidence.mean()), 4),
        "estimated_noise_rate": round(float(scores.evidence.noise_rate), 4),
        "model_accuracy": round(float(scores.evidence.accuracy), 4),
        "mean_skill": round(float(np.mean(people)), 4) if people else None,
        "skills": {w: round(s, 4) for w, s in decision.skills.items()},
        "test_accuracy": _test_accuracy(ctx, codes, source, confidence),
    }
    return changes, metrics


def _test_accuracy(ctx: Any, codes: np.ndarray, source: np.ndarray, confidence: np.ndarray) -> float | None:
    """Accuracy on the held-out rows of the head retrained on the merged labels (pseudo labels weighted
    by their confidence); None without labeled held-out rows."""
    test = ctx.table.table[ctx.is_test]
    lookup = {c: i for i, c in enumerate(ctx.classes)}
    truth = test["label"].map(lookup)
    known = truth.notna().to_numpy()
    if not known.any():
        return None
    weights = np.where(source == "pseudo", confidence, 1.0)
    have = codes >= 0
    predict = fit_head(ctx.pool_features[have], codes[have], len(ctx.classes), weights=weights[have])
    guess = predict(ctx.features[ctx.is_test][known]).argmax(1)
    return round(float((guess == truth[known].to_numpy(int)).mean()), 4)
