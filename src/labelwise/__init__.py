"""labelwise: turn a messy image dataset into a trustworthy classifier and a clean label set.

The top level mirrors the CLI: ``load_dataset``, ``explore``, ``split``, ``embed``,
``predict`` and ``demo``; training and evaluation live in their packages
(``labelwise.train.train``, ``labelwise.evaluate.evaluate``). Heavier parts (plots,
torch) are imported only when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .data import Dataset, load_dataset, split, split_table
from .errors import LabelwiseError, MissingExtraError

_LAZY = {
    "explore": ("labelwise.data.explore", "explore"),
    "embed": ("labelwise.features", "embed"),
    "list_backbones": ("labelwise.features", "list_backbones"),
    "demo": ("labelwise._demo", "run_demo"),
    "predict": ("labelwise.train.prediction", "predict"),
}

__all__ = [
    "Dataset",
    "LabelwiseError",
    "MissingExtraError",
    "__version__",
    "demo",
    "embed",
    "explore",
    "list_backbones",
    "load_dataset",
    "predict",
    "split",
    "split_table",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labelwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
