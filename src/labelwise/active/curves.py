"""Learning curves of simulated active learning: mean ± std over seeds, the normalised
area under each curve and the labels needed to reach a target accuracy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import note_input, save_figure, write_table
from .._run import recorded
from ..errors import LabelwiseError

RESULT_COLUMNS = ("experiment", "strategy", "seed", "round", "n_labels", "accuracy", "balanced_accuracy")
METRICS = ("accuracy", "balanced_accuracy")
DEFAULT_TARGET = 0.9


def read_results(folder: str | os.PathLike[str] | pd.DataFrame) -> pd.DataFrame:
    """``results.csv`` of ``simulate`` (a folder, the file, or the DataFrame), checked."""
    if isinstance(folder, pd.DataFrame):
        frame, where = folder, "results"
    else:
        path = Path(folder)
        path = path / "results.csv" if path.is_dir() else path
        if not path.is_file():
            raise LabelwiseError(f"{path}: file not found (expected the results.csv of `labelwise simulate`)")
        note_input(path)
        try:
            frame, where = pd.read_csv(path), str(path)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise LabelwiseError(f"{path}: cannot read as a table ({str(exc).strip().splitlines()[-1]})") from None
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise LabelwiseError(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(RESULT_COLUMNS)}")
    if frame.empty:
        raise LabelwiseError(f"{where}: no rows")
    return frame


def mean_curves(results: pd.DataFrame, *, metric: str = "accuracy") -> pd.DataFrame:
    """One row per (experiment, strategy, n_labels): ``mean``, ``std`` and ``n_seeds`` of
    ``metric``. A run that stopped early (patience) keeps its last value up to the
    largest budget of its group, so every mean is over the same seeds."""
    _check_metric(metric)
    parts = []
    for (exp, strat), group in results.groupby(["experiment", "strategy"], sort=False):
        wide = group.pivot_table(index="n_labels", columns="seed", values=metric).sort_index().ffill()
        parts.append(
            pd.DataFrame(
                {
                    "experiment": exp,
                    "strategy": strat,
                    "n_labels": wide.index.to_numpy(),
                    "mean": wide.mean(axis=1).to_numpy(),
                    "std": wide.std(axis=1, ddof=0).to_numpy(),
                    "n_seeds": wide.shape[1],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def normalised_auc(n_labels: np.ndarray, values: np.ndarray) -> float:
    """Area under ``values`` over ``n_labels`` (trapezoids) divided by the label range:
    the curve's mean height, in [0, 1] for accuracies; a single point is its value.

    >>> normalised_auc(np.array([20, 60, 100]), np.array([0.5, 0.7, 0.9]))
    0.7
    """
    n = np.asarray(n_labels, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(n) == 1 or n[-1] == n[0]:
        return float(v[-1])
    return float(np.trapezoid(v, n) / (n[-1] - n[0]))


def labels_to_reach(n_labels: np.ndarray, values: np.ndarray, target: float) -> float:
    """The first budget at which ``values`` ≥ ``target`` (NaN if never).

    >>> labels_to_reach(np.array([20, 60, 100]), np.array([0.5, 0.8, 0.9]), 0.75)
    60.0
    """
    hit = np.flatnonzero(np.asarray(values) >= target - 1e-12)
    return float(np.asarray(n_labels)[hit[0]]) if len(hit) else float("nan")


def curve_summary(results: pd.DataFrame, *, metric: str = "accuracy", target: float = DEFAULT_TARGET) -> pd.DataFrame:
    """Per (experiment, strategy): ``auc`` (mean ± ``auc_std`` over seeds of
    :func:`normalised_auc`), the metric at the largest budget (``final``, ``final_std``,
    ``final_n_labels``) and ``labels_to_target`` (:func:`labels_to_reach` on the mean
    curve), best AUC first."""
    _check_metric(metric)
    rows = []
    curves = mean_curves(results, metric=metric)
    for (exp, strat), group in results.groupby(["experiment", "strategy"], sort=False):
        wide = group.pivot_table(index="n_labels", columns="seed", values=metric).sort_index().ffill()
        aucs = [normalised_auc(wide.index.to_numpy(), wide[s].to_numpy()) for s in wide.columns]
        mean = curves[(curves["experiment"] == exp) & (curves["strategy"] == strat)]
        rows.append(
            {
                "experiment": exp,
                "strategy": strat,
                "n_seeds": wide.shape[1],
                "auc": round(float(np.mean(aucs)), 4),
                "auc_std": round(float(np.std(aucs)), 4),
                "final_n_labels": int(wide.index[-1]),
                "final": round(float(wide.iloc[-1].mean()), 4),
                "final_std": round(float(wide.iloc[-1].std(ddof=0)), 4),
                "labels_to_target": labels_to_reach(mean["n_labels"].to_numpy(), mean["mean"].to_numpy(), target),
            }
        )
    return pd.DataFrame(rows).sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


@recorded("plot-curves", inputs=lambda a: ([a["results"]] if isinstance(a["results"], (str, os.PathLike)) else [], []))
def plot_curves(
    results: str | os.PathLike[str] | pd.DataFrame,
    out: str | os.PathLike[str] | None = None,
    *,
    metric: str = "accuracy",
    target: float = DEFAULT_TARGET,
    html: bool = True,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Draw the learning curves of ``results`` (a ``simulate`` folder or its table) and
    summarise them (:func:`curve_summary`) into ``out``: ``curves.png`` (mean ± std over
    seeds), ``curves.csv`` (the mean curves), ``summary.csv`` and ``report.md``."""
    frame = read_results(results)
    if out is None:
        raise LabelwiseError("plot_curves needs an output folder")
    return draw_curves(frame, Path(out), metric=metric, target=target, html=html)


def draw_curves(
    frame: pd.DataFrame, out: Path, *, metric: str = "accuracy", target: float = DEFAULT_TARGET, html: bool = True
) -> pd.DataFrame:
    """The outputs of :func:`plot_curves` for a results table, written into ``out``."""
    from ..report import Report

    summary = curve_summary(frame, metric=metric, target=target)
    curves = mean_curves(frame, metric=metric)
    write_table(out / "curves.csv", curves.round(4))
    write_table(out / "summary.csv", summary)
    _plot(curves, out / "curves.png", metric=metric, target=target)
    rep = Report("labelwise active learning curves")
    rep.paragraph(
        f"{metric.replace('_', ' ')} on the test set against the number of labels, mean ± std over seeds. "
        "`auc`: area under each seed's curve divided by its label range (trapezoids from the first to the last "
        "budget), i.e. the mean height of the curve in [0, 1], then averaged over seeds. "
        f"`labels_to_target`: the first budget at which the mean curve reaches {target:g} (empty: never)."
    )
    rep.image(out / "curves.png", "learning curves")
    rep.heading("Summary")
    rep.table(summary)
    rep.write(out / "report.md", html=html)
    return summary


def _plot(curves: pd.DataFrame, path: Path, *, metric: str, target: float) -> None:
    """Mean ± std per curve: one colour per strategy, one line style per experiment, the
    legend beside the axes."""
    from matplotlib import colormaps

    from ..report import new_figure

    strategies = list(dict.fromkeys(curves["strategy"]))
    experiments = list(dict.fromkeys(curves["experiment"]))
    palette = colormaps["tab10" if len(strategies) <= 10 else "tab20"]
    styles = ["-", "--", ":", "-."]
    fig = new_figure(10.0, 5.0)
    ax = fig.add_subplot()
    for (exp, strat), group in curves.groupby(["experiment", "strategy"], sort=False):
        x, m, s = group["n_labels"], group["mean"], group["std"]
        color = palette(strategies.index(strat) % palette.N)
        style = styles[experiments.index(exp) % len(styles)]
        ax.plot(x, m, style, color=color, marker="o", markersize=2.5, linewidth=1.3, label=f"{exp} · {strat}")
        ax.fill_between(x, m - s, m + s, color=color, alpha=0.12, linewidth=0)
    ax.axhline(target, color="#888888", linestyle="--", linewidth=1)
    ax.set_xlabel("labels")
    ax.set_ylabel(metric.replace("_", " "))
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, path, dpi=110)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise LabelwiseError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
