"""labelwise.audit on small colour images made from the digits, with planted findings."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from sklearn.datasets import load_digits

import labelwise
from labelwise.audit import CHECKS, AuditInputs
from labelwise.data.image_quality import QUALITY_COLUMNS, measure_image
from labelwise.data.measuring import Measurements, measure_images
from labelwise.data.near_duplicates import (
    candidate_pairs,
    find_near_duplicates,
    group_pairs,
    match_score,
    verify_pairs,
)

CLASSES = [str(d) for d in range(10)]


def _photos(n: int, seed: int = 0) -> list[Image.Image]:
    """Colour 32×32 images, each a digit over its own tinted texture: distinct, photo-like enough."""
    digits = load_digits()
    rng = np.random.default_rng(seed)
    images = []
    for k in range(n):
        digit = digits.images[k % len(digits.images)] / 16.0
        big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((32, 32), Image.Resampling.BILINEAR))
        texture = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8))
        background = np.asarray(texture.resize((32, 32), Image.Resampling.NEAREST), dtype=np.float64)
        tint = rng.uniform(0.3, 1.0, size=3)
        pixels = 0.55 * background + 0.45 * big[..., None] * tint + rng.normal(0, 6, (32, 32, 3))
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return images


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    return Image.open(io.BytesIO(buffer.getvalue()))


COPIES = {
    "mirror": ImageOps.mirror,
    "jpeg": _jpeg,
    "crop": lambda im: im.crop((2, 1, 30, 31)),
    "brightness": lambda im: ImageEnhance.Brightness(im).enhance(1.1),
    "resize": lambda im: im.resize((35, 35), Image.Resampling.BILINEAR),
}
PLANTED = {
    "dark": lambda im: ImageEnhance.Brightness(im).enhance(0.15),
    "light": lambda im: Image.blend(im, Image.new("RGB", im.size, "white"), 0.75),
    "blurry": lambda im: im.filter(ImageFilter.GaussianBlur(2.5)),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
    "low_information": lambda im: Image.new("RGB", im.size, (90, 140, 60)),
}


def _write(folder, images, labels, splits, names):
    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names, strict=True):
        image.save(folder / name)
    table = pd.DataFrame({"path": names, "label": labels, "split": splits})
    table.to_csv(folder / "dataset.csv", index=False)
    return folder / "dataset.csv"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """300 clean images (train), five near-duplicate copies, one leak into test, and one image of each
    quality issue; returns the dataset CSV and what was planted."""
    folder = tmp_path_factory.mktemp("audit") / "images"
    base = _photos(300)
    images, names = list(base), [f"b{k:03d}.png" for k in range(300)]
    labels = [CLASSES[k % 10] for k in range(300)]
    splits = ["train"] * 300
    truth = {}
    for k, (kind, make) in enumerate(COPIES.items()):
        images.append(make(base[k]))
        names.append(f"copy_{kind}.{'jpg' if kind == 'jpeg' else 'png'}")
        labels.append(labels[k])
        splits.append("train")
        truth[names[-1]] = ("near_duplicate", names[k])
    images.append(ImageOps.mirror(base[10]))
    names.append("leak.png")
    labels.append(labels[10])
    splits.append("test")
    truth["leak.png"] = ("leak", names[10])
    images.append(_jpeg(base[11]))
    names.append("conflict.jpg")
    labels.append(CLASSES[(11 + 1) % 10])
    splits.append("train")
    truth["conflict.jpg"] = ("conflict", names[11])
    for k, (issue, make) in enumerate(PLANTED.items()):
        images.append(make(base[50 + k]))
        names.append(f"{issue}.png")
        labels.append(labels[50 + k])
        splits.append("train")
        truth[names[-1]] = (issue, None)
    csv = _write(folder, images, labels, splits, names)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    table = pd.read_csv(csv)
    pd.concat([table, pd.DataFrame({"path": ["broken.png"], "label": ["0"], "split": ["train"]})]).to_csv(
        csv, index=False
    )
    return csv, truth


@pytest.fixture(scope="module")
def audited(planted, tmp_path_factory):
    csv, truth = planted
    out = tmp_path_factory.mktemp("audit-out")
    return labelwise.audit(csv, out, backbone="pixels", cache_dir=False), truth


def _found(result, issue):
    rows = result.findings[result.findings["issue"] == issue]
    return dict(zip(rows["sample_id"], rows["related_sample_id"], strict=True))


def test_every_planted_near_duplicate_is_found_with_its_source(audited):
    result, truth = audited
    found = _found(result, "near_duplicate")
    for name, (issue, source) in truth.items():
        if issue in ("near_duplicate", "leak", "conflict"):
            assert found.get(name) == source and found.get(source) == name, name
    # A darkened, blurred or gray copy is the same picture too; nothing else may be linked.
    derived = {f"{issue}.png" for issue in PLANTED} | {f"b{50 + k:03d}.png" for k in range(len(PLANTED))}
    assert set(found) <= {n for n, (_, s) in truth.items() if s} | {s for _, s in truth.values() if s} | derived


def test_a_leak_is_reported_first_with_both_sample_ids(audited):
    result, _ = audited
    leaks = result.findings[result.findings["issue"] == "leak"]
    assert set(leaks["sample_id"]) == {"leak.png", "b010.png"}
    assert set(leaks["related_sample_id"]) == {"leak.png", "b010.png"}
    assert result.findings["issue"].iloc[0] == "leak" and "span splits" in result.warnings[0]


def test_a_near_duplicate_with_another_label_is_a_conflict(audited):
    result, _ = audited
    assert set(_found(result, "conflict")) == {"conflict.jpg", "b011.png"}


def test_each_quality_issue_is_found_and_the_clean_images_are_not(audited):
    result, truth = audited
    for issue in PLANTED:
        assert f"{issue}.png" in _found(result, issue), issue
    quality = result.findings[result.findings["issue"].isin(PLANTED)]
    clean = quality[quality["sample_id"].str.startswith("b")]
    assert len(clean) <= 3, clean  # a false-positive rate of at most 1% of the 300 clean images
    low = result.findings[result.findings["sample_id"] == "low_information.png"]["issue"]
    assert set(low) == {"low_information"}  # not also dark, light, blurry or an outlier


def test_an_unreadable_image_goes_to_problems_and_the_outputs_are_written(audited):
    result, _ = audited
    problems = pd.read_csv(result.paths["problems"])
    assert problems["path"].str.endswith("broken.png").tolist() == [True] and result.n_problems == 1
    summary = pd.read_csv(result.paths["summary"])
    assert summary.set_index("issue")["findings"].to_dict() == result.counts()
    scores = pd.read_csv(result.paths["scores"])
    assert len(scores) == result.n_images == 312 and set(CHECKS.names()) <= set(scores.columns)
    html = result.paths["report_html"].read_text()
    assert "near duplicate" in html and html.count("data:image/png;base64") >= 4


def test_images_unlike_the_others_are_outliers(tmp_path):
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::4] = 255
    checks = (np.indices((32, 32)).sum(axis=0) // 4 % 2 * 255).astype(np.uint8)
    images = _photos(200) + [Image.fromarray(stripes), Image.fromarray(checks).convert("RGB")]
    names = [f"p{k:03d}.png" for k in range(200)] + ["stripes.png", "checks.png"]
    csv = _write(tmp_path / "images", images, [CLASSES[k % 10] for k in range(202)], ["train"] * 202, names)
    result = labelwise.audit(csv, tmp_path / "out", backbone="pixels", cache_dir=False, checks=["outlier"])
    assert {"stripes.png", "checks.png"} <= set(_found(result, "outlier"))
    assert len(_found(result, "outlier")) <= 4


def test_thresholds_and_checks_are_options_and_bad_ones_are_one_line_errors(planted, tmp_path):
    csv, _ = planted
    result = labelwise.audit(csv, tmp_path / "a", checks=["dark"], thresholds={"dark": 0.99}, backbone="none")
    assert result.findings.empty and list(result.summary_table["issue"]) == ["dark"]
    with pytest.raises(labelwise.LabelwiseError, match=r"unknown audit check\(s\) 'darkness'"):
        labelwise.audit(csv, tmp_path / "b", checks=["darkness"])
    with pytest.raises(labelwise.LabelwiseError, match="thresholds"):
        labelwise.audit(csv, tmp_path / "c", thresholds={"blur": 0.5})


def test_explore_measures_once_and_the_audit_reads_its_measurements(planted, tmp_path):
    csv, _ = planted
    summary = labelwise.explore(csv, tmp_path / "explore", per_class=0, backbone="none")
    audit = pd.read_csv(summary.paths["audit"])
    assert {"leak", "near_duplicate", "dark"} <= set(audit["issue"])
    images = pd.read_csv(summary.paths["images"])
    assert {"brightness", "sharpness", "colorfulness"} <= set(images.columns)
    skipped = labelwise.explore(csv, tmp_path / "plain", per_class=0, audit=False)
    assert "audit" not in skipped.paths and not (tmp_path / "plain" / "audit").exists()


def test_measurements_of_another_version_are_measured_again_not_misread(planted, tmp_path, caplog):
    csv, _ = planted
    paths = pd.read_csv(csv)["path"].map(lambda p: str(csv.parent / p)).tolist()
    folder = tmp_path / "measures"
    measure_images(paths, folder=folder)
    assert Measurements.current(folder) and "key" in Measurements.load(folder).table
    # As an older labelwise left it: no ``key``, no version file.
    stats = pd.read_csv(folder / "statistics.csv").drop(columns="key")
    stats.to_csv(folder / "statistics.csv", index=False)
    (folder / "version.json").unlink()
    assert Measurements.exists(folder) and not Measurements.current(folder)
    with pytest.raises(labelwise.LabelwiseError, match="measure again"):
        Measurements.load(folder)
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        result = labelwise.audit(csv, tmp_path / "out", checks=["dark"], backbone="none", measures=folder)
    assert "another labelwise version" in caplog.text
    assert "dark.png" in _found(result, "dark")


def test_dark_sees_gamma_darkened_photos_but_not_a_bright_figure_on_black():
    photos = _photos(40, seed=3)
    gamma = [Image.fromarray(np.rint(255 * (np.asarray(p) / 255.0) ** 4).astype(np.uint8)) for p in photos]
    digits = load_digits().images[:40] * (255 / 16)
    figures = [Image.fromarray(d.astype(np.uint8)).resize((32, 32), Image.Resampling.BILINEAR) for d in digits]
    check = CHECKS.get("dark")

    def flagged(images):
        table = pd.DataFrame([measure_image(im).statistics() for im in images], columns=list(QUALITY_COLUMNS))
        return check.score(AuditInputs(table)) >= check.threshold

    assert flagged(gamma).all()
    assert not flagged(photos).any() and not flagged(figures).any()


def test_match_score_sees_through_copies_but_not_between_different_images():
    a, b = _photos(2, seed=5)
    size = np.array([32.0, 32.0])

    def thumb(im):
        return np.asarray(im.convert("L"))

    for kind, make in COPIES.items():
        copy = make(a)
        assert match_score(thumb(a), size, thumb(copy), np.array(copy.size[::-1], float)) > 0.95, kind
    assert match_score(thumb(a), size, thumb(b), size) < 0.9


def test_batched_verification_scores_each_pair_as_alone_and_the_coarse_pass_drops_no_match(tmp_path):
    base = _photos(60, seed=7)
    images = base + [make(base[k]) for k, make in enumerate(COPIES.values())]
    images += [base[20 + k].resize((28 + 2 * k, 36 - k), Image.Resampling.BILINEAR) for k in range(6)]
    paths = []
    for k, image in enumerate(images):
        paths.append(str(tmp_path / f"{k}.png"))
        image.save(paths[-1])
    m = measure_images(paths)
    pairs = candidate_pairs(m)
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    sizes = m.table[["height", "width"]].to_numpy(dtype=np.float64)
    alone = [match_score(m.thumbnail(a), sizes[a], m.thumbnail(b), sizes[b]) for a, b in zip(i, j, strict=True)]
    batched = verify_pairs(m, i, j)
    assert len(set(map(tuple, m.thumbnail_shapes[np.r_[i, j]]))) > 6  # batches that pad
    np.testing.assert_allclose(batched, alone, atol=1e-4)
    coarse = verify_pairs(m, i, j, at_least=0.95)
    assert ((coarse >= 0.95) == (batched >= 0.95)).all() and (batched >= 0.95).sum() >= len(COPIES) + 6
    assert (np.abs(coarse - batched) > 1e-4).mean() > 0.5  # most pairs were settled at half resolution


def test_group_pairs_joins_chains_and_numbers_groups_by_first_member():
    pairs = pd.DataFrame({"i": [4, 0, 1], "j": [5, 1, 2]})
    assert group_pairs(7, pairs).tolist() == [0, 0, 0, -1, 1, 1, -1]


def test_tiny_images_need_an_almost_exact_match(tmp_path):
    digits = load_digits()
    paths = []
    for k in range(300):
        path = tmp_path / f"d{k}.png"
        Image.fromarray((digits.images[k] * 15).astype(np.uint8)).save(path)
        paths.append(str(path))
    found = find_near_duplicates(measure_images(paths))
    assert found.n_groups <= 3  # 8×8 digits of one class correlate at 0.95, yet they are not copies


def test_streaming_memory_does_not_grow_with_the_number_of_images(tmp_path):
    script = textwrap.dedent(
        """
        import resource, sys
        import numpy as np
        from PIL import Image
        from labelwise.data.measuring import measure_images
        n, folder = int(sys.argv[1]), sys.argv[2]
        rng = np.random.default_rng(0)
        tile = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(tile).save(folder + "/x.png")
        measure_images([folder + "/x.png"] * 50, folder=folder + "/warm")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        measure_images([folder + "/x.png"] * n, folder=folder + "/m")
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    grown = []
    for n in (500, 4000):
        folder = tmp_path / str(n)
        folder.mkdir()
        run = subprocess.run([sys.executable, "-c", script, str(n), str(folder)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        grown.append(int(run.stdout.split()[-1]))  # KiB
    # 3,500 more images would hold 14 MB of thumbnails in memory; on disk they cost none.
    assert grown[1] - grown[0] < 6_000, grown


def test_split_keeps_near_duplicates_together_and_warns_of_a_given_leak(planted, tmp_path, caplog):
    csv, truth = planted
    ds = labelwise.split(csv, tmp_path / "split.csv", valid_pct=0.3, folds=3)
    table = ds.table.set_index("sample_id")
    for name, (issue, source) in truth.items():
        if issue in ("near_duplicate", "conflict"):
            assert table.loc[name, "split"] == table.loc[source, "split"], name
            assert table.loc[name, "fold"] == table.loc[source, "fold"], name
    assert "split leaks: 1 near-duplicate group(s)" in caplog.text and "leak.png" in caplog.text
    assert set(table["split"]) == {"train", "valid", "test"}
    valid_share = (table["split"] == "valid").sum() / (table["split"] != "test").sum()
    assert 0.2 < valid_share < 0.4  # still about the share asked for


def test_clean_drops_the_audit_findings_and_keeps_one_image_of_each_group(planted, audited, tmp_path):
    csv, truth = planted
    result, _ = audited
    cleaned = labelwise.clean(
        csv, None, tmp_path / "clean.csv", drop=result.paths["audit"], drop_issues=["near_duplicate", "dark"]
    )
    kept = set(cleaned.table["sample_id"])
    for name, (issue, source) in truth.items():
        if issue == "near_duplicate":
            assert (name in kept) != (source in kept), name  # exactly one of the pair stays
    assert "dark.png" not in kept
    chosen = result.findings[result.findings["issue"].isin(["near_duplicate", "dark"])]
    untouched = set(pd.read_csv(csv)["path"]) - set(chosen["sample_id"]) - {"broken.png"}
    assert (
        untouched <= kept and len(kept) == len(untouched) + chosen.query("issue == 'near_duplicate'")["group"].nunique()
    )
    with pytest.raises(labelwise.LabelwiseError, match=r"unknown audit issue\(s\) 'darkness'"):
        labelwise.clean(csv, None, tmp_path / "c2.csv", drop=result.paths["audit"], drop_issues=["darkness"])
    with pytest.raises(labelwise.LabelwiseError, match="not an audit table"):
        labelwise.clean(csv, None, tmp_path / "c3.csv", drop=result.paths["summary"])


def test_train_warns_when_its_held_out_split_leaks(planted, tmp_path, caplog):
    csv, _ = planted
    table = pd.read_csv(csv)
    table = table[table["path"] != "broken.png"]
    table.to_csv(csv.parent / "usable.csv", index=False)
    from labelwise.train.kfold import train  # `labelwise.train` is the package once it is imported

    train(csv.parent / "usable.csv", tmp_path / "a", model="linear", folds=2, cache_dir=tmp_path / "c")
    assert "held-out split leaks: 1 near-duplicate group(s)" in caplog.text and "b010.png ~ leak.png" in caplog.text
    caplog.clear()
    train(
        csv.parent / "usable.csv", tmp_path / "b", model="linear", folds=2, cache_dir=tmp_path / "c", check_leaks=False
    )
    assert "leaks" not in caplog.text


def test_query_never_asks_twice_about_one_picture(planted, tmp_path):
    csv, truth = planted
    table = pd.read_csv(csv)
    table = table[table["path"] != "broken.png"].copy()
    copies = {name: source for name, (issue, source) in truth.items() if issue == "near_duplicate"}
    table.loc[table["path"].isin(list(copies) + list(copies.values())), "label"] = None  # both unlabeled
    table.loc[table["path"] == "b011.png", "label"] = None  # conflict.jpg's source: its copy is labeled
    table.to_csv(csv.parent / "pool.csv", index=False)
    kwargs = {"n": 11, "strategy": "random", "model": "logreg", "backbone": "pixels", "cache_dir": tmp_path / "c"}
    plain = labelwise.query(csv.parent / "pool.csv", tmp_path / "a", near_duplicates=False, **kwargs)
    asked = labelwise.query(csv.parent / "pool.csv", tmp_path / "b", **kwargs)
    assert set(plain.table["sample_id"]) >= {"b011.png"}  # every unlabeled image, when nothing is skipped
    picked = set(asked.table["sample_id"])
    assert "b011.png" not in picked and asked.figures["n_skipped_near_duplicates"] >= 1
    assert all(not (name in picked and source in picked) for name, source in copies.items())
