"""Near-duplicate groups used downstream: split keeps them together, train warns of a leaking
held-out split, clean --drop removes audit findings, query and pseudolabel ask once per picture.

The images: 32×32 colour pictures made from the digits (each over its own texture), with planted
near-duplicate copies made by Pillow: mirrored, re-encoded as JPEG, cropped by 2 px, brightened ×1.1.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance, ImageOps
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import labelwise
from labelwise.cli.app import app
from labelwise.data.splitting import split_table
from labelwise.errors import LabelwiseError

runner = CliRunner()
N_BASE = 200


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


COPIES = {
    "mirror": ImageOps.mirror,
    "jpeg": _jpeg,
    "crop": lambda im: im.crop((2, 2, 30, 30)),
    "bright": lambda im: ImageEnhance.Brightness(im).enhance(1.1),
}


def _pictures(n: int, seed: int = 1) -> list[Image.Image]:
    digits = load_digits()
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        digit = Image.fromarray((digits.images[k] * 16).clip(0, 255).astype(np.uint8)).resize((32, 32))
        texture = Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).resize((32, 32))
        pixels = 0.5 * np.asarray(texture, float) + 0.5 * np.asarray(digit, float)[..., None] * rng.uniform(0.4, 1, 3)
        out.append(Image.fromarray(np.clip(pixels + rng.normal(0, 5, pixels.shape), 0, 255).astype(np.uint8)))
    return out


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """200 labeled pictures (train, digit labels) and 8 copies: ``copies`` maps copy → source."""
    folder = tmp_path_factory.mktemp("downstream")
    digits = load_digits()
    base = _pictures(N_BASE)
    rows = []
    for k, image in enumerate(base):
        image.save(folder / f"p{k:03d}.png")
        rows.append((f"p{k:03d}.png", str(digits.target[k]), "train"))
    copies = {}
    for c, (kind, make) in enumerate(list(COPIES.items()) * 2):
        source = 10 + 23 * c
        name = f"copy_{kind}_{source:03d}.png"
        make(base[source]).save(folder / name)
        copies[name] = f"p{source:03d}.png"
        rows.append((name, str(digits.target[source]), "train"))
    table = pd.DataFrame(rows, columns=["path", "label", "split"])
    table.to_csv(folder / "dataset.csv", index=False)
    return folder, table, copies


def _csv(pool, name, table):
    path = pool[0] / name
    table.to_csv(path, index=False)
    return path


def _separated(table: pd.DataFrame, copies: dict[str, str]) -> list[str]:
    t = table.set_index("sample_id")
    return [c for c, s in copies.items() if tuple(t.loc[c, ["split", "fold"]]) != tuple(t.loc[s, ["split", "fold"]])]


def test_split_keeps_each_planted_copy_with_its_source_and_stays_stratified(pool, tmp_path, caplog):
    folder, table, copies = pool
    caplog.set_level(logging.INFO, logger="labelwise")
    for seed in (0, 1):
        ds = labelwise.split(
            folder / "dataset.csv", tmp_path / f"s{seed}.csv", valid_pct=0.25, folds=3, random_state=seed
        )
        assert _separated(ds.table, copies) == []
        valid = ds.table[ds.table["split"] == "valid"]
        assert abs(len(valid) - 0.25 * len(ds.table)) <= 4
        per_class = valid["label"].value_counts()
        assert per_class.min() >= 3 and per_class.max() <= 8  # ~5 of each digit's ~21
    assert "split: 8 near-duplicate group(s) (16 images) kept together" in caplog.text
    plain = labelwise.split(
        folder / "dataset.csv", tmp_path / "plain.csv", valid_pct=0.25, folds=3, near_duplicates=False
    )
    assert len(_separated(plain.table, copies)) >= 4  # the data would split the pairs without the groups


def test_split_warns_of_a_leak_in_the_given_test_split_naming_both_images(pool, tmp_path, caplog):
    _, table, copies = pool
    given = table.copy()
    leaked = "copy_jpeg_033.png"
    given.loc[given["path"] == leaked, "split"] = "test"
    ds = labelwise.split(_csv(pool, "leaky.csv", given), tmp_path / "s.csv", folds=2)
    assert ds.table.set_index("sample_id").loc[leaked, "split"] == "test"  # a given test split is kept
    assert "split leaks: 1 near-duplicate group(s)" in caplog.text
    assert f"{copies[leaked]} ~ {leaked}" in caplog.text


def test_group_aware_split_table_equals_the_plain_one_without_groups_and_never_divides_a_group():
    rng = np.random.default_rng(0)
    n = 300
    t = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "label": rng.integers(0, 4, n).astype(str)})
    plain = split_table(t, valid_pct=0.2, folds=4, random_state=3)
    assert plain.equals(split_table(t, valid_pct=0.2, folds=4, random_state=3, groups=np.full(n, -1)))
    groups = np.full(n, -1)
    groups[rng.permutation(n)[:120]] = np.repeat(np.arange(40), 3)  # 40 groups of 3, mixed labels
    out = split_table(t, valid_pct=0.2, folds=4, random_state=3, groups=groups)
    member = out[groups >= 0].assign(g=groups[groups >= 0])
    assert (member.groupby("g")[["split", "fold"]].nunique() == 1).all().all()
    assert out["split"].eq("valid").sum() == pytest.approx(60, abs=10)
    assert set(out.loc[out["split"] == "train", "fold"]) == {0, 1, 2, 3}
    tiny = pd.DataFrame({"sample_id": list("abcdef"), "label": ["x", "y"] * 3})
    assert split_table(tiny, valid_pct=0.2, folds=2, groups=np.full(6, -1))["split"].eq("valid").sum() == 2
    with pytest.raises(LabelwiseError, match="one id per row"):
        split_table(tiny, groups=np.zeros(5))


def _audit(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": [r[0] for r in rows],
            "path": [r[0] for r in rows],
            "issue": [r[1] for r in rows],
            "score": 0.99,
            "threshold": 0.95,
            "related_sample_id": None,
            "group": [r[2] for r in rows],
        }
    )


def test_split_takes_groups_from_an_audit_table_without_measuring(pool, tmp_path, monkeypatch):
    folder, _, _ = pool
    together = [f"p{k:03d}.png" for k in (1, 2, 3, 4, 5, 6)]  # unrelated pictures, one group in the audit
    audit = _audit([(s, "near_duplicate", 0) for s in together] + [("p007.png", "dark", -1)])
    audit.to_csv(tmp_path / "audit.csv", index=False)

    def never(*args, **kwargs):
        raise AssertionError("measured the images although an audit was given")

    monkeypatch.setattr("labelwise.data.near_duplicates.near_duplicate_groups", never)
    for seed in range(3):
        csv = folder / "dataset.csv"
        t = labelwise.split(csv, tmp_path / f"s{seed}.csv", audit=tmp_path / "audit.csv", random_state=seed)
        chosen = t.table[t.table["sample_id"].isin(together)]
        assert chosen[["split", "fold"]].drop_duplicates().shape[0] == 1
    out = runner.invoke(
        app,
        ["split", str(folder / "dataset.csv"), "--out", str(tmp_path / "c.csv"), "--audit", str(tmp_path / "nope.csv")],
    )
    assert out.exit_code == 2 and "nope.csv: audit file not found" in out.output and "Traceback" not in out.output
    audit.assign(group="x").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(LabelwiseError, match=r"bad\.csv: row 2 \(p001\.png\): group 'x' is not a whole number"):
        labelwise.split(folder / "dataset.csv", tmp_path / "s.csv", audit=tmp_path / "bad.csv")
    audit.drop(columns="issue").to_csv(tmp_path / "noissue.csv", index=False)
    with pytest.raises(LabelwiseError, match=r"noissue\.csv: not an audit table, no column issue"):
        labelwise.split(folder / "dataset.csv", tmp_path / "s.csv", audit=tmp_path / "noissue.csv")


def test_train_warns_when_its_valid_split_leaks_and_can_skip_the_check(pool, tmp_path, caplog):
    _, table, copies = pool
    given = table.copy()
    given["split"] = np.where(np.arange(len(given)) % 4 == 0, "valid", "train")
    given.loc[given["path"].isin(list(copies)), "split"] = "valid"
    given.loc[given["path"].isin(list(copies.values())), "split"] = "train"  # all 8 pairs leak
    csv = _csv(pool, "valid_leak.csv", given)
    args = ["train", str(csv), "--out", str(tmp_path / "a"), "--model", "linear", "--folds", "1"]
    args += ["--backbone", "pixels", "--cache-dir", str(tmp_path / "c"), "--no-html"]
    assert runner.invoke(app, args).exit_code == 0
    assert (
        "held-out split leaks: 8 near-duplicate group(s) span train and valid (e.g. p010.png ~ copy_mirror_010.png)"
        in caplog.text
    )
    caplog.clear()
    args[args.index(str(tmp_path / "a"))] = str(tmp_path / "b")
    assert runner.invoke(app, [*args, "--no-leak-check"]).exit_code == 0
    assert "leaks" not in caplog.text


def test_clean_drop_keeps_the_first_labeled_image_of_each_group_and_names_bad_input(pool, tmp_path):
    folder, table, _ = pool
    given = table.copy()
    given.loc[given["path"] == "p000.png", "label"] = None  # first in table order, but unlabeled
    csv = _csv(pool, "clean.csv", given)
    audit = _audit(
        [("p000.png", "near_duplicate", 0), ("p002.png", "near_duplicate", 0), ("p001.png", "near_duplicate", 0)]
        + [("p010.png", "leak", 1), ("copy_mirror_010.png", "leak", 1), ("p050.png", "outlier", -1)]
        + [("p060.png", "dark", -1)]
    )
    audit.to_csv(tmp_path / "audit.csv", index=False)
    out = runner.invoke(
        app,
        [
            "clean",
            str(csv),
            "--drop",
            str(tmp_path / "audit.csv"),
            "--issues",
            "near_duplicate,leak,outlier",
            "--out",
            str(tmp_path / "c.csv"),
        ],
    )
    assert out.exit_code == 0, out.output
    kept = set(pd.read_csv(tmp_path / "c.csv")["sample_id"])
    assert "p001.png" in kept and not {"p000.png", "p002.png"} & kept  # the first labeled member stays
    assert "p010.png" in kept and "copy_mirror_010.png" not in kept
    assert "p050.png" not in kept and "p060.png" in kept  # dark was not chosen
    assert len(kept) == len(table) - 4
    bad = runner.invoke(
        app,
        [
            "clean",
            str(csv),
            "--drop",
            str(tmp_path / "audit.csv"),
            "--issues",
            "darkness",
            "--out",
            str(tmp_path / "d.csv"),
        ],
    )
    assert bad.exit_code == 2 and "unknown audit issue(s) 'darkness'; choose from: near_duplicate" in bad.output
    assert len([line for line in bad.output.splitlines() if line.strip()]) == 1
    missing = runner.invoke(
        app, ["clean", str(csv), "--drop", str(tmp_path / "none.csv"), "--out", str(tmp_path / "e.csv")]
    )
    assert missing.exit_code == 2 and "none.csv: audit file not found" in missing.output


def test_query_never_picks_two_images_of_one_picture(pool, tmp_path, caplog):
    _, table, copies = pool
    caplog.set_level(logging.INFO, logger="labelwise")
    given = table.copy()
    given.loc[given["path"].isin(list(copies) + list(copies.values())), "label"] = None  # 8 pairs
    given.loc[given["path"].isin([f"p{k:03d}.png" for k in range(8)]), "label"] = None  # 8 single pictures
    csv = _csv(pool, "query.csv", given)
    options = {"n": 16, "strategy": "random", "model": "logreg", "backbone": "pixels", "cache_dir": tmp_path / "c"}
    plain = set(labelwise.query(csv, tmp_path / "a", near_duplicates=False, **options).table["sample_id"])
    assert sum(c in plain and s in plain for c, s in copies.items()) >= 2
    asked = labelwise.query(csv, tmp_path / "b", **options)
    picked = set(asked.table["sample_id"])
    # 16 distinct pictures are left: one image of each pair and every single one
    assert len(picked) == 16 and all((c in picked) != (s in picked) for c, s in copies.items())
    assert 1 <= asked.figures["n_skipped_near_duplicates"] <= 8 and "near-duplicate(s)" in caplog.text
    given.loc[given["path"] == "p010.png", "label"] = "0"  # a labeled source: its copy is never asked
    labeled = labelwise.query(_csv(pool, "query2.csv", given), tmp_path / "d", **{**options, "n": 15})
    assert "copy_mirror_010.png" not in set(labeled.table["sample_id"])


def test_pseudolabel_never_asks_twice_about_one_picture(pool, tmp_path, caplog):
    _, table, copies = pool
    caplog.set_level(logging.INFO, logger="labelwise")
    given = table.copy()
    sources = list(copies.values())
    given.loc[given["path"].isin(list(copies) + sources[:4]), "label"] = None  # 4 pairs unlabeled
    given.loc[given.index[~given["path"].isin(list(copies) + sources)][:120], "label"] = None
    csv = _csv(pool, "pseudo.csv", given)
    options = {"backbone": "pixels", "cache_dir": tmp_path / "c", "threshold": 1.0, "estimate": False}
    options.update(votes=False, map_points=0, html=False)
    plain = labelwise.pseudolabel(csv, tmp_path / "a", near_duplicates=False, **options)
    problematic = set(plain.table.loc[plain.table["problematic"], "sample_id"])
    assert set(copies) <= problematic  # threshold 1: every unlabeled image is problematic
    found = labelwise.pseudolabel(csv, tmp_path / "b", **options)
    rows = found.table.set_index("sample_id")
    asked = set(rows.index[rows["problematic"]])
    for copy, source in copies.items():
        assert not (copy in asked and source in asked), copy
    for copy in list(copies)[4:]:  # their sources are labeled
        assert copy not in asked and f"near-duplicate of {copies[copy]} (labeled)" in rows.loc[copy, "why"]
    assert found.figures["n_skipped_near_duplicates"] == 8 == len(problematic) - len(asked)
    assert "pseudolabel: 8 problematic image(s) not asked" in caplog.text
    tasks = pd.read_csv(tmp_path / "b" / "problematic.csv")
    assert set(tasks["sample_id"]) == asked
    budget = labelwise.pseudolabel(csv, tmp_path / "d", budget=len(asked) - 2, **options)
    assert budget.figures["n_problematic"] == len(asked) - 2  # the budget is filled with distinct pictures
