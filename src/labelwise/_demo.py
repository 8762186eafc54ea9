"""The embedded demo: scikit-learn's digits made messy, then every labelwise step."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ._io import record_made, write_table
from ._run import recorded
from .errors import LabelwiseError

log = logging.getLogger("labelwise")
MARKER = ".labelwise-demo"


def make_demo_images(folder: str | Path, *, missing: float = 0.2, flipped: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Write scikit-learn's 1,797 digits as PNGs in an ImageFolder with realistic mess.

    A seeded ``missing`` share of the images goes to ``_unlabeled/``; a ``flipped``
    share of all images sits in a wrong class folder. Returns the truth table
    ``sample_id, true_label, given_label, flipped`` (``given_label`` empty when removed).

    Examples
    --------
    >>> import tempfile
    >>> truth = make_demo_images(tempfile.mkdtemp() + "/images")
    >>> len(truth), int(truth["flipped"].sum()), int(truth["given_label"].isna().sum())
    (1797, 180, 359)
    """
    from sklearn.datasets import load_digits

    folder = Path(folder)
    if folder.exists() and not (folder / MARKER).exists():
        raise LabelwiseError(f"{folder}: exists and was not written by the demo; choose another --out")
    digits = load_digits()
    n = len(digits.target)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_missing, n_flipped = round(missing * n), round(flipped * n)
    removed, flip = order[:n_missing], order[n_missing : n_missing + n_flipped]
    given = digits.target.astype(object).copy()
    given[removed] = None
    offsets = rng.integers(1, 10, size=n_flipped)
    given[flip] = (digits.target[flip] + offsets) % 10

    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    rows = []
    for i in range(n):
        sub = "_unlabeled" if given[i] is None else str(given[i])
        name = f"digit_{i:04d}.png"
        target = staging / sub / name
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(np.rint(digits.images[i] * (255.0 / 16.0)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(target)
        rows.append((f"{sub}/{name}", str(digits.target[i]), None if given[i] is None else str(given[i])))
    (staging / MARKER).write_text("written by labelwise demo; safe to delete\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    truth = pd.DataFrame(rows, columns=["sample_id", "true_label", "given_label"])
    truth["flipped"] = truth["given_label"].notna() & (truth["given_label"] != truth["true_label"])
    return truth


#: How the demo trains, before and after cleaning: the same settings, so the two accuracies compare.
DEMO_TRAINING: dict[str, Any] = dict(
    model="cnn", folds=5, epochs=10, flip=False, hold_out="valid", weight_col="confidence"
)


#: The demo's loop: answers spent, a round's share, and how often a recorded answer is wrong.
DEMO_LOOP: dict[str, Any] = dict(budget=150, per_round=50, wrong=0.15)


def simulated_answers(truth: pd.DataFrame, *, wrong: float, seed: int, per_image: int = 3) -> pd.DataFrame:
    """``per_image`` recorded answers per image (``sample_id, worker, label``), each wrong with probability
    ``wrong`` (then any other digit): people, for the demo's loop."""
    rng = np.random.default_rng(seed)
    true = truth["true_label"].astype(int).to_numpy()
    rows = []
    for j in range(per_image):
        said = np.where(rng.random(len(true)) < wrong, (true + rng.integers(1, 10, len(true))) % 10, true)
        rows.append(
            pd.DataFrame({"sample_id": truth["sample_id"], "worker": f"person{j + 1}", "label": said.astype(str)})
        )
    return pd.concat(rows, ignore_index=True)


@recorded("demo")
def run_demo(out: str | Path = "labelwise-demo", *, random_state: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """Make the demo data in ``out/images`` and run every step on it.

    Returns a dict with the figures and an ``outputs`` mapping step → path.
    """
    from .data import Dataset, load_dataset, split_table
    from .data.explore import explore
    from .evaluate import evaluate
    from .features import embed
    from .loop import loop
    from .noise import clean, find_issues
    from .semi import pseudolabel
    from .train import predict, train

    seed = random_state
    out = Path(out)
    timings: dict[str, float] = {}
    outputs: dict[str, str] = {}

    t = time.time()
    truth = make_demo_images(out / "images", seed=seed)
    record_made(out / "images")
    write_table(out / "truth.csv", truth)
    timings["images"] = time.time() - t
    outputs["images"] = str(out / "images")
    outputs["truth"] = str(out / "truth.csv")

    t = time.time()
    summary = explore(out / "images", out / "explore", random_state=seed)
    timings["explore"] = time.time() - t
    outputs["explore"] = str(out / "explore" / "report.md")

    t = time.time()
    loaded = load_dataset(out / "images")
    ds = Dataset(
        split_table(loaded.table, valid_pct=0.2, folds=5, random_state=seed),
        loaded.classes,
        loaded.problems,
        loaded.source,
    )
    outputs["split"] = str(ds.save(out / "data"))
    timings["split"] = time.time() - t

    t = time.time()
    vectors = embed(ds, backbone="pixels", cache_dir=out / "cache", random_state=seed, out=out / "embed")
    timings["embed"] = time.time() - t
    outputs["embed"] = str(out / "embed" / "embeddings.npy")

    t = time.time()
    # Missing labels: every unlabeled image gets a pseudo label from the labeled ones (the valid
    # images stay out, for testing); the 100 least certain become labeling tasks.
    pseudo = pseudolabel(
        ds,
        out / "pseudolabel",
        backbone="pixels",
        pca=50,
        hold_out="valid",
        budget=100,
        cache_dir=out / "cache",
        random_state=seed,
    )
    timings["pseudolabel"] = time.time() - t
    outputs["pseudolabel"] = str(out / "pseudolabel" / "pseudo_labels.csv")
    pseudo_rows = pseudo.table[pseudo.table["source"] == "pseudo"]
    true_label = truth.set_index("sample_id")["true_label"].astype(str)

    t = time.time()
    # Given + pseudo labels, each pseudo label's loss weighted by its confidence.
    trained = train(pseudo.dataset, out / "train", **DEMO_TRAINING, random_state=seed)
    timings["train"] = time.time() - t
    outputs["train"] = str(out / "train" / "report.md")

    t = time.time()
    # Scored twice: against the given labels (10% of them wrong) and against the truth.
    evaluate(out / "train", out=out / "evaluate")
    truth_labels = truth.dropna(subset=["given_label"]).rename(columns={"true_label": "label"})
    on_truth = evaluate(
        out / "train" / "test_probs.csv", truth_labels[["sample_id", "label"]], out=out / "evaluate-truth"
    )
    timings["evaluate"] = time.time() - t
    outputs["evaluate"] = str(out / "evaluate" / "report.md")

    t = time.time()
    # Wrong labels: found from the ensemble's out-of-fold probabilities and neighbour votes,
    # corrected, and the ensemble retrained on the cleaned labels.
    # Only the given labels are judged; the pseudo labels ride along into the retraining.
    found = find_issues(ds, out / "issues", probs=out / "train", cache_dir=out / "cache", random_state=seed)
    cleaned = clean(pseudo.dataset, found.table, out / "clean" / "labels.csv", policy="relabel")
    timings["issues"] = time.time() - t
    outputs["issues"] = str(out / "issues" / "label_issues.csv")
    outputs["clean"] = str(out / "clean" / "labels.csv")
    t = time.time()
    train(cleaned, out / "retrain", **DEMO_TRAINING, random_state=seed)
    after = evaluate(
        out / "retrain" / "test_probs.csv", truth_labels[["sample_id", "label"]], out=out / "evaluate-retrained"
    )
    timings["retrain"] = time.time() - t
    outputs["retrain"] = str(out / "retrain" / "report.md")
    flipped = truth.set_index("sample_id")["flipped"]
    flagged = found.table.set_index("sample_id")["is_issue"]
    hits = int((flagged & flipped.reindex(flagged.index)).sum())

    t = time.time()
    predictions = predict(
        out / "train", out / "images" / "_unlabeled", out / "predict", ordered_txt=out / "predict" / "labels.txt"
    )
    timings["predict"] = time.time() - t
    outputs["predict"] = str(out / "predict" / "predictions.csv")
    unlabeled_truth = truth.set_index("sample_id")["true_label"].astype(str)
    unlabeled_ids = "_unlabeled/" + predictions["sample_id"]

    t = time.time()
    # Close the loop: people (recorded answers standing in for them, 15% wrong) are asked about the images
    # where an answer corrects the most labels; their answers and the model decide, round by round.
    closed = loop(
        ds,
        out / "loop",
        budget=DEMO_LOOP["budget"],
        per_round=DEMO_LOOP["per_round"],
        simulate_answers=simulated_answers(truth, wrong=DEMO_LOOP["wrong"], seed=seed),
        hold_out="valid",
        backbone="pixels",
        cache_dir=out / "cache",
        final_model=None,
        random_state=seed,
    )
    pool_truth = closed.dataset["sample_id"].map(true_label)
    timings["loop"] = time.time() - t
    outputs["loop"] = str(out / "loop" / "report.html")

    log.info("demo steps (s): %s", ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return {
        "n_images": summary.n_images,
        "n_unlabeled": summary.n_unlabeled,
        "n_flipped": int(truth["flipped"].sum()),
        "n_pseudo": len(pseudo_rows),
        "pseudo_accuracy_vs_truth": float((pseudo_rows["label"] == pseudo_rows["sample_id"].map(true_label)).mean())
        if len(pseudo_rows)
        else None,
        "n_problematic": pseudo.figures["n_problematic"],
        "embedding_dim": int(vectors.shape[1]),
        "held_out_accuracy_vs_given": trained.test["accuracy"] if trained.test else None,
        "held_out_accuracy_vs_truth": on_truth["accuracy"],
        "n_issues": found.n_issues,
        "issues_precision": hits / max(found.n_issues, 1),
        "issues_recall": hits / max(int(flipped.sum()), 1),
        "held_out_accuracy_vs_truth_after_cleaning": after["accuracy"],
        "unlabeled_accuracy_vs_truth": float(
            (predictions["label"].to_numpy() == unlabeled_truth.reindex(unlabeled_ids).to_numpy()).mean()
        ),
        "loop_answers": closed.spent,
        "loop_label_accuracy_before": float((closed.dataset["given_label"] == pool_truth).mean()),
        "loop_label_accuracy_after": float((closed.dataset["label"] == pool_truth).mean()),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "outputs": outputs,
    }
