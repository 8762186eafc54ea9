"""The demo end to end, through the CLI, as the README's first command runs it.

CI runs that command once before the tests (``.ci/run``) and names its folder and console
output in ``LABELWISE_DEMO_DIR`` / ``LABELWISE_DEMO_OUTPUT``; the test then checks that run
instead of running the demo a second time. Without them it runs the demo itself.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import labelwise
from labelwise.cli.app import app


def _demo(tmp_path: Path) -> tuple[Path, str]:
    """The demo's folder (a copy, when CI has run it already) and its console output."""
    done, printed = os.environ.get("LABELWISE_DEMO_DIR"), os.environ.get("LABELWISE_DEMO_OUTPUT")
    if done and printed and (Path(done) / "run.json").is_file():
        record = json.loads((Path(done) / "run.json").read_text())
        assert record["command"] == "demo" and record["status"] == "ok", record
        shutil.copytree(done, tmp_path / "demo")
        text = Path(printed).read_text()  # it names the folder as it was given: relative or absolute
        for name in (str(Path(done).resolve()), done, Path(done).name):
            text = text.replace(f"{name}/", f"{tmp_path / 'demo'}/")
        return tmp_path / "demo", text
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out, output = _demo(tmp_path)

    truth = pd.read_csv(out / "truth.csv")
    assert len(truth) == 1797
    assert truth["given_label"].isna().sum() == round(0.2 * 1797)
    assert truth["flipped"].sum() == round(0.1 * 1797)

    # the folder really is messy in the way truth.csv says
    ds = labelwise.load_dataset(out / "images")
    given = ds.table.set_index("sample_id")["label"]
    t = truth.set_index("sample_id")
    assert given.isna().sum() == t["given_label"].isna().sum()
    wrong = given.notna() & (given != t["true_label"].astype(str).reindex(given.index))
    assert wrong.sum() == t["flipped"].sum()

    assert (out / "explore" / "report.md").is_file()
    assert (out / "explore" / "class_balance.png").is_file()
    split = pd.read_csv(out / "data" / "dataset.csv")
    assert set(split["split"]) == {"train", "valid", "unlabeled"}
    vectors = np.load(out / "embed" / "embeddings.npy")
    assert vectors.shape[0] == 1797
    # train → evaluate → predict: out-of-fold rows for every training image, a held-out score,
    # and one predicted label per unlabeled image
    # pseudolabel → train: every unlabeled image gets a pseudo label, and the model trains on them too
    pseudo = pd.read_csv(out / "pseudolabel" / "pseudo_labels.csv", dtype=str)
    assert set(pseudo["sample_id"]) == set(split.loc[split["split"] != "valid", "sample_id"])
    guessed = pseudo[pseudo["source"] == "pseudo"]
    assert set(guessed["sample_id"]) == set(split.loc[split["split"] == "unlabeled", "sample_id"])
    assert (guessed["label"] == t.loc[guessed["sample_id"], "true_label"].astype(str).to_numpy()).mean() > 0.9
    summary = json.loads((out / "pseudolabel" / "summary.json").read_text())
    doubtful = summary["n_problematic"] + summary["n_uncertain_over_budget"]
    assert (pseudo["problematic"] == "True").sum() == summary["n_problematic"] == min(100, doubtful) > 0
    oof = pd.read_csv(out / "train" / "oof_probs.csv")
    assert set(oof["sample_id"]) == set(split.loc[split["split"] != "valid", "sample_id"])
    assert len(list((out / "train").glob("fold-*/model.pt"))) == 5
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())
    assert metrics["n"] == len(oof)
    assert (out / "evaluate" / "test" / "confusion_matrix.png").is_file()
    lines = (out / "predict" / "labels.txt").read_text().splitlines()
    assert len(lines) == truth["given_label"].isna().sum()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "ok" and run["seed"] == 0
    # the ensemble is right on most images whose given label is wrong or missing
    assert run["result"]["held_out_accuracy_vs_truth"] > 0.9
    assert run["result"]["unlabeled_accuracy_vs_truth"] > 0.9
    # issues → clean → retrain: most flagged labels are truly wrong, and most wrong ones are found
    issues = pd.read_csv(out / "issues" / "label_issues.csv", dtype=str)
    flagged = issues.loc[issues["is_issue"] == "True", "sample_id"]
    assert t.loc[flagged, "flipped"].mean() > 0.9 and t.loc[flagged, "flipped"].sum() > 0.7 * t["flipped"].sum()
    cleaned = pd.read_csv(out / "clean" / "labels.csv", dtype=str).set_index("sample_id")
    assert (cleaned.loc[flagged, "label_source"] == "corrected").all()
    assert (
        run["result"]["held_out_accuracy_vs_truth_after_cleaning"] >= run["result"]["held_out_accuracy_vs_truth"] - 0.01
    )
    assert "after issues → clean → retrain" in output.replace("\n", " ")
    # the loop: its answers are spent, and its label set is much more accurate than the given one
    result = run["result"]
    assert result["loop_answers"] == 150 and (out / "loop" / "report.html").is_file()
    assert result["loop_label_accuracy_after"] > result["loop_label_accuracy_before"] + 0.1
    assert "closing the loop: 150 answers" in output.replace("\n", " ")
    assert str(out / "explore") in output

    # the demo's images replace the demo's own earlier ones, without stale files
    from labelwise._demo import make_demo_images

    (out / "images" / "0" / "stale.png").write_bytes((out / "images" / "0").glob("*.png").__next__().read_bytes())
    make_demo_images(out / "images", seed=1)
    assert len(labelwise.load_dataset(out / "images", check=False).table) == 1797


def test_demo_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "images" / "cat").mkdir(parents=True)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not empty and holds no labelwise run" in result.output
    assert (tmp_path / "images" / "cat").is_dir()
