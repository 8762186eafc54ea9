"""``labelwise label``: serve a labeling page for the images only a person can decide."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import Config, Seed, command, out_console, user_errors
from .crowd import ExamPct, HoneypotsPerPage, PageSize, TrainingPct

if TYPE_CHECKING:
    from ..labeling.project import LabelingProject


@command()
def label(
    queue: Annotated[
        Path,
        typer.Argument(
            metavar="QUEUE|DIR",
            show_default=False,
            help="What to label: problematic.csv (pseudolabel), query.csv (query), label_issues.csv (issues: review mode), a labelwise table, a folder of images, or any CSV with a sample_id or path column; or a project folder to continue.",
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Project folder to make (labels.db, queue, record).")
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Folder the queue's relative paths are below; images are served from it only."),
    ] = None,
    gold: Annotated[
        Path | None,
        typer.Option(
            "--gold", help="Known answers (sample_id/path, label[, hint]): training tasks, an exam and honeypots."
        ),
    ] = None,
    classes: Annotated[
        str | None, typer.Option("--classes", help="Class names a,b,c or a classes.json (default: from the queue).")
    ] = None,
    annotators: Annotated[
        str | None, typer.Option("--annotators", help="Comma-separated names (or a count): one private link each.")
    ] = None,
    add_annotator: Annotated[
        list[str] | None,
        typer.Option("--add-annotator", help="Add an annotator to a project (repeatable); prints the link."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL for a team server (postgresql://user:pass@host/db); default DIR/labels.db."
        ),
    ] = None,
    overlap: Annotated[int, typer.Option("--overlap", min=1, help="Answers wanted per task.")] = 1,
    max_overlap: Annotated[
        int | None,
        typer.Option(
            "--max-overlap",
            min=1,
            help="Ask more people, up to this many, where the answers leave the label uncertain.",
        ),
    ] = None,
    confident: Annotated[
        float,
        typer.Option("--confident", min=0, max=1, help="Dawid-Skene posterior at which a task needs no more answers."),
    ] = 0.9,
    lease: Annotated[
        float, typer.Option("--lease", min=1, help="Seconds an annotator holds a task before it goes back to the pool.")
    ] = 120,
    exam_pass: Annotated[
        float, typer.Option("--exam-pass", min=0, max=1, help="Share of the exam to get right before real tasks.")
    ] = 0.8,
    min_gold_accuracy: Annotated[
        float | None,
        typer.Option(
            "--min-gold-accuracy", min=0, max=1, help="Stop an annotator whose honeypot accuracy falls below this."
        ),
    ] = None,
    training_pct: TrainingPct = 30,
    exam_pct: ExamPct = 20,
    page_size: PageSize = 50,
    honeypots_per_page: HoneypotsPerPage = 1,
    grid_size: Annotated[
        int, typer.Option("--grid-size", min=4, max=96, help="Thumbnails per page in grid mode.")
    ] = 36,
    all_rows: Annotated[
        bool, typer.Option("--all-rows", help="label_issues.csv: review every label, not only the flagged ones.")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Write the answers (answers.csv, or a Label Studio export.json) and exit."),
    ] = None,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; anything but 127.0.0.1 exposes the page to the network."),
    ] = "127.0.0.1",
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: a free one).")] = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Make the project and print the links, without serving.")
    ] = False,
    seed: Seed = 0,
    config: Config = None,
) -> None:
    """Label in the browser: one private link per annotator, honeypots, overlap, answers in a database."""
    from ..labeling.project import label as run_label

    def ready(project: LabelingProject) -> None:
        _print_links(project)
        out_console.print("Ctrl-C stops the server; `labelwise label DIR` continues where it stopped.")

    with user_errors():
        project = run_label(
            queue,
            out,
            images=images,
            gold=gold,
            classes=classes,
            annotators=annotators,
            add_annotators=add_annotator or [],
            db=db,
            overlap=overlap,
            max_overlap=max_overlap,
            confident=confident,
            lease=lease,
            exam_pass=exam_pass,
            min_gold_accuracy=min_gold_accuracy,
            training_pct=training_pct,
            exam_pct=exam_pct,
            page_size=page_size,
            honeypots_per_page=honeypots_per_page,
            grid_size=grid_size,
            all_rows=all_rows,
            export=export,
            serve=not no_serve,
            host=host,
            port=port,
            on_ready=ready,
            random_state=seed,
        )
    if project.exported is not None:
        out_console.print(f"answers → {project.exported}")
    elif project.url is None and project.links:  # not served: made, or annotators added
        _print_links(project)


def _print_links(project: LabelingProject) -> None:
    names = {"task": "tasks", "training": "training tasks", "exam": "exam tasks", "honeypot": "honeypots"}
    counts = " · ".join(f"{n:,} {names.get(k, k)}" for k, n in project.counts.items() if n)
    out_console.print(f"project {project.folder}: {counts}")
    if project.links and not any("://" in link for link in project.links.values()):
        out_console.print(
            f"tokens (the server is not running: `labelwise label {project.folder}` serves the page; "
            "open its address with #token=TOKEN):"
        )
    for name, link in project.links.items():
        out_console.print(f"  {name}: {link}", soft_wrap=True)
