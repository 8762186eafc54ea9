"""The labeling server under load: simulated annotators over HTTP on loopback, against SQLite.

A project of ``--tasks`` small real PNG images (overlap ``--overlap``, one honeypot per 50
tasks) is made with ``labelwise label --no-serve``; the server then runs as its own process
(``labelwise label DIR --port P``), as a user runs it. ``--annotators`` threads, one HTTP client
each, loop "next task" → think ``--think`` seconds (drawn from an exponential distribution with that
mean: people look at an image before they answer) → "submit", for ``--seconds``; ``--think 0``
hammers the server to find its throughput (latency is then mostly queueing). Phase 2 does the same, and half-way through
kills the server with SIGKILL and starts it again on the same port; the clients retry until it
answers.

Figures per phase: answers per second; p50 / p99 latency of "next task" and "submit" (client
side, so they include HTTP on loopback and the clients' own Python); duplicate answers (one
annotator twice on a task), lost answers (acknowledged by the server, missing from the
database afterwards) and tasks beyond their overlap. Targets (issue 17): p99 under 50 ms for
both calls at 20 annotators on this machine; 0 lost, 0 beyond overlap.

    python bench/label_load.py                 # 20 annotators, 60 s per phase
    python bench/label_load.py --seconds 20 --annotators 8
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_queue(folder: Path, n: int, classes: list[str]) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    images = folder / "images"
    images.mkdir()
    rows, gold = ["sample_id,path,suggested_label"], ["sample_id,label"]
    for i in range(n):
        name = f"img_{i:05d}.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(images / name)
        rows.append(f"{name},{name},{classes[i % len(classes)]}")
        if i % 40 == 0:
            gold.append(f"{name},{classes[i % len(classes)]}")
    (folder / "queue.csv").write_text("\n".join(rows) + "\n")
    (folder / "gold.csv").write_text("\n".join(gold) + "\n")
    return folder / "queue.csv", folder / "gold.csv"


def start_server(project: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "labelwise.cli.app", "label", str(project), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start within 30 s")


class Annotator(threading.Thread):
    def __init__(
        self, base: str, token: str, stop: threading.Event, classes: list[str], seed: int, think: float
    ) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.stop, self.classes, self.think = stop, classes, think
        self.rng = np.random.default_rng(seed)
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.acked: list[int] = []
        self.errors = 0
        self.finished = False

    def call(self, path: str, body: dict[str, object], times: list[float]) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            response = self.client.post(path, json=body)
        except httpx.TransportError:  # the server is down (phase 2): try again
            self.errors += 1
            time.sleep(0.25)
            return None
        times.append((time.perf_counter() - t0) * 1000)
        return response

    def run(self) -> None:
        while not self.stop.is_set():
            got = self.call("/api/next", {}, self.next_ms)
            if got is None or got.status_code != 200:
                continue
            task = got.json().get("task")
            if task is None:
                self.finished = True
                return
            if self.think:
                self.stop.wait(float(self.rng.exponential(self.think)))
            body = {"task_id": task["task_id"], "kind": "label", "label": str(self.rng.choice(self.classes))}
            done = self.call("/api/answer", body, self.submit_ms)
            if done is not None and done.status_code == 200 and done.json().get("accepted"):
                self.acked.append(int(task["task_id"]))


def phase(
    project: Path, tokens: dict[str, str], port: int, seconds: float, classes: list[str], *, kill: bool, think: float
) -> None:
    server = start_server(project, port)
    stop = threading.Event()
    workers = [
        Annotator(f"http://127.0.0.1:{port}", token, stop, classes, seed=i, think=think)
        for i, token in enumerate(tokens.values())
    ]
    t0 = time.time()
    for w in workers:
        w.start()
    if kill:
        time.sleep(seconds / 2)
        server.send_signal(signal.SIGKILL)
        server.wait()
        killed_at = time.time() - t0
        server = start_server(project, port)
        print(f"  server killed (SIGKILL) at {killed_at:.1f} s and restarted in {time.time() - t0 - killed_at:.2f} s")
        time.sleep(max(0.0, seconds - (time.time() - t0)))
    else:
        time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(timeout=15)
    wall = time.time() - t0
    server.send_signal(signal.SIGINT)
    server.wait(timeout=30)
    report(project, workers, tokens, wall)


def report(project: Path, workers: list[Annotator], tokens: dict[str, str], wall: float) -> None:
    next_ms = np.concatenate([w.next_ms for w in workers]) if workers else np.zeros(0)
    submit_ms = np.concatenate([w.submit_ms for w in workers]) if workers else np.zeros(0)
    acked = {(name, t) for name, w in zip(tokens, workers) for t in w.acked}
    db = sqlite3.connect(project / "labels.db")
    stored = set(
        db.execute(
            "SELECT a.name, s.task_id FROM answers s JOIN annotators a ON a.id = s.annotator_id WHERE s.kind = 'label'"
        ).fetchall()
    )
    duplicates = db.execute(
        "SELECT COUNT(*) FROM (SELECT task_id, annotator_id FROM answers GROUP BY 1, 2 HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    beyond = db.execute(
        "SELECT COUNT(*) FROM tasks t WHERE t.role = 'task' AND "
        "(SELECT COUNT(*) FROM answers s WHERE s.task_id = t.id AND s.kind = 'label') > t.target"
    ).fetchone()[0]
    db.close()
    n = sum(len(w.acked) for w in workers)
    print(
        f"  {n:,} answers in {wall:.1f} s = {n / wall:,.0f}/s · next p50 {np.percentile(next_ms, 50):.1f} ms, "
        f"p99 {np.percentile(next_ms, 99):.1f} ms · submit p50 {np.percentile(submit_ms, 50):.1f} ms, "
        f"p99 {np.percentile(submit_ms, 99):.1f} ms"
    )
    print(
        f"  lost {len(acked - stored)} · duplicate {duplicates} · beyond overlap {beyond} · "
        f"connection retries {sum(w.errors for w in workers)} · annotators out of tasks {sum(w.finished for w in workers)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds an annotator looks at an image")
    args = parser.parse_args()
    classes = ["cat", "dog", "bird", "fish"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        queue, gold = make_queue(folder, args.tasks, classes)
        project = folder / "project"
        names = [f"annotator_{i + 1}" for i in range(args.annotators)]
        from labelwise.labeling.project import label

        made = label(
            queue,
            project,
            images=folder / "images",
            gold=gold,
            classes=classes,
            annotators=names,
            overlap=args.overlap,
            training_pct=0,
            exam_pct=0,
            serve=False,
        )
        tokens = {name: made.links[name] for name in names}
        port = free_port()
        print(
            f"{args.annotators} annotators · {args.tasks:,} tasks · overlap {args.overlap} · SQLite · "
            f"{os.cpu_count()} cores"
        )
        print(f"phase 1: {args.seconds:.0f} s, {args.think:g} s to look at each image")
        phase(project, tokens, port, args.seconds, classes, kill=False, think=args.think)
        print(f"phase 2: {args.seconds:.0f} s with a kill -9 in the middle")
        phase(project, tokens, port, args.seconds, classes, kill=True, think=args.think)
        print(f"phase 3: {args.seconds:.0f} s without thinking (the server's throughput)")
        phase(project, tokens, port, args.seconds, classes, kill=False, think=0.0)


if __name__ == "__main__":
    main()
