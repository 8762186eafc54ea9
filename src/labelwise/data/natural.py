"""Natural ("human") ordering of names: ``2.jpg`` before ``10.jpg``."""

from __future__ import annotations

import re
from collections.abc import Iterable

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[object, ...], str]:
    """Sort key that compares runs of digits as numbers.

    >>> sorted(["10.jpg", "2.jpg", "1.jpg"], key=natural_key)
    ['1.jpg', '2.jpg', '10.jpg']
    """
    # re.split with a capture group alternates text and digit runs, so position i
    # always holds the same type in every key and tuples compare cleanly.
    parts = tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(_DIGITS.split(text)))
    return parts, text


def natural_sorted(items: Iterable[str]) -> list[str]:
    """Return ``items`` in natural order."""
    return sorted(items, key=natural_key)
