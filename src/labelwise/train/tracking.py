"""Optional experiment tracking of a training run: TensorBoard and MLflow (file store)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import record_made
from .._run import flatten
from ..errors import require


def trackers(
    out: Path, tensorboard: bool, mlflow: bool, config: dict[str, Any]
) -> Callable[[int], Callable[[dict[str, Any]], None] | None]:
    """A factory of per-fold epoch callbacks logging to TensorBoard and/or MLflow."""
    if not (tensorboard or mlflow):
        return lambda k: None
    writers: dict[int, Any] = {}
    mlf = None
    if tensorboard:
        require("tensorboard", "tensorboard", "--tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        record_made(out / "tensorboard")
    if mlflow:
        mlf = require("mlflow", "mlflow", "--mlflow")
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # A plain local file store, as asked for: no server, no database. MLflow ≥ 3.x
            # refuses it unless opted in; the opt-in only affects this process.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlf.set_tracking_uri((out / "mlruns").resolve().as_uri())
            record_made(out / "mlruns")
        mlf.set_experiment("labelwise")

    def for_fold(k: int) -> Callable[[dict[str, Any]], None]:
        if tensorboard:
            writers[k] = SummaryWriter(str(out / "tensorboard" / f"fold-{k}"))
        if mlf is not None:
            if mlf.active_run():
                mlf.end_run()
            mlf.start_run(run_name=f"fold-{k}")
            mlf.log_params({k2: str(v) for k2, v in flatten(config).items() if not k2.startswith("classes")})

        def log_row(row: dict[str, Any]) -> None:
            step = int(row["epoch"])
            scalars = {m: float(v) for m, v in row.items() if m != "epoch"}
            if k in writers:
                for m, v in scalars.items():
                    writers[k].add_scalar(m, v, step)
                writers[k].flush()
            if mlf is not None:
                mlf.log_metrics(scalars, step=step)

        return log_row

    return for_fold
