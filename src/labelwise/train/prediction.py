"""``predict``: a trained model folder applied to new images, fold models ensembled."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._engine import Engine, map_batches, resolve_engine, scoped_engine, set_threads
from .._io import note_input, write_table, write_text
from .._run import recorded
from ..data import Dataset
from ..data.natural import natural_key
from ..data.options import ReadOptions, as_read_options, dataset_inputs
from ..errors import LabelwiseError, require
from ..formats import TrainRun
from ..formats.probabilities import prob_columns
from .inputs import load_inputs

log = logging.getLogger("labelwise")

VOTES = ("mean", "majority")


@dataclass
class Ensemble:
    """The fold models of a ``train`` output folder and how to feed them."""

    folder: Path
    classes: list[str]
    features: dict[str, Any]
    members: list[Any]  # NeuralClassifier

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, device: str = "auto") -> Ensemble:
        """The models of a ``train`` folder, refused (one line) when the folder's files do not all
        come from the one finished run its ``run.json`` records."""
        require("torch", "torch", "the models of a train folder")
        from .classifier import NeuralClassifier

        run = TrainRun(folder)
        meta = run.model_info()
        run.check(TrainRun.MODEL, TrainRun.CLASSES, TrainRun.CONFIG, TrainRun.TABLE, *meta["members"])
        note_input(run.folder / TrainRun.MODEL)
        members = [NeuralClassifier.load(run.folder / m, device=device) for m in meta["members"]]
        return cls(run.folder, list(meta["classes"]), dict(meta["features"]), members)

    def inputs(
        self, table: pd.DataFrame, *, cache_dir: Any = None, device: str = "auto", n_jobs: int = 2
    ) -> np.ndarray:
        """The model input for ``table``'s images, prepared as in training."""
        return load_inputs(self.features, table, self.classes, cache_dir=cache_dir, device=device, n_jobs=n_jobs)

    def trained_on(self, sample_ids: pd.Series) -> np.ndarray:
        """``(n_members, n)`` bool: whether each member trained on each of ``sample_ids``
        (from the folder's ``dataset.csv``; ids it does not list were trained on by none)."""
        from .inputs import fold_training_rows

        config = json.loads((self.folder / TrainRun.CONFIG).read_text(encoding="utf-8"))
        rows = pd.read_csv(
            self.folder / TrainRun.TABLE,
            dtype={"sample_id": str, "split": str},
            usecols=["sample_id", "split", "fold"],
            keep_default_na=False,
        )
        rows = rows.drop_duplicates("sample_id").set_index("sample_id")
        pool = rows["split"].ne(config.get("hold_out", "test"))
        fold = pd.to_numeric(rows["fold"], errors="coerce").fillna(-2).astype(int).to_numpy()
        n = len(self.members)
        trained = np.stack([pool.to_numpy() & fold_training_rows(fold, k, n) for k in range(n)])
        where = rows.index.get_indexer(sample_ids.astype(str))
        return np.where(where >= 0, trained[:, np.maximum(where, 0)], False)

    def predict_proba(self, X: np.ndarray, *, tta: bool = False, batch_size: int | None = None) -> np.ndarray:
        """Per-member probabilities, shape ``(n_members, n, n_classes)``."""
        return np.stack([m.predict_proba(X, tta=tta, batch_size=batch_size) for m in self.members])


def combine(member_probs: np.ndarray, vote: str = "mean") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ensemble ``(members, n, k)`` probabilities → (labels, confidence, mean probabilities).

    ``mean``: the class of highest mean probability, confidence = that probability.
    ``majority``: each member votes its top class; ties go to the higher mean probability;
    confidence = the share of members voting for the winner.

    >>> p = np.array([[[.6, .4]], [[.4, .6]], [[.45, .55]]])
    >>> combine(p, "majority")[0], combine(p, "mean")[0]
    (array([1]), array([1]))
    """
    if vote not in VOTES:
        raise LabelwiseError(f"unknown vote {vote!r}; choose one of {', '.join(VOTES)}")
    mean = member_probs.mean(0)
    if vote == "mean":
        labels = mean.argmax(1)
        return labels, mean[np.arange(len(labels)), labels], mean
    k = member_probs.shape[2]
    votes = (
        np.stack([np.bincount(row, minlength=k) for row in member_probs.argmax(2).T]) if mean.size else np.zeros((0, k))
    )
    # Ties broken by mean probability: add it scaled below one vote.
    labels = (votes + mean * 0.5).argmax(1)
    return labels, votes[np.arange(len(labels)), labels] / member_probs.shape[0], mean


@recorded("predict", inputs=dataset_inputs(files=("model_dir",)))
@scoped_engine
def predict(
    model_dir: str | os.PathLike[str],
    data: Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    vote: str = "mean",
    tta: bool = False,
    ordered_txt: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    n_jobs: int = 2,
    read: ReadOptions | None = None,
    overwrite: bool = False,
    engine: str | None = None,
    ray_address: str | None = None,
) -> pd.DataFrame:
    """Predict every image of ``data`` with the models in ``model_dir``.

    ``data``: a folder with images at its top level (every image below it is read,
    unlabeled), any input :func:`labelwise.load_dataset` reads, or a :class:`Dataset`.
    Returns (and with ``out`` writes to ``out/predictions.csv``) one row per image:
    ``sample_id, path, label, confidence, prob_<class>...`` where ``label`` is the
    prediction. ``ordered_txt``: also write one predicted label per line, images in the
    natural order of their names (``2.png`` before ``10.png``).
    ``engine``: ``local`` (default, or ``$LABELWISE_ENGINE``) or ``ray``: batches of images go
    through a pool of Ray actors that each load the fold models once (and, for models on
    pixels, decode the images); embeddings are computed on the same engine first.
    ``ray_address``: the cluster to join (default ``$RAY_ADDRESS``, else a local Ray).
    """
    from ..data import read_image_files

    if vote not in VOTES:
        raise LabelwiseError(f"unknown vote {vote!r}; choose one of {', '.join(VOTES)}")
    ensemble = Ensemble.load(model_dir, device=device)
    if isinstance(data, Dataset):
        ds = data
    elif Path(data).is_dir() and _has_top_level_images(Path(data)):
        ds = read_image_files(data, n_jobs=n_jobs)
    else:
        ds = as_read_options(read).load(data, n_jobs=n_jobs)
    table = ds.table.reset_index(drop=True)
    if table.empty:
        raise LabelwiseError(f"{ds.source or data}: no readable images to predict")
    chosen = resolve_engine(engine, ray_address)
    if chosen.is_ray:
        member_probs = _predict_on_ray(
            ensemble, table, chosen, tta=tta, batch_size=batch_size, cache_dir=cache_dir, device=device, n_jobs=n_jobs
        )
    else:
        X = ensemble.inputs(table, cache_dir=cache_dir, device=device, n_jobs=n_jobs)
        member_probs = ensemble.predict_proba(X, tta=tta, batch_size=batch_size)
    labels, confidence, mean = combine(member_probs, vote)
    classes = np.asarray(ensemble.classes, dtype=object)
    result = pd.DataFrame(
        {"sample_id": table["sample_id"], "path": table["path"], "label": classes[labels], "confidence": confidence}
    )
    probs = pd.DataFrame(mean, columns=prob_columns(ensemble.classes))
    result = pd.concat([result, probs], axis=1)
    if "label" in table and table["label"].notna().any():
        result["given_label"] = table["label"]  # last: the declared columns keep their places
    if out is not None:
        out = Path(out)
        write_table(out / "predictions.csv", result)
        if len(ds.problems):
            write_table(out / "problems.csv", ds.problems)
    if ordered_txt is not None:
        if len(ds.problems):
            first = ds.problems.iloc[0]
            raise LabelwiseError(
                f"{first['path']}: {first['reason']}; the ordered file needs a label for every image, and "
                f"{len(ds.problems)} could not be read (see problems.csv); fix or remove them"
            )
        order = sorted(range(len(result)), key=lambda i: natural_key(result["sample_id"].iloc[i]))
        write_text(ordered_txt, "".join(f"{result['label'].iloc[i]}\n" for i in order))
    return result


def _predict_on_ray(
    ensemble: Ensemble, table: pd.DataFrame, engine: Engine, *, tta: bool, batch_size: int | None, **inputs: Any
) -> np.ndarray:
    """``(members, n, k)`` probabilities from a pool of Ray actors, each loading the models once."""
    columns: dict[str, np.ndarray] = {"row": np.arange(len(table))}
    if ensemble.features["input"] == "pixels":
        columns["path"] = table["path"].astype(str).to_numpy(dtype=object)  # decoded on the workers
    else:
        columns["x"] = ensemble.inputs(table, **inputs)
    size = batch_size or 256
    kwargs = {"folder": str(ensemble.folder), "device": inputs["device"], "tta": tta, "batch_size": size}
    probs = np.empty((len(ensemble.members), len(table), len(ensemble.classes)), np.float32)
    for batch in map_batches(engine, columns, RayPredictor, constructor_kwargs=kwargs, batch_size=size):
        probs[:, batch["row"]] = np.moveaxis(batch["probs"], 0, 1)
    return probs


class RayPredictor:
    """A Ray actor's copy of the fold models, loaded once: batches of ``path`` or ``x`` → member ``probs``."""

    def __init__(self, folder: str, device: str, tta: bool, batch_size: int, threads: int) -> None:
        set_threads(threads)
        self.ensemble = Ensemble.load(folder, device=device)
        self.tta = tta
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "path" in batch:
            from ..data.pixels import load_pixels

            features = self.ensemble.features
            X = load_pixels([str(p) for p in batch["path"]], int(features["size"]), int(features["channels"]), n_jobs=1)
        else:
            X = np.stack(list(batch["x"])).astype(np.float32)
        probs = self.ensemble.predict_proba(X, tta=self.tta, batch_size=self.batch_size)
        return {"row": batch["row"], "probs": np.moveaxis(probs, 1, 0)}


def _has_top_level_images(folder: Path) -> bool:
    from ..data.images import is_image_file

    return any(e.is_file() and is_image_file(e.name) for e in os.scandir(folder))
