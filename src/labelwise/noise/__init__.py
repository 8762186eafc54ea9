"""Noisy labels: detectors of wrong labels, ``find_issues`` and ``clean_labels``."""

from __future__ import annotations

from .cleaning import clean, clean_labels
from .detectors import (
    Detection,
    get_detector,
    list_detectors,
    neighbor_probs,
    register_detector,
)
from .issues import find_issues
from .probabilities import out_of_fold_head_probs, read_probabilities
from .verdict import Evidence, label_issues, posterior, weigh_evidence

__all__ = [
    "Detection",
    "Evidence",
    "clean",
    "clean_labels",
    "find_issues",
    "get_detector",
    "label_issues",
    "list_detectors",
    "neighbor_probs",
    "out_of_fold_head_probs",
    "posterior",
    "read_probabilities",
    "register_detector",
    "weigh_evidence",
]
