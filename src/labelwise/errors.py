"""Exceptions that labelwise raises for user mistakes.

The CLI prints a :class:`LabelwiseError` as one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType


class LabelwiseError(Exception):
    """A problem with the user's input: one line naming the file/row and what is wrong.

    Line breaks that the input itself carries into the message (a column name, a value) are
    shown as ``\\n``, so the message stays one line.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        text = str(message).replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
        super().__init__(text, *args)


class MissingExtraError(LabelwiseError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it.

    >>> installed("math"), installed("no_such_module_here")
    (True, False)
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    >>> require("math", "none", "maths").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{feature} needs the '{module}' package: pip install 'labelwise[{extra}]'") from exc
