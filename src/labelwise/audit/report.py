"""The audit's report: a summary table, then per issue type a thumbnail grid of the images
found (pairs side by side) and the distribution of its score with the threshold marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .._io import save_figure
from ..data.images import open_image
from ..report import Report, new_figure, save_image, thumbnail_strip

SHOWN = 24  # images (or pairs) per issue type in the report
PAIRWISE_ISSUES = ("leak", "near_duplicate", "conflict")


def write_report(
    out: Path,
    findings: pd.DataFrame,
    summary: pd.DataFrame,
    scores: pd.DataFrame,
    thresholds: dict[str, float],
    paths_by_id: dict[str, str],
    *,
    warnings: list[str],
    html: bool,
) -> list[Path]:
    report = Report("Audit")
    report.paragraph(
        f"{int(summary['images_checked'].max()) if len(summary) else 0:,} images checked. One row per finding in "
        "`audit.csv`; every image's scores in `scores.csv`. Leaks come first: a near-duplicate of an evaluation "
        "image in the training data makes the evaluation optimistic."
    )
    for message in warnings:
        report.warning(message)
    report.table(summary)
    for issue in summary.loc[summary["findings"] > 0, "issue"]:
        report.heading(issue.replace("_", " "))
        found = findings[findings["issue"] == issue].sort_values("score", ascending=False, kind="stable")
        grid = _grid(found, paths_by_id, pairs=issue in PAIRWISE_ISSUES)
        if grid is not None:
            name = f"{issue}.png"
            report.image(save_image(grid, out / "images" / name), f"{issue}: the {min(len(found), SHOWN)} first")
        if issue in scores.columns:
            report.image(_histogram(scores[issue], thresholds[issue], issue, out / "plots" / f"{issue}_scores.png"), "")
    return report.write(out / "report.md", html=html)


def _grid(found: pd.DataFrame, paths_by_id: dict[str, str], *, pairs: bool) -> Image.Image | None:
    images: list[Image.Image] = []
    seen: set[frozenset[str]] = set()
    for sample_id, related in zip(found["sample_id"], found["related_sample_id"], strict=True):
        if pairs:
            key = frozenset((sample_id, related))
            if key in seen:
                continue
            seen.add(key)
            members = [sample_id, related]
        else:
            members = [sample_id]
        try:
            images.extend(open_image(paths_by_id[m]) for m in members)
        except (OSError, ValueError, KeyError):
            continue
        if len(seen if pairs else images) >= SHOWN:
            break
    return thumbnail_strip(images, size=64, columns=8) if images else None


def _histogram(values: pd.Series, threshold: float, issue: str, path: Path) -> Path:
    finite = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = finite[np.isfinite(finite)]
    fig = new_figure(6.0, 2.4)
    ax = fig.add_subplot()
    ax.hist(finite, bins=60, color="#4c72b0", log=True)
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel(f"{issue} score")
    ax.set_ylabel("images")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return save_figure(fig, path, dpi=90)
