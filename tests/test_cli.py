"""The CLI: user mistakes are one line and exit status 2; runs record config, versions and log."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from labelwise.cli.app import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_missing_folder(tmp_path):
    line = _one_line_error(_run("split", tmp_path / "nope", "--out", tmp_path / "s.csv"))
    assert line.startswith("error:") and "nope: no such file or folder" in line


def test_wrong_column(image_folder, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("fname,label\n0/a.png,x\n")
    line = _one_line_error(
        _run("split", csv, "--images", image_folder, "--label-col", "klass", "--out", tmp_path / "s.csv")
    )
    assert "no column 'klass' for the label; columns are: fname, label" in line


def test_unknown_backbone(image_folder, tmp_path):
    line = _one_line_error(_run("embed", image_folder, "--backbone", "resnet19", "--out", tmp_path / "e"))
    assert "resnet19" in line and "resnet18" in line and "pixels" in line


def test_unknown_config_key(image_folder, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("valid_pct: 0.3\nfoldz: 3\n")
    result = _run("split", image_folder, "--config", cfg, "--out", tmp_path / "s.csv")
    assert result.exit_code == 2
    assert "unknown key(s) foldz" in result.output


def test_split_with_config_records_resolved_options(image_folder, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("valid-pct: 0.25\nfolds: 2\nseed: 7\n")
    out = tmp_path / "run" / "split.csv"
    result = _run("split", image_folder, "--config", cfg, "--folds", "3", "--out", out)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert set(table.loc[table["split"] == "train", "fold"]) == {0, 1, 2}  # the flag beat the file
    resolved = yaml.safe_load((out.parent / "split.config.yaml").read_text())
    assert resolved["valid_pct"] == 0.25 and resolved["folds"] == 3 and resolved["seed"] == 7
    run = json.loads((out.parent / "split.run.json").read_text())
    assert run["status"] == "ok" and run["seed"] == 7 and "numpy" in run["versions"]
    assert json.loads((out.parent / "classes.json").read_text()) == ["0", "1", "2"]
    assert "split ok" in (out.parent / "split.labelwise.log").read_text()
    # same seed, same split
    again = tmp_path / "again.csv"
    assert _run("split", image_folder, "--config", cfg, "--folds", "3", "--out", again).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(again), table)


def test_failed_run_is_recorded_and_keeps_earlier_outputs(image_folder, tmp_path):
    out = tmp_path / "s.csv"
    assert _run("split", image_folder, "--out", out).exit_code == 0
    before = out.read_text()
    line = _one_line_error(_run("split", image_folder, "--out", out))
    assert "holds the results of an earlier `labelwise split` run" in line and "pass --overwrite" in line
    # replacing it with a run that fails puts the earlier results back, record included
    assert (
        _run("split", image_folder, "--valid-pct", "0.5", "--folds", "40", "--out", out, "--overwrite").exit_code == 2
    )
    assert out.read_text() == before
    assert json.loads((tmp_path / "s.run.json").read_text())["status"] == "ok"
    assert not list(tmp_path.glob(".labelwise-replaced*"))
    failed = tmp_path / "f.csv"
    assert _run("split", image_folder, "--valid-pct", "0.5", "--folds", "40", "--out", failed).exit_code == 2
    assert not failed.exists() and json.loads((tmp_path / "f.run.json").read_text())["status"] == "failed"
