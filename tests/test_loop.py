"""``labelwise loop`` on the digits with recorded answers standing in for people."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise import LabelwiseError
from labelwise._demo import make_demo_images
from labelwise.loop import answer_value, decide, loop, loop_status


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The demo's messy digits (20% unlabeled, 10% wrong) and three recorded answers per image, 15% wrong."""
    root = tmp_path_factory.mktemp("loop")
    truth = make_demo_images(root / "images", seed=0)
    rng = np.random.default_rng(1)
    rows = []
    for sample, true in zip(truth["sample_id"], truth["true_label"].astype(int)):
        for worker in ("ann1", "ann2", "ann3"):
            label = true if rng.random() > 0.15 else (true + rng.integers(1, 10)) % 10
            rows.append((sample, worker, str(label)))
    recorded = pd.DataFrame(rows, columns=["sample_id", "worker", "label"])
    recorded.to_csv(root / "recorded.csv", index=False)
    return root, truth, recorded


def _run(digits, out, **options):
    root, _, recorded = digits
    defaults = dict(budget=90, per_round=30, simulate_answers=recorded, final_model=None)
    return loop(str(root / "images"), out, **{**defaults, **options})


def _accuracy(dataset, truth):
    merged = dataset.merge(truth[["sample_id", "true_label"]], on="sample_id")
    return float((merged["label"].astype(str) == merged["true_label"].astype(str)).mean())


def test_the_loop_spends_the_budget_and_every_change_has_its_reason(digits, tmp_path):
    root, truth, recorded = digits
    result = _run(digits, tmp_path / "p")
    assert result.finished and result.spent == 90 and list(result.rounds["answers"]) == [30, 30, 30]
    from labelwise.formats.labels_db import read_answers

    answers, _ = read_answers(tmp_path / "p" / "labels.db")
    assert len(answers) == 90 and not answers.duplicated(["task", "worker"]).any()  # nobody asked twice
    # every answer is one that was recorded for that image and worker
    known = set(map(tuple, recorded[["sample_id", "worker", "label"]].to_numpy()))
    assert set(map(tuple, answers[["task", "worker", "label"]].to_numpy())) <= known
    # given labels change only where people answered; replaying the history gives the label set
    data = result.dataset.set_index("sample_id")
    changed = data[data["given_label"].notna() & (data["label"] != data["given_label"])]
    assert len(changed) and set(changed.index) <= set(answers["task"])
    assert set(changed["label_source"]) == {"human"}
    replay = {}
    for rec in result.history.itertuples():
        replay[rec.sample_id] = (rec.new_label, rec.source)
    for sample, (label, source) in replay.items():
        assert (data.loc[sample, "label"], data.loc[sample, "label_source"]) == (label, source)
    assert set(data["label_source"]) <= {"given", "human", "pseudo", "propagated"}
    assert data["label"].notna().all()  # the unlabeled images have pseudo labels
    given_accuracy = _accuracy(data.reset_index().assign(label=data["given_label"].to_numpy()), truth)
    assert _accuracy(result.dataset, truth) > given_accuracy + 0.1
    for name in ("dataset.csv", "history.csv", "rounds.csv", "curves.png", "report.html", "report.md"):
        assert (tmp_path / "p" / name).exists(), name
    assert (tmp_path / "p" / "rounds" / "001" / "queue.csv").exists()
    status = loop_status(tmp_path / "p")
    assert list(status["round"]) == [1, 2, 3] and set(status["stage"]) == {"decided"}


def test_a_stopped_loop_continues_to_the_same_result(digits, tmp_path, monkeypatch):
    whole = _run(digits, tmp_path / "whole")
    first = _run(digits, tmp_path / "parts", rounds=1)
    assert not first.finished and first.spent == 30
    # killed in round 2 after its answers were recorded, before its decision was committed
    from labelwise.loop import running

    real = running.merge_round

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(running, "merge_round", crash)
    with pytest.raises(KeyboardInterrupt):
        loop(str(tmp_path / "parts"))
    monkeypatch.setattr(running, "merge_round", real)
    again = loop(str(tmp_path / "parts"))
    assert again.finished and again.spent == 90
    pd.testing.assert_frame_equal(again.dataset, whole.dataset)
    pd.testing.assert_frame_equal(again.history, whole.history)


def test_answers_from_a_file_and_bad_files(digits, tmp_path, caplog):
    root, truth, _ = digits
    images = str(root / "images")
    first = loop(images, tmp_path / "p", budget=20, per_round=10, final_model=None)  # nobody to serve: waits
    assert not first.finished and first.spent == 0
    queue = pd.read_csv(tmp_path / "p" / "rounds" / "001" / "queue.csv")
    assert len(queue) == 10
    true = truth.set_index("sample_id")["true_label"].astype(str)
    good = pd.DataFrame({"sample_id": queue["sample_id"], "worker": "bob", "label": queue["sample_id"].map(true)})
    bad_class = good.assign(label="seven")
    bad_class.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(LabelwiseError) as err:
        loop(str(tmp_path / "p"), answers=tmp_path / "bad.csv")
    assert "seven" in str(err.value) and "\n" not in str(err.value)
    extra = pd.concat(
        [good, good.iloc[:2], pd.DataFrame({"sample_id": ["nope.png"], "worker": ["bob"], "label": ["3"]})]
    )
    extra.to_csv(tmp_path / "answers.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        after = loop(str(tmp_path / "p"), answers=tmp_path / "answers.csv")
    assert after.spent == 10 and not after.finished  # round 2 waits for its own answers
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "not in the pool" in said and "repeat a (task, worker) pair" in said
    decided = after.dataset.set_index("sample_id").loc[queue["sample_id"]]
    assert (decided["label_source"] == "human").all()
    assert (decided["label"] == queue["sample_id"].map(true).to_numpy()).mean() >= 0.9


def test_one_line_errors_before_anything_is_written(digits, tmp_path):
    root, _, recorded = digits
    with pytest.raises(LabelwiseError, match="--budget"):
        loop(str(root / "images"), tmp_path / "a", budget=0)
    with pytest.raises(LabelwiseError, match="unknown choice rule 'best'"):
        loop(str(root / "images"), tmp_path / "b", budget=10, choose="best")
    bad = recorded.head(5).assign(label="eleven")
    with pytest.raises(LabelwiseError) as err:
        loop(str(root / "images"), tmp_path / "c", budget=10, simulate_answers=bad)
    assert "row 2" in str(err.value) and "eleven" in str(err.value)
    with pytest.raises(LabelwiseError, match="not a loop project"):
        loop(str(tmp_path / "nothing"))
    _run(digits, tmp_path / "d", budget=10, per_round=10)
    with pytest.raises(LabelwiseError, match="already holds a loop"):
        _run(digits, tmp_path / "d")


def test_the_cli_runs_and_reports_status(digits, tmp_path):
    from labelwise.cli.app import app

    root, _, _ = digits
    args = ["loop", str(root / "images"), "--out", str(tmp_path / "p"), "--budget", "20", "--per-round", "10"]
    result = CliRunner().invoke(app, [*args, "--simulate-answers", str(root / "recorded.csv"), "--final-model", "none"])
    assert result.exit_code == 0, result.output
    assert "loop finished: 2 round(s), 20 answer(s)" in result.output
    status = CliRunner().invoke(app, ["loop", str(tmp_path / "p"), "--status"])
    assert status.exit_code == 0 and "answers spent: 20" in status.output
    wrong = CliRunner().invoke(app, ["loop", str(tmp_path / "none"), "--status"])
    assert wrong.exit_code != 0 and "Traceback" not in wrong.output


def test_an_answer_is_worth_most_where_the_belief_is_split():
    belief = np.array([[1.0, 0.0, 0.0], [0.6, 0.4, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    value = answer_value(belief, 0.8)
    assert value[0] == pytest.approx(0.0) and value[1] < value[2] < value[3]
    # the exact expectation for [0.5, 0.5, 0]: answer 0 or 1 decides it (right with 0.8), answer 2 leaves a tie
    assert value[2] == pytest.approx(0.8 * 0.5 + 0.8 * 0.5 + 0.1 * 0.5 - 0.5)
    assert answer_value(belief, 1 / 3)[3] == pytest.approx(0.0)  # a coin-flip annotator is worth nothing


def test_people_and_model_together_beat_people_alone():
    rng = np.random.default_rng(0)
    n, k = 2000, 5
    truth = rng.integers(0, k, n)
    # a model right 80% of the time and calibrated: its top class has probability 0.8
    guess = np.where(rng.random(n) < 0.8, truth, (truth + rng.integers(1, k, n)) % k)
    prior = np.full((n, k), 0.2 / (k - 1))
    prior[np.arange(n), guess] = 0.8
    rows, workers, labels = [], [], []
    for worker, skill in (("a", 0.75), ("b", 0.75)):
        said = np.where(rng.random(n) < skill, truth, (truth + rng.integers(1, k, n)) % k)
        rows += list(range(n))
        workers += [worker] * n
        labels += list(said)
    answers = pd.DataFrame({"row": rows, "worker": workers, "label": labels})
    together = decide(prior, answers)
    alone = decide(prior, answers, use_model=False)
    assert (together.labels == truth).mean() > (alone.labels == truth).mean() + 0.05
    gold = pd.DataFrame({"worker": ["a", "b"], "correct": [95, 50], "n": [100, 100]})
    scored = decide(prior, answers, gold=gold)
    assert scored.skills["a"] > 0.9 > 0.6 > scored.skills["b"]


def test_by_default_people_answer_in_the_labeling_page(digits, tmp_path):
    """The loop serves each round's queue on 127.0.0.1 and goes on once its answers are in."""
    pytest.importorskip("starlette")
    httpx = pytest.importorskip("httpx")
    import _thread
    import sqlite3
    import threading

    root, truth, _ = digits
    failed: list[bool] = []
    true = truth.set_index("sample_id")["true_label"].astype(str)
    answered: list[str] = []

    def answer_all(url: str) -> None:
        def work() -> None:
            try:
                token = pd.read_csv(tmp_path / "p" / "links.csv").set_index("annotator")["token"]["alice"]
                with sqlite3.connect(tmp_path / "p" / "labels.db") as db:  # the page never shows sample ids
                    sample_of = dict(db.execute("SELECT id, sample_id FROM tasks").fetchall())
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
                    while (task := client.post("/api/next", json={}).json().get("task")) is not None:
                        if task["task_id"] not in sample_of:
                            with sqlite3.connect(tmp_path / "p" / "labels.db") as db:
                                sample_of = dict(db.execute("SELECT id, sample_id FROM tasks").fetchall())
                        sample = sample_of[task["task_id"]]
                        body = {"task_id": task["task_id"], "kind": "label", "label": true[sample]}
                        reply = client.post("/api/answer", json=body)
                        assert reply.status_code == 200, reply.text
                        answered.append(sample)
            except BaseException:
                failed.append(True)
                _thread.interrupt_main()  # the loop stops waiting; the test then fails on what it has
                raise

        threading.Thread(target=work, daemon=True).start()

    result = loop(
        str(root / "images"),
        tmp_path / "p",
        budget=12,
        per_round=6,
        annotators="alice",
        on_ready=answer_all,
        final_model=None,
    )
    assert not failed and result.finished and result.spent == 12 and len(answered) == 12
    data = result.dataset.set_index("sample_id").loc[answered]
    assert (data["label_source"] == "human").all() and (data["label"] == true[answered].to_numpy()).mean() >= 0.9
    assert not (tmp_path / "p" / "server.json").exists()


def test_a_near_duplicate_is_never_asked_and_takes_the_answer(digits, tmp_path):
    import shutil

    root, _, recorded = digits
    images = tmp_path / "images"
    shutil.copytree(root / "images", images)
    copies = {}
    for path in sorted((images / "_unlabeled").glob("*.png")):
        twin = path.with_name(f"copy_{path.name}")
        shutil.copyfile(path, twin)
        copies[f"_unlabeled/{path.name}"] = f"_unlabeled/{twin.name}"
    twins = pd.concat([recorded, recorded.assign(sample_id=recorded["sample_id"].map(copies))]).dropna()
    result = loop(str(images), tmp_path / "p", budget=90, per_round=30, simulate_answers=twins, final_model=None)
    asked = set(pd.read_csv(tmp_path / "p" / "history.csv").query("source == 'human'")["sample_id"])
    pairs = [(a, b) for a, b in copies.items() if a in asked or b in asked]
    assert pairs and not any(a in asked and b in asked for a, b in pairs)
    data = result.dataset.set_index("sample_id")
    for a, b in pairs:
        other = b if a in asked else a
        assert (
            data.loc[other, "label_source"] == "propagated"
            and data.loc[other, "label"] == data.loc[a if a in asked else b, "label"]
        )


def test_a_labeling_database_of_schema_1_gains_the_loop_tables(tmp_path):
    import sqlalchemy as sa

    from labelwise.formats import labels_db as db

    engine = db.connect(tmp_path / "labels.db")
    with db.write_transaction(engine) as conn:  # what labelwise wrote before the loop existed
        db.metadata.create_all(conn, tables=[t for t in db.metadata.sorted_tables if t not in db.LOOP_TABLES])
        conn.execute(sa.insert(db.meta).values(key="schema_version", value="1"))
    assert db.migrate(engine) == 1
    with engine.connect() as conn:
        assert db.schema_version(conn) == db.SCHEMA_VERSION == 2
        assert {"loop_rounds", "loop_asked", "loop_history"} <= set(sa.inspect(conn).get_table_names())
    engine.dispose()
