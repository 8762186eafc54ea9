"""Close the loop: choose the images worth a person's time, get their answers (the labeling page, an
export, or recorded answers), decide each label from people and model together, merge with a
history, retrain, and show what the budget bought (``labelwise loop``).

The loop's state lives in the labeling database, so :func:`loop` needs the ``label`` extra; the choice
rules (:mod:`.value`) and :func:`decide` load without it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from .deciding import Decision as Decision
from .deciding import decide as decide
from .value import CHOICES as CHOICES
from .value import answer_value as answer_value

_RUNNING = ("LoopResult", "loop", "loop_status")

__all__ = sorted(["CHOICES", "Decision", "answer_value", "decide", *_RUNNING])


def __getattr__(name: str) -> Any:
    if name in _RUNNING:
        from ..errors import require

        require("sqlalchemy", "label", "labelwise loop (its state lives in the labeling database)")
        return getattr(importlib.import_module(f"{__name__}.running"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CommandModule(types.ModuleType):
    """``labelwise.loop`` is this package once it is imported: calling it runs :func:`loop`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return __getattr__("loop")(*args, **kwargs)


sys.modules[__name__].__class__ = _CommandModule
