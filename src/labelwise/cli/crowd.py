"""Commands for several annotators: ``aggregate``, ``tasks`` and ``propagate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ..crowd.consensus import CONSENSUS_MIN
from ..crowd.methods import DEFAULT_METHOD
from ._common import (
    CacheDir,
    Config,
    Device,
    Html,
    Overwrite,
    Seed,
    Size,
    Weights,
    backbone_option,
    choice_help,
    command,
    out_console,
    user_errors,
)

if TYPE_CHECKING:
    from ..crowd.importers import Format
    from ..crowd.tasks import TaskFormat

Gold = Annotated[
    Path | None,
    typer.Option("--gold", help="Known answers: CSV with a task (or sample_id/image) column, label[, hint]."),
]
Classes = Annotated[Path | None, typer.Option("--classes", help="classes.json fixing the class list and order.")]
FromName = Annotated[
    str | None,
    typer.Option(
        "--from-name",
        help="Label Studio Choices tag (or Toloka OUTPUT field) holding the label, when there are several.",
    ),
]

# The gold split and honeypot mixing: `tasks` and `label` mean the same by them.
TrainingPct = Annotated[
    float, typer.Option("--training-pct", min=0, max=100, help="Share of gold images for training tasks (with hints).")
]
ExamPct = Annotated[
    float,
    typer.Option("--exam-pct", min=0, max=100, help="Share of gold images for the exam; the rest are honeypots."),
]
PageSize = Annotated[
    int, typer.Option("--page-size", min=2, help="Honeypots are mixed in per page of this many tasks.")
]
HoneypotsPerPage = Annotated[
    int, typer.Option("--honeypots-per-page", min=0, help="Honeypots in every page of --page-size tasks.")
]


@command()
def aggregate(
    answers: Annotated[
        Path,
        typer.Argument(
            metavar="ANSWERS",
            show_default=False,
            help="Label Studio export (JSON, JSON-MIN, CSV), a folder of per-annotator exports, a Toloka results TSV, a CSV task,worker,label, or a `labelwise label` project folder (its database, with its gold).",
        ),
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="auto, labelstudio, labelstudio-min, labelstudio-csv, toloka, csv or labelwise-db."
        ),
    ] = "auto",
    method: Annotated[
        str, typer.Option("--method", "-m", help=choice_help("aggregators", f"Method (default {DEFAULT_METHOD})."))
    ] = DEFAULT_METHOD,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("aggregate"),
    gold: Gold = None,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Folder of the real image files: match every exported image to one file (per annotator folder when it exists); identical files become one task.",
        ),
    ] = None,
    from_name: FromName = None,
    consensus_test: Annotated[
        bool,
        typer.Option(
            "--consensus-test",
            help="Mark tasks with --consensus-min answers or more and a clear majority as split=test.",
        ),
    ] = False,
    consensus_min: Annotated[
        int, typer.Option("--consensus-min", min=1, help="Answers a task needs for the consensus test split.")
    ] = CONSENSUS_MIN,
    classes: Classes = None,
    html: Html = True,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """One label per task from several annotators: labels.csv, annotators.csv, agreement and a report."""
    from ..crowd.consensus import aggregate_answers

    with user_errors():
        result = aggregate_answers(
            answers,
            out,
            format=cast("Format", format),  # checked by aggregate_answers
            method=method,
            gold=gold,
            classes=classes,
            from_name=from_name,
            images=images,
            consensus_test=consensus_test,
            consensus_min=consensus_min,
            html=html,
            overwrite=overwrite,
        )
    f = result.figures
    out_console.print(
        f"{f['answers']:,} answers · {f['workers']} annotators · {f['tasks']:,} tasks · method {method} · "
        f"Krippendorff's alpha {f['krippendorff_alpha']}"
    )
    if f["dropped"]:
        out_console.print("left out: " + ", ".join(f"{n:,} {r}" for r, n in f["dropped"].items()))
    out_console.print(
        f"labels → {out / 'labels.csv'}; annotators → {out / 'annotators.csv'}; report: {out / 'report.md'}"
    )


@command()
def tasks(
    images: Annotated[
        Path,
        typer.Argument(
            metavar="IMAGES",
            show_default=False,
            help="Folder of images to label (every image below it), or any input labelwise reads.",
        ),
    ],
    format: Annotated[
        str, typer.Option("--format", "-f", help="labelstudio (import JSON) or toloka (TSV).")
    ] = "labelstudio",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("tasks"),
    gold: Gold = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="Probability table (sample_id, prob_<class>…): pre-annotations with score."),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Folder the image URLs are relative to (Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT); default the images' common folder.",
        ),
    ] = None,
    url_prefix: Annotated[
        str | None, typer.Option("--url-prefix", help="Serve images from PREFIX/<relative path> (needed for Toloka).")
    ] = None,
    training_pct: TrainingPct = 30,
    exam_pct: ExamPct = 20,
    page_size: PageSize = 50,
    honeypots_per_page: HoneypotsPerPage = 1,
    overlap: Annotated[int, typer.Option("--overlap", min=1, help="Annotators per task.")] = 1,
    annotators: Annotated[
        str | None,
        typer.Option(
            "--annotators",
            help="Label Studio: comma-separated names (or a count); one task file each, tasks shared out with --overlap.",
        ),
    ] = None,
    model_version: Annotated[
        str, typer.Option("--model-version", help="model_version of the pre-annotations.")
    ] = "labelwise",
    from_name: Annotated[str, typer.Option("--from-name", help="Name of the Choices tag.")] = "choice",
    classes: Classes = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Labeling tasks for a set of images: Label Studio import JSON or Toloka TSV, gold split, honeypots, manifest."""
    from ..crowd.tasks import make_tasks

    with user_errors():
        result = make_tasks(
            images,
            out,
            format=cast("TaskFormat", format),  # checked by make_tasks
            gold=gold,
            predictions=predictions,
            root=root,
            url_prefix=url_prefix,
            training_pct=training_pct,
            exam_pct=exam_pct,
            page_size=page_size,
            per_page=honeypots_per_page,
            overlap=overlap,
            annotators=annotators,
            classes=classes,
            from_name=from_name,
            model_version=model_version,
            random_state=seed,
            overwrite=overwrite,
        )
    out_console.print(" · ".join(f"{k} {v}" for k, v in result.counts.items() if v) + f" → {out}/")
    for env in result.info.get("label_studio_env", []):
        out_console.print(f"  Label Studio needs: {env}", soft_wrap=True)


@command()
def propagate(
    data: Annotated[
        Path,
        typer.Argument(
            metavar="IMAGES",
            show_default=False,
            help="The images: an ImageFolder (its labels are kept), a folder of unlabeled images, or any input labelwise reads.",
        ),
    ],
    labels: Annotated[Path, typer.Option("--labels", help="labels.csv of `labelwise aggregate` (or its folder).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("propagate"),
    neighbors: Annotated[int, typer.Option("--neighbors", "-n", min=1, help="Labeled neighbours that vote.")] = 10,
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0, help="Least vote share to accept a label.")
    ] = 0.9,
    min_confidence: Annotated[
        float, typer.Option("--min-confidence", min=0.0, max=1.0, help="Trust crowd labels only from this confidence.")
    ] = 0.0,
    backbone: Annotated[
        str | None,
        backbone_option(
            "Embedding backbone (default: efficientnet_lite0 for colour photos when labelwise[pretrained] is installed, else pixels)."
        ),
    ] = None,
    size: Size = None,
    weights: Weights = None,
    cache_dir: CacheDir = None,
    device: Device = "auto",
    html: Html = True,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Spread crowd labels to the unlabeled images by kNN on embeddings: dataset.csv, propagated.csv, report."""
    from ..crowd.propagation import propagate as run

    with user_errors():
        table = run(
            data,
            labels,
            out,
            k=neighbors,
            threshold=threshold,
            min_confidence=min_confidence,
            backbone=backbone,
            size=size,
            weights=weights,
            cache_dir=cache_dir,
            device=device,
            random_state=seed,
            html=html,
            overwrite=overwrite,
        )
    counts = table["label_source"].fillna("unlabeled").value_counts().to_dict()
    out_console.print(" · ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {out / 'dataset.csv'}")
