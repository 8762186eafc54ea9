"""Task files with gold splits and honeypots, label propagation, and the crowd commands end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import write_png
from typer.testing import CliRunner

from labelwise.cli.app import app
from labelwise.crowd import (
    knn_propagate,
    make_tasks,
    mix_honeypots,
    read_answers,
    split_gold,
)
from labelwise.errors import LabelwiseError

runner = CliRunner()


@pytest.fixture
def pool(tmp_path, digits):
    """120 images to label (digits 0-2 as PNG) and a gold CSV of 40 more, with one hint."""
    pixels, target = digits
    keep = np.flatnonzero(target < 3)
    root = tmp_path / "pool"
    for i in keep[:120]:
        write_png(root / f"img_{i:04d}.png", pixels[i])
    gold_dir = tmp_path / "gold"
    rows = []
    for i in keep[120:160]:
        write_png(gold_dir / f"g_{i:04d}.png", pixels[i])
        rows.append({"image": f"g_{i:04d}.png", "label": str(target[i]), "hint": ""})
    rows[0]["hint"] = 'Count the "loops"\tcarefully'
    pd.DataFrame(rows).to_csv(gold_dir / "gold.csv", index=False)
    return root, gold_dir / "gold.csv"


def test_gold_split_sizes_are_stratified_and_seeded():
    labels = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20, index=[f"s{i}" for i in range(100)])
    roles = split_gold(labels, seed=3)
    assert roles.value_counts().to_dict() == {"honeypot": 50, "training": 30, "exam": 20}
    per_class = pd.crosstab(labels, roles)
    assert (
        per_class.loc["a", "training"] == 15
        and per_class.loc["b", "training"] == 9
        and per_class.loc["c", "training"] == 6
    )
    assert roles.equals(split_gold(labels, seed=3)) and not roles.equals(split_gold(labels, seed=4))
    assert split_gold(labels, training_pct=10, exam_pct=0).value_counts().to_dict() == {"honeypot": 90, "training": 10}
    with pytest.raises(LabelwiseError, match="sum to at most 100"):
        split_gold(labels, training_pct=70, exam_pct=40)


def test_honeypots_mixed_at_the_rate():
    order, spare = mix_honeypots(list(range(490)), [f"h{i}" for i in range(12)], page_size=50, per_page=1, seed=0)
    assert len(order) == 500 and len(spare) == 2  # 10 pages of 49 tasks + 1 honeypot
    for page in range(10):
        assert sum(hp for _, hp in order[page * 50 : (page + 1) * 50]) == 1
    assert [x for x, hp in order if not hp] == list(range(490))  # tasks keep their order
    order, spare = mix_honeypots(list(range(10)), ["h"], page_size=4, per_page=2)
    assert sum(hp for _, hp in order) == 1 and spare == []  # honeypots ran out


def test_label_studio_tasks_with_gold_predictions_and_overlap(tmp_path, pool):
    root, gold = pool
    preds = tmp_path / "probs.csv"
    pd.DataFrame(
        {
            "sample_id": [p.name for p in sorted(root.iterdir())[:2]],
            "prob_0": [0.2, 0.9],
            "prob_1": [0.7, 0.05],
            "prob_2": [0.1, 0.05],
        }
    ).to_csv(preds, index=False)
    out = tmp_path / "tasks"
    result = make_tasks(
        root,
        out,
        gold=gold,
        predictions=preds,
        root=tmp_path,
        page_size=25,
        per_page=1,
        annotators=["ann", "bob", "cy"],
        overlap=2,
        model_version="ens5",
    )
    assert result.counts == {
        "task": 120 * 2,
        "honeypot": 3 * 5,
        "training": 12,
        "exam": 8,
        "spare": 15,
        "images": 120 + 25,
    }
    files = sorted(p.name for p in (out / "label_studio").iterdir())
    assert files == ["ann.json", "bob.json", "cy.json"]
    per_file = {f: json.loads((out / "label_studio" / f).read_text()) for f in files}
    seen = pd.Series([t["data"]["sample_id"] for ts in per_file.values() for t in ts]).value_counts()
    honeypots = set(result.manifest.loc[result.manifest["role"] == "honeypot", "sample_id"])
    assert (seen[[s for s in seen.index if s not in honeypots]] == 2).all()  # overlap 2
    assert (seen[list(honeypots)] == 3).all()  # every annotator gets every honeypot
    first = next(t for t in per_file["ann.json"] if t["data"]["sample_id"] == sorted(p.name for p in root.iterdir())[0])
    assert first["data"]["image"] == f"/data/local-files/?d=pool/{first['data']['sample_id']}"
    assert first["predictions"][0] | {"result": None} == {"model_version": "ens5", "score": 0.7, "result": None}
    assert first["predictions"][0]["result"][0]["value"] == {"choices": ["1"]}
    training = json.loads((out / "label_studio_training.json").read_text())
    assert all(t["predictions"][0]["model_version"] == "gold" and t["data"]["hint"] for t in training)
    assert '<Choice value="2"/>' in (out / "labeling_config.xml").read_text()
    gold_out = pd.read_csv(out / "gold.csv", dtype=str)
    assert len(gold_out) == 40 and set(gold_out["role"]) == {"training", "exam", "honeypot"}
    info = json.loads((out / "manifest.json").read_text())
    assert info["label_studio_env"][1] == f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={tmp_path}"


def test_toloka_task_files_and_round_trip(tmp_path, pool):
    root, gold = pool
    out = tmp_path / "toloka"
    make_tasks(root, out, format="toloka", gold=gold, url_prefix="https://cdn.example/imgs", page_size=10)
    tasks = pd.read_csv(out / "toloka_tasks.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert tasks.columns.tolist() == ["INPUT:image", "INPUT:sample_id", "GOLDEN:result"]
    assert len(tasks) == 120 + 20 and (tasks["GOLDEN:result"] != "").sum() == 20  # Toloka mixes all controls itself
    assert tasks["INPUT:image"].iloc[0].startswith("https://cdn.example/imgs/pool/")
    training = pd.read_csv(out / "toloka_training.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert training.columns.tolist() == ["INPUT:image", "INPUT:sample_id", "GOLDEN:result", "HINT:text"]
    hints = pd.read_csv(gold, dtype=str, keep_default_na=False).set_index("image")
    expected = [hints.at[s, "hint"] or f"The answer is {hints.at[s, 'label']}." for s in training["INPUT:sample_id"]]
    assert len(training) == 12 and training["HINT:text"].tolist() == expected  # tabs and quotes survive
    # Toloka returns the same columns plus OUTPUT and ASSIGNMENT: our reader takes them back
    results = tasks.assign(**{"OUTPUT:result": "1", "ASSIGNMENT:worker_id": "w1", "ASSIGNMENT:status": "APPROVED"})
    results.to_csv(tmp_path / "results.tsv", sep="\t", index=False)
    back = read_answers(tmp_path / "results.tsv")
    assert len(back.table) == 140 and len(back.gold) == 20 and set(back.table["task"]) == set(tasks["INPUT:sample_id"])


def test_knn_propagation_accepts_only_confident_votes():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0, 0], [0, 5.0, 0]])
    y = np.repeat([0, 1], 30)
    X = centres[y] + rng.normal(0, 0.5, (60, 3))
    labels = np.where(np.arange(60) % 3 == 0, y, -1)
    X_amb = np.vstack([X, [[2.5, 2.5, 0]]])  # halfway: an even split, never accepted
    res = knn_propagate(X_amb, np.append(labels, -1), k=8, threshold=0.9)
    assert (res.labels[:60] == y).all() and res.accepted[:60].sum() == 40
    assert res.labels[60] == -1 and not res.accepted[60] and 0.4 < res.confidence[60] < 0.9
    assert (res.confidence[:60][labels >= 0] == 1).all()
    with pytest.raises(LabelwiseError, match="no labeled rows"):
        knn_propagate(X, np.full(60, -1))


# ---------------------------------------------------------------- CLI


def test_cli_aggregate_end_to_end(tmp_path, digits):
    pixels, _ = digits
    images = tmp_path / "images"
    for i in range(10):
        write_png(images / f"{i}.png", pixels[i])
    tasks = []
    answers = {0: ["cat", "cat", "cat"], 1: ["dog", "dog", "cat"], 2: ["cat", "dog", "dog"], 3: ["dog", "dog", "dog"]}
    for t, labels in answers.items():
        anns = [
            {
                "id": t * 10 + w,
                "completed_by": w + 1,
                "result": [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [lab]}}],
            }
            for w, lab in enumerate(labels)
        ]
        tasks.append({"id": t, "data": {"image": f"/data/local-files/?d=images/{t}.png"}, "annotations": anns})
    tasks.append({"id": 9, "data": {"image": "/data/local-files/?d=images/9.png"}, "annotations": []})
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    (tmp_path / "gold.csv").write_text("task,label\n0.png,cat\n")
    out = tmp_path / "agg"
    res = runner.invoke(
        app,
        [
            "aggregate",
            str(export),
            "--images",
            str(images),
            "--gold",
            str(tmp_path / "gold.csv"),
            "--consensus-test",
            "--method",
            "mv",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    labels = pd.read_csv(out / "labels.csv", dtype={"task": str})
    assert labels.columns[:6].tolist() == ["task", "label", "confidence", "n_answers", "agreement", "method"]
    assert labels.set_index("task")["label"].to_dict() == {
        "0.png": "cat",
        "1.png": "dog",
        "2.png": "dog",
        "3.png": "dog",
    }
    assert labels.set_index("task")["split"].to_dict() == {
        "0.png": "test",
        "1.png": "test",
        "2.png": "test",
        "3.png": "test",
    }
    annotators = pd.read_csv(out / "annotators.csv", dtype={"worker": str}).set_index("worker")
    assert annotators.loc["1", "accuracy_on_gold"] == 1.0 and annotators.loc["3", "agreement_with_consensus"] == 0.75
    assert (out / "dataset.csv").is_file() and (out / "report.md").is_file() and (out / "unlabeled.csv").is_file()
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    assert "Krippendorff" in res.output

    prop = tmp_path / "prop"
    res = runner.invoke(
        app,
        [
            "propagate",
            str(images),
            "--labels",
            str(out),
            "--out",
            str(prop),
            "--threshold",
            "0",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(prop / "dataset.csv", dtype=str).set_index("sample_id")
    assert table.loc[["0.png", "1.png", "2.png", "3.png"], "label_source"].tolist() == ["crowd"] * 4
    assert (table.drop(index=["0.png", "1.png", "2.png", "3.png"])["label_source"] == "propagated").all()
    assert set(table["label"]) == {"cat", "dog"}
    assert len(pd.read_csv(prop / "propagated.csv")) == 6


def test_gold_images_inside_the_task_folder_leave_the_ordinary_tasks(tmp_path, pool):
    root, _ = pool
    names = sorted(p.name for p in root.iterdir())[:10]
    gold = tmp_path / "inside.csv"
    pd.DataFrame({"path": [f"pool/{n}" for n in names], "label": ["0"] * 10}).to_csv(gold, index=False)
    result = make_tasks(root, tmp_path / "t", gold=gold, training_pct=0, exam_pct=0)
    assert result.counts["task"] == 110 and result.counts["honeypot"] + result.counts["spare"] == 10
    assert set(pd.read_csv(tmp_path / "t" / "gold.csv")["task"]) == set(names)  # the task set's sample_ids


def test_cli_tasks_end_to_end(tmp_path, pool):
    root, gold = pool
    out = tmp_path / "t"
    res = runner.invoke(
        app, ["tasks", str(root), "--gold", str(gold), "--out", str(out), "--annotators", "2", "--overlap", "2"]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "label_studio").iterdir()) == ["annotator_1.json", "annotator_2.json"]
    assert "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT" in res.output
    manifest = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert set(manifest["role"]) == {"task", "honeypot", "training", "exam", "spare"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["aggregate", "{bad}"], r"bad\.json: not valid JSON \(Expecting value at line 1, column 2\)"),
        (["aggregate", "{csv}", "--method", "nope"], "unknown aggregation method 'nope'"),
        (
            ["aggregate", "{csv}", "--classes", "{classes}"],
            r"answers\.csv, line 3: label 'bird' is not in the class list \(cat, dog\)",
        ),
        (["aggregate", "{csv}", "--method", "gold-mv"], "needs known answers"),
        (["aggregate", "{csv}", "--gold", "{gold}"], r"gold\.csv: task 'a' has different gold labels"),
        (["tasks", "{csv}", "--format", "csv"], "unknown task format .csv.; choose labelstudio or toloka"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "bad.json").write_text("[}")
    (tmp_path / "answers.csv").write_text("task,worker,label\na,w1,cat\nb,w1,bird\n")
    (tmp_path / "classes.json").write_text('["cat", "dog"]')
    (tmp_path / "gold.csv").write_text("task,label\na,cat\na,dog\n")
    paths = {
        "bad": tmp_path / "bad.json",
        "csv": tmp_path / "answers.csv",
        "classes": tmp_path / "classes.json",
        "gold": tmp_path / "gold.csv",
    }
    res = runner.invoke(app, [a.format(**paths) for a in args] + ["--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1
    assert re.search(message, res.output), res.output
