"""Training, k-fold ensembles and prediction on small real images (scikit-learn's digits)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelwise.data import ReadOptions

torch = pytest.importorskip("torch")

from conftest import write_png  # noqa: E402

from labelwise.errors import LabelwiseError  # noqa: E402
from labelwise.train import (  # noqa: E402
    NeuralClassifier,
    get_model_spec,
    list_models,
    predict,
    train,
)
from labelwise.train.prediction import combine  # noqa: E402


def _digits16(digits, classes=(0, 1, 2), per_class=60):
    """Digits of ``classes`` upscaled to 16×16 uint8 (the cnn's smallest comfortable size)."""
    images, target = digits
    idx = np.concatenate([np.flatnonzero(target == c)[:per_class] for c in classes])
    big = np.kron(images[idx], np.ones((2, 2), np.uint8))
    return big, np.searchsorted(classes, target[idx]).astype(np.int64)


@pytest.mark.parametrize("name", [n for n in list_models() if "<" not in n])
def test_every_model_runs_forward_and_backward(name):
    spec = get_model_spec(name)
    n_inputs = 12 if spec.input == "embedding" else spec.channels or 1
    net = spec.build(3, n_inputs, weights=None)
    shape = (
        (4, n_inputs) if spec.input == "embedding" else (2, n_inputs, max(spec.min_size, 32), max(spec.min_size, 32))
    )
    x = torch.randn(shape)
    net.train()
    logits = net(x)
    assert logits.shape == (shape[0], 3)
    logits.sum().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_cnn_learns_digits_and_same_seed_gives_same_metrics(digits):
    X, y = _digits16(digits)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    tr, va = order[:120], order[120:]
    kw = dict(epochs=4, batch_size=32, flip=False, random_state=3)
    a = NeuralClassifier("cnn", **kw).fit(X[tr], y[tr], X_valid=X[va], y_valid=y[va])
    b = NeuralClassifier("cnn", **kw).fit(X[tr], y[tr], X_valid=X[va], y_valid=y[va])
    pd.testing.assert_frame_equal(a.history_.drop(columns="seconds"), b.history_.drop(columns="seconds"))
    np.testing.assert_array_equal(a.predict_proba(X[va]), b.predict_proba(X[va]))
    assert a.history_["valid_accuracy"].max() > 0.9  # three digit classes are easy
    c = NeuralClassifier("cnn", **{**kw, "random_state": 4}).fit(X[tr], y[tr], X_valid=X[va], y_valid=y[va])
    assert not np.array_equal(a.predict_proba(X[va]), c.predict_proba(X[va]))


def test_training_dynamics_and_the_networks_own_features(digits):
    X, y = _digits16(digits, per_class=62)
    X, y = X[:185], y[:185]
    noisy = y.copy()
    noisy[:6] = (y[:6] + 1) % 3  # six wrong labels
    clf = NeuralClassifier("cnn", epochs=5, batch_size=32, flip=False, random_state=0)
    clf.fit(X, noisy, track_train_probs=True)
    dyn = clf.train_probs_.astype(np.float64)
    assert dyn.shape == (5, len(y), 3)
    drawn = ~np.isnan(dyn).any(2)
    # 185 images in 9 full batches of 19 (at least 10 steps an epoch: 32 → 19) draw 171 a epoch;
    # the other 14 are NaN and wait for the next shuffle
    assert (drawn.sum(1) == 171).all()
    np.testing.assert_allclose(dyn[drawn].sum(1), 1, atol=1e-2)
    mean = np.nanmean(dyn, 0)
    given = mean[np.arange(len(y)), noisy]
    assert given[:6].mean() < given[6:].mean() - 0.3  # wrong labels are fitted last
    assert not hasattr(NeuralClassifier("cnn", epochs=1).fit(X, y), "train_probs_")
    features = clf.transform(X[:7])
    assert features.shape == (7, clf.module_.head[-1].in_features) and np.isfinite(features).all()


def test_early_stopping_stops_and_restores_best_weights(digits):
    X, y = _digits16(digits)
    y_random = np.random.default_rng(1).permutation(y)  # nothing to learn: validation stalls
    clf = NeuralClassifier("cnn", epochs=30, batch_size=32, patience=2, flip=False, lr=0.01)
    clf.fit(X[:120], y_random[:120], X_valid=X[120:], y_valid=y_random[120:])
    assert clf.stopped_early_
    assert len(clf.history_) < 30
    assert len(clf.history_) - clf.best_epoch_ == 2  # stopped exactly `patience` epochs after the best
    best = clf.history_.set_index("epoch").loc[clf.best_epoch_, "valid_balanced_accuracy"]
    from sklearn.metrics import balanced_accuracy_score

    assert balanced_accuracy_score(y_random[120:], clf.predict(X[120:])) == pytest.approx(best)


def test_resume_continues_rather_than_restarts(digits, tmp_path):
    X, y = _digits16(digits)
    kw = dict(epochs=4, batch_size=32, flip=False)
    full = NeuralClassifier("cnn", **kw).fit(X, y)

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        NeuralClassifier("cnn", **kw).fit(X, y, checkpoint=ckpt, on_epoch=stop_after_two)
    # the interruption came before epoch 2 was saved: the checkpoint holds epoch 1
    epochs_run = []
    resumed = NeuralClassifier("cnn", **kw).fit(
        X, y, checkpoint=ckpt, resume=True, on_epoch=lambda r: epochs_run.append(r["epoch"])
    )
    assert epochs_run == [2, 3, 4]
    pd.testing.assert_frame_equal(resumed.history_.drop(columns="seconds"), full.history_.drop(columns="seconds"))
    np.testing.assert_allclose(resumed.predict_proba(X), full.predict_proba(X), atol=1e-6)

    with pytest.raises(LabelwiseError, match="different settings.*lr"):
        NeuralClassifier("cnn", **kw, lr=0.1).fit(X, y, checkpoint=ckpt, resume=True)


def test_balance_sampler_draws_classes_equally(digits):
    X, y = _digits16(digits, classes=(0, 1), per_class=80)
    keep = np.concatenate([np.flatnonzero(y == 0)[:8], np.flatnonzero(y == 1)])  # 8 vs 80
    seen = []
    clf = NeuralClassifier("cnn", epochs=1, batch_size=8, balance="sampler", flip=False)
    original = clf._prepare

    def spy(xb, augment, gen):
        seen.append(len(xb))
        return original(xb, augment, gen)

    clf._prepare = spy
    clf.fit(X[keep], y[keep])
    assert sum(seen) == 88
    # the sampler's draw is reproducible: recompute it and check its class balance
    counts = np.bincount(y[keep])
    p = torch.from_numpy(1.0 / counts[y[keep]])
    from labelwise.train.loop import epoch_seed

    draw = torch.multinomial(p, 88, replacement=True, generator=torch.Generator().manual_seed(epoch_seed(0, 1)))
    share = (y[keep][draw.numpy()] == 0).mean()
    assert 0.3 < share < 0.7  # without the sampler it would be 8/88 ≈ 0.09


def _folder(root, digits, classes=(0, 1, 2), per_class=12):
    images, target = digits
    for c in classes:
        for i in np.flatnonzero(target == c)[:per_class]:
            write_png(root / str(c) / f"{i}.png", images[i])
    return root


def test_kfold_out_of_fold_probabilities_cover_each_labeled_image_once(digits, tmp_path):
    root = _folder(tmp_path / "images", digits)
    write_png(root / "_unlabeled" / "u.png", digits[0][500])
    out = tmp_path / "run"
    result = train(root, out, folds=3, epochs=2, batch_size=16, flip=False)
    oof = pd.read_csv(out / "oof_probs.csv", dtype={"sample_id": str})
    table = pd.read_csv(out / "dataset.csv")
    assert len(oof) == 36 and oof["sample_id"].is_unique
    assert set(oof["sample_id"]) == set(table.loc[table["label"].notna(), "sample_id"])
    probs = oof[[f"prob_{c}" for c in ("0", "1", "2")]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(np.load(out / "oof_probs.npy"), probs, atol=1e-6)
    assert sorted(table["fold"].unique()) == [0, 1, 2]
    assert table.groupby("fold")["label"].value_counts().eq(4).all()  # stratified: 4 per class per fold
    for k in range(3):
        assert (out / f"fold-{k}" / "model.pt").is_file()
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 6 and set(metrics["fold"]) == {0, 1, 2}
    assert (out / "curves.png").stat().st_size > 0 and (out / "report.md").is_file()
    assert result.held_out["n"] == 36

    with pytest.raises(LabelwiseError, match="--resume needs the same settings.*epochs"):
        train(root, out, folds=3, epochs=3, batch_size=16, flip=False, resume=True)
    with pytest.raises(LabelwiseError, match="class '0' has 12 labeled images, fewer than --folds 20"):
        train(root, tmp_path / "x", folds=20, epochs=1)
    with pytest.raises(LabelwiseError, match="at least 8×8 px.*--size 4"):
        train(root, tmp_path / "x", folds=2, epochs=1, size=4)


def test_missing_images_named_by_a_labels_file_are_an_error(digits, tmp_path):
    root = _folder(tmp_path / "images", digits, per_class=4)
    rows = [(f"{c}/{p.name}", c) for c in ("0", "1", "2") for p in sorted((root / c).iterdir())]
    rows.append(("2/nope.png", "2"))
    labels = tmp_path / "labels.csv"
    pd.DataFrame(rows, columns=["file", "label"]).to_csv(labels, index=False)
    with pytest.raises(LabelwiseError, match=r"1 labeled image\(s\) do not exist \(first: .*nope.png\)"):
        train(labels, tmp_path / "run", read=ReadOptions(images=root), folds=2, epochs=1)
    result = train(labels, tmp_path / "run", read=ReadOptions(images=root), folds=2, epochs=1, skip_missing=True)
    assert result.n_train == 12


def test_predict_writes_the_ordered_file_in_natural_order(digits, tmp_path):
    root = _folder(tmp_path / "images", digits, classes=(0, 1), per_class=40)
    out = tmp_path / "run"
    train(root, out, folds=2, epochs=6, batch_size=16, flip=False)
    # test files 1.png … 12.png, unpadded: file i shows a 1 when i is odd, else a 0
    # (training images, so that the predictions are right and only the order is tested)
    images, target = digits
    zeros, ones = np.flatnonzero(target == 0), np.flatnonzero(target == 1)
    test = tmp_path / "test"
    for i in range(1, 13):
        write_png(test / f"{i}.png", images[(ones if i % 2 else zeros)[i]])
    preds = predict(out, test, tmp_path / "pred", ordered_txt=tmp_path / "pred" / "labels.txt")
    lines = (tmp_path / "pred" / "labels.txt").read_text().splitlines()
    assert len(lines) == 12
    assert lines == ["1" if i % 2 else "0" for i in range(1, 13)]
    table = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    assert list(table.columns[:4]) == ["sample_id", "path", "label", "confidence"]
    np.testing.assert_allclose(table[["prob_0", "prob_1"]].sum(axis=1), 1, atol=1e-5)
    assert (preds["confidence"] >= 0.5).all()
    majority = predict(out, test, vote="majority", tta=True)
    assert set(majority["confidence"]) <= {0.5, 1.0}


def test_majority_vote_breaks_ties_by_mean_probability():
    p = np.array([[[0.9, 0.1, 0.0]], [[0.0, 0.4, 0.6]]])  # one vote each for 0 and 2
    labels, confidence, mean = combine(p, "majority")
    assert labels[0] == 0 and confidence[0] == 0.5
    np.testing.assert_allclose(mean[0], [0.45, 0.25, 0.3])


def test_overfit_batch_reaches_near_zero_loss(digits, tmp_path):
    root = _folder(tmp_path / "images", digits, per_class=10)
    result = train(root, tmp_path / "run", overfit_batch=True, flip=False)
    assert result.overfit["passed"] and result.overfit["final_loss"] < 0.05
    assert pd.read_csv(tmp_path / "run" / "overfit.csv")["loss"].iloc[0] > 0.5


def test_linear_head_trains_on_cached_embeddings(digits, tmp_path):
    root = _folder(tmp_path / "images", digits, per_class=20)
    result = train(root, tmp_path / "run", model="linear", backbone="pixels", folds=2, cache_dir=tmp_path / "cache")
    assert result.held_out["accuracy"] > 0.9
    assert any((tmp_path / "cache").iterdir())
    preds = predict(tmp_path / "run", root, cache_dir=tmp_path / "cache")
    assert (preds["label"] == preds["given_label"]).mean() > 0.95


def test_pretrained_weights_load_from_a_local_file(digits, tmp_path):
    from torchvision.models import get_model

    weights = tmp_path / "resnet18.pth"
    reference = get_model("resnet18", weights=None)
    torch.save(reference.state_dict(), weights)
    clf = NeuralClassifier("resnet18", weights=weights, epochs=1, freeze=True, batch_size=8)
    X = np.repeat(_digits16(digits, per_class=4)[0][..., None], 3, axis=3)
    X = np.kron(X, np.ones((1, 2, 2, 1), np.uint8))  # 32×32 RGB
    clf.fit(X, np.arange(12) % 3)
    body = clf.module_.body.state_dict()
    for key, value in reference.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(body[key], value)  # frozen: still exactly the file's weights


def test_augmentation_flips_only_when_allowed():
    from labelwise.train.augment import Augment

    x = torch.zeros((64, 1, 8, 8), dtype=torch.uint8)
    x[..., :4] = 255  # left half white: a mirror image is right half white
    gen = torch.Generator().manual_seed(0)
    still = Augment("light", flip=False, max_shift=0.0, max_degrees=0.0)(x, gen)
    torch.testing.assert_close(still, x.float() / 255)
    flipped = Augment("light", flip=True, max_shift=0.0, max_degrees=0.0)(x, gen)
    mirrored = (flipped[..., 4:].mean((1, 2, 3)) > 0.9).sum().item()
    assert 16 < mirrored < 48  # about half
    moved = Augment("light", flip=False)(x, gen)
    assert not torch.equal(moved, still) and moved.shape == x.shape
    strong = Augment("strong", flip=False)(torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8), gen)
    assert strong.shape == (8, 3, 16, 16) and 0 <= strong.min() and strong.max() <= 1
    with pytest.raises(LabelwiseError, match="unknown augmentation 'wild'"):
        Augment("wild")


@pytest.mark.parametrize("name", ["constant", "step", "cosine", "warmup-cosine", "onecycle"])
def test_learning_rate_schedules_have_their_shape(name):
    from labelwise.networks.optim import make_optimizer, make_schedule

    p = [torch.nn.Parameter(torch.zeros(2, 2))]
    opt = make_optimizer(p, "sgd", lr=0.1, weight_decay=0.0)
    sched = make_schedule(opt, name, epochs=10, steps_per_epoch=5, lr=0.1, step_size=4, gamma=0.5, warmup_epochs=2)
    lrs = []
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs = np.array(lrs)
    if name == "constant":
        assert np.allclose(lrs, 0.1)
    elif name == "step":
        assert np.allclose(lrs[:20], 0.1) and np.allclose(lrs[20:40], 0.05) and np.allclose(lrs[40:], 0.025)
    else:
        peak = lrs.argmax()
        assert lrs[peak] == pytest.approx(0.1, rel=1e-3)
        assert lrs[-1] < 0.01  # annealed
        expected_peak = {"cosine": 0, "warmup-cosine": 10, "onecycle": 15}[name]
        assert abs(peak - expected_peak) <= 1


def test_sample_weights_silence_rows_and_unit_weights_change_nothing(digits):
    images, target = digits
    keep = target < 3
    X = images[keep].reshape(keep.sum(), -1).astype(np.float32) / 255
    y = target[keep]
    wrong = np.flatnonzero(y == 0)[::2]  # half of class 0 labeled 1
    noisy = y.copy()
    noisy[wrong] = 1
    kw = dict(epochs=15, batch_size=32, random_state=0)
    plain = NeuralClassifier("linear", **kw).fit(X, noisy)
    ones = NeuralClassifier("linear", **kw).fit(X, noisy, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), atol=1e-4)
    w = np.ones(len(y))
    w[wrong] = 0.0
    weighted = NeuralClassifier("linear", **kw).fit(X, noisy, sample_weight=w)
    # Without the wrong rows' loss, class 0 is learned again; with it, half of class 0 is called 1.
    recovered = (weighted.predict(X[wrong]) == 0).mean()
    assert recovered > 0.95 and recovered > (plain.predict(X[wrong]) == 0).mean() + 0.15
    with pytest.raises(LabelwiseError, match="non-negative"):
        NeuralClassifier("linear", **kw).fit(X, noisy, sample_weight=-w)


def test_train_weight_col_reads_a_numeric_column_and_names_a_bad_row(digits, tmp_path):
    root = _folder(tmp_path / "images", digits, per_class=10)
    # pseudolabel's output shape: a labelwise table, whose extra columns are kept
    rows = [(f"{c}/{p.name}", str(p), c, 0.5) for c in ("0", "1", "2") for p in sorted((root / c).iterdir())]
    columns = ["sample_id", "path", "label", "confidence"]
    labels = tmp_path / "pseudo_labels.csv"
    pd.DataFrame(rows, columns=columns).to_csv(labels, index=False)
    result = train(
        labels,
        tmp_path / "run",
        model="linear",
        folds=2,
        epochs=3,
        weight_col="confidence",
        cache_dir=tmp_path / "cache",
    )
    assert result.n_train == 30
    bad = pd.DataFrame(rows, columns=columns).astype({"confidence": object})
    bad.loc[4, "confidence"] = "high"
    bad.to_csv(labels, index=False)
    with pytest.raises(LabelwiseError, match=r"confidence of .* is 'high', not a number"):
        train(labels, tmp_path / "run2", model="linear", folds=2, epochs=1, weight_col="confidence")
    with pytest.raises(LabelwiseError, match="no column 'weight'"):
        train(labels, tmp_path / "run2", model="linear", folds=2, epochs=1, weight_col="weight")
