"""What every command leaves in its output folder besides its products:
``config.yaml`` (the resolved options), ``run.json`` (versions, seed, timing, status)
and ``labelwise.log``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ._io import write_json, write_text

log = logging.getLogger("labelwise")
LOG_FILE = "labelwise.log"
_PACKAGES = ("labelwise", "numpy", "pandas", "scikit-learn", "pillow", "torch", "torchvision", "cleanlab", "crowd-kit")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape results (those installed)."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def plain(value: Any) -> Any:
    """Make option values YAML/JSON friendly (paths → str, tuples → lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):  # enums
        return value.value
    return value


@contextlib.contextmanager
def recorded_run(out_dir: Path, command: str, config: Mapping[str, Any], *, stem: str = "") -> Iterator[dict[str, Any]]:
    """Log to ``out_dir`` and write the resolved config and run metadata around a command.

    ``stem`` prefixes the file names (for commands whose output is a single file).
    The yielded dict can receive extra figures to store in ``run.json``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{stem}." if stem else ""
    write_text(out_dir / f"{prefix}config.yaml", yaml.safe_dump(plain(dict(config)), sort_keys=False))
    handler = logging.FileHandler(out_dir / f"{prefix}{LOG_FILE}", mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    log.addHandler(handler)
    started = time.time()
    info: dict[str, Any] = {
        "command": command,
        "argv": sys.argv,
        "seed": config.get("seed"),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }
    extra: dict[str, Any] = {}
    status = "failed"
    log.info("labelwise %s started (output in %s)", command, out_dir)
    try:
        yield extra
        status = "ok"
    finally:
        info.update(status=status, seconds=round(time.time() - started, 3), result=plain(extra))
        write_json(out_dir / f"{prefix}run.json", info)
        log.info("labelwise %s %s in %.1f s", command, status, info["seconds"])
        log.removeHandler(handler)
        handler.close()


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(old: dict[str, Any], new: dict[str, Any], *, most: int = 3) -> str:
    """What differs between two (nested) settings, for an error message; ``""`` when nothing.

    >>> config_differences({"lr": 0.1, "m": {"w": 16}}, {"lr": 0.2, "m": {"w": 16}})
    'lr: 0.1 before, 0.2 now'
    """
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = "; ".join(f"{k}: {a.get(k)!r} before, {b.get(k)!r} now" for k in keys[:most])
    return shown + (" …" if len(keys) > most else "")
