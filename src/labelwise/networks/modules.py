"""The torch modules behind the registered models (imported only when one is built)."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, *, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """``x + conv_bn(conv_bn(x))``; the last BN starts at zero, so the block starts as the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SmallResNet(nn.Module):
    """ResNet-9-style network for small images: conv stem, three downsampling stages (the
    first and last followed by a residual block), global max pooling, dropout, linear.

    About 24 M multiply–adds per 32×32 image at ``width=16``: fast enough to train on a CPU.
    Initialisation: He (fan-out) for convolutions, BN at 1/0 with residual branches zeroed
    (Goyal et al. 2017), and a small normal classifier so the first softmax is near uniform.
    """

    def __init__(self, n_classes: int, in_channels: int = 3, *, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn(in_channels, w),
            _conv_bn(w, 2 * w, pool=True),
            Residual(2 * w),
            _conv_bn(2 * w, 4 * w, pool=True),
            _conv_bn(4 * w, 8 * w, pool=True),
            Residual(8 * w),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, n_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Residual):
                nn.init.zeros_(cast(nn.BatchNorm2d, cast(nn.Sequential, m.body[-1])[-2]).weight)
        nn.init.normal_(cast(nn.Linear, self.head[-1]).weight, std=0.01)
        nn.init.zeros_(cast(nn.Linear, self.head[-1]).bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class WithHead(nn.Module):
    """A feature extractor ``body`` and a new ``dropout → linear`` head.

    With ``frozen=True`` the body's parameters do not train and it stays in eval mode, so its
    BatchNorm statistics are kept.
    """

    def __init__(self, body: nn.Module, dim: int, n_classes: int, *, dropout: float = 0.2, frozen: bool = False):
        super().__init__()
        self.body = body
        self.frozen = frozen
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))
        if frozen:
            for p in body.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> WithHead:
        super().train(mode)
        if self.frozen:
            self.body.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def mlp(n_inputs: int, n_classes: int, *, hidden: int = 256, dropout: float = 0.2) -> nn.Sequential:
    """One hidden layer with BatchNorm, ReLU and dropout."""
    return nn.Sequential(
        nn.Linear(n_inputs, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_classes),
    )
