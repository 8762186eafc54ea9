"""The active-learning commands end to end: query, simulate (with a YAML grid) and plot-curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise.cli.app import app

runner = CliRunner()


@pytest.fixture
def digits_npz(tmp_path, digits):
    """600 real digits in an .npz; the second file has only 40 labels (the rest -1, unlabeled)."""
    images, target = digits
    full = tmp_path / "digits.npz"
    np.savez(full, images=images[:600], labels=target[:600])
    partial = tmp_path / "partial.npz"
    labels = np.full(300, -1)
    labels[:40] = target[:40]
    np.savez(partial, images=images[:300], labels=labels)
    return full, partial


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_simulate_two_rounds_then_plot_curves(tmp_path, digits_npz):
    full, _ = digits_npz
    out = tmp_path / "sim"
    result = invoke(
        "simulate",
        full,
        "--out",
        out,
        "--strategies",
        "random,margin",
        "--seeds",
        "0,1",
        "--rounds",
        2,
        "--n-start",
        2,
        "--per-class",
        "--n-new",
        15,
        "--backbone",
        "pixels",
        "--cache-dir",
        tmp_path / "cache",
        "--no-html",
    )
    assert result.exit_code == 0, result.output
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns[:7]) == [
        "experiment",
        "strategy",
        "seed",
        "round",
        "n_labels",
        "accuracy",
        "balanced_accuracy",
    ]
    assert len(results) == 2 * 2 * 3
    assert sorted(results["n_labels"].unique()) == [20, 35, 50]
    assert results["accuracy"].between(0, 1).all()
    picks = pd.read_csv(out / "picks.csv")
    assert not picks.duplicated(["strategy", "seed", "sample_id"]).any()
    for name in ("curves.png", "summary.csv", "report.md", "experiments.csv", "run.json", "config.yaml"):
        assert (out / name).is_file(), name

    again = tmp_path / "plots"
    result = invoke("plot-curves", out, "--out", again, "--target", 0.5, "--metric", "balanced_accuracy", "--no-html")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(again / "summary.csv")
    assert set(summary["strategy"]) == {"random", "margin"}
    assert summary["auc"].between(0, 1).all() and (summary["labels_to_target"] == 20).all()
    assert (again / "curves.png").stat().st_size > 1000 and "labels_to_target" in (again / "report.md").read_text()


def test_simulate_grid_names_each_experiment(tmp_path, digits_npz):
    full, _ = digits_npz
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "seeds: [0]\nrounds: 1\nn_new: 10\nexperiments:\n"
        "  anchor: {models: [logreg], strategies: [random]}\n"
        "  ours: {strategies: [auto], start: typiclust}\n"
    )
    out = tmp_path / "sim"
    result = invoke(
        "simulate",
        full,
        "--out",
        out,
        "--grid",
        grid,
        "--backbone",
        "pixels",
        "--cache-dir",
        tmp_path / "cache",
        "--no-html",
    )
    assert result.exit_code == 0, result.output
    results = pd.read_csv(out / "results.csv")
    assert set(zip(results["experiment"], results["strategy"])) == {("anchor", "random"), ("ours", "auto")}
    assert set(results["round"]) == {0, 1}

    grid.write_text("seeds: [0]\nstrategy: [random]\n")
    result = invoke("simulate", full, "--out", tmp_path / "bad", "--grid", grid)
    assert result.exit_code == 2
    assert "unknown key 'strategy'" in result.output and "Traceback" not in result.output


def test_query_writes_ranked_picks_and_label_studio_predictions(tmp_path, digits_npz):
    _, partial = digits_npz
    out = tmp_path / "q"
    result = invoke(
        "query",
        partial,
        "--n",
        12,
        "--strategy",
        "diverse_margin",
        "--backbone",
        "pixels",
        "--out",
        out,
        "--cache-dir",
        tmp_path / "cache",
        "--no-html",
    )
    assert result.exit_code == 0, result.output
    picks = pd.read_csv(out / "query.csv")
    assert list(picks.columns) == ["rank", "sample_id", "path", "score", "predicted_label", "probability"]
    assert len(picks) == 12 and picks["sample_id"].is_unique
    labeled = {f"partial.npz::{i}" for i in range(40)}
    assert not set(picks["sample_id"]) & labeled
    assert picks["probability"].between(0, 1).all()
    tasks = json.loads((out / "label_studio_tasks.json").read_text())
    assert [t["data"]["sample_id"] for t in tasks] == picks["sample_id"].tolist()
    pred = tasks[0]["predictions"][0]
    assert pred["score"] == pytest.approx(picks["probability"].iloc[0]) and "diverse_margin" in pred["model_version"]
    assert pred["result"][0]["value"]["choices"] == [str(picks["predicted_label"].iloc[0])]
    assert "al_score" in tasks[0]["data"] and (out / "labeling_config.xml").is_file()


def test_query_cold_start_picks_typical_images_of_every_digit(tmp_path, digits):
    images, target = digits
    data = tmp_path / "unlabeled.npz"
    np.savez(data, images=images[:300], labels=np.full(300, -1))
    out = tmp_path / "q"
    result = invoke(
        "query", data, "--n", 10, "--backbone", "pixels", "--out", out, "--cache-dir", tmp_path / "cache", "--no-html"
    )
    assert result.exit_code == 0, result.output
    picks = pd.read_csv(out / "query.csv")
    rows = picks["sample_id"].str.split("::").str[1].astype(int)
    assert len(set(target[rows])) >= 8  # TypiClust: one typical image per cluster, so nearly every digit
    assert picks["probability"].isna().all()  # no labels, no model: nothing to pre-annotate
    assert all("predictions" not in t for t in json.loads((out / "label_studio_tasks.json").read_text()))


def test_query_bad_input_is_one_line(tmp_path, digits_npz):
    _, partial = digits_npz
    result = invoke("query", partial, "--n", 261, "--out", tmp_path / "q1", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 2 and "asked for 261 images but the unlabeled pool holds only 260" in result.output
    result = invoke("query", partial, "--n", 5, "--strategy", "smart", "--out", tmp_path / "q2")
    assert result.exit_code == 2
    assert "unknown strategy 'smart'; choose one of: random, least_confident, margin" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    result = invoke("simulate", partial, "--model", "cnn", "--augment", "heavy", "--out", tmp_path / "s1")
    assert result.exit_code == 2 and "unknown augment 'heavy'; choose one of none, light, strong" in result.output
    result = invoke("simulate", partial, "--model", "forest", "--out", tmp_path / "s2")
    assert (
        result.exit_code == 2 and "unknown model 'forest'; choose one of: spreading_logreg, spreading" in result.output
    )
