from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelwise import LabelwiseError, split_table


def _table(counts: dict[str, int], n_unlabeled: int = 0) -> pd.DataFrame:
    labels = [c for c, n in counts.items() for _ in range(n)] + [None] * n_unlabeled
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(len(labels))],
            "label": labels,
            "split": ["train" if x is not None else "unlabeled" for x in labels],
        }
    )


def test_split_is_stratified_and_reproducible():
    t = _table({"neg": 880, "pos": 120}, n_unlabeled=50)
    a = split_table(t, valid_pct=0.2, folds=5, random_state=3)
    b = split_table(t, valid_pct=0.2, folds=5, random_state=3)
    c = split_table(t, valid_pct=0.2, folds=5, random_state=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["split"].equals(c["split"])
    valid = a[a["split"] == "valid"]
    assert len(valid) == 200
    assert (valid["label"] == "pos").sum() == 24  # 12% of 200: stratified
    assert (a.loc[a["label"].isna(), "split"] == "unlabeled").all()
    train = a[a["split"] == "train"]
    assert set(train["fold"]) == {0, 1, 2, 3, 4}
    assert (a.loc[a["split"] != "train", "fold"] == -1).all()
    per_fold_pos = train.groupby("fold")["label"].apply(lambda s: (s == "pos").sum())
    assert per_fold_pos.max() - per_fold_pos.min() <= 1


def test_test_split_is_kept():
    t = _table({"a": 30, "b": 30})
    t.loc[:9, "split"] = "test"
    out = split_table(t, valid_pct=0.2, folds=0, random_state=0)
    assert (out.loc[:9, "split"] == "test").all()
    assert (out["split"] == "valid").sum() == 10  # 20% of the 50 non-test rows
    assert (out["fold"] == -1).all()


def test_rare_class_is_pooled_with_warning(caplog):
    t = _table({"a": 40, "b": 40, "rare": 1})
    out = split_table(t, valid_pct=0.2, folds=3, random_state=0)
    assert out["label"].eq("rare").sum() == 1
    assert any("cannot be stratified" in r.message for r in caplog.records)


@pytest.mark.parametrize("kwargs, message", [({"valid_pct": 1.0}, "valid_pct"), ({"folds": 1}, "folds")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(LabelwiseError, match=message):
        split_table(_table({"a": 10, "b": 10}), **kwargs)


def test_keep_existing_valid():
    t = _table({"a": 20, "b": 20})
    t.loc[[0, 20], "split"] = "valid"
    out = split_table(t, folds=2, keep_existing=True)
    assert out.index[out["split"] == "valid"].tolist() == [0, 20]
    assert np.array_equal(np.sort(out.loc[out["split"] == "train", "fold"].unique()), [0, 1])
