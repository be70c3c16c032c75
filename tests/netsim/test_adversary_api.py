"""The public adversary API (netsim.adversary): a strategy written against it only runs in
both engines; the typed context reads honest values and views through
netsim.protocol.ValueHistory; registries refuse taken names; plugins load before parsing."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import agreement
import netsim
from agreement import AveragingAgreement
from agreement.inputs import make_inputs
from broadcast import ReliableBroadcast
from netsim import plugins
from netsim.adversary import (
    STRATEGIES,
    AdversaryContext,
    Strategy,
    make_strategy,
    register_strategy,
)
from netsim.net.node import LocalAdversaryContext
from netsim.sim.schedulers import (
    SCHEDULER_HELP,
    SCHEDULERS,
    Fifo,
    make_scheduler,
    register_scheduler,
)
from netsim.sim.simulator import Simulator
from tests.netsim import public_strategy_example as example

EXAMPLE = Path(example.__file__)


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def public_import_offences(path: Path) -> list[str]:
    """Imports of a private name or of a module with a private part (``_x``), and relative
    imports (a user's module imports Jungle by its public names)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append(f"line {node.lineno}: relative import")
            mods = [node.module or ""]
            names = [a.name for a in node.names]
        else:
            continue
        for m in mods:
            if any(_private(p) for p in m.split(".")):
                out.append(f"line {node.lineno}: private module {m}")
        out += [f"line {node.lineno}: private name {n}" for n in names if _private(n)]
    return out


def test_the_example_strategy_module_imports_public_names_only(tmp_path: Path) -> None:
    assert public_import_offences(EXAMPLE) == []
    bad = tmp_path / "offending.py"
    bad.write_text("from netsim.sim._x import y\nfrom agreement.attacks import _PER_RECEIVER\n"
                   "from .sibling import z\n")
    assert len(public_import_offences(bad)) == 3  # the check sees every kind


def _agreement_sim(n: int = 7, f: int = 2, rounds: int = 3, strategy: Strategy | None = None,
                   gather: str | None = None, seed: int = 1) -> Simulator:
    x = make_inputs("gaussian", n, 4, seed)
    return Simulator(n, f, lambda i, xi: AveragingAgreement(i, n, f, xi, rounds=rounds,
                                                              gather=gather),
                     {i: x[i] for i in range(n)}, byzantine_ids=range(f), strategy=strategy,
                     seed=seed)


def test_context_is_the_typed_interface_and_reads_values_and_views_through_value_history():
    sim = _agreement_sim()
    ctx = sim.context
    assert isinstance(ctx, AdversaryContext) and isinstance(ctx, netsim.AdversaryContext)
    with pytest.raises(TypeError):
        AdversaryContext()  # type: ignore[abstract]
    x0 = ctx.honest_values(0)
    assert x0 is not None and x0.shape == (len(ctx.honest_ids), 4)
    assert ctx.views(0) == {}  # no view formed before the run
    sim.run()
    nodes = [sim.nodes[i] for i in ctx.honest_ids]
    assert all(isinstance(p, netsim.ValueHistory) for p in nodes)
    for r in range(4):
        np.testing.assert_array_equal(ctx.honest_values(r), np.stack([p.history[r] for p in nodes]))
    np.testing.assert_array_equal(ctx.honest_values(99), ctx.honest_values(3))  # latest
    views = ctx.views(1)
    assert set(views) == set(ctx.honest_ids)
    for i, view in views.items():
        assert tuple(view) == sim.nodes[i].views[1].origins
    with pytest.raises(ValueError, match="rounds count from 0"):
        ctx.honest_values(-1)


def test_values_are_none_for_a_protocol_without_them() -> None:
    n, f = 4, 1
    sim = Simulator(n, f, lambda i, x: ReliableBroadcast(i, n, f, value=x,
                                                         expect=((0, 0, 0),)),
                    {0: np.ones(3)}, byzantine_ids=(3,))
    assert sim.context.honest_values(0) is None and sim.context.views(0) is None


def test_a_network_process_context_refuses_omniscient_reads() -> None:
    ctx = LocalAdversaryContext(0, 4, 1, lambda i, x: None, None, seed=0)  # type: ignore
    assert isinstance(ctx, AdversaryContext)
    for call in (ctx.in_flight, lambda: ctx.honest_values(0), lambda: ctx.views(0)):
        with pytest.raises(NotImplementedError, match="real network"):
            call()


def test_a_strategy_reading_honest_values_runs_at_the_message_level() -> None:
    res = _agreement_sim(strategy=example.FavourHigh()).run()
    assert res.quiescent and all(res.done.values())
    honest = _agreement_sim(strategy=make_strategy("honest")).run()
    # it withheld: fewer messages than the same cores sending to everyone
    assert 0 < res.metrics.messages < honest.metrics.messages
    with example.registered():
        x = make_inputs("gaussian", 7, 4, 1)
        out = agreement.run(x, f=2, rounds=3, strategy="test-favour-high", seed=1,
                            scheduler="random")
        assert out.strategy == "test-favour-high" and np.isfinite(out.outputs).all()


@pytest.mark.parametrize("engine", ["message", "round"])
def test_the_example_value_attacks_run_at_both_engine_levels_by_object_and_by_name(engine):
    x = make_inputs("gaussian", 7, 4, 3)
    kw = dict(f=2, rounds=3, seed=2, engine=engine)
    by_fn = agreement.run(x, strategy=example.shift, **kw)
    with example.registered():
        by_name = agreement.run(x, strategy="test-shift", **kw)
        assert "test-shift" in agreement.attacks.VALUE_ATTACK_NAMES
    assert "test-shift" not in agreement.attacks.VALUE_ATTACK_NAMES  # restored
    np.testing.assert_array_equal(by_fn.history, by_name.history)
    assert by_fn.strategy == "shift" and by_name.strategy == "test-shift"
    eq = agreement.run(x, strategy=example.mirror, gather="first-quorum", **kw)
    assert np.isfinite(eq.outputs).all()


def test_register_strategy_refuses_a_taken_name_and_lists_registered_ones() -> None:
    before = dict(STRATEGIES)
    try:
        with pytest.raises(ValueError, match="already registered; pass replace=True"):
            register_strategy("crash", example.FavourHigh)
        with pytest.raises(ValueError, match="a Byzantine strategy name must be a word"):
            register_strategy("two words", example.FavourHigh)
        register_strategy("test-x", example.FavourHigh)
        assert isinstance(make_strategy("test-x"), example.FavourHigh)
        register_strategy("test-x", lambda: example.FavourHigh(), replace=True)
        with pytest.raises(ValueError, match=r"known: .*test-x"):
            make_strategy("test-nope")
        register_strategy("test-bad", lambda: object(), replace=True)
        with pytest.raises(ValueError, match=r"not a netsim\.adversary\.Strategy"):
            make_strategy("test-bad")
    finally:
        STRATEGIES.clear()
        STRATEGIES.update(before)


def test_register_scheduler_adds_a_name_and_its_help_line() -> None:
    class Slow(Fifo):
        """every message takes 2 time units"""

        def delay(self, src, dst, message, now, rng):  # type: ignore[override]
            return 2.0

    try:
        register_scheduler("test-slow", Slow)
        assert SCHEDULER_HELP["test-slow"] == "every message takes 2 time units"
        with pytest.raises(ValueError, match="already registered"):
            register_scheduler("fifo", Slow)
        x = make_inputs("gaussian", 7, 4, 1)
        res = agreement.run(x, f=2, rounds=2, scheduler="test-slow", strategy="silent")
        assert res.scheduler == "test-slow" and isinstance(make_scheduler("test-slow"), Slow)
    finally:
        SCHEDULERS.pop("test-slow", None)
        SCHEDULER_HELP.pop("test-slow", None)


def test_plugins_load_before_parsing_and_name_the_flag(tmp_path: Path) -> None:
    plugin = tmp_path / "plug.py"
    plugin.write_text("from netsim.adversary import Honest, register_strategy\n"
                      "register_strategy('test-plugged', Honest)\n")
    try:
        rest = plugins.take_plugins(["simulate", "--plugin", str(plugin), "--n", "7"])
        assert rest == ["simulate", "--n", "7"] and "test-plugged" in STRATEGIES
        assert plugins.take_plugins([f"--plugin={plugin}"]) == []  # loaded once
    finally:
        STRATEGIES.pop("test-plugged", None)
    with pytest.raises(plugins.PluginError, match=r"--plugin .*: no such file"):
        plugins.take_plugins(["--plugin", str(tmp_path / "none.py")])
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(plugins.PluginError, match="cannot load it: RuntimeError: boom"):
        plugins.take_plugins(["--plugin", str(broken)])
    with pytest.raises(plugins.PluginError, match="needs a module name"):
        plugins.take_plugins(["--plugin"])
