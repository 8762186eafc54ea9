"""Confusion-matrix and reliability plots (PNG, written atomically)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import save_figure
from ..report import new_figure


def plot_confusion_matrix(
    confusion: np.ndarray | list[list[int]],
    classes: Sequence[str],
    path: str | os.PathLike[str],
    *,
    normalize: bool = True,
) -> Path:
    """Confusion matrix as a heat map: rows = true class, columns = predicted.

    Colour is the share of the true class (row) when ``normalize``, else the count; non-zero
    cells show their count (up to 30 classes; the figure grows with the number of classes).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "cm.png"
    >>> plot_confusion_matrix([[5, 1], [0, 4]], ["cat", "dog"], path).name
    'cm.png'
    """
    cm = np.asarray(confusion, dtype=float)
    k = len(classes)
    shade = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    side = min(2.5 + 0.45 * k, 14)
    fig = new_figure(side + 1, side)
    ax = fig.add_subplot()
    im = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class" if normalize else "count")
    ticks = np.arange(k)
    ax.set_xticks(ticks, [str(c) for c in classes], rotation=90 if k > 8 else 0, fontsize=8)
    ax.set_yticks(ticks, [str(c) for c in classes], fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        f"{int(cm[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=7 if k > 12 else 9,
                        color="white" if shade[i, j] > 0.5 * (shade.max() or 1) else "black",
                    )
    return save_figure(fig, path, dpi=110)


def plot_reliability(table: pd.DataFrame, path: str | os.PathLike[str], *, ece: float | None = None) -> Path:
    """Accuracy per confidence bin (bars, sample count at the foot) against the diagonal of
    perfect calibration; ``table`` is :func:`~labelwise.train.metrics.reliability_table`'s.

    >>> import tempfile
    >>> from labelwise.train.metrics import reliability_table
    >>> path = Path(tempfile.mkdtemp()) / "reliability.png"
    >>> plot_reliability(reliability_table([0, 1], [[.9, .1], [.3, .7]], 10), path, ece=0.2).stat().st_size > 0
    True
    """
    fig = new_figure(5, 4.5)
    ax = fig.add_subplot()
    used = table[table["count"] > 0]
    width = (used["bin_upper"] - used["bin_lower"]).to_numpy()
    ax.bar(
        used["bin_lower"],
        used["accuracy"],
        width=width,
        align="edge",
        edgecolor="#1f4e79",
        color="#6fa8dc",
        label="accuracy",
    )
    centre = (used["bin_lower"] + width / 2).to_numpy()
    ax.plot(centre, used["confidence"], "_", color="#c0392b", markersize=12, markeredgewidth=2, label="mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for x, n in zip(centre, used["count"]):  # sample count at the foot of each bar
        ax.text(x, 0.015, f"{int(n)}", ha="center", va="bottom", fontsize=6, rotation=90 if len(used) > 20 else 0)
    title = "reliability" + (f" (ECE {ece:.3f})" if ece is not None else "")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top class)", ylabel="accuracy", title=title)
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path, dpi=110)
