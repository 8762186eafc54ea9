"""The labeling app over HTTP: tokens, who may submit what, the image endpoint's confinement, and a full session."""

from __future__ import annotations

import logging
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("sqlalchemy")
pytest.importorskip("starlette")
from starlette.testclient import TestClient

from labelwise.labeling.server import STATIC, make_app
from labelwise.labeling.serving import BoundServer
from labelwise.labeling.store import Settings, Store

CLASSES = ["cat", "dog"]


def _png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


class Project:
    """A store on a temporary SQLite file, its app and client, and tokens for alice, bob and the admin."""

    def __init__(self, tmp_path: Path, *, overlap: int = 1, n_tasks: int = 6) -> None:
        self.root = tmp_path / "images"
        paths = [_png(self.root / f"img_{i}.png", i) for i in range(n_tasks)]
        self.secret = _png(tmp_path / "outside" / "secret.png", 99)
        tasks = pd.DataFrame(
            {
                "sample_id": [p.name for p in paths],
                "path": [str(p) for p in paths],
                "role": "task",
                "suggestion": ["cat"] * n_tasks,
            }
        )
        self.db = tmp_path / "labels.db"
        settings = Settings(classes=CLASSES, overlap=overlap, images_root=str(self.root))
        self.store = Store.create(str(self.db), settings, tasks)
        self.tokens = {name: self.store.add_annotator(name) for name in ("alice", "bob")}
        self.tokens["admin"] = self.store.add_annotator("admin", admin=True)
        self.client = TestClient(make_app(self.store))

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def post(self, name: str, path: str, body: dict | None = None) -> httpx.Response:
        return self.client.post(path, json=body or {}, headers=self.auth(name))

    def get(self, name: str, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.auth(name))

    def sql(self, query: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as db:
            return db.execute(query, params).fetchall()

    def answers(self) -> list[tuple]:
        """(task_id, annotator name, kind, label, revision) of every stored answer."""
        return self.sql(
            "SELECT a.task_id, n.name, a.kind, a.label, a.revision FROM answers a "
            "JOIN annotators n ON n.id = a.annotator_id ORDER BY a.task_id, n.name"
        )

    def leases(self) -> list[tuple]:
        return self.sql("SELECT l.task_id, n.name FROM leases l JOIN annotators n ON n.id = l.annotator_id")


@pytest.fixture
def project(tmp_path):
    p = Project(tmp_path)
    yield p
    p.client.close()
    p.store.close()


API = [
    ("GET", "/api/me"),
    ("POST", "/api/next"),
    ("POST", "/api/answer"),
    ("POST", "/api/grid/next"),
    ("POST", "/api/grid/submit"),
    ("GET", "/api/history"),
    ("GET", "/api/image/1"),
    ("GET", "/api/admin/stats"),
    ("POST", "/api/admin/stop"),
    ("POST", "/api/admin/resume"),
    ("POST", "/api/admin/annotators"),
]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic YWxpY2U6eA=="}, {"Authorization": "Bearer "}])
def test_no_token_is_401(project, headers):
    for method, path in API:
        r = project.client.request(method, path, headers=headers, json={"task_id": 1, "kind": "skip"})
        assert r.status_code == 401, (method, path)
        assert "error" in r.json() and r.headers["www-authenticate"] == "Bearer"
    assert project.answers() == []


def test_unknown_token_is_401(project):
    for method, path in API:
        for body in (b"{}", b"{not json", b"x" * 70_000):
            r = project.client.request(method, path, headers={"Authorization": "Bearer not-a-token"}, content=body)
            assert r.status_code == 401, (method, path, body[:10])
    assert project.sql("SELECT count(*) FROM annotators") == [(3,)]


def test_annotator_on_admin_routes_is_403(project):
    assert project.get("alice", "/api/admin/stats").status_code == 403
    assert project.post("alice", "/api/admin/stop", {"name": "bob"}).status_code == 403
    assert project.post("alice", "/api/admin/annotators", {"name": "eve"}).status_code == 403
    project.store.stop("bob")
    assert project.post("alice", "/api/admin/resume", {"name": "bob"}).status_code == 403
    project.store.resume("bob")
    assert project.sql("SELECT name, status FROM annotators ORDER BY name") == [
        ("admin", "active"),
        ("alice", "active"),
        ("bob", "active"),
    ]


def test_one_annotator_cannot_submit_for_another(project):
    task = project.post("bob", "/api/next").json()["task"]["task_id"]
    answer = {"task_id": task, "kind": "label", "label": "dog"}
    r = project.post("alice", "/api/answer", answer)
    assert r.status_code == 409 and r.json()["accepted"] is False
    # There is no field to name the annotator: one that names someone else is refused outright.
    for claim in ({"worker": "bob"}, {"annotator": "bob"}, {"annotator_id": 2}, {"name": "bob"}):
        assert project.post("alice", "/api/answer", {**answer, **claim}).status_code == 403
    assert project.answers() == []
    assert project.leases() == [(task, "bob")]
    assert project.post("bob", "/api/answer", {**answer, "label": "cat"}).json()["accepted"] is True
    assert project.answers() == [(task, "bob", "label", "cat", 1)]


TRAVERSALS = [
    "/api/image/../../etc/passwd",
    "/api/image/..%2F..%2Fetc%2Fpasswd",
    "/api/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/image/%2e%2e",
    "/api/image//etc/passwd",
    "/api/image/%2Fetc%2Fpasswd",
    "/api/image/C:%5Cwindows%5Cwin.ini",
    "/api/image/1%00",
    "/api/image/1/",
]
BAD_IDS = ["abc", "1.png", "-1", "+1", "1e3", "0x1", "%201", "%D9%A3", "0", "999999", "99999999999999999999999"]


def test_image_endpoint_takes_task_ids_only(project):
    for path in TRAVERSALS + [f"/api/image/{bad}" for bad in BAD_IDS]:
        r = project.get("admin", path)
        assert r.status_code == 404, path
        assert b"root:" not in r.content
    ok = project.get("admin", "/api/image/1")
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    assert ok.content == (project.root / "img_0.png").read_bytes()


def test_image_only_for_tasks_the_annotator_holds_or_answered(project):
    assert project.get("alice", "/api/image/1").status_code == 404
    task = project.post("alice", "/api/next").json()["task"]["task_id"]
    assert project.get("alice", f"/api/image/{task}").status_code == 200
    assert project.get("bob", f"/api/image/{task}").status_code == 404
    project.post("alice", "/api/answer", {"task_id": task, "kind": "skip"})
    assert project.get("alice", f"/api/image/{task}").status_code == 200


def test_stored_path_outside_the_root_is_404(project):
    link = project.root / "link.png"
    link.symlink_to(project.secret)
    outside = {
        1: str(project.secret),
        2: str(project.root / ".." / "outside" / "secret.png"),
        3: str(link),
        4: "/etc/passwd",
    }
    outside[5] = "../outside/secret.png"
    for task_id, path in outside.items():
        project.sql("UPDATE tasks SET path = ? WHERE id = ?", path, task_id)
    (project.root / "sub").mkdir()
    (project.root / "sub" / "inner.png").symlink_to(project.root / "img_5.png")
    project.sql("UPDATE tasks SET path = ? WHERE id = 6", str(project.root / "sub" / "inner.png"))
    for task_id in outside:
        assert project.get("admin", f"/api/image/{task_id}").status_code == 404, outside[task_id]
    inside = project.get("admin", "/api/image/6")  # a symlink that stays inside the root is fine
    assert inside.status_code == 200 and inside.content == (project.root / "img_5.png").read_bytes()


def test_cross_site_form_post_is_refused(project):
    task = project.post("alice", "/api/next").json()["task"]["task_id"]
    form = {"task_id": str(task), "kind": "label", "label": "cat"}
    site = {"Origin": "https://evil.example", "Referer": "https://evil.example/page"}
    r = project.client.post("/api/answer", data=form, headers=site)
    assert r.status_code == 401
    plain = {**site, "Content-Type": "text/plain"}
    assert (
        project.client.post("/api/answer", content=f'{{"task_id": {task}, "kind": "skip"}}', headers=plain).status_code
        == 401
    )
    assert project.answers() == []
    assert project.leases() == [(task, "alice")]


def test_a_session_over_http(project):
    me = project.get("alice", "/api/me").json()
    assert me["name"] == "alice" and me["classes"] == CLASSES and me["is_admin"] is False
    assert me["settings"] == {"mode": "label", "grid_size": 36, "lease_seconds": 120, "exam_pass": 0.8}
    nxt = project.post("alice", "/api/next").json()
    task = nxt["task"]
    assert set(task) == {"task_id", "stage", "suggestion", "given_label", "hint", "lease_expires", "answer"}
    assert task["stage"] == "task" and task["suggestion"] == "cat" and nxt["done_reason"] is None
    assert project.post("alice", "/api/next").json()["task"]["task_id"] == task["task_id"]  # a reload gets it again
    image = project.get("alice", f"/api/image/{task['task_id']}")
    assert image.status_code == 200 and image.headers["cache-control"] == "no-store"
    r = project.post(
        "alice", "/api/answer", {"task_id": task["task_id"], "kind": "label", "label": "cat", "seconds": 2.5}
    )
    assert r.status_code == 200 and r.json()["accepted"] is True
    assert project.sql("SELECT seconds FROM answers WHERE task_id = ?", task["task_id"]) == [(2.5,)]
    second = project.post("alice", "/api/next").json()["task"]
    assert second["task_id"] != task["task_id"]
    project.post("alice", "/api/answer", {"task_id": second["task_id"], "kind": "unsure"})
    history = project.get("alice", "/api/history").json()["answers"]
    assert [(h["task_id"], h["kind"], h["label"]) for h in history] == [
        (second["task_id"], "unsure", None),
        (task["task_id"], "label", "cat"),
    ]
    assert history[0]["suggestion"] == "cat" and history[0]["given_label"] is None  # as the task showed them
    reopened = project.post("alice", "/api/reopen", {"task_id": task["task_id"]}).json()["task"]
    assert reopened["task_id"] == task["task_id"] and reopened["answer"]["label"] == "cat"
    assert project.post("bob", "/api/reopen", {"task_id": task["task_id"]}).status_code == 404
    edit = project.post("alice", "/api/answer", {"task_id": task["task_id"], "kind": "label", "label": "dog"})
    assert edit.status_code == 200 and edit.json()["accepted"] is True
    assert project.answers() == [
        (task["task_id"], "alice", "label", "dog", 2),
        (second["task_id"], "alice", "unsure", None, 1),
    ]
    events = [k for (k,) in project.sql("SELECT kind FROM events ORDER BY id")]
    assert "answer_edited" in events
    table = project.store.answers()
    assert set(table["worker"]) == {"alice"} and len(table) == 2


def test_grid_page_over_http(project):
    grid = project.post("alice", "/api/grid/next", {"label": "cat"}).json()
    assert grid["label"] == "cat" and len(grid["tasks"]) == 6
    ids = [t["task_id"] for t in grid["tasks"]]
    r = project.post("alice", "/api/grid/submit", {"label": "cat", "task_ids": ids, "rejected": ids[:1]})
    assert r.status_code == 200 and r.json()["accepted"] is True
    stored = {task: (kind, label) for task, name, kind, label, _ in project.answers()}
    assert stored[ids[0]] == ("not", "cat") and all(stored[i] == ("label", "cat") for i in ids[1:])


def test_admin_adds_and_stops_annotators(project):
    added = project.post("admin", "/api/admin/annotators", {"name": "dan"})
    assert added.status_code == 200
    token = added.json()["token"]
    assert added.json()["link"].endswith(f"/#token={token}")
    project.tokens["dan"] = token
    assert project.get("dan", "/api/me").json()["name"] == "dan"
    assert project.post("admin", "/api/admin/annotators", {"name": "dan"}).status_code == 400
    task = project.post("dan", "/api/next").json()["task"]["task_id"]
    assert project.post("admin", "/api/admin/stop", {"name": "dan"}).status_code == 200
    refused = project.post("dan", "/api/answer", {"task_id": task, "kind": "label", "label": "cat"})
    assert refused.status_code == 403 and "stopped" in refused.json()["error"]
    nothing = project.post("dan", "/api/next").json()
    assert nothing["task"] is None and nothing["done_reason"].startswith("stopped")
    assert (
        project.post("dan", "/api/grid/submit", {"label": "cat", "task_ids": [task], "rejected": []}).status_code == 403
    )
    assert project.answers() == []
    assert project.sql("SELECT status FROM annotators WHERE name = 'dan'") == [("stopped",)]
    stats = project.get("admin", "/api/admin/stats")
    assert stats.status_code == 200 and "dan" in stats.text
    assert {a["name"]: a["stopped_by"] for a in stats.json()["annotators"]}["dan"] == "admin"
    assert project.post("admin", "/api/admin/stop", {"name": "nobody"}).status_code == 400

    resumed = project.post("admin", "/api/admin/resume", {"name": "dan"})
    assert resumed.status_code == 200 and resumed.json() == {"resumed": "dan"}
    again = project.post("dan", "/api/next").json()["task"]["task_id"]
    assert project.post("dan", "/api/answer", {"task_id": again, "kind": "label", "label": "cat"}).status_code == 200
    assert project.sql("SELECT status, status_reason FROM annotators WHERE name = 'dan'") == [("active", None)]
    assert project.post("admin", "/api/admin/resume", {"name": "nobody"}).status_code == 400


def test_bad_requests_are_json_errors(project):
    task = project.post("alice", "/api/next").json()["task"]["task_id"]
    cases = [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b"[" * 60000, 400),
        (b'{"task_id": "1", "kind": "skip"}', 400),
        (b'{"task_id": true, "kind": "skip"}', 400),
        (b'{"task_id": 99999999999999999999999, "kind": "skip"}', 400),
        (f'{{"task_id": {task}, "kind": "skip", "seconds": 1e999}}'.encode(), 400),
        (f'{{"task_id": {task}, "kind": "skip", "seconds": {10**400}}}'.encode(), 400),
        (f'{{"task_id": {task}, "kind": "label", "label": "horse"}}'.encode(), 400),
        (f'{{"task_id": {task}, "kind": "dance"}}'.encode(), 400),
        (f'{{"task_id": {task}, "kind": "skip", "seconds": -1}}'.encode(), 400),
        (b'{"task_id": 424242, "kind": "skip"}', 400),
        (b"x" * 70_000, 413),
    ]
    for body, status in cases:
        headers = {**project.auth("alice"), "Content-Type": "application/json"}
        r = project.client.post("/api/answer", content=body, headers=headers)
        assert r.status_code == status, body[:40]
        assert isinstance(r.json()["error"], str) and r.json()["error"]
    assert project.answers() == []
    assert project.get("alice", "/api/nope").status_code == 404
    assert project.get("alice", "/api/answer").status_code == 405
    assert project.get("alice", "/api/nope").json() == {"error": "Not Found"}


def test_pages_static_files_and_headers(project):
    page = project.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' blob:" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "inline script in label.html"
    assert "set-cookie" not in page.headers
    for name in sorted(p.name for p in STATIC.iterdir() if p.suffix in (".js", ".css")):
        r = project.client.get(f"/static/{name}")
        assert r.status_code == 200
        assert (
            r.headers["content-type"].split(";")[0]
            == {"js": "text/javascript", "css": "text/css"}[name.rsplit(".")[-1]]
        )
    for path in [
        "/static/../server.py",
        "/static/%2e%2e%2fserver.py",
        "/static/server.py",
        "/static/",
        "/static/.hidden",
    ]:
        assert project.client.get(path).status_code == 404, path
    assert project.client.get("/favicon.ico").status_code == 204
    api = project.get("alice", "/api/me")
    assert api.headers["cache-control"] == "no-store" and "set-cookie" not in api.headers
    assert project.client.options("/api/answer", headers={"Origin": "https://evil.example"}).status_code in (401, 405)


def test_bound_server_on_a_free_port(project, caplog):
    server = BoundServer(make_app(project.store, project.root), "127.0.0.1", 0).start()
    try:
        assert server.port > 0
        r = httpx.post(f"{server.url}/api/next", headers=project.auth("alice"), timeout=10)
        assert r.status_code == 200 and r.json()["task"] is not None
        assert httpx.get(f"{server.url}/api/me", timeout=10).status_code == 401
    finally:
        server.stop()
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        open_server = BoundServer(make_app(project.store, project.root), "0.0.0.0", 0)
        open_server.sock.close()
    assert any("0.0.0.0" in r.getMessage() for r in caplog.records)


def test_serve_prints_its_port_logs_no_requests_and_stops_on_ctrl_c(project):
    script = textwrap.dedent(
        f"""
        from labelwise.labeling.server import make_app
        from labelwise.labeling.serving import serve
        from labelwise.labeling.store import Store

        store = Store.open({str(project.db)!r})
        serve(make_app(store), port=0, on_ready=lambda port: print("PORT", port, flush=True))
        store.close()
        print("STOPPED", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT"), line + proc.stderr.read() if proc.stderr else ""
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        assert httpx.get(f"{url}/api/me", headers=project.auth("alice"), timeout=10).json()["name"] == "alice"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "STOPPED" in out, err
    assert "/api/me" not in out + err  # no access log
