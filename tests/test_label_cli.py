"""``labelwise label`` end to end: queues labelwise writes, the project folder, export, aggregate
straight from the database, and no acknowledged answer lost to a ``kill -9`` of the server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import write_png
from typer.testing import CliRunner

from labelwise.cli.app import app

pytest.importorskip("sqlalchemy")
pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from labelwise.labeling import Store, read_queue  # noqa: E402

runner = CliRunner()
CLASSES = ["0", "1", "2"]


@pytest.fixture
def photos(tmp_path, digits):
    """30 digit images (classes 0-2) below images/, and the files each labelwise command writes
    about them: problematic.csv, query.csv, label_issues.csv, and a gold.csv of 9 more."""
    pixels, target = digits
    keep = np.flatnonzero(target < 3)[:39]
    root = tmp_path / "images"
    paths = [write_png(root / f"img_{i:04d}.png", pixels[i]) for i in keep]
    ids = [p.name for p in paths]
    truth = [str(target[i]) for i in keep]
    tasks, gold = slice(0, 30), slice(30, 39)
    pd.DataFrame(
        {
            "rank": range(1, 31),
            "sample_id": ids[tasks],
            "path": [str(p) for p in paths[tasks]],
            "suggested_label": truth[tasks],
            "confidence": np.linspace(0.3, 0.6, 30),
            "why": "methods disagree",
        }
    ).to_csv(tmp_path / "problematic.csv", index=False)
    pd.DataFrame(
        {
            "rank": range(1, 31),
            "sample_id": ids[tasks],
            "path": [str(p) for p in paths[tasks]],
            "score": np.linspace(1, 0, 30),
            "predicted_label": truth[tasks],
            "probability": 0.5,
        }
    ).to_csv(tmp_path / "query.csv", index=False)
    quality = np.linspace(0.9, 0.1, 30)
    given = list(truth[tasks])
    given[-1] = "0" if given[-1] != "0" else "1"
    pd.DataFrame(
        {
            "sample_id": ids[tasks],
            "path": [str(p) for p in paths[tasks]],
            "given_label": given,
            "suggested_label": truth[tasks],
            "label_quality": quality,
            "doubt": 1 - quality,
            "is_issue": quality < 0.35,
        }
    ).to_csv(tmp_path / "label_issues.csv", index=False)
    pd.DataFrame({"sample_id": ids[gold], "label": truth[gold]}).to_csv(tmp_path / "gold.csv", index=False)
    return tmp_path, dict(zip(ids, truth))


def test_every_queue_labelwise_writes_becomes_tasks(photos):
    folder, _ = photos
    problematic = read_queue(folder / "problematic.csv", classes=CLASSES)
    assert problematic.kind == "problematic" and len(problematic.tasks) == 30
    assert problematic.tasks["reason"].iloc[0] == "problematic: methods disagree"
    assert problematic.tasks["suggestion"].notna().all() and problematic.tasks["given_label"].isna().all()
    query = read_queue(folder / "query.csv", classes=CLASSES)
    assert query.kind == "query" and query.tasks["reason"].iloc[2] == "query rank 3"
    review = read_queue(folder / "label_issues.csv", classes=CLASSES)
    # review mode: only the flagged labels, least trusted first, with the given label beside the suggestion
    assert review.kind == "issues"
    flagged = pd.read_csv(folder / "label_issues.csv").query("is_issue").sort_values("label_quality")
    assert list(review.tasks["sample_id"]) == list(flagged["sample_id"])
    assert review.tasks["given_label"].notna().all()
    assert len(read_queue(folder / "label_issues.csv", classes=CLASSES, all_rows=True).tasks) == 30
    graded = read_queue(folder / "problematic.csv", gold=folder / "gold.csv", classes=CLASSES)
    roles = graded.tasks["role"].value_counts().to_dict()
    assert roles == {"task": 30, "honeypot": 4, "training": 3, "exam": 2}  # as `labelwise tasks` splits 9
    assert graded.tasks.loc[graded.tasks["role"] != "task", "gold_label"].notna().all()
    # review mode: honeypots carry a decoy dataset label (their gold or another class), as every real task
    # carries one, so that neither a missing label nor a right one gives them away
    reviewed = read_queue(folder / "label_issues.csv", gold=folder / "gold.csv", classes=CLASSES, all_rows=True)
    honeypots = reviewed.tasks[reviewed.tasks["role"] == "honeypot"]
    assert honeypots["given_label"].isin(CLASSES).all() and honeypots["suggestion"].isna().all()
    assert reviewed.tasks.loc[reviewed.tasks["role"].isin(["training", "exam"]), "given_label"].isna().all()
    images = read_queue(folder / "images", classes=CLASSES)
    assert images.kind == "folder" and len(images.tasks) == 39 and images.tasks["suggestion"].isna().all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,label\na.png,0\n", "needs a sample_id or path column"),
        ("sample_id,path\nmissing.png,missing.png\n", "image(s) not found"),
        ("sample_id,path,suggested_label\nimg_0000.png,images/img_0000.png,cat\n", "is not one of the classes"),
    ],
)
def test_a_bad_queue_is_one_line_naming_the_file(photos, content, message):
    folder, _ = photos
    bad = folder / "bad.csv"
    bad.write_text(content)
    result = runner.invoke(
        app, ["label", str(bad), "--out", str(folder / "project"), "--classes", "0,1,2", "--no-serve"]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "bad.csv" in result.output and "Traceback" not in result.output
    assert not (folder / "project" / "labels.db").exists()


def _make(folder, *extra):
    result = runner.invoke(
        app,
        ["label", str(folder / "problematic.csv"), "--out", str(folder / "project"), "--annotators", "alice,bob"]
        + ["--gold", str(folder / "gold.csv"), "--overlap", "2", "--page-size", "10", "--no-serve", *extra],
    )
    assert result.exit_code == 0, result.output
    tokens = dict(re.findall(r"^\s+(\w+): (\S+)$", result.output, flags=re.M))
    return result.output, tokens


def _answer_all(store, name, truth, *, wrong=()):
    """Work through every task ``name`` is given, answering the truth (or not, for ``wrong``)."""
    me = next(a for a in store.annotators() if a.name == name)
    answered = []
    while (task := store.next_task(me.id)) is not None:
        sid = store.task_table().set_index("id").loc[task.task_id, "sample_id"]
        label = truth[sid] if sid not in wrong else next(c for c in CLASSES if c != truth[sid])
        assert store.submit(me.id, task.task_id, "label", label, seconds=1.5).accepted
        answered.append(sid)
    return answered


def test_project_folder_export_and_aggregate_from_the_database(photos):
    folder, truth = photos
    output, tokens = _make(folder)
    project = folder / "project"
    flat = " ".join(output.split())  # the console wraps where a long temporary path ends
    assert "30 tasks" in flat and "4 honeypots" in flat and set(tokens) == {"alice", "bob", "admin"}
    assert {"labels.db", "queue.csv", "run.json", "config.yaml"} <= {p.name for p in project.iterdir()}
    store = Store.open(project / "labels.db")
    try:
        wrong = set(list(truth)[:4])
        roles = store.task_table().set_index("sample_id")["role"]
        seen = roles[_answer_all(store, "alice", truth)].value_counts()
        # every training and exam task, then every real task with a honeypot in about every 10
        assert seen["training"] == 3 and seen["exam"] == 2 and seen["task"] == 30 and 2 <= seen["honeypot"] <= 4
        _answer_all(store, "bob", truth, wrong=wrong)
    finally:
        store.close()
    again = runner.invoke(app, ["label", str(project), "--export", str(folder / "answers.csv")])
    assert again.exit_code == 0, again.output
    answers = pd.read_csv(folder / "answers.csv", dtype={"label": str})
    assert set(answers["worker"]) == {"alice", "bob"} and answers["seconds"].eq(1.5).all()
    assert answers[answers["role"] == "task"].groupby("sample_id").size().eq(2).all()
    exported = runner.invoke(app, ["label", str(project), "--export", str(folder / "export.json")])
    assert exported.exit_code == 0, exported.output
    tasks = json.loads((folder / "export.json").read_text())
    assert len(tasks) == 39
    assert all(len(t["annotations"]) == 2 for t in tasks if t["data"]["role"] == "task")
    assert sum(len(t["annotations"]) for t in tasks) == len(answers)
    for source in (project, folder / "export.json"):
        out = folder / f"aggregate-{source.name}"
        done = runner.invoke(app, ["aggregate", str(source), "--out", str(out)])
        assert done.exit_code == 0, done.output
        labels = pd.read_csv(out / "labels.csv", dtype=str).set_index("task")["label"]
        assert set(roles[roles == "task"].index) <= set(labels.index)
        agreed = [sid for sid in labels.index if sid not in wrong]  # where alice and bob agree
        assert (labels[agreed] == pd.Series(truth)[agreed]).all()
    scored = pd.read_csv(folder / f"aggregate-{project.name}" / "annotators.csv").set_index("worker")
    # the database brings its own gold (exam and honeypots): both annotators are scored on it
    bob = answers[answers["worker"] == "bob"]
    n_gold = int(roles[bob["sample_id"]].isin(["exam", "honeypot"]).sum())
    assert scored.loc["bob", "n_gold"] == n_gold >= 4 and scored.loc["bob", "accuracy_on_gold"] == 1.0


def test_continue_adds_annotators_and_refuses_a_second_project(photos):
    folder, _ = photos
    _make(folder)
    project = folder / "project"
    twice = runner.invoke(app, ["label", str(folder / "problematic.csv"), "--out", str(project), "--no-serve"])
    assert twice.exit_code == 2 and "already holds a labeling project" in twice.output
    added = runner.invoke(app, ["label", str(project), "--add-annotator", "dan"])
    assert added.exit_code == 0, added.output
    token = re.search(r"dan: (\S+)", added.output).group(1)
    store = Store.open(project / "labels.db")
    try:
        assert store.authenticate(token).name == "dan"
        assert token not in (project / "labels.db").read_bytes().decode("latin-1")  # only its hash is stored
    finally:
        store.close()
    nothing = runner.invoke(app, ["label", str(folder / "images")])
    assert nothing.exit_code == 2 and "not a labeling project" in nothing.output
    taken = runner.invoke(app, ["label", str(project), "--add-annotator", "admin"])
    assert taken.exit_code == 2 and "the admin's account" in taken.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(project, port):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "labelwise.cli.app", "label", str(project), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode()) from None
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the server did not start")


def test_no_acknowledged_answer_is_lost_to_kill_9(photos):
    folder, truth = photos
    _, tokens = _make(folder, "--exam-pct", "0", "--training-pct", "0")
    project, port = folder / "project", _free_port()
    server = _serve(project, port)
    acknowledged = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {tokens['alice']}"}
        ) as c:
            for _ in range(12):
                task = c.post("/api/next").json()["task"]
                reply = c.post("/api/answer", json={"task_id": task["task_id"], "kind": "label", "label": "1"})
                assert reply.status_code == 200 and reply.json()["accepted"]
                acknowledged.append(task["task_id"])
            held = c.post("/api/next").json()["task"]  # leased, never answered
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        server = _serve(project, port)  # the same folder, at once: the dead server left no lock behind
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {tokens['alice']}"}
        ) as c:
            history = c.get("/api/history").json()["answers"]
            assert [a["task_id"] for a in history] == acknowledged[::-1][:10]
            assert c.post("/api/next").json()["task"]["task_id"] == held["task_id"]  # her lease survived too
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    store = Store.open(project / "labels.db")
    try:
        stored = store.answers()
        assert len(stored) == 12 and (stored["worker"] == "alice").all()
    finally:
        store.close()


def test_without_the_label_extra_the_command_names_it(photos):
    folder, _ = photos
    code = (
        "import sys\n"
        "class NoLabelExtra:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'sqlalchemy', 'starlette', 'uvicorn'}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoLabelExtra())\n"
        "from labelwise.cli.app import main\nsys.argv = ['labelwise', *sys.argv[1:]]\nmain()\n"
    )
    args = ["label", str(folder / "problematic.csv"), "--out", str(folder / "project"), "--classes", "0,1,2"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "pip install 'labelwise[label]'" in lines[0]
    assert not (folder / "project").exists()
