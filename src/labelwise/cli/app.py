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


Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]


@app.command()
def train(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (models, metrics, probabilities).")] = Path("train"),
    model: Annotated[str, typer.Option("--model", "-m", help="Model (see `labelwise models`).")] = "cnn",
    folds: Annotated[int, typer.Option("--folds", "-k", min=1, help="Stratified folds: K models and out-of-fold probabilities (1 = one model).")] = 5,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs (default 20 cnn, 10 torchvision, 60 heads).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Peak learning rate (default 2e-3 AdamW, 0.05 SGD).")] = None,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw or sgd.")] = "adamw",
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 5e-4,
    schedule: Annotated[str, typer.Option("--schedule", help="onecycle, warmup-cosine, cosine, step or constant.")] = "onecycle",
    step_size: Annotated[int, typer.Option("--step-size", min=1, help="Epochs between LR drops (step schedule).")] = 10,
    gamma: Annotated[float, typer.Option("--gamma", min=0.0, help="LR factor per drop (step schedule).")] = 0.1,
    warmup_epochs: Annotated[float, typer.Option("--warmup-epochs", min=0.0)] = 1.0,
    augment: Annotated[str, typer.Option("--augment", help="none, light or strong.")] = "light",
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Allow mirror images in augmentation (off for digits, text).")] = True,
    balance: Annotated[str, typer.Option("--balance", help="none, weights (class-weighted loss) or sampler.")] = "none",
    label_smoothing: Annotated[float, typer.Option("--label-smoothing", min=0.0, max=0.5)] = 0.0,
    patience: Annotated[Optional[int], typer.Option("--patience", min=1, help="Stop after N epochs without improvement.")] = None,
    monitor: Annotated[str, typer.Option("--monitor", help="balanced_accuracy, accuracy, macro_f1 or valid_loss.")] = "balanced_accuracy",
    valid_pct: Annotated[float, typer.Option("--valid-pct", min=0.0, max=0.9, help="Validation share when --folds 1 and no valid split.")] = 0.1,
    hold_out: Annotated[str, typer.Option("--hold-out", help="Rows of this split are not trained on, only scored.")] = "test",
    size: Annotated[Optional[int], typer.Option("--size", min=1, help="Input side in pixels (default per model).")] = None,
    width: Annotated[int, typer.Option("--width", min=4, help="cnn: channels of the first layer.")] = 16,
    dropout: Annotated[float, typer.Option("--dropout", min=0.0, max=0.9)] = 0.2,
    freeze: Annotated[bool, typer.Option("--freeze", help="torchvision models: train only the new head.")] = False,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Pretrained weights (state_dict) for a torchvision model or --backbone.")] = None,
    backbone: Annotated[str, typer.Option("--backbone", "-b", help="linear/mlp: the embedding backbone.")] = "pixels",
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache (linear/mlp).")] = None,
    device: Device = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA.")] = True,
    tta: Annotated[bool, typer.Option("--tta", help="Test-time augmentation for held-out and test probabilities.")] = False,
    dynamics: Annotated[bool, typer.Option("--dynamics", help="Also write dynamics_probs.csv: each row's softmax from its training passes, averaged over the epochs after the first third.")] = False,
    weight_col: Annotated[Optional[str], typer.Option("--weight-col", help="Numeric column weighting each row's loss, e.g. confidence of pseudo labels (missing: 1).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")] = False,
    overfit_batch: Annotated[bool, typer.Option("--overfit-batch", help="Sanity check: fit one batch, report if the loss reaches ~0.")] = False,
    skip_missing: Annotated[bool, typer.Option("--skip-missing", help="Train without labeled images that do not exist.")] = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also log to OUT/tensorboard (needs labelwise[tensorboard]).")] = False,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="Also log to the MLflow file store OUT/mlruns (needs labelwise[mlflow]).")] = False,
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
    """Train a model or a k-fold ensemble; writes models, out-of-fold probabilities, metrics and curves."""
    options = dict(locals())
    from ..train import train as run_train

    with _command(out, "train", options) as extra:
        read = read_options(images, unlabeled, filename_col, label_col, split_col, suffix, labels_key, classes, jobs)
        read.pop("n_jobs")
        skip = {"data", "out", "images", "unlabeled", "filename_col", "label_col", "split_col", "suffix",
                "labels_key", "classes", "jobs", "seed", "config"}
        kwargs = {k: v for k, v in options.items() if k not in skip}
        result = run_train(data, out, random_state=seed, n_jobs=jobs, **kwargs, **read)
        extra.update(result.as_dict())
        if result.overfit is not None:
            o = result.overfit
            verdict = "reached ~0: the model can learn" if o["passed"] else "did NOT reach ~0: check the data, --lr and the model"
            out_console.print(f"overfit one batch of {o['batch']}: loss {o['first_loss']:.3f} → {o['final_loss']:.4f} in {o['steps']} steps; {verdict}")
            return
        for name, metrics in (("held out", result.held_out), ("test", result.test)):
            if metrics:
                out_console.print(
                    f"{name}: accuracy {metrics['accuracy']:.4f} · balanced accuracy {metrics['balanced_accuracy']:.4f}"
                    f" · macro-F1 {metrics['macro_f1']:.4f} (n={metrics['n']})"
                )
        out_console.print(f"{result.folds} model(s) in {out}/ ({result.seconds:.0f} s); report: {out / 'report.md'}")


@app.command()
def evaluate(
    predictions: Annotated[Path, typer.Argument(metavar="PREDICTIONS", help="A train output folder (out-of-fold probabilities), or a CSV with sample_id and prob_<class> columns.", show_default=False)],
    labels: Annotated[Optional[Path], typer.Option("--labels", help="True labels: any input `labelwise` reads (default: the train folder's own).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("evaluate"),
    positive: Annotated[Optional[str], typer.Option("--positive", help="Two classes: the positive class for FAR/FRR/HTER (default: the second).")] = None,
    bins: Annotated[int, typer.Option("--bins", min=2, help="Bins of the calibration error and reliability plot.")] = 15,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Also write report.html.")] = True,
    config: Config = None,
) -> None:
    """Accuracy, balanced accuracy, macro-F1, per-class scores, confusion matrix, calibration (and HTER, ROC-AUC for two classes)."""
    from ..evaluate import evaluate as run_evaluate

    with _command(out, "evaluate", locals()) as extra:
        result = run_evaluate(predictions, labels, out=out, positive=positive, n_bins=bins, html=html)
        extra["metrics"] = {k: v for k, v in result.items() if k not in {"per_class", "confusion", "test"}}
        for name, m in (("", result), ("test: ", result.get("test"))):
            if m:
                line = f"{name}accuracy {m['accuracy']:.4f} · balanced accuracy {m['balanced_accuracy']:.4f} · macro-F1 {m['macro_f1']:.4f} · ECE {m['ece']:.4f}"
                if m.get("hter") is not None:
                    line += f" · HTER {m['hter']:.4f}"
                out_console.print(line + f" (n={m['n']})")
        out_console.print(f"report: {out / 'report.md'}")


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL_DIR", help="Output folder of `labelwise train`.", show_default=False)],
    data: Annotated[Path, typer.Argument(metavar="IMAGES", help="Folder of images (or any input `labelwise` reads).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("predict"),
    vote: Annotated[str, typer.Option("--vote", help="Ensemble by mean probability or majority vote.")] = "mean",
    tta: Annotated[bool, typer.Option("--tta", help="Test-time augmentation (mirror or small shifts).")] = False,
    ordered_txt: Annotated[Optional[Path], typer.Option("--ordered-txt", help="Also write one label per line, files in natural order.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1)] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache (linear/mlp models).")] = None,
    device: Device = "auto",
    jobs: Jobs = 2,
    config: Config = None,
) -> None:
    """Predict a folder of images with a trained model (fold ensemble): predictions.csv and an optional ordered label file."""
    from ..train import predict as run_predict

    with _command(out, "predict", locals()) as extra:
        result = run_predict(model_dir, data, out, vote=vote, tta=tta, ordered_txt=ordered_txt, batch_size=batch_size,
                             cache_dir=cache_dir, device=device, n_jobs=jobs)
        extra.update(n_images=len(result), counts=result["label"].value_counts().to_dict())
        out_console.print(f"{len(result)} images → {out / 'predictions.csv'}" + (f" and {ordered_txt}" if ordered_txt else ""))


@app.command()
def models() -> None:
    """List the models `train` accepts."""
    from ..train import get_model_spec, list_models

    for name in list_models():
        out_console.print(f"{name:<20} {get_model_spec(name).description}", soft_wrap=True)


@app.command()
def issues(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("issues"),
    probs: Annotated[Optional[Path], typer.Option("--probs", help="Out-of-fold probabilities: a `train` folder or a sample_id, prob_<class> table (default: train --model on the given labels).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model trained on the given labels for the probabilities (see `labelwise models`), or `head`: a 5-fold logistic regression on the embeddings (fast, weaker).")] = "cnn",
    source: Annotated[str, typer.Option("--source", help="oof: --folds models, out-of-fold probabilities; dynamics: one model on all labels, softmax averaged over its epochs (--folds times faster); auto: oof below 10,000 labeled images.")] = "auto",
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs for --model (cnn: 40 with dynamics, 8 with oof).")] = None,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Mirror images when training --model (photos yes; digits and text no).")] = False,
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="Folds for the out-of-fold probabilities.")] = 5,
    method: Annotated[str, typer.Option("--method", help="ensemble (default: best on bench/noise.py), cleanlab or neighbors (training-free).")] = "ensemble",
    filter_by: Annotated[str, typer.Option("--filter-by", help="calibrated_margin (default: cleanlab's calibrated count of wrong labels, lowest margins first) or one of cleanlab's find_label_issues filters (prune_by_noise_rate, prune_by_class, both, confident_learning, predicted_neq_given, ...).")] = "calibrated_margin",
    neighbors: Annotated[Optional[int], typer.Option("--neighbors", "-n", min=1, help="k nearest neighbours voting (default: a quarter of the smallest class, 5 to 50).")] = None,
    backbone: Annotated[Optional[str], typer.Option("--backbone", "-b", help="Embeddings for the neighbour votes (default: the features of the network trained for the probabilities, else pixels).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", min=1, help="Backbone input size.")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Backbone weights (state_dict).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache.")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Issues shown in top_issues.png and the report.")] = 24,
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
    """Find probably-wrong labels, ranked worst first: label_issues.csv, noise rate per class, top_issues.png."""
    from ..noise import find_issues

    with _command(out, "issues", locals()) as extra:
        read = read_options(images, unlabeled, filename_col, label_col, split_col, suffix, labels_key, classes, jobs)
        read.pop("n_jobs")
        result = find_issues(data, out, probs=probs, model=model, source=source, epochs=epochs, train_options={"flip": flip}, folds=folds, method=method, filter_by=filter_by, k=neighbors, backbone=backbone,
                             size=size, weights=weights, cache_dir=cache_dir, top=top, html=html, random_state=seed,
                             n_jobs=jobs, **read)
        extra.update(n_labeled=len(result.table), n_issues=result.n_issues, method=method)
        out_console.print(f"{result.n_issues} of {len(result.table)} labels look wrong → {out / 'label_issues.csv'}")


@app.command()
def clean(
    data: Data,
    issues_file: Annotated[Path, typer.Option("--issues", help="label_issues.csv from `labelwise issues` (or its folder).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New labels table (.csv or .parquet); never the input.")],
    policy: Annotated[str, typer.Option("--policy", help="relabel (take the suggested label), prune (remove the label) or review (export for a human).")] = "relabel",
    ls_root: Annotated[Optional[Path], typer.Option("--ls-root", help="review: folder the Label Studio image URLs are relative to.")] = None,
    images: Images = None,
    unlabeled: Unlabeled = None,
    filename_col: FilenameCol = None,
    label_col: LabelCol = None,
    split_col: SplitCol = None,
    suffix: Suffix = "",
    labels_key: LabelsKey = None,
    classes: Classes = None,
    jobs: Jobs = 2,
    config: Config = None,
) -> None:
    """Apply label issues: a new labels table with label_source given / corrected / removed (review: Label Studio JSON + CSV)."""
    from ..noise import clean as run_clean

    with _command(out.parent, "clean", locals(), stem=out.stem) as extra:
        read = read_options(images, unlabeled, filename_col, label_col, split_col, suffix, labels_key, classes, jobs)
        read.pop("n_jobs")
        ds = run_clean(data, issues_file, out, policy=policy, ls_root=ls_root, n_jobs=jobs, **read)
        counts = ds.table["label_source"].fillna("unlabeled").value_counts().to_dict()
        extra["label_source"] = counts
        out_console.print(" · ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {out}")


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
        out_console.print(f"demo outputs in {out}/")
        for step, path in result["outputs"].items():
            out_console.print(f"  {step:<10} {path}")


from . import crowd as _crowd  # noqa: E402,F401 - registers aggregate, tasks and propagate
from . import semi as _semi  # noqa: E402,F401 - registers pseudolabel
from . import active as _active  # noqa: E402,F401 - registers query, simulate and plot-curves


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
