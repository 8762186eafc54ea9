"""Models ``train`` can fit, registered by name (timm style).

Three kinds:

- ``cnn``: a small residual conv–BN–ReLU network for small images, trained from scratch;
- the pretrained CNNs of ``embed``: torchvision's (``resnet18`` …), ``efficientnet_lite0`` and
  any timm architecture as ``timm/<name>``, fine-tuned, or frozen with only a new head trained
  (``freeze=True``);
- ``linear`` and ``mlp``: heads on cached embeddings (the fast path).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._registry import Registry, kind
from ..errors import LabelwiseError, require
from ..features import timm_backbones
from ..features.torchvision_backbones import (
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MIN_SIZE,
)

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


#: The models ``train`` can fit, by name.
MODELS: Registry[ModelSpec] = kind("models", Registry("model", sort=True))


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (a later registration under the same name wins)."""
    return MODELS.register(spec, name=spec.name, description=spec.description)


def register_model_prefix(prefix: str, factory: Callable[[str], ModelSpec], *, description: str = "") -> None:
    """Make every name ``prefix + rest`` a model whose spec is ``factory(name)`` (made once per
    name: a classifier asks for its spec on every batch). Listed as the pattern ``prefix<name>``."""
    MODELS.register_prefix(prefix, functools.cache(factory), description=description)


def list_models() -> list[str]:
    """Names that ``train(model=...)`` accepts; a registered prefix shows once, as a pattern
    such as ``timm/<name>``."""
    return MODELS.names()


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``; one line listing the valid names for an unknown one."""
    return MODELS.get(name)


def check_size(spec: ModelSpec, size: int) -> None:
    """Raise a one-line error when ``spec`` cannot take ``size × size`` inputs."""
    if spec.input == "pixels" and size < spec.min_size:
        raise LabelwiseError(
            f"model {spec.name} needs images of at least {spec.min_size}×{spec.min_size} px "
            f"(its downsampling would shrink smaller ones to nothing), got --size {size}; pass a larger --size"
        )


# ------------------------------------------------------------------ cnn


def build_cnn(n_classes: int, n_inputs: int, *, width: int = 16, dropout: float = 0.2, **_: Any) -> nn.Module:
    """:class:`~labelwise.networks.modules.SmallResNet` (``width`` channels in the stem)."""
    require("torch", "torch", "the cnn model")
    from ..networks.modules import SmallResNet

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
    from ..features.torchvision_backbones import (
        load_weights,
        remove_head,
        resolve_weights,
    )

    torch = require("torch", "torch", f"the {name} model")
    from torchvision.models import get_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        body = get_model(name, weights=None)
    dim = remove_head(body, ARCHITECTURES[name][0])
    if weights is not None:
        file, _tag = resolve_weights(name, None if weights == "hub" else weights, random_state)
        if file is not None:
            load_weights(body, file, name)
            log.info("%s: starting from weights %s", name, file)
    from ..networks.modules import WithHead

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


# ------------------------------------------------------------------ timm


def build_timm(
    name: str,
    n_classes: int,
    n_inputs: int = 3,
    *,
    weights: Any = None,
    freeze: bool = False,
    dropout: float = 0.2,
    random_state: int = 0,
    download: bool = False,
    **_: Any,
) -> nn.Module:
    """timm network ``name`` (``timm/<arch>`` or ``efficientnet_lite0``) with a new
    ``dropout → linear`` head for ``n_classes``.

    ``weights``: a state_dict file; ``"hub"`` for the pretrained weights (efficientnet_lite0:
    the packaged ones; ``timm/<arch>``: timm's file when it is in the hub cache, or fetched
    there with ``download=True``; random initialisation with a warning otherwise); or None for
    random initialisation without a warning (used when a trained checkpoint is loaded next).
    ``freeze``: only the head is trainable; the backbone keeps its BatchNorm statistics.
    """
    require("torch", "pretrained", f"the {name} model")
    if weights is None:
        resolved = timm_backbones.Weights(None, f"random-seed{random_state}")
    else:
        resolved = timm_backbones.resolve_weights(
            name, None if weights == "hub" else weights, random_state=random_state, download=download
        )
    body, dim = timm_backbones.build_network(name, resolved, random_state=random_state)
    if resolved.file is not None:
        log.info("%s: starting from weights %s", name, resolved.file)
    from ..networks.modules import WithHead

    return WithHead(body, dim, n_classes, dropout=dropout, frozen=freeze)


def timm_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``timm/<arch>``: sizes and normalisation from timm's pretrained_cfg."""
    inputs = timm_backbones.input_config(name)
    return ModelSpec(
        name=name,
        input="pixels",
        build=functools.partial(build_timm, name),
        default_size=inputs.size,
        min_size=inputs.size if inputs.fixed else inputs.min_size,
        channels=3,
        mean=inputs.mean,
        std=inputs.std,
        description=f"timm {timm_backbones.timm_architecture(name)}, fine-tuned (or frozen with --freeze)",
    )


register_model(
    ModelSpec(
        name=timm_backbones.LITE0,
        input="pixels",
        build=functools.partial(build_timm, timm_backbones.LITE0),
        default_size=224,
        min_size=timm_backbones.MIN_SIZE,
        channels=3,
        mean=timm_backbones.LITE0_MEAN,
        std=timm_backbones.LITE0_STD,
        description="EfficientNet-Lite0 with ImageNet weights (labelwise[pretrained]), fine-tuned (or frozen with --freeze)",
    )
)
register_model_prefix(
    timm_backbones.PREFIX,
    timm_spec,
    description="any timm architecture (timm/resnet18 …), fine-tuned (or frozen with --freeze)",
)


# ------------------------------------------------------------------ heads on embeddings


def build_linear(n_classes: int, n_inputs: int, **_: Any) -> nn.Module:
    """Multinomial logistic regression on standardised embeddings."""
    return require("torch", "torch", "the linear model").nn.Linear(n_inputs, n_classes)


def build_mlp(n_classes: int, n_inputs: int, *, hidden: int = 256, dropout: float = 0.2, **_: Any) -> nn.Module:
    """One hidden layer (BN, ReLU, dropout) on standardised embeddings."""
    require("torch", "torch", "the mlp model")
    from ..networks.modules import mlp

    return mlp(n_inputs, n_classes, hidden=hidden, dropout=dropout)


register_model(ModelSpec("linear", "embedding", build_linear, description="linear head on cached embeddings"))
register_model(ModelSpec("mlp", "embedding", build_mlp, description="one-hidden-layer head on cached embeddings"))
