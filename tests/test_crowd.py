"""Several annotators: importers on hand-written exports, aggregation methods, annotator scores."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_png

from labelwise.crowd import (
    aggregate_labels,
    annotator_table,
    fleiss_kappa,
    krippendorff_alpha,
    list_methods,
    read_answers,
)
from labelwise.crowd.methods import dawid_skene, encode
from labelwise.crowd.tasks import write_toloka_tsv
from labelwise.errors import LabelwiseError


def choice(label, name="choice"):
    return {"from_name": name, "to_name": "image", "type": "choices", "value": {"choices": [label]}}


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def rows(answers):
    return sorted(answers.table[["task", "worker", "label"]].itertuples(index=False, name=None))


# ---------------------------------------------------------------- Label Studio JSON


def test_label_studio_json_int_and_dict_completed_by_cancelled_legacy_and_empty(tmp_path):
    export = write_json(
        tmp_path / "export.json",
        [
            {
                "id": 1,
                "data": {"image": "/data/local-files/?d=imgs/1.jpg"},
                "annotations": [
                    {"id": 11, "completed_by": 2, "was_cancelled": False, "result": [choice("cat")]},
                    {
                        "id": 12,
                        "completed_by": {"id": 5, "email": "bo@x.org", "first_name": "Bo"},
                        "result": [choice("dog")],
                    },
                    {"id": 13, "completed_by": 7, "was_cancelled": True, "result": [choice("dog")]},
                ],
            },
            {
                "id": 2,
                "data": {"image": "/data/local-files/?d=imgs/2.jpg", "sample_id": "img_0002"},
                "completions": [{"id": 21, "completed_by": 2, "result": [choice("dog")]}],
            },  # legacy key, our sample_id
            {"id": 3, "data": {"image": "/data/local-files/?d=imgs/3.jpg"}, "annotations": []},
            {
                "id": 4,
                "data": {"image": "/data/local-files/?d=imgs/4.jpg"},
                "annotations": [{"id": 41, "completed_by": 2, "result": []}],
            },  # submitted without a choice
        ],
    )
    got = read_answers(export)
    assert rows(got) == [("img_0002", "2", "dog"), ("imgs/1.jpg", "2", "cat"), ("imgs/1.jpg", "bo@x.org", "dog")]
    assert got.dropped == {"cancelled": 1, "no label": 1}
    assert got.unlabeled == ["imgs/3.jpg", "imgs/4.jpg"]
    assert any("'7' has no answers (1 cancelled)" in n for n in got.notes)
    assert got.table.loc[got.table["worker"] == "bo@x.org", "source"].item() == f"{export}, task 1, annotation 12"


def test_label_studio_json_several_choices_tags_need_from_name(tmp_path):
    export = write_json(
        tmp_path / "e.json",
        [
            {
                "id": 1,
                "data": {"image": "a.jpg"},
                "annotations": [
                    {"id": 1, "completed_by": 1, "result": [choice("cat", "animal"), choice("blurry", "quality")]}
                ],
            }
        ],
    )
    with pytest.raises(LabelwiseError, match=r"several Choices tags \(animal, quality\).*--from-name"):
        read_answers(export)
    assert rows(read_answers(export, from_name="quality")) == [("a.jpg", "1", "blurry")]
    with pytest.raises(LabelwiseError, match="no Choices named 'kind'"):
        read_answers(export, from_name="kind")


def test_label_studio_multi_choice_is_an_error_naming_the_record(tmp_path):
    export = write_json(
        tmp_path / "e.json",
        [
            {
                "id": 9,
                "data": {"image": "a.jpg"},
                "annotations": [
                    {
                        "id": 3,
                        "completed_by": 1,
                        "result": [{"from_name": "choice", "type": "choices", "value": {"choices": ["a", "b"]}}],
                    }
                ],
            }
        ],
    )
    with pytest.raises(LabelwiseError, match=r"e\.json, task 9, annotation 3: 2 choices"):
        read_answers(export)


def test_json_min_one_record_per_annotation(tmp_path):
    export = write_json(
        tmp_path / "min.json",
        [
            {
                "image": "/data/upload/3/1a2b3c4d-IMG_001.jpg",
                "id": 1,
                "choice": "cat",
                "annotator": 2,
                "annotation_id": 11,
                "created_at": "2024-01-01T10:00:00Z",
                "updated_at": "2024-01-01T10:00:00Z",
                "lead_time": 3.1,
            },
            {
                "image": "/data/upload/3/1a2b3c4d-IMG_001.jpg",
                "id": 1,
                "choice": "dog",
                "annotator": "ann@x.org",
                "annotation_id": 12,
            },
            {"image": "/data/upload/3/99aa88bb-IMG_002.jpg", "id": 2},  # no annotation: the unlabeled pool
        ],
    )
    got = read_answers(export)  # auto-detected as JSON-MIN (no data/annotations keys)
    assert rows(got) == [("IMG_001.jpg", "2", "cat"), ("IMG_001.jpg", "ann@x.org", "dog")]
    assert got.unlabeled == ["IMG_002.jpg"]
    write_json(export, [{"image": "a.jpg", "id": 1, "annotator": 1, "choice": [{"choices": ["cat", "dog"]}]}])
    with pytest.raises(LabelwiseError, match=r"min\.json, record 1: 2 choices"):
        read_answers(export, "labelstudio-min")


def test_label_studio_csv_sorted_columns_quote_nonnumeric(tmp_path):
    path = tmp_path / "export.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:  # what label-studio-sdk's csv2 writes
        w = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(["annotation_id", "annotator", "choice", "created_at", "id", "image", "lead_time", "updated_at"])
        w.writerow([11, "2", "cat", "2024-01-01", 1, "/data/local-files/?d=imgs/1.jpg", 3.1, "2024-01-01"])
        w.writerow([12, "bo@x.org", "cat", "2024-01-01", 1, "/data/local-files/?d=imgs/1.jpg", 2.0, "2024-01-01"])
        w.writerow(
            [13, "2", '[{"choices": ["dog"]}]', "2024-01-01", 2, "/data/local-files/?d=imgs/2.jpg", 1.0, "2024-01-01"]
        )
    got = read_answers(path)
    assert rows(got) == [("imgs/1.jpg", "2", "cat"), ("imgs/1.jpg", "bo@x.org", "cat"), ("imgs/2.jpg", "2", "dog")]
    assert got.table["source"].iloc[2] == f"{path}, line 4"


# ---------------------------------------------------------------- per-annotator folders


@pytest.fixture
def student_exports(tmp_path, digits):
    """Three students ran their own Label Studio: every completed_by is 1, uploads carry the
    ``<8 hex>-`` prefix, and alice's and bob's IMG_001.jpg are different photos."""
    pixels, _ = digits
    images = tmp_path / "images"
    for i, rel in enumerate(["alice/IMG_001.jpg", "bob/IMG_001.jpg", "bob/IMG_002.jpg", "shared.png"]):
        write_png((images / rel).with_suffix(".png") if rel.endswith(".png") else images / rel, pixels[i])

    def task(tid, name, label, prefix="1a2b3c4d", cancelled=False):
        return {
            "id": tid,
            "data": {"image": f"/data/upload/1/{prefix}-{name}"},
            "annotations": [{"id": tid * 10, "completed_by": 1, "was_cancelled": cancelled, "result": [choice(label)]}],
        }

    exports = tmp_path / "exports"
    write_json(
        exports / "alice" / "project-1-at-2024.json", [task(1, "IMG_001.jpg", "cat"), task(2, "shared.png", "dog")]
    )
    write_json(
        exports / "bob" / "project-1-at-2024.json",
        [
            task(1, "IMG_001.jpg", "dog", "9f8e7d6c"),
            task(2, "IMG_002.jpg", "cat"),
            task(3, "IMG_999.jpg", "cat"),
            task(4, "shared.png", "dog", "0badf00d"),
        ],
    )
    write_json(exports / "carol.json", [task(1, "IMG_001.jpg", "cat"), task(2, "shared.png", "cat")])
    write_json(exports / "dave" / "export.json", [task(1, "shared.png", "cat", cancelled=True)])
    return exports, images


def test_folder_of_annotator_exports_matches_per_annotator_and_never_guesses(student_exports):
    exports, images = student_exports
    got = read_answers(exports, images=images)
    assert rows(got) == [
        ("alice/IMG_001.jpg", "alice", "cat"),
        ("bob/IMG_001.jpg", "bob", "dog"),
        ("bob/IMG_002.jpg", "bob", "cat"),
        ("shared.png", "alice", "dog"),
        ("shared.png", "bob", "dog"),
        ("shared.png", "carol", "cat"),
    ]
    reasons = dict(zip(got.unmatched["worker"], got.unmatched["reason"]))
    assert "no file named 'IMG_999.jpg'" in reasons["bob"]
    assert (
        "2 files named 'IMG_001.jpg'" in reasons["carol"] and "not guessing" in reasons["carol"]
    )  # carol has no folder
    assert got.dropped == {"cancelled": 1, "unmatched image": 2}
    assert any("'dave' has no answers (1 cancelled)" in n for n in got.notes)
    paths = got.images.set_index("task")["path"]
    assert paths["bob/IMG_001.jpg"] == str(images / "bob" / "IMG_001.jpg")


def test_folder_without_images_matches_by_stripped_name(student_exports):
    exports, _ = student_exports
    got = read_answers(exports)
    assert sorted(got.table.loc[got.table["task"] == "IMG_001.jpg", "worker"]) == ["alice", "bob", "carol"]


# ---------------------------------------------------------------- Toloka and CSV


def test_toloka_results_rejected_dropped_golden_read(tmp_path):
    path = tmp_path / "assignments.tsv"
    path.write_text(
        "INPUT:image\tOUTPUT:result\tGOLDEN:result\tHINT:text\tASSIGNMENT:link\tASSIGNMENT:worker_id\tASSIGNMENT:status\n"
        "https://h/1.jpg\tcat\t\t\tl\tw1\tAPPROVED\n"
        "https://h/1.jpg\tdog\t\t\tl\tw2\tREJECTED\n"
        'https://h/2.jpg\tdog\tdog\t"Look at the ""ears"""\tl\tw1\tSUBMITTED\n'
        "https://h/2.jpg\tcat\tdog\t\tl\tw3\tAPPROVED\n",
        encoding="utf-8",
    )
    got = read_answers(path)
    assert rows(got) == [
        ("https://h/1.jpg", "w1", "cat"),
        ("https://h/2.jpg", "w1", "dog"),
        ("https://h/2.jpg", "w3", "cat"),
    ]
    assert got.dropped == {"rejected": 1}
    assert got.gold.to_dict() == {"https://h/2.jpg": "dog"}
    assert any("'w2' has no answers (1 rejected)" in n for n in got.notes)


def test_toloka_tsv_quoting_round_trip(tmp_path):
    tricky = ['say "cat"', "tab\there", "line\nbreak", "comma, and 'single'", ""]
    written = pd.DataFrame(
        {
            "INPUT:image": [f"https://h/{i}.jpg" for i in range(5)],
            "INPUT:sample_id": [f"s{i}" for i in range(5)],
            "OUTPUT:result": ["cat"] * 5,
            "HINT:text": tricky,
            "ASSIGNMENT:worker_id": ["w"] * 5,
        }
    )
    path = write_toloka_tsv(tmp_path / "t.tsv", written)
    text = path.read_text(encoding="utf-8")
    assert '"say ""cat"""' in text and '"tab\there"' in text
    back = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    assert back["HINT:text"].tolist() == tricky
    assert rows(read_answers(path)) == [(f"s{i}", "w", "cat") for i in range(5)]  # INPUT:sample_id is the task


def test_malformed_tsv_names_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("INPUT:image\tOUTPUT:result\tASSIGNMENT:worker_id\na.jpg\tcat\tw1\nb.jpg\tdog\n", encoding="utf-8")
    with pytest.raises(LabelwiseError, match=r"bad\.tsv, line 3: 2 fields, the header has 3"):
        read_answers(path, "toloka")


def test_long_csv_duplicates_kept_once_and_counted(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("sample_id,annotator,label\na,w1,cat\na,w1,dog\na,w2,cat\nb,w1,dog\nb,w1,dog\n", encoding="utf-8")
    got = read_answers(path)
    assert rows(got) == [("a", "w1", "cat"), ("a", "w2", "cat"), ("b", "w1", "dog")]
    assert got.dropped == {"repeated (task, worker)": 2}
    assert any(
        "2 answer(s) repeat a (task, worker) pair (1 with a different label); the first is kept" in n for n in got.notes
    )


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (
            '[{"id": 1, "data": {"image": "a.jpg"},\n "annotations": [}]',
            "labelstudio",
            r"bad\.json: not valid JSON \(.* line 2",
        ),
        ('{"id": 1}', "labelstudio", "expected a JSON list of tasks"),
        (
            '[{"id": 1, "data": {"image": "a.jpg"}, "annotations": [{"id": 2, "result": ['
            + json.dumps(choice("cat"))
            + "]}]}]",
            "labelstudio",
            r"task 1, annotation 2: no completed_by",
        ),
        (
            '[{"id": 1, "data": {"image": "a.jpg"}, "annotations": [{"id": 2, "completed_by": 1, "result": ['
            + json.dumps(choice("cta"))
            + "]}]}]",
            "labelstudio",
            r"bad\.json, task 1, annotation 2: label 'cta' is not in the class list \(cat, dog\)",
        ),
        (
            '[{"id": 1, "data": {"image": "a.jpg"}, "annotations": [{"id": 2, "completed_by": 1, "was_cancelled": true, "result": []}]}]',
            "labelstudio",
            r"no usable answers \(1 cancelled\)",
        ),
    ],
)
def test_bad_exports_are_one_line_errors(tmp_path, content, fmt, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabelwiseError, match=message) as err:
        read_answers(path, fmt, classes=["cat", "dog"])
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- aggregation


def frame(triples):
    return pd.DataFrame(triples, columns=["task", "worker", "label"])


def test_majority_tie_goes_to_the_voters_who_agree_more_then_to_class_order():
    # x and y disagree on tied task "t"; on untied tasks x agrees with the majority, y does not
    df = frame(
        [
            ("t", "x", "b"),
            ("t", "y", "a"),
            ("u", "x", "a"),
            ("u", "z", "a"),
            ("u", "y", "b"),
            ("v", "x", "b"),
            ("v", "z", "b"),
            ("v", "y", "a"),
            ("s", "p", "b"),
            ("s", "q", "a"),
        ]
    )  # p, q: no untied answers, equal support → class order
    got = aggregate_labels(df, "mv")
    assert got.labels.to_dict() == {"t": "b", "u": "a", "v": "b", "s": "a"}
    assert got.confidence["t"] == 0.5


def test_gold_weighted_vote_follows_the_worker_right_on_honeypots():
    # g is right on all 4 honeypots, b1 and b2 on none; on task "x" g disagrees with both
    truth = {"h1": "a", "h2": "b", "h3": "a", "h4": "b"}
    triples = [(h, "g", lab) for h, lab in truth.items()]
    triples += [(h, w, "b" if lab == "a" else "a") for h, lab in truth.items() for w in ("b1", "b2")]
    triples += [("x", "g", "a"), ("x", "b1", "b"), ("x", "b2", "b")]
    df, gold = frame(triples), pd.Series(truth)
    assert aggregate_labels(df, "mv").labels["x"] == "b"
    got = aggregate_labels(df, "gold-mv", gold=gold)
    assert got.labels["x"] == "a"
    np.testing.assert_allclose(got.skills[["g", "b1", "b2"]], [5 / 6, 1 / 6, 1 / 6])  # (correct + 1) / (n + 2)
    assert got.confidence["x"] == pytest.approx(5 / 6 / (5 / 6 + 2 / 6))
    with pytest.raises(LabelwiseError, match="needs known answers"):
        aggregate_labels(df, "gold-mv")


def synthetic(seed=0, n_tasks=300, K=3, bias=0.8):
    """Two good workers and three poor ones biased towards 'c0': DS should see through them."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, n_tasks)
    triples = []
    for t in range(n_tasks):
        for w, acc in enumerate([0.9, 0.85, 0.35, 0.35, 0.35]):
            lab = truth[t] if rng.random() < acc else (0 if rng.random() < bias else rng.integers(0, K))
            triples.append((f"t{t:03d}", f"w{w}", f"c{lab}"))
    return frame(triples), pd.Series([f"c{k}" for k in truth], index=[f"t{t:03d}" for t in range(n_tasks)])


def test_dawid_skene_beats_majority_and_ranks_workers():
    df, truth = synthetic()
    ds, mv = aggregate_labels(df, "ds"), aggregate_labels(df, "mv")
    acc = lambda r: (r.labels.reindex(truth.index) == truth).mean()  # noqa: E731
    assert acc(ds) > acc(mv) + 0.05 and acc(ds) > 0.9
    assert ds.skills.nlargest(2).index.tolist() == ["w0", "w1"]
    np.testing.assert_allclose(ds.probas.sum(axis=1), 1.0)


def test_dawid_skene_keeps_gold_answers():
    df, truth = synthetic(seed=1)
    gold = truth.iloc[:20].map({"c0": "c1", "c1": "c2", "c2": "c0"})  # deliberately "wrong" gold is still kept
    got = aggregate_labels(df, "ds", gold=gold)
    assert (got.labels[gold.index] == gold).all() and (got.confidence[gold.index] == 1).all()


def test_dawid_skene_reproduces_crowdkit():
    pytest.importorskip("crowdkit")
    df, _ = synthetic(seed=2, n_tasks=120)
    ours = aggregate_labels(df, "ds")
    theirs = aggregate_labels(df, "crowdkit-ds")
    assert (ours.labels == theirs.labels).all()
    np.testing.assert_allclose(ours.probas.to_numpy(), theirs.probas.to_numpy(), atol=1e-4)


FAST = {"glad": {"n_iter": 5, "m_step_max_iter": 5}, "mace": {"n_restarts": 1, "n_iter": 5}}


@pytest.mark.parametrize("method", list_methods())
def test_every_method_labels_every_task_in_class_order(method):
    if method not in {"mv", "gold-mv", "ds"}:
        pytest.importorskip("crowdkit")
    df, truth = synthetic(seed=3, n_tasks=40, bias=0.0)
    got = aggregate_labels(df, method, classes=["c2", "c1", "c0"], gold=truth.iloc[:10], **FAST.get(method, {}))
    assert got.labels.index.tolist() == sorted(truth.index) and set(got.labels) <= {"c0", "c1", "c2"}
    assert got.probas.columns.tolist() == ["c2", "c1", "c0"]
    np.testing.assert_allclose(got.probas.sum(axis=1), 1.0)
    assert (got.labels.reindex(truth.index) == truth).mean() > 0.6
    assert got.skills.index.tolist() == ["w0", "w1", "w2", "w3", "w4"]


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(LabelwiseError, match="unknown aggregation method 'em'; choose one of: mv, gold-mv, ds"):
        aggregate_labels(frame([("a", "w", "x")]), "em")


def test_dawid_skene_array_shapes():
    df, _ = synthetic(seed=4, n_tasks=30)
    probas, prior, errors, n_iter = dawid_skene(encode(df))
    assert probas.shape == (30, 3) and prior.shape == (3,) and errors.shape == (5, 3, 3) and n_iter >= 1
    np.testing.assert_allclose(errors.sum(2), 1.0)


# ---------------------------------------------------------------- annotators and agreement


def test_annotator_table_gold_accuracy_agreement_and_worst_class():
    df = frame(
        [
            ("a", "x", "cat"),
            ("a", "y", "cat"),
            ("a", "z", "dog"),
            ("b", "x", "dog"),
            ("b", "y", "dog"),
            ("b", "z", "dog"),
            ("c", "x", "cat"),
            ("c", "y", "cat"),
            ("c", "z", "dog"),
        ]
    )
    table = annotator_table(df, aggregate_labels(df, "mv"), gold=pd.Series({"a": "cat", "b": "dog"})).set_index(
        "worker"
    )
    assert table.loc["z", "agreement_with_consensus"] == pytest.approx(1 / 3)
    assert table.loc["z", "worst_class"] == "cat" and table.loc["x", "worst_class"] == ""
    assert table.loc["z", "accuracy_on_gold"] == 0.5 and table.loc["x", "accuracy_on_gold"] == 1.0
    assert table.loc["z", "n_gold"] == 2 and table.index[0] == "z"  # worst first


def test_krippendorff_alpha_and_fleiss_kappa_match_published_examples():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: 0.743
    coders = {
        "A": "1 2 3 3 2 1 4 1 2 . . .",
        "B": "1 2 3 3 2 2 4 1 2 5 . 3",
        "C": ". 3 3 3 2 3 4 2 2 5 1 .",
        "D": "1 2 3 3 2 4 4 1 2 5 1 .",
    }
    df = frame([(f"u{u}", c, v) for c, s in coders.items() for u, v in enumerate(s.split()) if v != "."])
    assert krippendorff_alpha(df) == pytest.approx(0.743, abs=5e-4)
    assert np.isnan(fleiss_kappa(df))  # unequal numbers of answers
    # Fleiss (1971) as in the Wikipedia example: 10 subjects, 14 raters, kappa 0.210
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    triples = []
    for s, counts in enumerate(table):
        labels = [f"c{c}" for c, n in enumerate(counts) for _ in range(n)]
        triples += [(f"s{s}", f"r{r}", lab) for r, lab in enumerate(labels)]
    assert fleiss_kappa(frame(triples)) == pytest.approx(0.210, abs=5e-4)
