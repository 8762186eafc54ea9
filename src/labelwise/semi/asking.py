"""Never ask a person twice about one picture: drop from the problematic set the images that are
near-duplicates of a labeled image or of a more uncertain problematic one."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from .pseudo import OVER_BUDGET, PseudoLabels, apply_budget

log = logging.getLogger("labelwise")


def skip_near_duplicates(
    table: pd.DataFrame,
    codes: np.ndarray,
    rows: np.ndarray,
    found: PseudoLabels,
    *,
    audit: str | os.PathLike[str] | pd.DataFrame | None = None,
    budget: int | None = None,
    n_jobs: int = 2,
) -> int:
    """:func:`ask_once` over ``found`` (the rows ``rows`` of ``table``, whose class codes are
    ``codes``) with the near-duplicate groups of the whole table, measured or from ``audit``."""
    if audit is not None:
        from ..data.audit_table import audit_groups

        groups = audit_groups(table, audit).to_numpy()
    else:
        from ..data.near_duplicates import near_duplicate_groups

        groups = near_duplicate_groups(table, n_jobs=n_jobs).to_numpy()
    ids = table["sample_id"].astype(str).to_numpy()
    known = (codes >= 0) & (groups >= 0)
    labeled = dict(zip(groups[known][::-1].tolist(), ids[known][::-1].tolist(), strict=True))  # first wins
    skipped = ask_once(found, groups[rows], ids[rows], labeled=labeled, budget=budget)
    if skipped.any():
        log.info(
            "pseudolabel: %d problematic image(s) not asked: near-duplicates of an image labeled or asked "
            "(see `why` in pseudo_labels.csv)",
            int(skipped.sum()),
        )
    return int(skipped.sum())


def ask_once(
    found: PseudoLabels,
    groups: np.ndarray,
    ids: np.ndarray,
    *,
    labeled: dict[int, str],
    budget: int | None = None,
) -> np.ndarray:
    """Unflag the problematic rows of ``found`` (in place) that repeat a picture; return them.

    ``groups``: each row's near-duplicate group (-1: none), ``ids`` its sample_id, ``labeled``: a
    labeled sample_id of each group that holds one (rows outside ``found`` count too). Rows are
    asked least confident first, so each group's most uncertain image is the one asked; the
    budget is then filled from the rest, and a skipped row's ``why`` names the image it repeats.
    """
    doubtful = (found.source == "pseudo") & ~found.vouched
    suffix = f"; {OVER_BUDGET}"
    why = np.array([w.removesuffix(suffix) if w != OVER_BUDGET else "" for w in found.why], dtype=object)
    seen = dict(labeled)
    skipped = np.zeros(len(groups), bool)
    for row in np.flatnonzero(doubtful)[np.argsort(found.confidence[doubtful], kind="stable")]:
        group = int(groups[row])
        if group < 0:
            continue
        if group in seen:
            skipped[row] = True
            what = "labeled" if group in labeled else "asked"
            why[row] = f"{why[row]}; near-duplicate of {seen[group]} ({what})".lstrip("; ")
        else:
            seen[group] = str(ids[row])
    if skipped.any():
        found.problematic, found.why = apply_budget(doubtful & ~skipped, found.confidence, why, budget)
        found.why[skipped] = why[skipped]
    return skipped
