"""Active learning: acquisition scores, strategies, streaming, the simulated loop, grids and curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelwise.active import (
    Pool,
    bald_scores,
    entropy_scores,
    least_confident_scores,
    list_strategies,
    make_model,
    margin_scores,
    mc_dropout_proba,
    select,
    stream_scores,
)
from labelwise.active.curves import curve_summary, labels_to_reach, normalised_auc
from labelwise.active.grid import check_grid, expand_grid
from labelwise.active.loop import run_loop
from labelwise.active.models import LoopModel
from labelwise.errors import LabelwiseError

# Hand-made distributions over 3 classes, one per row.
CONFIDENT = [0.98, 0.01, 0.01]
TIE = [0.49, 0.49, 0.02]  # two classes tie: smallest margin, but a low entropy
SKEWED = [0.6, 0.3, 0.1]
UNIFORM = [1 / 3, 1 / 3, 1 / 3]
PROBS = np.array([CONFIDENT, TIE, SKEWED, UNIFORM])


def ranking(scores: np.ndarray) -> list[int]:
    return np.argsort(-scores, kind="stable").tolist()


def test_uncertainty_scores_rank_hand_made_distributions():
    assert ranking(least_confident_scores(PROBS)) == [3, 1, 2, 0]
    assert ranking(entropy_scores(PROBS)) == [3, 2, 1, 0]  # entropy puts the spread-out row above the tie
    margin = margin_scores(PROBS)
    assert margin[1] == pytest.approx(margin[3]) and margin[1] > margin[2] > margin[0]  # the tie ranks with uniform


def test_bald_prefers_confident_samples_that_disagree():
    agree_unsure = np.tile([0.5, 0.5], (4, 1))
    disagree = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    agree_sure = np.tile([0.99, 0.01], (4, 1))
    samples = np.stack([agree_unsure, disagree, agree_sure], axis=1)  # (T=4, n=3, C=2)
    bald = bald_scores(samples)
    assert bald[1] > bald[0] and bald[1] > bald[2]
    assert bald[0] == pytest.approx(0.0, abs=1e-9) and bald[2] == pytest.approx(0.0, abs=1e-9)
    assert entropy_scores(samples.mean(0))[0] >= entropy_scores(samples.mean(0))[1]  # entropy alone cannot tell


class FixedModel(LoopModel):
    """A model in the loop whose probabilities for pool row i are ``probs[i]``."""

    def __init__(self, probs: np.ndarray) -> None:
        super().__init__(probs.shape[1])
        self.probs = probs

    def _fit(self, X, y):
        pass

    def _proba(self, X):
        raise AssertionError("strategies must ask for pool rows, not new inputs")

    def proba_rows(self, rows):
        return self.probs[rows]


def spread_points(n: int, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) * 10


@pytest.mark.parametrize("strategy, first_two", [("least_confident", [3, 1]), ("margin", {1, 3}), ("entropy", [3, 2])])
def test_score_strategies_pick_the_most_uncertain_candidates_first(strategy, first_two):
    probs = np.r_[PROBS, [CONFIDENT] * 4]
    labels = np.r_[[-1] * 4, [0, 1, 2, 0]]
    picked = select(spread_points(8), labels, 3, strategy=strategy, model=FixedModel(probs), random_state=0)
    got = picked.rows[:2].tolist()
    assert (set(got) if isinstance(first_two, set) else got) == first_two
    assert set(picked.rows) <= {0, 1, 2, 3} and np.all(np.diff(picked.scores) <= 0)


def test_a_batch_skips_near_duplicates():
    X = spread_points(6)
    X[1] = X[0] + 1e-4  # a copy of row 0, just as uncertain
    probs = np.array([TIE, TIE, SKEWED, CONFIDENT, CONFIDENT, CONFIDENT])
    picked = select(X, np.array([-1, -1, -1, -1, 0, 1]), 2, strategy="margin", model=FixedModel(probs), random_state=0)
    assert {0, 1} & set(picked.rows) and not {0, 1} <= set(picked.rows)
    assert 2 in picked.rows


def blobs(n_per: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0], [20, 0], [0, 20]])
    X = np.concatenate([c + rng.normal(size=(n_per, 2)) for c in centers])
    return X, np.repeat(np.arange(3), n_per)


def test_near_duplicates_are_skipped_beyond_the_first_block_of_candidates():
    from labelwise.active.selection import top_distinct

    # 3 looks, each repeated 300 times; the best-scored 300 are all copies of the first look.
    looks = np.eye(3)
    X = np.repeat(looks, 300, axis=0) + np.random.default_rng(0).normal(scale=1e-4, size=(900, 3))
    scores = np.repeat([3.0, 2.0, 1.0], 300) + np.random.default_rng(1).random(900) * 0.1
    rows, picked_scores = top_distinct(scores, X, np.arange(900), 3, rng=np.random.default_rng(0))
    assert sorted(rows // 300) == [0, 1, 2] and np.all(np.diff(picked_scores) < 0)
    rows, _ = top_distinct(scores, X, np.arange(900), 5, rng=np.random.default_rng(0))
    assert len(set(rows.tolist())) == 5 and sorted(set(rows // 300)) == [0, 1, 2]  # the rest: taken last


def test_k_center_greedy_matches_a_brute_force_recomputation():
    from scipy.spatial.distance import cdist

    from labelwise.active.selection import k_center_greedy

    X = spread_points(60, d=5, seed=2)
    labeled, candidates = np.arange(4), np.arange(4, 60)
    rows, scores = k_center_greedy(X, labeled, candidates, 8, rng=np.random.default_rng(0))
    centers, expected = list(labeled), []
    for _ in range(8):  # the farthest candidate from everything chosen so far, from full distance matrices
        rest = np.setdiff1d(candidates, expected)
        d = cdist(X[rest], X[centers]).min(1)
        expected.append(int(rest[np.argmax(d)]))
        centers.append(expected[-1])
    assert rows.tolist() == expected
    assert scores[0] == pytest.approx(cdist(X[[expected[0]]], X[labeled]).min(), rel=1e-5)
    assert np.all(np.diff(scores) <= 1e-6)  # each pick is nearer to the chosen set than the last


def test_typiclust_cold_start_takes_one_typical_image_per_cluster():
    X, y = blobs()
    picked = select(X, np.full(len(y), -1), 3, strategy="typiclust", random_state=0)
    assert sorted(y[picked.rows]) == [0, 1, 2]
    for row in picked.rows:  # typical = near its blob's centre, not an outlier
        same = X[y == y[row]]
        assert np.linalg.norm(X[row] - same.mean(0)) < np.median(np.linalg.norm(same - same.mean(0), axis=1))


def test_coreset_goes_to_the_cluster_without_labels():
    X, y = blobs()
    labels = np.full(len(y), -1)
    labels[[0, 30]] = [0, 1]  # blob 2 has no label
    picked = select(X, labels, 1, strategy="coreset", random_state=0)
    assert y[picked.rows[0]] == 2


def test_badge_starts_at_the_largest_gradient():
    X = spread_points(5)
    probs = np.array([CONFIDENT, UNIFORM, SKEWED, CONFIDENT, CONFIDENT])
    X[1] *= 3  # uncertain and far out: the largest gradient embedding
    picked = select(X, np.array([-1, -1, -1, 0, 1]), 2, strategy="badge", model=FixedModel(probs), random_state=0)
    assert picked.rows[0] == 1


@pytest.mark.parametrize("strategy", list_strategies())
def test_every_strategy_picks_distinct_unlabeled_rows_reproducibly(strategy):
    X, y = blobs(20)
    labels = np.full(len(y), -1)
    labels[[0, 1, 20, 21, 40, 41]] = y[[0, 1, 20, 21, 40, 41]]
    first = select(X, labels, 12, strategy=strategy, random_state=3)
    assert len(first.rows) == 12 == len(set(first.rows.tolist())) == len(first.scores)
    assert (labels[first.rows] == -1).all()
    assert np.array_equal(first.rows, select(X, labels, 12, strategy=strategy, random_state=3).rows)


def test_streamed_scores_equal_in_memory_scores(digits):
    from sklearn.linear_model import LogisticRegression

    images, target = digits
    X = images.reshape(len(images), -1)[:400].astype(np.float64)
    y = target[:400]
    model = LogisticRegression(max_iter=300).fit(X[:100], y[:100])
    for score in (margin_scores, entropy_scores, least_confident_scores):
        streamed = stream_scores(lambda rows: model.predict_proba(X[rows]), len(X), score, batch_size=37)
        assert np.allclose(streamed, score(model.predict_proba(X)), rtol=1e-9, atol=1e-12)  # BLAS blocking only
    labels = np.r_[y[:100], np.full(300, -1)]
    spread = make_model("spreading", 10).fit(X, labels)
    small = Pool(X, labels, 10, model=spread, batch_size=7).candidate_scores(margin_scores)
    assert np.allclose(small, Pool(X, labels, 10, model=spread).candidate_scores(margin_scores))


def test_mc_dropout_samples_do_not_depend_on_the_batch(digits):
    images, target = digits
    X = images.reshape(len(images), -1)[:300].astype(np.float32)
    model = make_model("mlp", 10, epochs=3).fit(X, target[:300])
    whole = mc_dropout_proba(model.clf_, X, n_samples=4, random_state=1)
    parts = np.concatenate(
        [mc_dropout_proba(model.clf_, X[s : s + 64], n_samples=4, random_state=1) for s in range(0, 300, 64)], axis=1
    )
    assert whole.shape == (4, 300, 10) and np.allclose(whole, parts, atol=1e-6)
    assert not np.allclose(whole[0], whole[1])  # dropout really is on
    bald = stream_scores(
        lambda r: mc_dropout_proba(model.clf_, X[r], n_samples=4, random_state=1), 300, bald_scores, batch_size=50
    )
    assert np.allclose(bald, bald_scores(whole))


def test_select_refuses_a_pool_smaller_than_n_and_unknown_names():
    X, y = blobs(5)
    labels = np.full(len(y), -1)
    labels[:10] = y[:10]
    with pytest.raises(LabelwiseError, match="asked for 6 images but the unlabeled pool holds only 5"):
        select(X, labels, 6, strategy="random")
    with pytest.raises(LabelwiseError, match="unknown strategy 'smart'; choose one of: random, .*typiclust"):
        select(X, labels, 2, strategy="smart")
    with pytest.raises(LabelwiseError, match="needs labeled images"):
        select(X, np.full(len(y), -1), 2, strategy="margin")


def test_pseudo_labels_of_the_pool_help_the_model_in_the_loop(digits):
    images, target = digits
    X = images.reshape(len(images), -1).astype(np.float32)
    pool, test = slice(0, 1200), slice(1200, None)
    chosen = np.random.default_rng(0).choice(1200, 20, replace=False)
    labels = np.full(1200, -1)
    labels[chosen] = target[pool][chosen]

    def accuracy(model):
        return (model.fit(X[pool], labels).predict_proba(X[test]).argmax(1) == target[test]).mean()

    supervised = accuracy(make_model("logreg", 10))
    semi = make_model("logreg", 10, semi=True)
    assert accuracy(semi) > supervised + 0.05
    assert semi.n_pseudo_ == 1180  # every unlabeled row, weighted by its spread probability
    assert accuracy(make_model("spreading_logreg", 10)) > supervised + 0.05
    confident = make_model("logreg", 10, semi=True)
    confident.threshold = 0.9
    confident.fit(X[pool], labels)
    assert 0 < confident.n_pseudo_ < 1180


def test_simulated_loop_grows_the_labeled_set_and_learns(digits):
    images, target = digits
    X = images.reshape(len(images), -1).astype(np.float32)
    pool, test = slice(0, 600), slice(600, 900)
    result = run_loop(
        X[pool], target[pool], X[test], target[test], strategy="auto", n_start=20, n_new=30, rounds=3, random_state=0
    )
    assert result.rounds["n_labels"].tolist() == [20, 50, 80, 110]
    assert result.picks["row"].is_unique and len(result.picks) == 110
    assert result.rounds["accuracy"].iloc[-1] > result.rounds["accuracy"].iloc[0]
    again = run_loop(
        X[pool], target[pool], X[test], target[test], strategy="auto", n_start=20, n_new=30, rounds=3, random_state=0
    )
    assert again.picks.equals(result.picks)
    per_class = run_loop(
        X[pool],
        target[pool],
        X[test],
        target[test],
        strategy="random",
        n_start=2,
        per_class=True,
        n_new=10,
        rounds=0,
        random_state=0,
    )
    assert np.bincount(target[pool][per_class.picks["row"]], minlength=10).tolist() == [2] * 10


def test_runs_of_one_seed_share_their_start(digits):
    images, target = digits
    X = images.reshape(len(images), -1).astype(np.float32)
    a = run_loop(
        X[:400], target[:400], X[400:500], target[400:500], strategy="random", n_new=10, rounds=1, random_state=5
    )
    b = run_loop(
        X[:400], target[:400], X[400:500], target[400:500], strategy="margin", n_new=10, rounds=1, random_state=5
    )
    start = lambda r: sorted(r.picks.loc[r.picks["round"] == 0, "row"])  # noqa: E731
    assert start(a) == start(b) and a.rounds["accuracy"].iloc[0] == b.rounds["accuracy"].iloc[0]


def test_grid_expands_axes_and_names_unknown_keys():
    runs = expand_grid(
        check_grid(
            {
                "seeds": [0, 1],
                "experiments": {
                    "anchor": {"models": ["logreg"], "pca": 50, "strategies": ["random", "margin"]},
                    "ours": {"strategies": ["auto"], "semi": [False, True]},
                },
            }
        )
    )
    assert len(runs) == 2 * 2 + 2 * 2
    assert {r["experiment"] for r in runs} == {"anchor", "ours semi=False", "ours semi=True"}
    assert {r["model"] for r in runs if r["experiment"] == "anchor"} == {"logreg"}
    with pytest.raises(LabelwiseError, match="unknown key 'strategy' \\(did you mean 'strategies'\\?\\)"):
        check_grid({"strategy": ["random"]})
    with pytest.raises(LabelwiseError, match="experiment 'x': unknown key 'lr'"):
        check_grid({"experiments": {"x": {"lr": 0.1}}})


def test_curve_summary_orders_strategies_by_area():
    rows = []
    for seed in (0, 1):
        for i, n in enumerate((20, 60, 100)):
            rows.append(("e", "good", seed, i, n, 0.6 + 0.15 * i + 0.01 * seed, 0.6))
            rows.append(("e", "poor", seed, i, n, 0.5 + 0.1 * i, 0.5))
    results = pd.DataFrame(
        rows, columns=["experiment", "strategy", "seed", "round", "n_labels", "accuracy", "balanced_accuracy"]
    )
    summary = curve_summary(results, target=0.75)
    assert summary["strategy"].tolist() == ["good", "poor"]
    good = summary.iloc[0]
    assert 0 <= good["auc"] <= 1 and good["auc_std"] > 0 and good["labels_to_target"] == 60
    assert np.isnan(summary.iloc[1]["labels_to_target"])
    assert normalised_auc(np.array([20, 100]), np.array([0.8, 0.8])) == pytest.approx(0.8)
    assert np.isnan(labels_to_reach(np.array([20, 60]), np.array([0.5, 0.6]), 0.9))
