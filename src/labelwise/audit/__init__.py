"""Audit the images, not only the labels: near-duplicates, leaks across splits, label
conflicts between copies, outliers, and dark, washed-out, blurred, near-empty, gray and oddly
shaped images (:func:`audit`; the checks: ``labelwise list audits``)."""

import sys
import types
from typing import Any

from .auditing import AuditResult, audit
from .checks import CHECKS, AuditInputs, ImageCheck, known_checks

__all__ = ["CHECKS", "AuditInputs", "AuditResult", "ImageCheck", "audit", "known_checks"]


class _CommandModule(types.ModuleType):
    """``labelwise.audit`` is this package once it is imported: calling it runs :func:`audit`."""

    def __call__(self, *args: Any, **kwargs: Any) -> AuditResult:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CommandModule
