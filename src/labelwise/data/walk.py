"""Finding the image files below a folder: hidden folders, labelwise's own output folders and
symlinks back into the dataset are skipped (and said so); the rest in natural order."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import LabelwiseError
from .images import is_image_file
from .natural import natural_key, natural_sorted

log = logging.getLogger("labelwise")

# What marks a folder as a labelwise output folder, never read back as images.
OUTPUT_MARKERS = (".labelwise.lock", "run.json")


def is_output_folder(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a labelwise run's outputs (its lock or run record)."""
    folder = Path(folder)
    if (folder / OUTPUT_MARKERS[0]).is_file():
        return True
    record = folder / OUTPUT_MARKERS[1]
    if not record.is_file():
        return False
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "command" in data and "versions" in data


def existing_dir(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise LabelwiseError(f"{path}: folder not found")
    if not path.is_dir():
        raise LabelwiseError(f"{path}: expected a folder, found a file")
    return path.resolve()


def skip_folder(folder: Path, walk_root: Path, dataset_root: Path) -> str | None:
    """Why a folder met while walking images is not read, if it is not: a labelwise output
    folder, or a symlink back to a folder that is already being read."""
    if is_output_folder(folder):
        log.warning("skipping %s: it holds a labelwise run's outputs, not images", folder)
        return "a labelwise output folder, not images; skipped"
    if folder.is_symlink():
        target = folder.resolve()
        here = folder.parent.resolve()
        if target == here or target in here.parents:
            return f"symlink to the ancestor folder {target}; skipped (it would read images twice)"
        if target == dataset_root or dataset_root in target.parents:
            if not (target == walk_root or walk_root in target.parents):
                return f"symlink to {target}, another folder of the dataset; skipped"
    return None


def walk_images(folder: Path, dataset_root: Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files below ``folder`` in natural order, and what was skipped as problems.

    Symlinked folders are followed, except back into an ancestor or into another folder of
    ``dataset_root``; labelwise output folders are never read as images.
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()
    walk_root = folder.resolve()
    dataset_root = (dataset_root or folder).resolve()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        stat = os.stat(dirpath)
        if (stat.st_dev, stat.st_ino) in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        hidden = [d for d in dirnames if d.startswith(".")]
        for d in hidden:
            log.warning("skipping hidden folder %s", os.path.join(dirpath, d))
        keep = []
        for d in sorted((d for d in dirnames if not d.startswith(".")), key=natural_key):
            why = skip_folder(Path(dirpath) / d, walk_root, dataset_root)
            if why:
                problems.append((os.path.join(dirpath, d), why))
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in natural_sorted(filenames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            if is_image_file(name):
                files.append(full)
            else:
                problems.append((str(full), f"not an image (unsupported extension '{full.suffix or 'none'}')"))
    return files, problems
