"""The ``simclr`` backbone: a small CNN trained on the embedded images themselves."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from labelwise import LabelwiseError, load_dataset
from labelwise.features import backbones, create_backbone, embed
from labelwise.features.ssl import WEIGHTS_FILE, SimCLRSettings, simclr

torch = pytest.importorskip("torch")
ssl_train = pytest.importorskip("labelwise.features.ssl_train")

# Few epochs of a narrow network: seconds on a CPU, still far better than chance.
TINY = {"epochs": 4, "width": 8, "batch_size": 64}


@pytest.fixture
def ds(tmp_path, digits):
    images, target = digits
    np.savez(tmp_path / "digits.npz", images=images[:300], labels=target[:300])
    return load_dataset(tmp_path / "digits.npz")


@pytest.fixture
def tiny(monkeypatch):
    """``simclr-tiny`` in the registry for this test, and a count of training runs."""
    runs = []
    train = ssl_train.train_encoder

    def counted(*args, **kwargs):
        runs.append(1)
        return train(*args, **kwargs)

    monkeypatch.setattr(ssl_train, "train_encoder", counted)
    with backbones.BACKBONES.temporarily(functools.partial(simclr, **TINY), name="simclr-tiny"):
        yield runs


def test_embeds_unit_rows_of_its_dimension(ds, tiny, tmp_path):
    vectors = embed(ds, backbone="simclr-tiny", cache_dir=False)
    assert vectors.shape == (300, 8 * TINY["width"]) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert len(np.unique(vectors.round(4), axis=0)) > 250  # not collapsed onto a few points


def test_same_seed_same_vectors_other_seed_other_vectors(ds, tiny):
    first = embed(ds, backbone="simclr-tiny", cache_dir=False, random_state=3)
    again = embed(ds, backbone="simclr-tiny", cache_dir=False, random_state=3)
    other = embed(ds, backbone="simclr-tiny", cache_dir=False, random_state=4)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_rerun_is_a_cache_hit_without_training(ds, tiny, tmp_path):
    first = embed(ds, backbone="simclr-tiny", cache_dir=tmp_path / "cache")
    assert len(tiny) == 1
    # Same images in another order (and a duplicate row): the same set, so the same encoder.
    shuffled = ds.table.sample(frac=1, random_state=0)
    table = pd.concat([shuffled, shuffled.iloc[:1]])
    again = embed(table, backbone="simclr-tiny", cache_dir=tmp_path / "cache")
    assert len(tiny) == 1
    rows = {sid: i for i, sid in enumerate(ds.table["sample_id"])}
    np.testing.assert_array_equal(again, first[[rows[s] for s in table["sample_id"]]])
    # A different set of images is a different encoder.
    embed(ds.table.head(200), backbone="simclr-tiny", cache_dir=tmp_path / "cache")
    assert len(tiny) == 2
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_trained_encoder_file_is_reused(ds, tiny, tmp_path):
    backbone = create_backbone("simclr-tiny").for_table(ds.table)
    backbone.cache_folder = tmp_path / "kept"
    paths = ds.table["path"].tolist()
    vectors = np.concatenate(list(backbone.encode(paths, device="cpu")))
    assert (tmp_path / "kept" / WEIGHTS_FILE).is_file() and len(tiny) == 1

    again = create_backbone("simclr-tiny").for_table(ds.table)
    again.cache_folder = tmp_path / "kept"
    np.testing.assert_array_equal(np.concatenate(list(again.encode(paths, device="cpu"))), vectors)
    assert len(tiny) == 1


def test_training_learns_and_features_separate_digits(tmp_path, digits):
    images, target = digits
    np.savez(tmp_path / "d.npz", images=images[:600], labels=target[:600])
    ds = load_dataset(tmp_path / "d.npz")
    backbone = simclr(epochs=6, width=8, batch_size=64).for_table(ds.table)
    vectors = backbone.finish(np.concatenate(list(backbone.encode(ds.table["path"].tolist(), device="cpu"))))
    # NT-Xent of features that say nothing is log(2·batch − 1); training must get well below it.
    losses = [row["loss"] for row in backbone.history_]
    assert losses[-1] < 0.75 * math.log(2 * 64 - 1) and losses[-1] < losses[0]
    # Chance is 0.1; a collapsed or broken encoder lands near it.
    accuracy = cross_val_score(
        KNeighborsClassifier(5), vectors, target[:600], cv=StratifiedKFold(5, shuffle=True, random_state=0)
    ).mean()
    assert accuracy > 0.8


def test_weights_file_skips_training(ds, tiny, tmp_path):
    trained = create_backbone("simclr-tiny", random_state=1).for_table(ds.table)
    path = trained.save_weights(tmp_path / "encoder.pt", device="cpu")
    expected = trained.finish(np.concatenate(list(trained.encode(ds.table["path"].tolist(), device="cpu"))))
    assert len(tiny) == 1

    vectors = embed(ds, backbone="simclr", weights=path, cache_dir=tmp_path / "cache", device="cpu")
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert len(tiny) == 1
    # The file's width and input side come with it; its digest names the cache folder.
    assert create_backbone("simclr", weights=path).dim == 8 * TINY["width"]
    (folder,) = (tmp_path / "cache").iterdir()
    assert folder.name.startswith("simclr-16px-sha256-")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a torch file", "cannot read as torch weights"),
        ({"fc.weight": [[1.0]]}, "not a simclr encoder"),
        ("truncated", "weights do not fit the simclr encoder"),
    ],
)
def test_bad_weights_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "w.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        torch.save({k: torch.tensor(v) for k, v in content.items()}, path)
    else:  # a real encoder with a layer missing
        state = ssl_train.Encoder(1, 4).state_dict()
        state.pop("features.2.body.0.0.weight")
        torch.save(state, path)
    with pytest.raises(LabelwiseError, match=message) as info:
        create_backbone("simclr", weights=path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_weights_file_and_bad_options(tmp_path):
    with pytest.raises(LabelwiseError, match="weights file not found"):
        create_backbone("simclr", weights=tmp_path / "nope.pt")
    with pytest.raises(LabelwiseError, match="simclr epochs must be an integer >= 1, got 0"):
        simclr(epochs=0)
    with pytest.raises(LabelwiseError, match=r"simclr temperature must be a number in \(0, inf\], got -1"):
        SimCLRSettings(temperature=-1)
