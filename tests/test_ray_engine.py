"""The Ray engine gives the local engine's answers, on a local Ray started here (2 CPUs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
import torch
from conftest import write_png

import labelwise
from labelwise import Dataset, load_dataset
from labelwise._engine import Engine, engine_scope, map_batches, resolve_engine, task_share
from labelwise.errors import LabelwiseError, MissingExtraError
from labelwise.train.folds import read_worker
from labelwise.train.kfold import train  # `labelwise.train` is the package once it is imported

N_IMAGES = 450


@pytest.fixture(scope="module")
def cluster():
    before = os.environ.get("LABELWISE_RAY_STALL_S")
    os.environ["LABELWISE_RAY_STALL_S"] = "180"  # a stalled map fails the test instead of hanging the run
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop("LABELWISE_RAY_STALL_S", None)
    else:
        os.environ["LABELWISE_RAY_STALL_S"] = before


@pytest.fixture(scope="module")
def folder(tmp_path_factory, digits):
    images, target = digits
    root = tmp_path_factory.mktemp("ray-digits") / "images"
    for i in range(N_IMAGES):
        write_png(root / str(target[i]) / f"{i}.png", images[i])
    return root


@pytest.fixture(scope="module")
def dataset(folder):
    return load_dataset(folder)


def one_thread(fn, *args, **kwargs):
    """Run ``fn`` with one torch thread, as each of 2 or 3 folds on a 2-CPU Ray computes: summing in
    another order changes the last bits, which training amplifies."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


TRAIN = {"folds": 3, "epochs": 6, "check_leaks": False, "html": False, "random_state": 0}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, dataset):
    out = tmp_path_factory.mktemp("local") / "train"
    one_thread(train, dataset, out, **TRAIN)
    return out


def test_engine_is_local_unless_asked_and_a_bad_name_is_one_line(monkeypatch):
    monkeypatch.delenv("LABELWISE_ENGINE", raising=False)
    assert resolve_engine().name == "local"
    monkeypatch.setenv("LABELWISE_ENGINE", "ray")
    assert resolve_engine().is_ray
    with engine_scope("local"):
        assert resolve_engine().name == "local"  # a command's own engine holds for what it calls
        assert resolve_engine("ray", "10.0.0.1:6379").address == "10.0.0.1:6379"
    monkeypatch.setenv("LABELWISE_ENGINE", "spark")
    with pytest.raises(LabelwiseError, match="engine must be one of local, ray, got 'spark'"):
        resolve_engine()


def test_nothing_imports_ray_unless_asked(folder):
    code = (
        "import sys, labelwise; "
        f"labelwise.embed({str(folder)!r}, backbone='pixels', size=8, cache_dir=False); "
        "print('ray' in sys.modules)"
    )
    env = {**os.environ, "LABELWISE_ENGINE": "local"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"


def test_a_missing_ray_is_one_line_naming_the_extra(monkeypatch, dataset):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'labelwise\[ray\]'"):
        labelwise.embed(dataset, backbone="pixels", size=8, cache_dir=False, engine="ray")


def test_tasks_share_the_cluster_and_actors_leave_room_for_reads(cluster):
    share = task_share(cluster, 3)
    assert (share.num_cpus, share.num_gpus, share.count) == (1.0, 0.0, 2)
    share = task_share(cluster, 1)
    assert (share.num_cpus, share.threads) == (2.0, 2)


def test_embed_on_ray_is_the_local_embedding_and_fills_the_same_cache(cluster, dataset, tmp_path):
    dataset = Dataset(dataset.table.iloc[:160], dataset.classes)
    local = labelwise.embed(dataset, backbone="resnet18", size=32, cache_dir=False)
    cache = tmp_path / "cache"
    on_ray = labelwise.embed(dataset, backbone="resnet18", size=32, cache_dir=cache, engine="ray")
    np.testing.assert_allclose(on_ray, local, rtol=1e-5, atol=1e-6)
    out = tmp_path / "again"
    again = labelwise.embed(dataset, backbone="resnet18", size=32, cache_dir=cache, out=out)
    meta = pd.read_json(out / "embedding_meta.json", typ="series")
    assert meta["n_computed"] == 0 and meta["n_cached"] == 160  # the Ray run's cache serves the local one
    np.testing.assert_array_equal(again, on_ray)


def test_three_folds_on_ray_are_the_local_folds_and_probabilities(cluster, dataset, local_run, tmp_path):
    out = tmp_path / "ray"
    result = train(dataset, out, engine="ray", **TRAIN)
    assert result.folds == 3
    local_rows, ray_rows = pd.read_csv(local_run / "dataset.csv"), pd.read_csv(out / "dataset.csv")
    pd.testing.assert_series_equal(local_rows["fold"], ray_rows["fold"])
    np.testing.assert_allclose(np.load(out / "oof_probs.npy"), np.load(local_run / "oof_probs.npy"), atol=1e-5)
    metrics = pd.read_csv(out / "metrics.csv")
    assert sorted(metrics["fold"].unique()) == [0, 1, 2]
    assert all((out / f"fold-{k}" / "model.pt").exists() for k in range(3))
    by_ray, by_local = labelwise.predict(out, dataset), labelwise.predict(local_run, dataset)  # the folder is usable
    np.testing.assert_allclose(
        by_ray.filter(like="prob_").to_numpy(), by_local.filter(like="prob_").to_numpy(), atol=1e-4
    )


def test_predict_on_ray_is_the_local_prediction(cluster, folder, local_run, tmp_path):
    local = labelwise.predict(local_run, folder)
    on_ray = labelwise.predict(local_run, folder, tmp_path / "pred", engine="ray")
    pd.testing.assert_frame_equal(on_ray[["sample_id", "label"]], local[["sample_id", "label"]])
    probs = [c for c in local if c.startswith("prob_")]
    np.testing.assert_allclose(on_ray[probs].to_numpy(), local[probs].to_numpy(), atol=1e-6)
    assert (tmp_path / "pred" / "predictions.csv").exists()


def test_a_simulation_grid_on_ray_gives_the_local_results(cluster, dataset, tmp_path):
    grid = {"strategies": ["random", "margin"], "seeds": [0, 1], "models": ["logreg"], "backbones": ["pixels"]}
    options = {"grid": grid, "n_start": 20, "n_new": 20, "rounds": 3, "size": 8, "html": False}
    local = labelwise.simulate(dataset, tmp_path / "local", **options)
    on_ray = labelwise.simulate(dataset, tmp_path / "ray", engine="ray", **options)
    same = [c for c in local.results if c != "seconds"]
    assert len(local.results) == 2 * 2 * 4
    pd.testing.assert_frame_equal(on_ray.results[same], local.results[same])
    pd.testing.assert_frame_equal(on_ray.picks, local.picks)


def test_a_missing_image_on_a_worker_is_one_line_naming_it(cluster, dataset, local_run):
    table = dataset.table.copy()
    missing = str(Path(table["path"].iloc[7]).with_name("gone.png"))
    table.loc[7, "path"] = missing
    broken = Dataset(table.drop(columns=["content_hash"], errors="ignore").iloc[:64], dataset.classes)
    with pytest.raises(LabelwiseError) as embedding:
        labelwise.embed(
            broken.table.assign(content_hash="h" + broken.table.index.astype(str)),
            backbone="resnet18",
            size=32,
            cache_dir=False,
            engine="ray",
        )
    with pytest.raises(LabelwiseError) as prediction:
        labelwise.predict(local_run, broken, engine="ray")
    for error in (embedding.value, prediction.value):
        message = str(error)
        assert "gone.png" in message and "\n" not in message and "Traceback" not in message, message


@pytest.mark.parametrize("command", ["embed", "train", "predict", "issues", "simulate"])
def test_the_commands_that_distribute_take_engine_and_a_wrong_one_is_one_line(command, folder, tmp_path):
    from typer.testing import CliRunner

    from labelwise.cli.app import app

    runner = CliRunner()
    assert "--ray-address" in runner.invoke(app, [command, "--help"], terminal_width=200).output
    args = [command, *(["runs/none"] if command == "predict" else []), str(folder), "--out", str(tmp_path / "o")]
    done = runner.invoke(app, [*args, "--engine", "spark"])
    assert done.exit_code == 2, done.output
    assert "engine must be one of local, ray, got 'spark'" in done.output and "Traceback" not in done.output


def test_the_cli_on_a_running_cluster_prints_its_result_not_rays_chatter(cluster, folder, tmp_path):
    env = {**os.environ, "RAY_ADDRESS": cluster.get_runtime_context().gcs_address, "LABELWISE_ENGINE": "ray"}
    command = ["labelwise", "embed", str(folder), "--backbone", "pixels", "--size", "8"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "e"), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert f"{N_IMAGES} images × 64 features" in done.stdout
    assert json.loads((tmp_path / "e" / "embedding_meta.json").read_text())["engine"] == "ray"
    # Ray's C++ core worker still logs one line per actor pool (ray-project/ray#53727): not ours to mute.
    for chatter in ("INFO", "streaming_executor", "Progress bars", "Token authentication"):
        assert chatter not in done.stderr, done.stderr


def test_predict_on_ray_with_a_head_on_embeddings(cluster, dataset, tmp_path):
    out = tmp_path / "head"
    train(dataset, out, model="linear", backbone="pixels", folds=2, epochs=5, check_leaks=False, html=False)
    local = labelwise.predict(out, dataset)
    on_ray = labelwise.predict(out, dataset, engine="ray")
    np.testing.assert_allclose(on_ray.filter(like="prob_").to_numpy(), local.filter(like="prob_").to_numpy(), atol=1e-6)


def test_a_map_that_makes_no_progress_fails_in_one_line(cluster, monkeypatch):
    class Stuck:  # defined here so that Ray ships it by value
        def __init__(self, threads: int) -> None:
            pass

        def __call__(self, batch: dict) -> dict:
            time.sleep(30)
            return batch

    monkeypatch.setenv("LABELWISE_RAY_STALL_S", "4")
    started = time.perf_counter()
    with pytest.raises(LabelwiseError, match=r"^ray: no batch finished for 4 s .*LABELWISE_RAY_STALL_S") as caught:
        list(map_batches(Engine("ray"), {"row": np.arange(4)}, Stuck, constructor_kwargs={}, batch_size=2))
    assert "\n" not in str(caught.value) and time.perf_counter() - started < 25
    monkeypatch.setenv("LABELWISE_RAY_STALL_S", "soon")
    with pytest.raises(LabelwiseError, match="LABELWISE_RAY_STALL_S must be a number of seconds, got 'soon'"):
        list(map_batches(Engine("ray"), {"row": np.arange(4)}, Stuck, constructor_kwargs={}, batch_size=2))


# Last: a worker killed under Ray leaves the local cluster busy for a while.
def test_a_fold_whose_worker_dies_is_retried_from_its_checkpoint(cluster, dataset, local_run, tmp_path):
    out = tmp_path / "killed"
    fold = out / "fold-0"
    killed: dict[str, int] = {}

    def kill_after_first_epoch() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            if (fold / "checkpoint.pt").exists() and (fold / "worker.json").exists():
                killed["pid"] = read_worker(fold)["pid"]
                os.kill(killed["pid"], signal.SIGKILL)
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_after_first_epoch, daemon=True)
    watcher.start()
    train(dataset, out, engine="ray", **{**TRAIN, "epochs": 12})
    watcher.join()
    assert killed, "fold 0 finished before its worker could be killed"
    worker = read_worker(fold)
    assert worker["pid"] != killed["pid"] and worker["resumes_checkpoint"]  # a second worker resumed the fold
    assert not (fold / "checkpoint.pt").exists()
    reference = tmp_path / "reference"
    one_thread(train, dataset, reference, **{**TRAIN, "epochs": 12})
    np.testing.assert_allclose(np.load(out / "oof_probs.npy"), np.load(reference / "oof_probs.npy"), atol=1e-5)
    assert pd.read_csv(fold / "metrics.csv")["epoch"].tolist() == list(range(1, 13))
