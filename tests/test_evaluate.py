"""Metrics on hand-computed examples, and ``evaluate`` on the files ``train`` writes."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from labelwise.data import Dataset
from labelwise.errors import LabelwiseError
from labelwise.evaluate import (
    classification_metrics,
    evaluate,
    expected_calibration_error,
    hter,
)
from labelwise.train.metrics import reliability_table


def test_hter_hand_computed():
    # 4 genuine (positive = 1) and 6 impostor samples; one genuine rejected, two impostors accepted
    y_true = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    far, frr, half = hter(y_true, y_pred, positive=1)
    assert far == pytest.approx(2 / 6)  # false acceptance: impostors let in
    assert frr == pytest.approx(1 / 4)  # false rejection: genuine turned away
    assert half == pytest.approx((2 / 6 + 1 / 4) / 2)
    # swapping the positive class swaps the two error rates
    assert hter(y_true, y_pred, positive=0)[:2] == pytest.approx((1 / 4, 2 / 6))


def test_binary_metrics_use_the_second_class_as_positive_unless_told():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p1 = np.array([0.9, 0.4, 0.8, 0.7, 0.6, 0.55, 0.1, 0.2, 0.3, 0.1])
    probs = np.c_[1 - p1, p1]
    m = classification_metrics(y, probs, ["impostor", "genuine"])
    assert m["positive"] == "genuine"
    assert (m["far"], m["frr"]) == pytest.approx((2 / 6, 1 / 4))
    assert m["roc_auc"] == pytest.approx(22 / 24)  # 22 of the 24 genuine/impostor pairs ranked right
    m0 = classification_metrics(y, probs, ["impostor", "genuine"], positive="impostor")
    assert (m0["far"], m0["frr"]) == pytest.approx((1 / 4, 2 / 6))
    with pytest.raises(LabelwiseError, match="positive class 'cat'"):
        classification_metrics(y, probs, ["impostor", "genuine"], positive="cat")


def test_ece_hand_computed():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    # bin (0.8, 0.9]: 3 samples, accuracy 2/3, confidence 0.9; bin (0.7, 0.8]: 1 sample, accuracy 1, confidence 0.8
    expected = 3 / 4 * abs(2 / 3 - 0.9) + 1 / 4 * abs(1 - 0.8)
    assert expected_calibration_error(y, probs, n_bins=10) == pytest.approx(expected)
    confident_and_right = np.eye(2)[y]
    assert expected_calibration_error(y, confident_and_right) == pytest.approx(0.0)


def test_all_right_but_unsure_predictions_have_ece_one_minus_confidence():
    y = np.array([0, 1, 2, 0, 1, 2])
    conf = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.55])
    probs = np.full((6, 3), 0.0)
    probs[np.arange(6), y] = conf
    probs[np.arange(6), (y + 1) % 3] = 1 - conf  # the runner-up; argmax stays right
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0 and m["macro_f1"] == 1.0
    # every sample is right, so each bin's gap is 1 - its mean confidence: ECE = 1 - mean confidence
    assert m["ece"] == pytest.approx(1 - conf.mean())
    assert m["log_loss"] == pytest.approx(-np.log(conf).mean())
    table = reliability_table(y, probs, n_bins=10)
    # bins are (lower, upper]: 0.5 | 0.55, 0.6 | 0.7 | 0.8 | 0.9
    assert table["count"].tolist() == [0, 0, 0, 0, 1, 2, 1, 1, 1, 0]
    assert np.isnan(table["accuracy"].iloc[0]) and table["accuracy"].dropna().eq(1.0).all()


def test_one_class_present_gives_no_auc_and_no_rate_without_samples():
    y = np.zeros(4, int)  # negatives only: FAR is measurable, FRR is not
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.8, 0.2], [0.6, 0.4]])
    m = classification_metrics(y, probs, ["neg", "pos"])
    assert m["far"] == pytest.approx(0.25) and m["frr"] is None and m["hter"] is None and m["roc_auc"] is None
    assert json.loads(json.dumps(m))["roc_auc"] is None  # plain JSON, no NaN
    far, frr, half = hter(y, probs.argmax(1))
    assert far == pytest.approx(0.25) and np.isnan(frr) and np.isnan(half)


def test_positive_class_by_name_index_or_digits():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
    by_name = classification_metrics(y, probs, ["ok", "bad"], positive="ok")
    assert by_name["positive"] == "ok"
    assert by_name == classification_metrics(y, probs, ["ok", "bad"], positive=0)
    assert by_name == classification_metrics(y, probs, ["ok", "bad"], positive=np.int64(0))
    assert by_name == classification_metrics(y, probs, ["ok", "bad"], positive="0")  # from the command line
    # a class called "1" wins over the index 1
    assert classification_metrics(y, probs, ["1", "0"], positive="1")["positive"] == "1"


def test_bad_metric_inputs_are_one_line_errors():
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    with pytest.raises(LabelwiseError, match=r"shape \(n, 3\) for 3 classes"):
        classification_metrics(np.array([0, 1]), probs, ["a", "b", "c"])
    with pytest.raises(LabelwiseError, match="3 labels but 2 probability rows"):
        classification_metrics(np.array([0, 1, 1]), probs, ["a", "b"])
    with pytest.raises(LabelwiseError, match="class indices 0..1 for 2 classes, found 2"):
        classification_metrics(np.array([0, 2]), probs, ["a", "b"])
    with pytest.raises(LabelwiseError, match="integer class indices"):
        classification_metrics(np.array(["a", "b"]), probs, ["a", "b"])


def test_balanced_accuracy_tells_what_accuracy_hides_and_absent_classes_keep_a_row():
    y = np.array([0] * 90 + [1] * 10)
    always_zero = np.tile([0.8, 0.15, 0.05], (100, 1))
    m = classification_metrics(y, always_zero, ["major", "minor", "never"])
    assert m["accuracy"] == pytest.approx(0.9)
    assert m["balanced_accuracy"] == pytest.approx(0.5) == balanced_accuracy_score(y, np.zeros(100, int))
    assert m["macro_f1"] == pytest.approx(f1_score(y, np.zeros(100, int), average="macro"))
    assert len(m["confusion"]) == 3 and m["confusion"][2] == [0, 0, 0]
    assert [c["support"] for c in m["per_class"]] == [90, 10, 0]
    assert "hter" not in m


def _probs_table(ids, probs, classes):
    return pd.DataFrame({"sample_id": ids, **{f"prob_{c}": probs[:, i] for i, c in enumerate(classes)}})


def _train_folder(tmp_path, classes=("cat", "dog", "fox"), n_test=0):
    """What `labelwise train` writes: oof_probs.csv, classes.json, dataset.csv (and test_probs.csv)."""
    rng = np.random.default_rng(0)
    n = 30
    labels = rng.integers(0, 3, n + n_test)
    logits = rng.normal(size=(n + n_test, 3)) + 1.0 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    folder = tmp_path / "run"
    folder.mkdir()
    ids = [f"img/{i}.png" for i in range(n + n_test)]
    _probs_table(ids[:n], probs[:n], classes).to_csv(folder / "oof_probs.csv", index=False)
    if n_test:
        _probs_table(ids[n:], probs[n:], classes).to_csv(folder / "test_probs.csv", index=False)
    (folder / "classes.json").write_text(json.dumps(list(classes)))
    split = ["train"] * n + ["test"] * n_test
    pd.DataFrame({"sample_id": ids, "path": ids, "label": [classes[i] for i in labels], "split": split}).to_csv(
        folder / "dataset.csv", index=False
    )
    if n_test:
        return folder, labels[:n], probs[:n], labels[n:], probs[n:]
    return folder, labels, probs


OUTPUTS = (
    "metrics.json",
    "per_class.csv",
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "reliability.csv",
    "reliability.png",
    "report.md",
    "report.html",
)


def test_evaluate_a_train_folder_writes_every_output(tmp_path):
    folder, labels, probs, test_labels, test_probs = _train_folder(tmp_path, n_test=12)
    out = tmp_path / "ev"
    result = evaluate(str(folder), out=out)
    pred = probs.argmax(1)
    assert result["source"] == str(folder / "oof_probs.csv") and result["n"] == 30
    assert result["accuracy"] == pytest.approx((pred == labels).mean())
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
    assert result["macro_f1"] == pytest.approx(f1_score(labels, pred, average="macro"))
    assert result["log_loss"] == pytest.approx(log_loss(labels, probs))
    assert "hter" not in result  # three classes
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
        assert (out / "test" / name).stat().st_size > 0, f"test/{name}"
    assert not list(out.rglob(".*.tmp*"))  # atomic writes leave no temporary files

    confusion = pd.read_csv(out / "confusion_matrix.csv", index_col=0)
    assert list(confusion.columns) == ["cat", "dog", "fox"] and list(confusion.index) == ["cat", "dog", "fox"]
    assert (confusion.to_numpy() == confusion_matrix(labels, pred)).all()
    per_class = pd.read_csv(out / "per_class.csv")
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred)
    assert per_class["class"].tolist() == ["cat", "dog", "fox"]
    assert np.allclose(per_class[["precision", "recall", "f1"]].to_numpy().T, [precision, recall, f1])
    assert per_class["support"].tolist() == support.tolist()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["n"] == 30 and saved["accuracy"] == pytest.approx(result["accuracy"]) and "test" not in saved
    assert pd.read_csv(out / "reliability.csv")["count"].sum() == 30
    assert "confusion_matrix.png" in (out / "report.md").read_text()

    # the test split is scored against the same dataset.csv, separately
    test = result["test"]
    assert test["n"] == 12 and test["source"] == str(folder / "test_probs.csv")
    assert test["accuracy"] == pytest.approx((test_probs.argmax(1) == test_labels).mean())
    assert json.loads((out / "test" / "metrics.json").read_text())["n"] == 12


def test_a_predicted_label_column_is_never_taken_as_truth(tmp_path):
    folder, labels, probs = _train_folder(tmp_path)
    preds = pd.read_csv(folder / "oof_probs.csv")
    preds.insert(1, "label", np.array(["cat", "dog", "fox"])[probs.argmax(1)])  # predictions.csv style
    preds.to_csv(tmp_path / "predictions.csv", index=False)
    with pytest.raises(LabelwiseError, match="no true labels"):
        evaluate(tmp_path / "predictions.csv", classes=["cat", "dog", "fox"])
    truth = pd.read_csv(folder / "dataset.csv")
    result = evaluate(tmp_path / "predictions.csv", truth, classes=folder / "classes.json")
    accuracy = (probs.argmax(1) == labels).mean()
    assert accuracy < 1.0 and result["accuracy"] == pytest.approx(accuracy)


def test_labels_as_dataset_or_file_skip_rows_without_truth(tmp_path, caplog):
    folder, labels, probs = _train_folder(tmp_path)
    truth = pd.read_csv(folder / "dataset.csv")
    truth.loc[:4, "label"] = np.nan  # 5 predictions have no true label
    ds = Dataset(truth, ["cat", "dog", "fox"])
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        result = evaluate(folder / "oof_probs.csv", ds)
    assert result["n"] == 25 and result["n_skipped"] == 5
    assert "5 of 30 rows have no true label" in caplog.text
    assert result["accuracy"] == pytest.approx((probs.argmax(1)[5:] == labels[5:]).mean())
    truth.to_csv(tmp_path / "truth.csv", index=False)  # a labelwise table read by load_dataset
    assert evaluate(folder / "oof_probs.csv", tmp_path / "truth.csv")["accuracy"] == result["accuracy"]


def test_class_order_comes_from_the_prob_columns_without_classes_json():
    y = ["b", "a", "b"]
    preds = pd.DataFrame({"sample_id": [1, 2, 3], "prob_b": [0.7, 0.2, 0.4], "prob_a": [0.3, 0.8, 0.6]})
    result = evaluate(preds, pd.DataFrame({"sample_id": ["1", "2", "3"], "label": y}))
    assert [c["class"] for c in result["per_class"]] == ["b", "a"] and result["positive"] == "a"
    assert result["confusion"] == [[1, 1], [0, 1]]
    assert evaluate(preds, pd.DataFrame({"sample_id": [1, 2, 3], "label": y}), classes=["a", "b"])["positive"] == "b"


def test_mismatched_ids_and_bad_rows_are_one_line_errors(tmp_path):
    folder, _, _ = _train_folder(tmp_path)
    other = pd.DataFrame({"sample_id": ["x/1.png"], "label": ["cat"]})
    with pytest.raises(LabelwiseError, match=r"no sample_id matches the labels \(e.g. 'img/0.png' here, 'x/1.png'"):
        evaluate(folder / "oof_probs.csv", other)
    broken = pd.read_csv(folder / "oof_probs.csv")
    broken.loc[3, "prob_cat"] += 0.5
    broken.to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(LabelwiseError, match="sample_id 'img/3.png' sum to 1.5"):
        evaluate(tmp_path / "broken.csv", pd.read_csv(folder / "dataset.csv"))
    truth = pd.read_csv(folder / "dataset.csv")
    truth.loc[0, "label"] = "wolf"
    with pytest.raises(LabelwiseError, match="true label 'wolf' is not one of the classes"):
        evaluate(folder / "oof_probs.csv", truth)
    good = pd.read_csv(folder / "oof_probs.csv")
    truth = pd.read_csv(folder / "dataset.csv")
    negative = good.assign(prob_cat=good["prob_cat"] + 2, prob_dog=good["prob_dog"] - 2)  # sums stay 1
    with pytest.raises(LabelwiseError, match=r"sample_id 'img/0.png' are not all in \[0, 1\]"):
        evaluate(negative, truth, classes=["cat", "dog", "fox"])
    with pytest.raises(LabelwiseError, match="sample_id 'img/0.png' appears more than once"):
        evaluate(pd.concat([good, good.head(1)]), truth)
    with pytest.raises(LabelwiseError, match="column 'prob_fox' is not one of the classes"):
        evaluate(good, truth, classes=["cat", "dog"])
    with pytest.raises(LabelwiseError, match="no column 'prob_wolf'"):
        evaluate(good, truth, classes=["cat", "dog", "fox", "wolf"])
    with pytest.raises(LabelwiseError, match="img/0.png' has conflicting labels"):
        evaluate(good, pd.concat([truth, truth.head(1).assign(label="dog")]))
