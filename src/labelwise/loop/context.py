"""A loop project opened for work: its configuration, the pool and its cached embeddings, the labeling
store, and the answers so far. ``collect_answers`` gets a round's answers from wherever they come."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_table
from ..data import Dataset, load_dataset
from ..data.options import ReadOptions
from ..errors import LabelwiseError
from . import state
from .answers import capacity, next_recorded, read_answer_file, read_recorded
from .deciding import PRIOR_SKILL

log = logging.getLogger("labelwise")

DB_FILE = "labels.db"
GIVEN_FILE = "given.csv"
RECORDED_FILE = "recorded_answers.csv"
#: How often the page's answers are counted while a round waits for them.
POLL_SECONDS = 1.0


@dataclass
class LoopContext:
    folder: Path
    config: dict[str, Any]
    table: Dataset  # every row: the pool and the held-out rows
    features: np.ndarray  # embeddings of every row of ``table``, in its order
    store: Any  # labelwise.labeling.Store
    answers: str | None = None
    on_ready: Any = None
    recorded: pd.DataFrame | None = None
    _groups: np.ndarray | None = field(default=None, repr=False)

    # ------------------------------------------------------------ configuration
    @property
    def engine(self) -> Any:
        return self.store._engine

    @property
    def classes(self) -> list[str]:
        return list(self.table.classes)

    def __getattr__(self, name: str) -> Any:
        config = self.__dict__.get("config", {})
        if name in config:
            return config[name]
        raise AttributeError(name)

    @property
    def is_test(self) -> np.ndarray:
        return (self.table.table["split"].astype(str) == self.config["hold_out"]).to_numpy()

    @property
    def pool(self) -> pd.DataFrame:
        return self.table.table[~self.is_test].reset_index(drop=True)

    @property
    def pool_features(self) -> np.ndarray:
        return self.features[~self.is_test]

    def given_codes(self) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.classes)}
        return self.pool["label"].map(lookup).fillna(-1).to_numpy(int).copy()

    @property
    def groups(self) -> np.ndarray:
        """Near-duplicate group of every pool image (an image alone is its own group)."""
        if self._groups is None:
            from .merging import duplicate_groups

            self._groups = duplicate_groups(self.pool_features, self.config["duplicate_similarity"])
        return self._groups

    # ------------------------------------------------------------ state
    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """The label set now: class index (``-1`` none) and source of every pool image, replaying the history."""
        codes = self.given_codes()
        source = np.where(codes >= 0, "given", "").astype(object)
        rows = {s: i for i, s in enumerate(self.pool["sample_id"].astype(str))}
        lookup = {c: i for i, c in enumerate(self.classes)}
        for rec in state.history(self.engine).itertuples():
            i = rows[str(rec.sample_id)]
            codes[i] = lookup[rec.new_label] if rec.new_label is not None else -1
            source[i] = rec.source
        return codes, source

    def codes(self) -> np.ndarray:
        """The labels the model learns from: given and decided by people (not pseudo or propagated)."""
        codes, source = self.current()
        return np.where(np.isin(source, ["given", "human"]), codes, -1)

    def score(self) -> Any:
        from .scoring import score_pool

        return score_pool(self.pool_features, self.codes(), len(self.classes), random_state=self.random_state)

    def answer_table(self) -> pd.DataFrame:
        """Every kind=label answer on the loop's tasks: sample_id, worker, label, row (pool index)."""
        rows = self._answer_rows()
        rows = rows[(rows["kind"] == "label") & (rows["role"] == "task")]
        index = {s: i for i, s in enumerate(self.pool["sample_id"].astype(str))}
        frame = rows[["sample_id", "worker", "label"]].astype(str).reset_index(drop=True)
        frame["row"] = frame["sample_id"].map(index)
        return frame[frame["row"].notna()].astype({"row": int})

    def gold_table(self) -> pd.DataFrame:
        """Each worker's record on gold tasks (honeypots, the exam): worker, correct, n."""
        rows = self._answer_rows()
        rows = rows[(rows["kind"] == "label") & rows["role"].isin(["honeypot", "exam"]) & rows["gold_label"].notna()]
        correct = (rows["label"] == rows["gold_label"]).astype(int)
        return (
            pd.DataFrame({"worker": rows["worker"].astype(str), "correct": correct})
            .groupby("worker", as_index=False)
            .agg(correct=("correct", "sum"), n=("correct", "size"))
        )

    def _answer_rows(self) -> pd.DataFrame:
        from ..formats import labels_db as db

        with self.engine.connect() as conn:
            return db.answer_rows(conn)

    def answers_spent(self) -> int:
        return len(self.answer_table())

    def times_asked(self) -> np.ndarray:
        asked = state.asked(self.engine)
        counts = asked.groupby("sample_id").size() if len(asked) else pd.Series(dtype=int)
        return self.pool["sample_id"].astype(str).map(counts).fillna(0).to_numpy(int)

    def has_capacity(self) -> np.ndarray:
        """Which pool images can get one more answer: recorded answers left; in the page, an annotator who
        has not answered the image yet (nobody answers an image twice); from files, any."""
        answered = self.answer_table()
        if self.recorded is not None:
            left = capacity(self.recorded, answered)
            return self.pool["sample_id"].astype(str).map(left).fillna(0).to_numpy() > 0
        if self.config.get("page_annotators"):
            people = sum(1 for a in self.store.annotators() if not a.is_admin and a.status == "active")
            have = answered.groupby("sample_id").size()
            return self.pool["sample_id"].astype(str).map(have).fillna(0).to_numpy() < people
        return np.ones(len(self.pool), bool)

    def skill_estimate(self) -> float:
        """The annotators' expected accuracy for choosing: the configured prior, then what decisions found."""
        found = state.rounds(self.engine)
        skills = [float(r.metrics["mean_skill"]) for r in found if r.metrics.get("mean_skill") is not None]
        return skills[-1] if skills else float(self.config.get("skill", PRIOR_SKILL))

    def ask(self, queue: pd.DataFrame) -> None:
        """Make the round's queue open tasks in the labeling store (idempotent)."""
        times = self.times_asked()
        rows = self.queue_rows(queue)
        pool = self.pool
        self.store.ask(
            pd.DataFrame(
                {
                    "sample_id": pool["sample_id"].to_numpy()[rows],
                    "path": pool["path"].to_numpy()[rows],
                    "given_label": queue["label_before"].to_numpy(),
                    "suggestion": queue["guess"].to_numpy(),
                    "reason": queue["reason"].to_numpy(),
                    "wanted": times[rows],
                }
            )
        )

    def queue_rows(self, queue: pd.DataFrame) -> np.ndarray:
        """Pool rows of a queue: its ``row`` column when it was just chosen, else found by sample_id."""
        if "row" in queue.columns:
            return queue["row"].to_numpy(int)
        return self._rows(queue["sample_id"])

    def _rows(self, sample_ids: pd.Series) -> np.ndarray:
        index = {s: i for i, s in enumerate(self.pool["sample_id"].astype(str))}
        return sample_ids.astype(str).map(index).to_numpy(int)

    def round_folder(self, number: int) -> Path:
        return self.folder / "rounds" / f"{number:03d}"

    def write_queue(self, number: int, queue: pd.DataFrame) -> Path:
        """``rounds/NNN/queue.csv``: the round's images with their paths, for people answering outside the page."""
        rows = self.queue_rows(queue)
        table = queue.drop(columns=[c for c in ("row",) if c in queue.columns]).assign(
            path=self.pool["path"].to_numpy()[rows]
        )
        return write_table(self.round_folder(number) / "queue.csv", table)

    def write_round(self, number: int, queue: pd.DataFrame, changes: pd.DataFrame) -> None:
        write_table(self.round_folder(number) / "changes.csv", changes)

    def close(self) -> None:
        self.store.close()


def open_engine(folder: Path) -> Any:
    from ..formats import labels_db as db

    path = folder / DB_FILE
    if not path.is_file():
        raise LabelwiseError(
            f"{folder}: not a loop project (no {DB_FILE}); start one with `labelwise loop DATA --out DIR`"
        )
    engine = db.connect(path)
    db.migrate(engine)
    return engine


def open_context(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    *,
    answers: Any,
    simulate_answers: Any,
    on_ready: Any,
    read: ReadOptions,
    annotators: Any,
    host: str,
    port: int | None,
    **options: Any,
) -> LoopContext:
    """Create the project (``out`` given) or open it (``data`` is the project folder)."""
    from ..errors import require

    require("sqlalchemy", "label", "labelwise loop (its state lives in the labeling database)")
    from ..features import auto_backbone, embed
    from ..labeling.store import Settings, Store

    if out is not None:
        folder = Path(out)
        if (folder / DB_FILE).exists():
            raise LabelwiseError(f"{folder}: already holds a loop; continue it with `labelwise loop {folder}`")
        ds = data if isinstance(data, Dataset) else read.load(data, n_jobs=options["n_jobs"])
        budget, per_round = options["budget"], options["per_round"]
        if not budget or budget < 1:
            raise LabelwiseError("loop: give --budget N, the number of answers to spend (at least 1)")
        per_round = per_round or max(1, budget // 5)
        if per_round < 1:
            raise LabelwiseError("loop: --per-round must be at least 1")
        from .value import CHOICES

        CHOICES.get(options["choose"])  # an unknown rule: one line before anything is written
        if not 0.5 <= options["duplicate_similarity"] <= 1.0:
            raise LabelwiseError("loop: --duplicate-similarity must be between 0.5 and 1")
        table = ds.table.copy()
        if "split" not in table.columns:
            table["split"] = "train"
        table["split"] = table["split"].fillna("train").astype(str)
        pool = table[table["split"] != options["hold_out"]]
        if not len(pool):
            raise LabelwiseError(
                f"{ds.source or 'data'}: every row is in the {options['hold_out']!r} split; nothing to label"
            )
        if not pool["label"].notna().any():
            raise LabelwiseError(
                f"{ds.source or 'data'}: the pool has no labeled image; the model needs a few to start"
            )
        backbone, size = options["backbone"], options["size"]
        if backbone is None:
            backbone, size = auto_backbone(pool, purpose="loop", fallback="pixels")
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            **{k: v for k, v in options.items() if k not in ("backbone", "size", "n_jobs")},
            "budget": int(budget),
            "per_round": int(per_round),
            "backbone": backbone,
            "size": size,
            "cache_dir": None if options["cache_dir"] is None else str(options["cache_dir"]),
            "simulated": simulate_answers is not None,
            "n_jobs": options["n_jobs"],
        }
        given = Dataset(table.reset_index(drop=True), ds.classes, source=ds.source)
        given.save(folder, name=GIVEN_FILE)
        recorded = None
        if simulate_answers is not None:
            recorded = read_recorded(simulate_answers, ds.classes, set(pool["sample_id"].astype(str)))
            write_table(folder / RECORDED_FILE, recorded)
        from ..crowd.tasks import annotator_names

        names = annotator_names(annotators) or [] if simulate_answers is None else []
        settings = Settings(
            classes=list(ds.classes),
            overlap=1,
            images_root=_common_root(pool["path"]),
            mode="label",
        )
        store = Store.create(folder / DB_FILE, settings, pd.DataFrame(columns=["sample_id", "path"]), grows=True)
        try:
            config["page_annotators"] = names
            state.write_config(store._engine, config)
            links = {name: store.add_annotator(name) for name in names}
        except BaseException:
            store.close()
            raise
        if links:
            write_table(folder / "links.csv", pd.DataFrame({"annotator": list(links), "token": list(links.values())}))
            os.chmod(folder / "links.csv", 0o600)
    else:
        folder = Path(data)  # type: ignore[arg-type]
        if folder.is_file():
            folder = folder.parent
        if not (folder / DB_FILE).is_file():
            raise LabelwiseError(
                f"{folder}: not a loop project (no {DB_FILE}); start one with `labelwise loop DATA --out DIR`"
            )
        store = Store.open(folder / DB_FILE)
        found = state.read_config(store._engine)
        if found is None:
            store.close()
            raise LabelwiseError(
                f"{folder}/{DB_FILE}: a labeling project, not a loop; serve it with `labelwise label {folder}`"
            )
        config = found
        for key in ("budget", "per_round"):
            if options.get(key):
                config[key] = int(options[key])  # a continued loop may be given more to spend
        if options.get("budget"):
            state.write_config(store._engine, config)
        given = load_dataset(folder / GIVEN_FILE, check=False)
        recorded = (
            pd.read_csv(folder / RECORDED_FILE, dtype=str, keep_default_na=False) if config["simulated"] else None
        )
    try:
        started = time.time()
        features = embed(
            given,
            backbone=config["backbone"],
            size=config["size"],
            cache_dir=config["cache_dir"],
            random_state=config["random_state"],
        )
        log.info("loop: %d embeddings (%s) in %.1f s", len(features), config["backbone"], time.time() - started)
        features = reduced(np.asarray(features), config["random_state"])
    except BaseException:
        store.close()
        raise
    ctx = LoopContext(
        folder,
        config,
        given,
        np.asarray(features),
        store,
        None if answers is None else str(answers),
        on_ready,
        recorded,
    )
    ctx.config["host"], ctx.config["port"] = host, port
    return ctx


#: The cheap heads run on this many principal components of the (unit-length) embeddings: on CIFAR-10N's
#: 10,000 EfficientNet-Lite0 features a round's scoring takes 11 s instead of 36 s, at the same estimated accuracy.
COMPONENTS = 256


def reduced(features: np.ndarray, random_state: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    from .scoring import unit_rows

    if features.shape[1] <= COMPONENTS or len(features) <= COMPONENTS:
        return features
    return PCA(COMPONENTS, random_state=random_state).fit_transform(unit_rows(features))


def collect_answers(ctx: LoopContext, number: int, queue: pd.DataFrame) -> bool:
    """Get round ``number``'s answers into the store; False when people are still answering."""
    wanted = ctx.times_asked()
    if ctx.recorded is not None:
        answered = ctx.answer_table()
        have = answered.groupby("sample_id").size()
        rows = ctx.queue_rows(queue)
        ids = ctx.pool["sample_id"].astype(str).to_numpy()[rows]
        missing = pd.Series([s for s, r in zip(ids, rows) if have.get(s, 0) < wanted[r]])
        handed = next_recorded(ctx.recorded, missing, answered)
        counts = ctx.store.record(handed, source="recorded answers")
        if len(handed) < len(missing):
            log.warning("round %d: %d asked image(s) have no recorded answer left", number, len(missing) - len(handed))
        log.info("round %d: %d recorded answer(s) handed out", number, counts["recorded"])
        return True
    if ctx.answers is not None:
        frame = read_answer_file(
            ctx.answers, ctx.classes, dict(zip(ctx.pool["sample_id"].astype(str), ctx.pool["path"]))
        )
        counts = ctx.store.record(frame, source=str(ctx.answers))
        for what in ("unknown_image", "duplicate"):
            if counts[what]:
                log.warning(
                    "%s: %d answer(s) %s; not used",
                    ctx.answers,
                    counts[what],
                    "for images never asked" if what == "unknown_image" else "already recorded",
                )
        log.info("round %d: %d answer(s) read from %s", number, counts["recorded"], ctx.answers)
        ctx.answers = None  # one file answers one round
        return True
    if ctx.config.get("page_annotators"):
        return _serve_until_answered(ctx, number, queue)
    log.warning(
        "round %d: %d image(s) to answer in %s; then `labelwise loop %s --answers FILE` (a Label Studio export, "
        "Toloka TSV or a CSV of sample_id, worker, label) continues",
        number,
        len(queue),
        ctx.round_folder(number) / "queue.csv",
        ctx.folder,
    )
    return False


def _serve_until_answered(ctx: LoopContext, number: int, queue: pd.DataFrame) -> bool:
    from ..labeling.server import make_app
    from ..labeling.serving import BoundServer

    ids = queue["sample_id"].astype(str).tolist()
    if ctx.store.open_tasks(ids) == 0:
        return True
    server = BoundServer(make_app(ctx.store), ctx.config["host"], ctx.config["port"]).start()
    log.info("round %d: %d image(s) to label on %s (links: %s)", number, len(ids), server.url, ctx.folder / "links.csv")
    try:
        if ctx.on_ready is not None:
            ctx.on_ready(server.url)
        while ctx.store.open_tasks(ids) > 0:
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        log.warning("round %d: stopped while people were answering; `labelwise loop %s` continues", number, ctx.folder)
        return False
    finally:
        server.stop()
    return True


def _common_root(paths: pd.Series) -> str:
    folders = [os.path.dirname(os.path.abspath(str(p).split("::")[0])) for p in paths]
    return os.path.commonpath(folders) if folders else "."
