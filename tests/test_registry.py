"""The one registry type, and a contract every registered entry of every kind keeps."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

from labelwise import LabelwiseError
from labelwise._registry import KINDS, Registry

for _module in ("features", "train", "noise", "semi", "crowd", "active", "loop", "audit"):
    importlib.import_module(f"labelwise.{_module}")

EVERY = [(kind, name) for kind, registry in KINDS.items() for name in registry.names() if "<" not in name]


def test_register_by_decorator_or_call_and_one_error_for_unknown_names():
    reg: Registry[object] = Registry("thing", sort=True)

    @reg.register(description="the second")
    def beta() -> None: ...

    reg.register(len, name="alpha")
    assert reg.names() == ["alpha", "beta"] and reg.get("alpha") is len
    assert reg.describe()[1] == ("beta", "the second")
    assert reg.describe()[0][1] == "Return the number of items in a container."  # first sentence of the docstring
    with pytest.raises(LabelwiseError, match=r"^unknown thing 'gamma'; choose one of: alpha, beta$"):
        reg.get("gamma")


def test_temporary_registration_and_prefixes():
    reg: Registry[object] = Registry("thing")
    reg.register(1, name="one")
    with reg.temporarily(2, name="one"), reg.temporarily(3, name="three"):
        assert reg.get("one") == 2 and reg.get("three") == 3
    assert reg.get("one") == 1 and "three" not in reg
    reg.register_prefix("x/", lambda name: name.upper(), description="any x")
    assert reg.get("x/abc") == "X/ABC" and "x/abc" in reg and reg.names() == ["one", "x/<name>"]
    with pytest.raises(LabelwiseError, match="is a pattern"):
        reg.get("x/<name>")


def test_every_kind_is_listed_and_the_cli_prints_it():
    assert set(KINDS) == {
        "backbones",
        "models",
        "detectors",
        "pseudolabelers",
        "aggregators",
        "strategies",
        "loop-models",
        "choices",
        "audits",
    }
    from labelwise.cli.app import app

    result = CliRunner().invoke(app, ["list", "strategies"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == KINDS["strategies"].names()
    assert CliRunner().invoke(app, ["models"]).output == CliRunner().invoke(app, ["list", "models"]).output


def _toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(0, 0.2, (30, 4)) + [2, 0, 0, 0], rng.normal(0, 0.2, (30, 4)) + [0, 2, 0, 0]]
    return X, np.r_[np.zeros(30, int), np.ones(30, int)]


@pytest.mark.parametrize(("kind", "name"), EVERY, ids=[f"{k}:{n}" for k, n in EVERY])
class TestEveryEntry:
    """What every registered entry owes its users, whatever its kind."""

    def test_it_describes_itself_in_one_line(self, kind, name):
        description = dict(KINDS[kind].describe())[name]
        assert description and "\n" not in description and len(description) < 200

    def test_it_is_found_by_name(self, kind, name):
        assert name in KINDS[kind] and KINDS[kind].entry(name).name == name

    def test_an_unknown_name_beside_it_is_the_same_one_line_error(self, kind, name):
        registry = KINDS[kind]
        with pytest.raises(LabelwiseError, match=rf"^unknown {registry.kind} '{name}-x'; choose one of: .*{name}"):
            registry.get(f"{name}-x")


def _detector(name: str) -> None:
    from labelwise.noise import get_detector

    X, y = _toy()
    noisy = y.copy()
    noisy[[3, 40]] = 1 - noisy[[3, 40]]
    probs = np.where(np.arange(2) == y[:, None], 0.9, 0.1)
    found = get_detector(name)(noisy, pred_probs=probs, embeddings=X, n_classes=2)
    assert found.is_issue.dtype == bool and len(found.is_issue) == len(y) == len(found.quality)
    assert set(np.flatnonzero(found.is_issue)) == {3, 40}


def _pseudolabeler(name: str) -> None:
    from labelwise.semi import get_method

    X, y = _toy()
    given = np.full(len(y), -1)
    given[[0, 1, 2, 30, 31, 32]] = y[[0, 1, 2, 30, 31, 32]]
    method = get_method(name)
    fitted = clone(method).fit(X, given)
    assert (fitted.transduction_[given >= 0] == given[given >= 0]).all()  # given labels never change
    assert (fitted.transduction_ == y).mean() > 0.9
    assert not fitted.problematic_[given >= 0].any()


def _aggregator(name: str) -> None:
    from labelwise.crowd import aggregate_labels, get_method

    if get_method(name).needs_gold or name in {"crowdkit-ds", "one-coin-ds", "glad", "mace", "wawa"}:
        pytest.importorskip("crowdkit")
    answers = pd.DataFrame(
        {
            "task": list("aaabbbccc"),
            "worker": list("xyz") * 3,
            "label": ["cat", "cat", "dog", "dog", "dog", "dog", "cat", "cat", "cat"],
        }
    )
    gold = pd.Series({"a": "cat"})
    result = aggregate_labels(answers, name, gold=gold)
    assert result.labels.to_dict() == {"a": "cat", "b": "dog", "c": "cat"}


def _strategy(name: str) -> None:
    from labelwise.active.models import make_model
    from labelwise.active.strategies import get_strategy, select

    X, y = _toy()
    labels = np.full(len(y), -1)
    labels[[0, 1, 30, 31]] = y[[0, 1, 30, 31]]
    model = make_model("logreg", 2).fit(X, labels) if get_strategy(name).needs_model or name == "auto" else None
    picks = select(X, labels, 5, strategy=name, model=model, n_classes=2, random_state=1)
    again = select(X, labels, 5, strategy=name, model=model, n_classes=2, random_state=1)
    assert len(set(picks.rows)) == 5 and (labels[picks.rows] == -1).all()
    assert list(picks.rows) == list(again.rows)


def _loop_model(name: str) -> None:
    from labelwise.active.models import get_loop_model, make_model

    assert get_loop_model(name).input == "embedding"
    X, y = _toy()
    labels = np.full(len(y), -1)
    labels[::3] = y[::3]
    model = make_model(name, 2, epochs=100).fit(X, labels)
    probs = model.predict_proba(X)
    assert probs.shape == (len(y), 2) and (probs.argmax(1) == y).mean() > 0.8


def _choice(name: str) -> None:
    from labelwise.loop.value import CHOICES, Candidates

    belief = np.array([[0.98, 0.01, 0.01], [0.5, 0.45, 0.05], [0.34, 0.33, 0.33]])
    cands = Candidates(belief, np.array([True, True, False]), 1 - belief.max(1), 1 - belief.max(1), 0.8)
    scores = CHOICES.get(name)(cands, np.random.default_rng(0))
    again = CHOICES.get(name)(cands, np.random.default_rng(0))
    assert scores.shape == (3,) and np.isfinite(scores).all() and list(scores) == list(again)
    if name != "random":  # a split belief is worth more than a sure one
        assert scores[1] > scores[0] and scores[2] > scores[0]


def _audit_check(name: str) -> None:
    from labelwise.audit.checks import CHECKS, AuditInputs

    rng = np.random.default_rng(0)
    n = 40
    table = pd.DataFrame(
        {
            "label": ["a", "b"] * (n // 2),
            "brightness": rng.uniform(0.3, 0.7, n),
            "dark_level": rng.uniform(0.7, 1.0, n),
            "key": rng.uniform(0.3, 0.6, n),
            "light_level": rng.uniform(0.0, 0.2, n),
            "contrast": rng.uniform(0.1, 0.3, n),
            "sharpness": rng.uniform(0.6, 1.5, n),
            "entropy": rng.uniform(6, 7.5, n),
            "colorfulness": rng.uniform(0.05, 0.3, n),
            "width": 32,
            "height": 32,
        }
    )
    X = rng.normal(size=(n, 8)) + 3.0
    check = CHECKS.get(name)
    typical = check.score(AuditInputs(table, X))
    assert typical.shape == (n,) and np.isfinite(typical).all()
    odd = table.copy()  # the last row made as odd as can be on every statistic at once
    odd.loc[n - 1, ["brightness", "dark_level", "key", "contrast", "sharpness", "colorfulness"]] = 0.0
    odd.loc[n - 1, ["light_level", "width"]] = [0.0, 320]
    Xodd = X.copy()
    Xodd[n - 1] = -30.0 * np.sign(np.arange(8) - 3.5)
    scores = check.score(AuditInputs(odd, Xodd))
    assert scores[n - 1] >= check.threshold > np.nanmax(typical) or name == "light"


CONTRACTS = {
    "audits": _audit_check,
    "choices": _choice,
    "detectors": _detector,
    "pseudolabelers": _pseudolabeler,
    "aggregators": _aggregator,
    "strategies": _strategy,
    "loop-models": _loop_model,
}
# Backbones and train models are built and run for every entry in test_embed.py and test_train.py; loop
# models on pixels (networks) in test_active.py.
CASES = [(k, n) for k, n in EVERY if k in CONTRACTS and not (k == "loop-models" and KINDS[k].get(n).input == "pixels")]


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}:{n}" for k, n in CASES])
def test_every_entry_does_its_job_on_toy_data(kind, name):
    CONTRACTS[kind](name)
