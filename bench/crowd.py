"""Crowd label aggregation on seven real datasets with gold, labelwise and crowd-kit side by side.

Prints accuracy on the gold tasks and wall time per dataset × method. Every method sees the
same answers (repeated (task, worker) rows kept, as in the datasets' README); the row
``ds (CLI input)`` reads the file through ``read_answers`` as ``labelwise aggregate`` does
(repeats dropped, first kept). Gold-aware methods get a random 10% of the gold tasks as
honeypots and are scored on the other 90%, next to ``ds`` scored on the same 90%.

Issue 8 targets: the labelwise default (``ds``) ≥ the best single crowd-kit method on ≥ 5 of
the 7 datasets and never more than 1 point below it; all seven in < 60 s.

crowd-kit's GLAD and MACE are slow (GLAD 5–275 s per dataset, MACE 10–134 s with its 10
restarts). By default MACE runs 1 restart (the same accuracy on all seven, 10× faster) and
GLAD at most 3 EM iterations on the four large datasets (the same or higher accuracy than its
default 100 there, still 40–100 s each); ``--full`` runs crowd-kit's defaults (about 20 minutes
on 2 CPU cores), ``--no-glad`` leaves GLAD out (the whole run then takes about a minute).

    python bench/crowd.py
    python bench/crowd.py --datasets dog,face --full
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from _npz import SHARED

from labelwise.crowd import DEFAULT_METHOD, aggregate_labels, read_answers
from labelwise.crowd._compat import crowdkit_class, quiet

CROWD = SHARED.parent / "crowd"
DATASETS = ("bluebirds", "dog", "face", "product", "possent", "adult", "relevance")
LARGE = {"product", "possent", "adult", "relevance"}


def load(name: str) -> tuple[pd.DataFrame, pd.Series]:
    answers = pd.read_csv(CROWD / name / "answers.csv", dtype=str)
    gold = pd.read_csv(CROWD / name / "gold.csv", dtype=str).set_index("task")["label"]
    return answers, gold


def timed(fn: Callable[[], pd.Series]) -> tuple[pd.Series, float]:
    start = time.perf_counter()
    labels = fn()
    return labels, time.perf_counter() - start


def crowdkit(name: str, answers: pd.DataFrame, *fit_args: Any, **options: Any) -> pd.Series:
    with quiet():
        return crowdkit_class(name)(**options).fit_predict(answers, *fit_args)


def run(name: str, *, full: bool, glad_too: bool, seed: int) -> list[dict[str, Any]]:
    answers, gold = load(name)
    rng = np.random.default_rng(seed)
    honeypots = gold.iloc[rng.permutation(len(gold))[: max(1, round(0.1 * len(gold)))]]
    scored = gold.drop(honeypots.index)
    glad = {} if full or name not in LARGE else {"n_iter": 3}
    mace = {} if full else {"n_restarts": 1}
    unsupervised: dict[str, Callable[[], pd.Series]] = {
        f"labelwise {DEFAULT_METHOD} (default)": lambda: aggregate_labels(answers, DEFAULT_METHOD).labels,
        "labelwise ds (CLI input)": lambda: (
            aggregate_labels(read_answers(CROWD / name / "answers.csv").table, DEFAULT_METHOD).labels
        ),
        "labelwise mv": lambda: aggregate_labels(answers, "mv").labels,
        "crowd-kit MV": lambda: crowdkit("MajorityVote", answers),
        "crowd-kit Wawa": lambda: crowdkit("Wawa", answers),
        "crowd-kit DS": lambda: crowdkit("DawidSkene", answers),
        "crowd-kit OneCoinDS": lambda: crowdkit("OneCoinDawidSkene", answers),
        **({"crowd-kit GLAD" + ("" if full else "*"): lambda: crowdkit("GLAD", answers, **glad)} if glad_too else {}),
        "crowd-kit MACE" + ("" if full else "*"): lambda: crowdkit("MACE", answers, **mace),
    }
    with_gold: dict[str, Callable[[], pd.Series]] = {
        "labelwise ds, no gold (same 90%)": lambda: aggregate_labels(answers, DEFAULT_METHOD).labels,
        "labelwise ds + 10% gold": lambda: aggregate_labels(answers, DEFAULT_METHOD, gold=honeypots).labels,
        "labelwise gold-mv @10%": lambda: aggregate_labels(answers, "gold-mv", gold=honeypots).labels,
        "crowd-kit DS + 10% gold": lambda: crowdkit("DawidSkene", answers, honeypots),
        "crowd-kit GoldMV @10%": lambda: crowdkit("GoldMajorityVote", answers, honeypots),
    }
    rows = []
    for block, methods, truth in (("unsupervised", unsupervised, gold), ("10% honeypots", with_gold, scored)):
        for method, fn in methods.items():
            try:
                labels, seconds = timed(fn)
            except ValueError as exc:  # crowd-kit GoldMV: "Skill value is missing" for workers without gold answers
                print(f"  {name:<10} {method:<34} fails: {str(exc).splitlines()[0][:70]}", flush=True)
                rows.append(
                    {
                        "dataset": name,
                        "block": block,
                        "method": method,
                        "accuracy": np.nan,
                        "seconds": np.nan,
                        "n_gold": len(truth),
                    }
                )
                continue
            acc = float((labels.reindex(truth.index).astype(str) == truth).mean())
            rows.append(
                {
                    "dataset": name,
                    "block": block,
                    "method": method,
                    "accuracy": acc,
                    "seconds": seconds,
                    "n_gold": len(truth),
                }
            )
            print(f"  {name:<10} {method:<34} {acc:.4f} {seconds:7.2f} s", flush=True)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    df = pd.DataFrame(rows)
    plain = df[df["block"] == "unsupervised"]
    acc = plain.pivot(index="method", columns="dataset", values="accuracy")
    sec = plain.pivot(index="method", columns="dataset", values="seconds")
    order = [d for d in DATASETS if d in acc.columns]
    default = f"labelwise {DEFAULT_METHOD} (default)"
    ck = acc.loc[[m for m in acc.index if m.startswith("crowd-kit")], order]
    best, best_name = ck.max(), ck.idxmax()
    diff = (acc.loc[default, order] - best) * 100
    print("\naccuracy on gold (unsupervised; all gold tasks)")
    table = acc.loc[list(dict.fromkeys(plain["method"])), order]  # methods in run order
    print(table.map(lambda v: f"{v:.4f}").to_string())
    print("\nseconds")
    print(sec.loc[table.index, order].map(lambda v: f"{v:.2f}").to_string())
    se = {
        d: math.sqrt(best[d] * (1 - best[d]) / int(plain.loc[plain["dataset"] == d, "n_gold"].iloc[0])) * 100
        for d in order
    }
    print("\nlabelwise default vs the best single crowd-kit method (points; ± one standard error of that accuracy)")
    for d in order:
        print(f"  {d:<10} {diff[d]:+6.2f}  (best: {best_name[d]} {best[d]:.4f}; ±{se[d]:.2f})")
    wins = int((diff >= -1e-9).sum())
    worst = float(diff.min())
    total = float(sec.loc[default, order].sum())
    if any(m.endswith("*") for m in table.index):
        print(
            "* capped: MACE 1 restart (default 10); GLAD at most 3 EM iterations on product, possent, adult, relevance"
        )
    print(
        f"\n≥ best on {wins} of {len(order)} (target ≥ 5 of 7); worst {worst:+.2f} points (target ≥ -1); "
        f"default on all {len(order)}: {total:.1f} s (target < 60 s)"
    )
    gold_block = df[df["block"] != "unsupervised"].pivot(index="method", columns="dataset", values="accuracy")
    print("\nwith a random 10% of gold tasks as honeypots (scored on the other 90%)")
    names = list(dict.fromkeys(df.loc[df["block"] != "unsupervised", "method"]))
    print(gold_block.loc[names, order].map(lambda v: "fails" if np.isnan(v) else f"{v:.4f}").to_string())
    return {"wins": wins, "worst_points": worst, "default_seconds": total, "diff_points": diff.round(3).to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--full", action="store_true", help="crowd-kit's GLAD and MACE with their default settings")
    parser.add_argument("--no-glad", action="store_true", help="leave crowd-kit's GLAD out (it takes most of the time)")
    parser.add_argument("--seed", type=int, default=0, help="which 10% of gold tasks are honeypots")
    parser.add_argument("--json", help="also write all rows and the summary here")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name in args.datasets.split(","):
        rows += run(name, full=args.full, glad_too=not args.no_glad, seed=args.seed)
    result = summary(rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"rows": rows, "summary": result}, fh, indent=2)


if __name__ == "__main__":
    main()
