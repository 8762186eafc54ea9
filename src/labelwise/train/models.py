"""Models ``train`` can fit, registered by name (timm style).

Three kinds:

- ``cnn``: a small residual conv–BN–ReLU network for small images, trained from scratch;
- the torchvision CNNs of ``embed`` (``resnet18`` …), fine-tuned, or frozen with only a new
  head trained (``freeze=True``);
- ``linear`` and ``mlp``: heads on cached embeddings (the fast path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import LabelwiseError, require
from ..features.torchvision_backbones import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, MIN_SIZE

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger("labelwise")

InputKind = Literal["pixels", "embedding"]


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model needs as input and how to build it.

    Attributes
    ----------
    name : registry name.
    input : ``pixels`` (uint8 images) or ``embedding`` (feature vectors from ``embed``).
    default_size : input side in pixels (None: chosen from the data, or not an image model).
    min_size : smallest input side the network takes.
    channels : 3 for RGB networks; None means 1 or 3 as the data is gray or colour.
    mean, std : per-channel normalisation; None means computed from the training images.
    build : ``build(n_classes, n_inputs, **options) -> nn.Module``; ``n_inputs`` is the channel
        count for image models and the vector length for heads.
    """

    name: str
    input: InputKind
    build: Callable[..., nn.Module]
    default_size: int | None = None
    min_size: int = 1
    channels: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (a later registration under the same name wins)."""
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Names that ``train(model=...)`` accepts."""
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``; a clear error for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LabelwiseError(f"unknown model {name!r}; choose one of {', '.join(list_models())}") from None


def check_size(spec: ModelSpec, size: int) -> None:
    """Raise a one-line error when ``spec`` cannot take ``size × size`` inputs."""
    if spec.input == "pixels" and size < spec.min_size:
        raise LabelwiseError(
            f"model {spec.name} needs images of at least {spec.min_size}×{spec.min_size} px "
            f"(its downsampling would shrink smaller ones to nothing), got --size {size}; pass a larger --size"
        )


# ------------------------------------------------------------------ cnn


def build_cnn(n_classes: int, n_inputs: int, *, width: int = 16, dropout: float = 0.2, **_: Any) -> nn.Module:
    """:class:`~labelwise.train.networks.SmallResNet` (``width`` channels in the stem)."""
    require("torch", "torch", "the cnn model")
    from .networks import SmallResNet

    return SmallResNet(n_classes, n_inputs, width=width, dropout=dropout)


register_model(
    ModelSpec(
        name="cnn",
        input="pixels",
        build=build_cnn,
        min_size=8,
        description="small residual CNN trained from scratch (gray or RGB, 16–64 px)",
    )
)


# ------------------------------------------------------------------ torchvision


def build_torchvision(
    name: str,
    n_classes: int,
    n_inputs: int = 3,
    *,
    weights: Any = None,
    freeze: bool = False,
    dropout: float = 0.2,
    random_state: int = 0,
    **_: Any,
) -> nn.Module:
    """torchvision ``name`` with a new ``dropout → linear`` head for ``n_classes``.

    ``weights``: a state_dict file, ``"hub"`` for the official file when it is already in the
    torch hub cache (random initialisation with a warning otherwise), or None for random
    initialisation without a warning (used when a trained checkpoint is loaded next).
    ``freeze``: only the head is trainable; the backbone keeps its BatchNorm statistics.
    """
    from ..features.torchvision_backbones import _load_weights, _remove_head, _resolve_weights

    torch = require("torch", "torch", f"the {name} model")
    from torchvision.models import get_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        body = get_model(name, weights=None)
    dim = _remove_head(body, ARCHITECTURES[name][0])
    if weights is not None:
        file, _tag = _resolve_weights(name, None if weights == "hub" else weights, random_state)
        if file is not None:
            _load_weights(body, file, name)
            log.info("%s: starting from weights %s", name, file)
    from .networks import WithHead

    return WithHead(body, dim, n_classes, dropout=dropout, frozen=freeze)


for _name in ARCHITECTURES:
    register_model(
        ModelSpec(
            name=_name,
            input="pixels",
            build=lambda n_classes, n_inputs=3, _n=_name, **kw: build_torchvision(_n, n_classes, n_inputs, **kw),
            default_size=224,
            min_size=MIN_SIZE,
            channels=3,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            description=f"torchvision {_name}, fine-tuned (or frozen with --freeze)",
        )
    )


# ------------------------------------------------------------------ heads on embeddings


def build_linear(n_classes: int, n_inputs: int, **_: Any) -> nn.Module:
    """Multinomial logistic regression on standardised embeddings."""
    return require("torch", "torch", "the linear model").nn.Linear(n_inputs, n_classes)


def build_mlp(n_classes: int, n_inputs: int, *, hidden: int = 256, dropout: float = 0.2, **_: Any) -> nn.Module:
    """One hidden layer (BN, ReLU, dropout) on standardised embeddings."""
    require("torch", "torch", "the mlp model")
    from .networks import mlp

    return mlp(n_inputs, n_classes, hidden=hidden, dropout=dropout)


register_model(ModelSpec("linear", "embedding", build_linear, description="linear head on cached embeddings"))
register_model(ModelSpec("mlp", "embedding", build_mlp, description="one-hidden-layer head on cached embeddings"))
