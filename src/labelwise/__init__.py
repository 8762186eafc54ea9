"""labelwise: turn a messy image dataset into a trustworthy classifier and a clean label set.

The top level holds every command the CLI runs, under the CLI's name, with one contract: the
data first, the output folder second (or ``out=``), options keyword-only, ``random_state``
for the seed, ``read=`` (:class:`ReadOptions`) for how to read the dataset, ``overwrite=``
to replace an earlier run's results; each returns a small result whose ``summary()`` is what
``run.json`` records. The array-level functions these are built on live in their packages
(:func:`labelwise.noise.label_issues`, :func:`labelwise.semi.pseudo_label`,
:func:`labelwise.crowd.aggregate_labels`, :func:`labelwise.active.select` …) and take arrays.

Heavier parts (plots, torch) are imported only when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__  # noqa: F401  (re-exported: __all__)
from .data import Dataset, ReadOptions, load_dataset, split, split_table  # noqa: F401
from .errors import LabelwiseError, MissingExtraError  # noqa: F401

#: Command name → (module, function).
_COMMANDS = {
    "explore": ("labelwise.audit.exploring", "explore"),
    "audit": ("labelwise.audit", "audit"),
    "embed": ("labelwise.features", "embed"),
    "train": ("labelwise.train.kfold", "train"),
    "evaluate": ("labelwise.evaluate", "evaluate"),
    "predict": ("labelwise.train.prediction", "predict"),
    "find_issues": ("labelwise.noise", "find_issues"),
    "clean": ("labelwise.noise", "clean"),
    "pseudolabel": ("labelwise.semi", "pseudolabel"),
    "query": ("labelwise.active", "query"),
    "simulate": ("labelwise.active", "simulate"),
    "plot_curves": ("labelwise.active", "plot_curves"),
    "aggregate": ("labelwise.crowd", "aggregate_answers"),
    "make_tasks": ("labelwise.crowd", "make_tasks"),
    "propagate": ("labelwise.crowd", "propagate"),
    "label": ("labelwise.labeling.project", "label"),
    "loop": ("labelwise.loop", "loop"),
    "demo": ("labelwise._demo", "run_demo"),
    "list_backbones": ("labelwise.features", "list_backbones"),
    "list_models": ("labelwise.train", "list_models"),
}

__all__ = sorted(
    [
        "Dataset",
        "LabelwiseError",
        "MissingExtraError",
        "ReadOptions",
        "__version__",
        "load_dataset",
        "split",
        "split_table",
        *_COMMANDS,
    ]
)


def __getattr__(name: str) -> Any:
    if name in _COMMANDS:
        module, attr = _COMMANDS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labelwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
