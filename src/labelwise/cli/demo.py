"""The demo: ``labelwise demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import Config, Overwrite, Seed, command, out_console, user_errors


@command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("labelwise-demo"),
    seed: Seed = 0,
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Run the whole pipeline on scikit-learn's digits (no network): a messy ImageFolder, then every step."""
    from .._demo import run_demo

    with user_errors():
        result = run_demo(out, random_state=seed, overwrite=overwrite)
    if result["n_pseudo"]:
        out_console.print(
            f"missing labels: {result['n_pseudo']} unlabeled images pseudo-labeled "
            f"({result['pseudo_accuracy_vs_truth']:.1%} right), the {result['n_problematic']} least certain sent to a human"
        )
    out_console.print(
        f"wrong labels: {result['n_issues']} flagged ({result['issues_precision']:.0%} of them truly wrong, "
        f"{result['issues_recall']:.0%} of the {result['n_flipped']} planted found)"
    )
    out_console.print(
        f"held-out accuracy vs the true labels: {result['held_out_accuracy_vs_truth']:.1%} trained on the given labels, "
        f"{result['held_out_accuracy_vs_truth_after_cleaning']:.1%} after issues → clean → retrain"
    )
    out_console.print(
        f"closing the loop: {result['loop_answers']} answers from (simulated) people, labels right "
        f"{result['loop_label_accuracy_before']:.1%} → {result['loop_label_accuracy_after']:.1%} "
        "(a missing label counts as wrong)"
    )
    out_console.print(f"demo outputs in {out}/")
    for step, path in result["outputs"].items():
        out_console.print(f"  {step:<10} {path}")
