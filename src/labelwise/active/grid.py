"""Experiment grids for ``simulate``: settings, axes and named experiments from YAML.

A grid is a mapping of settings (:data:`SETTINGS`). ``strategies``, ``models``,
``backbones`` and ``seeds`` are lists; any other setting given as a list is an axis too.
Every combination of the axes is one run. ``experiments`` names groups of settings, each
laid over the top-level ones::

    seeds: [0, 1, 2]
    n_start: 20
    n_new: 40
    rounds: 12
    experiments:
      anchor: {model: logreg, pca: 50, strategies: [random, margin]}
      labelwise: {strategies: [random, auto], semi: [false, true]}

An unknown key is a one-line error naming it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import LabelwiseError
from .models import DEFAULT_MODEL, SEMI_SUPERVISED

# Settings of one run and their defaults; the plural ones are lists (axes).
SETTINGS: dict[str, Any] = {
    "strategies": ["random", "auto"],
    "models": [DEFAULT_MODEL],
    "backbones": ["pixels"],  # simulate() puts its own default first: simclr when PyTorch is installed
    "seeds": [0, 1, 2],
    "n_start": 20,
    "per_class": False,
    "start": "random",
    "n_new": 40,
    "rounds": 10,
    "patience": None,
    "epochs": 30,
    "semi": False,
    "augment": "none",
    "pretrained": True,
    "weights": None,
    "size": None,
    "pca": None,
}
AXES = {"strategies": "strategy", "models": "model", "backbones": "backbone", "seeds": "seed"}
EXPERIMENTS_KEY = "experiments"


def read_grid(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (checked with :func:`check_grid`)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelwiseError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise LabelwiseError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, Mapping):
        raise LabelwiseError(f"{path}: expected a mapping of settings (and optionally 'experiments')")
    return check_grid(data, where=str(path))


def check_grid(grid: Mapping[str, Any], *, where: str = "grid") -> dict[str, Any]:
    """``grid`` with keys normalised (``n-start`` → ``n_start``); a one-line error for an
    unknown key, at the top level or inside a named experiment."""
    out = _check_keys(grid, where, allow_experiments=True)
    experiments = out.get(EXPERIMENTS_KEY)
    if experiments is not None:
        if not isinstance(experiments, Mapping) or not experiments:
            raise LabelwiseError(f"{where}: 'experiments' must map names to settings")
        out[EXPERIMENTS_KEY] = {
            str(name): _check_keys(settings or {}, f"{where}: experiment {name!r}", allow_experiments=False)
            for name, settings in experiments.items()
        }
    return out


def _check_keys(mapping: Any, where: str, *, allow_experiments: bool) -> dict[str, Any]:
    if not isinstance(mapping, Mapping):
        raise LabelwiseError(f"{where}: expected a mapping of settings, got {type(mapping).__name__}")
    out = {str(k).replace("-", "_"): v for k, v in mapping.items()}
    valid = set(SETTINGS) | ({EXPERIMENTS_KEY} if allow_experiments else set())
    for key in out:
        if key not in valid:
            singular = {v: k for k, v in AXES.items()}.get(key)
            hint = f" (did you mean {singular!r}?)" if singular else ""
            raise LabelwiseError(f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(sorted(valid))}")
    return out


def expand_grid(grid: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One dict per run: ``experiment``, ``strategy``, ``model``, ``backbone``, ``seed`` and
    every other setting, from ``base`` (defaults: :data:`SETTINGS`), then ``grid``'s top
    level, then each named experiment.

    >>> runs = expand_grid({"strategies": ["random", "margin"], "seeds": [0, 1]})
    >>> len(runs), sorted({r["experiment"] for r in runs})
    (4, ['spreading_logreg+pixels'])
    """
    settings = {**SETTINGS, **(base or {}), **{k: v for k, v in grid.items() if k != EXPERIMENTS_KEY}}
    named = grid.get(EXPERIMENTS_KEY) or {None: {}}
    runs: list[dict[str, Any]] = []
    for name, overrides in named.items():
        merged = {**settings, **overrides}
        axes = {key: _as_list(merged[key]) for key in AXES}
        axes.update({key: value for key, value in merged.items() if key not in AXES and isinstance(value, list)})
        # Axes other than strategy and seed become part of the experiment's name.
        varying = [
            AXES.get(key, key) for key, values in axes.items() if key not in ("strategies", "seeds") and len(values) > 1
        ]
        for combo in itertools.product(*axes.values()):
            run = {**merged, **dict(zip(axes, combo))}
            for plural, single in AXES.items():
                run[single] = run.pop(plural)
            if name is None:
                run["experiment"] = _auto_name(run, [k for k in varying if k not in ("model", "backbone")])
            else:
                run["experiment"] = name + "".join(f" {key}={run[key]}" for key in varying)
            runs.append(run)
    return runs


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _auto_name(run: Mapping[str, Any], varying: list[str]) -> str:
    name = f"{run['model']}+{run['backbone']}"
    if run.get("pca"):
        name += f"+pca{run['pca']}"
    if run.get("semi") and run["model"] not in SEMI_SUPERVISED and "semi" not in varying:
        name += "+semi"
    return name + "".join(f" {key}={run[key]}" for key in varying)
