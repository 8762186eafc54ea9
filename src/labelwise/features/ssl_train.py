"""SimCLR training of the small CNN on unlabeled images (torch; imported only to train or encode).

Two random views of every image in a batch are pulled together and pushed away from the
other images' views by the NT-Xent loss (Chen et al. 2020); the features are the encoder's
pooled output, the projection head is used only for training.

Reproducible for a ``random_state`` on CPU: initialisation is seeded, and every epoch's
order and views are drawn from a generator seeded with ``(random_state, epoch)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._progress import track
from ..errors import LabelwiseError
from ..networks.modules import SmallResNet
from ..networks.optim import make_optimizer, make_schedule
from .ssl_settings import SimCLRSettings

log = logging.getLogger("labelwise")


class Encoder(nn.Module):
    """The ``cnn`` feature extractor (:class:`~labelwise.networks.modules.SmallResNet` without its
    head) with its input normalisation and side kept as buffers, so a saved state_dict is complete.

    Takes float NCHW images in [0, 1]; returns ``(n, 8·width)`` features.
    """

    mean: torch.Tensor
    std: torch.Tensor
    input_size: torch.Tensor

    def __init__(self, channels: int, width: int, size: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))
        self.register_buffer("input_size", torch.tensor(size))
        self.features = SmallResNet(1, channels, width=width).features
        self.width = width
        self.dim = 8 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)
        return self.features(x.contiguous(memory_format=torch.channels_last))


def projection_head(dim: int, out: int) -> nn.Sequential:
    """SimCLR's MLP ``dim → dim → out``, used only in training."""
    return nn.Sequential(
        nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True), nn.Linear(dim, out)
    )


class Views:
    """Random views of a uint8 NCHW batch, every image with its own draw: crop (area
    ``min_scale``–1, aspect 3/4–4/3), rotation, and for colour images also mirror, colour
    jitter and random grayscale.

    The geometry is one ``affine_grid`` resampling for the whole batch: torchvision's
    transforms draw one set of parameters per call, and a Python loop over images costs
    more than the network on small images.
    """

    def __init__(self, *, min_scale: float, max_degrees: float, colour: bool) -> None:
        self.min_scale = min_scale
        self.max_degrees = max_degrees
        self.colour = colour

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = batch.float().div_(255)
        n = x.shape[0]
        r = torch.rand(n, 6, generator=generator).to(x.device)
        area = self.min_scale + (1 - self.min_scale) * r[:, 0]
        aspect = torch.exp((r[:, 1] * 2 - 1) * math.log(4 / 3))
        w = torch.sqrt(area * aspect).clamp(max=1.0)  # half-sides of the crop, in [-1, 1] units
        h = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (r[:, 2] * 2 - 1) * (1 - w)
        cy = (r[:, 3] * 2 - 1) * (1 - h)
        angle = (r[:, 4] * 2 - 1) * math.radians(self.max_degrees)
        flip = torch.where(r[:, 5] < 0.5, -1.0, 1.0) if self.colour else torch.ones(n, device=x.device)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([w * cos * flip, -h * sin, cx], 1), torch.stack([w * sin * flip, h * cos, cy], 1)], 1
        )
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return self._jitter(x, generator) if self.colour else x

    @staticmethod
    def _jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Brightness, contrast and saturation ×[0.6, 1.4] (80% of images), grayscale (20%)."""
        n = x.shape[0]
        r = torch.rand(n, 5, generator=generator).to(x.device).view(n, 5, 1, 1, 1).unbind(1)
        on = (r[0] < 0.8).float()
        factor = [1 + on * (f * 0.8 - 0.4) for f in r[1:4]]
        x = x * factor[0]
        x = (x - x.mean((1, 2, 3), keepdim=True)) * factor[1] + x.mean((1, 2, 3), keepdim=True)
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)
        x = gray + (x - gray) * factor[2]
        x = torch.where(r[4] < 0.2, gray, x)
        return x.clamp_(0, 1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The SimCLR loss of two ``(n, d)`` batches of projections, row ``i`` of each a view of image ``i``."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


def build_encoder(channels: int, width: int, size: int, random_state: int) -> Encoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        return Encoder(channels, width, size)


def train_encoder(
    images: np.ndarray,
    settings: SimCLRSettings,
    *,
    random_state: int = 0,
    device: torch.device | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Encoder, list[dict[str, Any]]]:
    """Train an :class:`Encoder` with SimCLR on uint8 images ``(n, s, s)`` or ``(n, s, s, c)``.

    Returns the encoder (eval mode, on ``device``) and one history row per epoch
    (``epoch``, ``loss``, ``lr``, ``seconds``).
    """
    device = device or torch.device("cpu")
    x = torch.from_numpy(np.ascontiguousarray(images[..., None] if images.ndim == 3 else images)).permute(0, 3, 1, 2)
    n, channels = x.shape[0], x.shape[1]
    if n < 2:
        raise LabelwiseError(f"simclr needs at least 2 images to learn from, got {n}")
    encoder = build_encoder(channels, settings.width, x.shape[-1], random_state)
    flat = x.permute(0, 2, 3, 1).reshape(-1, channels)[:: max(1, x.numel() // channels // 2_000_000)].float() / 255
    encoder.mean.copy_(flat.mean(0))
    encoder.std.copy_(flat.std(0).clamp(min=1e-3))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state + 1)
        head = projection_head(encoder.dim, settings.projection)
    encoder, head = encoder.to(device).to(memory_format=torch.channels_last), head.to(device)
    views = Views(min_scale=settings.min_scale, max_degrees=settings.max_degrees, colour=channels == 3)

    batch_size = min(settings.batch_size, n)
    steps = n // batch_size  # the ragged tail would make a batch with too few negatives
    params = [*encoder.parameters(), *head.parameters()]
    opt = make_optimizer(params, "adamw", lr=settings.lr, weight_decay=settings.weight_decay)
    sched = make_schedule(
        opt, "warmup-cosine", epochs=settings.epochs, steps_per_epoch=steps, lr=settings.lr, warmup_epochs=1.0
    )
    history: list[dict[str, Any]] = []
    encoder.train()
    head.train()
    for epoch in range(1, settings.epochs + 1):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(random_state * 100_003 + epoch)
        order = torch.randperm(n, generator=gen)
        total = torch.zeros((), device=device)
        for b in track(range(steps), total=steps, description=f"simclr epoch {epoch}/{settings.epochs}"):
            xb = x[order[b * batch_size : (b + 1) * batch_size]].to(device, non_blocking=True)
            both = torch.cat([views(xb, gen), views(xb, gen)])
            z = head(encoder(both))
            loss = nt_xent(z[: len(xb)], z[len(xb) :], settings.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach()
        row = {
            "epoch": epoch,
            "loss": float(total) / steps,
            "lr": opt.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - t0, 3),
        }
        if not math.isfinite(row["loss"]):
            raise LabelwiseError(f"simclr training diverged at epoch {epoch} (loss is not finite); lower lr")
        history.append(row)
        log.info("simclr epoch %d/%d  loss %.4f  %.1fs", epoch, settings.epochs, row["loss"], row["seconds"])
        if on_epoch is not None:
            on_epoch(row)
    return encoder.eval(), history


def encode_images(encoder: Encoder, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Features ``(n, dim)`` float32 of uint8 images ``(n, s, s[, c])``, in eval mode."""
    device = encoder.mean.device
    x = torch.from_numpy(np.ascontiguousarray(images[..., None] if images.ndim == 3 else images)).permute(0, 3, 1, 2)
    out = []
    encoder.eval()
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out.append(encoder(x[start : start + batch_size].to(device).float().div_(255)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, encoder.dim), np.float32)
