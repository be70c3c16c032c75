"""The renamed names of agreement and learning (README.md, "What changed in this release"):
``agreement.run(byzantine=...)`` is ``strategy=``, ``RoundEngine(byzantine=...)`` is
``byzantine_ids=``, the registries are ``VALUE_ATTACKS`` / ``LEARNING_ATTACKS`` and the rule
builder is ``make_rule``. For one release the old names still work (keywords and attributes
with a ``DeprecationWarning`` naming the new one), and ``--byzantine`` is an alias of
``--strategy`` on every command line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import agreement.attacks as value_attacks
from agreement.cli import main as agreement_main
from agreement.engine import RoundEngine
from agreement.inputs import make_inputs
from agreement.rules import get_rule, make_rule
from agreement.run import DEFAULT_BYZANTINE, DEFAULT_STRATEGY, run
from broadcast.cli import main as broadcast_main

X = make_inputs("gaussian", 7, 3, 1)


def test_run_byzantine_keyword_is_strategy_with_a_warning():
    kw = dict(f=2, rounds=2, seed=1, engine="round")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = run(X, strategy="push", **kw)
    with pytest.warns(DeprecationWarning, match=r"run: the keyword 'byzantine' .* 'strategy'"):
        old = run(X, byzantine="push", **kw)
    assert new.strategy == old.strategy == "push"
    np.testing.assert_array_equal(new.history, old.history)
    with pytest.warns(DeprecationWarning, match="use 'strategy'"):
        assert old.byzantine == "push"
    d = new.as_dict()  # the old key stays, with the same value, for this release
    assert d["strategy"] == d["byzantine"] == "push"
    with pytest.raises(TypeError, match="strategy= only"):
        run(X, byzantine="push", strategy="push", **kw)
    assert DEFAULT_BYZANTINE == DEFAULT_STRATEGY == "split"


def test_round_engine_byzantine_keyword_is_byzantine_ids():
    with pytest.warns(DeprecationWarning, match="RoundEngine: .*'byzantine_ids'"):
        eng = RoundEngine(7, 2, "trimmed-mean", byzantine=[5, 6])
    assert eng.byzantine_ids == [5, 6] and eng.honest == [0, 1, 2, 3, 4]
    with pytest.warns(DeprecationWarning, match="use 'byzantine_ids'"):
        assert eng.byzantine == [5, 6]


def test_old_registry_and_builder_names_are_aliases():
    assert value_attacks.ATTACKS is value_attacks.VALUE_ATTACKS
    assert (*sorted(value_attacks.VALUE_ATTACKS),
                                                "omniscient") == value_attacks.VALUE_ATTACK_NAMES
    assert get_rule is make_rule
    assert make_rule("trimmed-mean", 1)(np.eye(3)).shape == (3,)


def test_learning_attacks_alias():
    learning_attacks = pytest.importorskip("learning.attacks")
    assert learning_attacks.ATTACKS is learning_attacks.LEARNING_ATTACKS
    assert "sign-flip" in learning_attacks.LEARNING_ATTACKS


@pytest.mark.parametrize("flag", ["--strategy", "--byzantine"])
def test_strategy_flag_and_its_byzantine_alias(flag, capsys):
    base = ["simulate", "--n", "7", "--f", "2", "--dim", "3", "--rounds", "2", "--json"]
    assert agreement_main([*base, flag, "push"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["strategy"] == rep["byzantine"] == "push"
    assert broadcast_main(["run", "--n", "4", "--f", "1", flag, "equivocate", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["strategy"] == rep["byzantine"] == "equivocate"
