"""Readers that turn the layouts users arrive with into one :class:`~labelwise.data.table.Dataset`.

Supported inputs: an ImageFolder tree, a CSV/TSV of file names and labels (fastai /
Kaggle style), an ordered label file for a folder of numbered images, an ``.npz`` of
arrays, and labelwise's own saved table.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import note_images, note_input, resolved
from ..errors import LabelwiseError
from .images import IMAGE_EXTENSIONS, NPZ_SEPARATOR, NpzImages, is_image_file, set_max_pixels
from .natural import natural_key, natural_sorted
from .table import CLASSES_FILE, Dataset, build_dataset, check_table, normalise_split, read_classes

log = logging.getLogger("labelwise")

UNLABELED_DIR = "_unlabeled"
FILENAME_COLUMNS = ("fname", "filename", "file_name", "file", "image", "image_id", "img", "path", "id", "name")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category", "y")
SPLIT_COLUMNS = ("split", "is_valid", "subset")
NPZ_LABEL_KEYS = ("labels", "label", "y", "targets", "target")
ClassesArg = Sequence[str] | str | os.PathLike[str] | None
# What marks a folder as a labelwise output folder, never read back as images.
OUTPUT_MARKERS = (".labelwise.lock", "run.json")


@dataclass(frozen=True)
class ReadOptions:
    """How a command reads its dataset: the options :func:`load_dataset` takes besides the source.

    ``max_pixels`` (0: no limit) applies to the whole process once the options are used, since
    images are decoded again later; ``allow_outside_root`` keeps CSV rows whose file lies outside
    the image root (excluded and listed as problems by default).
    """

    images: str | os.PathLike[str] | None = None
    unlabeled: str | os.PathLike[str] | None = None
    filename_col: str | int | None = None
    label_col: str | int | None = None
    split_col: str | int | None = None
    suffix: str = ""
    labels_key: str | None = None
    classes: ClassesArg = None
    max_pixels: int | None = None
    allow_outside_root: bool = False

    def load(self, source: str | os.PathLike[str], *, check: bool = True, n_jobs: int = 2) -> Dataset:
        """:func:`load_dataset` of ``source`` with these options."""
        return load_dataset(source, **self.kwargs(), check=check, n_jobs=n_jobs)

    def kwargs(self) -> dict[str, Any]:
        return asdict(self)

    def input_paths(self, source: object = None) -> tuple[list[Any], list[Any]]:
        """What a command reading ``source`` with these options takes in: ``(inputs, image_trees)``,
        the files and folders it must never cover, and the folders whose every sub-folder it
        reads images from (see :func:`labelwise._run.command_run`)."""
        inputs: list[Any] = [p for p in (self.images,) if p is not None]
        if isinstance(self.classes, (str, os.PathLike)):
            inputs.append(self.classes)
        trees: list[Any] = [self.unlabeled] if self.unlabeled is not None else []
        if isinstance(source, (str, os.PathLike)):
            (trees if Path(source).is_dir() else inputs).append(source)
        return inputs, trees


def as_read_options(read: ReadOptions | dict[str, Any] | None) -> ReadOptions:
    if read is None:
        return ReadOptions()
    if isinstance(read, ReadOptions):
        return read
    try:
        return ReadOptions(**read)
    except TypeError as exc:
        raise LabelwiseError(f"unknown reading option: {exc}") from None


def dataset_inputs(
    data: str = "data", *, files: tuple[str, ...] = (), trees: tuple[str, ...] = ()
) -> Callable[[Mapping[str, Any]], tuple[list[Any], list[Any]]]:
    """For :func:`labelwise._run.recorded`: the inputs of a command that reads its dataset from the
    argument ``data`` with the :class:`ReadOptions` in ``read``, plus the paths given in the
    arguments ``files`` (inputs) and ``trees`` (folders of images)."""

    def inputs(arguments: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
        found, walked = as_read_options(arguments.get("read")).input_paths(arguments.get(data))
        found += [arguments[k] for k in files if isinstance(arguments.get(k), (str, os.PathLike))]
        walked += [arguments[k] for k in trees if isinstance(arguments.get(k), (str, os.PathLike))]
        return found, walked

    return inputs


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
    root = _existing_dir(root)
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
            why = _skip_folder(Path(entry.path), root, root)
            if why:
                problems.append((entry.path, why))
                continue
            class_dirs.append(entry)
        elif is_image_file(entry.name):
            problems.append((entry.path, "image outside any class folder (expected root/<class>/<image>)"))
    for entry in class_dirs:
        label = None if entry.name == UNLABELED_DIR else entry.name
        files, bad = _walk_images(Path(entry.path), root)
        problems += bad
        if not files and label is not None:
            log.warning("class folder %s holds no images; class %r is left out", entry.path, label)
        rows += [(f.relative_to(root).as_posix(), str(f), label) for f in files]
    if unlabeled is not None:
        extra_root = _existing_dir(unlabeled)
        note_images(extra_root, recursive=True)
        files, bad = _walk_images(extra_root, extra_root)
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
    root = _existing_dir(root)
    note_images(root, recursive=True)
    files, problems = _walk_images(root, root)
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
    sp = _resolve_column(frame, split_col, SPLIT_COLUMNS, None, "split", path) if split_col is not None else next(
        (c for c in SPLIT_COLUMNS if c in frame.columns), None
    )
    names = frame[fn].astype(str).str.strip()
    empty = (names == "").to_numpy()
    if empty.any():
        raise LabelwiseError(f"{path}: row {_row(int(np.flatnonzero(empty)[0]))} has an empty file name in column {fn!r}")
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
    image_dir = _existing_dir(image_dir)
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
        raise LabelwiseError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if len(raw) != n_images:
        raise LabelwiseError(f"{path}: {len(raw)} labels for {n_images} images (array {key!r})")
    labels = [_npz_label(v, names) for v in raw]
    ids = [f"{path.name}{NPZ_SEPARATOR}{i}" for i in range(n_images)]
    paths = [f"{path}{NPZ_SEPARATOR}{i}" for i in range(n_images)]
    table = pd.DataFrame({"sample_id": ids, "path": paths, "label": labels})
    if classes is None and names is not None:
        classes = names
    return build_dataset(
        table, source=f"npz:{path}", classes=_classes_arg(classes), check=check, n_jobs=n_jobs
    )


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


def _existing_dir(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise LabelwiseError(f"{path}: folder not found")
    if not path.is_dir():
        raise LabelwiseError(f"{path}: expected a folder, found a file")
    return path.resolve()


def _skip_folder(folder: Path, walk_root: Path, dataset_root: Path) -> str | None:
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


def _walk_images(folder: Path, dataset_root: Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
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
            why = _skip_folder(Path(dirpath) / d, walk_root, dataset_root)
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


def _native(root: Path, name: str) -> str:
    """A CSV's file name in this system's form: ``sub\\a.png`` means ``sub/a.png`` unless a file
    of that literal name exists."""
    if "\\" in name and not (root / name).exists():
        return name.replace("\\", "/")
    return name


def _inside_root(table: pd.DataFrame, root: Path) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Rows whose file lies below ``root``, and the others as problems."""
    base = resolved(root)
    where = [resolved(p) for p in table["path"]]
    inside = np.array([w == base or base in w.parents for w in where], dtype=bool)
    problems = [
        (path, f"outside the image root {root} (the CSV names {sid!r}); left out (allow_outside_root / "
               "--allow-outside-root keeps it)")
        for path, sid, ok in zip(table["path"], table["sample_id"], inside) if not ok
    ]
    if problems:
        log.warning("%d row(s) name a file outside the image root %s (first: %s); they are left out",
                    len(problems), root, problems[0][0])
    return table[inside].reset_index(drop=True), problems


def _drop_duplicate_ids(table: pd.DataFrame, where: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    dup = table["sample_id"].duplicated(keep="first")
    if not dup.any():
        return table, []
    first_row = {sid: i for i, sid in reversed(list(enumerate(table["sample_id"])))}
    labels = table["label"].tolist()
    problems = []
    conflicts = 0
    for i, (sid, path) in enumerate(zip(table["sample_id"], table["path"])):
        if not dup.iloc[i]:
            continue
        j = first_row[sid]
        a, b = _label_text(labels[j]), _label_text(labels[i])
        if a != b:
            conflicts += 1
            problems.append((path, f"listed again in {where} with label {b!r} (row {_row(i)}; row {_row(j)} says "
                                   f"{a!r}); the first is kept, the later entry ignored"))
        else:
            problems.append((path, f"listed again in {where} (row {_row(i)} repeats row {_row(j)}); later entry ignored"))
    if conflicts:
        log.warning("%s: %d file(s) are listed twice with different labels (first: %s); the first label is kept",
                    where, conflicts, problems[[k for k, (_, r) in enumerate(problems) if "with label" in r][0]][0])
    return table[~dup].reset_index(drop=True), problems


def _label_text(value: object) -> str:
    text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip()
    return text


def _read_text(path: Path, *, size: int | None = None) -> str:
    """A text file as UTF-8 (with or without BOM) or UTF-16 with a BOM; one line otherwise."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read() if size is None else fh.read(size)
    except OSError as exc:
        raise LabelwiseError(f"{path}: cannot read ({exc.strerror or exc})") from None
    encoding = _encoding(raw)
    try:
        return raw.decode(encoding) if size is None else codecs.getincrementaldecoder(encoding)().decode(raw)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LabelwiseError(f"{path}: not UTF-8 text (line {line} holds byte {raw[exc.start]:#04x}); "
                             "save it as UTF-8 (or UTF-16 with a byte-order mark)") from None


def _encoding(raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def _read_delimited(path: Path, nrows: int | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise LabelwiseError(f"{path}: file not found")
    note_input(path)
    text = _read_text(path)
    head = text[:8192]
    if not head.strip():
        raise LabelwiseError(f"{path}: file is empty; expected a header row and one row per image")
    if path.suffix.lower() in {".tsv", ".tab"}:
        sep = "\t"
    else:
        try:
            sep = csv.Sniffer().sniff(head.splitlines()[0], delimiters=",\t;|").delimiter
        except csv.Error:
            sep = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, nrows=nrows, skipinitialspace=True,
            index_col=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise LabelwiseError(f"{path}: cannot parse as a delimited table ({str(exc).strip().splitlines()[-1]})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _resolve_column(
    frame: pd.DataFrame, spec: str | int | None, candidates: Sequence[str], default_pos: int | None, what: str, where: Path
) -> str:
    columns = list(frame.columns)
    if spec is None:
        lowered = {c.lower(): c for c in columns}
        for name in candidates:
            if name in lowered:
                return lowered[name]
        if default_pos is not None and default_pos < len(columns):
            option = "--filename-col" if what == "file name" else "--label-col"
            log.warning("%s: no column named %s; taking column %d (%r) as the %s (set %s to choose)",
                        where, "/".join(candidates[:4]) + "/…", default_pos, columns[default_pos], what, option)
            return columns[default_pos]
        raise LabelwiseError(f"{where}: no {what} column found; columns are: {', '.join(columns)}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit() and spec not in columns):
        pos = int(spec)
        if not 0 <= pos < len(columns):
            raise LabelwiseError(
                f"{where}: {what} column position {pos} is out of range; the file has {len(columns)} columns "
                f"({', '.join(columns)})"
            )
        return columns[pos]
    if spec not in columns:
        raise LabelwiseError(f"{where}: no column {spec!r} for the {what}; columns are: {', '.join(columns)}")
    return spec


def _parse_split(value: object, column: str, where: Path, i: int) -> str | None:
    text = str(value).strip()
    if column.lower() == "is_valid":
        low = text.lower()
        if low in {"true", "1", "yes", "y", "t"}:
            return "valid"
        if low in {"false", "0", "no", "n", "f", ""}:
            return "train"
        raise LabelwiseError(f"{where}: row {_row(i)}: is_valid must be True/False/1/0, got {text!r}")
    return normalise_split(text, f"{where}: row {_row(i)}")


def _row(i: int) -> int:
    """File line number of data row ``i`` (1-based, after the header)."""
    return int(i) + 2


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
