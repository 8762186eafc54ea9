"""``query``: choose the unlabeled images of a dataset that humans should label next."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_json, write_table, write_text
from .._run import recorded
from ..data import Dataset
from ..data.audit_table import audit_groups
from ..data.near_duplicates import near_duplicate_groups
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError
from .models import DEFAULT_MODEL, SEMI_SUPERVISED, get_loop_model, make_model
from .selection import check_budget
from .strategies import DEFAULT_STRATEGY, get_strategy, select

log = logging.getLogger("labelwise")


@dataclass
class QueryResult:
    """``table``: the picks, best first (``rank, sample_id, path, score, predicted_label,
    probability``); ``figures``: counts and what produced the scores."""

    table: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return dict(self.figures)


@recorded("query", inputs=dataset_inputs(files=("weights", "root", "audit")))
def query(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    n: int,
    strategy: str = DEFAULT_STRATEGY,
    model: str = DEFAULT_MODEL,
    semi: bool = False,
    backbone: str | None = None,
    size: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    pca: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    epochs: int = 30,
    pretrained: bool = True,
    device: str = "auto",
    batch_size: int = 4096,
    root: str | os.PathLike[str] | None = None,
    url_prefix: str | None = None,
    html: bool = True,
    near_duplicates: bool = True,
    audit: str | os.PathLike[str] | pd.DataFrame | None = None,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> QueryResult:
    """Pick ``n`` unlabeled images of ``data`` to label next.

    The labeled images (outside the ``test`` split) fit ``model`` on ``backbone``
    embeddings (cached; default :func:`~labelwise.features.auto_backbone`: ImageNet features for
    colour photos, else ``simclr`` when PyTorch is installed, else ``pixels``);
    ``strategy`` (see :func:`~labelwise.active.list_strategies`) then ranks the unlabeled
    ones. The model's prediction for each pick becomes a Label Studio pre-annotation. With
    ``near_duplicates`` (the default) a person is never asked twice about one picture: an image
    that is a near-duplicate of a labeled image or of an earlier pick is skipped (the batch may
    then hold fewer than ``n``; ``n_skipped_near_duplicates`` says how many were skipped). The
    groups are measured, or taken from an ``audit.csv`` given as ``audit``.

    Writes to ``out``: ``query.csv`` (``rank, sample_id, path, score, predicted_label,
    probability``; ``score`` is the strategy's, higher = more useful),
    ``label_studio_tasks.json`` (import JSON: ``data.al_score``/``al_rank`` to sort on, the
    prediction with ``score`` = its probability and ``model_version`` naming strategy, model
    and embedding), ``labeling_config.xml`` and ``report.md``.

    Raises
    ------
    LabelwiseError
        Unknown strategy or model, or fewer than ``n`` unlabeled images.
    """
    from ..features import auto_backbone, embed

    t0 = time.perf_counter()
    get_strategy(strategy)
    info_model = get_loop_model(model)
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, n_jobs=n_jobs)
    table = ds.table
    if "split" in table.columns:
        table = table[table["split"].astype(str) != "test"]
    table = table.reset_index(drop=True)
    if backbone is None:
        backbone, auto_size = auto_backbone(table, purpose="query")
        size = size or auto_size
    unlabeled = table["label"].isna().to_numpy()
    where = ds.source or "data"
    if not unlabeled.any():
        raise LabelwiseError(f"{where}: no unlabeled images to choose from")
    check_budget(n, int(unlabeled.sum()))
    if not ds.classes:
        log.warning("%s: no labels and no class list, so labeling_config.xml lists no classes; pass --classes", where)
    labels = Dataset(table, ds.classes).label_indices().to_numpy()
    unknown = ~unlabeled & (labels < 0)
    if unknown.any():
        raise LabelwiseError(
            f"{where}: label {table.loc[unknown, 'label'].iloc[0]!r} (sample "
            f"{table.loc[unknown, 'sample_id'].iloc[0]!r}) is not in the class list ({', '.join(ds.classes[:10])})"
        )
    pool = Dataset(table, ds.classes, source=ds.source)
    embeddings = embed(
        pool,
        backbone=backbone,
        size=size,
        weights=weights,
        pca=pca,
        cache_dir=cache_dir,
        device=device,
        random_state=random_state,
    )
    inputs = pixels_of(pool, model, n_jobs=n_jobs) if info_model.input == "pixels" else None
    fitted = None
    if (labels >= 0).any():
        fitted = make_model(
            model,
            len(ds.classes),
            semi=semi,
            epochs=epochs,
            pretrained=pretrained,
            device=device,
            embeddings=embeddings,
            random_state=random_state,
        )
        fitted.fit(embeddings if inputs is None else inputs, labels)
    elif get_strategy(strategy).needs_model:
        raise LabelwiseError(
            f"{where}: no labeled images, so strategy {strategy!r} has no model to ask; use typiclust (or auto)"
        )
    groups = None
    if audit is not None:
        groups = audit_groups(table, audit).to_numpy()
    elif near_duplicates:
        groups = near_duplicate_groups(table, n_jobs=n_jobs).to_numpy()
    extra = 0 if groups is None else min(n, int(((groups >= 0) & (labels < 0)).sum()))
    picked = select(
        embeddings,
        labels,
        min(n + extra, int((labels < 0).sum())),
        strategy=strategy,
        model=fitted,
        inputs=inputs,
        n_classes=len(ds.classes),
        batch_size=batch_size,
        random_state=random_state,
    )
    rows, scores, skipped = _once_per_picture(picked.rows, picked.scores, labels, groups, n)
    if skipped:
        log.info("query: %d near-duplicate(s) of images labeled or already chosen skipped", skipped)
    result = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "sample_id": table["sample_id"].to_numpy()[rows],
            "path": table["path"].to_numpy()[rows],
            "score": np.round(scores, 6),
        }
    )
    if fitted is not None:
        probs = fitted.proba_rows(rows)
        result["predicted_label"] = np.asarray(ds.classes, dtype=object)[probs.argmax(1)]
        result["probability"] = np.round(probs.max(1), 6)
    else:
        result["predicted_label"] = None
        result["probability"] = np.nan
    semi = semi and model not in SEMI_SUPERVISED
    version = f"labelwise-{strategy}-{model}{'-semi' if semi else ''}-{backbone}{f'-pca{pca}' if pca else ''}"
    info = {
        "n_picked": len(result),
        "n_skipped_near_duplicates": skipped,
        "n_unlabeled": int(unlabeled.sum()),
        "n_labeled": int((labels >= 0).sum()),
        "strategy": strategy,
        "model": model,
        "semi": semi,
        "backbone": backbone,
        "pca": pca,
        "model_version": version,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if out is not None:
        _write(Path(out), result, ds.classes, info, root=root, url_prefix=url_prefix, html=html)
    return QueryResult(result, info)


def _once_per_picture(
    rows: np.ndarray, scores: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The first ``n`` of ``rows`` (in rank order) that are not near-duplicates of a labeled image or
    of an earlier pick, their scores, and how many were skipped."""
    if groups is None:
        return rows[:n], scores[:n], 0
    seen = set(groups[(labels >= 0) & (groups >= 0)].tolist())
    keep = []
    for k, row in enumerate(rows):
        group = int(groups[row])
        if group >= 0 and group in seen:
            continue
        if group >= 0:
            seen.add(group)
        keep.append(k)
        if len(keep) == n:
            break
    chosen = np.asarray(keep, dtype=np.int64)
    return rows[chosen], scores[chosen], (chosen[-1] + 1 - len(chosen)) if len(chosen) else 0


def pixels_of(ds: Dataset, model: str = "cnn", *, n_jobs: int = 2) -> np.ndarray:
    """The images of ``ds`` as one uint8 array for the loop model ``model`` (a network on
    pixels): the dataset's common side (16–64 px, at least what the network takes), in the
    network's channels."""
    from ..data.pixels import infer_channels, infer_size, load_pixels
    from ..train.models import get_model_spec

    spec = get_model_spec(model)
    size = max(infer_size(ds.table), spec.min_size)
    return load_pixels(ds.table["path"].tolist(), size, spec.channels or infer_channels(ds.table), n_jobs=n_jobs)


def _write(
    out: Path,
    result: pd.DataFrame,
    classes: list[str],
    info: dict[str, Any],
    *,
    root: Any,
    url_prefix: str | None,
    html: bool,
) -> None:
    from ..formats.labeling import label_studio_tasks, labeling_config
    from ..report import Report

    write_table(out / "query.csv", result)
    ls = result.rename(columns={"score": "al_score", "rank": "al_rank"})
    tasks = label_studio_tasks(
        ls,
        root=root,
        url_prefix=url_prefix,
        prediction_col="predicted_label",
        score_col="probability",
        data_cols=("al_rank", "al_score"),
        model_version=info["model_version"],
    )
    write_json(out / "label_studio_tasks.json", tasks)
    write_text(out / "labeling_config.xml", labeling_config(classes))
    rep = Report("labelwise query")
    rep.paragraph(
        f"{info['n_picked']} of {info['n_unlabeled']} unlabeled images chosen by `{info['strategy']}` "
        f"(model `{info['model']}` on `{info['backbone']}` embeddings, fitted on {info['n_labeled']} labels)."
    )
    rep.paragraph(
        "Label them in this order: `query.csv`, or import `label_studio_tasks.json` into Label Studio "
        "(sort by `al_rank`; the model's guess is a pre-annotation)."
    )
    rep.heading("First picks")
    rep.table(result.head(20), max_rows=20, note_file="query.csv")
    rep.write(out / "report.md", html=html)
