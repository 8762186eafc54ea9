"""Exceptions that labelwise raises for user mistakes.

The CLI prints a :class:`LabelwiseError` as one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LabelwiseError(Exception):
    """A problem with the user's input: one line naming the file/row and what is wrong."""


class MissingExtraError(LabelwiseError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    >>> require("math", "none", "maths").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the '{module}' package: pip install 'labelwise[{extra}]'"
        ) from exc
