"""``labelwise explore``: class balance, missing labels, image sizes, problems and duplicates.

Images are inspected in one streaming pass (:func:`~labelwise.data.images.iter_image_info`);
only small per-image columns are kept, so memory grows with the table, not with pixels.
The sample strips decode just the few images they show.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_table
from .._progress import track
from .._run import recorded
from ..errors import LabelwiseError
from ..report import bar_chart
from .duplicates import find_duplicates
from .explore_report import UNLABELED_NAME, _report, _write_samples
from .images import iter_image_info
from .measuring import MEASURES_DIR, measure_images
from .options import ReadOptions, as_read_options, dataset_inputs
from .table import INFO_COLUMNS, Dataset

log = logging.getLogger("labelwise")

IMBALANCE_WARNING = 3.0
SAMPLES_DIR = "samples"


@dataclass
class ExploreSummary:
    """What :func:`explore` found; every figure counts usable images unless it says otherwise.

    Attributes
    ----------
    n_images : usable images (decoded without problems), labeled or not.
    n_labeled, n_unlabeled : usable images with / without a label.
    class_counts : Series of usable images per class, indexed by class name in class order.
    imbalance_ratio : largest / smallest count over classes that have images (NaN when none).
    n_problems : inputs that cannot be used (rows of ``problems.csv``).
    n_duplicate_groups : groups of byte-identical usable images.
    n_conflicting_groups : those groups whose members carry different labels.
    sizes : ``width_min``, ``width_median``, ``width_max``, and the same for ``height`` (pixels).
    common_sizes : up to 5 ``(width, height, count)``, most frequent first.
    modes, formats : image count per Pillow mode / file format.
    total_bytes : size of the usable images' files.
    warnings : the warnings logged and put in the report.
    paths : output name → path written.
    """

    source: str
    n_images: int
    n_labeled: int
    n_unlabeled: int
    class_counts: pd.Series
    imbalance_ratio: float
    n_problems: int
    n_duplicate_groups: int
    n_conflicting_groups: int
    sizes: dict[str, float]
    common_sizes: list[tuple[int, int, int]]
    modes: dict[str, int]
    formats: dict[str, int]
    total_bytes: int
    warnings: list[str]
    paths: dict[str, Path]

    def summary(self) -> dict[str, Any]:
        """What ``run.json`` records."""
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly values (NaN → ``None``)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["class_counts"] = {str(k): int(v) for k, v in self.class_counts.items()}
        d["imbalance_ratio"] = None if math.isnan(self.imbalance_ratio) else float(self.imbalance_ratio)
        d["common_sizes"] = [list(s) for s in self.common_sizes]
        d["paths"] = {k: str(v) for k, v in self.paths.items()}
        return d


@recorded("explore", inputs=dataset_inputs())
def explore(
    data: str | os.PathLike[str] | Dataset,
    out: str | os.PathLike[str],
    *,
    per_class: int = 8,
    html: bool = True,
    random_state: int = 0,
    n_jobs: int = 2,
    measure: bool = False,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> ExploreSummary:
    """Describe a dataset and write a report, plots and CSVs into ``out``.

    Parameters
    ----------
    data : anything :func:`labelwise.load_dataset` reads, or a loaded :class:`Dataset`.
    out : output folder (created). Written: ``report.md`` (+ ``report.html``),
        ``class_balance.png``, ``samples/<class>.png``, ``class_counts.csv``,
        ``problems.csv`` (path, reason), ``duplicates.csv``, ``image_stats.csv``,
        ``image_sizes.csv`` and ``images.csv`` (one row per input image).
    per_class : images per class in the sample strips (0: none).
    html : also write the self-contained ``report.html``.
    random_state : picks the sample images; the same seed gives the same report.
    n_jobs : threads that decode images.
    measure : in the same pass, measure every image for the audit (statistics in
        ``images.csv``; descriptors and thumbnails in ``measures/``, which
        :func:`labelwise.audit` takes as ``measures=``).
    read : how to read ``data`` (:class:`~labelwise.data.ReadOptions`).
    overwrite : replace the results of an earlier run in ``out``.

    Returns
    -------
    ExploreSummary
        The figures of the report. A class imbalance above 3:1, unusable inputs, classes
        without images and duplicates with conflicting labels are logged as warnings.

    Examples
    --------
    >>> import tempfile, labelwise
    >>> from labelwise._demo import make_demo_images
    >>> tmp = tempfile.mkdtemp()
    >>> _ = make_demo_images(tmp + "/images")
    >>> summary = labelwise.explore(tmp + "/images", tmp + "/explore", per_class=4)
    >>> summary.n_images, summary.n_unlabeled, len(summary.class_counts)
    (1797, 359, 10)
    >>> summary.paths["report"].name
    'report.md'
    """
    if per_class < 0:
        raise LabelwiseError(f"per_class must be 0 or more, got {per_class}")
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, check=False, n_jobs=n_jobs)
    if ds.table.empty:
        raise LabelwiseError(f"{ds.source or data}: no images to explore")
    out = Path(out)
    seed = random_state

    images = _scan(ds.table, n_jobs=n_jobs, measures=out / MEASURES_DIR if measure else None)
    ok = images["problem"].isna().to_numpy()
    good = images[ok]
    problems = pd.concat(
        [ds.problems, images.loc[~ok, ["path", "problem"]].rename(columns={"problem": "reason"})], ignore_index=True
    )

    counts = good["label"].value_counts().reindex(ds.classes, fill_value=0).astype("int64")
    counts.index.name, counts.name = "class", "images"
    n_unlabeled = int(good["label"].isna().sum())
    present = counts[counts > 0]
    ratio = float(present.max() / present.min()) if len(present) else math.nan
    duplicates = find_duplicates(good)
    n_groups = int(duplicates["group"].nunique())
    n_conflicting = int(duplicates.loc[duplicates["conflicting_labels"].astype(bool), "group"].nunique())
    warnings = _warnings(counts, ratio, problems, n_conflicting)
    for message in warnings:
        log.warning("%s", message)

    class_table = counts.reset_index()
    class_table["share"] = (counts / max(int(counts.sum()), 1)).round(4).to_numpy()
    class_table["problems"] = (
        images.loc[~ok, "label"].value_counts().reindex(ds.classes, fill_value=0).astype("int64").to_numpy()
    )
    stats, size_table = _image_stats(good)
    paths = {
        "class_counts": write_table(out / "class_counts.csv", class_table),
        "problems": write_table(out / "problems.csv", problems),
        "duplicates": write_table(out / "duplicates.csv", duplicates),
        "image_stats": write_table(out / "image_stats.csv", stats),
        "image_sizes": write_table(out / "image_sizes.csv", size_table),
        "images": write_table(out / "images.csv", images),
    }
    paths["class_balance"] = bar_chart(
        counts,
        out / "class_balance.png",
        extra=pd.Series({UNLABELED_NAME: n_unlabeled}) if n_unlabeled else None,
        title="Usable images per class",
        xlabel="images",
    )
    samples = _write_samples(good, ds.classes, out / SAMPLES_DIR, per_class=per_class, seed=seed)

    reducers: dict[str, Callable[[np.ndarray], Any]] = {"min": np.min, "median": np.median, "max": np.max}
    sizes = {
        f"{dim}_{stat}": float(reduce(good[dim].to_numpy(dtype=np.int64))) if len(good) else math.nan
        for dim in ("width", "height")
        for stat, reduce in reducers.items()
    }
    summary = ExploreSummary(
        source=ds.source,
        n_images=len(good),
        n_labeled=int(counts.sum()),
        n_unlabeled=n_unlabeled,
        class_counts=counts,
        imbalance_ratio=ratio,
        n_problems=len(problems),
        n_duplicate_groups=n_groups,
        n_conflicting_groups=n_conflicting,
        sizes=sizes,
        common_sizes=[
            (int(w), int(h), int(c)) for w, h, c in size_table[["width", "height", "count"]].head(5).to_numpy()
        ],
        modes={str(k): int(v) for k, v in good["mode"].value_counts().items()},
        formats={str(k): int(v) for k, v in good["format"].value_counts().items()},
        total_bytes=int(good["n_bytes"].sum()),
        warnings=warnings,
        paths=paths,
    )
    report_paths = _report(summary, class_table, stats, size_table, problems, duplicates, samples).write(
        out / "report.md", html=html
    )
    paths["report"] = report_paths[0]
    if html:
        paths["report_html"] = report_paths[1]
    log.info("explore: %d usable images, %d problems; report in %s", summary.n_images, summary.n_problems, out)
    return summary


def _scan(table: pd.DataFrame, *, n_jobs: int, measures: Path | None = None) -> pd.DataFrame:
    """The table's key columns plus what inspecting each image found (``problem`` is None if usable);
    with ``measures``, the images' statistics too (their descriptors and thumbnails saved there)."""
    images = table[["sample_id", "path", "label", "split"]].copy()
    if measures is not None:
        measured = measure_images(
            table["path"].tolist(), n_jobs=n_jobs, folder=measures, description="Inspecting images"
        )
        for col in measured.table.columns.drop("path"):
            images[col] = measured.table[col].to_numpy()
        return images
    if set(INFO_COLUMNS) <= set(table.columns) and table["content_hash"].notna().all():
        for col in INFO_COLUMNS:  # a checked Dataset: rows are usable and already inspected
            images[col] = table[col].to_numpy()
        images["problem"] = None
        return images
    n = len(table)
    hashes: list[str | None] = [None] * n
    modes: list[str | None] = [None] * n
    formats: list[str | None] = [None] * n
    problem: list[str | None] = [None] * n
    numbers = np.full((3, n), -1, dtype=np.int64)  # n_bytes, width, height
    infos = iter_image_info(iter(table["path"]), n_jobs=n_jobs)
    for i, info in enumerate(track(infos, total=n, description="Inspecting images")):
        # Copy scalars out and drop the ImageInfo: only these columns outlive the loop.
        hashes[i], modes[i], formats[i], problem[i] = info.content_hash, info.mode, info.format, info.problem
        for row, value in enumerate((info.n_bytes, info.width, info.height)):
            if value is not None:
                numbers[row, i] = value
    images["content_hash"] = hashes
    for row, col in enumerate(("n_bytes", "width", "height")):
        images[col] = pd.arrays.IntegerArray(numbers[row], numbers[row] < 0)
    images["mode"] = modes
    images["format"] = formats
    images["problem"] = problem
    return images


def _warnings(counts: pd.Series, ratio: float, problems: pd.DataFrame, n_conflicting: int) -> list[str]:
    found = []
    if counts.sum() == 0:
        found.append("no usable labeled images")
    if ratio > IMBALANCE_WARNING:
        present = counts[counts > 0]
        found.append(
            f"class imbalance {ratio:.1f}:1 (largest {present.idxmax()!r}: {present.max()} images, smallest "
            f"{present.idxmin()!r}: {present.min()}); use stratified splits and check per-class metrics"
        )
    empty = counts.index[counts == 0].tolist()
    if empty:
        found.append(f"{len(empty)} class(es) have no usable images: {', '.join(map(repr, empty[:10]))}")
    if len(problems):
        found.append(f"{len(problems)} input(s) cannot be used (see problems.csv)")
    if n_conflicting:
        found.append(f"{n_conflicting} group(s) of identical images carry different labels (see duplicates.csv)")
    return found


def _image_stats(good: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    stats = pd.DataFrame(
        [
            {
                "quantity": col,
                "min": values.min(),
                "median": values.median(),
                "mean": round(float(values.mean()), 2),
                "max": values.max(),
            }
            for col in ("width", "height", "n_bytes")
            for values in [good[col].astype("int64")]
        ]
    )
    sizes = good.groupby(["width", "height"]).size().reset_index(name="count")
    sizes = sizes.sort_values(["count", "width", "height"], ascending=[False, True, True], kind="stable")
    sizes["share"] = (sizes["count"] / max(len(good), 1)).round(4)
    return stats, sizes.reset_index(drop=True)
