"""Commands on the dataset itself: ``explore``, ``split``, ``embed`` and ``backbones``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..data.options import ReadOptions
from ._common import (
    CacheDir,
    Config,
    Data,
    Device,
    EngineName,
    Html,
    Jobs,
    Overwrite,
    Pca,
    RayAddress,
    Seed,
    Size,
    Weights,
    backbone_option,
    command,
    out_console,
    print_kind,
    reads_dataset,
    user_errors,
)


@command()
@reads_dataset
def explore(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("explore"),
    per_class: Annotated[
        int, typer.Option("--per-class", min=0, help="Images per class in the sample grid (0: none).")
    ] = 8,
    html: Html = True,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit/--no-audit",
            help="Also audit the images (near-duplicates, leaks, outliers, unusable images) into OUT/audit, "
            "from the same pass.",
        ),
    ] = True,
    backbone: Annotated[
        str, typer.Option("--backbone", help="The audit's embedding for outliers: auto, none or a backbone name.")
    ] = "auto",
    cache_dir: CacheDir = None,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Class balance, missing labels, image sizes, problems, duplicates and the audit → report.md, plots, CSVs."""
    from ..audit.exploring import explore as run

    with user_errors():
        summary = run(
            data,
            out,
            per_class=per_class,
            html=html,
            audit=audit,
            backbone=backbone,
            cache_dir=cache_dir,
            random_state=seed,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
        )
    _print_explore(summary)
    out_console.print(f"report: {out / 'report.md'}")
    if "audit_report" in summary.paths:
        out_console.print(f"audit: {summary.paths['audit_report']}")


def _print_explore(summary: Any) -> None:
    table = Table(title=f"{summary.n_images} images, {summary.n_unlabeled} unlabeled", title_justify="left")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("share", justify="right")
    total = max(int(summary.class_counts.sum()), 1)
    for name, count in summary.class_counts.items():
        table.add_row(str(name), str(int(count)), f"{count / total:.1%}")
    out_console.print(table)
    out_console.print(
        f"imbalance ratio {summary.imbalance_ratio:.1f}:1 · problems {summary.n_problems} · duplicate groups "
        f"{summary.n_duplicate_groups} ({summary.n_conflicting_groups} with conflicting labels)"
    )


@command()
@reads_dataset
def split(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.csv or .parquet).")] = Path("split.csv"),
    valid_pct: Annotated[
        float, typer.Option("--valid-pct", min=0.0, max=0.99, help="Share of labeled images for validation.")
    ] = 0.2,
    folds: Annotated[
        int, typer.Option("--folds", min=0, help="Stratified folds over the training rows (0 = none).")
    ] = 5,
    keep_existing: Annotated[
        bool, typer.Option("--keep-existing", help="Keep a valid split given in the input; only assign folds.")
    ] = False,
    near_duplicates: Annotated[
        bool,
        typer.Option(
            "--near-duplicates/--no-near-duplicates",
            help="Keep near-duplicate images in one split and fold, and warn when given splits divide them.",
        ),
    ] = True,
    audit: Annotated[
        Path | None,
        typer.Option("--audit", help="audit.csv from `labelwise audit`: take its near-duplicate groups, measure none."),
    ] = None,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Stratified train/valid split and fold column, written as a table; the same seed gives the same split."""
    from ..data.splitting import split as run

    with user_errors():
        ds = run(
            data,
            out,
            valid_pct=valid_pct,
            folds=folds,
            keep_existing=keep_existing,
            near_duplicates=near_duplicates,
            audit=audit,
            random_state=seed,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
        )
    counts = ds.table.groupby("split").size().to_dict()
    out_console.print(" · ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {out}")


@command()
@reads_dataset
def embed(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("embed"),
    backbone: Annotated[str | None, backbone_option("Feature extractor.")] = "pixels",
    size: Size = None,
    weights: Weights = None,
    download: Annotated[
        bool,
        typer.Option("--download", help="Fetch missing pretrained weights once (timm/<name>); never done without it."),
    ] = False,
    pca: Pca = None,
    cache_dir: CacheDir = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")] = 64,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Data-loading worker processes.")] = None,
    device: Device = "auto",
    read: ReadOptions = ReadOptions(),
    seed: Seed = 0,
    overwrite: Overwrite = False,
    engine: EngineName = None,
    ray_address: RayAddress = None,
    config: Config = None,
) -> None:
    """One feature vector per image, cached by content hash: re-runs and added images cost only what is new."""
    from ..features import embed as run

    with user_errors():
        vectors = run(
            data,
            backbone=backbone or "pixels",
            size=size,
            weights=weights,
            download=download,
            pca=pca,
            cache_dir=cache_dir,
            batch_size=batch_size,
            num_workers=workers,
            device=device,
            random_state=seed,
            out=out,
            read=read,
            overwrite=overwrite,
            engine=engine,
            ray_address=ray_address,
        )
    out_console.print(f"{vectors.shape[0]} images × {vectors.shape[1]} features → {out / 'embeddings.npy'}")


@command()
def backbones() -> None:
    """List the feature extractors `embed` accepts (the same as `labelwise list backbones`)."""
    print_kind("backbones")


@command("list")
def list_kind(
    kind: Annotated[
        str | None,
        typer.Argument(
            metavar="KIND",
            show_default=False,
            help="backbones, models, detectors, pseudolabelers, aggregators, strategies, loop-models, choices or audits (default: all).",
        ),
    ] = None,
) -> None:
    """List what a pluggable kind offers, with a line on each: backbones, models, detectors, …"""
    from .._registry import KINDS

    _load_registries()
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}", param_hint="KIND")
    for name in [kind] if kind else list(KINDS):
        if kind is None:
            out_console.print(f"[bold]{name}[/]")
        print_kind(name)


def _load_registries() -> None:
    import importlib

    for module in ("features", "train.models", "noise", "semi", "crowd", "active", "loop", "audit"):
        importlib.import_module(f"labelwise.{module}")
