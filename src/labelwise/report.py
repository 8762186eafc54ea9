"""Reports that every command can write: Markdown, optionally HTML, plus plot helpers.

A :class:`Report` collects blocks (headings, paragraphs, tables, images) and renders
them twice: ``report.md`` links images by relative path, ``report.html`` embeds them
as base64 so that it is one self-contained file. Plots are drawn on a bare Agg
canvas, which leaves the user's pyplot backend alone.

Examples
--------
>>> import tempfile, pandas as pd
>>> from pathlib import Path
>>> from labelwise.report import Report, bar_chart
>>> out = Path(tempfile.mkdtemp())
>>> counts = pd.Series({"cat": 30, "dog": 5})
>>> rep = Report("Toy")
>>> rep.heading("Classes")
>>> rep.table(counts.rename_axis("class").reset_index(name="images"))
>>> rep.image(bar_chart(counts, out / "counts.png", xlabel="images"), "images per class")
>>> [p.name for p in rep.write(out / "report.md")]
['report.md', 'report.html']
"""

from __future__ import annotations

import base64
import html as html_lib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from ._io import atomic_path, save_figure, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image

BlockKind = Literal["heading", "paragraph", "bullets", "table", "image", "warning"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;image-rendering:auto}figure{margin:.5em 0 1.2em}figcaption{color:#555;font-size:.9em}
.warning{background:#fff4e5;border-left:4px solid #f0a030;padding:.4em .8em;margin:.5em 0}
code{background:#f3f3f3;padding:0 .2em}
"""


@dataclass
class Report:
    """A document built block by block, written as Markdown and self-contained HTML."""

    title: str
    blocks: list[tuple[BlockKind, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (max(1, min(level, 6)), text)))

    def paragraph(self, text: str) -> None:
        """Text; Markdown's inline bold (``**x**``) and code (backticks) are rendered in HTML too."""
        self.blocks.append(("paragraph", text))

    def warning(self, text: str) -> None:
        self.blocks.append(("warning", text))

    def bullets(self, items: Iterable[str]) -> None:
        items = list(items)
        if items:
            self.blocks.append(("bullets", items))

    def table(self, df: pd.DataFrame, *, max_rows: int | None = None, note_file: str | None = None) -> None:
        """A table of ``df`` (its index is not shown); beyond ``max_rows`` rows a note says how many were left out."""
        shown = df if max_rows is None else df.head(max_rows)
        self.blocks.append(("table", shown.copy()))
        if len(shown) < len(df):
            where = f"; all rows are in `{note_file}`" if note_file else ""
            self.paragraph(f"({len(df) - len(shown)} more rows not shown{where})")

    def image(self, path: str | os.PathLike[str], alt: str) -> None:
        self.blocks.append(("image", (Path(path).resolve(), alt)))

    def to_markdown(self, folder: str | os.PathLike[str]) -> str:
        """The report as Markdown; image links are relative to ``folder``."""
        parts = [f"# {self.title}"]
        for kind, value in self.blocks:
            if kind == "heading":
                parts.append(f"{'#' * value[0]} {value[1]}")
            elif kind == "paragraph":
                parts.append(value)
            elif kind == "warning":
                parts.append(f"> **Warning:** {value}")
            elif kind == "bullets":
                parts.append("\n".join(f"- {item}" for item in value))
            elif kind == "table":
                parts.append(_markdown_table(value))
            elif kind == "image":
                path, alt = value
                parts.append(f"![{alt}]({Path(os.path.relpath(path, folder)).as_posix()})")
        return "\n\n".join(parts) + "\n"

    def to_html(self) -> str:
        """The report as one HTML page with images embedded."""
        title = html_lib.escape(self.title)
        parts = [
            f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{title}</h1>",
        ]
        for kind, value in self.blocks:
            if kind == "heading":
                parts.append(f"<h{value[0]}>{html_lib.escape(value[1])}</h{value[0]}>")
            elif kind == "paragraph":
                parts.append(f"<p>{_inline_html(value)}</p>")
            elif kind == "warning":
                parts.append(f"<p class='warning'><strong>Warning:</strong> {_inline_html(value)}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in value) + "</ul>")
            elif kind == "table":
                parts.append(_html_table(value))
            elif kind == "image":
                path, alt = value
                data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
                mime = (
                    "image/jpeg"
                    if path.suffix.lower() in {".jpg", ".jpeg"}
                    else f"image/{path.suffix.lstrip('.').lower()}"
                )
                parts.append(
                    f"<figure><img src='data:{mime};base64,{data}' alt='{html_lib.escape(alt, quote=True)}'>"
                    f"<figcaption>{html_lib.escape(alt)}</figcaption></figure>"
                )
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def write(self, path_md: str | os.PathLike[str], *, html: bool = True) -> list[Path]:
        """Write ``path_md`` and, with ``html``, the same report beside it as ``.html``."""
        path_md = Path(path_md)
        written = [write_text(path_md, self.to_markdown(path_md.parent))]
        if html:
            written.append(write_text(path_md.with_suffix(".html"), self.to_html()))
        return written


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _markdown_table(df: pd.DataFrame) -> str:
    def row(cells: Sequence[object]) -> str:
        return "| " + " | ".join(_cell(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    lines = [row(list(df.columns)), "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += [row(r) for r in df.itertuples(index=False, name=None)]
    return "\n".join(lines)


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html_lib.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if _is_number(v) else ''}>{html_lib.escape(_cell(v))}</td>" for v in r)
        + "</tr>"
        for r in df.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline_html(text: str) -> str:
    out = html_lib.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


# ---------------------------------------------------------------- plots


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure on its own Agg canvas (no pyplot state, safe in threads and notebooks)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def bar_chart(
    values: pd.Series,
    path: str | os.PathLike[str],
    *,
    extra: pd.Series | None = None,
    title: str = "",
    xlabel: str = "",
    dpi: int = 100,
) -> Path:
    """Horizontal bars of ``values`` (one per index entry, top to bottom), saved as PNG.

    ``extra`` entries are drawn below a gap in grey, for quantities that are not one
    of the categories (e.g. unlabeled images). Height grows with the number of bars.
    """
    extra = extra if extra is not None else pd.Series(dtype="int64")
    labels = [str(i) for i in values.index] + [str(i) for i in extra.index]
    n = len(labels)
    fig = new_figure(7.5, min(1.2 + 0.28 * max(n, 1) + 0.3 * bool(len(extra)), 60.0))
    ax = fig.add_subplot()
    pos = list(range(len(values))) + [len(values) + 0.6 + i for i in range(len(extra))]
    heights = [float(v) for v in values] + [float(v) for v in extra]
    colors = ["#4c72b0"] * len(values) + ["#999999"] * len(extra)
    bars = ax.barh(pos, heights, color=colors)
    ax.bar_label(
        bars, labels=[f"{int(h):,}" if float(h).is_integer() else f"{h:.3g}" for h in heights], padding=3, fontsize=8
    )
    ax.set_yticks(pos, labels, fontsize=8 if n > 30 else 10)
    ax.invert_yaxis()
    ax.margins(x=0.12)
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)


def save_image(image: Image.Image, path: str | os.PathLike[str]) -> Path:
    """Save a PIL image atomically, format chosen by the suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=None if path.suffix else "PNG")
    return path


def thumbnail_strip(images: Sequence[Image.Image], *, size: int = 96, columns: int = 8, pad: int = 4) -> Image.Image:
    """Paste ``images`` (RGB) as ``size``-pixel thumbnails onto a white grid of ``columns`` per row."""
    from PIL import Image as PILImage

    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    cell = size + pad
    canvas = PILImage.new("RGB", (columns * cell + pad, rows * cell + pad), "white")
    for k, image in enumerate(images):
        thumb = image.copy()
        thumb.thumbnail((size, size))
        scale = size // max(thumb.width, thumb.height)
        if scale >= 2:  # tiny images (8x8 digits) are unreadable at native size: enlarge, keeping pixels crisp
            thumb = thumb.resize((thumb.width * scale, thumb.height * scale), PILImage.Resampling.NEAREST)
        x = pad + (k % columns) * cell + (size - thumb.width) // 2
        y = pad + (k // columns) * cell + (size - thumb.height) // 2
        canvas.paste(thumb, (x, y))
    return canvas
