"""The ``labelwise`` command. Each command parses options, calls the library and
reports; errors in the user's input are printed as one line (exit status 2)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from .. import __version__
from .._run import recorded_run
from ..errors import LabelwiseError
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

app = typer.Typer(
    name="labelwise",
    help="Turn a messy image dataset into a trustworthy classifier and a clean label set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click errors: one "Error: ..." line, no box
)
out_console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("labelwise")


def _version(value: bool) -> None:
    if value:
        out_console.print(f"labelwise {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress messages (INFO).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show errors only.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
    handler.setLevel(level)
    log.handlers = [h for h in log.handlers if not isinstance(h, RichHandler)] + [handler]
    log.setLevel(logging.INFO)


@contextlib.contextmanager
def _command(out_dir: Path, name: str, config: dict[str, Any], *, stem: str = "") -> Iterator[dict[str, Any]]:
    """Record the run in ``out_dir`` and turn user errors into one line + exit status 2."""
    config = {k: v for k, v in config.items() if k != "config" and not callable(v)}
    try:
        with recorded_run(out_dir, name, config, stem=stem) as extra:
            yield extra
    except LabelwiseError as exc:
        log.debug("error: %s", exc)
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; outputs already written are kept", highlight=False)
        raise typer.Exit(130) from None


@app.command()
def explore(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("explore"),
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="Images per class in the sample grid.")] = 8,
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
    """Class balance, missing labels, image sizes, problems and duplicates → report.md, plots, problems.csv."""
    from ..data.explore import explore as run_explore

    with _command(out, "explore", locals()) as extra:
        read = read_options(images, unlabeled, filename_col, label_col, split_col, suffix, labels_key, classes, jobs)
        summary = run_explore(data, out, per_class=per_class, html=html, seed=seed, **read)
        extra["summary"] = summary.as_dict()
        _print_explore(summary)
        out_console.print(f"report: {out / 'report.md'}")


def _print_explore(summary: Any) -> None:
    table = Table(title=f"{summary.n_images} images, {summary.n_unlabeled} unlabeled", title_justify="left")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("share", justify="right")
    total = max(int(summary.class_counts.sum()), 1)
    for name, count in summary.class_counts.items():
        table.add_row(str(name), str(int(count)), f"{count / total:.1%}")
    out_console.print(table)
    ratio = summary.imbalance_ratio
    out_console.print(
        f"imbalance ratio {ratio:.1f}:1 · problems {summary.n_problems} · duplicate groups "
        f"{summary.n_duplicate_groups} ({summary.n_conflicting_groups} with conflicting labels)"
    )


@app.command()
def split(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.csv or .parquet).")] = Path("split.csv"),
    valid_pct: Annotated[float, typer.Option("--valid-pct", min=0.0, max=0.99, help="Share of labeled images for validation.")] = 0.2,
    folds: Annotated[int, typer.Option("--folds", min=0, help="Stratified folds over the training rows (0 = none).")] = 5,
    keep_existing: Annotated[bool, typer.Option("--keep-existing", help="Keep a valid split given in the input; only assign folds.")] = False,
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
    """Stratified train/valid split and fold column, written as a table; the same seed gives the same split."""
    from ..data.split import split as run_split

    with _command(out.parent, "split", locals(), stem=out.stem) as extra:
        read = read_options(images, unlabeled, filename_col, label_col, split_col, suffix, labels_key, classes, jobs)
        ds = run_split(data, out, valid_pct=valid_pct, folds=folds, seed=seed, keep_existing=keep_existing, **read)
        counts = ds.table.groupby("split").size().to_dict()
        extra["counts"] = counts
        out_console.print(" · ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {out}")


@app.command()
def embed(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("embed"),
    backbone: Annotated[str, typer.Option("--backbone", "-b", help="Feature extractor (see `labelwise backbones`).")] = "pixels",
    size: Annotated[Optional[int], typer.Option("--size", min=1, help="Input size in pixels (default per backbone).")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Weights file (state_dict) for the backbone.")] = None,
    pca: Annotated[Optional[int], typer.Option("--pca", min=1, help="Reduce the features with PCA to N dims.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache (default ~/.cache/labelwise).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    workers: Annotated[Optional[int], typer.Option("--workers", min=0, help="Data-loading worker processes.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
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
    """One feature vector per image, cached by content hash: re-runs and added images cost only what is new."""
    from .. import load_dataset
    from ..features import embed as run_embed

    with _command(out, "embed", locals()) as extra:
        read = read_options(images, unlabeled, filename_col, label_col, split_col, suffix, labels_key, classes, jobs)
        ds = load_dataset(data, **read)
        vectors = run_embed(
            ds,
            backbone=backbone,
            size=size,
            weights=weights,
            pca=pca,
            cache_dir=cache_dir,
            batch_size=batch_size,
            num_workers=workers,
            device=device,
            random_state=seed,
            out=out,
        )
        ds.save(out)
        extra.update(n_images=int(vectors.shape[0]), dim=int(vectors.shape[1]))
        out_console.print(f"{vectors.shape[0]} images × {vectors.shape[1]} features → {out / 'embeddings.npy'}")


@app.command()
def backbones() -> None:
    """List the feature extractors `embed` accepts."""
    from ..features import list_backbones

    for name in list_backbones():
        out_console.print(name)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("labelwise-demo"),
    seed: Seed = 0,
    config: Config = None,
) -> None:
    """Run the whole pipeline on scikit-learn's digits (no network): a messy ImageFolder, then every step."""
    from .._demo import run_demo

    with _command(out, "demo", locals()) as extra:
        result = run_demo(out, seed=seed)
        extra.update(result)
        out_console.print(f"demo outputs in {out}/")
        for step, path in result["outputs"].items():
            out_console.print(f"  {step:<10} {path}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
