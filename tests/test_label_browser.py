"""The labeling page in headless Chromium against the real app (Store on SQLite, the server on loopback):
keyboard labeling, undo and edit, skip, the model's pre-selection, grid mode, an expired lease, training
feedback, the exam gate, review mode, and the admin page."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import unavailable
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    unavailable("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright for Python (pip install playwright)")
pytest.importorskip("sqlalchemy", reason="the labeling app needs the label extra")
pytest.importorskip("starlette", reason="the labeling app needs the label extra")
pytest.importorskip("uvicorn", reason="the labeling app needs the label extra")

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from labelwise.labeling.models import Settings  # noqa: E402
from labelwise.labeling.server import make_app  # noqa: E402
from labelwise.labeling.serving import BoundServer  # noqa: E402
from labelwise.labeling.store import Store  # noqa: E402

CLASSES = ["cat", "dog", "bird"]
N_PLAIN = 6  # tasks without a model guess, answered one by one (five labels and a skip)
N_GUESSED = 30  # tasks the model calls "cat": one grid page
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _png(path: Path, seed: int, size: int = 48) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = rng.integers(40, 215, 3)
    pixels = np.clip(base + 40 * np.sin(xx[..., None] / (3 + seed % 5) + rng.random(3) * 6), 0, 255).astype(np.uint8)
    pixels[(xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 4) ** 2] = 255 - base  # a disc, so thumbnails differ
    Image.fromarray(pixels).save(path)


def _queue() -> pd.DataFrame:
    names = [f"plain_{i}.png" for i in range(N_PLAIN)] + [f"guess_{i}.png" for i in range(N_GUESSED)]
    return pd.DataFrame(
        {"sample_id": names, "path": names, "role": "task", "suggestion": [None] * N_PLAIN + ["cat"] * N_GUESSED}
    )


class App:
    """A project on a temporary SQLite file served on 127.0.0.1, with links for alice, bob and the admin."""

    def __init__(self, tmp_path: Path, queue: pd.DataFrame | None = None, *, clock=time.time, **settings) -> None:
        queue = _queue() if queue is None else queue
        self.root = tmp_path / "images"
        self.root.mkdir()
        for i, name in enumerate(queue["path"]):
            _png(self.root / name, i)
        self.db = tmp_path / "labels.db"
        settings = Settings(classes=CLASSES, images_root=str(self.root), **{"grid_size": 24, **settings})
        self.store = Store.create(str(self.db), settings, queue, clock=clock)
        self.tokens = {name: self.store.add_annotator(name) for name in ("alice", "bob")}
        self.tokens["admin"] = self.store.add_annotator("admin", admin=True)
        self.server = BoundServer(make_app(self.store, self.root), "127.0.0.1", 0).start()
        self.url = self.server.url

    def link(self, name: str, page: str = "/") -> str:
        return f"{self.url}{page}#token={self.tokens[name]}"

    def answers(self, name: str) -> dict[int, tuple]:
        """task id -> (kind, label, revision, seconds) of every answer ``name`` has in the database."""
        with sqlite3.connect(self.db) as db:
            rows = db.execute(
                "SELECT a.task_id, a.kind, a.label, a.revision, a.seconds FROM answers a "
                "JOIN annotators n ON n.id = a.annotator_id WHERE n.name = ?",
                (name,),
            ).fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}

    def status(self, name: str) -> str:
        with sqlite3.connect(self.db) as db:
            return db.execute("SELECT status FROM annotators WHERE name = ?", (name,)).fetchone()[0]

    def close(self) -> None:
        self.server.stop()
        self.store.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def project(tmp_path):
    """Makes an :class:`App` (closed after the test)."""
    made: list[App] = []

    def make(queue: pd.DataFrame | None = None, **kwargs) -> App:
        made.append(App(tmp_path, queue, **kwargs))
        return made[-1]

    yield make
    for app in made:
        app.close()


@pytest.fixture
def app(project):
    return project()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert problems == [], problems  # no script error, nothing the CSP had to block


def _task_id(page: Page) -> int:
    """The id of the task on screen, once its image is shown."""
    expect(page.locator("#image.ready")).to_be_visible()
    return int(page.locator("#task-ref").inner_text().lstrip("#"))


def _next(page: Page, previous: int) -> int:
    expect(page.locator("#task-ref")).not_to_have_text(f"#{previous}")
    return _task_id(page)


def test_label_by_keyboard_undo_skip_and_grid(app, page, tmp_path):
    page.goto(app.link("alice"))
    expect(page.locator("#who")).to_have_text("alice")
    assert "token" not in page.url  # the token left the address bar (it stays in sessionStorage)
    expect(page.locator(".class-btn")).to_have_count(3)
    expect(page.locator("#suggestion-note")).to_be_hidden()  # no model guess on these tasks: nothing pre-selected
    expect(page.locator('.class-btn[aria-pressed="true"]')).to_have_count(0)

    # five tasks labelled by keyboard: the number selects, Enter submits
    done: dict[int, str] = {}
    task = _task_id(page)
    for key in ["1", "2", "3", "1", "2"]:
        page.keyboard.press(key)
        label = CLASSES[int(key) - 1]
        expect(page.locator(".class-btn", has_text=label)).to_have_attribute("aria-pressed", "true")
        page.keyboard.press("Enter")
        expect(page.locator("#last-saved")).to_contain_text(f"#{task} saved as {label}")
        done[task] = label
        task = _next(page, task)
    last = list(done)[-1]

    # backspace goes back to the last answer, which is then changed
    page.keyboard.press("Backspace")
    expect(page.locator("#stage-badge")).to_have_text("Editing")
    expect(page.locator("#task-ref")).to_have_text(f"#{last}")
    expect(page.locator(".class-btn", has_text="dog")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect(page.locator("#last-saved")).to_contain_text(f"#{last} changed to bird")
    done[last] = "bird"
    expect(page.locator("#stage-badge")).not_to_have_text("Editing")
    assert _task_id(page) == task  # back on the task that was waiting

    # s skips it
    page.keyboard.press("s")
    skipped = task
    task = _next(page, task)

    # zoom: the + key and a click toggle between 1:1 and fit
    page.keyboard.press("+")
    expect(page.locator("#zoom-level")).not_to_have_text("fit")
    page.locator("#viewer").click(position={"x": 200, "y": 200})
    expect(page.locator("#zoom-level")).to_have_text("fit")

    # the plain tasks are used up: this one carries the model's guess, pre-selected
    assert task in _guessed_ids(app)
    expect(page.locator(".class-btn", has_text="cat")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#suggestion-note")).to_be_visible()
    page.screenshot(path=str(tmp_path / "label-page.png"))

    # grid mode: a page of thumbnails the model calls cat; two marked "not cat", Enter submits the page
    page.keyboard.press("g")
    expect(page.locator("#grid-label")).to_have_text("cat")
    thumbs = page.locator(".thumb")
    expect(thumbs.first).to_be_visible()
    n = thumbs.count()
    assert 2 <= n <= 24
    grid_ids = [int(thumbs.nth(i).get_attribute("data-task")) for i in range(n)]
    thumbs.nth(0).click()
    thumbs.nth(3).click()
    expect(page.locator('.thumb[aria-pressed="true"]')).to_have_count(2)
    expect(page.locator("#grid-count")).to_have_text(f"{n - 2} cat · 2 not")
    expect(page.locator(".thumb.loading")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "grid-page.png"))
    page.keyboard.press("Enter")
    expect(page.locator("#last-saved")).to_have_text(f"✓ page saved: {n - 2} cat, 2 not")

    expected = {t: ("label", label) for t, label in done.items()}
    expected[skipped] = ("skip", None)
    expected.update({t: ("label", "cat") for t in grid_ids})
    expected[grid_ids[0]] = ("not", "cat")
    expected[grid_ids[3]] = ("not", "cat")
    stored = app.answers("alice")
    assert {t: row[:2] for t, row in stored.items()} == expected
    assert stored[last][2] == 2  # the edit is a second revision of the same answer
    assert all(row[3] is not None and row[3] >= 0 for row in stored.values())  # time spent was sent
    assert (tmp_path / "label-page.png").stat().st_size > 10_000


def _guessed_ids(app: App) -> set[int]:
    with sqlite3.connect(app.db) as db:
        return {r[0] for r in db.execute("SELECT id FROM tasks WHERE suggestion IS NOT NULL")}


def test_admin_page_lists_adds_and_stops(app, page, browser, tmp_path):
    alice = browser.new_context(viewport={"width": 900, "height": 700}).new_page()
    alice.goto(app.link("alice"))
    expect(alice.locator("#image.ready")).to_be_visible()
    alice.keyboard.press("2")
    alice.keyboard.press("Enter")
    expect(alice.locator("#last-saved")).to_contain_text("saved as dog")

    page.goto(app.link("admin", "/admin"))
    assert "token" not in page.url
    row = page.locator('#people-body tr[data-name="alice"]')
    expect(row.locator("td").nth(1)).to_have_text("1")  # one answer so far
    expect(row.locator(".status-pill")).to_have_text("active")
    expect(page.locator('#people-body tr[data-name="admin"]')).to_have_count(0)

    page.locator("#add-name").fill("dan")
    page.locator("#add-submit").click()
    expect(page.locator("#new-link-url")).to_have_text(re.compile(r"^http://127\.0\.0\.1:\d+/#token=[\w-]{20,}$"))
    expect(page.locator('#people-body tr[data-name="dan"]')).to_be_visible()
    dan = browser.new_context().new_page()
    dan.goto(page.locator("#new-link-url").inner_text())
    expect(dan.locator("#who")).to_have_text("dan")
    dan.context.close()

    stop = row.get_by_role("button", name="Stop alice")
    stop.click()
    expect(stop).to_have_text("Really stop?")
    stop.click()
    expect(row.locator(".status-pill")).to_have_text("stopped")
    assert app.status("alice") == "stopped"
    page.screenshot(path=str(tmp_path / "admin-page.png"))

    alice.keyboard.press("s")  # her next answer is refused: the page says why
    expect(alice.locator("#message-title")).to_have_text("You have been stopped")

    resume = row.get_by_role("button", name="Resume alice")  # the admin stopped her, so the admin may undo it
    resume.click()
    expect(row.locator(".status-pill")).to_have_text("active")
    expect(row.get_by_role("button", name="Stop alice")).to_be_visible()
    assert app.status("alice") == "active"
    alice.reload()
    expect(alice.locator("#image.ready")).to_be_visible()
    alice.context.close()


def test_an_expired_lease_is_said_and_the_next_task_follows(project, page):
    now = [time.time()]
    app = project(clock=lambda: now[0])
    page.goto(app.link("alice"))
    held = _task_id(page)
    now[0] += 600  # alice walks away past her lease; bob is given the task and covers it
    bob = app.store.authenticate(app.tokens["bob"])
    view = app.store.next_task(bob.id)
    assert view is not None and view.task_id == held
    assert app.store.submit(bob.id, held, "label", "dog").accepted
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#toast")).to_contain_text("expired")
    assert _next(page, held) != held
    assert held not in app.answers("alice")


def test_training_feedback_the_exam_gate_and_review(project, page):
    gold = [("cat", "training"), ("dog", "training"), ("bird", "exam"), ("bird", "exam")]
    queue = pd.DataFrame(
        {
            "sample_id": [f"gold_{i}" for i in range(4)] + ["review_0"],
            "path": [f"gold_{i}.png" for i in range(4)] + ["review_0.png"],
            "role": [role for _, role in gold] + ["task"],
            "gold_label": [label for label, _ in gold] + [None],
            "hint": ["pointed ears", "a long snout", None, None, None],
            "given_label": [None] * 4 + ["dog"],
            "suggestion": [None] * 4 + ["cat"],
        }
    )
    app = project(queue)
    page.goto(app.link("alice"))
    task = _task_id(page)
    expect(page.locator("#stage-badge")).to_have_text("Training")
    expect(page.locator('.class-btn[aria-pressed="true"]')).to_have_count(0)  # never a guess on gold
    page.keyboard.press("g")  # no grid before the exam is passed
    expect(page.locator("#grid-empty-text")).to_contain_text("after the training and the exam")
    page.keyboard.press("g")
    expect(page.locator("#single-view")).to_be_visible()
    assert _task_id(page) == task

    page.keyboard.press("2")  # wrong: the answer is cat
    page.keyboard.press("Enter")
    expect(page.locator("#feedback-title")).to_have_text("The answer is cat (you said dog).")
    expect(page.locator("#feedback-hint")).to_have_text("pointed ears")
    expect(page.locator(".class-btn.correct")).to_have_text(re.compile("cat"))
    page.keyboard.press("Enter")
    task = _next(page, task)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#feedback-title")).to_have_text("Right: dog.")
    page.keyboard.press("Enter")

    task = _next(page, task)
    expect(page.locator("#stage-badge")).to_have_text("Exam")
    expect(page.locator("#stage-note")).to_have_text("Exam: no feedback here. 80% right opens the real tasks.")
    for _ in range(2):
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        expect(page.locator("#feedback")).to_be_hidden()  # no feedback in the exam
        task = _next(page, task)
    expect(page.locator("#toast")).to_contain_text("Exam passed")

    expect(page.locator("#stage-badge")).to_have_text("Review")
    expect(page.locator("#given-label")).to_have_text("dog")
    expect(page.locator("#review-suggestion")).to_have_text("cat")
    expect(page.locator(".class-btn", has_text="cat")).to_have_attribute("aria-pressed", "true")
    review = task
    page.keyboard.press("c")  # keep the dataset's label
    expect(page.locator("#message-title")).to_have_text("All done — thank you!")
    labels = {t: row[1] for t, row in app.answers("alice").items()}
    assert sorted(labels.values()) == ["bird", "bird", "dog", "dog", "dog"]

    page.keyboard.press("Backspace")  # back to the review answer: the dataset's label and the guess are shown again
    expect(page.locator("#stage-badge")).to_have_text("Editing")
    expect(page.locator("#task-ref")).to_have_text(f"#{review}")
    expect(page.locator("#review-box")).to_be_visible()
    expect(page.locator("#given-label")).to_have_text("dog")
    expect(page.locator("#review-suggestion-row")).to_be_visible()
    expect(page.locator("#review-suggestion")).to_have_text("cat")
    dog = page.locator(".class-btn", has_text="dog")
    expect(dog).to_have_attribute("aria-pressed", "true")  # the answer, not the model's guess
    expect(dog.locator(".tag")).to_have_text(["dataset", "yours"])
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#last-saved")).to_contain_text(f"#{review} changed to cat")
    assert app.answers("alice")[review][:3] == ("label", "cat", 2)
