"""torchvision CNNs as backbones: the globally pooled penultimate feature, classifier removed.

Weights come from a file, else from the torch hub cache when the official file is
already there, else random initialisation (with a warning). Nothing is downloaded.
torch is imported only when a network is built or run, so a full cache hit never imports it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .._torch import default_num_workers, load_checked_state, read_state_dict, resolve_device, torch_hub_dir
from ..data.pixels import load_square
from ..errors import LabelwiseError, installed, require
from .backbones import Backbone, WeightsArg, register_backbone

if TYPE_CHECKING:
    import torch

log = logging.getLogger("labelwise")

# Architecture → (the classification layer replaced to expose the pooled features,
# torchvision's official weight files as named in the hub cache, default first).
ARCHITECTURES = {
    "resnet18": ("fc", ("resnet18-f37072fd.pth",)),
    "resnet34": ("fc", ("resnet34-b627a593.pth",)),
    "resnet50": ("fc", ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth")),
    "squeezenet1_1": ("classifier", ("squeezenet1_1-b8a52dc0.pth",)),
    "mobilenet_v3_small": ("classifier.3", ("mobilenet_v3_small-047dcff4.pth",)),
    "efficientnet_b0": ("classifier.1", ("efficientnet_b0_rwightman-7f5810bc.pth",)),
    "convnext_tiny": ("classifier.2", ("convnext_tiny-983f1562.pth",)),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_SIZE = 32  # total stride of these networks: smaller inputs vanish before pooling


class TorchvisionBackbone(Backbone):
    """A torchvision classifier without its last layer; see the module docstring for weights."""

    def __init__(
        self, name: str, *, size: int | None = None, weights: WeightsArg = None, random_state: int = 0
    ) -> None:
        for module in ("torch", "torchvision"):
            if not installed(module):
                require(module, "torch", f"the {name} backbone")  # raises, naming the extra
        self.name = name
        self.size = size or 224
        if self.size < MIN_SIZE:
            raise LabelwiseError(f"size must be at least {MIN_SIZE} px for {name}, got {self.size}")
        self.random_state = random_state
        self.weights_file, self.weights_tag = resolve_weights(name, weights, random_state)

    @functools.cached_property
    def model(self) -> torch.nn.Module:
        """The network, built on first use (a full cache hit never builds it)."""
        torch = require("torch", "torch", f"the {self.name} backbone")
        from torchvision.models import get_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            model = get_model(self.name, weights=None)
        self._dim = remove_head(model, ARCHITECTURES[self.name][0])
        if self.weights_file is not None:
            load_weights(model, self.weights_file, self.name)
        return model.eval()

    @property
    def dim(self) -> int:
        self.model  # noqa: B018 - building the model sets the dimension
        return self._dim

    def encode(
        self, paths: Sequence[str], *, batch_size: int = 64, num_workers: int | None = None, device: str = "auto"
    ) -> Iterator[np.ndarray]:
        require("torch", "torch", f"the {self.name} backbone")
        yield from encode_images(
            self.model,
            paths,
            self.size,
            IMAGENET_MEAN,
            IMAGENET_STD,
            batch_size=batch_size,
            num_workers=num_workers,
            device=device,
        )


def encode_images(
    network: torch.nn.Module,
    paths: Sequence[str],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    batch_size: int,
    num_workers: int | None,
    device: str,
) -> Iterator[np.ndarray]:
    """``network``'s output for the images at ``paths``, a batch at a time: RGB squares of
    ``size`` px scaled to [0, 1] and normalised by ``mean``/``std``; decoded by DataLoader workers."""
    import torch
    from torch.utils.data import DataLoader

    dev = resolve_device(device)
    model = network.to(dev).to(memory_format=torch.channels_last)
    shift = torch.tensor(mean, device=dev).mul(255).view(1, 3, 1, 1)
    scale = torch.tensor(std, device=dev).mul(255).view(1, 3, 1, 1)
    loader: DataLoader[tuple[np.ndarray, str]] = DataLoader(
        cast(Any, _Images(paths, size)),  # map-style: __len__ + __getitem__ is all it needs
        batch_size=batch_size,
        num_workers=default_num_workers(dev) if num_workers is None else num_workers,
        collate_fn=_collate,
        pin_memory=dev.type == "cuda",
    )
    for pixels, errors in loader:
        problem = next((e for e in errors if e), None)
        if problem:
            raise LabelwiseError(problem)
        # NHWC uint8 → NCHW float whose strides are already channels_last: no copy.
        x = pixels.to(dev, non_blocking=True).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            out = model(x.sub_(shift).div_(scale))
        yield out.float().cpu().numpy()


class _Images:
    """Map-style dataset for the DataLoader; a decode failure travels back as a message
    so the main process raises one clean error instead of a worker traceback."""

    def __init__(self, paths: Sequence[str], size: int) -> None:
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        try:
            return load_square(self.paths[i], self.size, "RGB"), ""
        except LabelwiseError as exc:
            return np.zeros((self.size, self.size, 3), np.uint8), str(exc)


def _collate(items: list[tuple[np.ndarray, str]]) -> tuple[torch.Tensor, list[str]]:
    import torch

    return torch.from_numpy(np.stack([pixels for pixels, _ in items])), [error for _, error in items]


def hub_weights_file(name: str) -> tuple[Path, Path | None]:
    """Where torchvision keeps ``name``'s default weights, and the cached file found (or None)."""
    folder = torch_hub_dir() / "checkpoints"
    candidates = [folder / file for file in ARCHITECTURES[name][1]]
    return candidates[0], next((f for f in candidates if f.is_file()), None)


def resolve_weights(name: str, weights: WeightsArg, random_state: int) -> tuple[Path | None, str]:
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise LabelwiseError(f"{path}: weights file not found")
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return path, f"sha256-{digest.hexdigest()[:12]}"
    expected, found = hub_weights_file(name)
    if found is not None:
        return found, found.stem
    log.warning(
        "%s: no weights given and none in the torch hub cache, so the network is RANDOMLY "
        "initialised (seed %d): its features are not pretrained and say little about image content. "
        "Pass weights=FILE (--weights FILE, a saved state_dict) or place the official %s in %s.",
        name,
        random_state,
        expected.name,
        expected.parent,
    )
    return None, f"random-seed{random_state}"


def remove_head(model: torch.nn.Module, path: str) -> int:
    """Replace the classification layer at ``path``; return the feature dimension."""
    from torch import nn

    parent_path, _, attr = path.rpartition(".")
    layer = model.get_submodule(path)
    replacement: nn.Module
    if isinstance(layer, nn.Linear):
        dim, replacement = layer.in_features, nn.Identity()
    else:  # squeezenet classifies with a 1×1 conv then pools: keep only the pooling
        conv = next(m for m in layer.modules() if isinstance(m, nn.Conv2d))
        dim, replacement = conv.in_channels, nn.AdaptiveAvgPool2d(1)
    setattr(model.get_submodule(parent_path), attr, replacement)
    return int(dim)


def load_weights(model: torch.nn.Module, path: Path, name: str) -> None:
    """Load a state_dict into ``model`` (head removed); any classifier in the file is ignored."""
    head = ARCHITECTURES[name][0] + "."
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(head)}
    load_checked_state(model, state, path=path, name=name)


for _name in ARCHITECTURES:
    register_backbone(
        functools.partial(TorchvisionBackbone, _name),
        name=_name,
        description=f"torchvision {_name}, pooled features (ImageNet weights from --weights or the hub cache)",
    )
