"""Missing labels: pseudo-label the unlabeled pool and flag the images only a human can label.

Methods (registered by name, :func:`list_methods`) work on embeddings and class codes with
``-1`` for unlabeled rows; :func:`pseudo_label` runs one with the budget and votes on arrays,
:func:`pseudolabel` on a dataset, writing ``pseudo_labels.csv``, labeling tasks and a report.
"""

from __future__ import annotations

from ..features import default_backbone  # re-exported: it lives in labelwise.features
from .ensemble import DEFAULT_METHOD, Ensemble
from .knn_kmeans import KnnKMeans
from .methods import get_method, list_methods, register_method
from .pseudo import PseudoLabels, apply_budget, pseudo_label
from .pseudolabeling import PseudolabelResult, pseudolabel
from .self_training import SelfTraining
from .spreading import Spreading

__all__ = [
    "DEFAULT_METHOD",
    "Ensemble",
    "KnnKMeans",
    "PseudoLabels",
    "PseudolabelResult",
    "SelfTraining",
    "Spreading",
    "apply_budget",
    "default_backbone",
    "get_method",
    "list_methods",
    "pseudo_label",
    "pseudolabel",
    "register_method",
]
