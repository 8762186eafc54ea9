"""Files for labeling tools, shared by every command that sends images to people: Label Studio
import tasks and labeling configs, and Toloka task TSVs.

Label Studio: each task carries the image as a local-files URL (relative to the folder that
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` points to) or under ``url_prefix``, our
``sample_id`` in ``data`` (merging never depends on Label Studio's ids) and, when given, a
model prediction with ``score`` and ``model_version`` (the Data Manager sorts on it).
Toloka: ``INPUT:image`` (a URL), ``INPUT:sample_id``, ``GOLDEN:result`` on control and
training rows, ``HINT:text`` on training rows; a field holding a quote, tab or line break
is quoted with inner quotes doubled.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from .._io import atomic_open
from ..errors import LabelwiseError


def image_url(path: str | os.PathLike[str], base: str, url_prefix: str | None = None) -> str:
    """The URL a labeling tool shows ``path`` by: ``url_prefix`` + its path relative to ``base``,
    or Label Studio's ``/data/local-files/?d=<relative path>``.

    >>> image_url("/data/imgs/a b.jpg", "/data"), image_url("/data/imgs/1.jpg", "/data", "https://h/x/")
    ('/data/local-files/?d=imgs/a%20b.jpg', 'https://h/x/imgs/1.jpg')
    """
    rel = Path(os.path.relpath(os.path.abspath(path), base)).as_posix()
    if url_prefix:
        return f"{url_prefix.rstrip('/')}/{quote(rel)}"
    return f"/data/local-files/?d={quote(rel)}"


def common_base(paths: Sequence[str], root: str | os.PathLike[str] | None = None) -> str:
    """``root`` (absolute), or the deepest folder holding all ``paths``.

    A labeling tool serves every file below this folder, so a filesystem root (``/``, ``C:\\``)
    or the home folder is refused with a one-line error rather than suggested.
    """
    if root is not None:
        base = os.path.abspath(root)
    elif len(paths):
        base = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    else:
        return ""
    if Path(base).parent == Path(base) or Path(base) == Path.home():
        raise LabelwiseError(
            f"the images lie in folders whose only common folder is {base}: a labeling tool would serve everything "
            "below it; keep the images below one dataset folder, or pass --root (a folder holding them all)"
        )
    outside = [p for p in paths if not _inside(os.path.abspath(p), base)]
    if outside:
        raise LabelwiseError(f"{outside[0]}: not below --root {base}; the labeling tool could not show it")
    return base


def _inside(path: str, base: str) -> bool:
    return os.path.commonpath([path, base]) == base


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return str(value)


def label_studio_tasks(
    table: pd.DataFrame,
    *,
    root: str | os.PathLike[str] | None = None,
    url_prefix: str | None = None,
    prediction_col: str | None = None,
    score_col: str | None = None,
    data_cols: Sequence[str] = (),
    model_version: str = "labelwise",
    from_name: str = "choice",
    to_name: str = "image",
) -> list[dict[str, Any]]:
    """Label Studio import tasks, one per row of ``table`` (columns ``sample_id, path`` and
    those named here).

    ``data`` holds the image URL (see :func:`image_url`; relative to ``root``, default the
    images' common folder), ``sample_id`` and ``data_cols``; a row with a value in
    ``prediction_col`` gets it as a prediction with ``score`` from ``score_col``.

    >>> t = pd.DataFrame({"sample_id": ["a.jpg"], "path": ["/im/a.jpg"], "pred": ["dog"], "p": [0.8]})
    >>> label_studio_tasks(t, prediction_col="pred", score_col="p")[0]["predictions"][0]["score"]
    0.8
    """
    paths = [str(p) for p in table["path"]]
    base = common_base(paths, root)
    tasks: list[dict[str, Any]] = []
    for i, (row, path) in enumerate(zip(table.to_dict("records"), paths)):
        data = {"image": image_url(path, base, url_prefix), "sample_id": str(row["sample_id"])}
        data.update({c: _plain(row[c]) for c in data_cols})
        task: dict[str, Any] = {"data": data}
        pred = row.get(prediction_col) if prediction_col else None
        if pred is not None and not (isinstance(pred, float) and math.isnan(pred)) and str(pred) != "":
            prediction: dict[str, Any] = {"model_version": model_version}
            if score_col is not None:
                prediction["score"] = float(row[score_col])
            prediction["result"] = [
                {
                    "id": f"r{i}",
                    "from_name": from_name,
                    "to_name": to_name,
                    "type": "choices",
                    "value": {"choices": [str(pred)]},
                }
            ]
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def labeling_config(classes: Sequence[str], *, from_name: str = "choice", to_name: str = "image") -> str:
    """A Label Studio labeling config: single-choice Choices over the image.

    >>> print(labeling_config(["cat", "dog"]))  # doctest: +NORMALIZE_WHITESPACE
    <View>
      <Image name="image" value="$image"/>
      <Choices name="choice" toName="image" choice="single" showInline="true">
        <Choice value="cat"/>
        <Choice value="dog"/>
      </Choices>
    </View>
    """
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return (
        f'<View>\n  <Image name={quoteattr(to_name)} value="${to_name}"/>\n'
        f'  <Choices name={quoteattr(from_name)} toName={quoteattr(to_name)} choice="single" showInline="true">\n'
        f"{choices}\n  </Choices>\n</View>\n"
    )


def write_toloka_tsv(path: str | os.PathLike[str], rows: pd.DataFrame) -> Path:
    """Write a Toloka task file (header ``INPUT:…``, ``GOLDEN:…``, ``HINT:text``) atomically;
    fields with a quote, tab or line break are quoted, inner quotes doubled."""
    with atomic_open(path, newline="") as fh:
        writer = csv.writer(
            fh, delimiter="\t", quotechar='"', doublequote=True, quoting=csv.QUOTE_MINIMAL, lineterminator="\n"
        )
        writer.writerow(list(rows.columns))
        writer.writerows(rows.fillna("").astype(str).itertuples(index=False, name=None))
    return Path(path)
