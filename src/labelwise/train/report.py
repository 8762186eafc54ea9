"""The curves and report of a training run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from .kfold import TrainResult


def plot_curves(metrics: pd.DataFrame, monitor: str, path: Path) -> None:
    from .._io import save_figure
    from ..report import new_figure

    key = "valid_loss" if monitor == "valid_loss" else f"valid_{monitor}"
    has_valid = key in metrics
    fig = new_figure(10 if has_valid else 5, 3.6)
    axes = fig.subplots(1, 2 if has_valid else 1, squeeze=False)[0]
    for fold, part in metrics.groupby("fold"):
        line = axes[0].plot(part["epoch"], part["train_loss"], label=f"fold {fold} train")[0]
        if "valid_loss" in part:
            axes[0].plot(part["epoch"], part["valid_loss"], "--", color=line.get_color(), label=f"fold {fold} valid")
        if has_valid:
            axes[1].plot(part["epoch"], part[key], color=line.get_color(), label=f"fold {fold}")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss (solid: train, dashed: valid)")
    if has_valid:
        axes[1].set(
            xlabel="epoch",
            ylabel=key.removeprefix("valid_").replace("_", " "),
            title=f"validation {key.removeprefix('valid_')}",
        )
    if metrics["fold"].nunique() <= 5:
        axes[-1].legend(fontsize=7)
    save_figure(fig, path)


def write_report(out: Path, result: TrainResult, held_name: str, *, html: bool) -> None:
    from ..report import Report

    rep = Report(f"labelwise train: {result.model}")
    rep.paragraph(
        f"{result.folds} model{'s' if result.folds > 1 else ''} on {result.n_train} labeled images "
        f"({len(result.classes)} classes), {result.n_test} test images held out; {result.seconds:.0f} s."
    )
    rep.heading("Folds (best epoch)")
    rep.table(pd.DataFrame(result.fold_summary).round(4))
    for title, metrics in (
        (f"Held out ({held_name}.csv)", result.held_out),
        ("Test split (ensemble mean)", result.test),
    ):
        if metrics:
            rep.heading(title)
            rep.table(pd.DataFrame([metrics]).round(4))
    rep.image(out / "curves.png", "training curves")
    rep.write(out / "report.md", html=html)
