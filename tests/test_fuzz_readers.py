"""Damaged input files never produce a traceback: every reader and importer either reads them
or raises one :class:`LabelwiseError` (a problems.csv row for a bad image).

Each test starts from a valid file and lets Hypothesis damage its bytes: cut it short, drop a
run of bytes, insert delimiters, quotes, brackets, line breaks, NUL and non-UTF-8 bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwise import LabelwiseError, load_dataset
from labelwise.crowd import read_answers, read_gold
from labelwise.data import read_classes, read_npz, read_ordered_labels
from labelwise.formats.probabilities import (
    checked_probabilities,
    read_probability_table,
)

NOISE = [
    b",",
    b";",
    b"\t",
    b'"',
    b"'",
    b"\n",
    b"\r",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"\x00",
    b"\xff",
    b"\xfe\xff",
    "é".encode(),
    b"-1",
    b"nan",
    b"..",
    b"/",
    b"\\",
    b"  ",
    b"1e309",
    b"null",
    b"true",
]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["cut", "drop", "insert", "replace"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "cut":
            del data[at:]
        elif kind == "drop":
            del data[at : at + draw(st.integers(1, 12))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(NOISE)) * draw(st.integers(1, 3))
        elif data:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


def survives(read: Callable[[], object]) -> None:
    """The property: a reader returns, or raises LabelwiseError with a one-line message."""
    try:
        read()
    except LabelwiseError as exc:
        assert "\n" not in str(exc).strip(), str(exc)


@pytest.fixture(scope="module")
def images(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("fuzz") / "images"
    pixels, target = digits
    for i in range(6):
        write_png(root / str(target[i] % 2) / f"{i}.png", pixels[i])
    return root


def _csv(images: Path) -> bytes:
    files = sorted(p.relative_to(images).as_posix() for p in images.rglob("*.png"))
    return ("fname,label,is_valid\n" + "".join(f"{f},{f[0]},{i % 2 == 0}\n" for i, f in enumerate(files))).encode()


@FUZZ
@given(st.data())
def test_damaged_csv_of_labels(images, data):
    raw = data.draw(damaged(_csv(images)))
    path = images / "labels.csv"
    path.write_bytes(raw)
    survives(lambda: load_dataset(path, check=False))
    survives(lambda: load_dataset(path, images=images, check=True))


@FUZZ
@given(st.data())
def test_damaged_labelwise_table_and_classes(images, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("table")
    ds = load_dataset(images)
    ds.save(folder)
    table = (folder / "dataset.csv").read_bytes()
    (folder / "dataset.csv").write_bytes(data.draw(damaged(table)))
    (folder / "classes.json").write_bytes(data.draw(damaged(json.dumps(ds.classes).encode())))
    survives(lambda: load_dataset(folder / "dataset.csv", check=False))
    survives(lambda: read_classes(folder / "classes.json"))


@FUZZ
@given(st.data())
def test_damaged_ordered_label_file(images, data):
    folder = images / "0"
    n = len(list(folder.glob("*.png")))
    path = images / "ordered.txt"
    path.write_bytes(data.draw(damaged(("0\n" * n).encode())))
    survives(lambda: read_ordered_labels(path, folder, check=False))


@FUZZ
@given(st.data())
def test_damaged_npz(tmp_path_factory, digits, data):
    buffer = io.BytesIO()
    np.savez(buffer, images=digits[0][:5], labels=np.array([0, 1, 1, -1, 0]))
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    path.write_bytes(data.draw(damaged(buffer.getvalue())))
    survives(lambda: read_npz(path, check=False))


@FUZZ
@given(st.data())
def test_damaged_probability_table(tmp_path_factory, data):
    text = "sample_id,prob_a,prob_b\n" + "".join(f"s{i},0.25,0.75\n" for i in range(5))
    path = tmp_path_factory.mktemp("probs") / "p.csv"
    path.write_bytes(data.draw(damaged(text.encode())))
    survives(lambda: checked_probabilities(read_probability_table(path), ["a", "b"], str(path)))


LS_EXPORT = json.dumps(
    [
        {
            "id": 1,
            "data": {"image": "/data/local-files/?d=0/0.png", "sample_id": "0/0.png"},
            "annotations": [
                {
                    "id": 11,
                    "completed_by": 2,
                    "was_cancelled": False,
                    "result": [
                        {"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["0"]}}
                    ],
                },
                {"id": 12, "completed_by": {"id": 5, "email": "b@x"}, "was_cancelled": True, "result": []},
            ],
        },
        {"id": 2, "data": {"image": "/data/upload/3/1a2b3c4d-1.png"}, "annotations": []},
    ]
).encode()
LS_MIN = json.dumps(
    [
        {
            "image": "/data/local-files/?d=0/0.png",
            "id": 1,
            "choice": "0",
            "annotator": 2,
            "annotation_id": 11,
            "lead_time": 3.1,
        },
        {"image": "/data/local-files/?d=1/1.png", "id": 2, "choice": "1", "annotator": "a@b"},
    ]
).encode()
LS_CSV = (
    b'"annotation_id","annotator","choice","created_at","id","image","lead_time","updated_at"\n'
    b'11,"2","0","2024","1","/data/local-files/?d=0/0.png",3.1,"2024"\n'
    b'12,"3","1","2024","1","/data/local-files/?d=0/0.png",2.0,"2024"\n'
)
TOLOKA = (
    b"INPUT:image\tINPUT:sample_id\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id\tASSIGNMENT:status\n"
    b"u/0.png\t0/0.png\t0\t\tw1\tACCEPTED\nu/1.png\t1/1.png\t1\t1\tw2\tREJECTED\n"
)
LONG = b"task,worker,label\n0/0.png,w1,0\n0/0.png,w2,1\n1/1.png,w1,1\n"


@FUZZ
@given(
    st.data(),
    st.sampled_from(
        [
            ("export.json", LS_EXPORT),
            ("min.json", LS_MIN),
            ("ls.csv", LS_CSV),
            ("results.tsv", TOLOKA),
            ("long.csv", LONG),
        ]
    ),
)
def test_damaged_crowd_exports(images, tmp_path_factory, data, sample):
    name, original = sample
    path = tmp_path_factory.mktemp("answers") / name
    path.write_bytes(data.draw(damaged(original)))
    survives(lambda: read_answers(path))
    survives(lambda: read_answers(path, images=images, classes=["0", "1"]))
    survives(lambda: read_gold(path))
