"""Augmentation presets, applied to whole uint8 batches on the training device.

``none``    no change.
``light``   shifts up to 1/8 of the side, rotations up to ±5° and (unless turned off)
            horizontal flips: safe for digits, faces and most photos.
``strong``  TrivialAugmentWide per image, then ``light``.

Geometric changes are one affine resampling per batch (``affine_grid``), which costs far
less on a CPU than per-image PIL transforms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PRESETS = ("none", "light", "strong")


class Augment:
    """Callable ``(uint8 NCHW batch, generator) -> float NCHW batch in [0, 1]``."""

    def __init__(self, preset: str = "light", *, flip: bool = True, max_shift: float = 0.125, max_degrees: float = 5.0):
        if preset not in PRESETS:
            from ..errors import LabelwiseError

            raise LabelwiseError(f"unknown augmentation {preset!r}; choose one of {', '.join(PRESETS)}")
        self.preset = preset
        self.flip = flip
        self.max_shift = max_shift
        self.max_degrees = max_degrees
        self._trivial = None
        if preset == "strong":
            from torchvision.transforms import v2

            self._trivial = v2.TrivialAugmentWide()

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.preset == "none":
            return batch.float().div_(255)
        if self._trivial is not None:
            # torchvision draws its op choices from the global RNG: fork it, seeded from ours,
            # so a seed reproduces the run and resuming does not change it.
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                cpu = batch.cpu()
                batch = torch.stack([self._trivial(img) for img in cpu]).to(batch.device)
        return self._geometric(batch.float().div_(255), generator)

    def _geometric(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        rand = torch.rand(n, 4, generator=generator).to(x.device)
        angle = (rand[:, 0] * 2 - 1) * math.radians(self.max_degrees)
        shift = (rand[:, 1:3] * 2 - 1) * (2 * self.max_shift)  # affine_grid spans [-1, 1]: side = 2
        sign = torch.where(rand[:, 3] < 0.5, -1.0, 1.0) if self.flip else torch.ones(n, device=x.device)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([cos * sign, -sin, shift[:, 0]], 1), torch.stack([sin * sign, cos, shift[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def tta_views(x: torch.Tensor, *, flip: bool) -> list[torch.Tensor]:
    """Test-time views of a float batch: itself plus its mirror image when flips are allowed
    in training, else plus two shifts of 1/16 of the side."""
    if flip:
        return [x, x.flip(-1)]
    step = max(1, x.shape[-1] // 16)
    pad = F.pad(x, (step, step, step, step), mode="replicate")
    h, w = x.shape[-2:]
    return [x, pad[..., :h, :w], pad[..., 2 * step : 2 * step + h, 2 * step : 2 * step + w]]
