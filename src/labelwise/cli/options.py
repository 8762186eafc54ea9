"""Options shared by several commands, and ``--config FILE.yaml`` support."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml

from ..errors import LabelwiseError


def load_config(ctx: typer.Context, param: Any, value: Optional[Path]) -> Optional[Path]:
    """Eager callback: a YAML mapping of option names becomes the command's defaults.

    Flags given on the command line still win; an unknown key is an error naming it.
    """
    if value is None:
        return value
    try:
        data = yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise typer.BadParameter(f"{value}: file not found") from None
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{value}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{value}: expected a mapping of option names to values")
    names = {p.name for p in ctx.command.params if p.name not in {"config"}}
    resolved = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(k for k in resolved if k not in names)
    if unknown:
        raise typer.BadParameter(f"{value}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    ctx.default_map = {**(ctx.default_map or {}), **resolved}
    return value


Config = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        help="YAML file of option values (keys as option names); flags on the command line win.",
        is_eager=True,
        callback=load_config,
        dir_okay=False,
    ),
]
Data = Annotated[
    Path,
    typer.Argument(
        metavar="DATA",
        help="Image folder (root/<class>/...), CSV/TSV of file names and labels, ordered label .txt, .npz, "
        "or a labelwise table (.csv/.parquet).",
        show_default=False,
    ),
]
Images = Annotated[
    Optional[Path],
    typer.Option("--images", help="Image folder for a CSV (paths relative to it) or an ordered label .txt."),
]
Unlabeled = Annotated[Optional[Path], typer.Option("--unlabeled", help="Extra folder of unlabeled images.")]
FilenameCol = Annotated[Optional[str], typer.Option("--filename-col", help="CSV column (name or 0-based position) of file names.")]
LabelCol = Annotated[Optional[str], typer.Option("--label-col", help="CSV column (name or position) of labels.")]
SplitCol = Annotated[Optional[str], typer.Option("--split-col", help="CSV column with split names or is_valid booleans.")]
Suffix = Annotated[str, typer.Option("--suffix", help="Appended to CSV file names (e.g. .jpg).")]
LabelsKey = Annotated[Optional[str], typer.Option("--labels-key", help="Array of labels in an .npz (default: labels/y).")]
Classes = Annotated[Optional[Path], typer.Option("--classes", help="classes.json fixing the class list and order.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Threads for reading and checking images.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]


def read_options(
    images: Optional[Path],
    unlabeled: Optional[Path],
    filename_col: Optional[str],
    label_col: Optional[str],
    split_col: Optional[str],
    suffix: str,
    labels_key: Optional[str],
    classes: Optional[Path],
    jobs: int,
) -> dict[str, Any]:
    """Keyword arguments for :func:`labelwise.load_dataset` from the shared options."""
    return dict(
        images=images,
        unlabeled=unlabeled,
        filename_col=_column(filename_col),
        label_col=_column(label_col),
        split_col=_column(split_col),
        suffix=suffix,
        labels_key=labels_key,
        classes=classes,
        n_jobs=jobs,
    )


def _column(spec: Optional[str]) -> str | int | None:
    if spec is None:
        return None
    if not spec.strip():
        raise LabelwiseError("a column name or position cannot be empty")
    return spec
