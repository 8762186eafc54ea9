"""``evaluate``: score probabilities (out-of-fold, test or new predictions) against true labels."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_json, write_table
from .._run import recorded
from ..data import Dataset
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..data.table import read_classes
from ..errors import LabelwiseError
from ..formats import TrainRun
from ..formats.probabilities import (
    PROB_PREFIX,
    checked_probabilities,
    read_probability_table,
)
from ..train.metrics import classification_metrics, reliability_table

log = logging.getLogger("labelwise")


@recorded("evaluate", inputs=dataset_inputs("labels", files=("predictions",)))
def evaluate(
    predictions: pd.DataFrame | str | os.PathLike[str],
    labels: Dataset | pd.DataFrame | str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    classes: Sequence[str] | str | os.PathLike[str] | None = None,
    positive: int | str | None = None,
    n_bins: int = 15,
    html: bool = True,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Metrics of ``predictions`` against ``labels``; see :func:`classification_metrics`.

    ``predictions``: a ``train`` output folder (its ``oof_probs.csv`` or ``valid_probs.csv``
    against its own ``dataset.csv`` labels; its ``test_probs.csv`` too, under key ``test``),
    or a table/CSV/Parquet with ``sample_id`` and ``prob_<class>`` columns (a ``label`` column
    there is a prediction and is never used as truth). ``labels``: a :class:`Dataset`, a
    DataFrame with ``sample_id, label``, or anything :func:`labelwise.load_dataset` reads (as
    ``read`` says: an ordered label file needs ``read.images``); rows are joined on ``sample_id``. ``classes``: class order (list or ``classes.json``);
    default the ``classes.json`` beside the predictions, else the ``prob_`` column order.
    Rows without a true label are skipped (``n_skipped``, and a warning); probability rows
    must sum to 1 (±1e-3). With ``out``, writes ``metrics.json``, ``per_class.csv``,
    ``confusion_matrix.csv/.png``, ``reliability.csv/.png`` and ``report.md`` (+ ``.html``),
    and the same for the test split in ``out/test/``. Returns the metrics plus ``source``.

    >>> preds = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "label": ["x", "x", "x", "y"],
    ...                       "prob_x": [.9, .6, .7, .2], "prob_y": [.1, .4, .3, .8]})
    >>> truth = pd.DataFrame({"sample_id": ["a", "b", "c"], "label": ["x", "y", "y"]})
    >>> m = evaluate(preds, truth)  # "d" has no true label; the "label" column is a prediction
    >>> m["n"], m["n_skipped"], round(m["accuracy"], 3), m["positive"], m["frr"]
    (3, 1, 0.333, 'y', 1.0)
    """
    test_part = None
    if not isinstance(predictions, pd.DataFrame) and Path(predictions).is_dir():
        run = TrainRun(predictions)
        held = run.held_out
        if held is None:
            raise LabelwiseError(
                f"{run.folder}: no {' or '.join(f'{n}.csv' for n in TrainRun.HELD_OUT)}; is it a "
                "`labelwise train` output folder?"
            )
        run.check(held.name, TrainRun.CLASSES, TrainRun.TABLE, *([run.test.name] if run.test else []))
        labels = labels if labels is not None else _train_labels(run.folder)
        classes = classes if classes is not None else run.folder / TrainRun.CLASSES
        test_part = run.test
        predictions = held
    source = str(predictions) if not isinstance(predictions, pd.DataFrame) else "DataFrame"
    frame = read_probability_table(predictions)
    class_list = _classes(classes, predictions, frame)
    if labels is None:
        raise LabelwiseError(f"{source}: no true labels given; pass labels (--labels DATA)")
    truth = _truth(labels, as_read_options(read))
    result = _score(frame, truth, class_list, source, positive, n_bins)
    if test_part is not None:
        try:
            result["test"] = _score(
                read_probability_table(test_part), truth, class_list, str(test_part), positive, n_bins
            )
        except _NoMatch as exc:  # e.g. --labels that cover the training rows only
            log.warning("%s; the test split is not evaluated", exc)
            test_part = None
    if out is not None:
        _write(Path(out), result, class_list, html=html)
        if test_part is not None:
            _write(Path(out) / "test", result["test"], class_list, html=html, title="test split")
    result.pop("_reliability", None)
    if "test" in result:
        result["test"].pop("_reliability", None)
    return result


class _NoMatch(LabelwiseError):
    """No prediction row has a true label."""


def _score(
    frame: pd.DataFrame, truth: pd.Series, classes: list[str], source: str, positive: Any, n_bins: int
) -> dict[str, Any]:
    """Check ``frame`` (sample_id + prob_<class>), join it to ``truth`` and compute the metrics."""
    ids, probs = checked_probabilities(frame, classes, source)
    given = truth.reindex(ids).to_numpy()
    has = pd.notna(given)
    if not has.any():
        raise _NoMatch(
            f"{source}: no sample_id matches the labels (e.g. {ids.iloc[0]!r} here, "
            f"{truth.index[0] if len(truth) else 'none'!r} in the labels)"
        )
    if (~has).any():
        log.warning("%s: %d of %d rows have no true label and are skipped", source, int((~has).sum()), len(has))
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in given[has]} - set(lookup))
    if unknown:
        raise LabelwiseError(f"{source}: true label {unknown[0]!r} is not one of the classes {classes[:10]}")
    y = np.array([lookup[str(v)] for v in given[has]])
    result = classification_metrics(y, probs[has], classes, positive=positive, n_bins=n_bins)
    result["source"] = source
    result["n_skipped"] = int((~has).sum())
    result["_reliability"] = reliability_table(y, probs[has], n_bins)
    return result


def _classes(classes: Any, predictions: Any, frame: pd.DataFrame) -> list[str]:
    if classes is None and not isinstance(predictions, pd.DataFrame):
        beside = Path(predictions).parent / "classes.json"
        classes = beside if beside.is_file() else None
    if classes is None:
        return [str(c)[len(PROB_PREFIX) :] for c in frame.columns if str(c).startswith(PROB_PREFIX)]
    if isinstance(classes, (str, os.PathLike)):
        return read_classes(classes)
    return [str(c) for c in classes]


def _truth(labels: Any, read: ReadOptions) -> pd.Series:
    """``sample_id → label`` for labeled rows."""
    if isinstance(labels, Dataset):
        table = labels.table
    elif isinstance(labels, pd.DataFrame):
        table = labels
    else:
        table = read.load(labels, check=False).table
    if not {"sample_id", "label"} <= set(table.columns):
        raise LabelwiseError(f"labels need sample_id and label columns; found {', '.join(map(str, table.columns[:8]))}")
    label = table["label"].astype("string").str.strip().replace("", pd.NA)
    table = table.assign(label=label)[label.notna()]
    truth = pd.Series(table["label"].astype(str).to_numpy(), index=table["sample_id"].astype(str).to_numpy())
    dup = truth[truth.index.duplicated(keep=False)]
    if len(dup):
        conflict = dup.groupby(level=0).nunique()
        if (conflict > 1).any():
            sid = conflict[conflict > 1].index[0]
            raise LabelwiseError(f"labels: sample_id {sid!r} has conflicting labels {sorted(set(dup.loc[sid]))}")
        truth = truth[~truth.index.duplicated()]
    return truth


def _train_labels(folder: Path) -> pd.DataFrame:
    path = folder / TrainRun.TABLE
    if not path.is_file():
        raise LabelwiseError(f"{folder}: no dataset.csv with the training labels; pass labels (--labels DATA)")
    return pd.read_csv(path, dtype={"sample_id": str, "label": str})


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _write(out: Path, result: dict[str, Any], classes: list[str], *, html: bool, title: str = "") -> None:
    """Write the tables, plots and report of one scored part into ``out``."""
    from ..report import Report
    from .plots import plot_confusion_matrix, plot_reliability

    reliability = result["_reliability"]
    clean = {k: v for k, v in result.items() if not k.startswith("_") and k != "test"}
    write_json(out / "metrics.json", clean)
    per_class = pd.DataFrame(result["per_class"])
    write_table(out / "per_class.csv", per_class)
    confusion = pd.DataFrame(result["confusion"], index=pd.Index(classes, name="true"), columns=classes)
    write_table(out / "confusion_matrix.csv", confusion.reset_index())
    write_table(out / "reliability.csv", reliability)
    plot_confusion_matrix(result["confusion"], classes, out / "confusion_matrix.png")
    plot_reliability(reliability, out / "reliability.png", ece=result["ece"])

    rep = Report("labelwise evaluate" + (f": {title}" if title else ""))
    skipped = result["n_skipped"]
    rep.paragraph(
        f"{result['n']} labeled predictions from `{result['source']}`"
        + (f"; {skipped} rows without a true label were skipped." if skipped else ".")
    )
    keys = ["accuracy", "balanced_accuracy", "macro_f1", "log_loss", "ece", "far", "frr", "hter", "roc_auc"]
    shown = [k for k in keys if k in result]
    rep.table(pd.DataFrame({"metric": shown, "value": [_fmt(result[k]) for k in shown]}))
    if "hter" in result:
        rep.paragraph(
            f"Positive class for FAR/FRR/HTER: `{result['positive']}`. FAR: negatives predicted positive; "
            "FRR: positives predicted negative; HTER = (FAR + FRR) / 2."
        )
        if result["roc_auc"] is None:
            rep.warning(
                "only one class is present in the true labels: ROC-AUC, HTER and the rate without samples are undefined"
            )
    rep.paragraph(f"ECE over {len(reliability)} equal-width bins of the top-class confidence (0 = calibrated).")
    rep.heading("Per class")
    rep.table(per_class.round(4))
    rep.image(out / "confusion_matrix.png", "confusion matrix (rows: true class)")
    rep.image(out / "reliability.png", "reliability diagram")
    if "test" in result:
        test = result["test"]
        rep.heading("Test split")
        rep.paragraph(
            f"accuracy {test['accuracy']:.4f}, balanced accuracy {test['balanced_accuracy']:.4f}, "
            f"macro-F1 {test['macro_f1']:.4f} (n={test['n']}); details in `test/report.md`."
        )
    rep.write(out / "report.md", html=html)
