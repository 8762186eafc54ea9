"""Plots of a pseudo-labeling run: the 2-D map of the embeddings and the coverage curve."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import save_figure
from ..report import new_figure


def map_coordinates(
    embeddings: np.ndarray, *, max_points: int = 5000, keep: np.ndarray | None = None, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE (scikit-learn) coordinates of at most ``max_points`` rows (every ``keep`` row
    among them, the rest drawn at random); returns ``(rows, (len(rows), 2) coordinates)``."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(embeddings)
    rng = np.random.default_rng(random_state)
    keep = np.zeros(n, bool) if keep is None else np.asarray(keep, bool)
    rows = np.flatnonzero(keep)
    others = np.flatnonzero(~keep)
    room = max(max_points - len(rows), 0)
    rows = np.sort(np.concatenate([rows, rng.choice(others, min(room, len(others)), replace=False)]))
    X = np.asarray(embeddings, np.float64)[rows]
    if len(rows) < 3:
        return rows, np.c_[np.arange(len(rows), dtype=float), np.zeros(len(rows))]
    if X.shape[1] > 50:  # t-SNE's usual first step; also much faster
        X = PCA(50, random_state=random_state).fit_transform(X)
    perplexity = float(min(30.0, (len(rows) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, init="pca", max_iter=500, random_state=random_state).fit_transform(X)
    return rows, xy


def plot_map(
    xy: np.ndarray,
    labels: Sequence[object],
    source: Sequence[str],
    classes: Sequence[str],
    path: str | os.PathLike[str],
) -> Path:
    """The map: colour = label (grey when none), ● given, · pseudo, ○ uncertain (problematic
    beyond the budget), × problematic."""
    from matplotlib.lines import Line2D

    labels = pd.Series(list(labels), dtype=object)
    kinds = np.asarray(source, dtype=object)
    colours = _palette(len(classes))
    index = {c: i for i, c in enumerate(classes)}
    colour = np.array(
        [colours[index[v]] if isinstance(v, str) and v in index else (0.6, 0.6, 0.6, 1.0) for v in labels]
    )
    fig = new_figure(8.5, 7)
    ax = fig.add_subplot()
    styles: dict[str, dict[str, Any]] = {
        "pseudo": dict(marker="o", s=12, alpha=0.8, linewidths=0),
        "uncertain": dict(marker="o", s=10, alpha=0.5, facecolors="none"),
        "problematic": dict(marker="x", s=22, alpha=0.9, linewidths=1.0),
        "given": dict(marker="o", s=40, alpha=1.0, edgecolors="black", linewidths=0.7),
    }
    for name, style in styles.items():
        rows = kinds == name
        if rows.any():
            extra = {"edgecolors": colour[rows]} if name == "uncertain" else {"c": colour[rows]}
            ax.scatter(xy[rows, 0], xy[rows, 1], label=f"{name} ({int(rows.sum())})", **style, **extra)
    fig.legend(loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    if len(classes) <= 40:
        handles = [Line2D([], [], color=colours[i], marker="s", linestyle="") for i in range(len(classes))]
        ax.legend(
            handles,
            [str(c) for c in classes],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            title="label",
            frameon=False,
            ncol=1 + len(classes) // 20,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("t-SNE map of the embeddings")
    return save_figure(fig, path, dpi=110)


def plot_coverage(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Estimated accuracy and mean confidence against the share of the pool covered."""
    levels = table[table["coverage"].str.startswith("top")]
    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(levels["share_of_pool"], levels["estimated_accuracy"], "o-", label="estimated accuracy")
    ax.plot(levels["share_of_pool"], levels["mean_confidence"], "s--", label="mean confidence", alpha=0.7)
    vouched = table[~table["coverage"].str.startswith("top")]
    if len(vouched) and vouched["n_images"].iloc[0] > 0:
        ax.scatter(
            vouched["share_of_pool"],
            vouched["estimated_accuracy"],
            marker="*",
            s=160,
            color="#c44",
            zorder=3,
            label="not problematic",
        )
    ax.set_xlabel("share of the unlabeled pool (most confident first)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=100)


def _palette(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"]
    return [cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)]
