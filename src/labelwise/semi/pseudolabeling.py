"""``pseudolabel``: pseudo-label a dataset's unlabeled images and write what a human should label."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_json, write_table, write_text
from .._run import recorded
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError
from ..features import auto_backbone
from .accuracy import NOT_PROBLEMATIC, coverage_table, cross_validate_seeds
from .asking import skip_near_duplicates
from .ensemble import DEFAULT_METHOD
from .pseudo import PseudoLabels, pseudo_label

log = logging.getLogger("labelwise")

MODEL_VERSION = "labelwise-pseudolabel"


@dataclass
class PseudolabelResult:
    """What :func:`pseudolabel` found.

    Attributes
    ----------
    table : ``pseudo_labels.csv``, one row per image that took part.
    dataset : the input with the pseudo labels (``label_source`` given / pseudo and a
        ``confidence`` column): what ``labelwise train`` takes (``dataset.csv``).
    coverage : coverage of the pool vs estimated accuracy (``coverage.csv``).
    figures : the figures of ``summary.json``.
    """

    table: pd.DataFrame
    dataset: Dataset
    coverage: pd.DataFrame
    figures: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.figures.items() if k != "per_class"}


@recorded("pseudolabel", inputs=dataset_inputs(files=("weights", "ls_root", "audit")))
def pseudolabel(
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    method: str = DEFAULT_METHOD,
    budget: int | None = None,
    threshold: float | None = None,
    backbone: str | None = None,
    size: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    pca: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    embeddings: np.ndarray | None = None,
    hold_out: str = "test",
    votes: bool = True,
    estimate: bool = True,
    folds: int = 5,
    map_points: int = 5000,
    ls_root: str | os.PathLike[str] | None = None,
    near_duplicates: bool = True,
    audit: str | os.PathLike[str] | pd.DataFrame | None = None,
    html: bool = True,
    random_state: int = 0,
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> PseudolabelResult:
    """Pseudo-label the unlabeled images of ``data`` from its labeled ones.

    Images are embedded by ``backbone`` (default :func:`labelwise.features.auto_backbone`: ImageNet
    features for colour photos, ``simclr`` for grayscale images; cached, see
    :func:`labelwise.embed`) or ``embeddings`` are given (rows in table order); ``method``
    (:func:`labelwise.semi.list_methods`, default ``ensemble``) labels the pool. Rows of the
    ``hold_out`` split are neither seeds nor pool: they stay as they are, so a model
    trained on the result can still be scored on them. Given labels never change; a class
    without a labeled image is reported and never predicted.

    ``threshold`` overrides the method's confidence threshold below which a row is
    problematic; ``budget`` caps the problematic set (least confident first). With
    ``estimate``, the accuracy of the pseudo labels is estimated by hiding ``folds`` folds
    of the labeled images in turn (classes with 2+ labeled images), else from confidences.

    Every unlabeled image gets a pseudo label with its confidence; the problematic ones
    (at most ``budget``) are flagged and written as labeling tasks, with their pseudo label
    as the suggestion. With ``near_duplicates`` nobody is asked twice about one picture: a
    problematic image that is a near-duplicate of a labeled one or of a more uncertain
    problematic one is not flagged (its ``why`` names that image; groups measured, or taken
    from an ``audit.csv`` given as ``audit``).

    Writes to ``out``: ``pseudo_labels.csv`` (``sample_id, path, label, source
    (given / pseudo), confidence, vote_<method>…, problematic, why``), ``dataset.csv`` +
    ``classes.json`` (for ``labelwise train``: given and pseudo labels, with
    ``confidence`` to weight the loss and ``problematic``),
    ``coverage.csv`` / ``coverage.png``, ``map.png`` (t-SNE of at most ``map_points``
    images) with ``map.csv``, the labeling tasks ``problematic.csv`` +
    ``problematic.label_studio.json`` + ``labeling_config.xml`` (URLs relative to
    ``ls_root``), ``summary.json`` and ``report.md`` (+ html).
    """
    t0 = time.perf_counter()
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, n_jobs=n_jobs)
    table = ds.table.reset_index(drop=True)
    if table.empty:
        raise LabelwiseError(f"{ds.source or 'data'}: no images")
    codes = Dataset(table, ds.classes).label_indices().to_numpy()
    unknown = table["label"].notna() & (codes < 0)
    if unknown.any():
        raise LabelwiseError(
            f"label {table.loc[unknown, 'label'].iloc[0]!r} (sample {table.loc[unknown, 'sample_id'].iloc[0]!r}) "
            f"is not in the class list ({', '.join(ds.classes[:10])})"
        )
    held = table["split"].eq(hold_out).to_numpy() & (codes >= 0) if "split" in table else np.zeros(len(table), bool)
    rows = np.flatnonzero(~held)
    y = codes[rows]
    if not (y >= 0).any():
        raise LabelwiseError(
            f"{ds.source or 'data'}: no labeled images to pseudo-label from"
            + (f" outside the {hold_out!r} split" if held.any() else "")
        )
    counts = np.bincount(y[y >= 0], minlength=len(ds.classes))
    if (counts > 0).sum() < 2:
        raise LabelwiseError(
            f"{ds.source or 'data'}: only class {ds.classes[int(np.flatnonzero(counts)[0])]!r} has labeled "
            "images; pseudo-labeling needs labeled images of at least two classes (else every image "
            "would get that one label)"
        )
    unseeded = [c for c, n in zip(ds.classes, counts) if n == 0]
    if unseeded:
        log.warning(
            "class(es) without a labeled image: %s; no image is pseudo-labeled as %s (label a few and rerun)",
            ", ".join(map(str, unseeded)),
            "them" if len(unseeded) > 1 else "it",
        )

    if backbone is None and embeddings is None:
        backbone, auto_size = auto_backbone(table, purpose="pseudolabel")
        size = size or auto_size
    X = _embeddings(
        Dataset(table, ds.classes, ds.problems, ds.source),
        embeddings,
        backbone=backbone,
        size=size,
        weights=weights,
        pca=pca,
        cache_dir=cache_dir,
        device=device,
        random_state=random_state,
    )[rows]
    options = {method: {"threshold": threshold}} if threshold is not None else {}
    found = pseudo_label(
        X,
        y,
        method=method,
        n_classes=len(ds.classes),
        budget=budget,
        votes=votes,
        random_state=random_state,
        options=options,
    )
    skipped = 0
    if near_duplicates or audit is not None:
        skipped = skip_near_duplicates(table, codes, rows, found, audit=audit, budget=budget, n_jobs=n_jobs)
    held_out = None
    if estimate and (y < 0).any():
        held_out = cross_validate_seeds(
            X,
            y,
            method=method,
            n_classes=len(ds.classes),
            folds=folds,
            random_state=random_state,
            options=options.get(method),
        )
    pool = y < 0
    coverage = coverage_table(found.confidence[pool], found.vouched[pool], held_out)
    part = table.iloc[rows].reset_index(drop=True)
    result_table = _result_table(part, found, ds.classes)
    labeled = _labeled_dataset(ds, table, rows, found)
    summary = _summary(
        found,
        y,
        ds.classes,
        unseeded,
        coverage,
        held_out,
        method=method,
        backbone=backbone,
        budget=budget,
        n_held=int(held.sum()),
        hold_out=hold_out,
    )
    summary["n_uncertain_over_budget"] -= skipped
    summary["n_skipped_near_duplicates"] = skipped
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    if out is not None:
        _write(
            Path(out),
            result_table,
            labeled,
            coverage,
            summary,
            X,
            found,
            ds.classes,
            map_points=map_points,
            ls_root=ls_root,
            html=html,
            random_state=random_state,
        )
    return PseudolabelResult(result_table, labeled, coverage, summary)


def _embeddings(ds: Dataset, given: np.ndarray | None, **options: Any) -> np.ndarray:
    if given is not None:
        given = np.asarray(given)
        if given.ndim != 2 or len(given) != len(ds.table):
            raise LabelwiseError(f"embeddings must be (n_images, d) with n_images = {len(ds.table)}; got {given.shape}")
        return given
    from ..features import embed

    return embed(ds, **options)


def _result_table(part: pd.DataFrame, found: PseudoLabels, classes: list[str]) -> pd.DataFrame:
    names = np.asarray(classes, dtype=object)
    frame = pd.DataFrame(
        {
            "sample_id": part["sample_id"].astype(str),
            "path": part["path"].astype(str),
            "label": names[found.labels],
            "source": found.source,
            "confidence": np.round(found.confidence, 6),
        }
    )
    for name, vote in found.votes.items():
        frame[f"vote_{name}"] = names[vote]
    frame["problematic"] = found.problematic
    frame["why"] = found.why
    return frame


def _labeled_dataset(ds: Dataset, table: pd.DataFrame, rows: np.ndarray, found: PseudoLabels) -> Dataset:
    """The input table with the pseudo labels: ``label_source`` pseudo, ``split`` train,
    ``confidence`` (1 for given labels) and ``problematic``."""
    out = table.copy()
    mine = found.source == "pseudo"
    pseudo = rows[mine]
    names = np.asarray(ds.classes, dtype=object)
    out["confidence"] = np.where(out["label"].notna(), 1.0, np.nan)
    out["problematic"] = False
    out.loc[pseudo, "label"] = names[found.labels[mine]]
    out.loc[pseudo, "label_source"] = "pseudo"
    out.loc[pseudo, "split"] = "train"
    out.loc[pseudo, "confidence"] = np.round(found.confidence[mine], 6)
    out.loc[pseudo, "problematic"] = found.problematic[mine]
    return Dataset(out, ds.classes, ds.problems, ds.source)


def _summary(
    found: PseudoLabels,
    y: np.ndarray,
    classes: list[str],
    unseeded: list[str],
    coverage: pd.DataFrame,
    held: Any,
    **settings: Any,
) -> dict[str, Any]:
    pool = y < 0
    rows = coverage.set_index("coverage")
    every, vouched = rows.loc["top 100%"], rows.loc[NOT_PROBLEMATIC]
    per_class = pd.DataFrame(
        {
            "class": classes,
            "given": np.bincount(y[y >= 0], minlength=len(classes)),
            "pseudo": np.bincount(found.labels[found.source == "pseudo"], minlength=len(classes)),
            "not_problematic": np.bincount(found.labels[found.vouched], minlength=len(classes)),
            "problematic": np.bincount(found.labels[found.problematic], minlength=len(classes)),
        }
    )

    def figure(value: Any) -> float | None:
        return None if pd.isna(value) else float(value)

    return {
        **settings,
        "n_images": int(len(y)),
        "n_given": int((y >= 0).sum()),
        "n_unlabeled": int(pool.sum()),
        "n_pseudo": found.n_pseudo,
        "n_not_problematic": int(found.vouched.sum()),
        "n_problematic": int(found.problematic.sum()),
        "n_uncertain_over_budget": int((pool & ~found.vouched & ~found.problematic).sum()),
        "estimated_accuracy": figure(every["estimated_accuracy"]),
        "estimated_accuracy_not_problematic": figure(vouched["estimated_accuracy"]),
        "estimate": str(every["estimate"])
        + (f" ({held.folds}-fold, {len(held.correct)} images)" if held is not None else ""),
        "classes_without_seed": unseeded,
        "per_class": per_class.to_dict("records"),
    }


def _write(
    out: Path,
    table: pd.DataFrame,
    labeled: Dataset,
    coverage: pd.DataFrame,
    summary: dict[str, Any],
    X: np.ndarray,
    found: PseudoLabels,
    classes: list[str],
    *,
    map_points: int,
    ls_root: Any,
    html: bool,
    random_state: int,
) -> None:
    from ..formats.labeling import label_studio_tasks, labeling_config
    from .plots import map_coordinates, plot_coverage, plot_map

    write_table(out / "pseudo_labels.csv", table)
    labeled.save(out)
    write_table(out / "coverage.csv", coverage)
    plot_coverage(coverage, out / "coverage.png")
    tasks = table[table["problematic"]].assign(rank=lambda t: t["confidence"].rank(method="first").astype(int))
    tasks = tasks.sort_values("rank").rename(columns={"label": "suggested_label"})
    tasks = tasks[["rank", "sample_id", "path", "suggested_label", "confidence", "why"]]
    write_table(out / "problematic.csv", tasks)
    write_json(
        out / "problematic.label_studio.json",
        label_studio_tasks(
            tasks,
            root=ls_root,
            prediction_col="suggested_label",
            score_col="confidence",
            data_cols=("why",),
            model_version=MODEL_VERSION,
        ),
    )
    write_text(out / "labeling_config.xml", labeling_config(classes))
    if map_points > 0:
        given = found.source == "given"
        state = np.where(found.problematic, "problematic", np.where(given | found.vouched, found.source, "uncertain"))
        keep = given if given.sum() <= map_points else np.zeros(len(given), bool)
        rows, xy = map_coordinates(X, max_points=map_points, keep=keep, random_state=random_state)
        plot_map(xy, np.asarray(classes, dtype=object)[found.labels[rows]], state[rows], classes, out / "map.png")
        write_table(
            out / "map.csv",
            pd.DataFrame(
                {
                    "sample_id": table["sample_id"].to_numpy()[rows],
                    "x": xy[:, 0].round(4),
                    "y": xy[:, 1].round(4),
                    "state": state[rows],
                }
            ),
        )
    write_json(out / "summary.json", summary)
    _report(out, summary, coverage, tasks, html=html, with_map=map_points > 0)


def _report(
    out: Path, summary: dict[str, Any], coverage: pd.DataFrame, tasks: pd.DataFrame, *, html: bool, with_map: bool
) -> None:
    from ..report import Report

    rep = Report("labelwise pseudolabel")
    acc = summary["estimated_accuracy"]
    sure = summary["estimated_accuracy_not_problematic"]
    rep.paragraph(
        f"{summary['n_pseudo']:,} unlabeled images got a pseudo label from {summary['n_given']:,} labeled ones (method "
        f"`{summary['method']}`, embeddings `{summary['backbone'] or 'given'}`)"
        + (
            f"; estimated accuracy {acc:.1%}, and {sure:.1%} on the {summary['n_not_problematic']:,} that are not "
            f"problematic, from {summary['estimate']}."
            if acc is not None and sure is not None
            else "."
        )
    )
    rep.paragraph(
        f"{summary['n_problematic']:,} images are problematic: worth a human's time (`problematic.csv`, "
        f"`problematic.label_studio.json`)"
        + (f", capped by the budget of {summary['budget']:,}" if summary["budget"] is not None else "")
        + (f"; {summary['n_uncertain_over_budget']:,} more are uncertain" if summary["n_uncertain_over_budget"] else "")
        + ". `dataset.csv` holds the given and pseudo labels for `labelwise train`, the pseudo ones with "
        "their `confidence` to weight the loss (`--weight-col confidence`)."
    )
    if summary["estimate"].startswith("mean confidence") and summary["n_pseudo"]:
        rep.warning(
            "no class has 2 labeled images, so the pseudo labels cannot be checked against hidden ones: the "
            "estimated accuracy is their mean confidence, which can be far off (bench/semi.py, MNIST-5k with 1 "
            "label per class: 0.64 estimated, 0.93 measured); label a second image per class"
        )
    if summary["classes_without_seed"]:
        rep.warning(
            f"no labeled image of class(es) {', '.join(map(str, summary['classes_without_seed']))}: none is "
            "pseudo-labeled as such; label a few and rerun"
        )
    if summary["n_held"]:
        rep.paragraph(f"{summary['n_held']:,} labeled images of the `{summary['hold_out']}` split were left out.")
    rep.heading("Coverage and estimated accuracy")
    rep.paragraph(
        "Pool images ranked by confidence. The estimate is the accuracy of labeled images that were hidden "
        "and pseudo-labeled like the pool, at least as confident as the cut-off (with fewer seeds than the "
        "real run, and scored against the given labels, wrong ones included, so it leans pessimistic); "
        "without enough labeled images, the mean confidence."
    )
    rep.table(coverage)
    rep.image(out / "coverage.png", "coverage vs estimated accuracy")
    if with_map:
        rep.heading("Map")
        rep.image(out / "map.png", "t-SNE map: colour = label, marker = given / pseudo / uncertain / problematic")
    rep.heading("Per class")
    rep.table(pd.DataFrame(summary["per_class"]))
    if len(tasks):
        rep.heading("Most uncertain images")
        rep.table(tasks.drop(columns=["path"]), max_rows=20, note_file="problematic.csv")
    rep.write(out / "report.md", html=html)
