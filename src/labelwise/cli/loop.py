"""``labelwise loop``: choose what people should label, get their answers, decide, merge, retrain."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from ._common import CacheDir, Config, Seed, Size, backbone_option, command, out_console, user_errors


def _choices_help(text: str) -> str:
    from ..loop.value import CHOICES

    return CHOICES.help(text)


@command()
def loop(
    data: Annotated[
        Path,
        typer.Argument(
            metavar="DATA|PROJECT",
            show_default=False,
            help="The dataset (any input labelwise reads; rows of the --hold-out split measure the model), or a loop project folder to continue.",
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Project folder to make.")] = None,
    budget: Annotated[
        int | None, typer.Option("--budget", min=1, help="Answers to spend in all (a continued loop: a new total).")
    ] = None,
    per_round: Annotated[
        int | None, typer.Option("--per-round", min=1, help="Answers a round (default: a fifth of the budget).")
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            "--answers",
            help="The round's answers: a Label Studio export, Toloka TSV or answers CSV (task/sample_id, worker, label).",
        ),
    ] = None,
    simulate_answers: Annotated[
        Path | None,
        typer.Option(
            "--simulate-answers",
            help="Recorded answers (sample_id, worker, label; several per image) handed out in order instead of asking people.",
        ),
    ] = None,
    annotators: Annotated[
        str | None, typer.Option("--annotators", help="The labeling page's annotators: names a,b,c or a count.")
    ] = None,
    choose: Annotated[str, typer.Option("--choose", help=_choices_help("How a round's queue is ordered."))] = "value",
    backbone: Annotated[
        str | None,
        backbone_option(
            "Features of the cheap model (default: efficientnet_lite0 for colour photos when installed, else pixels)."
        ),
    ] = None,
    size: Size = None,
    cache_dir: CacheDir = None,
    hold_out: Annotated[
        str, typer.Option("--hold-out", help="Split never asked about; it measures the retrained model.")
    ] = "test",
    max_answers: Annotated[int, typer.Option("--max-answers", min=1, help="Answers an image may get in all.")] = 3,
    duplicate_similarity: Annotated[
        float,
        typer.Option(
            "--duplicate-similarity",
            min=0.5,
            max=1.0,
            help="Cosine similarity at which two images are near-duplicates (only one is asked).",
        ),
    ] = 0.97,
    final_model: Annotated[
        str, typer.Option("--final-model", help="Model trained on the final labels in PROJECT/model ('none' to skip).")
    ] = "linear",
    rounds: Annotated[
        int | None, typer.Option("--rounds", min=1, help="Stop after this many rounds (rerun to continue).")
    ] = None,
    status: Annotated[bool, typer.Option("--status", help="Print the project's rounds so far and exit.")] = False,
    host: Annotated[
        str, typer.Option("--host", help="Labeling page address (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: a free one).")] = None,
    seed: Seed = 0,
    config: Config = None,
) -> None:
    """Close the loop: ask people about the images where an answer corrects the most labels, decide with the model, merge, retrain."""
    with user_errors():
        from ..loop import loop as run_loop
        from ..loop import loop_status

        if status:
            table = loop_status(data)
            if not len(table):
                out_console.print(f"{data}: no round yet")
            else:
                shown = [
                    c
                    for c in ("round", "stage", "asked", "answers", "estimated_label_accuracy", "test_accuracy")
                    if c in table.columns
                ]
                out_console.print(table[shown].to_string(index=False))
                out_console.print(f"answers spent: {int(table['answers'].sum())}")
            return

        def ready(url: str) -> None:
            folder = Path(out or data)
            links = folder / "links.csv"
            out_console.print(
                f"labeling page: {url} (the round waits for its answers; Ctrl-C stops, rerunning continues)"
            )
            if links.exists():
                with links.open(newline="") as f:
                    for row in csv.DictReader(f):
                        out_console.print(f"  {row['annotator']}: {url}#token={row['token']}", soft_wrap=True)

        result = run_loop(
            data,
            out,
            budget=budget,
            per_round=per_round,
            answers=answers,
            simulate_answers=simulate_answers,
            choose=choose,
            annotators=annotators,
            backbone=backbone,
            size=size,
            cache_dir=cache_dir,
            hold_out=hold_out,
            max_answers=max_answers,
            duplicate_similarity=duplicate_similarity,
            final_model=None if final_model.lower() == "none" else final_model,
            rounds=rounds,
            host=host,
            port=port,
            on_ready=ready,
            random_state=seed,
        )
    s = result.summary()
    state = "finished" if result.finished else "stopped (rerun `labelwise loop PROJECT` to continue)"
    out_console.print(
        f"loop {state}: {s['rounds']} round(s), {s['answers_spent']} answer(s); estimated label accuracy "
        f"{s['estimated_label_accuracy']}, test accuracy {s['test_accuracy']} → {result.folder / 'report.html'}"
    )
