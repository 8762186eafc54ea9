"""Label in the browser: a local labeling app (``labelwise label``) whose state lives in a database.

``queue`` reads any task list labelwise writes into tasks (gold ones split into training, exam and
honeypots); :class:`Store` holds the project (tasks, annotators, leases, answers, events) in SQLite
or PostgreSQL and decides who gets which task (``assign``); ``server`` is the HTTP API and the
page (``static/``); ``project`` is the ``label`` command; ``export`` writes the answers out.

Imports are lazy: the package loads without the ``label`` extra, and :func:`label` then names it.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "label": "project",
    "LabelingProject": "project",
    "read_queue": "queue",
    "Settings": "models",
    "Store": "store",
    "make_app": "server",
    "export_answers": "export",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        if _NAMES[name] in ("store", "server"):
            from ..errors import require

            require("sqlalchemy", "label", "the labeling app")
            require("starlette", "label", "the labeling app") if _NAMES[name] == "server" else None
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
