"""User-extensible registries of the agreement layer (rules, value attacks) and the
per-receiver value-attack contract at both engine levels; the command line lists and runs
what a --plugin registered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import agreement
from agreement import attacks, cli
from agreement.adversary import ValueAttack
from agreement.engine import RoundEngine, check_views
from agreement.inputs import make_inputs
from agreement.rules import RULES, Median, make_rule, register_rule
from netsim.adversary import STRATEGIES
from netsim.sim.simulator import Simulator
from tests.netsim import public_strategy_example as example


def tagged(honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
    """Per receiver: honest node j's row is the constant 100 + j (so views show who got what)."""
    h, d = honest.shape
    return np.broadcast_to((100.0 + np.arange(h))[:, None, None], (h, f, d)).copy()


tagged.per_receiver = True  # type: ignore[attr-defined]


def all_but_last(honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
    """Per receiver: 100 to every honest node but the last, which is sent 200."""
    h, d = honest.shape
    out = np.full((h, f, d), 100.0)
    out[-1] = 200.0
    return out


all_but_last.per_receiver = True  # type: ignore[attr-defined]


def test_register_value_attack_refuses_taken_and_reserved_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        attacks.register_value_attack("push", example.shift)
    with pytest.raises(ValueError, match="reserved"):
        attacks.register_value_attack("omniscient", example.shift)
    with example.registered():
        assert attacks.is_per_receiver("test-mirror") and not attacks.is_per_receiver("test-shift")
        with pytest.raises(ValueError, match=r"unknown value attack 'nope'; known: .*test-shift"):
            ValueAttack("nope")
    assert not attacks.is_per_receiver("test-mirror")  # gone with its registration


def test_a_value_attack_of_the_wrong_shape_is_a_clear_error() -> None:
    x = make_inputs("gaussian", 7, 3, 0)
    with pytest.raises(ValueError, match=r"returned shape \(3,\), expected \(2, 3\)"):
        agreement.run(x, f=2, rounds=1, strategy=lambda h, f, rng: h[0], engine="round",
                      views="omniscient")


@pytest.mark.parametrize("views", ["random", "omniscient"])
def test_round_level_per_receiver_first_quorum_shows_each_node_only_its_own_rows(views) -> None:
    n, f = 7, 2
    eng = RoundEngine(n, f, "trimmed-mean", gather="first-quorum", attack=tagged, views=views,
                      seed=3)
    honest = np.random.default_rng(0).standard_normal((n - f, 3))
    plan = eng.plan(honest)
    check_views(plan.masks, n, f, "first-quorum", plan.node_of_row)
    h = n - f
    for j in range(h):
        byz_rows = [k for k in np.flatnonzero(plan.masks[j]) if k >= h]
        assert byz_rows, "the adversary's values are in every view"
        assert all(plan.values[k, 0] == 100.0 + j for k in byz_rows)


def test_round_level_per_receiver_under_witness_is_one_value_per_node_row_zeros() -> None:
    n, f = 7, 2
    eng = RoundEngine(n, f, "trimmed-mean", gather="witness", attack=tagged, seed=3)
    plan = eng.plan(np.zeros((n - f, 3)))
    assert plan.values.shape[0] == n and (plan.values[n - f:] == 100.0).all()
    check_views(plan.masks, n, f, "witness", plan.node_of_row)


def test_message_level_per_receiver_first_quorum_equivocates_per_receiver() -> None:
    n, f, rounds = 7, 2, 2
    x = make_inputs("gaussian", n, 3, 1)
    sim = Simulator(n, f, lambda i, xi: agreement.AveragingAgreement(
        i, n, f, xi, rounds=rounds, gather="first-quorum"), {i: x[i] for i in range(n)},
        byzantine_ids=(0, 1), strategy=ValueAttack(tagged), seed=4)
    sim.run()
    seen = 0
    for j, i in enumerate(sim.honest):
        for r in range(rounds):
            for origin, v in sim.context.views(r)[i].items():
                if origin in (0, 1):
                    assert (v == 100.0 + j).all()
                    seen += 1
    assert seen > 0


def test_message_level_per_receiver_under_reliable_broadcast_delivers_one_value_or_none():
    n, f, rounds = 7, 2, 2
    x = make_inputs("gaussian", n, 3, 1)
    held = 0
    for attack, values in ((tagged, {100.0 + j for j in range(n - f)}),
                           (all_but_last, {100.0})):
        for seed in range(3):
            sim = Simulator(n, f, lambda i, xi: agreement.AveragingAgreement(
                i, n, f, xi, rounds=rounds), {i: x[i] for i in range(n)},
                byzantine_ids=(0, 1), strategy=ValueAttack(attack), seed=seed)
            res = sim.run()
            assert all(res.done.values())
            for r in range(rounds):
                for origin in (0, 1):  # Bracha's agreement: every view holding it agrees
                    got = {float(v[origin][0]) for v in sim.context.views(r).values()
                           if origin in v}
                    assert len(got) <= 1 and got <= values
                    held += len(got)
    assert held > 0  # the near-unanimous equivocation was delivered (as 100, to everyone)


def test_register_rule_refuses_a_taken_name_and_builds_by_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_rule("median", Median)
    try:
        register_rule("test-median", lambda f=0, **kw: Median(f=f))
        rule = make_rule("test-median", 1)
        view = np.array([[0.0], [1.0], [5.0]])
        np.testing.assert_array_equal(rule(view), [1.0])
        with pytest.raises(ValueError, match=r"known rules: .*test-median"):
            make_rule("test-nope")
    finally:
        RULES.pop("test-median", None)


def test_the_command_line_lists_and_runs_what_a_plugin_registered(tmp_path: Path, capsys) -> None:
    plugin = tmp_path / "attack_plugin.py"
    plugin.write_text(
        "import numpy as np\n"
        "from agreement.attacks import register_value_attack\n"
        "def far(honest, f, rng):\n"
        "    '''ten times the honest maximum'''\n"
        "    return np.repeat(10 * honest.max(axis=0)[None], f, axis=0)\n"
        "register_value_attack('test-far', far)\n")
    before = dict(attacks.VALUE_ATTACKS)
    try:
        argv = ["simulate", "--plugin", str(plugin), "--strategy", "test-far", "--n", "7",
                "--f", "2", "--dim", "3", "--rounds", "2", "--json"]
        assert cli.main(argv) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["strategy"] == "test-far"
        with pytest.raises(SystemExit):
            cli.main(["simulate", "--help"])
        out = capsys.readouterr().out
        assert "test-far" in out and "ten times the honest maximum" in out and "--plugin" in out
    finally:
        attacks.VALUE_ATTACKS.clear()
        attacks.VALUE_ATTACKS.update(before)
        attacks.VALUE_ATTACK_NAMES = attacks.value_attack_names()
    with pytest.raises(SystemExit) as exc:  # unregistered again: an invalid choice
        cli.main(["simulate", "--strategy", "test-far"])
    assert exc.value.code == 2


def test_unknown_plugin_is_one_error_line(capsys) -> None:
    assert cli.main(["simulate", "--plugin", "no_such_module_here"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --plugin no_such_module_here: cannot load it")
    assert "test-favour-high" not in STRATEGIES


@pytest.mark.parametrize("gather", ["witness", "first-quorum"])
@pytest.mark.parametrize("views", ["random", "omniscient"])
def test_a_callable_attack_gets_views_the_gather_allows(gather: str, views: str) -> None:
    n, f = 10, 3
    eng = RoundEngine(n, f, "trimmed-mean", gather=gather, attack=example.shift, views=views,
                      seed=1)
    honest = np.random.default_rng(2).standard_normal((n - f, 4))
    for _ in range(5):
        plan = eng.plan(honest)
        check_views(plan.masks, n, f, gather, plan.node_of_row)
        np.testing.assert_allclose(plan.values[n - f:], example.shift(honest, f, None))
        honest, _ = eng.step(honest)
