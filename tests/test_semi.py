"""Pseudo-labeling: the methods on arrays (self-training, knn-kmeans, spreading, the budget, bad
input), then the pseudolabel command on image files."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from conftest import write_png
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors
from typer.testing import CliRunner

from labelwise import load_dataset
from labelwise.cli.app import app
from labelwise.errors import LabelwiseError
from labelwise.semi import (
    Ensemble,
    KnnKMeans,
    SelfTraining,
    Spreading,
    get_method,
    list_methods,
    pseudo_label,
    pseudolabel,
)
from labelwise.semi.accuracy import HeldOutSeeds, coverage_table, cross_validate_seeds
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
    assert (found.source[y < 0] == "pseudo").all() and (found.labels >= 0).all()
    sure = found.vouched
    assert not sure[seeds].any() and sure.sum() > 0.1 * (y < 0).sum()
    assert (found.labels[sure] == truth[sure]).mean() > 0.9


@pytest.mark.parametrize("method", list_methods())
def test_a_higher_threshold_only_adds_problematic_images(task, method):
    X, y, _ = task
    low = pseudo_label(X, y, method=method, votes=False, options={method: {"threshold": 0.3}})
    high = pseudo_label(X, y, method=method, votes=False, options={method: {"threshold": 0.95}})
    assert np.array_equal(low.labels, high.labels)
    assert (low.problematic <= high.problematic).all() and low.problematic.sum() < high.problematic.sum()


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
    assert (capped.source[over] == "pseudo").all() and not capped.vouched[over].any()
    assert all("budget" in w for w in capped.why[over])
    assert np.array_equal(capped.labels, free.labels)  # the budget changes only the flags
    assert pseudo_label(X, y, method="ensemble", budget=0, votes=False).problematic.sum() == 0


def test_same_seed_same_output(task):
    X, y, _ = task
    a = pseudo_label(X, y, budget=30, random_state=3)
    b = pseudo_label(X, y, budget=30, random_state=3)
    for field in ("labels", "confidence", "vouched", "problematic", "why", "source"):
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


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.full(10, -1), "no labeled rows"),
        (np.array([0, 1, -2, 0, 1, -1, -1, -1, -1, -1]), "-1 for unlabeled"),
        (np.arange(10) * 0.5, "integer class codes"),
    ],
)
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
    table = coverage_table(found.confidence[pool], found.vouched[pool], held)
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
    # three tight clusters of 3 along the axes: with 2 neighbours a row links only to its own
    # cluster, and the third cluster holds no label
    X = np.repeat(np.eye(3), 3, axis=0) + np.tile([[0.01, 0.02, 0.0], [0.0, 0.01, 0.02], [0.02, 0.0, 0.01]], (3, 1))
    y = np.array([0, -1, -1, 1, -1, -1, -1, -1, -1])
    est = Spreading(n_neighbors=2).fit(X, y)
    assert est.transduction_[:6].tolist() == [0, 0, 0, 1, 1, 1] and not est.problematic_[:6].any()
    assert est.problematic_[6:].all() and set(est.why_[6:]) == {"no labeled image reachable in the neighbour graph"}
    assert np.allclose(est.label_distributions_[6:], [0.5, 0.5])  # no guess beyond the seeded classes


def test_semi_and_active_share_one_spreading(task):
    # labelwise.active's loop model and the pseudo-labeling method are one implementation;
    # the method caches the neighbour graph, the loop model does not
    from labelwise.active.models import SpreadingModel

    X, y, _ = task
    X = X.astype(np.float32)
    loop = SpreadingModel(10).fit(X, y).distributions_
    for _ in range(2):  # the second fit reads the cached graph
        assert np.array_equal(Spreading(n_neighbors=10).fit(X, y).label_distributions_, loop)


def test_ensemble_is_the_sharpened_mean_of_spreading_and_self_trained_spreading(task):
    X, y, _ = task
    plain = Ensemble(check=False, sharpen=1.0).fit(X, y)
    mean = (plain.spread_.label_distributions_ + plain.self_training_.label_distributions_) / 2
    assert np.allclose(plain.label_distributions_, mean)
    sharp = Ensemble(check=False).fit(X, y)
    assert np.allclose(sharp.label_distributions_, mean**2 / (mean**2).sum(1, keepdims=True))
    assert np.array_equal(sharp.transduction_, plain.transduction_)  # sharpening moves confidences only
    pool = y < 0
    assert (sharp.confidence_[pool] >= plain.confidence_[pool] - 1e-12).all()
    with pytest.raises(LabelwiseError, match="sharpen must be > 0, got 0"):
        Ensemble(sharpen=0).fit(X, y)


def test_full_coverage_counts_every_held_out_image():
    held = HeldOutSeeds(
        confidence=np.array([0.2, 0.95]), correct=np.array([False, True]), problematic=np.array([True, False]), folds=2
    )
    table = coverage_table(np.array([0.9, 0.8, 0.5, 0.4]), np.array([True, True, False, False]), held).set_index(
        "coverage"
    )
    assert table.loc["top 100%", "held_out_n"] == 2 and table.loc["top 100%", "estimated_accuracy"] == 0.5
    assert table.loc["top 50%", "held_out_n"] == 1 and table.loc["top 50%", "estimated_accuracy"] == 1.0


def test_default_backbone_lives_in_features_and_semi_re_exports_it():
    import labelwise.features
    import labelwise.semi

    assert labelwise.semi.default_backbone is labelwise.features.default_backbone
    assert labelwise.features.default_backbone() in labelwise.features.list_backbones()


# --- the pseudolabel command on image files ---------------------------------------------------

runner = CliRunner()


@pytest.fixture
def folder(tmp_path, digits):
    """Digits 0-4 as PNGs: 4 labeled images per class in class folders, 36 more per class in
    ``_unlabeled/``; returns (root, {sample_id: true digit})."""
    pixels, target = digits
    root, truth = tmp_path / "images", {}
    for c in range(5):
        for j, i in enumerate(np.flatnonzero(target == c)[:40]):
            sid = f"{c}/{i}.png" if j < 4 else f"_unlabeled/{i}.png"
            write_png(root / sid, pixels[i])
            truth[sid] = str(c)
    return root, truth


def run_cli(*args):
    result = runner.invoke(app, ["pseudolabel", *map(str, args)])
    return result, result.output.replace("\n", " ")


def test_pseudolabel_writes_labels_tasks_map_and_report(folder, tmp_path):
    root, truth = folder
    out = tmp_path / "out"
    result, text = run_cli(
        root,
        "--out",
        out,
        "--backbone",
        "pixels",
        "--budget",
        15,
        "--map-points",
        80,
        "--folds",
        2,
        "--no-html",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "pseudo_labels.csv", dtype={"label": str, "suggested_label": str})
    assert list(table.columns) == [
        "sample_id",
        "path",
        "label",
        "source",
        "confidence",
        "vote_ensemble",
        "vote_knn-kmeans",
        "vote_self-training",
        "vote_spreading",
        "problematic",
        "why",
    ]
    given = table[table["source"] == "given"]
    assert len(given) == 20 and (given["label"] == given["sample_id"].str[0]).all()
    pseudo = table[table["source"] == "pseudo"]
    right = pseudo["label"] == pseudo["sample_id"].map(truth)
    assert len(pseudo) == 180 and right.mean() > 0.8 and right[pseudo["why"].isna()].mean() > 0.95
    assert table["problematic"].sum() == 15 and not table.loc[table["problematic"], "why"].isna().any()
    tasks = pd.read_csv(out / "problematic.csv", dtype={"suggested_label": str})
    assert len(tasks) == 15 and tasks["confidence"].is_monotonic_increasing
    assert tasks["suggested_label"].tolist() == table.set_index("sample_id").loc[tasks["sample_id"], "label"].tolist()
    ls = json.loads((out / "problematic.label_studio.json").read_text())
    assert [t["data"]["sample_id"] for t in ls] == tasks["sample_id"].tolist()
    assert [t["predictions"][0]["result"][0]["value"]["choices"] for t in ls] == [[s] for s in tasks["suggested_label"]]
    points = pd.read_csv(out / "map.csv")
    assert len(points) == 80 and set(given["sample_id"]) <= set(points["sample_id"])
    assert (out / "map.png").is_file() and (out / "coverage.png").is_file()
    assert "top 100%" in set(pd.read_csv(out / "coverage.csv")["coverage"])
    trainable = load_dataset(out / "dataset.csv")
    assert (trainable.table["label_source"] == "pseudo").sum() == len(pseudo)
    assert (
        pd.to_numeric(trainable.table.loc[trainable.table["label_source"] == "pseudo", "confidence"])
        .between(0, 1)
        .all()
    )
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    assert "problematic" in (out / "report.md").read_text() and "labelwise train" in text
    # what it says to run next runs: given + pseudo labels, weighted by confidence
    trained = runner.invoke(
        app,
        [
            "train",
            str(out / "dataset.csv"),
            "--out",
            str(tmp_path / "train"),
            "--model",
            "linear",
            "--backbone",
            "pixels",
            "--folds",
            "2",
            "--epochs",
            "2",
            "--weight-col",
            "confidence",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-html",
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert len(pd.read_csv(tmp_path / "train" / "oof_probs.csv")) == len(given) + len(pseudo)


def test_pseudolabel_reports_a_class_without_seed_and_never_invents_it(folder, tmp_path):
    root, truth = folder
    for path in (root / "4").iterdir():
        path.rename(root / "_unlabeled" / path.name)
    (root / "4").rmdir()
    (tmp_path / "classes.json").write_text(json.dumps(["0", "1", "2", "3", "4"]))
    ds = load_dataset(root, classes=tmp_path / "classes.json")
    found = pseudolabel(ds, tmp_path / "out", backbone="pixels", map_points=0, folds=2, cache_dir=tmp_path / "cache")
    assert found.figures["classes_without_seed"] == ["4"]
    assert "4" not in set(found.table["label"]) and found.table["label"].notna().all()
    assert "no labeled image of class(es) 4" in (tmp_path / "out" / "report.md").read_text()


def test_pseudolabel_bad_input_is_one_line_or_a_clear_message(folder, tmp_path):
    root, _ = folder
    pool_only = tmp_path / "pool"
    (root / "_unlabeled").rename(pool_only)
    names = sorted(p.name for p in pool_only.iterdir())
    pd.DataFrame({"filename": names, "label": ""}).to_csv(tmp_path / "none.csv", index=False)
    result, text = run_cli(
        tmp_path / "none.csv", "--images", pool_only, "--out", tmp_path / "a", "--backbone", "pixels"
    )
    assert result.exit_code == 2 and "no labeled images" in text and len(result.output.strip().splitlines()) == 1
    # no unlabeled images: said, and every image keeps its given label
    result, text = run_cli(root, "--out", tmp_path / "b", "--backbone", "pixels", "--map-points", 0, "--folds", 2)
    assert result.exit_code == 0 and "no unlabeled images" in text
    assert (pd.read_csv(tmp_path / "b" / "pseudo_labels.csv")["source"] == "given").all()
    # a budget larger than the pool: said, and all problematic images become tasks
    result, text = run_cli(
        root,
        "--unlabeled",
        pool_only,
        "--out",
        tmp_path / "c",
        "--backbone",
        "pixels",
        "--budget",
        1000,
        "--map-points",
        0,
        "--no-estimate",
    )
    assert result.exit_code == 0 and "larger than the pool" in text
    table = pd.read_csv(tmp_path / "c" / "pseudo_labels.csv")
    assert table["problematic"].sum() == len(pd.read_csv(tmp_path / "c" / "problematic.csv")) > 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["n_problematic"] + summary["n_not_problematic"] == summary["n_pseudo"] == 180
