"""Nothing a user has is lost, mixed up or silently mangled: one test per finding of issue 14."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_png
from PIL import Image
from typer.testing import CliRunner

from labelwise import LabelwiseError, load_dataset
from labelwise._records import read_record
from labelwise._run import command_run
from labelwise.data import read_csv_labels, read_ordered_labels
from labelwise.data.images import open_image, set_max_pixels
from labelwise.data.pixels import load_square

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(*args: object):
    return runner.invoke(
        __import__("labelwise.cli.app", fromlist=["app"]).app, [str(a) for a in args], catch_exceptions=False
    )


def one_line(result) -> str:
    """The error of a refused command: exit status 2, no traceback, one ``error:`` line (warnings may precede it)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def table(tmp_path, image_folder):
    """A labelwise table ``d/dataset.csv`` (+ classes.json) with a user column of its own."""
    from labelwise.data import split

    d = tmp_path / "d"
    split(image_folder, d / "dataset.csv", folds=0, valid_pct=0.0)
    frame = pd.read_csv(d / "dataset.csv")
    frame["note"] = "mine"
    frame.to_csv(d / "dataset.csv", index=False)
    return d / "dataset.csv"


def _python(code: str, *args: object, **kwargs):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


# ---------------------------------------------------------------- high


@pytest.mark.parametrize(
    "command", [["embed"], ["train", "--model", "linear", "--epochs", "1"], ["pseudolabel", "--backbone", "pixels"]]
)
def test_out_folder_holding_the_input_is_refused(table, command):
    before = table.read_bytes()
    line = one_line(cli(command[0], table, "--out", table.parent, *command[1:]))
    assert f"--out {table.parent} holds the input {table}" in line
    assert table.read_bytes() == before and pd.read_csv(table)["note"].eq("mine").all()


def test_split_onto_its_own_input_is_refused(table):
    before = table.read_bytes()
    assert f"--out {table} is the input {table}" in one_line(cli("split", table, "--out", table, "--overwrite"))
    assert table.read_bytes() == before


def test_a_second_run_into_a_busy_folder_is_refused_and_a_dead_ones_lock_is_free(tmp_path, image_folder):
    out = tmp_path / "o"
    holder = _python(
        "import sys, time\nfrom labelwise._run import command_run\n"
        "with command_run(sys.argv[1], 'train', {}):\n    print('held', flush=True); time.sleep(120)\n",
        out,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        line = one_line(cli("train", image_folder, "--out", out, "--model", "linear"))
        assert "another run is writing to this folder: labelwise train" in line and f"pid {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    assert read_record(out)["status"] == "killed"  # a record that says running, with no live lock holder
    with command_run(out, "train", {}) as run:  # the dead run's lock is free, and it wrote nothing to keep
        assert run.folder == out.resolve()


def _tiny_train(data, out, seed):
    from labelwise.train import train

    return train(
        data,
        out,
        model="linear",
        folds=2,
        epochs=2,
        backbone="pixels",
        random_state=seed,
        cache_dir=out.parent / "cache",
        html=False,
    )


def test_a_train_folder_mixing_two_runs_is_refused(tmp_path, image_folder):
    a, b = tmp_path / "a", tmp_path / "b"
    _tiny_train(image_folder, a, 0)
    _tiny_train(image_folder, b, 1)
    for name in ("model.json", "oof_probs.csv"):
        shutil.copy(b / name, a / name)
    assert "model.json: changed since" in one_line(cli("predict", a, image_folder / "0", "--out", tmp_path / "p"))
    assert "oof_probs.csv: changed since" in one_line(cli("evaluate", a, "--out", tmp_path / "e"))
    assert "oof_probs.csv: changed since" in one_line(
        cli("issues", image_folder, "--probs", a, "--out", tmp_path / "i")
    )
    record = json.loads((b / "run.json").read_text())
    (b / "run.json").write_text(json.dumps({**record, "status": "failed"}))
    assert "that failed" in one_line(cli("predict", b, image_folder / "0", "--out", tmp_path / "p2"))


# ---------------------------------------------------------------- medium


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    got = load_square(str(tmp_path / "deep.png"), 8, "L").astype(int)
    assert np.abs(got - np.rint(values / 257.0)).max() <= 1  # a gradient, not a 0/255 mask
    assert len(np.unique(got)) > 50


def test_utf16_csv_is_read_and_other_encodings_are_one_line(tmp_path, image_folder):
    rows = "fname,label\n" + "".join(
        f"{p.relative_to(image_folder).as_posix()},x\n" for p in image_folder.glob("0/*.png")
    )
    (image_folder / "utf16.csv").write_text(rows, encoding="utf-16")
    assert len(read_csv_labels(image_folder / "utf16.csv").table) == 4
    (image_folder / "latin1.csv").write_bytes(rows.replace(",x", ",caf\xe9").encode("latin-1"))
    line = one_line(cli("split", image_folder / "latin1.csv", "--out", tmp_path / "s.csv"))
    assert "latin1.csv: not UTF-8 text (line 2" in line


def test_unusable_out_is_one_line(tmp_path, image_folder):
    (tmp_path / "file").write_text("x")
    assert "is a file; --out takes a folder" in one_line(cli("explore", image_folder, "--out", tmp_path / "file"))
    (tmp_path / "folder").mkdir()
    assert "is a folder; split writes one table" in one_line(cli("split", image_folder, "--out", tmp_path / "folder"))
    assert "cannot create the output folder" in one_line(cli("explore", image_folder, "--out", "/sys/labelwise-test"))
    assert "cannot write to the output folder" in one_line(cli("explore", image_folder, "--out", "/sys/kernel"))


@pytest.fixture
def one_class(tmp_path, digits):
    images, target = digits
    root = tmp_path / "one"
    for i in np.flatnonzero(target == 3)[:12]:
        write_png(root / "3" / f"{i}.png", images[i])
    for i in np.flatnonzero(target == 5)[:4]:
        write_png(root / "_unlabeled" / f"{i}.png", images[i])
    return root


def test_degenerate_data_is_one_line_before_any_work(tmp_path, one_class, image_folder):
    assert "only class '3' has labeled images" in one_line(
        cli("issues", one_class, "--model", "head", "--out", tmp_path / "i")
    )
    assert "only class '3' has labeled images" in one_line(
        cli("pseudolabel", one_class, "--backbone", "pixels", "--out", tmp_path / "p")
    )
    assert "a classifier needs at least two classes" in one_line(cli("train", one_class, "--out", tmp_path / "t"))
    assert not (tmp_path / "t" / "fold-0").exists()
    assert "with one, every model scores 1.0" in one_line(
        cli("simulate", one_class, "--backbone", "pixels", "--out", tmp_path / "s", "--n-start", "2", "--rounds", "1")
    )
    few = tmp_path / "few"
    for cls in ("0", "1", "2"):
        (few / cls).mkdir(parents=True)
        shutil.copy(next((image_folder / cls).glob("*.png")), few / cls)
    line = one_line(cli("issues", few, "--model", "head", "--out", tmp_path / "few-issues"))
    assert "every class has a single labeled image (3 in all)" in line


def test_rows_that_leave_the_image_root_are_excluded(tmp_path, image_folder):
    outside = write_png(tmp_path / "outside.png", np.zeros((8, 8), np.uint8))
    first = next(image_folder.glob("0/*.png")).relative_to(image_folder).as_posix()
    (image_folder / "labels.csv").write_text(f"fname,label\n{first},0\n../outside.png,1\n{outside},1\n")
    ds = read_csv_labels(image_folder / "labels.csv")
    assert ds.table["sample_id"].tolist() == [first]
    assert ds.problems["reason"].str.contains("outside the image root").sum() == 2
    kept = read_csv_labels(image_folder / "labels.csv", allow_outside_root=True)
    assert len(kept.table) == 3


def test_tasks_never_suggest_the_filesystem_root(tmp_path, image_folder):
    line = one_line(cli("tasks", image_folder, "--root", "/", "--out", tmp_path / "t"))
    assert "a labeling tool would serve everything below it" in line
    from labelwise.crowd.tasks import common_base

    with pytest.raises(LabelwiseError, match="only common folder is /: a labeling tool would serve everything"):
        common_base([str(next(image_folder.glob("0/*.png"))), "/dev/shm/elsewhere.png"])


def test_propagate_keeps_the_given_labels(tmp_path, image_folder):
    unlabeled = sorted(p.relative_to(image_folder).as_posix() for p in (image_folder / "_unlabeled").glob("*.png"))
    given = next(image_folder.glob("0/*.png")).relative_to(image_folder).as_posix()
    labels = pd.DataFrame({"task": [*unlabeled, given], "label": ["1", "2", "1"], "confidence": 1.0})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    result = cli("propagate", image_folder, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "p")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "p" / "dataset.csv", dtype=str).set_index("sample_id")
    assert (table["label_source"] == "given").sum() == 12
    assert table.loc[given, "label"] == "0"  # the crowd's contradicting '1' did not win
    assert table.loc[unlabeled, "label"].tolist() == ["1", "2"] and set(table.loc[unlabeled, "label_source"]) == {
        "crowd"
    }
    assert json.loads((tmp_path / "p" / "propagate.json").read_text())["crowd_contradicts_given"] == 1


def test_gold_written_by_tasks_is_used_by_aggregate(tmp_path, digits):
    images, target = digits
    photos, gold_dir = tmp_path / "photos", tmp_path / "goldimgs"
    for i in range(20):
        write_png(photos / f"p{i}.png", images[i])
    rows = []
    for i in range(20, 30):
        write_png(gold_dir / f"g{i}.png", images[i])
        rows.append({"path": str(gold_dir / f"g{i}.png"), "label": str(target[i])})
    pd.DataFrame(rows).to_csv(tmp_path / "g.csv", index=False)
    assert (
        cli(
            "tasks",
            photos,
            "--gold",
            tmp_path / "g.csv",
            "--out",
            tmp_path / "batch",
            "--root",
            tmp_path,
            "--training-pct",
            "0",
            "--exam-pct",
            "0",
            "--page-size",
            "3",
        ).exit_code
        == 0
    )
    gold = pd.read_csv(tmp_path / "batch" / "gold.csv", dtype=str)
    assert not gold["task"].str.startswith("/").any()  # never an absolute path as the key
    tasks = json.loads((tmp_path / "batch" / "label_studio_tasks.json").read_text())
    truth = {**{f"p{i}.png": str(target[i]) for i in range(20)}, **dict(zip(gold["task"], gold["label"]))}
    export = [
        {
            "id": k,
            "data": t["data"],
            "annotations": [
                {
                    "completed_by": w,
                    "result": [
                        {
                            "from_name": "choice",
                            "type": "choices",
                            "value": {"choices": [truth[t["data"]["sample_id"]]]},
                        }
                    ],
                }
                for w in (1, 2)
            ],
        }
        for k, t in enumerate(tasks)
    ]
    (tmp_path / "export.json").write_text(json.dumps(export))
    result = cli(
        "aggregate",
        tmp_path / "export.json",
        "--gold",
        tmp_path / "batch" / "gold.csv",
        "--images",
        photos,
        "--out",
        tmp_path / "agg",
    )
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "agg" / "agreement.json").read_text())
    assert figures["gold_tasks"] == len(gold) == 10
    annotators = pd.read_csv(tmp_path / "agg" / "annotators.csv")
    assert annotators["accuracy_on_gold"].eq(1.0).all()


def test_symlink_to_a_parent_folder_is_not_followed(image_folder):
    os.symlink(image_folder, image_folder / "0" / "loop")
    ds = load_dataset(image_folder)
    assert len(ds.table) == 14 and ds.table["label"].value_counts().to_dict() == {"0": 4, "1": 4, "2": 4}
    assert ds.problems["reason"].str.contains("symlink to the ancestor folder").sum() == 1


def test_explore_into_its_own_images_is_refused_and_outputs_are_never_read_as_images(tmp_path, image_folder):
    line = one_line(cli("explore", image_folder, "--out", image_folder))
    assert f"--out {image_folder} is inside {image_folder}, a folder images are read from" in line
    assert "a folder images are read from" in one_line(cli("explore", image_folder, "--out", image_folder / "report"))
    assert cli("explore", image_folder, "--out", tmp_path / "report").exit_code == 0
    shutil.copytree(tmp_path / "report", image_folder / "report")  # made elsewhere, then moved in by hand
    ds = load_dataset(image_folder)
    assert "report" not in ds.classes and len(ds.table) == 14
    assert ds.problems["reason"].str.contains("a labelwise output folder").sum() == 1


def _ls_export(images: list[str], labels: list[str]) -> list[dict]:
    return [
        {
            "id": k,
            "data": {"image": f"/data/local-files/?d={name}"},
            "annotations": [
                {
                    "completed_by": 1,
                    "result": [{"from_name": "choice", "type": "choices", "value": {"choices": [label]}}],
                }
            ],
        }
        for k, (name, label) in enumerate(zip(images, labels))
    ]


def test_identical_images_in_annotator_folders_are_one_task(tmp_path, digits):
    images, _ = digits
    for who in ("alice", "bob"):
        for i in range(3):
            write_png(tmp_path / "photos" / who / f"{i}.png", images[i])
        labels = ["a", "b", "a"] if who == "alice" else ["a", "b", "b"]
        (tmp_path / "exports" / who).mkdir(parents=True)
        (tmp_path / "exports" / who / "export.json").write_text(
            json.dumps(_ls_export([f"{i}.png" for i in range(3)], labels))
        )
    result = cli("aggregate", tmp_path / "exports", "--images", tmp_path / "photos", "--out", tmp_path / "agg")
    assert result.exit_code == 0, result.output
    labels = pd.read_csv(tmp_path / "agg" / "labels.csv")
    assert len(labels) == 3 and labels["n_answers"].eq(2).all()
    json.loads(
        (tmp_path / "agg" / "agreement.json").read_text(), parse_constant=lambda c: pytest.fail(f"invalid JSON {c}")
    )


def test_no_overlap_is_warned_and_nan_never_written(tmp_path, caplog):
    (tmp_path / "ex").mkdir()
    for who, names in (("alice", ["1.png", "2.png"]), ("bob", ["3.png", "4.png"])):
        (tmp_path / "ex" / f"{who}.json").write_text(json.dumps(_ls_export(names, ["a", "b"])))
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        result = cli("aggregate", tmp_path / "ex", "--out", tmp_path / "agg")
    assert result.exit_code == 0, result.output
    assert any("nothing overlaps" in r.getMessage() for r in caplog.records)
    json.loads(
        (tmp_path / "agg" / "agreement.json").read_text(), parse_constant=lambda c: pytest.fail(f"invalid JSON {c}")
    )


def test_seed_style_consensus_export_makes_the_test_split(tmp_path, digits):
    images, _ = digits
    names = [f"{i}.png" for i in range(6)]
    for i, name in enumerate(names):
        write_png(tmp_path / "photos" / name, images[i])
    folder = tmp_path / "exports"
    for who in ("alice", "bob", "carol", "dan", "eve"):
        (folder / who).mkdir(parents=True)
        export = _ls_export(names[:3], ["a", "a", "b"])
        export.append(
            {
                "id": 9,
                "data": {"image": "/data/local-files/?d=5.png"},
                "annotations": [{"completed_by": 1, "was_cancelled": True, "result": []}],
            }
        )
        (folder / who / "export.json").write_text(json.dumps(export))
    consensus = [
        {
            "id": k,
            "data": {"image": f"/data/local-files/?d={n}"},
            "annotations": [
                {
                    "completed_by": 10 + w,
                    "result": [{"from_name": "choice", "type": "choices", "value": {"choices": ["a"]}}],
                }
                for w in range(5)
            ],
        }
        for k, n in enumerate(names[3:5])
    ]
    (folder / "consensus").mkdir()
    (folder / "consensus" / "export.json").write_text(json.dumps(consensus))
    result = cli("aggregate", folder, "--images", tmp_path / "photos", "--consensus-test", "--out", tmp_path / "agg")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "agg" / "dataset.csv")
    assert set(table.loc[table["split"] == "test", "sample_id"]) == set(names[:5])
    unlabeled = pd.read_csv(tmp_path / "agg" / "unlabeled.csv")
    assert unlabeled["task"].tolist() == ["5.png"]


def test_a_lean_install_names_the_extra(tmp_path, image_folder):
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'torchvision', 'timm'}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from labelwise.cli.app import main\nsys.argv = ['labelwise', *sys.argv[1:]]\nmain()\n"
    )
    proc = _python(code, "train", image_folder, "--out", tmp_path / "t")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'labelwise[torch]'" in lines[0] and "Traceback" not in err
    # the paths that need no torch really work without it
    for args in (
        ("embed", image_folder, "--out", tmp_path / "e"),
        ("issues", image_folder, "--model", "head", "--out", tmp_path / "i"),
    ):
        proc = _python(code, *args)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert (tmp_path / "e" / "embeddings.npy").is_file() and (tmp_path / "i" / "label_issues.csv").is_file()


_SLOW_EMBED = """
import sys, time
import numpy as np
from labelwise.features import cache
from labelwise.features.backbones import PixelsBackbone, register_backbone

cache.FLUSH_SECONDS = 0.2

class Slow(PixelsBackbone):
    name = "slow"
    def for_table(self, table):
        return Slow(self.size, 1)
    def encode(self, paths, **kw):
        for batch in super().encode(paths, **kw):
            time.sleep(0.4)
            yield batch

register_backbone(lambda *, size=None, weights=None, random_state=0: Slow(8), name="slow")
from labelwise.cli.app import main
sys.argv = ["labelwise", "embed", sys.argv[1], "--backbone", "slow", "--batch-size", "2", "--out", sys.argv[2],
            "--cache-dir", sys.argv[3]]
main()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signalled_embed_keeps_what_it_computed(tmp_path, image_folder, sig):
    cache_dir = tmp_path / "cache"
    proc = _python(_SLOW_EMBED, image_folder, tmp_path / "e", cache_dir)
    deadline = time.time() + 60
    while not list(cache_dir.glob("*/vectors-*.npy")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    if sig == signal.SIGTERM:
        assert "interrupted; outputs already written are kept" in err
        assert read_record(tmp_path / "e")["status"] == "interrupted"
    else:
        assert read_record(tmp_path / "e")["status"] == "killed"
    index = pd.read_parquet(next(cache_dir.glob("*/index.parquet")))
    assert 2 <= len(index) < 14  # computed work kept, and the run really was cut short


# ---------------------------------------------------------------- low


def test_a_class_of_one_image_gets_a_hint_that_works(tmp_path, image_folder):
    for p in list((image_folder / "2").glob("*.png"))[1:]:
        p.unlink()
    line = one_line(cli("train", image_folder, "--folds", "2", "--model", "linear", "--out", tmp_path / "t"))
    assert "class '2' has 1 labeled image" in line and "--folds 1" in line and "lower --folds to" not in line
    assert not (tmp_path / "t" / "fold-0").exists()


def test_reader_hints(tmp_path, image_folder, digits, caplog):
    images, _ = digits
    for i in range(3):
        write_png(tmp_path / "ordered" / f"{i + 1}.png", images[i])
    (tmp_path / "labels.txt").write_text("a\nb\na\n\n\n\n")
    assert read_ordered_labels(tmp_path / "labels.txt", tmp_path / "ordered").table["label"].tolist() == ["a", "b", "a"]
    files = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.glob("[01]/*.png"))
    (image_folder / "win.csv").write_text(
        "path,breed\n"
        + files[0].replace("/", "\\")
        + ",Cat\n"
        + f"{files[1]},cat\n"
        + f"{files[2]},dog\n{files[2]},cat\n"
    )
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        ds = read_csv_labels(image_folder / "win.csv")
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert files[0] in ds.table["sample_id"].tolist()  # the Windows separator was understood
    assert "differ only in case" in messages and "'Cat' and 'cat'" in messages
    assert "listed twice with different labels" in messages
    assert "taking column 1 ('breed') as the label" in messages


def test_very_large_images_are_reported_with_a_way_to_allow_them(tmp_path, recwarn, capsys):
    Image.new("L", (10_000, 10_000)).save(tmp_path / "big.png")  # 100 Mpx: fine, and no raw Pillow warning
    assert open_image(str(tmp_path / "big.png"), mode="L").size == (10_000, 10_000)
    assert not [w for w in recwarn if "DecompressionBomb" in str(w.category)] and not capsys.readouterr().err
    (tmp_path / "big.png").unlink()
    write_png(tmp_path / "img" / "a" / "x.png", np.zeros((40, 40), np.uint8))
    try:
        ds = load_dataset(tmp_path / "img", max_pixels=1000)
        assert (
            ds.problems["reason"]
            .iloc[0]
            .startswith("too large (1,600 px, more than 1,000); allow it with --max-pixels 1600")
        )
        assert len(load_dataset(tmp_path / "img", max_pixels=0).table) == 1
    finally:
        set_max_pixels(None)


def test_more_one_liners(tmp_path, image_folder, digits):
    images, target = digits
    for i in range(6):
        write_png(tmp_path / "test" / f"{i}.png", images[i])
    (tmp_path / "truth.txt").write_text("".join(f"{target[i] % 2}\n" for i in range(6)))
    pd.DataFrame({"sample_id": [f"{i}.png" for i in range(6)], "prob_0": 0.6, "prob_1": 0.4}).to_csv(
        tmp_path / "p.csv", index=False
    )
    result = cli(
        "evaluate",
        tmp_path / "p.csv",
        "--labels",
        tmp_path / "truth.txt",
        "--images",
        tmp_path / "test",
        "--out",
        tmp_path / "ev",
    )
    assert result.exit_code == 0, result.output
    (tmp_path / "empty.json").write_text("[]")
    assert "holds no tasks" in one_line(cli("aggregate", tmp_path / "empty.json", "--out", tmp_path / "a"))
    (tmp_path / "c.yaml").write_text("folds: many\n")
    assert "c.yaml" in one_line(
        cli("split", image_folder, "--config", tmp_path / "c.yaml", "--out", tmp_path / "s.csv")
    )
    pd.DataFrame({"sample_id": ["elsewhere.png"], "suggested_label": ["0"], "is_issue": [True]}).to_csv(
        tmp_path / "other_issues.csv", index=False
    )
    line = one_line(cli("clean", image_folder, "--issues", tmp_path / "other_issues.csv", "--out", tmp_path / "c.csv"))
    assert "other_issues.csv: sample_id 'elsewhere.png' is not in the dataset" in line
    line = one_line(cli("split", image_folder, "--folds", "-1", "--out", tmp_path / "x.csv"))
    assert "'--folds'" in line and "greater than or equal to 0" in line
