"""Finding and fixing wrong labels."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_png
from typer.testing import CliRunner

from labelwise.cli.app import app
from labelwise.data import ReadOptions
from labelwise.errors import LabelwiseError
from labelwise.noise import clean, find_issues, label_issues, neighbor_probs


def _toy(n_per_class=40, k=4, seed=0):
    """Well-separated blobs in 8-d, with matching confident probabilities."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:k] * 10
    y = np.repeat(np.arange(k), n_per_class)
    X = centres[y] + rng.normal(0, 0.5, (len(y), 8))
    logits = -((X[:, None, :] - centres[None]) ** 2).sum(2) / 20
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return X, y, probs / probs.sum(1, keepdims=True)


@pytest.mark.parametrize("method", ["cleanlab", "neighbors", "ensemble"])
def test_planted_flips_are_all_found_and_clean_data_raises_none(method):
    X, y, probs = _toy()
    assert not label_issues(y, pred_probs=probs, embeddings=X, method=method)["is_issue"].any()
    noisy = y.copy()
    flipped = np.array([3, 50, 97, 140])
    noisy[flipped] = (y[flipped] + 1) % 4
    found = label_issues(noisy, pred_probs=probs, embeddings=X, method=method)
    assert set(np.flatnonzero(found["is_issue"])) == set(flipped)
    np.testing.assert_array_equal(found.loc[flipped, "suggested"], y[flipped])
    assert found.loc[flipped, "label_quality"].max() < found.drop(index=flipped)["label_quality"].min()


def test_permuting_the_class_order_changes_nothing():
    X, y, probs = _toy(seed=1)
    noisy = y.copy()
    noisy[[5, 60, 130]] = (y[[5, 60, 130]] + 2) % 4
    perm = np.array([2, 0, 3, 1])  # new index of each old class
    a = label_issues(noisy, pred_probs=probs, embeddings=X)
    inverse = np.argsort(perm)
    b = label_issues(perm[noisy], pred_probs=probs[:, inverse], embeddings=X)
    np.testing.assert_array_equal(a["is_issue"], b["is_issue"])
    np.testing.assert_array_equal(perm[a["suggested"]], b["suggested"])
    np.testing.assert_allclose(a["label_quality"], b["label_quality"])


@pytest.fixture
def noisy_folder(tmp_path):
    """Three well-separated classes of 16×16 images (bright top half, bright left half,
    checkerboard; 40 each, with pixel noise) and four images in the wrong class folder."""
    rng = np.random.default_rng(0)
    patterns = np.zeros((3, 16, 16))
    patterns[0, :8] = 200
    patterns[1, :, :8] = 200
    patterns[2] = (np.indices((16, 16)).sum(0) // 4 % 2) * 200
    root = tmp_path / "images"
    wrong = {}
    for c in (0, 1, 2):
        for j in range(40):
            pixels = np.clip(patterns[c] + rng.normal(0, 25, (16, 16)), 0, 255).astype(np.uint8)
            folder = str((c + 1) % 3) if j < 2 and c != 2 else str(c)
            write_png(root / folder / f"{c}_{j}.png", pixels)
            if folder != str(c):
                wrong[f"{folder}/{c}_{j}.png"] = str(c)
    return root, wrong


def test_find_issues_on_a_folder_then_clean(noisy_folder, tmp_path):
    root, wrong = noisy_folder
    result = find_issues(root, tmp_path / "issues", size=16, cache_dir=tmp_path / "cache")  # the images' own size
    table = pd.read_csv(tmp_path / "issues" / "label_issues.csv", dtype=str)
    flagged = table[table["is_issue"] == "True"]
    # every planted flip is found, with its true class suggested, and nothing else
    assert dict(zip(flagged["sample_id"], flagged["suggested_label"])) == wrong
    assert table["is_issue"].head(len(flagged)).eq("True").all()  # issues first
    quality = table["label_quality"].astype(float)
    assert quality[table["is_issue"] == "True"].is_monotonic_increasing  # worst first
    assert {"vote_neighbors", "vote_ensemble"} <= set(table.columns)
    assert (tmp_path / "issues" / "top_issues.png").is_file()
    rates = pd.read_csv(tmp_path / "issues" / "noise_rates.csv", dtype={"class": str}).set_index("class")
    assert rates["n_issues"].sum() == result.n_issues == len(flagged)
    assert rates["estimated_noise_rate"].to_dict() == (rates["n_issues"] / rates["n"]).round(4).to_dict()

    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "file": [f"{p.parent.name}/{p.name}" for p in sorted(root.rglob("*.png"))],
            "label": [p.parent.name for p in sorted(root.rglob("*.png"))],
        }
    ).to_csv(labels, index=False)
    before = labels.read_bytes()
    fixed = clean(labels, tmp_path / "issues", tmp_path / "clean.csv", read=ReadOptions(images=root))
    assert labels.read_bytes() == before  # the input is untouched
    out = pd.read_csv(tmp_path / "clean.csv", dtype=str).set_index("sample_id")
    assert (out.loc[list(wrong), "label"] == pd.Series(wrong)).all()
    assert (out["label_source"] == "corrected").sum() == len(flagged)
    assert set(out["label_source"]) == {"given", "corrected"}
    assert json.loads((tmp_path / "classes.json").read_text()) == fixed.classes
    pruned = clean(
        labels, tmp_path / "issues", tmp_path / "pruned.parquet", read=ReadOptions(images=root), policy="prune"
    )
    gone = pruned.table.set_index("sample_id").loc[list(wrong)]
    assert gone["label"].isna().all() and set(gone["label_source"]) == {"removed"}
    clean(labels, tmp_path / "issues", tmp_path / "review.csv", read=ReadOptions(images=root), policy="review")
    tasks = json.loads((tmp_path / "review.label_studio.json").read_text())
    assert {t["data"]["sample_id"] for t in tasks} == set(flagged["sample_id"])
    assert all(t["data"]["image"].startswith("/data/local-files/?d=") for t in tasks)
    assert {t["predictions"][0]["result"][0]["value"]["choices"][0] for t in tasks} <= {"0", "1", "2"}
    with pytest.raises(LabelwiseError, match="is the input .*labelwise never writes over or into what it reads"):
        clean(labels, tmp_path / "issues", labels, read=ReadOptions(images=root))


def test_probabilities_that_do_not_fit_are_one_line_errors(noisy_folder, tmp_path):
    root, _ = noisy_folder
    from labelwise import load_dataset

    ids = load_dataset(root).labeled["sample_id"]
    good = pd.DataFrame(np.full((len(ids), 3), 1 / 3), columns=["prob_0", "prob_1", "prob_2"]).assign(
        sample_id=ids.to_numpy()
    )
    good.drop(columns="prob_2").to_csv(tmp_path / "p1.csv", index=False)
    with pytest.raises(LabelwiseError, match="no column 'prob_2'"):
        find_issues(root, probs=tmp_path / "p1.csv", method="cleanlab")
    bad = good.copy()
    bad.loc[0, "prob_0"] = 0.9
    bad.to_csv(tmp_path / "p2.csv", index=False)
    with pytest.raises(LabelwiseError, match="sum to 1.5667, not 1"):
        find_issues(root, probs=tmp_path / "p2.csv", method="cleanlab")


def test_cli_issues_then_clean(noisy_folder, tmp_path):
    root, wrong = noisy_folder
    runner = CliRunner()
    r = runner.invoke(
        app, ["issues", str(root), "--out", str(tmp_path / "iss"), "--size", "16", "--cache-dir", str(tmp_path / "c")]
    )
    assert r.exit_code == 0, r.output
    n = len(wrong)
    assert f"{n} of 120 labels look wrong" in r.output
    r = runner.invoke(app, ["clean", str(root), "--issues", str(tmp_path / "iss"), "--out", str(tmp_path / "c.csv")])
    assert r.exit_code == 0, r.output
    assert f"corrected {n}" in r.output
    r = runner.invoke(app, ["issues", str(root), "--out", str(tmp_path / "x"), "--method", "magic"])
    assert r.exit_code == 2 and "unknown detector 'magic'" in r.output


def test_issues_from_a_cnn_trained_k_fold_on_the_given_labels(noisy_folder, tmp_path):
    pytest.importorskip("torch")
    root, wrong = noisy_folder
    result = find_issues(root, tmp_path / "iss", model="cnn", epochs=10, folds=3, method="ensemble")
    oof = pd.read_csv(tmp_path / "iss" / "train" / "oof_probs.csv")
    assert len(oof) == 120  # every labeled image got an out-of-fold row
    flagged = result.table[result.table["is_issue"]]
    assert dict(zip(flagged["sample_id"], flagged["suggested_label"])) == wrong


def test_in_sample_probabilities_and_tiny_classes_are_warned_about(noisy_folder, tmp_path, caplog):
    root, _ = noisy_folder
    from labelwise import load_dataset

    ds = load_dataset(root)
    ids, given = ds.labeled["sample_id"].to_numpy(), ds.labeled["label"].to_numpy()
    # probabilities that repeat every given label with certainty: a model that saw them
    memorised = pd.DataFrame({f"prob_{c}": (given == c).astype(float) for c in ds.classes}).assign(sample_id=ids)
    with caplog.at_level("WARNING", logger="labelwise"):
        result = find_issues(root, probs=memorised, method="cleanlab")
    assert "look in-sample" in caplog.text
    assert result.n_issues == 0  # and indeed nothing is found: why the warning matters
    caplog.clear()
    write_png(root / "3" / "lonely.png", np.full((16, 16), 90, np.uint8))
    with caplog.at_level("WARNING", logger="labelwise"):
        find_issues(root, size=16, method="neighbors")
    assert "class '3' has only 1 labeled image" in caplog.text
    if importlib.util.find_spec("torch"):  # k-fold training cannot split it at all: one line
        with pytest.raises(LabelwiseError, match="class '3' has 1 labeled image, fewer than --folds 5"):
            find_issues(root, tmp_path / "k")


def test_probabilities_of_a_train_folder_cover_its_held_out_split(noisy_folder, tmp_path):
    root, _ = noisy_folder
    from labelwise import load_dataset
    from labelwise.noise import read_probabilities

    ids = load_dataset(root).labeled["sample_id"].astype(str)
    cols = ["prob_0", "prob_1", "prob_2"]
    folder = tmp_path / "train"
    folder.mkdir()
    probs = pd.DataFrame(np.tile([0.8, 0.1, 0.1], (len(ids), 1)), columns=cols).assign(sample_id=ids.to_numpy())
    probs.iloc[:100].to_csv(folder / "oof_probs.csv", index=False)
    probs.iloc[100:].assign(prob_0=0.1, prob_2=0.8).to_csv(folder / "test_probs.csv", index=False)
    got = read_probabilities(folder, ids.iloc[::-1], ["0", "1", "2"])  # aligned by sample_id, not position
    assert got.shape == (len(ids), 3)
    np.testing.assert_allclose(got[: len(ids) - 100, 2], 0.8)
    np.testing.assert_allclose(got[len(ids) - 100 :, 0], 0.8)
    (folder / "test_probs.csv").unlink()
    with pytest.raises(LabelwiseError, match=r"no probabilities for sample_id .* \(20 missing\)"):
        read_probabilities(folder, ids, ["0", "1", "2"])


def test_training_dynamics_as_the_probability_source(noisy_folder, tmp_path):
    pytest.importorskip("torch")
    root, wrong = noisy_folder
    result = find_issues(root, tmp_path / "iss", source="dynamics", epochs=6)
    dyn = pd.read_csv(tmp_path / "iss" / "train" / "dynamics_probs.csv", dtype={"sample_id": str})
    assert len(dyn) == 120 and not (tmp_path / "iss" / "train" / "oof_probs.csv").exists()  # one model, all rows
    np.testing.assert_allclose(dyn.filter(like="prob_").sum(axis=1), 1, atol=1e-6)
    # 120 images are memorised quickly, so a verdict is not promised here (that is why
    # source="auto" takes out-of-fold probabilities for small sets), but the ranking holds:
    worst = result.table.sort_values("label_quality").head(len(wrong))
    assert dict(zip(worst["sample_id"], worst["suggested_label"])) == wrong
    with pytest.raises(LabelwiseError, match="unknown probability source 'magic'"):
        find_issues(root, tmp_path / "x", source="magic")


def test_neighbour_votes_come_from_the_spaces_that_held_a_sample_out():
    X, y, _ = _toy(n_per_class=20, k=2)
    noisy = y.copy()
    noisy[0] = 1  # a class-0 sample labeled 1
    memorised = X.copy()
    memorised[0] = X[y == 1].mean(0)  # a space fitted to the wrong label puts it among class 1
    plain = neighbor_probs(X, noisy, 2, k=5)
    assert plain[0].argmax() == 0
    in_sample = neighbor_probs([memorised, X], noisy, 2, k=5, held_out=np.array([[True] * 40, [False] + [True] * 39]))
    assert in_sample[0].argmax() == 1  # judged only in the space that saw its (wrong) label
    fair = neighbor_probs([memorised, X], noisy, 2, k=5, held_out=np.array([[False] + [True] * 39, [True] * 40]))
    np.testing.assert_allclose(fair[0], plain[0])
    # a sample no space held out is judged in all of them, votes averaged
    both = neighbor_probs([memorised, X], noisy, 2, k=5, held_out=np.zeros((2, 40), bool))
    np.testing.assert_allclose(both, (neighbor_probs(memorised, noisy, 2, k=5) + plain) / 2)
    with pytest.raises(LabelwiseError, match="held_out has shape"):
        neighbor_probs([X, X], noisy, 2, k=5, held_out=np.ones((3, 40), bool))
