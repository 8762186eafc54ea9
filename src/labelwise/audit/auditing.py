"""``labelwise audit``: near-duplicates, leaks across splits, conflicts, outliers and unusable
images, each finding with its score and the threshold it passed."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._io import write_table
from .._run import recorded
from ..data import Dataset, ReadOptions
from ..data.measuring import MEASURES_DIR, Measurements, measure_images
from ..data.near_duplicates import NEAR_DUPLICATE_SCORE, find_near_duplicates
from ..data.options import as_read_options, dataset_inputs
from ..errors import LabelwiseError
from .checks import CHECKS, MASKED_BY_LOW_INFORMATION, PAIRWISE, AuditInputs, known_checks
from .duplicates import FINDING_COLUMNS, duplicate_findings
from .report import write_report

log = logging.getLogger("labelwise")

ISSUE_ORDER = ("leak", "conflict", "near_duplicate")


@dataclass
class AuditResult:
    """What :func:`audit` found.

    findings : one row per finding (:data:`~labelwise.audit.duplicates.FINDING_COLUMNS`), leaks first.
    summary : per issue type: findings, threshold, images checked, share.
    n_images : usable images audited; n_problems : inputs that could not be read.
    backbone : the embedding the outlier checks used (``None``: none).
    paths : output name → path.
    """

    findings: pd.DataFrame
    summary_table: pd.DataFrame
    n_images: int
    n_problems: int
    backbone: str | None
    warnings: list[str]
    paths: dict[str, Path]

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.summary_table.set_index("issue")["findings"].items()}

    def summary(self) -> dict[str, Any]:
        return {
            "n_images": self.n_images,
            "n_problems": self.n_problems,
            "backbone": self.backbone,
            "findings": self.counts(),
            "warnings": self.warnings,
            "paths": {k: str(v) for k, v in self.paths.items()},
        }


@recorded("audit", inputs=dataset_inputs())
def audit(
    data: str | os.PathLike[str] | Dataset,
    out: str | os.PathLike[str],
    *,
    checks: list[str] | None = None,
    thresholds: dict[str, float] | None = None,
    near_duplicate_threshold: float = NEAR_DUPLICATE_SCORE,
    backbone: str | Literal["auto", "none"] = "auto",
    size: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    measures: str | os.PathLike[str] | None = None,
    html: bool = True,
    n_jobs: int = 2,
    random_state: int = 0,
    read: ReadOptions | None = None,
    overwrite: bool = False,
) -> AuditResult:
    """Audit the images of ``data`` and write ``audit.csv``, ``summary.csv``, ``scores.csv``,
    ``pairs.csv``, ``problems.csv`` and a report with a thumbnail grid per issue into ``out``.

    Parameters
    ----------
    data : anything :func:`labelwise.load_dataset` reads, or a loaded :class:`Dataset`.
    checks : issue types to look for (default all: ``labelwise list audits`` plus
        ``near_duplicate``, ``leak`` and ``conflict``).
    thresholds : issue type → threshold, replacing the defaults (the score a finding needs).
    near_duplicate_threshold : the pixel match a near-duplicate pair needs (0-1).
    backbone : embedding for the outlier checks: ``auto`` (ImageNet features for colour photos,
        else ``pixels``), a backbone name, or ``none`` (no outlier checks).
    size, cache_dir : the embedding's input side and cache (see :func:`labelwise.embed`).
    measures : a folder of measurements already made (``explore``'s ``measures/``) for the
        same images, so the images are not read again.
    n_jobs : threads that decode images.
    read : how to read ``data``.
    overwrite : replace an earlier run's results in ``out``.
    """
    chosen = _chosen_checks(checks)
    limits = _thresholds(thresholds, near_duplicate_threshold)
    ds = data if isinstance(data, Dataset) else as_read_options(read).load(data, check=False, n_jobs=n_jobs)
    if ds.table.empty:
        raise LabelwiseError(f"{ds.source or data}: no images to audit")
    out = Path(out)
    table = ds.table.reset_index(drop=True)
    measured = _measurements(table, measures, out, n_jobs=n_jobs)
    ok = measured.usable
    problems = pd.concat(
        [ds.problems, measured.table.loc[~ok, ["path", "problem"]].rename(columns={"problem": "reason"})],
        ignore_index=True,
    )
    columns = [c for c in measured.table.columns if c not in ("path", "problem")]
    good = pd.concat([table.drop(columns=[c for c in columns if c in table]), measured.table[columns]], axis=1)[ok]
    good = good.reset_index(drop=True)
    warnings: list[str] = []
    embeddings, used = _embeddings(good, chosen, backbone, size, cache_dir, random_state, warnings)
    inputs = AuditInputs(good, embeddings)

    scores = pd.DataFrame({"sample_id": good["sample_id"], "path": good["path"]})
    found = []
    for name in [c for c in CHECKS.names() if c in chosen]:
        check = CHECKS.get(name)
        if check.needs_embeddings and embeddings is None:
            continue
        scores[name] = np.round(check.score(inputs), 4)
    masked = scores["low_information"] >= limits["low_information"] if "low_information" in scores else None
    for name in scores.columns[2:]:
        hit = np.array(scores[name] >= limits[name], dtype=bool)
        if masked is not None and name in MASKED_BY_LOW_INFORMATION:
            hit &= ~masked.to_numpy()
        found.append(
            pd.DataFrame(
                {
                    "sample_id": good["sample_id"][hit],
                    "path": good["path"][hit],
                    "issue": name,
                    "score": scores[name][hit],
                    "threshold": limits[name],
                    "related_sample_id": None,
                    "group": -1,
                }
            )
        )
    pairs = pd.DataFrame()
    if any(issue in chosen for issue in PAIRWISE):
        # Unusable images never pair, so the thumbnails are not copied to leave them out.
        near = find_near_duplicates(measured, threshold=limits["near_duplicate"], n_jobs=n_jobs).among(ok)
        pairwise = duplicate_findings(good, near)
        found.append(pairwise[pairwise["issue"].isin(chosen)])
        pairs = near.pairs.assign(sample_id=good["sample_id"].to_numpy()[near.pairs["i"]])
        pairs["related_sample_id"] = good["sample_id"].to_numpy()[near.pairs["j"]]
        pairs = pairs[["sample_id", "related_sample_id", "descriptor_similarity", "score"]]
    findings = _ordered(pd.concat([f for f in found if len(f)] or [pd.DataFrame(columns=list(FINDING_COLUMNS))]))
    summary = _summary(findings, chosen, limits, len(good), scores)
    warnings += _warnings(findings, len(problems))
    for message in warnings:
        log.warning("%s", message)

    paths = {
        "audit": write_table(out / "audit.csv", findings),
        "summary": write_table(out / "summary.csv", summary),
        "scores": write_table(out / "scores.csv", scores),
        "pairs": write_table(out / "pairs.csv", pairs.round(4)),
        "problems": write_table(out / "problems.csv", problems),
    }
    score_limits = {c: limits[c] for c in scores.columns[2:]}
    id_paths = dict(zip(good["sample_id"], good["path"], strict=True))
    written = write_report(out, findings, summary, scores, score_limits, id_paths, warnings=warnings, html=html)
    paths["report"] = written[0]
    if html:
        paths["report_html"] = written[1]
    log.info("audit: %d findings on %d images; report in %s", len(findings), len(good), out)
    return AuditResult(findings, summary, len(good), len(problems), used, warnings, paths)


def _chosen_checks(checks: list[str] | None) -> list[str]:
    known = known_checks()
    if checks is None:
        return known
    unknown = [c for c in checks if c not in known]
    if unknown:
        raise LabelwiseError(f"unknown audit check(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}")
    return list(checks)


def _thresholds(given: dict[str, float] | None, near_duplicate: float) -> dict[str, float]:
    limits = {name: CHECKS.get(name).threshold for name in CHECKS.names()}
    limits.update({issue: near_duplicate for issue in PAIRWISE})
    for name, value in (given or {}).items():
        if name not in limits:
            raise LabelwiseError(f"unknown audit check {name!r} in thresholds; choose from: {', '.join(limits)}")
        if name in PAIRWISE:
            limits.update({issue: float(value) for issue in PAIRWISE})
        else:
            limits[name] = float(value)
    return limits


def _measurements(
    table: pd.DataFrame, measures: str | os.PathLike[str] | None, out: Path, *, n_jobs: int
) -> Measurements:
    if measures is not None:
        if not Measurements.exists(measures):
            raise LabelwiseError(f"{measures}: no measurements there (expected explore's {MEASURES_DIR}/ folder)")
        if not Measurements.current(measures):
            log.warning("%s: measured by another labelwise version; measuring again", measures)
        else:
            measured = Measurements.load(measures)
            if measured.table["path"].tolist() == table["path"].tolist():
                return measured
            log.warning("%s: measured other images than these; measuring again", measures)
    return measure_images(table["path"].tolist(), n_jobs=n_jobs, folder=out / MEASURES_DIR)


def _embeddings(
    good: pd.DataFrame,
    chosen: list[str],
    backbone: str,
    size: int | None,
    cache_dir: str | os.PathLike[str] | None,
    random_state: int,
    warnings: list[str],
) -> tuple[np.ndarray | None, str | None]:
    wanted = any(CHECKS.get(c).needs_embeddings for c in chosen if c in CHECKS)
    if not wanted or backbone == "none" or len(good) < 3:
        return None, None
    from ..features import embed
    from ..features.choice import auto_backbone

    if backbone == "auto":
        backbone, size = auto_backbone(good, purpose="audit", fallback="pixels")
    vectors = embed(good, backbone=backbone, size=size, cache_dir=cache_dir, random_state=random_state)
    return vectors, backbone


def _ordered(findings: pd.DataFrame) -> pd.DataFrame:
    order = {issue: k for k, issue in enumerate(ISSUE_ORDER)}
    rank = findings["issue"].map(lambda issue: order.get(issue, len(order)))
    findings = findings.assign(_rank=rank).sort_values(["_rank", "issue", "score"], ascending=[True, True, False])
    findings = findings.drop(columns="_rank").reset_index(drop=True)
    findings["group"] = findings["group"].astype("int64")
    return findings[list(FINDING_COLUMNS)]


def _summary(
    findings: pd.DataFrame, chosen: list[str], limits: dict[str, float], n_images: int, scores: pd.DataFrame
) -> pd.DataFrame:
    counts = findings["issue"].value_counts()
    rows = []
    for issue in [i for i in (*ISSUE_ORDER, *CHECKS.names()) if i in chosen]:
        if issue in CHECKS and issue not in scores:
            continue  # an outlier check without an embedding
        n = int(counts.get(issue, 0))
        rows.append(
            {
                "issue": issue,
                "findings": n,
                "threshold": limits[issue],
                "images_checked": n_images,
                "share": round(n / max(n_images, 1), 4),
            }
        )
    return pd.DataFrame(rows, columns=["issue", "findings", "threshold", "images_checked", "share"])


def _warnings(findings: pd.DataFrame, n_problems: int) -> list[str]:
    found = []
    leaks = findings[findings["issue"] == "leak"]
    if len(leaks):
        example = leaks.iloc[0]
        found.append(
            f"{leaks['group'].nunique()} near-duplicate group(s) span splits ({len(leaks)} images), e.g. "
            f"{example['sample_id']} ~ {example['related_sample_id']}: an evaluation on them is optimistic; "
            "`labelwise split` keeps groups together"
        )
    conflicts = findings[findings["issue"] == "conflict"]
    if len(conflicts):
        found.append(f"{conflicts['group'].nunique()} near-duplicate group(s) carry different labels (see audit.csv)")
    if n_problems:
        found.append(f"{n_problems} input(s) cannot be used (see problems.csv)")
    return found
