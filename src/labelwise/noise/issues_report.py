"""What ``issues`` writes: its tables, the grid of the worst issues and the report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._io import write_npy, write_table

if TYPE_CHECKING:
    from .issues import IssuesResult


def write_issues(out: Path, result: IssuesResult, probs: np.ndarray | None, *, top: int, html: bool) -> None:
    """``label_issues.csv``, ``noise_rates.csv``, ``pred_probs.npy``, ``top_issues.png`` and the report."""
    from ..report import Report

    write_table(out / "label_issues.csv", result.table)
    write_table(out / "noise_rates.csv", result.noise_rates)
    if probs is not None:
        write_npy(out / "pred_probs.npy", probs.astype(np.float32))
    worst = result.table[result.table["is_issue"]].head(top)
    if len(worst):
        _issue_grid(worst, out / "top_issues.png")
    rep = Report("labelwise issues")
    rep.paragraph(
        f"{result.n_issues} of {len(result.table)} labeled images ({result.n_issues / max(len(result.table), 1):.1%}) "
        f"have a probably wrong label (detector `{result.method}`)."
    )
    v = result.verdict
    if v:
        rep.paragraph(
            f"How sure: the evidence{' (with ImageNet features)' if v['pretrained_evidence'] else ''} is right on "
            f"an estimated {v['estimated_accuracy']:.0%} of the images and puts the share of wrong labels at "
            f"{v['estimated_noise_rate']:.1%} (about {v['expected_wrong_labels']:.0f}); `doubt` in label_issues.csv "
            "is each label's chance of being wrong, `label_quality` ranks every label."
            + (
                ""
                if v["judgeable"]
                else " **The evidence is too weak to judge labels: only the labels it is sure of are flagged.**"
            )
        )
    rep.heading("Estimated noise rate per class")
    rep.table(result.noise_rates)
    if len(worst):
        rep.image(out / "top_issues.png", "top issues: given → suggested")
        rep.heading("Worst issues")
        rep.table(
            worst[["sample_id", "given_label", "suggested_label", "label_quality"]],
            max_rows=top,
            note_file="label_issues.csv",
        )
    rep.write(out / "report.md", html=html)


def _issue_grid(rows: pd.DataFrame, path: Path) -> None:
    from .._io import save_figure
    from ..data import open_image
    from ..report import new_figure

    cols = min(8, len(rows))
    nrows = -(-len(rows) // cols)
    fig = new_figure(1.4 * cols, 1.6 * nrows)
    for i, (_, row) in enumerate(rows.iterrows()):
        ax = fig.add_subplot(nrows, cols, i + 1)
        try:
            image = open_image(row["path"], mode=None)
            image.thumbnail((96, 96))
            ax.imshow(np.asarray(image), cmap="gray" if image.mode in {"L", "1"} else None)
        except (OSError, ValueError):
            pass
        ax.set_title(f"{row['given_label']} → {row['suggested_label']}", fontsize=7, color="#b00")
        ax.axis("off")
    save_figure(fig, path, dpi=100)
