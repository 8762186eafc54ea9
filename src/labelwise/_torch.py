"""Torch plumbing every layer shares: the device, data-loading workers, the torch hub folder and
reading a state_dict. torch is imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LabelwiseError

if TYPE_CHECKING:
    import torch


def default_num_workers(device: torch.device) -> int:
    """Decoding processes when the caller gives none.

    On CPU the forward pass already keeps every core busy: on 2 cores, decoding in the
    main process was as fast as 1 or 2 workers (bench/embed_throughput.py). With more
    cores, or with the network on an accelerator, decoding is worth moving out.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if device.type == "cpu":
        return 0 if cores <= 2 else min(4, cores // 4)
    return min(8, cores - 1)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → cuda, then mps, then cpu; anything else is checked to be usable."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise LabelwiseError(f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LabelwiseError(f"device {device!r} asked for, but PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise LabelwiseError(f"device {device!r} asked for, but MPS is not available; use 'auto' or 'cpu'")
    return dev


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()``, computed as torch does when torch is not imported yet."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a weights file (a state_dict, or a checkpoint dict with a ``state_dict``,
    ``model`` or ``model_state_dict`` entry; DataParallel's ``module.`` prefixes removed); one
    line naming the file when it is none of these."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = reason if len(reason) <= 100 else reason[:99] + "…"
        raise LabelwiseError(
            f"{path}: cannot read as torch weights ({reason}); save them with torch.save(model.state_dict(), path)"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise LabelwiseError(
            f"{path}: expected a state_dict (or a checkpoint dict with a 'state_dict' or 'model' entry)"
        )
    if all(k.startswith("module.") for k in obj):  # saved from DataParallel
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_checked_state(model: torch.nn.Module, state: dict[str, Any], *, path: Path, name: str) -> None:
    """Load ``state`` into ``model`` only if every weight fits: one line listing the wrong
    shapes, missing and unexpected keys otherwise (buffers that count batches may be absent)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = [
        f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})"
        for what, keys in (("wrong shapes", wrong), ("missing keys", missing), ("unexpected keys", unexpected))
        if keys
    ]
    if problems:
        raise LabelwiseError(f"{path}: weights do not fit {name}: {'; '.join(problems)}. Is it a {name} checkpoint?")
    model.load_state_dict(state, strict=False)
