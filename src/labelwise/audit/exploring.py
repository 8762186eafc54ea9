"""``labelwise explore`` with the audit: one streaming pass measures every image, then the
audit reads those measurements instead of the images (its results in ``out/audit``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..data import Dataset, ReadOptions
from ..data.explore import ExploreSummary
from ..data.explore import explore as explore_data
from ..data.measuring import MEASURES_DIR

AUDIT_DIR = "audit"


def explore(
    data: str | os.PathLike[str] | Dataset,
    out: str | os.PathLike[str],
    *,
    audit: bool = True,
    backbone: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    read: ReadOptions | None = None,
    overwrite: bool = False,
    **options: Any,
) -> ExploreSummary:
    """:func:`labelwise.data.explore.explore` (same options), then, unless ``audit`` is false,
    :func:`labelwise.audit.audit` of the same images into ``out/audit`` (``backbone`` and
    ``cache_dir`` are the audit's). The summary's ``paths`` gain ``audit`` and ``audit_report``.
    """
    from .auditing import audit as run_audit

    summary = explore_data(data, out, measure=audit, read=read, overwrite=overwrite, **options)
    if audit:
        result = run_audit(
            data,
            Path(out) / AUDIT_DIR,
            backbone=backbone,
            cache_dir=cache_dir,
            measures=Path(out) / MEASURES_DIR,
            html=options.get("html", True),
            n_jobs=options.get("n_jobs", 2),
            random_state=options.get("random_state", 0),
            read=read,
            overwrite=overwrite,
        )
        summary.paths["audit"] = result.paths["audit"]
        summary.paths["audit_report"] = result.paths["report"]
        summary.warnings.extend(result.warnings)
    return summary
