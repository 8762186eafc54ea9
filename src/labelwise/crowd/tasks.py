"""``tasks``: labeling tasks to send out (Label Studio import JSON and Toloka TSV, written by
:mod:`labelwise.formats.labeling`), with gold images split into training, exam and honeypot
tasks, honeypots mixed in at a rate, and a manifest."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._io import write_json, write_table, write_text
from .._run import recorded
from ..errors import LabelwiseError
from ..formats.labeling import (
    _inside,
    common_base,
    image_url,
    label_studio_tasks,
    labeling_config,
    write_toloka_tsv,
)

log = logging.getLogger("labelwise")

TaskFormat = Literal["labelstudio", "toloka"]
ROLES = ("task", "honeypot", "training", "exam", "spare")


def split_gold(labels: pd.Series, *, training_pct: float = 30, exam_pct: float = 20, seed: int = 0) -> pd.Series:
    """Role of each gold item (``training``, ``exam``, ``honeypot``), stratified by class.

    Classes are shuffled within and interleaved, so every role covers the classes in
    proportion; the first ``training_pct`` % go to training, the next ``exam_pct`` % to the
    exam, the rest are honeypots (rounded to whole items).

    >>> roles = split_gold(pd.Series(["a"] * 10 + ["b"] * 10), seed=1)
    >>> roles.value_counts().to_dict()
    {'honeypot': 10, 'training': 6, 'exam': 4}
    """
    if training_pct < 0 or exam_pct < 0 or training_pct + exam_pct > 100:
        raise LabelwiseError(
            f"training and exam shares must be >= 0 and sum to at most 100, got {training_pct} + {exam_pct}"
        )
    rng = np.random.default_rng(seed)
    keys: dict[Any, float] = {}
    for _, idx in labels.groupby(labels.astype(str), sort=True).groups.items():
        shuffled = rng.permutation(np.asarray(idx, dtype=object))
        for j, key in enumerate(shuffled):  # the j-th of a class sits at (j + offset) / size
            keys[key] = (j + rng.random()) / len(shuffled)
    order = sorted(labels.index, key=lambda k: keys[k])
    n = len(order)
    n_train = round(n * training_pct / 100)
    n_exam = min(round(n * exam_pct / 100), n - n_train)
    roles = ["training"] * n_train + ["exam"] * n_exam + ["honeypot"] * (n - n_train - n_exam)
    return pd.Series(roles, index=order, name="role").reindex(labels.index)


def mix_honeypots(
    tasks: Sequence[Any], honeypots: Sequence[Any], *, page_size: int = 50, per_page: int = 1, seed: int = 0
) -> tuple[list[tuple[Any, bool]], list[Any]]:
    """Interleave ``honeypots`` into ``tasks``: each page of ``page_size`` items holds
    ``per_page`` honeypots at random places (while they last). Returns ``[(item, is_honeypot)]``
    and the honeypots left over.

    >>> order, spare = mix_honeypots(list(range(8)), ["h1", "h2", "h3"], page_size=5, per_page=1)
    >>> [x for x, hp in order if hp], spare
    (['h1', 'h2'], ['h3'])
    """
    if per_page < 0 or page_size <= per_page:
        raise LabelwiseError(f"a page of {page_size} must hold more than its {per_page} honeypot(s)")
    rng = np.random.default_rng(seed)
    real = page_size - per_page
    pool = list(honeypots)
    out: list[tuple[Any, bool]] = []
    for start in range(0, len(tasks), real):
        page: list[tuple[Any, bool]] = [(t, False) for t in tasks[start : start + real]]
        for _ in range(min(per_page, len(pool))):
            page.insert(int(rng.integers(0, len(page) + 1)), (pool.pop(0), True))
        out += page
    return out, pool


def assign_overlap(n_tasks: int, annotators: Sequence[str], overlap: int) -> dict[str, list[int]]:
    """Give each of ``n_tasks`` tasks to ``overlap`` different annotators, balanced (round robin).

    >>> assign_overlap(4, ["a", "b", "c"], 2)
    {'a': [0, 1, 3], 'b': [0, 2, 3], 'c': [1, 2]}
    """
    if not 1 <= overlap <= len(annotators):
        raise LabelwiseError(f"overlap must be between 1 and the {len(annotators)} annotator(s), got {overlap}")
    out: dict[str, list[int]] = {a: [] for a in annotators}
    for i in range(n_tasks):
        for j in range(overlap):
            out[annotators[(i * overlap + j) % len(annotators)]].append(i)
    return out


# ---------------------------------------------------------------- the `tasks` command


@dataclass
class TaskFiles:
    """What :func:`make_tasks` wrote: the manifest (one row per placed task) and the files."""

    manifest: pd.DataFrame
    files: list[Path]
    counts: dict[str, int]
    info: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {"counts": self.counts, **{k: v for k, v in self.info.items() if k != "counts"}}


MANIFEST_COLUMNS = ("sample_id", "path", "url", "role", "gold_label", "hint", "file", "position", "annotator")
LS_ENV = ("LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true", "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={base}")


def _task_inputs(arguments: Any) -> tuple[list[Any], list[Any]]:
    images = arguments["images"]
    trees = [images] if Path(images).is_dir() else []
    files = [
        a for a in (None if trees else images, arguments.get("gold"), arguments.get("predictions")) if a is not None
    ]
    return files, trees


@recorded("tasks", inputs=_task_inputs)
def make_tasks(
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: TaskFormat = "labelstudio",
    gold: str | os.PathLike[str] | None = None,
    predictions: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    url_prefix: str | None = None,
    training_pct: float = 30,
    exam_pct: float = 20,
    page_size: int = 50,
    per_page: int = 1,
    overlap: int = 1,
    annotators: Sequence[str] | int | str | None = None,
    classes: Sequence[str] | str | os.PathLike[str] | None = None,
    from_name: str = "choice",
    to_name: str = "image",
    model_version: str = "labelwise",
    random_state: int = 0,
    overwrite: bool = False,
) -> TaskFiles:
    """Write labeling tasks for ``images`` into ``out``.

    Parameters
    ----------
    images : a folder (every image below it) or any input :func:`labelwise.load_dataset` reads.
    format : ``labelstudio`` (import JSON, ``labeling_config.xml``) or ``toloka`` (TSV).
    gold : CSV of known answers (``sample_id``/``image``/``path``, ``label``, optional ``hint``);
        these images are split into training / exam / honeypots (``training_pct``,
        ``exam_pct``, rest) and leave the ordinary tasks.
    predictions : probability table (``sample_id``, ``prob_<class>``): the most probable class
        becomes a pre-annotation whose ``score`` is its probability.
    root : folder the URLs are relative to (Label Studio's document root; default the images'
        common folder). ``url_prefix``: serve from ``url_prefix/<relative path>`` instead.
    page_size, per_page : ``per_page`` honeypots among every ``page_size`` tasks.
    overlap, annotators : Label Studio: give each task to ``overlap`` of ``annotators`` (names,
        ``"alice,bob"``, or a count; one file per annotator, every one with the same honeypots);
        Toloka: recorded as the pool's overlap.

    Every task, gold ones included, is keyed by the dataset's ``sample_id`` (the image's path
    below ``images``): in the task files, ``manifest.csv`` and ``gold.csv``, so that the answers
    exported from the tool and ``gold.csv`` meet in ``labelwise aggregate`` without editing.
    """
    from ..data import load_dataset, read_image_files
    from ..data.natural import natural_sorted

    seed = random_state
    if format not in ("labelstudio", "toloka"):
        raise LabelwiseError(f"unknown task format {format!r}; choose labelstudio or toloka")
    annotators = annotator_names(annotators)
    if isinstance(classes, (str, os.PathLike)):
        from ..data.table import read_classes

        classes = read_classes(classes)
    out, images = Path(out), Path(images)
    ds = read_image_files(images, check=False) if images.is_dir() else load_dataset(images, check=False)
    table = ds.table[["sample_id", "path"]].astype(str)
    known = gold_rows(gold, table, images if images.is_dir() else None) if gold is not None else no_gold()
    items = pd.concat(
        [
            table[~table["sample_id"].isin(known["sample_id"])].assign(label="", hint="", role="task"),
            known.assign(
                role=split_gold(known["label"], training_pct=training_pct, exam_pct=exam_pct, seed=seed).to_numpy()
            ),
        ],
        ignore_index=True,
    )
    pred = _predictions(predictions) if predictions is not None else pd.DataFrame(columns=["prediction", "score"])
    items["prediction"] = items["sample_id"].map(pred["prediction"]).astype(object)
    items["score"] = items["sample_id"].map(pred["score"]).astype(float)
    if classes is None:
        classes = natural_sorted(set(pred["prediction"]) | set(known["label"])) or None
    base = common_base(list(items["path"]), root)
    if format == "toloka" and not url_prefix:
        log.warning("Toloka shows images by URL: INPUT:image holds paths relative to %s; pass --url-prefix", base)
        items["url"] = [Path(os.path.relpath(os.path.abspath(p), base)).as_posix() for p in items["path"]]
    else:
        items["url"] = [image_url(p, base, url_prefix) for p in items["path"]]
    if format == "labelstudio" and overlap > 1 and not annotators:
        log.warning(
            "Label Studio Community gives each task to one annotator: --overlap %d needs --annotators "
            "(one task file each); recorded in manifest.json only",
            overlap,
        )
    by_role = {role: list(items.index[items["role"] == role]) for role in ROLES}
    mixed, spare = mix_honeypots(
        by_role["task"], by_role["honeypot"], page_size=page_size, per_page=per_page, seed=seed
    )
    short = math.ceil(len(by_role["task"]) / (page_size - per_page)) * per_page - len(by_role["honeypot"])
    if by_role["honeypot"] and short > 0:
        log.warning(
            "%d honeypot(s) for %d page(s) of %d: the last pages have none",
            len(by_role["honeypot"]),
            math.ceil(len(by_role["task"]) / (page_size - per_page)),
            page_size,
        )
    if format == "toloka":  # Toloka mixes control tasks itself: upload them all
        mixed, spare = mixed + [(i, True) for i in spare], []
    ordered = items.loc[[i for i, _ in mixed]].assign(role=["honeypot" if hp else "task" for _, hp in mixed])
    placed: list[pd.DataFrame] = []

    def place(rows: pd.DataFrame, file: Path, annotator: str = "") -> pd.DataFrame:
        rows = rows.assign(file=file.relative_to(out).as_posix(), position=range(len(rows)), annotator=annotator)
        placed.append(rows)
        return rows

    if format == "labelstudio":
        _write_label_studio(
            out,
            ordered,
            items.loc[by_role["training"]],
            items.loc[by_role["exam"]],
            annotators,
            overlap,
            place,
            base=base,
            url_prefix=url_prefix,
            from_name=from_name,
            to_name=to_name,
            model_version=model_version,
        )
        if classes:
            write_text(out / "labeling_config.xml", labeling_config(classes, from_name=from_name, to_name=to_name))
    else:
        for rows, name in (
            (ordered, "toloka_tasks.tsv"),
            (items.loc[by_role["training"]], "toloka_training.tsv"),
            (items.loc[by_role["exam"]], "toloka_exam.tsv"),
        ):
            if len(rows) or name == "toloka_tasks.tsv":
                write_toloka_tsv(out / name, _toloka_rows(place(rows, out / name), with_hint="training" in name))
    placed.append(items.loc[spare].assign(role="spare", file="", position=-1, annotator=""))
    manifest = pd.concat(placed, ignore_index=True).rename(columns={"label": "gold_label"})[list(MANIFEST_COLUMNS)]
    write_table(out / "manifest.csv", manifest)
    graded = items[items["role"] != "task"]
    if len(graded):
        write_table(out / "gold.csv", graded[["sample_id", "label", "role"]].rename(columns={"sample_id": "task"}))
    counts = {role: int((manifest["role"] == role).sum()) for role in ROLES}
    counts["images"] = int(manifest.loc[manifest["role"] != "spare", "sample_id"].nunique())
    info: dict[str, Any] = {
        "format": format,
        "counts": counts,
        "classes": list(classes or []),
        "url_base": base,
        "url_prefix": url_prefix,
        "honeypots": {"page_size": page_size, "per_page": per_page, "rate": per_page / page_size},
        "overlap": overlap,
        "annotators": list(annotators or []),
        "files": sorted({f for f in manifest["file"] if f})
        + (["labeling_config.xml"] if format == "labelstudio" and classes else []),
    }
    if format == "labelstudio" and not url_prefix:
        info["label_studio_env"] = [e.format(base=base) for e in LS_ENV]
    if format == "toloka":
        info["toloka_pool"] = {
            "overlap": overlap,
            "mixing": {"real_tasks_count": page_size - per_page, "golden_tasks_count": per_page},
        }
    write_json(out / "manifest.json", info)
    return TaskFiles(
        manifest, [out / f for f in info["files"]] + [out / "manifest.csv", out / "manifest.json"], counts, info
    )


def _predictions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``prediction, score`` per sample_id from a probability table (``prob_<class>`` columns)."""
    from ..formats.probabilities import PROB_PREFIX, read_probability_table

    probs = read_probability_table(path)
    cols = [c for c in probs.columns if str(c).startswith(PROB_PREFIX)]
    try:
        values = probs[cols].to_numpy(np.float64)
    except (TypeError, ValueError):
        raise LabelwiseError(f"{path}: the prob_<class> columns must hold numbers") from None
    names = np.asarray([str(c)[len(PROB_PREFIX) :] for c in cols], dtype=object)
    return pd.DataFrame(
        {"prediction": names[values.argmax(1)], "score": values.max(1)}, index=probs["sample_id"].astype(str)
    )


def no_gold() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ("sample_id", "path", "label", "hint")})


def annotator_names(annotators: Sequence[str] | int | str | None) -> list[str] | None:
    """Annotator names from a list, ``"alice, bob"`` or a count (``3`` → annotator_1 … 3).

    >>> annotator_names("alice, bob"), annotator_names(2)
    (['alice', 'bob'], ['annotator_1', 'annotator_2'])
    """
    if annotators is None:
        return None
    if isinstance(annotators, str):
        annotators = [a.strip() for a in annotators.split(",") if a.strip()]
        if len(annotators) == 1 and annotators[0].isdigit():
            annotators = int(annotators[0])
    if isinstance(annotators, int):
        if annotators < 1:
            raise LabelwiseError(f"annotators: a count must be at least 1, got {annotators}")
        return [f"annotator_{i + 1}" for i in range(annotators)]
    names = [str(a).strip() for a in annotators]
    if not names or any(not n for n in names):
        raise LabelwiseError("annotators: give names (alice,bob) or a count")
    if len(set(names)) != len(names):
        raise LabelwiseError(f"annotators: names repeat ({', '.join(names)})")
    return names


def gold_rows(gold: str | os.PathLike[str], table: pd.DataFrame, images_root: Path | None) -> pd.DataFrame:
    """Gold answers with the image each one names: a ``sample_id`` of ``table``, or a file
    (absolute, or relative to the gold file's folder or the images folder). A file of the task
    set keeps its ``sample_id``; any other gets one the way the dataset's own are made: its
    path below the images folder, else below the gold file's folder (never an absolute path)."""
    from .importers import read_gold

    known = read_gold(gold)
    paths = dict(zip(table["sample_id"], table["path"]))
    ids = {os.path.abspath(p): sid for sid, p in paths.items()}
    folder = Path(gold).parent
    rows = []
    for line, (task, label, hint) in enumerate(zip(known["task"], known["label"], known["hint"]), start=2):
        path = paths.get(task)
        if path is None:
            for cand in (Path(task), folder / task, *([images_root / task] if images_root else [])):
                if cand.is_file():
                    path = str(cand)
                    task = ids.get(os.path.abspath(cand)) or _relative_id(cand, images_root, folder)
                    break
        if path is None:
            raise LabelwiseError(f"{gold}, line {line}: {task!r} is neither an image of the task set nor a file")
        rows.append({"sample_id": task, "path": path, "label": label, "hint": hint or f"The answer is {label}."})
    frame = pd.DataFrame(rows, columns=["sample_id", "path", "label", "hint"]) if rows else no_gold()
    clash = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(clash):
        raise LabelwiseError(f"{gold}: two gold images would both be task {clash.iloc[0]!r}; give them distinct names")
    return frame


def _relative_id(path: Path, *roots: Path | None) -> str:
    """``path`` below the first of ``roots`` that holds it (POSIX separators), else its file name."""
    full = os.path.abspath(path)
    for root in roots:
        if root is not None and _inside(full, os.path.abspath(root)):
            return Path(os.path.relpath(full, os.path.abspath(root))).as_posix()
    return Path(full).name


def _toloka_rows(rows: pd.DataFrame, *, with_hint: bool) -> pd.DataFrame:
    """INPUT only = a general task; + GOLDEN = a control task; + GOLDEN + HINT = a training task."""
    out = pd.DataFrame(
        {
            "INPUT:image": rows["url"],
            "INPUT:sample_id": rows["sample_id"],
            "GOLDEN:result": rows["label"].where(rows["role"] != "task", ""),
        }
    )
    if with_hint:
        out["HINT:text"] = rows["hint"]
    return out


def _write_label_studio(
    out: Path,
    ordered: pd.DataFrame,
    training: pd.DataFrame,
    exam: pd.DataFrame,
    annotators: Sequence[str] | None,
    overlap: int,
    place: Any,
    **options: Any,
) -> None:
    model_version = options.pop("model_version")

    def write(rows: pd.DataFrame, file: Path, annotator: str = "", **kw: Any) -> None:
        kw = kw or {"prediction_col": "prediction", "score_col": "score", "model_version": model_version}
        placed = place(rows, file, annotator)
        write_json(
            file,
            label_studio_tasks(
                placed,
                root=options["base"],
                url_prefix=options["url_prefix"],
                from_name=options["from_name"],
                to_name=options["to_name"],
                **kw,
            ),
        )

    if annotators:
        is_task = (ordered["role"] == "task").to_numpy()
        real = np.flatnonzero(is_task)
        for name, picks in assign_overlap(len(real), list(annotators), overlap).items():
            keep = ~is_task  # every annotator gets every honeypot, at the same places
            keep[real[picks]] = True
            write(ordered[keep], out / "label_studio" / f"{_safe(name)}.json", name)
    else:
        write(ordered, out / "label_studio_tasks.json")
    if len(training):
        write(
            training.assign(prediction=training["label"], score=1.0),
            out / "label_studio_training.json",
            prediction_col="prediction",
            score_col="score",
            model_version="gold",
            data_cols=("hint",),
        )
    if len(exam):
        write(exam, out / "label_studio_exam.json")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name) or "annotator"
