"""What a user takes away from a loop: ``dataset.csv`` (the label set), ``history.csv``,
``rounds.csv``, ``curves.png`` (answers spent against label and test accuracy), ``report.html`` /
``report.md``, and a model trained on the final labels in ``model/``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import save_figure, write_table
from ..data import Dataset
from . import state

log = logging.getLogger("labelwise")


def label_set(ctx: Any) -> pd.DataFrame:
    """The current label set of the pool, as a table."""
    codes, source = ctx.current()
    pool = ctx.pool
    classes = np.asarray(ctx.classes, dtype=object)
    hist = state.history(ctx.engine)  # a label's confidence is its last change's; given labels have none
    last = hist.groupby("sample_id").tail(1).set_index("sample_id")["confidence"]
    confidence = pool["sample_id"].astype(str).map(last) if len(hist) else pd.Series(np.nan, index=pool.index)
    return pd.DataFrame(
        {
            "sample_id": pool["sample_id"],
            "path": pool["path"],
            "label": [classes[c] if c >= 0 else None for c in codes],
            "label_source": [s or None for s in source],
            "confidence": confidence.to_numpy(),
            "given_label": pool["label"],
            "split": pool["split"],
        }
    )


def write_outputs(ctx: Any, *, finished: bool) -> Any:
    from .running import LoopResult, rounds_table

    folder: Path = ctx.folder
    decided = [r for r in state.rounds(ctx.engine) if r.stage == state.DECIDED]
    table = rounds_table(decided)
    if len(table):
        table["answers_spent"] = table["answers"].cumsum()
        table = table.drop(columns=[c for c in ("skills",) if c in table.columns])
    dataset = label_set(ctx)
    history = state.history(ctx.engine)
    write_table(folder / "dataset.csv", dataset)
    write_table(folder / "history.csv", history)
    write_table(folder / "rounds.csv", table)
    if len(table):
        _plot(table, folder / "curves.png")
    if finished and ctx.config.get("final_model") and not (folder / "model" / "run.json").exists():
        _train_final(ctx, dataset)
    _report(folder, table, dataset, finished, ctx.config)
    return LoopResult(folder, table, dataset, history, finished)


def _train_final(ctx: Any, dataset: pd.DataFrame) -> None:
    from ..train import train

    rows = dataset[dataset["label"].notna()].assign(
        weight=lambda d: np.where(d["label_source"] == "pseudo", d["confidence"].fillna(1.0), 1.0)
    )
    test = ctx.table.table[ctx.is_test]
    table = pd.concat(
        [
            rows[["sample_id", "path", "label", "split", "weight"]],
            test.assign(weight=1.0)[["sample_id", "path", "label", "split", "weight"]],
        ]
    )
    log.info("loop: training %s on the final label set (%d images)", ctx.config["final_model"], len(rows))
    train(
        Dataset(table.reset_index(drop=True), ctx.classes, source=str(ctx.folder / "dataset.csv")),
        ctx.folder / "model",
        model=ctx.config["final_model"],
        folds=1,
        backbone=ctx.config["backbone"],
        size=ctx.config["size"],
        cache_dir=ctx.config["cache_dir"],
        hold_out=ctx.config["hold_out"],
        weight_col="weight",
        html=False,
        random_state=ctx.config["random_state"],
        n_jobs=ctx.config["n_jobs"],
        overwrite=True,
    )


def _plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(table["answers_spent"], table["estimated_label_accuracy"], "o-", label="label accuracy (estimated)")
    if table["test_accuracy"].notna().any():
        ax.plot(table["answers_spent"], table["test_accuracy"], "s-", label="test accuracy (retrained)")
    ax.set_xlabel("answers spent")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_figure(fig, path)
    plt.close(fig)


def _report(folder: Path, table: pd.DataFrame, dataset: pd.DataFrame, finished: bool, config: dict[str, Any]) -> None:
    from ..report import Report

    sources = dataset["label_source"].fillna("none").value_counts()
    status = "finished" if finished else "in progress"
    report = Report(f"labelwise loop: {status}")
    if not finished:
        report.warning(f"the budget is not spent yet: `labelwise loop {folder}` continues")
    report.paragraph(
        f"Budget {config['budget']} answers, {config['per_round']} a round, queue chosen by `{config['choose']}`; "
        f"features `{config['backbone']}`."
    )
    report.paragraph("Label sources: " + ", ".join(f"{k} {v}" for k, v in sources.items()))
    cols = [
        c
        for c in (
            "round",
            "asked",
            "answers",
            "answers_spent",
            "changed_by_people",
            "labeled_by_people",
            "estimated_label_accuracy",
            "test_accuracy",
            "mean_skill",
        )
        if c in table.columns
    ]
    if len(table):
        if (folder / "curves.png").exists():
            report.image(folder / "curves.png", "answers spent against label accuracy and test accuracy")
        report.table(table[cols])
    else:
        report.paragraph("No round decided yet.")
    report.write(folder / "report.md")
