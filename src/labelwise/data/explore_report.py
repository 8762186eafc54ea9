"""What ``explore`` shows: the sample strips per class and the report."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..report import Report, save_image, thumbnail_strip
from .images import open_image, to_8bit

if TYPE_CHECKING:
    from .explore import ExploreSummary

log = logging.getLogger("labelwise")

UNLABELED_NAME = "(unlabeled)"
THUMB_SIZE = 96


def safe_name(name: str, taken: set[str]) -> str:
    """A file stem for ``name`` (letters, digits, ``-_.``), distinct from ``taken`` ignoring case.

    Path separators and characters that some file systems reject become ``_``.

    >>> taken = set()
    >>> [safe_name(n, taken) for n in ["cat", "a/b c", "Cat", "..", "a_b_c"]]
    ['cat', 'a_b_c', 'Cat_2', 'class', 'a_b_c_2']
    """
    stem = re.sub(r"[^\w.-]+", "_", name).strip("._")[:80] or "class"
    candidate, k = stem, 1
    while candidate.lower() in taken:
        k += 1
        candidate = f"{stem}_{k}"
    taken.add(candidate.lower())
    return candidate


def _write_samples(
    good: pd.DataFrame, classes: list[str], folder: Path, *, per_class: int, seed: int
) -> list[tuple[str, int, Path]]:
    """One strip per class (and one for unlabeled images) of ``per_class`` seeded picks.

    Returns ``(name, images in the class, path)`` per strip.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    labels = good["label"].reset_index(drop=True)
    paths = good["path"].to_numpy()
    positions = labels.groupby(labels, sort=False).indices if labels.notna().any() else {}
    groups = [(c, np.asarray(positions.get(c, []), dtype=np.int64)) for c in classes]
    groups.append((UNLABELED_NAME, np.flatnonzero(labels.isna().to_numpy())))
    written: list[tuple[str, int, Path]] = []
    taken: set[str] = set()
    for name, members in groups:
        if per_class == 0 or len(members) == 0:
            continue
        picks = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        thumbs = []
        for i in picks:
            try:
                with open_image(str(paths[i]), mode=None) as image:
                    image.draft("RGB", (THUMB_SIZE, THUMB_SIZE))  # JPEG: decode at reduced scale
                    thumb = to_8bit(image).convert("RGB")
                thumb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
                thumbs.append(thumb)
            except (OSError, ValueError) as exc:  # changed on disk since inspection
                log.warning("sample %s could not be decoded: %s", paths[i], exc)
        if thumbs:
            # safe_name never yields a leading "_", so this cannot collide with a class.
            stem = "_unlabeled" if name == UNLABELED_NAME else safe_name(name, taken)
            path = save_image(thumbnail_strip(thumbs, size=THUMB_SIZE), folder / f"{stem}.png")
            written.append((name, len(members), path))
    return written


def _human_bytes(n: float) -> str:
    """``1234567`` → ``'1.2 MB'`` (decimal units)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def _reason_kind(reason: str) -> str:
    """Problem reason without per-file details, for counting."""
    reason = re.sub(r" \(row \d+ repeats row \d+\).*", "", str(reason))
    return reason.split(":", 1)[0]


def _report(
    s: ExploreSummary,
    class_table: pd.DataFrame,
    stats: pd.DataFrame,
    size_table: pd.DataFrame,
    problems: pd.DataFrame,
    duplicates: pd.DataFrame,
    samples: list[tuple[str, int, Path]],
) -> Report:
    rep = Report(f"Dataset report: {s.source}")
    rep.paragraph(
        f"**{s.n_images:,}** usable images: {s.n_labeled:,} labeled in {len(s.class_counts)} classes, "
        f"{s.n_unlabeled:,} unlabeled (missing label). **{s.n_problems:,}** input(s) cannot be used."
    )
    for message in s.warnings:
        rep.warning(message)
    ratio = "n/a" if math.isnan(s.imbalance_ratio) else f"{s.imbalance_ratio:.2f}:1"
    rep.table(
        pd.DataFrame(
            [
                ("usable images", f"{s.n_images:,}"),
                ("labeled", f"{s.n_labeled:,}"),
                ("unlabeled", f"{s.n_unlabeled:,}"),
                ("classes", str(len(s.class_counts))),
                ("imbalance ratio (largest / smallest class)", ratio),
                ("problems", f"{s.n_problems:,}"),
                ("duplicate groups", f"{s.n_duplicate_groups:,}"),
                ("duplicate groups with conflicting labels", f"{s.n_conflicting_groups:,}"),
                ("total size", _human_bytes(s.total_bytes)),
            ],
            columns=["", "value"],
        )
    )

    rep.heading("Class balance")
    rep.image(s.paths["class_balance"], "Usable images per class; unlabeled images in grey")
    shown = class_table.assign(share=[f"{v:.1%}" for v in class_table["share"]])
    rep.table(shown, max_rows=100, note_file="class_counts.csv")

    rep.heading("Images")
    rep.table(stats)
    rep.paragraph("Most common sizes (width × height):")
    rep.table(
        size_table.assign(share=[f"{v:.1%}" for v in size_table["share"]]), max_rows=10, note_file="image_sizes.csv"
    )
    rep.paragraph(
        "Modes: "
        + ", ".join(f"`{k}` {v:,}" for k, v in s.modes.items())
        + ". Formats: "
        + ", ".join(f"`{k}` {v:,}" for k, v in s.formats.items())
        + "."
    )

    rep.heading("Problems")
    if problems.empty:
        rep.paragraph("Every input could be read and decoded.")
    else:
        kinds = problems["reason"].map(_reason_kind).value_counts().rename_axis("reason").reset_index(name="count")
        rep.table(kinds)
        rep.table(problems, max_rows=20, note_file="problems.csv")

    rep.heading("Duplicates")
    if duplicates.empty:
        rep.paragraph("No two usable images have identical bytes.")
    else:
        rep.paragraph(
            f"{s.n_duplicate_groups:,} group(s) of byte-identical images ({len(duplicates):,} images); "
            f"{s.n_conflicting_groups:,} with conflicting labels."
        )
        conflicting = duplicates[duplicates["conflicting_labels"].astype(bool)]
        rep.table(
            (conflicting if len(conflicting) else duplicates)[["group", "sample_id", "label"]],
            max_rows=30,
            note_file="duplicates.csv",
        )

    if samples:
        rep.heading("Samples")
        for name, n, path in samples:
            rep.paragraph(f"**{name}** ({n:,} images)")
            rep.image(path, f"samples of {name}")
    return rep
