"""The labeling app's Store: claims and answers under concurrency, leases, stages and gates, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import uuid
from collections import Counter

import pandas as pd
import pytest
from conftest import unavailable

sa = pytest.importorskip("sqlalchemy")

from labelwise.errors import LabelwiseError  # noqa: E402
from labelwise.formats import labels_db  # noqa: E402
from labelwise.labeling import assign  # noqa: E402
from labelwise.labeling.store import COVERED, Settings, Store  # noqa: E402

PG_DEFAULT = "postgresql://labelwise:labelwise@127.0.0.1:5432/postgres"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh PostgreSQL database for this module (dropped after), or a skip when no server answers."""
    psycopg = pytest.importorskip("psycopg")
    admin = os.environ.get("LABELWISE_TEST_POSTGRES", PG_DEFAULT)
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"no PostgreSQL server answers at LABELWISE_TEST_POSTGRES ({admin}): {str(exc).splitlines()[0]}")
    name = f"labelwise_test_{uuid.uuid4().hex[:12]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty labels database: a file, or the module's PostgreSQL database with no tables."""
    if request.param == "sqlite":
        return str(tmp_path / "labels.db")
    url = request.getfixturevalue("postgres_url")
    engine = labels_db.connect(url)
    labels_db.metadata.drop_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path):
    return str(tmp_path / "labels.db")


@pytest.fixture
def stores():
    """Stores a test opens, closed after it."""
    opened: list[Store] = []
    yield opened
    for s in opened:
        s.close()


def queue(n_tasks, *, training=0, exam=0, honeypots=0, suggest=None, classes=("a", "b")):
    """Training, exam and honeypot rows (gold ``a``) followed by ``n_tasks`` real tasks."""
    rows = []
    for role, n in (("training", training), ("exam", exam), ("honeypot", honeypots)):
        for i in range(n):
            rows.append({"sample_id": f"{role}{i}", "path": f"/img/{role}{i}.png", "role": role, "gold_label": "a"})
            if role == "training":
                rows[-1]["hint"] = f"hint {i}: it is a"
    for i in range(n_tasks):
        rows.append(
            {
                "sample_id": f"t{i}",
                "path": f"/img/t{i}.png",
                "role": "task",
                "suggestion": suggest(i) if suggest else classes[i % len(classes)],
                "given_label": classes[(i + 1) % len(classes)],
            }
        )
    return pd.DataFrame(rows)


def make(url, stores, table, clock=time.time, **settings):
    settings.setdefault("classes", ["a", "b"])
    store = Store.create(url, Settings(**settings), table, clock=clock)
    stores.append(store)
    return store


def annotator(store, name, admin=False):
    return store.authenticate(store.add_annotator(name, admin=admin)).id


def task_state(store):
    with store._engine.connect() as conn:
        rows = conn.execute(sa.select(labels_db.tasks)).mappings().all()
    return {r["sample_id"]: dict(r) for r in rows}


def counters_consistent(store):
    with labels_db.write_transaction(store._engine) as conn:
        return assign.recount(conn) == 0


# ---------------------------------------------------------------- concurrency


def run_threads(work, args_list, timeout=300):
    """Run ``work(*args)`` in one thread each; returns their exceptions (a thread's own would only warn)."""
    errors: list[str] = []

    def guarded(*args):
        try:
            work(*args)
        except Exception as exc:
            errors.append(f"{args}: {exc!r}")

    threads = [threading.Thread(target=guarded, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads)
    return errors


@pytest.mark.parametrize("max_overlap", [None, 3])
def test_concurrent_annotators_never_exceed_overlap_never_repeat_and_finish_the_pool(db_url, stores, max_overlap):
    n_workers, n_tasks = 8, 40
    store = make(db_url, stores, queue(n_tasks, honeypots=6), overlap=2, max_overlap=max_overlap, page_size=5)
    store.refit_mode = "sync"
    ids = [annotator(store, f"w{i}") for i in range(n_workers)]
    handed: dict[int, list[int]] = {a: [] for a in ids}
    problems: list[str] = []
    start = threading.Barrier(n_workers)

    def work(k: int, me: int) -> None:
        rng = random.Random(k)
        start.wait()
        missed = 0  # None from next_task, then progress says a task is available: a race only if it passes
        for _ in range(10_000):
            view = store.next_task(me)
            if view is None:
                state = store.progress(me)["state"]
                if state == "done":
                    return
                missed = missed + 1 if state == "task" else 0
                if missed > 20:
                    problems.append(f"w{k}: no task handed out while one is available")
                    return
                time.sleep(0.002 if state == "waiting" else 0)
                continue
            missed = 0
            handed[me].append(view.task_id)
            if (view.task_id + k) % 7 == 0:
                result = store.submit(me, view.task_id, "skip")
            else:
                result = store.submit(me, view.task_id, "label", rng.choice(["a", "b"]), seconds=0.1)
            if not result.accepted:
                problems.append(f"w{k}: answer on its live lease refused: {result.reason}")
        problems.append(f"w{k}: never finished")

    assert run_threads(work, list(enumerate(ids))) == []
    assert problems == []
    for me, got in handed.items():
        assert len(got) == len(set(got)), f"annotator {me} was handed a task twice"
    table = store.answers()
    assert not table.duplicated(["sample_id", "worker"]).any()
    labels = table[(table["kind"] == "label") & (table["role"] == "task")].groupby("sample_id").size()
    state = task_state(store)
    real = {s: r for s, r in state.items() if r["role"] == "task"}
    for sample, row in real.items():
        # finished: every real task has exactly its target of counted answers, never more
        assert labels.get(sample, 0) == row["target"] == row["counted"], sample
        assert row["leased"] == 0
        assert 2 <= row["target"] <= (max_overlap or 2)
    # every annotator saw honeypots at about the configured rate, and all were answered once each at most
    hp = table[table["role"] == "honeypot"]
    assert not hp.duplicated(["sample_id", "worker"]).any() and len(hp) > 0
    assert counters_consistent(store)
    assert store.stats()["leases_live"] == 0


def test_two_stores_on_one_database_serialize_through_the_database(db_url, stores):
    """Two Store objects (two servers) share no Python lock: BEGIN IMMEDIATE / the advisory lock keep them right."""
    first = make(db_url, stores, queue(30), overlap=2)
    second = Store.open(db_url)
    stores.append(second)
    ids = [annotator(first, f"w{i}") for i in range(6)]
    handed: dict[int, list[int]] = {a: [] for a in ids}
    start = threading.Barrier(len(ids))
    problems: list[str] = []

    def work(store: Store, me: int) -> None:
        start.wait()
        while (view := store.next_task(me)) is not None or store.progress(me)["state"] != "done":
            if view is None:
                time.sleep(0.002)
                continue
            handed[me].append(view.task_id)
            if not store.submit(me, view.task_id, "label", "a").accepted:
                problems.append(f"{me}: refused")

    assert run_threads(work, [(first if k % 2 else second, me) for k, me in enumerate(ids)]) == []
    assert problems == []
    assert all(len(got) == len(set(got)) for got in handed.values())
    assert sum(len(got) for got in handed.values()) == 60
    assert all(r["counted"] == 2 and r["leased"] == 0 for r in task_state(first).values())
    assert counters_consistent(first)


def test_annotators_who_walk_away_never_starve_the_others(db_url, stores):
    store = make(db_url, stores, queue(12), overlap=2, lease_seconds=1.5)  # long enough for a loaded machine
    walkers = [annotator(store, f"gone{i}") for i in range(3)]
    claimed = [store.next_task(me).task_id for me in walkers]  # claimed, never answered
    workers = [annotator(store, f"w{i}") for i in range(4)]
    problems: list[str] = []

    def work(me: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            view = store.next_task(me)
            if view is None:
                if store.progress(me)["state"] == "done":
                    return
                time.sleep(0.02)
                continue
            if not store.submit(me, view.task_id, "label", "a").accepted:
                problems.append(f"{me}: refused")
        problems.append(f"{me}: starved")

    assert run_threads(work, [(me,) for me in workers]) == []
    assert problems == []
    state = {r["id"]: r for r in task_state(store).values()}
    assert all(r["counted"] == 2 and r["leased"] == 0 for r in state.values())
    for task_id in claimed:  # the abandoned tasks were answered by the workers after the leases expired
        assert state[task_id]["counted"] == 2
    assert store.stats()["leases_live"] == 0
    assert counters_consistent(store)


def test_expired_leases_are_swept_and_reopen_the_task(db_url, stores):
    clock = Clock()
    store = make(db_url, stores, queue(2), clock=clock, overlap=1, lease_seconds=60)
    alice, bob, carol = (annotator(store, n) for n in ("alice", "bob", "carol"))
    first = store.next_task(alice)
    assert first.lease_expires == clock.t + 60
    assert store.next_task(alice).task_id == first.task_id  # a reload gets the same task back
    clock.t += 30
    second = store.next_task(bob)
    assert second.task_id != first.task_id
    assert store.next_task(carol) is None  # both tasks leased: nothing for carol yet
    assert store.progress(carol)["state"] == "waiting"
    clock.t += 31  # alice's lease has expired, bob's has not
    third = store.next_task(carol)
    assert third.task_id == first.task_id
    assert store.image_path(alice, first.task_id) is None
    assert store.image_path(carol, first.task_id) == "/img/t0.png"
    refused = store.submit(alice, first.task_id, "label", "a")
    assert not refused.accepted and refused.reason == COVERED
    assert store.submit(carol, third.task_id, "label", "b").accepted
    clock.t += 61  # bob's lease has expired too; the task is free, so his late answer is still welcome
    assert store.submit(bob, second.task_id, "label", "a").accepted
    with store._engine.connect() as conn:
        expired = conn.execute(sa.select(sa.func.count()).where(labels_db.events.c.kind == "lease_expired")).scalar()
    assert expired == 2
    assert store.progress(alice)["state"] == "done"
    assert counters_consistent(store)


def test_honeypots_at_the_configured_rate_and_never_with_a_suggestion(db_url, stores):
    store = make(db_url, stores, queue(120, honeypots=40), page_size=10, per_page=2)
    me = annotator(store, "alice")
    roles = []
    kinds = {r["id"]: r["role"] for r in task_state(store).values()}
    for _ in range(100):
        view = store.next_task(me)
        roles.append(kinds[view.task_id])
        assert view.stage == "task"
        if kinds[view.task_id] == "honeypot":
            assert view.suggestion is None and view.given_label is None and view.hint is None
        else:
            assert view.suggestion in ("a", "b")
        assert store.submit(me, view.task_id, "label", "a").accepted
    assert roles.count("honeypot") == 20  # per_page / page_size of the tasks
    for page in range(10):  # and on every page, not bunched
        assert roles[page * 10 : page * 10 + 10].count("honeypot") == 2


def test_training_first_then_the_exam_gates_real_work(db_url, stores):
    store = make(db_url, stores, queue(5, training=2, exam=3), exam_pass=0.6)
    good, bad = annotator(store, "good"), annotator(store, "bad")
    real_id = task_state(store)["t0"]["id"]
    for me, answer in ((good, "a"), (bad, "b")):
        for i in range(2):
            view = store.next_task(me)
            assert view.stage == "training" and view.hint == f"hint {i}: it is a" and view.suggestion is None
            refused = store.submit(me, real_id, "label", "a")
            assert not refused.accepted and "training" in refused.reason
            result = store.submit(me, view.task_id, "label", answer)
            assert result.feedback == {"correct": answer == "a", "label": "a", "hint": f"hint {i}: it is a"}
        for i in range(3):
            view = store.next_task(me)
            assert view.stage == "exam" and view.hint is None
            result = store.submit(me, view.task_id, "label", answer if i else "a")
        assert result.feedback["exam"]["passed"] is (answer == "a")
    assert store.next_task(bad) is None
    assert store.progress(bad)["state"] == "stopped"
    assert not store.submit(bad, real_id, "label", "a").accepted
    assert store.authenticate  # the failing annotator still exists, only stopped
    view = store.next_task(good)
    assert view.stage == "task" and view.suggestion is not None
    assert store.progress(good)["stage"] == "task"


def test_dynamic_overlap_asks_more_annotators_where_answers_disagree(db_url, stores):
    agree = {f"t{i}" for i in range(0, 8, 2)}
    store = make(db_url, stores, queue(8), overlap=2, max_overlap=4, confident=0.9)
    store.refit_mode = "off"  # the prior confusions: each annotator right 80% of the time
    workers = [annotator(store, f"w{i}") for i in range(4)]
    sample = {r["id"]: s for s, r in task_state(store).items()}
    for k, me in enumerate(workers):  # one after the other: a deterministic order
        while (view := store.next_task(me)) is not None:
            s = sample[view.task_id]
            label = "a" if s in agree or k % 2 == 0 else "b"
            assert store.submit(me, view.task_id, "label", label).accepted
    state = task_state(store)
    table = store.answers()
    per_task = table.groupby("sample_id").size()
    for s in agree:
        assert per_task[s] == 2 and state[s]["target"] == 2  # two agreeing answers settle it
    for s in set(sample.values()) - agree:
        assert per_task[s] == 4 and state[s]["target"] == 4  # 1:1, then 2:1 stay unsure; up to max_overlap
    assert store.stats()["overlap_raised"] == 8


def test_dynamic_overlap_with_fitted_confusions(sqlite_url, stores):
    store = make(sqlite_url, stores, queue(30, honeypots=10), overlap=2, max_overlap=3, page_size=4)
    store.refit_mode = "sync"
    store.refit_every = 5
    workers = [annotator(store, f"w{i}") for i in range(3)]
    for me in workers:
        while (view := store.next_task(me)) is not None:
            store.submit(me, view.task_id, "label", "a")  # everyone always says a: it is always right
    assert store._overlap.confusions.by_worker  # a real fit happened
    assert all(m[0, 0] > 0.8 for m in store._overlap.confusions.by_worker.values())
    assert all(r["target"] == 2 for r in task_state(store).values() if r["role"] == "task")


def test_low_gold_accuracy_stops_excludes_and_reopens(db_url, stores):
    store = make(
        db_url, stores, queue(12, honeypots=6), overlap=1, page_size=3, min_gold_accuracy=0.7, min_gold_answers=3
    )
    bad, good = annotator(store, "bad"), annotator(store, "good")
    answered = 0
    while (view := store.next_task(bad)) is not None:
        result = store.submit(bad, view.task_id, "label", "b")  # honeypots are "a"
        answered += 1
    assert result.feedback["stopped"].startswith("honeypot accuracy 0.00")
    assert answered == 9  # stopped at the third honeypot
    assert store.progress(bad)["state"] == "stopped"
    assert not store.submit(bad, task_state(store)["t11"]["id"], "label", "a").accepted
    assert store.answers()["worker"].eq("good").all()  # nothing of bad's counts
    kept = store.answers(include_excluded=True)
    assert (kept["worker"] == "bad").sum() == 9 and kept.loc[kept["worker"] == "bad", "excluded"].all()
    got = set()
    while (view := store.next_task(good)) is not None:
        got.add(view.task_id)
        assert store.submit(good, view.task_id, "label", "a").accepted
    real = {r["id"] for r in task_state(store).values() if r["role"] == "task"}
    assert real <= got  # the 6 tasks bad had answered reopened for good
    assert counters_consistent(store)
    table, gold = labels_db.read_answers(db_url)
    assert set(table["worker"]) == {"good"} and set(gold) == {"a"}


def test_stats_and_the_admin_stopping_an_annotator(db_url, stores):
    store = make(db_url, stores, queue(4, honeypots=2), overlap=2, page_size=2)
    alice, bob, carol = (annotator(store, n) for n in ("alice", "bob", "carol"))
    sample = {r["id"]: s for s, r in task_state(store).items()}
    for me, wrong in ((alice, set()), (bob, {"t3", "honeypot0"})):
        while (view := store.next_task(me)) is not None:
            s = sample[view.task_id]
            assert store.submit(me, view.task_id, "label", "b" if s in wrong else "a", seconds=2.0).accepted
    stats = {a["name"]: a for a in store.stats()["annotators"]}
    assert stats["alice"]["answers"] == 4 and stats["alice"]["honeypots"] == 2
    assert stats["alice"]["honeypot_accuracy"] == 1.0 and stats["bob"]["honeypot_accuracy"] == 0.5
    assert stats["alice"]["agreement"] == stats["bob"]["agreement"] == 0.75  # t3: they disagree
    assert stats["bob"]["mean_seconds"] == 2.0 and stats["carol"]["answers"] == 0
    assert store.stats()["pool"]["tasks_done"] == 4
    store.stop("bob")
    assert {a["name"]: a["status"] for a in store.stats()["annotators"]}["bob"] == "stopped"
    assert store.next_task(bob) is None and set(store.answers()["worker"]) == {"alice"}
    assert store.stats()["pool"]["tasks_done"] == 0  # bob's answers no longer count: every task reopened
    got = []
    while (view := store.next_task(carol)) is not None:
        got.append(sample[view.task_id])
        store.submit(carol, view.task_id, "label", "a")
    assert {"t0", "t1", "t2", "t3"} <= set(got)
    assert store.stats()["pool"]["tasks_done"] == 4
    with pytest.raises(LabelwiseError, match="no annotator named"):
        store.stop("nobody")


# ---------------------------------------------------------------- grid, edits, tokens


def test_grid_pages_lease_one_class_and_store_rejections(db_url, stores):
    store = make(db_url, stores, queue(30, suggest=lambda i: "a" if i < 20 else "b"), overlap=1, grid_size=8)
    alice, bob = annotator(store, "alice"), annotator(store, "bob")
    label, page = store.next_grid(alice)
    assert label == "a" and len(page) == 8
    assert all(v.suggestion == "a" and v.stage == "task" for v in page)
    again_label, again = store.next_grid(alice)  # a reload: the same page
    assert again_label == "a" and [v.task_id for v in again] == [v.task_id for v in page]
    assert not {v.task_id for v in page} & {v.task_id for v in store.next_grid(bob, "a")[1]}
    ids = [v.task_id for v in page]
    result = store.submit_grid(alice, "a", ids, ids[:3], seconds=8.0)
    assert result.accepted and result.feedback == {"accepted_ids": ids, "refused_ids": []}
    table = store.answers()
    mine = table[table["worker"] == "alice"]
    assert sorted(mine["kind"]) == ["label"] * 5 + ["not"] * 3
    assert set(mine["label"]) == {"a"} and mine["seconds"].eq(1.0).all()
    label_b, page_b = store.next_grid(alice, "b")
    assert label_b == "b" and len(page_b) == 8
    with pytest.raises(LabelwiseError):
        store.next_grid(alice, "zebra")


def test_the_last_ten_answers_can_be_edited(sqlite_url, stores):
    store = make(sqlite_url, stores, queue(15))
    me = annotator(store, "alice")
    done = []
    for _ in range(12):
        view = store.next_task(me)
        store.submit(me, view.task_id, "label", "a")
        done.append(view.task_id)
    history = store.history(me)
    assert [h.task_id for h in history] == done[::-1][:10]
    edited = store.submit(me, done[-1], "label", "b")
    assert edited.accepted
    assert store.history(me)[0].label == "b" and store.history(me)[0].revision == 2
    view = store.reopen(me, done[2])
    assert view.answer.label == "a" and view.task_id == done[2]
    assert store.submit(me, done[2], "skip").accepted
    too_old = store.submit(me, done[1], "label", "b")
    assert not too_old.accepted and "last 10" in too_old.reason
    assert store.reopen(me, done[0]) is None
    table = store.answers()
    assert len(table) == 12 and (table["kind"] == "skip").sum() == 1
    assert counters_consistent(store)


def test_history_shows_an_answer_as_its_task_showed_and_never_marks_gold(db_url, stores):
    store = make(db_url, stores, queue(4, training=1, exam=1, honeypots=1), page_size=3)
    me = annotator(store, "alice")
    seen = {}
    while (view := store.next_task(me)) is not None:
        seen[view.task_id] = view
        store.submit(me, view.task_id, "label", "a")
    roles = {r["id"]: r["role"] for r in task_state(store).values()}
    assert sorted(roles[t] for t in seen) == ["exam", "honeypot", "task", "task", "task", "task", "training"]
    for item in store.history(me):
        shown = seen[item.task_id]
        assert (item.stage, item.suggestion, item.given_label) == (shown.stage, shown.suggestion, shown.given_label)
        if roles[item.task_id] == "task":
            assert item.suggestion and item.given_label  # the queue gave every real task both
        else:
            assert item.suggestion is None and item.given_label is None
            assert item.stage == ("task" if roles[item.task_id] == "honeypot" else roles[item.task_id])
        again = store.reopen(me, item.task_id)
        assert again.answer == item and (again.suggestion, again.given_label) == (item.suggestion, item.given_label)


def test_an_edit_without_seconds_keeps_the_time_spent(db_url, stores):
    store = make(db_url, stores, queue(2))
    me = annotator(store, "alice")
    first = store.next_task(me)
    store.submit(me, first.task_id, "label", "a", seconds=4.5)
    second = store.next_task(me)
    store.submit(me, second.task_id, "label", "a", seconds=3.0)
    assert store.submit(me, first.task_id, "label", "b").accepted
    assert store.submit(me, second.task_id, "skip", seconds=1.25).accepted
    table = store.answers().set_index("sample_id")
    assert table.loc["t0", ["label", "seconds"]].tolist() == ["b", 4.5]
    assert table.loc["t1", ["kind", "seconds"]].tolist() == ["skip", 1.25]


def test_the_admin_resumes_whom_they_stopped_not_whom_a_gate_stopped(db_url, stores):
    store = make(
        db_url, stores, queue(4, exam=1, honeypots=2), overlap=1, page_size=2, min_gold_accuracy=0.9, min_gold_answers=1
    )
    alice, carl, sloppy = (annotator(store, n) for n in ("alice", "carl", "sloppy"))
    ids = {s: r["id"] for s, r in task_state(store).items()}
    store.submit(carl, store.next_task(carl).task_id, "label", "b")  # the exam: wrong
    for _ in range(3):  # the exam, a task, then a honeypot answered wrong
        view = store.next_task(sloppy)
        store.submit(sloppy, view.task_id, "label", "b" if view.task_id == ids["honeypot0"] else "a")
    assert store.progress(sloppy)["status"] == "stopped"
    store.submit(alice, store.next_task(alice).task_id, "label", "a")  # the exam
    view = store.next_task(alice)
    store.submit(alice, view.task_id, "label", "a")
    store.next_task(alice)  # held when she is stopped: the lease goes
    before = store.stats()["pool"]
    store.stop("alice")
    assert store.stats()["pool"]["tasks_done"] == before["tasks_done"] - 1
    by = {a["name"]: a["stopped_by"] for a in store.stats()["annotators"]}
    assert by == {"alice": "admin", "carl": "exam", "sloppy": "gold"}

    store.resume("alice")
    assert store.progress(alice)["status"] == "active" and store.progress(alice)["status_reason"] is None
    assert store.stats()["pool"] == before  # her answer counts again
    assert counters_consistent(store)
    assert (view := store.next_task(alice)) is not None and store.submit(alice, view.task_id, "label", "a").accepted
    store.resume("alice")  # active already: nothing happens
    with store._engine.connect() as conn:
        kinds = conn.execute(sa.select(labels_db.events.c.kind).order_by(labels_db.events.c.id)).scalars().all()
    assert kinds.count("resumed") == 1 and kinds.count("stopped") == 3
    with pytest.raises(LabelwiseError, match="carl failed the exam; only an annotator the admin stopped"):
        store.resume("carl")
    with pytest.raises(LabelwiseError, match="sloppy was stopped by the gold check \\(honeypot accuracy"):
        store.resume("sloppy")
    with pytest.raises(LabelwiseError, match="no annotator named"):
        store.resume("nobody")
    assert store.progress(carl)["status"] == store.progress(sloppy)["status"] == "stopped"


def test_tokens_are_stored_only_as_hashes(sqlite_url, stores):
    store = make(sqlite_url, stores, queue(2))
    token = store.add_annotator("alice")
    admin_token = store.add_annotator("boss", admin=True)
    assert store.authenticate(token).name == "alice"
    assert store.authenticate(admin_token).is_admin
    assert store.authenticate("nope") is None and store.authenticate("") is None
    with store._engine.connect() as conn:
        stored = conn.execute(sa.select(labels_db.annotators.c.token_hash)).scalars().all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    store.close()
    raw = b"".join(p.read_bytes() for p in __import__("pathlib").Path(sqlite_url).parent.glob("labels.db*"))
    assert token.encode() not in raw and admin_token.encode() not in raw
    store = Store.open(sqlite_url)
    stores.append(store)
    fresh = store.reset_token("alice")
    assert store.authenticate(token) is None and store.authenticate(fresh).name == "alice"
    with pytest.raises(LabelwiseError, match="exists already"):
        store.add_annotator("alice")


def test_reopening_the_database_continues(sqlite_url, stores):
    clock = Clock()
    store = make(sqlite_url, stores, queue(6), clock=clock, overlap=1, lease_seconds=60)
    me = annotator(store, "alice")
    done = []
    for _ in range(3):
        view = store.next_task(me)
        store.submit(me, view.task_id, "label", "a")
        done.append(view.task_id)
    pending = store.next_task(me)
    store.close()
    again = Store.open(sqlite_url, clock=clock)
    stores.append(again)
    assert again.settings.overlap == 1 and again.settings.classes == ["a", "b"]
    assert again.next_task(me).task_id == pending.task_id  # the lease survived the restart
    assert again.submit(me, pending.task_id, "label", "b").accepted
    rest = []
    while (view := again.next_task(me)) is not None:
        rest.append(view.task_id)
        again.submit(me, view.task_id, "label", "a")
    assert len(rest) == 2 and not set(rest) & set(done + [pending.task_id])
    with pytest.raises(LabelwiseError, match="already holds a labeling project"):
        Store.create(sqlite_url, Settings(classes=["a"]), queue(1))


def test_schema_is_versioned_and_migrated(sqlite_url, stores, monkeypatch):
    store = make(sqlite_url, stores, queue(2))
    annotator(store, "alice")
    store.close()

    def add_column(conn):
        conn.exec_driver_sql("ALTER TABLE annotators ADD COLUMN email TEXT")

    newer = labels_db.SCHEMA_VERSION + 1
    monkeypatch.setattr(labels_db, "SCHEMA_VERSION", newer)
    monkeypatch.setitem(labels_db.MIGRATIONS, newer - 1, add_column)
    again = Store.open(sqlite_url)
    stores.append(again)
    with again._engine.connect() as conn:
        assert labels_db.schema_version(conn) == newer
        assert "email" in {c["name"] for c in sa.inspect(conn).get_columns("annotators")}
    assert [a.name for a in again.annotators()] == ["alice"]
    again.close()
    monkeypatch.undo()
    with pytest.raises(LabelwiseError) as err:  # newer than this labelwise
        Store.open(sqlite_url)
    message = str(err.value)
    assert f"schema version {newer} is newer" in message and "\n" not in message


def test_bad_input_is_a_one_line_error(sqlite_url, stores, tmp_path):
    store = make(sqlite_url, stores, queue(2))
    me = annotator(store, "alice")
    view = store.next_task(me)
    with pytest.raises(LabelwiseError, match="not one of the classes"):
        store.submit(me, view.task_id, "label", "zebra")
    with pytest.raises(LabelwiseError, match="answer kind"):
        store.submit(me, view.task_id, "maybe")
    with pytest.raises(LabelwiseError, match="unknown task"):
        store.submit(me, 9999, "skip")
    with pytest.raises(LabelwiseError, match="no such labels database"):
        Store.open(tmp_path / "missing.db")
    with pytest.raises(LabelwiseError, match="gold label"):
        Store.create(
            tmp_path / "x.db",
            Settings(classes=["a"]),
            pd.DataFrame({"sample_id": ["s"], "path": ["p"], "role": ["exam"]}),
        )
    with pytest.raises(LabelwiseError, match="max_overlap"):
        Settings(classes=["a", "b"], overlap=3, max_overlap=2)
    assert store.image_path(me, view.task_id) == "/img/t0.png"
    other = store.next_task(annotator(store, "bob"))
    assert store.image_path(me, other.task_id) is None
    assert store.image_path(annotator(store, "boss", admin=True), other.task_id) is not None


def test_read_answers_gives_crowd_the_long_table_and_gold(sqlite_url, stores):
    store = make(sqlite_url, stores, queue(4, exam=1, honeypots=1), overlap=2, page_size=3)
    for name in ("alice", "bob"):
        me = annotator(store, name)
        while (view := store.next_task(me)) is not None:
            store.submit(me, view.task_id, "label", "a")
    table, gold = labels_db.read_answers(sqlite_url)
    assert list(table.columns) == ["task", "worker", "label", "source"]
    assert Counter(table["worker"]) == {"alice": 6, "bob": 6}  # 4 tasks + the exam + one honeypot each
    assert gold.to_dict() == {"exam0": "a", "honeypot0": "a"}
    from labelwise.crowd.methods import aggregate_labels

    assert set(aggregate_labels(table, gold=gold).labels) == {"a"}
