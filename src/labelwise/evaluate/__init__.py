"""Evaluation: metrics, plots and the ``evaluate`` command."""

from __future__ import annotations

from ..train.metrics import (
    classification_metrics,
    expected_calibration_error,
    hter,
    reliability_table,
)
from .scoring import evaluate

__all__ = ["classification_metrics", "evaluate", "expected_calibration_error", "hter", "reliability_table"]
