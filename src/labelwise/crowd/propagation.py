"""Spread labels to unlabeled images through their nearest labeled neighbours in an embedding.

:func:`knn_propagate` works on plain arrays (the pseudo-labeling code reuses it);
:func:`propagate` reads images and crowd labels, embeds, and writes a labelwise table.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import note_input, write_json, write_table
from .._run import recorded
from ..data import Dataset
from ..errors import LabelwiseError
from ..features.neighbors import knn_propagate
from ..report import Report

log = logging.getLogger("labelwise")


def propagate_dataset(
    ds: Dataset, embeddings: np.ndarray, *, k: int = 10, threshold: float = 0.9, weight_col: str | None = None
) -> pd.DataFrame:
    """:func:`knn_propagate` on a :class:`Dataset`: a copy of its table where accepted rows get
    ``label`` and ``label_source = "propagated"``, plus ``suggested_label`` and ``confidence``."""
    codes = ds.label_indices().to_numpy()
    weight = ds.table[weight_col].fillna(1.0).to_numpy(np.float64) if weight_col else None
    result = knn_propagate(embeddings, codes, n_classes=len(ds.classes), k=k, threshold=threshold, sample_weight=weight)
    names = np.asarray(ds.classes, dtype=object)
    table = ds.table.copy()
    table["suggested_label"] = np.where(result.suggested >= 0, names[np.maximum(result.suggested, 0)], None)
    given = table["confidence"].fillna(1.0).to_numpy() if "confidence" in table else 1.0
    table["confidence"] = np.where(codes >= 0, given, result.confidence)
    table.loc[result.accepted, "label"] = table.loc[result.accepted, "suggested_label"]
    table.loc[result.accepted, "label_source"] = "propagated"
    table.loc[result.accepted, "split"] = "train"
    return table


def _inputs(arguments: Any) -> tuple[list[Any], list[Any]]:
    data, labels = Path(arguments["data"]), arguments["labels"]
    return ([labels] + ([] if data.is_dir() else [data])), ([data] if data.is_dir() else [])


@recorded("propagate", inputs=_inputs)
def propagate(
    data: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    k: int = 10,
    threshold: float = 0.9,
    min_confidence: float = 0.0,
    backbone: str | None = None,
    size: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    random_state: int = 0,
    html: bool = True,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Crowd labels (``labels.csv`` of ``aggregate``, or its folder) on the images of ``data``,
    spread to the rest by :func:`knn_propagate` on ``backbone`` embeddings (default: ImageNet
    features for colour photos, ``pixels`` otherwise).

    ``data``: an ImageFolder (its given labels are kept), a folder of unlabeled images (every
    image below it), or any labelwise input. Given labels are never replaced: crowd labels
    fill only images without one (a crowd label that contradicts a given one is counted and
    warned about), and the neighbours' vote fills the rest. Crowd labels with confidence below
    ``min_confidence`` are not trusted (the image stays unlabeled). Writes ``dataset.csv`` +
    ``classes.json`` (``label_source`` given / crowd / propagated), ``propagated.csv`` and a
    report.
    """
    from ..data.natural import natural_sorted
    from ..features import embed

    out, data, labels = Path(out), Path(data), Path(labels)
    crowd = _read_labels(labels)
    ds = _dataset(data, set(crowd["label"]))
    table = ds.table.copy()
    ids = set(crowd["task"])
    by_path = {os.path.abspath(p): t for t, p in zip(crowd["task"], crowd["path"]) if p}
    task_of = pd.Series(
        [sid if sid in ids else by_path.get(os.path.abspath(p)) for sid, p in zip(table["sample_id"], table["path"])],
        index=table.index,
        dtype=object,
    )
    crowd = crowd.set_index("task")
    found, conf = task_of.map(crowd["label"]), task_of.map(crowd["confidence"]).astype(float)
    unknown = sorted(ids - set(task_of.dropna()))
    if not found.notna().any():
        raise LabelwiseError(
            f"{labels}: no task matches an image of {data} (tasks are matched by sample_id, i.e. the "
            "path below the image folder, or by the path column)"
        )
    if unknown:
        log.warning(
            "%d crowd label(s) name a task that is not an image of %s (e.g. %r)", len(unknown), data, unknown[0]
        )
    given = table["label"].notna()
    disagree = given & found.notna() & (found != table["label"])
    if disagree.any():
        log.warning(
            "%d crowd label(s) contradict the given label (e.g. %s: given %r, crowd %r); the given labels are "
            "kept (find out which is wrong with `labelwise issues`)",
            int(disagree.sum()),
            table.loc[disagree, "sample_id"].iloc[0],
            table.loc[disagree, "label"].iloc[0],
            found[disagree].iloc[0],
        )
    trusted = ~given & found.notna() & (conf >= min_confidence)
    table["label"] = found.where(trusted, table["label"])
    table["label_source"] = np.where(trusted, "crowd", np.where(given, table["label_source"].fillna("given"), None))
    table["split"] = np.where(table["label"].notna(), table["split"].where(given, "train"), "unlabeled")
    previous = table["confidence"] if "confidence" in table else pd.Series(1.0, index=table.index)
    table["confidence"] = np.where(trusted, conf, np.where(given, previous.fillna(1.0), np.nan))
    classes = natural_sorted(set(table["label"].dropna()) | set(ds.classes))
    full = Dataset(table, classes, ds.problems, ds.source)
    if backbone is None:
        from ..features import auto_backbone

        backbone, auto_size = auto_backbone(table, purpose="propagate", fallback="pixels")
        size = size or auto_size
    X = embed(
        full,
        backbone=backbone,
        size=size,
        weights=weights,
        cache_dir=cache_dir,
        device=device,
        random_state=random_state,
    )
    result = propagate_dataset(full, X, k=k, threshold=threshold, weight_col="confidence")
    pool = table["label"].isna()
    write_table(
        out / "propagated.csv",
        result.loc[pool, ["sample_id", "path", "suggested_label", "confidence"]].assign(
            accepted=result.loc[pool, "label_source"].eq("propagated")
        ),
    )
    Dataset(result.drop(columns=["suggested_label"]), classes, ds.problems, ds.source).save(out)
    info = _summary(result, pool, trusted, found.where(~given), k=k, threshold=threshold, backbone=backbone)
    info.update(given_labels=int(given.sum()), crowd_contradicts_given=int(disagree.sum()))
    write_json(out / "propagate.json", info)
    _report(out, info, html=html)
    return result


def _dataset(data: Path, crowd_classes: set[str]) -> Dataset:
    """The images of ``data`` with their given labels: an ImageFolder whose class folders are
    among the crowd's classes; any other folder is read as unlabeled images."""
    from ..data import load_dataset, read_image_files
    from ..data.readers import UNLABELED_DIR

    if not data.is_dir():
        return load_dataset(data, check=False)
    sub = [e.name for e in os.scandir(data) if e.is_dir() and not e.name.startswith(".") and e.name != UNLABELED_DIR]
    if sub and set(sub) & crowd_classes:
        return load_dataset(data, check=False)
    if sub:
        log.info(
            "%s: its sub-folders (%s) are not classes of the crowd labels; every image is read as unlabeled",
            data,
            ", ".join(sorted(sub)[:3]),
        )
    return read_image_files(data, check=False)


def _read_labels(path: Path) -> pd.DataFrame:
    file = path / "labels.csv" if path.is_dir() else path
    if not file.is_file():
        raise LabelwiseError(f"{file}: not found; run `labelwise aggregate` first")
    note_input(file)
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise LabelwiseError(f"{file}: cannot read as a table ({str(exc).strip().splitlines()[-1]})") from None
    missing = [c for c in ("task", "label") if c not in frame]
    if missing:
        raise LabelwiseError(
            f"{file}: no {', '.join(missing)} column; expected the labels.csv of `labelwise aggregate`"
        )
    frame["confidence"] = (
        pd.to_numeric(frame["confidence"], errors="coerce").fillna(1.0) if "confidence" in frame else 1.0
    )
    if "path" not in frame:
        frame["path"] = ""
    return frame.drop_duplicates("task")


def _summary(
    result: pd.DataFrame, pool: pd.Series, trusted: pd.Series, found: pd.Series, **settings: Any
) -> dict[str, Any]:
    accepted = result["label_source"].eq("propagated")
    return {
        **settings,
        "crowd_labels": int(trusted.sum()),
        "untrusted_crowd_labels": int((found.notna() & ~trusted).sum()),
        "unlabeled_before": int(pool.sum()),
        "propagated": int(accepted.sum()),
        "still_unlabeled": int(result["label"].isna().sum()),
        "propagated_per_class": result.loc[accepted, "label"].value_counts().to_dict(),
    }


def _report(out: Path, info: dict[str, Any], *, html: bool) -> None:
    rep = Report("Label propagation")
    rep.paragraph(
        f"{info['crowd_labels']:,} crowd labels spread to {info['propagated']:,} of {info['unlabeled_before']:,} "
        f"unlabeled images by a vote of their {info['k']} nearest labeled neighbours ({info['backbone']} "
        f"embeddings), accepted at a vote share ≥ {info['threshold']}; {info['still_unlabeled']:,} stay unlabeled."
    )
    if info["untrusted_crowd_labels"]:
        rep.warning(
            f"{info['untrusted_crowd_labels']} crowd labels were below --min-confidence and treated as unlabeled"
        )
    counts = pd.Series(info["propagated_per_class"], dtype="int64").rename_axis("label").reset_index(name="propagated")
    rep.table(counts)
    rep.write(out / "report.md", html=html)
