"""Readers that turn the layouts users arrive with into one :class:`~labelwise.data.table.Dataset`.

Supported inputs: an ImageFolder tree, a CSV/TSV of file names and labels (fastai /
Kaggle style), an ordered label file for a folder of numbered images, an ``.npz`` of
arrays, and labelwise's own saved table.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import note_images, note_input
from ..errors import LabelwiseError
from .delimited import (
    _drop_duplicate_ids,
    _inside_root,
    _native,
    _parse_split,
    _read_delimited,
    _read_text,
    _resolve_column,
    _row,
)
from .images import (
    IMAGE_EXTENSIONS,
    NPZ_SEPARATOR,
    NpzImages,
    is_image_file,
    set_max_pixels,
)
from .natural import natural_key, natural_sorted
from .table import (
    CLASSES_FILE,
    Dataset,
    build_dataset,
    check_table,
    normalise_split,
    read_classes,
)
from .walk import existing_dir, skip_folder, walk_images

log = logging.getLogger("labelwise")

UNLABELED_DIR = "_unlabeled"
FILENAME_COLUMNS = ("fname", "filename", "file_name", "file", "image", "image_id", "img", "path", "id", "name")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category", "y")
SPLIT_COLUMNS = ("split", "is_valid", "subset")
NPZ_LABEL_KEYS = ("labels", "label", "y", "targets", "target")
ClassesArg = Sequence[str] | str | os.PathLike[str] | None


def read_image_folder(
    root: str | os.PathLike[str],
    *,
    unlabeled: str | os.PathLike[str] | None = None,
    classes: ClassesArg = None,
    check: bool = True,
    n_jobs: int = 2,
) -> Dataset:
    """Read ``root/<class>/**/<image>``; images in ``root/_unlabeled/`` or ``unlabeled`` have no label.

    Hidden folders (``.git``, ``.ipynb_checkpoints``) are skipped with a warning;
    non-image files inside class folders are listed as problems.

    Examples
    --------
    >>> from labelwise.data import read_image_folder
    >>> ds = read_image_folder("labelwise-demo/images")  # doctest: +SKIP
    >>> ds.classes[:3]  # doctest: +SKIP
    ['0', '1', '2']
    """
    root = existing_dir(root)
    note_images(root, recursive=True)
    rows: list[tuple[str, str, str | None]] = []
    problems: list[tuple[str, str]] = []
    class_dirs = []
    for entry in sorted(os.scandir(root), key=lambda e: natural_key(e.name)):
        if entry.name.startswith("."):
            if entry.is_dir():
                log.warning("skipping hidden folder %s", entry.path)
            continue
        if entry.is_dir():
            why = skip_folder(Path(entry.path), root, root)
            if why:
                problems.append((entry.path, why))
                continue
            class_dirs.append(entry)
        elif is_image_file(entry.name):
            problems.append((entry.path, "image outside any class folder (expected root/<class>/<image>)"))
    for entry in class_dirs:
        label = None if entry.name == UNLABELED_DIR else entry.name
        files, bad = walk_images(Path(entry.path), root)
        problems += bad
        if not files and label is not None:
            log.warning("class folder %s holds no images; class %r is left out", entry.path, label)
        rows += [(f.relative_to(root).as_posix(), str(f), label) for f in files]
    if unlabeled is not None:
        extra_root = existing_dir(unlabeled)
        note_images(extra_root, recursive=True)
        files, bad = walk_images(extra_root, extra_root)
        problems += bad
        rows += [(f"{UNLABELED_DIR}/{f.relative_to(extra_root).as_posix()}", str(f), None) for f in files]
    if not rows:
        raise LabelwiseError(
            f"{root}: no images found; expected {root}/<class>/<image> with one of "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    table = pd.DataFrame(rows, columns=["sample_id", "path", "label"])
    table, dup_problems = _drop_duplicate_ids(table, str(root))
    return build_dataset(
        table,
        source=f"imagefolder:{root}",
        classes=_classes_arg(classes),
        problems=problems + dup_problems,
        check=check,
        n_jobs=n_jobs,
    )


def read_image_files(root: str | os.PathLike[str], *, check: bool = True, n_jobs: int = 2) -> Dataset:
    """Every image below ``root``, unlabeled, in natural order (a test folder to predict).

    ``sample_id`` is the path relative to ``root``.
    """
    root = existing_dir(root)
    note_images(root, recursive=True)
    files, problems = walk_images(root, root)
    if not files:
        raise LabelwiseError(f"{root}: no images found (extensions {', '.join(sorted(IMAGE_EXTENSIONS))})")
    table = pd.DataFrame(
        [(f.relative_to(root).as_posix(), str(f), None) for f in files], columns=["sample_id", "path", "label"]
    )
    return build_dataset(table, source=f"images:{root}", classes=[], problems=problems, check=check, n_jobs=n_jobs)


def read_csv_labels(
    path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    filename_col: str | int | None = None,
    label_col: str | int | None = None,
    split_col: str | int | None = None,
    suffix: str = "",
    classes: ClassesArg = None,
    allow_outside_root: bool = False,
    check: bool = True,
    n_jobs: int = 2,
) -> Dataset:
    """Read a CSV/TSV of image file names and labels.

    Columns are found by name or position (default: a usual name such as ``fname`` /
    ``label``, else columns 0 and 1, with a warning). File names are relative to
    ``image_root`` (default: the CSV's folder), with ``suffix`` appended (``"abc"`` +
    ``".jpg"``); Windows separators (``sub\\a.png``) are understood. A file outside
    the image root (``../x.png``, an absolute path elsewhere) is listed as a problem and left
    out, unless ``allow_outside_root``. A blank or NaN label means unlabeled; an
    ``is_valid`` (bool) or ``split`` column sets the split.

    Examples
    --------
    >>> from labelwise.data import read_csv_labels
    >>> ds = read_csv_labels("labels.csv", image_root="images")  # doctest: +SKIP
    """
    path = Path(path)
    frame = _read_delimited(path)
    image_root = Path(image_root) if image_root is not None else path.parent
    if not image_root.is_dir():
        raise LabelwiseError(f"{image_root}: image root folder not found (for {path})")
    fn = _resolve_column(frame, filename_col, FILENAME_COLUMNS, 0, "file name", path)
    other = next((i for i, c in enumerate(frame.columns) if c != fn), None)
    lb = _resolve_column(frame, label_col, LABEL_COLUMNS, other, "label", path)
    sp = (
        _resolve_column(frame, split_col, SPLIT_COLUMNS, None, "split", path)
        if split_col is not None
        else next((c for c in SPLIT_COLUMNS if c in frame.columns), None)
    )
    names = frame[fn].astype(str).str.strip()
    empty = (names == "").to_numpy()
    if empty.any():
        raise LabelwiseError(
            f"{path}: row {_row(int(np.flatnonzero(empty)[0]))} has an empty file name in column {fn!r}"
        )
    nul = names.str.contains("\x00", regex=False).to_numpy()
    if nul.any():
        raise LabelwiseError(f"{path}: row {_row(int(np.flatnonzero(nul)[0]))}: the file name holds a NUL byte")
    names = [_native(image_root, n + suffix) for n in names]
    table = pd.DataFrame(
        {
            "sample_id": [Path(n).as_posix() for n in names],
            "path": [str(image_root / n) for n in names],
            "label": frame[lb].to_numpy(),
        }
    )
    if sp is not None:
        table["split"] = [_parse_split(v, sp, path, i) for i, v in enumerate(frame[sp])]
    table, problems = _drop_duplicate_ids(table, str(path))
    if not allow_outside_root:
        table, outside = _inside_root(table, image_root)
        problems += outside
    for folder in {os.path.dirname(p) for p in table["path"]}:
        note_images(folder or ".", recursive=False)
    return build_dataset(
        table, source=f"csv:{path}", classes=_classes_arg(classes), problems=problems, check=check, n_jobs=n_jobs
    )


def read_ordered_labels(
    label_file: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    *,
    classes: ClassesArg = None,
    check: bool = True,
    n_jobs: int = 2,
) -> Dataset:
    """Read a label file whose line *i* labels the *i*-th image of ``image_dir`` in natural order.

    Natural order puts ``2.jpg`` before ``10.jpg`` and also handles zero-padded names.
    A blank line leaves its image unlabeled. The line count must equal the image count.

    Examples
    --------
    >>> from labelwise.data import read_ordered_labels
    >>> ds = read_ordered_labels("train_labels.txt", "train/")  # doctest: +SKIP
    """
    label_file = Path(label_file)
    image_dir = existing_dir(image_dir)
    if not label_file.is_file():
        raise LabelwiseError(f"{label_file}: label file not found")
    note_input(label_file)
    note_images(image_dir, recursive=False)
    names = natural_sorted(
        e.name for e in os.scandir(image_dir) if e.is_file() and not e.name.startswith(".") and is_image_file(e.name)
    )
    if not names:
        raise LabelwiseError(f"{image_dir}: no images found (expected files such as 1.jpg, 2.jpg, ...)")
    lines = _read_text(label_file).splitlines()
    blank_tail = len(lines) - len("\n".join(lines).rstrip().splitlines()) if lines else 0
    if len(lines) > len(names) and blank_tail and len(lines) - blank_tail <= len(names):
        log.info("%s: %d blank line(s) at the end ignored", label_file, len(lines) - len(names))
        lines = lines[: len(names)]
    if len(lines) != len(names):
        raise LabelwiseError(
            f"{label_file}: {len(lines)} label lines but {image_dir} holds {len(names)} images "
            f"(natural order {names[0]} ... {names[-1]}); line i must label the i-th image"
            + (" (blank lines inside the file mean unlabeled images)" if any(not ln.strip() for ln in lines) else "")
        )
    table = pd.DataFrame({"sample_id": names, "path": [str(image_dir / n) for n in names], "label": lines})
    return build_dataset(
        table, source=f"ordered:{label_file}", classes=_classes_arg(classes), check=check, n_jobs=n_jobs
    )


def read_npz(
    path: str | os.PathLike[str],
    *,
    labels_key: str | None = None,
    classes: ClassesArg = None,
    check: bool = True,
    n_jobs: int = 2,
) -> Dataset:
    """Read images and labels from an ``.npz``.

    Images: a uint8 array under ``images`` / ``x`` / ``X`` (``(N, H, W)`` or
    ``(N, H, W, C)``), or encoded files under ``jpeg`` + ``offsets``. Labels: ``labels``
    / ``y`` / ``labels_key``; ``-1`` means unlabeled; an optional ``classes`` array
    names integer labels. Sample ids are ``<file>::<index>``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from labelwise.data import read_npz
    >>> f = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> np.savez(f, images=np.zeros((3, 8, 8), np.uint8), labels=np.array([0, 1, -1]))
    >>> read_npz(f).table["label"].tolist()
    ['0', '1', None]
    """
    path = Path(path)
    if not path.is_file():
        raise LabelwiseError(f"{path}: file not found")
    note_input(path)
    try:
        n_images = len(NpzImages.from_file(str(path)))
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            key = labels_key or next((k for k in NPZ_LABEL_KEYS if k in keys), None)
            if labels_key is not None and labels_key not in keys:
                raise LabelwiseError(f"{path}: no array {labels_key!r}; arrays are: {', '.join(keys)}")
            raw = npz[key] if key is not None else np.full(n_images, -1)
            names = [str(c) for c in npz["classes"]] if "classes" in keys else None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise LabelwiseError(
            f"{path}: not a readable .npz file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    if len(raw) != n_images:
        raise LabelwiseError(f"{path}: {len(raw)} labels for {n_images} images (array {key!r})")
    labels = [_npz_label(v, names) for v in raw]
    ids = [f"{path.name}{NPZ_SEPARATOR}{i}" for i in range(n_images)]
    paths = [f"{path}{NPZ_SEPARATOR}{i}" for i in range(n_images)]
    table = pd.DataFrame({"sample_id": ids, "path": paths, "label": labels})
    if classes is None and names is not None:
        classes = names
    return build_dataset(table, source=f"npz:{path}", classes=_classes_arg(classes), check=check, n_jobs=n_jobs)


def read_table(path: str | os.PathLike[str], *, check: bool = True, n_jobs: int = 2) -> Dataset:
    """Read a table written by labelwise (``sample_id, path, label, ...``) and its ``classes.json``."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        note_input(path)
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, ImportError) as exc:
            raise LabelwiseError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:120]})") from None
    else:
        frame = _read_delimited(path)
    check_table(frame, str(path))
    frame = frame.replace({"": None})
    classes_file = path.parent / CLASSES_FILE
    classes = read_classes(classes_file) if classes_file.is_file() else None
    keep = [c for c in frame.columns if c not in ("content_hash", "n_bytes", "width", "height", "mode", "format")]
    if "split" in frame.columns:
        frame["split"] = [normalise_split(v, f"{path}: row {_row(i)}") for i, v in enumerate(frame["split"])]
    if "fold" in frame.columns:
        frame["fold"] = pd.to_numeric(frame["fold"], errors="coerce").fillna(-1).astype("int64")
    for folder in {os.path.dirname(str(p)) for p in frame["path"]}:
        note_images(folder or ".", recursive=False)
    return build_dataset(frame[keep], source=f"table:{path}", classes=classes, check=check, n_jobs=n_jobs)


def load_dataset(
    source: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    unlabeled: str | os.PathLike[str] | None = None,
    filename_col: str | int | None = None,
    label_col: str | int | None = None,
    split_col: str | int | None = None,
    suffix: str = "",
    labels_key: str | None = None,
    classes: ClassesArg = None,
    max_pixels: int | None = None,
    allow_outside_root: bool = False,
    check: bool = True,
    n_jobs: int = 2,
) -> Dataset:
    """Read any supported input, chosen by what ``source`` is.

    ``max_pixels``: images with more pixels are problems ("too large"); 0 allows any size
    (the setting holds for the rest of the process). ``allow_outside_root``: see
    :func:`read_csv_labels`.

    - a folder → ImageFolder (``unlabeled``: an extra folder of unlabeled images);
    - ``.csv``/``.tsv`` with ``sample_id, path, label`` columns → a labelwise table;
      any other CSV/TSV → file names + labels relative to ``images`` (default: its folder);
    - ``.txt`` → ordered label file for the folder ``images``;
    - ``.npz`` → arrays; ``.parquet`` → a labelwise table.

    Examples
    --------
    >>> import labelwise
    >>> ds = labelwise.load_dataset("labelwise-demo/images")  # doctest: +SKIP
    >>> ds.table.columns[:5].tolist()  # doctest: +SKIP
    ['sample_id', 'path', 'label', 'split', 'label_source']
    """
    path = Path(source)
    suffix_ = path.suffix.lower()
    if max_pixels is not None:
        set_max_pixels(max_pixels)
    if path.is_dir():
        return read_image_folder(path, unlabeled=unlabeled, classes=classes, check=check, n_jobs=n_jobs)
    if not path.exists():
        raise LabelwiseError(f"{path}: no such file or folder")
    if suffix_ == ".npz":
        return read_npz(path, labels_key=labels_key, classes=classes, check=check, n_jobs=n_jobs)
    if suffix_ == ".parquet":
        return read_table(path, check=check, n_jobs=n_jobs)
    if suffix_ == ".txt":
        if images is None:
            raise LabelwiseError(f"{path}: an ordered label file needs the image folder (--images DIR)")
        return read_ordered_labels(path, images, classes=classes, check=check, n_jobs=n_jobs)
    if suffix_ in {".csv", ".tsv", ".tab"}:
        header = _read_delimited(path, nrows=0).columns
        if {"sample_id", "path", "label"} <= set(header) and images is None:
            return read_table(path, check=check, n_jobs=n_jobs)
        return read_csv_labels(
            path,
            image_root=images,
            filename_col=filename_col,
            label_col=label_col,
            split_col=split_col,
            suffix=suffix,
            classes=classes,
            allow_outside_root=allow_outside_root,
            check=check,
            n_jobs=n_jobs,
        )
    raise LabelwiseError(
        f"{path}: cannot tell what this is; expected an image folder, .csv/.tsv, .txt (ordered labels), "
        ".npz or .parquet"
    )


# ---------------------------------------------------------------- helpers


def _npz_label(value: object, names: list[str] | None) -> str | None:
    if isinstance(value, (int, np.integer)):
        if value < 0:
            return None
        return names[int(value)] if names is not None and value < len(names) else str(int(value))
    if isinstance(value, (float, np.floating)):
        if np.isnan(value) or value < 0:
            return None
        return str(int(value)) if float(value).is_integer() else str(value)
    return None if value is None else str(value)


def _classes_arg(classes: ClassesArg) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        return read_classes(classes)
    return [str(c) for c in classes]
