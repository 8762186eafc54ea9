"""``labelwise train / evaluate / predict / models`` from the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from conftest import write_png

from labelwise.cli.app import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def three_digits(tmp_path, digits):
    images, target = digits
    root = tmp_path / "images"
    for c in (0, 1, 2):
        for i in np.flatnonzero(target == c)[:15]:
            write_png(root / str(c) / f"{i}.png", images[i])
    return root


def test_train_evaluate_predict_round_trip(three_digits, tmp_path):
    out = tmp_path / "run"
    result = _run("train", three_digits, "--out", out, "--folds", "3", "--epochs", "3", "--no-flip", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "held out: accuracy" in result.output
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "ok" and run["result"]["folds"] == 3 and run["seed"] == 1
    assert (out / "config.yaml").is_file() and (out / "labelwise.log").is_file()

    ev = _run("evaluate", out, "--out", tmp_path / "ev")
    assert ev.exit_code == 0, ev.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    oof = pd.read_csv(out / "oof_probs.csv")
    table = pd.read_csv(out / "dataset.csv").set_index("sample_id")
    pred = oof.filter(like="prob_").to_numpy().argmax(1)
    truth = table.loc[oof["sample_id"], "label"].astype(str).map({"0": 0, "1": 1, "2": 2}).to_numpy()
    assert metrics["accuracy"] == pytest.approx((pred == truth).mean())
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()

    pr = _run(
        "predict", out, three_digits / "1", "--out", tmp_path / "pred", "--ordered-txt", tmp_path / "pred" / "l.txt"
    )
    assert pr.exit_code == 0, pr.output
    lines = (tmp_path / "pred" / "l.txt").read_text().splitlines()
    assert len(lines) == 15


def test_train_user_mistakes_are_one_line(three_digits, tmp_path):
    for args, expected in (
        (("--model", "resnet9000"), "unknown model 'resnet9000'"),
        (("--folds", "30"), "fewer than --folds 30"),
        (("--balance", "magic"), "unknown balance 'magic'"),
        (("--model", "resnet18", "--size", "16"), "at least 32×32 px"),
    ):
        result = _run("train", three_digits, "--out", tmp_path / "run", "--epochs", "1", *args)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], result.output
    result = _run("predict", tmp_path / "nowhere", three_digits, "--out", tmp_path / "p")
    assert result.exit_code == 2 and "not a trained model folder" in result.output


def test_overfit_batch_and_models_listing(three_digits, tmp_path):
    result = _run("train", three_digits, "--out", tmp_path / "o", "--overfit-batch", "--no-flip")
    assert result.exit_code == 0, result.output
    assert "reached ~0" in result.output
    listing = _run("models")
    assert {"cnn", "linear", "mlp", "resnet18"} <= {line.split()[0] for line in listing.output.splitlines()}


def test_tensorboard_and_mlflow_logging(three_digits, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    out = tmp_path / "run"
    result = _run("train", three_digits, "--out", out, "--folds", "2", "--epochs", "2", "--tensorboard", "--mlflow")
    assert result.exit_code == 0, result.output
    events = list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent)).Reload()
    assert [s.step for s in acc.Scalars("train_loss")] == [1, 2]
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((out / "mlruns").resolve().as_uri())
    runs = mlflow.search_runs(experiment_names=["labelwise"])
    assert len(runs) == 2 and "metrics.valid_balanced_accuracy" in runs
