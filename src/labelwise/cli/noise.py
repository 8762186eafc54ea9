"""Commands for wrong labels: ``issues`` and ``clean``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.options import ReadOptions
from ..noise import detectors as _detectors  # noqa: F401 - fills the registry the help reads
from ..noise.verdict import MIN_DOUBT
from ..train import models as _models  # noqa: F401
from ._common import (
    CacheDir,
    Config,
    Data,
    EngineName,
    Html,
    Jobs,
    Overwrite,
    RayAddress,
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
def issues(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("issues"),
    probs: Annotated[
        Path | None,
        typer.Option(
            "--probs",
            help="Out-of-fold probabilities: a `train` folder or a sample_id, prob_<class> table (default: train --model on the given labels).",
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help=choice_help(
                "models",
                "Model trained on the given labels for the probabilities, or `head`: a 5-fold logistic regression on the embeddings (fast, weaker).",
            ),
        ),
    ] = "cnn",
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="oof: --folds models, out-of-fold probabilities; dynamics: one model on all labels, softmax averaged over its epochs (--folds times faster); auto: oof below 10,000 labeled images.",
        ),
    ] = "auto",
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs for --model (cnn: 40 with dynamics, 8 with oof).")
    ] = None,
    flip: Annotated[
        bool,
        typer.Option("--flip/--no-flip", help="Mirror images when training --model (photos yes; digits and text no)."),
    ] = False,
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="Folds for the out-of-fold probabilities.")] = 5,
    method: Annotated[
        str,
        typer.Option(
            "--method", help=choice_help("detectors", "Detector (default ensemble; neighbors is training-free).")
        ),
    ] = "ensemble",
    filter_by: Annotated[
        str,
        typer.Option(
            "--filter-by",
            help="calibrated_margin (default), or one of cleanlab's find_label_issues filters (prune_by_noise_rate, prune_by_class, both, confident_learning, predicted_neq_given, ...).",
        ),
    ] = "calibrated_margin",
    pretrained: Annotated[
        bool | None,
        typer.Option(
            "--pretrained/--no-pretrained",
            help="Weigh ImageNet features (efficientnet_lite0) as evidence; default: for colour photos when installed.",
            show_default=False,
        ),
    ] = None,
    min_doubt: Annotated[
        float,
        typer.Option(
            "--min-doubt",
            min=0.0,
            max=1.0,
            help="Flag a candidate only when its chance of being wrong reaches this (0: every candidate).",
        ),
    ] = MIN_DOUBT,
    neighbors: Annotated[
        int | None,
        typer.Option(
            "--neighbors",
            "-n",
            min=1,
            help="k nearest neighbours voting (default: a quarter of the smallest class, 5 to 50).",
        ),
    ] = None,
    backbone: Annotated[
        str | None,
        backbone_option(
            "Embeddings for the neighbour votes (default: the features of the network trained for the probabilities, else pixels)."
        ),
    ] = None,
    size: Size = None,
    weights: Weights = None,
    cache_dir: CacheDir = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Issues shown in top_issues.png and the report.")] = 24,
    html: Html = True,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    engine: EngineName = None,
    ray_address: RayAddress = None,
    config: Config = None,
) -> None:
    """Find probably-wrong labels, ranked worst first: label_issues.csv, noise rate per class, top_issues.png."""
    from ..noise import find_issues

    with user_errors():
        result = find_issues(
            data,
            out,
            probs=probs,
            model=model,
            source=source,
            epochs=epochs,
            train_options={"flip": flip},
            folds=folds,
            method=method,
            filter_by=filter_by,
            pretrained=pretrained,
            min_doubt=min_doubt,
            k=neighbors,
            backbone=backbone,
            size=size,
            weights=weights,
            cache_dir=cache_dir,
            top=top,
            html=html,
            random_state=seed,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
            engine=engine,
            ray_address=ray_address,
        )
    verdict = result.verdict
    how_sure = (
        f" (evidence right on ~{verdict['estimated_accuracy']:.0%}; estimated noise {verdict['estimated_noise_rate']:.1%}"
        f"{'' if verdict['judgeable'] else '; TOO WEAK TO JUDGE: only sure ones flagged'})"
        if verdict
        else ""
    )
    out_console.print(
        f"{result.n_issues} of {len(result.table)} labels look wrong{how_sure} → {out / 'label_issues.csv'}"
    )


@command()
@reads_dataset
def clean(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="New labels table (.csv or .parquet); never the input.")],
    issues_file: Annotated[
        str | None,
        typer.Option(
            "--issues",
            help="label_issues.csv from `labelwise issues` (or its folder); with --drop, the audit's issue types "
            "to drop instead, comma-separated (default all).",
        ),
    ] = None,
    drop: Annotated[
        Path | None,
        typer.Option("--drop", help="audit.csv from `labelwise audit`: write the table without its findings."),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="relabel (take the suggested label), prune (remove the label) or review (export for a human).",
        ),
    ] = "relabel",
    ls_root: Annotated[
        Path | None, typer.Option("--ls-root", help="review: folder the Label Studio image URLs are relative to.")
    ] = None,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Apply label issues: a new labels table with label_source given / corrected / removed (review: Label Studio JSON + CSV)."""
    from ..noise import clean as run

    with user_errors():
        if drop is not None:
            types = [t.strip() for t in issues_file.split(",") if t.strip()] if issues_file else None
            ds = run(data, None, out, drop=drop, drop_issues=types, n_jobs=jobs, read=read, overwrite=overwrite)
        else:
            if issues_file is None:
                raise typer.BadParameter("give --issues label_issues.csv (or --drop audit.csv)", param_hint="--issues")
            ds = run(
                data, issues_file, out, policy=policy, ls_root=ls_root, n_jobs=jobs, read=read, overwrite=overwrite
            )
    counts = ds.table["label_source"].fillna("unlabeled").value_counts().to_dict()
    out_console.print(" · ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {out}")
