"""Command for missing labels: ``pseudolabel``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.options import ReadOptions
from ..semi.ensemble import DEFAULT_METHOD
from ._common import (
    CacheDir,
    Config,
    Data,
    Device,
    Html,
    Jobs,
    Overwrite,
    Pca,
    Seed,
    Size,
    Weights,
    backbone_option,
    choice_help,
    command,
    out_console,
    reads_dataset,
    user_errors,
)


@command()
@reads_dataset
def pseudolabel(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("pseudolabel"),
    method: Annotated[
        str, typer.Option("--method", "-m", help=choice_help("pseudolabelers", f"Method (default {DEFAULT_METHOD})."))
    ] = DEFAULT_METHOD,
    budget: Annotated[
        int | None,
        typer.Option("--budget", min=0, help="Most problematic images to send to a human (least confident first)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="Confidence below which an image is problematic (default per method: 0.9; knn-kmeans 0.5, its mean vote share).",
        ),
    ] = None,
    backbone: Annotated[
        str | None,
        backbone_option(
            "Embedding backbone (default: efficientnet_lite0 for colour photos when labelwise[pretrained] is installed, else simclr, else pixels)."
        ),
    ] = None,
    size: Size = None,
    weights: Weights = None,
    pca: Pca = None,
    cache_dir: CacheDir = None,
    device: Device = "auto",
    hold_out: Annotated[
        str, typer.Option("--hold-out", help="Labeled images of this split are left out (kept for testing).")
    ] = "test",
    votes: Annotated[
        bool, typer.Option("--votes/--no-votes", help="Also run every other method for the vote_<method> columns.")
    ] = True,
    estimate: Annotated[
        bool, typer.Option("--estimate/--no-estimate", help="Estimate accuracy by hiding folds of the labeled images.")
    ] = True,
    folds: Annotated[
        int, typer.Option("--folds", "-k", min=2, help="Folds of labeled images hidden for the accuracy estimate.")
    ] = 5,
    map_points: Annotated[int, typer.Option("--map-points", min=0, help="Images on the t-SNE map (0: no map).")] = 5000,
    ls_root: Annotated[
        Path | None,
        typer.Option(
            "--ls-root", help="Folder the Label Studio image URLs are relative to (default: the images' common folder)."
        ),
    ] = None,
    near_duplicates: Annotated[
        bool,
        typer.Option(
            "--near-duplicates/--no-near-duplicates",
            help="Never ask about a near-duplicate of a labeled image or of a more uncertain problematic one.",
        ),
    ] = True,
    audit: Annotated[
        Path | None,
        typer.Option("--audit", help="audit.csv from `labelwise audit`: take its near-duplicate groups, measure none."),
    ] = None,
    html: Html = True,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Pseudo-label the unlabeled images and list the problematic ones for a human: pseudo_labels.csv, dataset.csv, tasks, map, report."""
    from ..semi import pseudolabel as run

    with user_errors():
        result = run(
            data,
            out,
            method=method,
            budget=budget,
            threshold=threshold,
            backbone=backbone,
            size=size,
            weights=weights,
            pca=pca,
            cache_dir=cache_dir,
            device=device,
            hold_out=hold_out,
            votes=votes,
            estimate=estimate,
            folds=folds,
            map_points=map_points,
            ls_root=ls_root,
            near_duplicates=near_duplicates,
            audit=audit,
            html=html,
            random_state=seed,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
        )
    s = result.figures
    accuracy = (
        f" · estimated accuracy {s['estimated_accuracy']:.1%} ({s['estimate']})"
        if s["estimated_accuracy"] is not None
        else ""
    )
    out_console.print(
        f"{s['n_pseudo']:,} unlabeled images pseudo-labeled, {s['n_not_problematic']:,} of them not "
        f"problematic{accuracy}",
        soft_wrap=True,
    )
    out_console.print(
        f"{s['n_problematic']:,} problematic → {out / 'problematic.csv'} and {out / 'problematic.label_studio.json'}"
        + (
            f"; {s['n_uncertain_over_budget']:,} more uncertain (over the budget)"
            if s["n_uncertain_over_budget"]
            else ""
        )
        + (
            f"; {s['n_skipped_near_duplicates']:,} near-duplicate(s) not asked"
            if s["n_skipped_near_duplicates"]
            else ""
        ),
        soft_wrap=True,
    )
    out_console.print(
        f"train on it: labelwise train {out / 'dataset.csv'} --weight-col confidence; report: {out / 'report.md'}",
        soft_wrap=True,
    )
