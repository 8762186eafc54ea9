"""Active-learning commands: ``query``, ``simulate`` and ``plot-curves``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..active.curves import DEFAULT_TARGET
from ..active.models import DEFAULT_MODEL
from ..active.strategies import (
    AUTO_TYPICLUST_PER_CLASS,
    DEFAULT_STRATEGY,
)
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
    choice_help,
    command,
    out_console,
    reads_dataset,
    user_errors,
)

Epochs = Annotated[
    int, typer.Option("--epochs", min=1, help="Epochs of the torch models in the loop (linear, mlp, cnn, torchvision).")
]
Pretrained = Annotated[
    bool,
    typer.Option(
        "--pretrained/--no-pretrained",
        help="torchvision models in the loop start from the official weights in the torch hub cache (nothing is downloaded).",
    ),
]
STRATEGY_HELP = choice_help(
    "strategies",
    f"Default {DEFAULT_STRATEGY}: typiclust below {AUTO_TYPICLUST_PER_CLASS} labels per class, then diverse_margin.",
)
MODEL_HELP = choice_help(
    "loop-models",
    f"Default {DEFAULT_MODEL} (label spreading over the pool's embeddings, averaged "
    "with a logistic regression on the labels and the spread pseudo-labels).",
)
Semi = Annotated[
    bool,
    typer.Option(
        "--semi/--no-semi",
        help="Train a supervised model in the loop also on the pool's pseudo-labels from label spreading, weighted by their probability (spreading and spreading_logreg are semi-supervised already).",
    ),
]
BACKBONE_HELP = "Embedding backbone (default: efficientnet_lite0 for colour photos when labelwise[pretrained] is installed, else simclr, else pixels)."


@command()
@reads_dataset
def query(
    data: Data,
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="How many images to pick.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("query"),
    strategy: Annotated[str, typer.Option("--strategy", "-s", help=f"Strategy: {STRATEGY_HELP}")] = DEFAULT_STRATEGY,
    model: Annotated[str, typer.Option("--model", "-m", help=f"Model in the loop: {MODEL_HELP}")] = DEFAULT_MODEL,
    semi: Semi = False,
    backbone: Annotated[str | None, backbone_option(BACKBONE_HELP)] = None,
    pca: Pca = None,
    size: Size = None,
    weights: Weights = None,
    cache_dir: CacheDir = None,
    epochs: Epochs = 30,
    pretrained: Pretrained = True,
    device: Device = "auto",
    root: Annotated[
        Path | None,
        typer.Option(
            "--root", help="Folder the Label Studio image URLs are relative to (default: the images' common folder)."
        ),
    ] = None,
    url_prefix: Annotated[
        str | None, typer.Option("--url-prefix", help="Serve images from PREFIX/<relative path>.")
    ] = None,
    html: Html = True,
    near_duplicates: Annotated[
        bool,
        typer.Option(
            "--near-duplicates/--no-near-duplicates",
            help="Never ask about a near-duplicate of a labeled image or of another pick.",
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
    """Choose the unlabeled images to label next: query.csv and Label Studio import JSON with pre-annotations."""
    from ..active.querying import query as run

    with user_errors():
        result = run(
            data,
            out,
            n=n,
            strategy=strategy,
            model=model,
            semi=semi,
            backbone=backbone,
            size=size,
            weights=weights,
            pca=pca,
            cache_dir=cache_dir,
            epochs=epochs,
            pretrained=pretrained,
            device=device,
            root=root,
            url_prefix=url_prefix,
            html=html,
            near_duplicates=near_duplicates,
            audit=audit,
            random_state=seed,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
        )
    i = result.figures
    out_console.print(
        f"{i['n_picked']} of {i['n_unlabeled']} unlabeled images chosen by {strategy} "
        f"({i['n_labeled']} labels) → {out / 'query.csv'}, {out / 'label_studio_tasks.json'}"
    )


@command()
@reads_dataset
def simulate(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("simulate"),
    grid: Annotated[
        Path | None,
        typer.Option(
            "--grid",
            help="YAML grid of experiments (strategies × models × seeds …); the options here are its defaults.",
            dir_okay=False,
        ),
    ] = None,
    strategies: Annotated[
        str, typer.Option("--strategies", "-s", help=f"Comma-separated strategies: {STRATEGY_HELP}")
    ] = "random,auto",
    model: Annotated[
        str, typer.Option("--model", "-m", help=f"Model(s) in the loop, comma-separated: {MODEL_HELP}")
    ] = DEFAULT_MODEL,
    backbone: Annotated[
        str | None,
        backbone_option(
            "Embedding backbone(s), comma-separated (default: efficientnet_lite0 for colour photos when labelwise[pretrained] is installed, else simclr, else pixels)."
        ),
    ] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds; each is one repetition.")] = "0,1,2",
    n_start: Annotated[
        int, typer.Option("--n-start", min=1, help="Labels to start with (per class with --per-class).")
    ] = 20,
    per_class: Annotated[bool, typer.Option("--per-class", help="--n-start counts labels per class.")] = False,
    start: Annotated[
        str, typer.Option("--start", help="How the first labels are chosen: random or typiclust.")
    ] = "random",
    n_new: Annotated[int, typer.Option("--n-new", min=1, help="Labels added per round.")] = 40,
    rounds: Annotated[int, typer.Option("--rounds", min=0, help="Rounds after the start.")] = 10,
    patience: Annotated[
        int | None, typer.Option("--patience", min=1, help="Stop a run after N rounds without a better test accuracy.")
    ] = None,
    epochs: Epochs = 30,
    semi: Semi = False,
    augment: Annotated[
        str,
        typer.Option(
            "--augment",
            help="Augmentation of the models in the loop that take pixels (cnn, torchvision): none, light or strong.",
        ),
    ] = "none",
    pretrained: Pretrained = True,
    weights: Weights = None,
    pca: Pca = None,
    size: Size = None,
    test_pct: Annotated[
        float,
        typer.Option(
            "--test-pct",
            min=0.01,
            max=0.9,
            help="Share of labeled images held out for testing when there is no test split.",
        ),
    ] = 0.2,
    target: Annotated[
        float, typer.Option("--target", min=0.0, max=1.0, help="Accuracy whose label cost the summary reports.")
    ] = DEFAULT_TARGET,
    cache_dir: CacheDir = None,
    device: Device = "auto",
    html: Html = True,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    engine: EngineName = None,
    ray_address: RayAddress = None,
    config: Config = None,
) -> None:
    """Simulate active learning on labeled data (the labels are the oracle): results.csv, learning curves, AUC table."""
    from ..active.simulation import simulate as run

    with user_errors():
        result = run(
            data,
            out,
            grid=grid,
            strategies=strategies,
            models=model,
            backbones=backbone,
            seeds=seeds,
            n_start=n_start,
            per_class=per_class,
            start=start,
            n_new=n_new,
            rounds=rounds,
            patience=patience,
            epochs=epochs,
            semi=semi,
            augment=augment,
            pretrained=pretrained,
            weights=weights,
            size=size,
            pca=pca,
            test_pct=test_pct,
            target=target,
            cache_dir=cache_dir,
            device=device,
            html=html,
            random_state=seed,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
            engine=engine,
            ray_address=ray_address,
        )
    _print_summary(result.curves, target)
    out_console.print(f"results → {out / 'results.csv'}; curves: {out / 'curves.png'}; report: {out / 'report.md'}")


@command("plot-curves")
def plot_curves(
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Output folder of `labelwise simulate` (or its results.csv).", show_default=False
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: DIR/curves).")] = None,
    metric: Annotated[str, typer.Option("--metric", help="accuracy or balanced_accuracy.")] = "accuracy",
    target: Annotated[
        float, typer.Option("--target", min=0.0, max=1.0, help="Report the labels needed to reach this value.")
    ] = DEFAULT_TARGET,
    html: Html = True,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Learning curves (mean ± std over seeds), area under each curve and labels needed to reach --target."""
    from ..active.curves import plot_curves as run

    dest = out or (folder if folder.is_dir() else folder.parent) / "curves"
    with user_errors():
        summary = run(folder, dest, metric=metric, target=target, html=html, overwrite=overwrite)
    _print_summary(summary, target)
    out_console.print(f"curves: {dest / 'curves.png'}; table: {dest / 'summary.csv'}; report: {dest / 'report.md'}")


def _print_summary(summary: Any, target: float) -> None:
    from rich.table import Table

    table = Table(title=f"area under the learning curve, labels to reach {target:g}", title_justify="left")
    for col in ("experiment", "strategy", "auc", "final", "labels to target"):
        table.add_column(col, justify="left" if col in ("experiment", "strategy") else "right")
    for row in summary.to_dict("records"):
        reach = row["labels_to_target"]
        table.add_row(
            str(row["experiment"]),
            str(row["strategy"]),
            f"{row['auc']:.4f} ± {row['auc_std']:.4f}",
            f"{row['final']:.4f} @ {row['final_n_labels']}",
            "—" if reach != reach else f"{int(reach)}",
        )
    out_console.print(table)
