from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from labelwise import LabelwiseError, load_dataset
from labelwise.data import (
    natural_sorted,
    read_csv_labels,
    read_npz,
    read_ordered_labels,
    read_table,
)
from tests.conftest import write_png


def test_image_folder_classes_labels_and_unlabeled(image_folder):
    ds = load_dataset(image_folder)
    assert ds.classes == ["0", "1", "2"]
    t = ds.table
    assert len(t) == 14
    assert t["label"].isna().sum() == 2
    assert set(t.loc[t["label"].isna(), "split"]) == {"unlabeled"}
    assert set(t.loc[t["label"].notna(), "split"]) == {"train"}
    assert set(t.loc[t["label"].notna(), "label_source"]) == {"given"}
    assert t["sample_id"].is_unique
    # sample_id is the path relative to the root: stable across machines
    assert all(sid.split("/")[0] in {"0", "1", "2", "_unlabeled"} for sid in t["sample_id"])
    assert ds.problems.empty


def test_image_folder_skips_hidden_folders_with_warning(image_folder, digits, caplog):
    write_png(image_folder / ".ipynb_checkpoints" / "x.png", digits[0][0])
    write_png(image_folder / "1" / ".git" / "y.png", digits[0][0])
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        ds = load_dataset(image_folder)
    assert ".ipynb_checkpoints" not in ds.classes
    assert not ds.table["path"].str.contains(r"\.git|ipynb").any()
    assert sum("hidden folder" in r.message for r in caplog.records) == 2


def test_separate_unlabeled_folder(image_folder, digits, tmp_path):
    extra = tmp_path / "pool"
    write_png(extra / "a" / "p.png", digits[0][5])
    ds = load_dataset(image_folder, unlabeled=extra)
    row = ds.table.set_index("sample_id").loc["_unlabeled/a/p.png"]
    assert pd.isna(row["label"]) and row["split"] == "unlabeled"


def test_bad_files_become_problems_not_errors(image_folder, tmp_path):
    (image_folder / "0" / "empty.png").write_bytes(b"")
    (image_folder / "0" / "text.png").write_text("not an image")
    (image_folder / "1" / "notes.txt").write_text("hello")
    good = (image_folder / "2").glob("*.png").__next__().read_bytes()
    # a truncated JPEG: re-encode then cut in half
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / "full.jpg", quality=90)
    (image_folder / "2" / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    ds = load_dataset(image_folder)
    reasons = dict(zip(ds.problems["path"].map(lambda p: p.split("/")[-1]), ds.problems["reason"]))
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert "cannot identify" in reasons["text.png"]
    assert "unsupported extension '.txt'" in reasons["notes.txt"]
    assert reasons["cut.jpg"] == "truncated image"
    assert not ds.table["path"].str.contains("empty|text|notes|cut").any()
    assert len(ds.table) == 14 and good  # the good ones are all still there


def test_big_endian_16_bit_image_is_read_not_reported(image_folder):
    from PIL import Image

    from labelwise.data import open_image

    Image.new("I;16B", (8, 8), 32896).save(image_folder / "0" / "deep.tif")
    ds = load_dataset(image_folder)
    assert ds.problems.empty
    path = ds.table.loc[ds.table["sample_id"] == "0/deep.tif", "path"].iloc[0]
    assert open_image(path, mode="L").getextrema() == (128, 128)  # 32896 / 257, not clipped to 255


def test_empty_or_missing_folder_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelwiseError, match=r"empty: no images found"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(LabelwiseError, match=r"nowhere: no such file or folder"):
        load_dataset(tmp_path / "nowhere")


def _csv_fixture(image_folder, text):
    csv = image_folder / "labels.csv"
    csv.write_text(text)
    return csv


def test_csv_by_name_position_blank_labels_and_is_valid(image_folder):
    files = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.glob("*/*.png"))
    lines = ["fname,label,is_valid"]
    for i, f in enumerate(files):
        label = "" if i == 0 else " cat " if i % 2 else "dog"
        lines.append(f"{f},{label},{'True' if i % 5 == 0 else 'False'}")
    csv = _csv_fixture(image_folder, "\n".join(lines) + "\n")
    ds = read_csv_labels(csv)
    assert ds.classes == ["cat", "dog"]  # labels are stripped
    t = ds.table.set_index("sample_id")
    assert pd.isna(t.loc[files[0], "label"]) and t.loc[files[0], "split"] == "unlabeled"
    assert t.loc[files[5], "split"] == "valid" and t.loc[files[1], "split"] == "train"
    by_position = read_csv_labels(csv, filename_col=0, label_col="1")
    assert by_position.table["label"].tolist() == ds.table["label"].tolist()


def test_csv_suffix_and_image_root(tmp_path, digits):
    write_png(tmp_path / "imgs" / "a1.png", digits[0][0])
    write_png(tmp_path / "imgs" / "b2.png", digits[0][1])
    csv = tmp_path / "train.tsv"
    csv.write_text("image_id\tclass\na1\tx\nb2\ty\n")
    ds = load_dataset(csv, images=tmp_path / "imgs", suffix=".png")
    assert ds.table["sample_id"].tolist() == ["a1.png", "b2.png"]
    assert ds.table["label"].tolist() == ["x", "y"]


def test_csv_wrong_column_and_missing_file(image_folder):
    csv = _csv_fixture(image_folder, "fname,label\n0/nope.png,a\n")
    with pytest.raises(LabelwiseError, match=r"labels.csv: no column 'lable' for the label; columns are: fname, label"):
        read_csv_labels(csv, label_col="lable")
    ds = read_csv_labels(csv)
    assert ds.problems["reason"].tolist() == ["missing file"]
    assert ds.table.empty


def test_csv_bad_is_valid_names_the_row(image_folder):
    csv = _csv_fixture(image_folder, "fname,label,is_valid\n0/x.png,a,maybe\n")
    with pytest.raises(LabelwiseError, match=r"row 2: is_valid must be True/False/1/0, got 'maybe'"):
        read_csv_labels(csv, check=False)


def test_csv_repeated_file_is_a_problem(image_folder):
    f = next(image_folder.glob("0/*.png")).relative_to(image_folder).as_posix()
    csv = _csv_fixture(image_folder, f"fname,label\n{f},a\n{f},b\n")
    ds = read_csv_labels(csv)
    assert ds.table["label"].tolist() == ["a"]
    assert "with label 'b' (row 3; row 2 says 'a'); the first is kept" in ds.problems["reason"].iloc[0]


def test_ordered_label_file_uses_natural_order(tmp_path, digits):
    images, target = digits
    folder = tmp_path / "train"
    for i in range(1, 13):  # 1.png .. 12.png, unpadded: 10, 11, 12 must come last
        write_png(folder / f"{i}.png", images[i])
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{target[i]}\n" for i in range(1, 13)))
    ds = read_ordered_labels(labels, folder)
    assert ds.table["sample_id"].tolist() == [f"{i}.png" for i in range(1, 13)]
    assert ds.table["label"].tolist() == [str(target[i]) for i in range(1, 13)]
    # the path dispatcher reaches the same reader
    assert load_dataset(labels, images=folder).table["label"].tolist() == ds.table["label"].tolist()


def test_ordered_label_file_count_mismatch(tmp_path, digits):
    for i in range(1, 4):
        write_png(tmp_path / "t" / f"{i:06d}.png", digits[0][i])
    labels = tmp_path / "labels.txt"
    labels.write_text("1\n0\n")
    with pytest.raises(
        LabelwiseError, match=r"2 label lines but .* holds 3 images \(natural order 000001.png ... 000003.png\)"
    ):
        read_ordered_labels(labels, tmp_path / "t")


def test_natural_sort():
    assert natural_sorted(["img10.jpg", "img2.jpg", "img1.jpg", "Img3.jpg"]) == [
        "img1.jpg",
        "img2.jpg",
        "Img3.jpg",
        "img10.jpg",
    ]


def test_npz_arrays_with_class_names_and_missing(tmp_path, digits):
    f = tmp_path / "d.npz"
    np.savez(f, images=digits[0][:6], labels=np.array([0, 1, 1, -1, 0, 1]), classes=np.array(["zero", "one"]))
    ds = read_npz(f)
    assert ds.classes == ["zero", "one"]
    assert ds.table["label"].tolist() == ["zero", "one", "one", None, "zero", "one"]
    assert ds.table["width"].tolist() == [8] * 6


def test_labels_outside_given_classes_name_the_sample(image_folder, tmp_path):
    (tmp_path / "classes.json").write_text('["0", "1"]')
    with pytest.raises(LabelwiseError, match=r"label '2' \(sample '2/.*'\) is not in the class list"):
        load_dataset(image_folder, classes=tmp_path / "classes.json")


def test_saved_table_round_trip(image_folder, tmp_path):
    ds = load_dataset(image_folder)
    (tmp_path / "out").mkdir()
    ds.save(tmp_path / "out")
    again = read_table(tmp_path / "out" / "dataset.csv")
    assert again.classes == ds.classes
    pd.testing.assert_frame_equal(again.table, ds.table, check_dtype=False)
    assert load_dataset(tmp_path / "out" / "dataset.csv").table["sample_id"].tolist() == ds.table["sample_id"].tolist()
