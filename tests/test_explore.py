"""``explore`` on a small messy ImageFolder whose every count is known."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import labelwise.data.explore as explore_mod
import labelwise.data.explore_report as report_mod
from labelwise import LabelwiseError, load_dataset
from labelwise.data import find_duplicates
from labelwise.data.explore import ExploreSummary, explore
from tests.conftest import write_png

CLASS_COUNTS = {"bird": 4, "cat": 12, "dog": 3}  # usable labeled images per class


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """bird 4 (2 RGB 16x12 JPEGs, a same-class duplicate), cat 12, dog 3 (one duplicates a cat
    image: conflicting labels), 2 unlabeled (one duplicates a cat image), 4 problem inputs
    and a hidden ``.git`` folder."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("messy") / "images"
    for i in range(11):
        write_png(root / "cat" / f"c{i}.png", _noise(rng, (8, 8)))
    write_png(root / "cat" / "dupe.png", _noise(rng, (8, 8)))
    (root / "dog").mkdir()
    (root / "dog" / "dupe.png").write_bytes((root / "cat" / "dupe.png").read_bytes())
    for i in range(2):
        write_png(root / "dog" / f"d{i}.png", _noise(rng, (8, 8)))
    (root / "bird").mkdir()
    for i in range(2):
        Image.fromarray(_noise(rng, (12, 16, 3))).save(root / "bird" / f"b{i}.jpg", quality=90)
    write_png(root / "bird" / "b2.png", _noise(rng, (8, 8)))
    (root / "bird" / "b2_copy.png").write_bytes((root / "bird" / "b2.png").read_bytes())
    write_png(root / "_unlabeled" / "u0.png", _noise(rng, (8, 8)))
    (root / "_unlabeled" / "u1.png").write_bytes((root / "cat" / "c0.png").read_bytes())

    (root / "cat" / "empty.jpg").write_bytes(b"")
    full = root.parent / "full.jpg"
    Image.fromarray(_noise(rng, (64, 64, 3))).save(full, quality=95)
    (root / "cat" / "cut.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    (root / "dog" / "fake.png").write_text("this is not a PNG")
    (root / "dog" / "notes.txt").write_text("labelled by Ann")
    write_png(root / ".git" / "objects" / "x.png", _noise(rng, (8, 8)))
    return root


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def explored(messy, tmp_path_factory) -> tuple[ExploreSummary, Path, list[str]]:
    out = tmp_path_factory.mktemp("explore")
    logger = logging.getLogger("labelwise")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        summary = explore(messy, out, per_class=3, random_state=0)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return summary, out, handler.messages


def test_counts_and_imbalance_warning(explored):
    summary, out, messages = explored
    assert (summary.n_images, summary.n_labeled, summary.n_unlabeled) == (21, 19, 2)
    assert summary.class_counts.to_dict() == CLASS_COUNTS
    assert summary.class_counts.index.tolist() == ["bird", "cat", "dog"]  # class order
    assert summary.imbalance_ratio == pytest.approx(12 / 3)
    assert any("class imbalance 4.0:1" in m and "'cat'" in m and "'dog'" in m for m in messages)
    for report in ("report.md", "report.html"):
        assert "class imbalance 4.0:1" in (out / report).read_text()
    counts = pd.read_csv(out / "class_counts.csv")
    assert counts["class"].tolist() == ["bird", "cat", "dog"]
    assert counts["images"].tolist() == [4, 12, 3]
    assert counts["problems"].tolist() == [0, 2, 1]  # notes.txt never was a table row
    assert counts["share"].sum() == pytest.approx(1.0, abs=1e-3)


def test_no_imbalance_warning_at_three_to_one(tmp_path, caplog):
    rng = np.random.default_rng(1)
    for name, n in {"a": 3, "b": 1}.items():
        for i in range(n):
            write_png(tmp_path / "img" / name / f"{i}.png", _noise(rng, (8, 8)))
    explore(tmp_path / "img", tmp_path / "out")
    assert (tmp_path / "out" / "report.html").exists()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        summary = explore(tmp_path / "img", tmp_path / "out", html=False, overwrite=True)
    assert summary.imbalance_ratio == 3.0
    assert summary.warnings == [] and not caplog.records
    assert "imbalance 3.0" not in (tmp_path / "out" / "report.md").read_text()
    assert not (tmp_path / "out" / "report.html").exists()  # the earlier run's results went as a whole


def test_every_problem_reason_in_problems_csv(explored):
    summary, out, _ = explored
    problems = pd.read_csv(out / "problems.csv")
    assert problems.columns.tolist() == ["path", "reason"]
    reasons = dict(zip(problems["path"].map(lambda p: Path(p).name), problems["reason"]))
    assert reasons.keys() == {"empty.jpg", "cut.jpg", "fake.png", "notes.txt"}
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert reasons["cut.jpg"] == "truncated image"
    assert "cannot identify image file" in reasons["fake.png"]
    assert "unsupported extension '.txt'" in reasons["notes.txt"]
    assert summary.n_problems == 4
    assert any("4 input(s) cannot be used" in w for w in summary.warnings)
    report = (out / "report.md").read_text()
    assert "truncated image" in report and "empty file (0 bytes)" in report


def test_streamed_scan_matches_the_checked_table(messy, explored):
    """Equivalence: explore's one streaming pass finds what load_dataset(check=True) finds."""
    _, out, _ = explored
    checked = load_dataset(messy)
    images = pd.read_csv(out / "images.csv", dtype={"content_hash": str})
    usable = images[images["problem"].isna()].set_index("sample_id")
    table = checked.table.set_index("sample_id")
    assert sorted(usable.index) == sorted(table.index)
    for col in ("content_hash", "width", "height", "n_bytes", "mode", "format"):
        assert usable[col].reindex(table.index).tolist() == table[col].tolist(), col
    assert sorted(map(str, checked.problems["reason"])) == sorted(pd.read_csv(out / "problems.csv")["reason"])


def test_duplicates_and_conflicting_labels(messy, explored):
    summary, out, messages = explored
    assert (summary.n_duplicate_groups, summary.n_conflicting_groups) == (3, 1)
    dups = pd.read_csv(out / "duplicates.csv")
    groups = {frozenset(g["sample_id"]) for _, g in dups.groupby("group")}
    assert groups == {
        frozenset({"cat/dupe.png", "dog/dupe.png"}),
        frozenset({"bird/b2.png", "bird/b2_copy.png"}),
        frozenset({"cat/c0.png", "_unlabeled/u1.png"}),  # labeled + unlabeled: no conflict
    }
    assert set(dups.loc[dups["conflicting_labels"], "sample_id"]) == {"cat/dupe.png", "dog/dupe.png"}
    oracle = find_duplicates(load_dataset(messy).table)
    assert dups[["group", "sample_id", "conflicting_labels"]].equals(
        oracle[["group", "sample_id", "conflicting_labels"]].astype({"conflicting_labels": bool})
    )
    assert any("1 group(s) of identical images carry different labels" in m for m in messages)


def test_image_statistics(explored):
    summary, out, _ = explored
    assert summary.sizes == {
        "width_min": 8,
        "width_median": 8,
        "width_max": 16,
        "height_min": 8,
        "height_median": 8,
        "height_max": 12,
    }
    assert summary.common_sizes == [(8, 8, 19), (16, 12, 2)]
    assert summary.modes == {"L": 19, "RGB": 2}
    assert summary.formats == {"PNG": 19, "JPEG": 2}
    images = pd.read_csv(out / "images.csv")
    assert summary.total_bytes == images.loc[images["problem"].isna(), "n_bytes"].sum()
    stats = pd.read_csv(out / "image_stats.csv").set_index("quantity")
    assert stats.loc["width", ["min", "max"]].tolist() == [8, 16]
    sizes = pd.read_csv(out / "image_sizes.csv")
    assert sizes[["width", "height", "count"]].values.tolist() == [[8, 8, 19], [16, 12, 2]]


def test_all_outputs_written_and_loadable(explored):
    summary, out, _ = explored
    expected = {
        "report.md",
        "report.html",
        "class_balance.png",
        "class_counts.csv",
        "problems.csv",
        "duplicates.csv",
        "image_stats.csv",
        "image_sizes.csv",
        "images.csv",
    }
    assert {p.name for p in summary.paths.values()} == expected
    assert all(p.is_file() and p.parent == out for p in summary.paths.values())
    strips = sorted(p.name for p in (out / "samples").iterdir())
    assert strips == ["_unlabeled.png", "bird.png", "cat.png", "dog.png"]
    for png in [out / "class_balance.png", *(out / "samples").glob("*.png")]:
        with Image.open(png) as im:
            im.load()
            assert im.format == "PNG" and im.width > 50
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 1 + len(strips) and all((out / link).is_file() for link in links)
    page = (out / "report.html").read_text()
    sources = re.findall(r"<img src='([^']*)'", page)
    assert len(sources) == len(links) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not list(out.glob(".*.tmp*"))  # atomic writes left no temporaries
    json.dumps(summary.as_dict(), allow_nan=False)


def test_hidden_folder_is_skipped_with_a_warning(explored):
    _, out, messages = explored
    assert any("skipping hidden folder" in m and ".git" in m for m in messages)
    assert not pd.read_csv(out / "images.csv")["path"].str.contains(r"\.git").any()


def test_empty_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "nothing_here").mkdir()
    with pytest.raises(LabelwiseError, match=r"nothing_here: no images found"):
        explore(tmp_path / "nothing_here", tmp_path / "out")


def test_streams_and_decodes_only_the_sample_images(messy, tmp_path, monkeypatch):
    """No ImageInfo outlives its loop step, and the strips decode only the images they show."""
    real_iter = explore_mod.iter_image_info
    refs: list[weakref.ref] = []
    max_alive = 0

    def tracked_iter(paths, **kwargs):
        nonlocal max_alive
        for info in real_iter(paths, **kwargs):
            refs.append(weakref.ref(info))
            yield info
            # the previous infos must be gone once explore moved on
            max_alive = max(max_alive, sum(r() is not None for r in refs[:-1]))

    decoded: list[str] = []
    real_open = report_mod.open_image

    def counted_open(path, **kwargs):
        decoded.append(path)
        return real_open(path, **kwargs)

    monkeypatch.setattr(explore_mod, "iter_image_info", tracked_iter)
    monkeypatch.setattr(report_mod, "open_image", counted_open)
    per_class = 2
    summary = explore(messy, tmp_path / "out", per_class=per_class, n_jobs=1, html=False)
    assert len(refs) == 24  # each table row inspected once: 21 usable, 3 broken (notes.txt is no row)
    assert max_alive == 0
    shown = sum(min(per_class, n) for n in [*CLASS_COUNTS.values(), summary.n_unlabeled])
    assert len(decoded) == shown == 8 <= per_class * (len(CLASS_COUNTS) + 1)
    images = pd.read_csv(tmp_path / "out" / "images.csv")
    usable = set(images.loc[images["problem"].isna(), "path"])
    assert set(decoded) <= usable


def test_seeded_samples_and_stale_strips_removed(messy, tmp_path, monkeypatch):
    decoded: list[str] = []
    real_open = report_mod.open_image
    monkeypatch.setattr(report_mod, "open_image", lambda p, **kw: decoded.append(p) or real_open(p, **kw))

    def picks(seed: int) -> list[str]:
        decoded.clear()
        explore(messy, tmp_path / "out", per_class=3, random_state=seed, html=False, overwrite=True)
        return list(decoded)

    first = picks(0)
    (tmp_path / "out" / "samples" / "old_class.png").write_bytes(b"stale")
    assert picks(0) == first
    assert picks(1) != first
    assert not (tmp_path / "out" / "samples" / "old_class.png").exists()


def test_checked_dataset_is_not_inspected_again(messy, tmp_path, monkeypatch):
    ds = load_dataset(messy)

    def fail(*args, **kwargs):
        raise AssertionError("a checked Dataset must reuse its columns")

    monkeypatch.setattr(explore_mod, "iter_image_info", fail)
    summary = explore(ds, tmp_path / "out", per_class=1, html=False)
    assert summary.class_counts.to_dict() == CLASS_COUNTS
    assert (summary.n_problems, summary.n_duplicate_groups, summary.n_conflicting_groups) == (4, 3, 1)
    with pytest.raises(TypeError, match="images"):
        explore(ds, tmp_path / "out", images="x")


def test_class_names_become_safe_distinct_file_names():
    taken: set[str] = set()
    names = [report_mod.safe_name(n, taken) for n in ["a/b", "a b", "A_B", "../..", "Ünï:co*de?", ""]]
    assert names == ["a_b", "a_b_2", "A_B_3", "class", "Ünï_co_de", "class_2"]


def test_cli_prints_the_summary(messy, tmp_path):
    from typer.testing import CliRunner

    from labelwise.cli.app import app

    result = CliRunner().invoke(app, ["explore", str(messy), "--out", str(tmp_path / "out"), "--no-html"])
    assert result.exit_code == 0, result.output
    assert "imbalance ratio 4.0:1" in result.output and "duplicate groups 3 (1 with" in result.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["result"]["class_counts"] == CLASS_COUNTS


def test_explore_does_not_import_torch(messy, tmp_path):
    code = (
        "import sys, labelwise; labelwise.explore(sys.argv[1], sys.argv[2], per_class=1); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'torchvision'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(messy), str(tmp_path / "out")], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
