"""One registry type for every pluggable kind: backbones, train models, noise detectors,
pseudo-label methods, aggregators, query strategies and loop models.

A registry maps names to objects (a factory, a function, a spec) with a one-line description
and optional metadata. Entries register by decorator or by call; a *prefix* entry stands for
a family of names (``timm/<name>``). An unknown name is always the same one-line error,
listing the valid names; tests can add an entry for the length of a ``with`` block.

Examples
--------
>>> shapes = Registry("shape")
>>> @shapes.register(description="four equal sides")
... def square(side):
...     return side * side
>>> shapes.get("square")(3), shapes.names()
(9, ['square'])
>>> shapes.get("circle")
Traceback (most recent call last):
...
labelwise.errors.LabelwiseError: unknown shape 'circle'; choose one of: square
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from .errors import LabelwiseError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object: its name, the object, a one-line description and metadata."""

    name: str
    obj: T
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Named objects of one ``kind`` (the word the error message uses)."""

    def __init__(self, kind: str, *, sort: bool = False) -> None:
        self.kind = kind
        self.sort = sort
        self._entries: dict[str, Entry[T]] = {}
        self._prefixes: dict[str, Entry[Callable[..., T]]] = {}

    @overload
    def register(self, obj: T, *, name: str | None = None, description: str = "", **meta: Any) -> T: ...

    @overload
    def register(
        self, obj: None = None, *, name: str | None = None, description: str = "", **meta: Any
    ) -> Callable[[T], T]: ...

    def register(self, obj: Any = None, *, name: str | None = None, description: str = "", **meta: Any) -> Any:
        """Register ``obj`` under ``name`` (default its ``__name__``); without ``obj``, a decorator.

        The description defaults to the first line of the object's docstring.
        """

        def add(item: T) -> T:
            key = name or getattr(item, "name", None) or getattr(item, "__name__", None)
            if not isinstance(key, str) or not key:
                raise TypeError(f"{self.kind}: give a name for {item!r}")
            doc = getattr(getattr(item, "func", item), "__doc__", "")  # a functools.partial: its function's
            text = description or _first_line(getattr(item, "description", "") or doc or "")
            self._entries[key] = Entry(key, item, text, dict(meta))
            return item

        return add if obj is None else add(obj)

    def register_prefix(self, prefix: str, factory: Callable[..., T], *, description: str = "", **meta: Any) -> None:
        """Make every name ``prefix + rest`` an entry: ``get(name)`` calls ``factory(name)``. Listed as
        the pattern ``prefix<name>``."""
        self._prefixes[prefix] = Entry(
            f"{prefix}<name>", factory, description or _first_line(factory.__doc__ or ""), dict(meta)
        )

    def names(self) -> list[str]:
        """Every name, patterns (``timm/<name>``) last."""
        names = sorted(self._entries) if self.sort else list(self._entries)
        return names + [e.name for e in self._prefixes.values()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or self._prefix(name) is not None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries) + len(self._prefixes)

    def entry(self, name: str) -> Entry[T]:
        """The entry registered as ``name`` (for a prefixed name, the object its factory makes)."""
        found = self._entries.get(name)
        if found is not None:
            return found
        prefix = self._prefix(name)
        if prefix is None:
            raise LabelwiseError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        family = self._prefixes[prefix]
        if name == family.name:
            raise LabelwiseError(f"{name} is a pattern: put a name in place of <name>")
        return Entry(name, family.obj(name), family.description, family.meta)

    def get(self, name: str) -> T:
        """The object registered as ``name``; one line listing the valid names when there is none."""
        return self.entry(name).obj

    def describe(self) -> list[tuple[str, str]]:
        """``(name, one-line description)`` for every entry, in :meth:`names` order."""
        every: dict[str, Entry[Any]] = {**self._entries, **{e.name: e for e in self._prefixes.values()}}
        return [(n, every[n].description) for n in self.names()]

    def help(self, lead: str = "") -> str:
        """A CLI help text: ``lead`` then the valid names."""
        return f"{lead} One of: {', '.join(self.names())}." if lead else f"One of: {', '.join(self.names())}."

    @contextlib.contextmanager
    def temporarily(self, obj: T, *, name: str | None = None, description: str = "", **meta: Any) -> Iterator[T]:
        """Register ``obj`` for the ``with`` block only (for tests)."""
        key = name or getattr(obj, "__name__", None)
        if not isinstance(key, str):
            raise TypeError(f"{self.kind}: give a name for {obj!r}")
        previous = self._entries.get(key)
        self.register(obj, name=key, description=description, **meta)
        try:
            yield obj
        finally:
            if previous is None:
                del self._entries[key]
            else:
                self._entries[key] = previous

    def _prefix(self, name: str) -> str | None:
        return next((p for p in self._prefixes if name.startswith(p) and len(name) > len(p)), None)


def _first_line(text: str) -> str:
    """The first sentence of a docstring, on one line (``literal`` → `literal`)."""
    paragraph = " ".join(line.strip() for line in text.strip().split("\n\n")[0].splitlines())
    end = paragraph.find(". ")
    sentence = paragraph if end < 0 else paragraph[: end + 1]
    sentence = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1]}`", sentence)
    return sentence.replace("``", "`")


#: Every registry, by the kind ``labelwise list KIND`` names; filled by the modules that own them.
KINDS: dict[str, Registry[Any]] = {}


def kind(name: str, registry: Registry[T]) -> Registry[T]:
    """Make ``registry`` listable as ``labelwise list name``."""
    KINDS[name] = registry
    return registry
