"""Metrics on hand-computed examples, and ``evaluate`` on the files ``train`` writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from labelwise.errors import LabelwiseError
from labelwise.evaluate import classification_metrics, evaluate, expected_calibration_error, hter


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


def _train_folder(tmp_path, classes=("cat", "dog", "fox")):
    rng = np.random.default_rng(0)
    n = 30
    labels = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.0 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    folder = tmp_path / "run"
    folder.mkdir()
    ids = [f"img/{i}.png" for i in range(n)]
    oof = pd.DataFrame(probs, columns=[f"prob_{c}" for c in classes]).assign(sample_id=ids)
    oof[["sample_id"] + [f"prob_{c}" for c in classes]].to_csv(folder / "oof_probs.csv", index=False)
    (folder / "classes.json").write_text(json.dumps(list(classes)))
    pd.DataFrame({"sample_id": ids, "path": ids, "label": [classes[i] for i in labels], "split": "train"}).to_csv(
        folder / "dataset.csv", index=False
    )
    return folder, labels, probs


def test_evaluate_a_train_folder_writes_every_output(tmp_path):
    folder, labels, probs = _train_folder(tmp_path)
    out = tmp_path / "ev"
    result = evaluate(folder, out=out)
    pred = probs.argmax(1)
    assert result["accuracy"] == pytest.approx((pred == labels).mean())
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
    for name in ("metrics.json", "per_class.csv", "confusion_matrix.csv", "confusion_matrix.png",
                 "reliability.csv", "reliability.png", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0, name
    confusion = pd.read_csv(out / "confusion_matrix.csv", index_col=0)
    assert list(confusion.columns) == ["cat", "dog", "fox"] and confusion.to_numpy().sum() == 30
    assert json.loads((out / "metrics.json").read_text())["n"] == 30


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
