"""How a command reads its dataset (:class:`ReadOptions`), and what it therefore takes in."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LabelwiseError

if TYPE_CHECKING:
    from .table import Dataset

ClassesArg = Any


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
        from .readers import load_dataset

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
