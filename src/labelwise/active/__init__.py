"""Active learning: choose what to label next (``query``), and compare strategies on
labeled data with learning curves (``simulate``, ``plot_curves``)."""

from __future__ import annotations

from .curves import curve_summary, plot_curves
from .loop import run_loop
from .models import LoopModel, list_loop_models, make_model, mc_dropout_proba
from .querying import query
from .scores import (
    bald_scores,
    entropy_scores,
    least_confident_scores,
    margin_scores,
    stream_scores,
    uncertainty_scores,
)
from .simulation import simulate
from .strategies import (
    DEFAULT_STRATEGY,
    Pool,
    Selection,
    get_strategy,
    list_strategies,
    register_strategy,
    select,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "LoopModel",
    "Pool",
    "Selection",
    "bald_scores",
    "curve_summary",
    "entropy_scores",
    "get_strategy",
    "least_confident_scores",
    "list_loop_models",
    "list_strategies",
    "make_model",
    "margin_scores",
    "mc_dropout_proba",
    "plot_curves",
    "query",
    "register_strategy",
    "run_loop",
    "select",
    "simulate",
    "stream_scores",
    "uncertainty_scores",
]
