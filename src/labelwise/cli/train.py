"""Commands for a model: ``train``, ``evaluate``, ``predict`` and ``models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.options import ReadOptions
from ..train import models as _models  # noqa: F401 - fills the registry the help reads
from ._common import (
    BatchSize,
    CacheDir,
    Config,
    Data,
    Device,
    EngineName,
    Html,
    Jobs,
    Overwrite,
    RayAddress,
    Seed,
    Size,
    backbone_option,
    choice_help,
    command,
    out_console,
    print_kind,
    reads_dataset,
    user_errors,
)


@command()
@reads_dataset
def train(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (models, metrics, probabilities).")] = Path(
        "train"
    ),
    model: Annotated[str, typer.Option("--model", "-m", help=choice_help("models", "Model."))] = "cnn",
    folds: Annotated[
        int,
        typer.Option(
            "--folds", "-k", min=1, help="Stratified folds: K models and out-of-fold probabilities (1 = one model)."
        ),
    ] = 5,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs (default 20 cnn, 10 torchvision, 60 heads).")
    ] = None,
    batch_size: BatchSize = None,
    lr: Annotated[
        float | None, typer.Option("--lr", min=0.0, help="Peak learning rate (default 2e-3 AdamW, 0.05 SGD).")
    ] = None,
    optimizer: Annotated[str | None, typer.Option("--optimizer", help="adamw (default) or sgd.")] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option("--weight-decay", min=0.0, help="Weight decay (not on biases and norms; default 5e-4)."),
    ] = None,
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="onecycle (default), warmup-cosine, cosine, step or constant.")
    ] = None,
    step_size: Annotated[
        int | None, typer.Option("--step-size", min=1, help="Epochs between LR drops (step schedule; default 10).")
    ] = None,
    gamma: Annotated[
        float | None, typer.Option("--gamma", min=0.0, help="LR factor per drop (step schedule; default 0.1).")
    ] = None,
    warmup_epochs: Annotated[
        float | None,
        typer.Option("--warmup-epochs", min=0.0, help="Epochs of linear warm-up (warmup-cosine; default 1)."),
    ] = None,
    augment: Annotated[str | None, typer.Option("--augment", help="none, light (default) or strong.")] = None,
    flip: Annotated[
        bool | None,
        typer.Option(
            "--flip/--no-flip", help="Allow mirror images in augmentation (default on; off for digits, text)."
        ),
    ] = None,
    balance: Annotated[
        str | None, typer.Option("--balance", help="none (default), weights (class-weighted loss) or sampler.")
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option("--label-smoothing", min=0.0, max=0.5, help="Cross-entropy label smoothing (default 0)."),
    ] = None,
    patience: Annotated[
        int | None, typer.Option("--patience", min=1, help="Stop after N epochs without improvement.")
    ] = None,
    monitor: Annotated[
        str | None, typer.Option("--monitor", help="balanced_accuracy (default), accuracy, macro_f1 or valid_loss.")
    ] = None,
    valid_pct: Annotated[
        float, typer.Option("--valid-pct", min=0.0, max=0.9, help="Validation share when --folds 1 and no valid split.")
    ] = 0.1,
    hold_out: Annotated[
        str, typer.Option("--hold-out", help="Rows of this split are not trained on, only scored.")
    ] = "test",
    size: Size = None,
    width: Annotated[
        int | None, typer.Option("--width", min=4, help="cnn: channels of the first layer (default 16).")
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option("--dropout", min=0.0, max=0.9, help="Dropout before the classification layer (default 0.2)."),
    ] = None,
    freeze: Annotated[
        bool | None, typer.Option("--freeze", help="Pretrained networks: train only the new head.")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Pretrained weights (state_dict) for the network or --backbone.")
    ] = None,
    backbone: Annotated[str | None, backbone_option("linear/mlp: the embedding backbone.")] = "pixels",
    cache_dir: CacheDir = None,
    device: Device = "auto",
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA (default on).")] = None,
    tta: Annotated[
        bool, typer.Option("--tta", help="Test-time augmentation for held-out and test probabilities.")
    ] = False,
    dynamics: Annotated[
        bool,
        typer.Option(
            "--dynamics",
            help="Also write dynamics_probs.csv: each row's softmax from its training passes, averaged over the epochs after the first third.",
        ),
    ] = False,
    weight_col: Annotated[
        str | None,
        typer.Option(
            "--weight-col",
            help="Numeric column weighting each row's loss, e.g. confidence of pseudo labels (missing: 1).",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")] = False,
    overfit_batch: Annotated[
        bool, typer.Option("--overfit-batch", help="Sanity check: fit one batch, report if the loss reaches ~0.")
    ] = False,
    leak_check: Annotated[
        bool,
        typer.Option(
            "--leak-check/--no-leak-check",
            help="Warn when near-duplicates of held-out images are in the training rows.",
        ),
    ] = True,
    skip_missing: Annotated[
        bool, typer.Option("--skip-missing", help="Train without labeled images that do not exist.")
    ] = False,
    tensorboard: Annotated[
        bool, typer.Option("--tensorboard", help="Also log to OUT/tensorboard (needs labelwise[tensorboard]).")
    ] = False,
    mlflow: Annotated[
        bool, typer.Option("--mlflow", help="Also log to the MLflow file store OUT/mlruns (needs labelwise[mlflow]).")
    ] = False,
    html: Html = True,
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    engine: EngineName = None,
    ray_address: RayAddress = None,
    config: Config = None,
) -> None:
    """Train a model or a k-fold ensemble; writes models, out-of-fold probabilities, metrics and curves."""
    from ..train import train as run

    with user_errors():
        hyperparameters = dict(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            schedule=schedule,
            step_size=step_size,
            gamma=gamma,
            warmup_epochs=warmup_epochs,
            augment=augment,
            flip=flip,
            balance=balance,
            label_smoothing=label_smoothing,
            patience=patience,
            monitor=monitor,
            width=width,
            dropout=dropout,
            freeze=freeze,
            amp=amp,
        )
        result = run(
            data,
            out,
            model=model,
            folds=folds,
            valid_pct=valid_pct,
            hold_out=hold_out,
            size=size,
            weights=weights,
            backbone=backbone or "pixels",
            cache_dir=cache_dir,
            device=device,
            tta=tta,
            dynamics=dynamics,
            weight_col=weight_col,
            resume=resume,
            overfit_batch=overfit_batch,
            skip_missing=skip_missing,
            check_leaks=leak_check,
            tensorboard=tensorboard,
            mlflow=mlflow,
            html=html,
            random_state=seed,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
            engine=engine,
            ray_address=ray_address,
            **{k: v for k, v in hyperparameters.items() if v is not None},
        )
    if result.overfit is not None:
        o = result.overfit
        verdict = (
            "reached ~0: the model can learn" if o["passed"] else "did NOT reach ~0: check the data, --lr and the model"
        )
        out_console.print(
            f"overfit one batch of {o['batch']}: loss {o['first_loss']:.3f} → {o['final_loss']:.4f} "
            f"in {o['steps']} steps; {verdict}"
        )
        return
    for name, metrics in (("held out", result.held_out), ("test", result.test)):
        if metrics:
            out_console.print(
                f"{name}: accuracy {metrics['accuracy']:.4f} · balanced accuracy "
                f"{metrics['balanced_accuracy']:.4f} · macro-F1 {metrics['macro_f1']:.4f} (n={metrics['n']})"
            )
    out_console.print(f"{result.folds} model(s) in {out}/ ({result.seconds:.0f} s); report: {out / 'report.md'}")


@command()
@reads_dataset
def evaluate(
    predictions: Annotated[
        Path,
        typer.Argument(
            metavar="PREDICTIONS",
            show_default=False,
            help="A `labelwise train` folder (its out-of-fold probabilities), or a CSV with sample_id and prob_<class> columns.",
        ),
    ],
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="True labels: any input `labelwise` reads (an ordered .txt with --images; default: the train folder's own).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("evaluate"),
    positive: Annotated[
        str | None,
        typer.Option("--positive", help="Two classes: the positive class for FAR/FRR/HTER (default: the second)."),
    ] = None,
    bins: Annotated[
        int, typer.Option("--bins", min=2, help="Bins of the calibration error and reliability plot.")
    ] = 15,
    html: Html = True,
    read: ReadOptions = ReadOptions(),
    overwrite: Overwrite = False,
    config: Config = None,
) -> None:
    """Accuracy, balanced accuracy, macro-F1, per-class scores, confusion matrix, calibration (and HTER, ROC-AUC for two classes)."""
    from ..evaluate import evaluate as run

    with user_errors():
        result = run(
            predictions, labels, out, positive=positive, n_bins=bins, html=html, read=read, overwrite=overwrite
        )
    for name, m in (("", result), ("test: ", result.get("test"))):
        if m:
            line = (
                f"{name}accuracy {m['accuracy']:.4f} · balanced accuracy {m['balanced_accuracy']:.4f} · "
                f"macro-F1 {m['macro_f1']:.4f} · ECE {m['ece']:.4f}"
            )
            if m.get("hter") is not None:
                line += f" · HTER {m['hter']:.4f}"
            out_console.print(line + f" (n={m['n']})")
    out_console.print(f"report: {out / 'report.md'}")


@command()
@reads_dataset
def predict(
    model_dir: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help="Output folder of `labelwise train`.", show_default=False)
    ],
    data: Annotated[
        Path,
        typer.Argument(metavar="IMAGES", help="Folder of images (or any input `labelwise` reads).", show_default=False),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("predict"),
    vote: Annotated[str, typer.Option("--vote", help="Ensemble by mean probability or majority vote.")] = "mean",
    tta: Annotated[bool, typer.Option("--tta", help="Test-time augmentation (mirror or small shifts).")] = False,
    ordered_txt: Annotated[
        Path | None, typer.Option("--ordered-txt", help="Also write one label per line, files in natural order.")
    ] = None,
    batch_size: BatchSize = None,
    cache_dir: CacheDir = None,
    device: Device = "auto",
    read: ReadOptions = ReadOptions(),
    jobs: Jobs = 2,
    overwrite: Overwrite = False,
    engine: EngineName = None,
    ray_address: RayAddress = None,
    config: Config = None,
) -> None:
    """Predict a folder of images with a trained model (fold ensemble): predictions.csv and an optional ordered label file."""
    from ..train import predict as run

    with user_errors():
        result = run(
            model_dir,
            data,
            out,
            vote=vote,
            tta=tta,
            ordered_txt=ordered_txt,
            batch_size=batch_size,
            cache_dir=cache_dir,
            device=device,
            n_jobs=jobs,
            read=read,
            overwrite=overwrite,
            engine=engine,
            ray_address=ray_address,
        )
    out_console.print(
        f"{len(result)} images → {out / 'predictions.csv'}" + (f" and {ordered_txt}" if ordered_txt else "")
    )


@command()
def models() -> None:
    """List the models `train` accepts (the same as `labelwise list models`)."""
    print_kind("models")
