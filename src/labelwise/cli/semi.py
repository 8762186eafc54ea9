"""Command for missing labels: ``pseudolabel``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..semi.ensemble import DEFAULT_METHOD
from .app import _command, app, out_console
from .options import (
    Classes,
    Config,
    Data,
    FilenameCol,
    Images,
    Jobs,
    LabelCol,
    LabelsKey,
    Seed,
    SplitCol,
    Suffix,
    Unlabeled,
    read_options,
)


@app.command()
def pseudolabel(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("pseudolabel"),
    method: Annotated[str, typer.Option("--method", "-m", help="ensemble (default: best on bench/semi.py), spreading, self-training or knn-kmeans.")] = DEFAULT_METHOD,
    budget: Annotated[Optional[int], typer.Option("--budget", min=0, help="Most problematic images to send to a human (least confident first).")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", min=0.0, max=1.0, help="Confidence below which an image is problematic (default per method: 0.9; knn-kmeans 0.5, its mean vote share).")] = None,
    backbone: Annotated[Optional[str], typer.Option("--backbone", "-b", help="Embedding backbone (see `labelwise backbones`; default simclr when PyTorch is installed, else pixels).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", min=1, help="Backbone input size.")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Backbone weights (state_dict).")] = None,
    pca: Annotated[Optional[int], typer.Option("--pca", min=1, help="Reduce the embeddings to N principal components.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    hold_out: Annotated[str, typer.Option("--hold-out", help="Labeled images of this split are left out (kept for testing).")] = "test",
    votes: Annotated[bool, typer.Option("--votes/--no-votes", help="Also run every other method for the vote_<method> columns.")] = True,
    estimate: Annotated[bool, typer.Option("--estimate/--no-estimate", help="Estimate accuracy by hiding folds of the labeled images.")] = True,
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="Folds of labeled images hidden for the accuracy estimate.")] = 5,
    map_points: Annotated[int, typer.Option("--map-points", min=0, help="Images on the t-SNE map (0: no map).")] = 5000,
    ls_root: Annotated[Optional[Path], typer.Option("--ls-root", help="Folder the Label Studio image URLs are relative to (default: the images' common folder).")] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write report.html.")] = True,
    images: Images = None,
    unlabeled: Unlabeled = None,
    filename_col: FilenameCol = None,
    label_col: LabelCol = None,
    split_col: SplitCol = None,
    suffix: Suffix = "",
    labels_key: LabelsKey = None,
    classes: Classes = None,
    jobs: Jobs = 2,
    seed: Seed = 0,
    config: Config = None,
) -> None:
    """Pseudo-label the unlabeled images and list the problematic ones for a human: pseudo_labels.csv, dataset.csv, tasks, map, report."""
    from ..semi import pseudolabel as run_pseudolabel

    with _command(out, "pseudolabel", locals()) as extra:
        read = read_options(images, unlabeled, filename_col, label_col, split_col, suffix, labels_key, classes, jobs)
        read.pop("n_jobs")
        result = run_pseudolabel(data, out, method=method, budget=budget, threshold=threshold, backbone=backbone, size=size,
                                 weights=weights, pca=pca, cache_dir=cache_dir, device=device, hold_out=hold_out,
                                 votes=votes, estimate=estimate, folds=folds, map_points=map_points, ls_root=ls_root,
                                 html=html, random_state=seed, n_jobs=jobs, **read)
        s = result.summary
        extra.update({k: v for k, v in s.items() if k != "per_class"})
        accuracy = f" · estimated accuracy {s['estimated_accuracy']:.1%} ({s['estimate']})" if s["estimated_accuracy"] is not None else ""
        out_console.print(f"{s['n_pseudo']:,} unlabeled images pseudo-labeled, {s['n_not_problematic']:,} of them not "
                          f"problematic{accuracy}", soft_wrap=True)
        out_console.print(f"{s['n_problematic']:,} problematic → {out / 'problematic.csv'} and {out / 'problematic.label_studio.json'}"
                          + (f"; {s['n_uncertain_over_budget']:,} more uncertain (over the budget)" if s["n_uncertain_over_budget"] else ""), soft_wrap=True)
        out_console.print(f"train on it: labelwise train {out / 'dataset.csv'} --weight-col confidence; report: {out / 'report.md'}", soft_wrap=True)
