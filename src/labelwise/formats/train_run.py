"""The output folder of ``labelwise train``: one owner for its layout.

::

    model.json          what the ensemble is: model, folds, members, classes, features, params
    train_config.json   the settings (and data sizes) a ``--resume`` must match
    classes.json        class order of every probability column
    dataset.csv         the rows trained on and scored, with their ``fold``
    fold-K/model.pt     member K (and fold-K/metrics.csv, fold-K/checkpoint.pt while training)
    oof_probs.csv/.npy  out-of-fold probabilities (k ≥ 2), or valid_probs (one model)
    test_probs.csv/.npy the held-out split, predicted by the ensemble
    dynamics_probs.csv  training dynamics (``--dynamics``)
    metrics.csv, curves.png, report.md/.html, run.json, config.yaml, labelwise.log
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._records import check_run_folder
from ..errors import LabelwiseError


class TrainRun:
    """A ``train`` output folder: the names of its files, and a check that they belong to one run."""

    MODEL = "model.json"
    CONFIG = "train_config.json"
    CLASSES = "classes.json"
    TABLE = "dataset.csv"
    METRICS = "metrics.csv"
    OOF = "oof_probs"
    VALID = "valid_probs"
    TEST = "test_probs"
    DYNAMICS = "dynamics_probs"
    HELD_OUT = (OOF, VALID)

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"TrainRun({str(self.folder)!r})"

    @classmethod
    def holds_models(cls, folder: str | os.PathLike[str]) -> bool:
        return (Path(folder) / cls.MODEL).is_file()

    def path(self, name: str, suffix: str = ".csv") -> Path:
        """``folder/name`` (a probability stem such as :attr:`OOF` gets ``suffix``)."""
        return self.folder / (name if "." in name else name + suffix)

    def fold_dir(self, k: int) -> Path:
        return self.folder / f"fold-{k}"

    def member(self, k: int) -> str:
        return f"fold-{k}/model.pt"

    @property
    def held_out(self) -> Path | None:
        """The out-of-fold (or validation) probability table, if the run wrote one."""
        return next((p for p in (self.path(n) for n in self.HELD_OUT) if p.is_file()), None)

    @property
    def test(self) -> Path | None:
        path = self.path(self.TEST)
        return path if path.is_file() else None

    def model_info(self) -> dict[str, Any]:
        """``model.json``, checked to be readable and complete."""
        path = self.folder / self.MODEL
        if not path.is_file():
            raise LabelwiseError(
                f"{self.folder}: not a trained model folder (no {self.MODEL}); run `labelwise train` first"
            )
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LabelwiseError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or not meta.get("members") or "classes" not in meta or "features" not in meta:
            raise LabelwiseError(f"{path}: not a labelwise model description (members, classes and features missing)")
        missing = [m for m in meta["members"] if not (self.folder / m).is_file()]
        if missing:
            raise LabelwiseError(f"{self.folder}: model file {missing[0]} missing; was training finished?")
        return meta

    def check(self, *names: str) -> None:
        """Refuse (one line) a folder a failed or killed run left, or whose files ``names`` (default:
        every file of the layout that exists) were not all written by the run ``run.json`` records."""
        if not names:
            members = [self.member(k) for k in range(_count_folds(self.folder))]
            names = (
                self.MODEL,
                self.CONFIG,
                self.CLASSES,
                self.TABLE,
                *members,
                *(f"{n}.csv" for n in (*self.HELD_OUT, self.TEST, self.DYNAMICS)),
            )
        check_run_folder(self.folder, names, command="train")


def _count_folds(folder: Path) -> int:
    return sum(1 for p in folder.glob("fold-*") if p.is_dir() and p.name[5:].isdigit())
