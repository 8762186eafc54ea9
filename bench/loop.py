"""`labelwise loop` with real human answers: CIFAR-10N, whose every training image has three labels by
three different people (random_label1/2/3).

Pool: the first 10,000 CIFAR-10 training images (--quick: 3,000); test: the 10,000 CIFAR-10 test images
(--quick: 2,000) with their clean labels. Features: efficientnet_lite0 (cached once).

- noisy: given labels = random_label1 (about 17% wrong); asking about image i returns random_label2, then
  random_label3.
- missing: 500 clean given labels (50 per class; --quick 200), the rest unlabeled; answers random_label1, 2, 3.

Rows per scenario and budget: no people (given; given + pseudo), automatic only (issues' verdict →
relabel the flagged), random images sent to people (the loop with --choose random), the crude loop
(the anchor: 5-fold logistic-regression probabilities, cleanlab's label-quality rank, one recorded
answer for each of the B most suspicious, label = argmax(given one-hot + answer one-hot + probabilities)),
and labelwise loop (default). Each prints the accuracy of the final label set against the clean labels,
the test accuracy of one head (logistic regression on the same features) retrained on it, the answers
spent and the wall time. --rules also runs the loop's other choice rules. Also printed for the loop: on
the images people answered, its decisions (people + model) against the people alone (majority, ties to
the given label).

    python bench/loop.py --quick
    python bench/loop.py --budgets 500,1000,2000
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _npz import SHARED, concat, npz_rows

from labelwise.data import Dataset
from labelwise.features import embed
from labelwise.loop import loop
from labelwise.loop.context import reduced
from labelwise.loop.scoring import fit_head

CIFAR = SHARED / "cifar10n" / "cifar10n_train_jpeg.npz"
CIFAR10H = SHARED / "cifar10h" / "cifar10h_test.npz"


def load(quick: bool) -> tuple[Dataset, np.ndarray, dict[str, np.ndarray]]:
    n_pool, n_test = (3000, 2000) if quick else (10_000, 10_000)
    pool = npz_rows(CIFAR, np.arange(n_pool), "train", labels_key="clean_label")
    test = npz_rows(CIFAR10H, np.arange(n_test), "test")
    raw = np.load(CIFAR)
    people = {k: raw[k][:n_pool].astype(int) for k in ("random_label1", "random_label2", "random_label3")}
    clean = raw["clean_label"][:n_pool].astype(int)
    return concat(pool, test), clean, people


def head_accuracy(x_pool, labels, weights, x_test, y_test, k):  # type: ignore[no-untyped-def]
    have = labels >= 0
    predict = fit_head(x_pool[have], labels[have], k, weights=None if weights is None else weights[have])
    return float((predict(x_test).argmax(1) == y_test).mean())


def crude_loop(x, given, answers, budget, k):  # type: ignore[no-untyped-def]
    from cleanlab.rank import get_label_quality_scores

    from labelwise.noise import out_of_fold_head_probs

    probs = out_of_fold_head_probs(x, given, k, folds=5, scale="l2", C=1.0)
    order = np.argsort(get_label_quality_scores(given, probs), kind="stable")[:budget]
    votes = probs.copy()
    votes[np.arange(len(given)), given] += 1
    votes[order, answers[order]] += 1
    out = given.copy()
    out[order] = votes[order].argmax(1)
    return out


def automatic(x, given, k):  # type: ignore[no-untyped-def]
    from labelwise.noise import label_issues, out_of_fold_head_probs

    probs = out_of_fold_head_probs(x, given, k, folds=5, scale="l2", C=1.0)
    found = label_issues(given, pred_probs=probs, embeddings=x, method="ensemble")
    out = given.copy()
    flagged = found["is_issue"].to_numpy()
    out[flagged] = found["suggested"].to_numpy()[flagged]
    return out


def pseudo(x, given, k):  # type: ignore[no-untyped-def]
    have = given >= 0
    predict = fit_head(x[have], given[have], k)
    probs = predict(x)
    out = np.where(have, given, probs.argmax(1))
    weights = np.where(have, 1.0, probs.max(1))
    return out, weights


def run_loop(ds, given_codes, answer_sets, budget, choose, tmp, classes, seed, **options):  # type: ignore[no-untyped-def]
    table = ds.table.copy()
    pool = table["split"] != "test"
    labels = np.asarray([classes[c] if c >= 0 else None for c in given_codes], dtype=object)
    table.loc[pool, "label"] = labels
    ids = table.loc[pool, "sample_id"].to_numpy()
    rows = [
        pd.DataFrame({"sample_id": ids, "worker": f"annotator{j + 1}", "label": np.asarray(classes)[a]})
        for j, a in enumerate(answer_sets)
    ]
    recorded = pd.concat(rows).sort_values("sample_id", kind="stable")  # per image: the sets in order
    out = Path(tempfile.mkdtemp(dir=tmp))
    t = time.time()
    result = loop(
        Dataset(table, classes, source="bench"),
        out / "project",
        budget=budget,
        per_round=max(1, budget // 5),
        simulate_answers=recorded,
        choose=choose,
        final_model=None,
        random_state=seed,
        **options,
    )
    seconds = time.time() - t
    final = result.dataset.set_index("sample_id").reindex(ids)
    lookup = {c: i for i, c in enumerate(classes)}
    codes = final["label"].map(lookup).fillna(-1).to_numpy(int)
    weights = np.where(final["label_source"] == "pseudo", final["confidence"].fillna(1.0), 1.0)
    return codes, weights, result, seconds, out / "project"


def people_alone(project: Path, classes, given_codes, ids, clean):  # type: ignore[no-untyped-def]
    """On the answered images: the loop's decision vs the answers' majority (ties to the given label)."""
    from labelwise.formats.labels_db import read_answers

    answers, _ = read_answers(project / "labels.db")
    final = pd.read_csv(project / "dataset.csv", dtype=str).set_index("sample_id")
    index = {s: i for i, s in enumerate(ids)}
    lookup = {c: i for i, c in enumerate(classes)}
    alone, decided, truth = [], [], []
    for task, group in answers.groupby("task"):
        i = index[task]
        votes = np.bincount(group["label"].map(lookup), minlength=len(classes)).astype(float)
        if given_codes[i] >= 0:
            votes[given_codes[i]] += 0.5  # breaks ties only
        alone.append(votes.argmax())
        decided.append(lookup[final.loc[task, "label"]])
        truth.append(clean[i])
    truth_a = np.asarray(truth)
    return float((np.asarray(decided) == truth_a).mean()), float((np.asarray(alone) == truth_a).mean()), len(truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3,000-image pool, 2,000 test images")
    ap.add_argument("--budgets", default=None, help="answers (default 500,1000,2000; --quick 300)")
    ap.add_argument("--scenarios", default="noisy,missing")
    ap.add_argument("--rules", action="store_true", help="also the loop's other choice rules (doubt, uncertainty)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(2)
    budgets = [int(b) for b in (args.budgets or ("300" if args.quick else "500,1000,2000")).split(",")]
    ds, clean, people = load(args.quick)
    classes = ds.classes
    k = len(classes)
    t = time.time()
    features = reduced(np.asarray(embed(ds, backbone="efficientnet_lite0", size=128)), args.seed)
    print(f"features: {len(features)} images in {time.time() - t:.0f} s (cached after the first run)")
    is_test = (ds.table["split"] == "test").to_numpy()
    x_pool, x_test = features[~is_test], features[is_test]
    lookup = {c: i for i, c in enumerate(classes)}
    y_test = ds.table.loc[is_test, "label"].map(lookup).to_numpy(int)
    ids = ds.table.loc[~is_test, "sample_id"].to_numpy()
    rows = []

    def report(scenario, budget, method, labels, weights, spent, seconds):  # type: ignore[no-untyped-def]
        row = {
            "scenario": scenario,
            "budget": budget,
            "method": method,
            "label_accuracy": round(float((labels == clean).mean()), 4),
            "test_accuracy": round(head_accuracy(x_pool, labels, weights, x_test, y_test, k), 4),
            "answers": spent,
            "seconds": round(seconds, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios.split(","):
            if scenario == "noisy":
                given = people["random_label1"]
                answer_sets = [people["random_label2"], people["random_label3"]]
            else:
                per_class = 20 if args.quick else 50
                rng = np.random.default_rng(args.seed)
                given = np.full(len(clean), -1)
                for c in range(k):
                    pick = rng.choice(np.flatnonzero(clean == c), per_class, replace=False)
                    given[pick] = c
                answer_sets = [people[f"random_label{j}"] for j in (1, 2, 3)]
            t = time.time()
            report(scenario, 0, "given labels (no people)", given, None, 0, time.time() - t)
            if scenario == "missing":
                t = time.time()
                labels, weights = pseudo(x_pool, given, k)
                report(scenario, 0, "given + pseudo labels (no people)", labels, weights, 0, time.time() - t)
            else:
                t = time.time()
                report(
                    scenario,
                    0,
                    "automatic only (issues → relabel)",
                    automatic(x_pool, given, k),
                    None,
                    0,
                    time.time() - t,
                )
            for budget in budgets:
                if scenario == "noisy":
                    t = time.time()
                    labels = crude_loop(x_pool, given, answer_sets[0], budget, k)
                    report(scenario, budget, "crude loop (anchor)", labels, None, budget, time.time() - t)
                rules = ["random", "value"] + (["doubt", "uncertainty"] if args.rules else [])
                for rule in rules:
                    codes, weights, result, seconds, project = run_loop(
                        ds, given, answer_sets, budget, rule, tmp, classes, args.seed
                    )
                    name = "random images to people" if rule == "random" else f"labelwise loop (--choose {rule})"
                    report(scenario, budget, name, codes, weights, result.spent, seconds)
                    if rule == "value":
                        decided, alone, n = people_alone(project, classes, given, ids, clean)
                        print(f"    on the {n} answered images: people + model {decided:.4f}, people alone {alone:.4f}")
    print()
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
