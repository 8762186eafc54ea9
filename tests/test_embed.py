"""labelwise.features: backbones, the embedding cache and ``embed``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from labelwise import LabelwiseError, load_dataset
from labelwise.data.pixels import load_square
from labelwise.features import PixelsBackbone, create_backbone, embed, list_backbones
from labelwise.features.torchvision_backbones import (
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TorchvisionBackbone,
    torch_hub_dir,
)
from tests.conftest import write_png

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

# Raw feature length of every registered backbone at 32 px; a new backbone must add its own.
DIMS_AT_32 = {
    "efficientnet_lite0": 1280,
    "pixels": 3 * 32 * 32,
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "squeezenet1_1": 512,
    "mobilenet_v3_small": 1024,
    "efficientnet_b0": 1280,
    "convnext_tiny": 768,
    "simclr": 8 * 16,  # 8 · SimCLRSettings.width
}
CNN = {"backbone": "resnet18", "size": 32}


def meta(out: Path) -> dict:
    return json.loads((out / "embedding_meta.json").read_text())


def cnn_features(model: torch.nn.Module, paths: list[str], size: int = 32) -> np.ndarray:
    """What a torchvision model (head removed) gives for ``paths``, computed independently of embed."""
    x = torch.from_numpy(np.stack([load_square(p, size) for p in paths])).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        return model.eval()(x).numpy()


@pytest.fixture
def log(caplog, monkeypatch):
    """Warnings of the labelwise logger, even after a CLI test in this process turned its propagation off."""
    monkeypatch.setattr(logging.getLogger("labelwise"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        yield caplog


@pytest.fixture
def ds(image_folder):
    return load_dataset(image_folder)


@pytest.fixture
def count_encoded(monkeypatch):
    """Record the paths every backbone is asked to compute."""
    seen: list[str] = []
    for cls in (TorchvisionBackbone, PixelsBackbone):
        original = cls.encode

        def spy(self, paths, *, _original=original, **kwargs):
            seen.extend(paths)
            yield from _original(self, paths, **kwargs)

        monkeypatch.setattr(cls, "encode", spy)
    return seen


def test_rerun_is_a_cache_hit_without_any_forward(ds, tmp_path, count_encoded, monkeypatch):
    # First run from a bare table: hashes are computed, and must match the checked dataset's.
    first = embed(ds.table[["sample_id", "path"]], **CNN, cache_dir=tmp_path / "c", out=tmp_path / "o1")
    assert meta(tmp_path / "o1")["n_computed"] == len(ds.table) == len(count_encoded)

    def no_forward(*args, **kwargs):
        raise AssertionError("the model ran on a cache hit")

    monkeypatch.setattr(torch.nn.Module, "__call__", no_forward)
    again = embed(ds, **CNN, cache_dir=tmp_path / "c", out=tmp_path / "o2")
    assert np.array_equal(first, again)
    assert meta(tmp_path / "o2") | {"seconds": 0} == meta(tmp_path / "o1") | {
        "seconds": 0,
        "n_computed": 0,
        "n_cached": len(ds.table),
    }
    assert len(count_encoded) == len(ds.table)  # nothing more was decoded either


def test_added_images_are_the_only_ones_computed(image_folder, digits, tmp_path, count_encoded):
    before = load_dataset(image_folder)
    old = embed(before, **CNN, cache_dir=tmp_path / "c")
    added = [write_png(image_folder / "2" / f"new{i}.png", digits[0][500 + i]) for i in range(2)]
    count_encoded.clear()
    after = load_dataset(image_folder)
    new = embed(after, **CNN, cache_dir=tmp_path / "c", out=tmp_path / "o")
    assert sorted(count_encoded) == sorted(map(str, added))
    assert meta(tmp_path / "o")["n_computed"] == 2
    rows = after.table.reset_index().set_index("sample_id")["index"]
    assert np.array_equal(new[rows[before.table["sample_id"]].to_numpy()], old)
    fresh = embed(after, **CNN, cache_dir=False)
    np.testing.assert_allclose(new, fresh, rtol=1e-5, atol=1e-5)


def test_cached_and_uncached_vectors_are_identical(ds, tmp_path):
    uncached = embed(ds, **CNN, cache_dir=False)
    computed = embed(ds, **CNN, cache_dir=tmp_path / "c")
    loaded = embed(ds, **CNN, cache_dir=tmp_path / "c")
    assert np.array_equal(uncached, computed) and np.array_equal(computed, loaded)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["resnet18-32px-random-seed0"]


def test_identical_images_are_computed_once(image_folder, digits, tmp_path):
    write_png(image_folder / "1" / "copy.png", digits[0][100])  # same pixels as _unlabeled/u1.png
    ds = load_dataset(image_folder)
    vectors = embed(ds, backbone="pixels", cache_dir=tmp_path / "c", out=tmp_path / "o")
    assert meta(tmp_path / "o")["n_computed"] == len(ds.table) - 1
    ids = ds.table["sample_id"].tolist()
    assert np.array_equal(vectors[ids.index("1/copy.png")], vectors[ids.index("_unlabeled/u1.png")])


def test_interrupted_run_keeps_what_it_finished(ds, tmp_path):
    table = ds.table[["sample_id", "path"]].copy()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    table.loc[len(table)] = ["broken.png", str(broken)]
    with pytest.raises(LabelwiseError, match=r"broken\.png: cannot decode image"):
        embed(table, **CNN, batch_size=4, cache_dir=tmp_path / "c")
    embed(ds, **CNN, batch_size=4, cache_dir=tmp_path / "c", out=tmp_path / "o")
    # The three batches finished before the failing one (rows 12, 13, broken) were kept.
    assert meta(tmp_path / "o")["n_computed"] == len(ds.table) - 12 == 2


def test_lost_shard_is_recomputed(ds, tmp_path):
    first = embed(ds, backbone="pixels", cache_dir=tmp_path / "c")
    for shard in (tmp_path / "c").glob("*/vectors-*.npy"):
        shard.unlink()
    again = embed(ds, backbone="pixels", cache_dir=tmp_path / "c", out=tmp_path / "o")
    assert meta(tmp_path / "o")["n_computed"] == len(ds.table)
    assert np.array_equal(first, again)


def test_out_files_are_aligned_with_the_table(ds, tmp_path):
    vectors = embed(ds, backbone="pixels", size=8, cache_dir=tmp_path / "c", out=tmp_path / "o")
    assert np.array_equal(np.load(tmp_path / "o" / "embeddings.npy"), vectors)
    rows = pd.read_csv(tmp_path / "o" / "embeddings.csv")
    assert rows["sample_id"].tolist() == ds.table["sample_id"].tolist()
    assert rows["content_hash"].tolist() == ds.table["content_hash"].tolist()
    assert rows["row"].tolist() == list(range(len(ds.table)))
    info = meta(tmp_path / "o")
    assert (info["backbone"], info["size"], info["weights"], info["dim"]) == ("pixels", 8, "gray", 64)
    assert info["cache"] == str(tmp_path / "c" / "pixels-8px-gray")


def test_pixels_dimensions_standardisation_and_pca(ds, tmp_path):
    gray = embed(ds, backbone="pixels", size=8, cache_dir=False)
    assert gray.shape == (len(ds.table), 8 * 8) and gray.dtype == np.float32
    np.testing.assert_allclose(gray.mean(axis=0), 0, atol=1e-5)
    assert set(np.round(gray.std(axis=0), 4)) <= {0.0, 1.0}
    reduced = embed(ds, backbone="pixels", size=8, pca=5, cache_dir=False)
    assert reduced.shape == (len(ds.table), 5)
    assert np.all(np.diff(reduced.var(axis=0)) <= 1e-6)  # components by decreasing variance
    with pytest.raises(LabelwiseError, match="pca=20 is more than the 14 components"):
        embed(ds, backbone="pixels", size=8, pca=20, cache_dir=False)


def test_pixels_goes_rgb_when_any_image_has_colour(image_folder, tmp_path):
    Image.new("RGB", (10, 12), (200, 30, 30)).save(image_folder / "1" / "red.jpg")
    ds = load_dataset(image_folder)
    vectors = embed(ds, backbone="pixels", size=8, cache_dir=tmp_path / "c")
    assert vectors.shape == (len(ds.table), 3 * 8 * 8)
    assert (tmp_path / "c" / "pixels-8px-rgb").is_dir()


def test_pixels_never_imports_torch(image_folder, tmp_path):
    code = (
        "import sys\n"
        "from labelwise.features import embed, list_backbones\n"
        "assert 'resnet18' in list_backbones()\n"
        f"x = embed({str(image_folder)!r}, backbone='pixels', pca=3, cache_dir={str(tmp_path)!r})\n"
        "assert x.shape == (14, 3), x.shape\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_cnn_cache_hit_never_imports_torch(image_folder, tmp_path):
    embed(str(image_folder), **CNN, cache_dir=tmp_path)
    code = (
        "import sys\n"
        "from labelwise.features import embed\n"
        f"x = embed({str(image_folder)!r}, backbone='resnet18', size=32, cache_dir={str(tmp_path)!r})\n"
        "assert x.shape == (14, 512), x.shape\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_hub_files_are_torchvisions_own(monkeypatch, tmp_path):
    from torchvision.models import get_model_weights

    for name, (_, files) in ARCHITECTURES.items():
        enum = get_model_weights(name)
        assert files[0] == enum.DEFAULT.url.rsplit("/", 1)[1]
        assert set(files) == {w.url.rsplit("/", 1)[1] for w in enum}
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = Path(torch.hub.get_dir())
    monkeypatch.delitem(sys.modules, "torch")  # worked out without torch, as on a cache hit
    assert torch_hub_dir() == expected == tmp_path / "th" / "hub"


def test_grayscale_into_cnn_is_seeded(ds, log):
    a = embed(ds, **CNN, random_state=0, cache_dir=False)
    assert "RANDOMLY initialised (seed 0)" in log.text
    assert a.shape == (len(ds.table), 512) and np.isfinite(a).all()
    assert np.array_equal(a, embed(ds, **CNN, random_state=0, cache_dir=False))
    assert not np.allclose(a, embed(ds, **CNN, random_state=1, cache_dir=False))


def test_weights_file_gives_that_models_features(ds, tmp_path, log):
    torch.manual_seed(123)
    model = torchvision.models.resnet18(num_classes=10)  # its classifier does not matter
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    model.fc = torch.nn.Identity()
    expected = cnn_features(model, ds.table["path"].tolist())
    for name in ("plain.pt", "checkpoint.pt"):
        got = embed(ds, **CNN, weights=tmp_path / name, cache_dir=tmp_path / "c", out=tmp_path / name.replace(".", "-"))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        assert meta(tmp_path / name.replace(".", "-"))["weights"].startswith("sha256-")
    assert "RANDOMLY" not in log.text


def test_weights_in_the_hub_cache_are_used_offline(ds, tmp_path, monkeypatch, log):
    torch.manual_seed(7)
    model = torchvision.models.resnet18()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(model.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    got = embed(ds, **CNN, cache_dir=tmp_path / "c", out=tmp_path / "o")
    model.fc = torch.nn.Identity()
    np.testing.assert_allclose(got, cnn_features(model, ds.table["path"].tolist()), rtol=1e-4, atol=1e-5)
    assert meta(tmp_path / "o")["weights"] == "resnet18-f37072fd"
    assert "RANDOMLY" not in log.text


def test_weights_that_do_not_fit_name_the_file(ds, tmp_path):
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pt")
    with pytest.raises(LabelwiseError, match=r"r34.pt: weights do not fit resnet18: .*unexpected keys \(e.g. layer1.2"):
        embed(ds, **CNN, weights=tmp_path / "r34.pt", cache_dir=False)
    state = torchvision.models.resnet18().state_dict()
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(state, tmp_path / "one_channel.pt")
    with pytest.raises(LabelwiseError, match=r"one_channel.pt: .*1 wrong shapes \(e.g. conv1.weight \(64, 1, 7, 7\)"):
        embed(ds, **CNN, weights=tmp_path / "one_channel.pt", cache_dir=False)
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(LabelwiseError, match=r"notes\.txt: cannot read as torch weights"):
        embed(ds, **CNN, weights=tmp_path / "notes.txt", cache_dir=False)
    with pytest.raises(LabelwiseError, match=r"missing\.pt: weights file not found"):
        embed(ds, **CNN, weights=tmp_path / "missing.pt", cache_dir=False)


def test_unknown_backbone_lists_the_valid_names(ds):
    with pytest.raises(LabelwiseError) as info:
        embed(ds, backbone="resnet19", cache_dir=False)
    assert str(info.value) == f"unknown backbone 'resnet19'; choose one of: {', '.join(list_backbones())}"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"backbone": "pixels", "weights": "w.pt"}, "pixels backbone has no weights"),
        ({"backbone": "resnet18", "size": 16}, "size must be at least 32 px for resnet18, got 16"),
        ({"backbone": "pixels", "size": 0}, "size must be a positive number of pixels, got 0"),
        ({"backbone": "pixels", "batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"backbone": "pixels", "pca": 2.5}, "pca must be an integer >= 1, got 2.5"),
    ],
)
def test_bad_options_are_named(ds, options, message):
    with pytest.raises(LabelwiseError, match=message):
        embed(ds, cache_dir=False, **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_an_error(ds):
    with pytest.raises(LabelwiseError, match="PyTorch sees no CUDA GPU"):
        embed(ds, **CNN, device="cuda", cache_dir=False)


@pytest.mark.parametrize("workers", [0, 1])
def test_undecodable_image_names_its_path(ds, tmp_path, workers):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    table = pd.concat([ds.table.head(3), pd.DataFrame({"sample_id": ["bad.jpg"], "path": [str(bad)]})])
    with pytest.raises(LabelwiseError, match=r"^\S*bad.jpg: cannot decode image"):
        embed(table, **CNN, num_workers=workers, cache_dir=False)


@pytest.mark.parametrize("name", [n for n in list_backbones() if "<" not in n])
def test_every_backbone_builds_with_its_dimension(name, image_folder):
    backbone = create_backbone(name, size=32)
    paths = [str(image_folder / "0" / p) for p in sorted(p.name for p in (image_folder / "0").iterdir())[:2]]
    batches = list(backbone.encode(paths, batch_size=2, num_workers=0, device="cpu"))
    assert len(batches) == 1
    assert batches[0].shape == (2, DIMS_AT_32[name]) == (2, backbone.dim)
    assert batches[0].dtype == np.float32 and np.isfinite(batches[0]).all()
