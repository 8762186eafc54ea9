"""Optimisers and learning-rate schedules; every schedule steps once per batch."""

from __future__ import annotations

import torch

from ..errors import LabelwiseError

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine", "warmup-cosine", "onecycle")


def make_optimizer(
    params: list[torch.nn.Parameter], name: str, *, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum 0.9; no weight decay on biases and norm weights."""
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    raise LabelwiseError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def make_schedule(
    optimizer: torch.optim.Optimizer,
    name: str,
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    step_size: int = 10,
    gamma: float = 0.1,
    warmup_epochs: float = 1.0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-batch scheduler.

    ``step``: multiply by ``gamma`` every ``step_size`` epochs; ``cosine``: cosine decay to 0;
    ``warmup-cosine``: linear warm-up over ``warmup_epochs`` then cosine; ``onecycle``: the
    one-cycle policy (30% warm-up to ``lr``, then cosine annealing); ``constant``: ``lr``.
    """
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler
    if name == "constant":
        return sched.LambdaLR(optimizer, lambda _: 1.0)
    if name == "step":
        return sched.StepLR(optimizer, step_size=max(1, step_size * steps_per_epoch), gamma=gamma)
    if name == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total)
    if name == "warmup-cosine":
        warm = min(total - 1, max(1, round(warmup_epochs * steps_per_epoch)))
        if warm < 1:
            return sched.CosineAnnealingLR(optimizer, T_max=total)
        return sched.SequentialLR(
            optimizer,
            [
                sched.LinearLR(optimizer, start_factor=0.01, total_iters=warm),
                sched.CosineAnnealingLR(optimizer, T_max=total - warm),
            ],
            milestones=[warm],
        )
    if name == "onecycle":
        return sched.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total, pct_start=0.3, div_factor=25.0, final_div_factor=1e3
        )
    raise LabelwiseError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
