"""Formats several layers share: the training-run folder (and, in time, probability tables,
class lists and labeling-task files)."""

from .train_run import TrainRun

__all__ = ["TrainRun"]
