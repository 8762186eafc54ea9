"""Training: the model registry, ``NeuralClassifier``, ``train`` (k-fold ensembles) and ``predict``.

Importing this package does not import torch; the estimator and training code do.
"""

from __future__ import annotations

from typing import Any

from .models import ModelSpec, get_model_spec, list_models, register_model

__all__ = ["ModelSpec", "NeuralClassifier", "get_model_spec", "list_models", "predict", "register_model", "train"]


def __getattr__(name: str) -> Any:
    if name == "NeuralClassifier":
        from .classifier import NeuralClassifier

        return NeuralClassifier
    if name == "train":
        from .kfold import train

        return train
    if name == "predict":
        from .prediction import predict

        return predict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
