"""``labelwise audit``: near-duplicates, leaks, conflicts, outliers and unusable images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..data.options import ReadOptions
from ._common import (
    CacheDir,
    Config,
    Data,
    Html,
    Jobs,
    Overwrite,
    Seed,
    Size,
    command,
    out_console,
    reads_dataset,
    user_errors,
)


def _checks_help(text: str) -> str:
    from ..audit.checks import known_checks

    return f"{text} Any of: {', '.join(known_checks())}."


def _parse_thresholds(values: list[str]) -> dict[str, float]:
    thresholds = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            thresholds[name.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{value!r}: write CHECK=NUMBER, e.g. dark=0.8", param_hint="--threshold")
    return thresholds


@command()
@reads_dataset
def audit(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("audit"),
    checks: Annotated[
        str | None,
        typer.Option("--checks", help=_checks_help("Comma-separated issue types to look for (default all).")),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="CHECK=NUMBER: the score a finding needs, replacing the default (repeatable; "
            "`labelwise list audits` and the README give the defaults).",
        ),
    ] = None,
    near_duplicate: Annotated[
        float | None,
        typer.Option(
            "--near-duplicate", min=0.01, max=1.0, help="Pixel match a near-duplicate pair needs (default 0.95)."
        ),
    ] = None,
    backbone: Annotated[
        str, typer.Option("--backbone", help="Embedding for the outlier checks: auto, none or a backbone name.")
    ] = "auto",
    size: Size = None,
    cache_dir: CacheDir = None,
    measures: Annotated[
        Path | None,
        typer.Option("--measures", help="An `explore` folder's measures/ for the same images (not read again)."),
    ] = None,
    html: Html = True,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Near-duplicates, leaks across splits, conflicts, outliers, dark/light/blurry/empty/gray/odd images → audit.csv, report."""
    from ..audit import audit as run
    from ..data.near_duplicates import NEAR_DUPLICATE_SCORE

    thresholds = _parse_thresholds(threshold or [])
    with user_errors():
        result = run(
            data,
            out,
            checks=[c.strip() for c in checks.split(",") if c.strip()] if checks else None,
            thresholds=thresholds,
            near_duplicate_threshold=near_duplicate or NEAR_DUPLICATE_SCORE,
            backbone=backbone,
            size=size,
            cache_dir=cache_dir,
            measures=measures,
            html=html,
            n_jobs=jobs,
            random_state=seed,
            read=read,
            overwrite=overwrite,
        )
    table = Table(title=f"{result.n_images} images audited, {result.n_problems} unusable", title_justify="left")
    for column in ("issue", "findings", "threshold"):
        table.add_column(column, justify="left" if column == "issue" else "right")
    for row in result.summary_table.itertuples():
        table.add_row(str(row.issue), str(row.findings), f"{row.threshold:g}")
    out_console.print(table)
    out_console.print(f"findings: {result.paths['audit']} · report: {result.paths['report']}")
