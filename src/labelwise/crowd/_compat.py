"""The one seam between labelwise and crowd-kit.

crowd-kit 1.4.2 calls scikit-learn's ``check_is_fitted`` in ``Wawa``, ``ZeroBasedSkill``
and ``GoldMajorityVote``. From scikit-learn 1.6 on, that function reads the estimator's
``__sklearn_tags__``, which crowd-kit's classes (not ``BaseEstimator`` subclasses) lack, so
they fail with ``AttributeError: ... '__sklearn_tags__'``. :func:`crowdkit_class` returns
the crowd-kit class unchanged when it works, and otherwise a subclass that only adds
default tags: a compatibility shim, not a reimplementation, so results are crowd-kit's own.
Every use of crowd-kit in labelwise goes through here.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import MissingExtraError

#: crowd-kit classes that need the ``__sklearn_tags__`` shim on scikit-learn >= 1.6.
NEEDS_TAGS = ("Wawa", "ZeroBasedSkill", "GoldMajorityVote")


@functools.cache
def crowdkit_class(name: str) -> type[Any]:
    """The crowd-kit aggregator class ``name`` (e.g. ``"DawidSkene"``), shimmed if needed."""
    try:
        module = importlib.import_module("crowdkit.aggregation")
    except ImportError as exc:
        raise MissingExtraError(
            f"method {name} needs crowd-kit, which is not installed: pip install 'labelwise[crowd]'"
        ) from exc
    cls: type[Any] = getattr(module, name)
    if name not in NEEDS_TAGS or hasattr(cls, "__sklearn_tags__"):
        return cls

    def __sklearn_tags__(self: Any) -> Any:
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

    return type(name, (cls,), {"__sklearn_tags__": __sklearn_tags__, "__module__": __name__})


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the deprecation warnings crowd-kit 1.4.2 triggers in pandas and scikit-learn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*(inplace|copy keyword|downcasting).*")
        yield
