"""Evaluation: metrics, plots and the ``evaluate`` command."""

from __future__ import annotations

from .evaluate import evaluate
from .metrics import classification_metrics, expected_calibration_error, hter, reliability_table

__all__ = ["classification_metrics", "evaluate", "expected_calibration_error", "hter", "reliability_table"]
