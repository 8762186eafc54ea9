"""Pseudo-labeling methods on arrays: self-training, knn-kmeans, spreading, the budget, and bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

from labelwise.errors import LabelwiseError
from labelwise.semi import (
    KnnKMeans,
    SelfTraining,
    Spreading,
    get_method,
    list_methods,
    pseudo_label,
)
from labelwise.semi.accuracy import coverage_table, cross_validate_seeds
from labelwise.semi.methods import unit_rows
from labelwise.semi.self_training import default_estimator


@pytest.fixture(scope="module")
def task():
    """800 of sklearn's digits as 64-d vectors; 5 labeled images per class, the rest unlabeled."""
    from sklearn.datasets import load_digits

    X, target = load_digits(return_X_y=True)
    X, target = X[:800], target[:800]
    rng = np.random.default_rng(0)
    seeds = np.concatenate([rng.choice(np.flatnonzero(target == c), 5, replace=False) for c in range(10)])
    y = np.full(len(target), -1)
    y[seeds] = target[seeds]
    return X, y, target


def test_methods_are_registered_and_unknown_names_are_refused():
    assert {"ensemble", "knn-kmeans", "self-training", "spreading"} <= set(list_methods())
    with pytest.raises(LabelwiseError, match="unknown pseudo-labeling method 'magic'; choose one of"):
        get_method("magic")


def test_zero_rounds_equals_a_supervised_fit(task):
    X, y, _ = task
    fitted = SelfTraining(rounds=0, random_state=0).fit(X, y)
    plain = clone(default_estimator(0)).fit(X[y >= 0], y[y >= 0])
    pool = y < 0
    assert np.array_equal(fitted.transduction_[pool], plain.predict(X[pool]))
    assert np.allclose(fitted.label_distributions_[pool], plain.predict_proba(X[pool]))
    assert (fitted.accepted_round_[pool] == -1).all()
    more = SelfTraining(rounds=2, random_state=0).fit(X, y)
    assert (more.accepted_round_ > 0).any() and not np.array_equal(more.transduction_, fitted.transduction_)


@pytest.mark.parametrize("method", ["ensemble", "knn-kmeans", "self-training", "spreading"])
def test_given_labels_are_never_changed(task, method):
    X, y, truth = task
    y = y.copy()
    seeds = np.flatnonzero(y >= 0)
    y[seeds[:3]] = (y[seeds[:3]] + 1) % 10  # wrong labels too stay as given
    est = get_method(method, n_classes=10).fit(X, y)
    assert np.array_equal(est.transduction_[seeds], y[seeds])
    assert (est.confidence_[seeds] == 1).all() and not est.problematic_[seeds].any()
    found = pseudo_label(X, y, method=method, n_classes=10, votes=False)
    assert np.array_equal(found.labels[seeds], y[seeds]) and (found.source[seeds] == "given").all()
    accepted = found.source == "pseudo"
    assert accepted.sum() > 0.1 * (y < 0).sum()
    assert (found.labels[accepted] == truth[accepted]).mean() > 0.9


def test_kmeans_starts_from_the_labeled_embeddings(task):
    X, y, _ = task
    est = KnnKMeans().fit(X, y)
    seeds = np.flatnonzero(y >= 0)
    assert est.kmeans_.n_clusters == len(seeds) and est.kmeans_.n_init == 1
    assert np.allclose(est.kmeans_.init, unit_rows(X)[seeds])
    # each cluster carries the label of the image it was seeded at
    assert np.array_equal(est.cluster_labels_, y[seeds][est.kmeans_.labels_])


def test_knn_members_cap_k_at_the_smallest_class():
    X = np.r_[np.eye(3), np.eye(3) * 0.9 + 0.05]
    y = np.array([0, 1, 2, -1, -1, -1])
    est = KnnKMeans(ks=(1, 5, 10), n_neighbors=0).fit(X, y)
    assert {k for k, _ in est.members_} == {1}
    assert est.transduction_.tolist() == [0, 1, 2, 0, 1, 2] and not est.problematic_.any()


def test_neighbours_of_problematic_images_are_added(task):
    X, y, _ = task
    alone = KnnKMeans(n_neighbors=0).fit(X, y)
    near = KnnKMeans(n_neighbors=5).fit(X, y)
    direct = alone.problematic_
    assert direct.any()
    _, idx = NearestNeighbors(n_neighbors=6).fit(unit_rows(X)).kneighbors(unit_rows(X))
    neighbours = [row[row != i][:5] for i, row in enumerate(idx)]
    expected = np.array([y[i] < 0 and not direct[i] and direct[nb].any() for i, nb in enumerate(neighbours)])
    assert expected.any()
    assert np.array_equal(near.problematic_, direct | expected)
    assert set(near.why_[expected]) == {"a nearest neighbour is problematic"}


def test_spreading_never_predicts_a_class_without_a_seed(task):
    X, y, _ = task
    y = np.where(y == 9, -1, y)
    for method in list_methods():
        est = get_method(method, n_classes=10).fit(X, y)
        assert 9 not in set(est.transduction_), method


def test_budget_caps_the_problematic_set_least_confident_first(task):
    X, y, _ = task
    free = pseudo_label(X, y, method="ensemble", votes=False)
    assert free.problematic.sum() > 20
    capped = pseudo_label(X, y, method="ensemble", budget=20, votes=False)
    assert capped.problematic.sum() == 20
    flagged = np.flatnonzero(free.problematic)
    least = flagged[np.argsort(free.confidence[flagged], kind="stable")[:20]]
    assert set(np.flatnonzero(capped.problematic)) == set(least)
    over = free.problematic & ~capped.problematic
    assert (capped.source[over] == "").all() and (capped.labels[over] == -1).all()
    assert all("budget" in w for w in capped.why[over])
    assert np.array_equal(capped.labels, free.labels)  # the budget changes only the flags
    assert pseudo_label(X, y, method="ensemble", budget=0, votes=False).problematic.sum() == 0


def test_same_seed_same_output(task):
    X, y, _ = task
    a = pseudo_label(X, y, budget=30, random_state=3)
    b = pseudo_label(X, y, budget=30, random_state=3)
    for field in ("labels", "suggested", "confidence", "problematic", "why", "source"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.votes.keys() == b.votes.keys() and all(np.array_equal(a.votes[m], b.votes[m]) for m in a.votes)


def test_no_unlabeled_images_is_said_and_changes_nothing(task, caplog):
    X, _, truth = task
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        found = pseudo_label(X[:100], truth[:100])
    assert "no unlabeled images" in caplog.text
    assert np.array_equal(found.labels, truth[:100]) and (found.source == "given").all() and not found.problematic.any()


def test_budget_larger_than_the_pool_is_said(task, caplog):
    X, y, _ = task
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        found = pseudo_label(X, y, method="spreading", budget=10_000, votes=False)
    assert "larger than the pool" in caplog.text
    assert found.problematic.sum() == pseudo_label(X, y, method="spreading", votes=False).problematic.sum()


@pytest.mark.parametrize("labels, message", [
    (np.full(10, -1), "no labeled rows"),
    (np.array([0, 1, -2, 0, 1, -1, -1, -1, -1, -1]), "-1 for unlabeled"),
    (np.arange(10) * 0.5, "integer class codes"),
])
def test_bad_labels_are_one_line_errors(labels, message):
    with pytest.raises(LabelwiseError, match=message):
        pseudo_label(np.random.default_rng(0).normal(size=(10, 3)), labels)
    with pytest.raises(LabelwiseError, match="budget must be"):
        pseudo_label(np.eye(4), np.array([0, 1, -1, -1]), budget=-1)


def test_accuracy_is_estimated_on_hidden_seeds_or_from_confidence(task):
    X, y, truth = task
    held = cross_validate_seeds(X, y, method="spreading", n_classes=10, folds=5)
    assert len(held.correct) == (y >= 0).sum() and held.folds == 5
    found = pseudo_label(X, y, method="spreading", votes=False)
    pool = y < 0
    table = coverage_table(found.confidence[pool], found.source[pool] == "pseudo", held)
    assert (table["estimate"] == "held-out labeled images").all()
    full = table.set_index("coverage").loc["top 100%"]
    assert full["held_out_n"] == 50 and full["n_images"] == pool.sum()
    one = np.full(len(y), -1)
    first = [np.flatnonzero(truth == c)[0] for c in range(10)]
    one[first] = truth[first]
    assert cross_validate_seeds(X, one, method="spreading", n_classes=10) is None
    table = coverage_table(np.array([0.9, 0.5]), np.array([True, False]), None)
    assert (table["estimate"] == "mean confidence").all()
    assert table.set_index("coverage").loc["top 50%", "estimated_accuracy"] == 0.9


def test_spreading_flags_rows_no_seed_reaches():
    X = np.array([[0, 1.0], [0.1, 1], [1, 0], [1, 0.1], [0.05, 1], [1, 0.05]])
    est = Spreading(n_neighbors=2).fit(X, np.array([0, -1, 1, -1, -1, -1]))
    assert est.problematic_[[1, 4]].all()
    assert "no labeled image reachable" in est.why_[1]
