"""Shared helpers of the broadcast tests: the seed grid, running one case, the property checks.

One seed drives a whole case (docs/architecture.md, "Testing discipline"): the seed picks the
combination ``(scheduler, strategy, flag)`` by cycling through every combination, and a
``random.Random`` seeded with ``(kind, n, f, seed)`` picks the Byzantine ids, the origin, the
dimension, the dtype and the inputs. A failing case is replayed, alone, with::

    python -m tests.broadcast._harness rb 7 2 123            # or: witness 7 2 123
    python -m tests.broadcast._harness rb 7 2 123 --trace /tmp/trace.jsonl
    python -m tests.broadcast._harness rb 6 2 123 --unsafe     # below the bound (n < 3f+1)

``flag`` means "the origin is Byzantine" for reliable broadcast (one instance per run), and
"all f ids are Byzantine" (against "fewer than f", possibly none) for the witness gather, where
every node is an origin.

The checks return, per property, a list of violations (empty: the property holds), so each
property test can report exactly what broke and for which seeds.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import random
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from broadcast import Delivered, ReliableBroadcast, View, WitnessGather, echo_threshold
from netsim.messages import Value, digest, vectors_equal
from netsim.protocol import ALL, Protocol, Step
from netsim.sim.adversary import (
    STRATEGIES,
    BadReply,
    CoreStrategy,
    Equivocate,
    Mixed,
    Selective,
    Strategy,
    make_strategy,
)
from netsim.sim.schedulers import SCHEDULERS, Reorder, Scheduler, make_scheduler
from netsim.sim.simulator import SimResult, Simulator

PAIRS: tuple[tuple[int, int], ...] = ((4, 1), (7, 2), (10, 3), (13, 4))
"""The (n, f) of the property grids: n = 3f+1, the tightest case."""

SCHEDULER_NAMES: tuple[str, ...] = (*sorted(SCHEDULERS), "reorder")
"""The built-in schedulers plus ``reorder``: a :class:`Reorder` that delivers VALUEs to a
seed-chosen subset of the honest nodes very late, so that those nodes see the READY quorum
first and must FETCH (the targeted schedule of the grid)."""

STRATEGY_NAMES: tuple[str, ...] = (*sorted(STRATEGIES), "mixed", "targeted")
"""The built-in strategies plus two of the tests':

- ``mixed``: a Byzantine origin that is selective or equivocating (the seed picks) and every
  other Byzantine node answering FETCH with wrong values (``bad-reply``); when the origin is
  honest, all Byzantine nodes are ``bad-reply``;
- ``targeted``: :class:`KindRouted` with random targets: each Byzantine node's honest core
  sends each kind of message (VALUE, ECHO, READY, REPLY, REPORT) only to its own random
  subset of the nodes, e.g. ECHO and READY to one node only (the classic attack on
  totality)."""

COMBOS: tuple[tuple[str, str, bool], ...] = tuple(
    itertools.product(SCHEDULER_NAMES, STRATEGY_NAMES, (False, True))
)
DEFAULT_SEEDS = 2 * len(COMBOS)
"""Seeds per (n, f) in the default run: every combination twice (>= 200)."""
SLOW_SEEDS = 2000
"""Seeds per (n, f) in the ``slow`` run."""

REPLAY = "python -m tests.broadcast._harness {kind} {n} {f} {seed}"

PAIR_IDS: list[str] = [f"n{n}-f{f}" for n, f in PAIRS]
"""pytest ids of :data:`PAIRS`."""
RB_PROPS: tuple[str, ...] = ("validity", "agreement", "integrity", "totality", "liveness",
                             "faults")
"""The properties :func:`check_rb` checks."""
WITNESS_PROPS: tuple[str, ...] = ("size", "overlap", "agreement", "validity", "integrity",
                                  "liveness", "faults")
"""The properties :func:`check_views` checks."""
EXPECTED_FAULTS: dict[str, str] = {  # strategy -> a fault kind every run of it must record
    "flood": "future-round",
    "forge": "conflicting-echo",
    "replay": "duplicate",
}


@dataclass(frozen=True)
class Case:
    """Everything one seed decides."""

    kind: str  # "rb" or "witness"
    n: int
    f: int
    seed: int
    scheduler: str
    strategy: str
    flag: bool
    byzantine_ids: tuple[int, ...]
    origin: int  # the RB origin (witness: -1, every node is an origin)
    d: int
    dtype: str
    late: tuple[int, ...] = ()  # the honest nodes the ``reorder`` scheduler starves of VALUEs
    mixed_origin: str = ""  # ``mixed``: the Byzantine origin's strategy

    @property
    def honest(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n) if i not in self.byzantine_ids)

    @property
    def byzantine_origin(self) -> bool:
        return self.origin in self.byzantine_ids

    def replay(self) -> str:
        return REPLAY.format(kind=self.kind, n=self.n, f=self.f, seed=self.seed)

    def describe(self) -> str:
        if self.kind == "rb":
            who = f"origin={self.origin} ({'Byzantine' if self.byzantine_origin else 'honest'})"
        else:
            who = f"all f Byzantine={self.flag}"
        extra = f" late={self.late}" if self.scheduler == "reorder" else ""
        extra += f" origin-strategy={self.mixed_origin}" if self.mixed_origin else ""
        return (
            f"[{self.kind}] seed={self.seed} n={self.n} f={self.f} scheduler={self.scheduler} "
            f"strategy={self.strategy} byzantine_ids={self.byzantine_ids} {who} d={self.d} "
            f"dtype={self.dtype}{extra}\n  replay: {self.replay()}"
        )


def make_case(kind: str, n: int, f: int, seed: int) -> Case:
    """The case of ``seed``: the combination cycles with the seed, the rest is drawn."""
    if kind not in ("rb", "witness"):
        raise ValueError(f"kind must be 'rb' or 'witness', got {kind!r}")
    scheduler, strategy, flag = COMBOS[seed % len(COMBOS)]
    rng = random.Random(f"{kind}/{n}/{f}/{seed}")
    nbyz = f if (kind == "rb" or flag) else rng.randrange(f)
    byzantine = tuple(sorted(rng.sample(range(n), nbyz)))
    honest = [i for i in range(n) if i not in byzantine]
    origin = -1  # witness: every node is an origin
    if kind == "rb":
        origin = rng.choice(byzantine if flag else honest)
    d = rng.randint(2, 8)
    dtype = rng.choice(("float32", "float64"))
    k = rng.randint(1, max(1, len(honest) - 1))
    late = tuple(sorted(rng.sample(honest, k)))
    mixed_origin = ""
    if strategy == "mixed" and (flag if kind == "rb" else bool(byzantine)):
        mixed_origin = rng.choice(("selective", "equivocate"))
    return Case(kind, n, f, seed, scheduler, strategy, flag, byzantine, origin, d, dtype,
                late, mixed_origin)


# -- building a run ------------------------------------------------------------------------
def late_value_scheduler(late: Iterable[int], delay: float = 25.0) -> Reorder:
    """VALUEs to the ``late`` nodes arrive after ``delay``; everything else within [0, 1]."""
    late = frozenset(late)

    def priority(src: int, dst: int, msg: Any, now: float, rng: random.Random) -> float:
        if dst in late and isinstance(msg, Value):
            return delay + rng.random()
        return rng.random()

    return Reorder(priority)


def build_scheduler(case: Case) -> Scheduler:
    if case.scheduler == "reorder":
        return late_value_scheduler(case.late)
    return make_scheduler(case.scheduler)


def build_strategy(case: Case) -> Strategy:
    if case.strategy == "targeted":
        return KindRouted()
    if case.strategy != "mixed":
        return make_strategy(case.strategy)
    # the origin with a misbehaving VALUE: the RB origin, or the lowest Byzantine id (witness)
    leader = case.origin if case.kind == "rb" else min(case.byzantine_ids, default=-1)
    by_node: dict[int, Strategy] = {}
    for b in case.byzantine_ids:
        if case.mixed_origin and b == leader:
            by_node[b] = make_strategy(case.mixed_origin)
        else:
            by_node[b] = BadReply()
    return Mixed(by_node)


def make_vector(rng: np.random.Generator, d: int, dtype: str) -> np.ndarray:
    """A finite vector of mixed magnitudes and signs (including exact zeros sometimes)."""
    x = rng.standard_normal(d) * 10.0 ** rng.integers(-3, 4, size=d)
    x[rng.random(d) < 0.1] = 0.0
    return x.astype(dtype)


def inputs_of(case: Case) -> dict[int, np.ndarray]:
    """RB: the origin's vector (a Byzantine origin's cores use it too). Witness: every node's
    vector, pairwise distinct."""
    rng = np.random.default_rng([case.n, case.f, case.seed, int(case.kind == "rb")])
    if case.kind == "rb":
        return {case.origin: make_vector(rng, case.d, case.dtype)}
    out: dict[int, np.ndarray] = {}
    for i in range(case.n):
        x = make_vector(rng, case.d, case.dtype)
        x[0] = i + 0.5  # pairwise distinct vectors
        out[i] = x
    return out


def rb_factory(n: int, f: int, origin: int, **kw: Any) -> Callable[[int, Any], Protocol]:
    def factory(i: int, x: Any) -> Protocol:
        return ReliableBroadcast(i, n, f, value=x, expect=((0, 0, origin),), **kw)

    return factory


def witness_factory(n: int, f: int, d: int, **kw: Any) -> Callable[[int, Any], Protocol]:
    def factory(i: int, x: Any) -> Protocol:
        return WitnessGather(i, n, f, value=x, dim=d, **kw)

    return factory


@dataclass
class Outcome:
    case: Case
    result: SimResult
    inputs: dict[int, np.ndarray]
    strategy: Strategy
    checks: dict[str, list[str]] = field(default_factory=dict)

    def failures(self, *props: str) -> list[str]:
        keys = props or tuple(self.checks)
        return [f"{p}: {v}" for p in keys for v in self.checks.get(p, [])]


def simulate(case: Case, factory: Callable[[int, Any], Protocol],
             inputs: dict[int, np.ndarray] | None = None, strategy: Strategy | None = None,
             scheduler: Scheduler | None = None, trace: Any = None
             ) -> tuple[Simulator, dict[int, np.ndarray], Strategy]:
    """The simulator (codec on) of ``case`` for the nodes of ``factory``: the case's inputs,
    Byzantine ids, strategy, scheduler and seed unless given; returns it with the inputs and
    the strategy (the checks need both)."""
    inputs = inputs_of(case) if inputs is None else inputs
    strategy = build_strategy(case) if strategy is None else strategy
    sim = Simulator(
        case.n, case.f, factory, inputs, byzantine_ids=case.byzantine_ids, strategy=strategy,
        scheduler=build_scheduler(case) if scheduler is None else scheduler, seed=case.seed,
        trace=trace,
    )
    return sim, inputs, strategy


def run_case(case: Case, trace: Any = None, unsafe: bool = False) -> Outcome:
    """Run ``case`` in the simulator (codec on), first without healing (a safety run), then
    healed to quiescence (eventual delivery), and check it. ``unsafe`` allows n < 3f+1."""
    kw = {"unsafe": True} if unsafe else {}
    if case.kind == "rb":
        factory = rb_factory(case.n, case.f, case.origin, **kw)
    else:
        factory = witness_factory(case.n, case.f, case.d, **kw)
    sim, inputs, strategy = simulate(case, factory, trace=trace)
    sim.run(heal=False)
    before = {i: list(v) for i, v in sim.outputs.items()}
    result = sim.run()
    out = Outcome(case, result, inputs, strategy)
    out.checks = check_rb(out) if case.kind == "rb" else check_witness(out)
    for i, early in before.items():  # outputs are append-only: a safety-run output stays
        late = result.outputs[i]
        if len(late) < len(early) or any(x is not y for x, y in zip(early, late, strict=False)):
            out.checks.setdefault("integrity", []).append(
                f"node {i}'s outputs before healing were changed")
    return out


@functools.cache
def cached_checks(kind: str, n: int, f: int, seed: int) -> tuple[Case, dict[str, list[str]],
                                                                  dict[str, int]]:
    """The checks of one case (only the verdicts and fault counts are kept, not the run)."""
    out = run_case(make_case(kind, n, f, seed))
    stats = dict(out.result.metrics.faults_by_kind)
    stats.update({f"msg:{k}": v for k, v in out.result.metrics.messages_by_kind.items()})
    return out.case, out.checks, stats


def grid_failures(kind: str, n: int, f: int, seeds: Iterable[int], prop: str,
                  limit: int = 5) -> str:
    """Run (or reuse) every seed and return a report of those violating ``prop`` ('' if
    none): each with its parameters and the one-line command that replays it."""
    bad: list[str] = []
    count = 0
    for seed in seeds:
        case, checks, _ = cached_checks(kind, n, f, seed)
        if checks.get(prop):
            count += 1
            if len(bad) < limit:
                bad.append(case.describe() + "\n  " + "\n  ".join(checks[prop][:4]))
    if not count:
        return ""
    return f"{prop} violated in {count} run(s); first ones:\n" + "\n".join(bad)


def assert_grid(kind: str, prop: str, n: int, f: int, seeds: Iterable[int] | None = None
                ) -> None:
    """``prop`` holds in every run of the grid (default seeds ``range(DEFAULT_SEEDS)``); the
    failure report names the seeds and their replay commands."""
    report = grid_failures(kind, n, f, range(DEFAULT_SEEDS) if seeds is None else seeds, prop)
    assert not report, report


def assert_slow_grid(kind: str, n: int, f: int) -> None:
    """Every property of ``kind`` (:data:`RB_PROPS`, :data:`WITNESS_PROPS`) over
    ``range(SLOW_SEEDS)``."""
    props = RB_PROPS if kind == "rb" else WITNESS_PROPS
    bad = [r for r in (grid_failures(kind, n, f, range(SLOW_SEEDS), p) for p in props) if r]
    assert not bad, "\n".join(bad)


def missing_fault(case: Case, stats: dict[str, int], want: str | None) -> list[str]:
    """``[problem]`` if the run of ``case`` (fault counts ``stats``) should have recorded a
    ``want`` fault (its hostile strategy's trace) and did not, else ``[]``."""
    if want and not stats.get(want):
        return [f"no {want!r} fault: {case.describe()}"]
    return []


# -- the checks ----------------------------------------------------------------------------
def core_values(strategy: Strategy, byz: int) -> list[np.ndarray] | None:
    """The values a Byzantine node's honest cores hold, or None if it has no cores."""
    if isinstance(strategy, Mixed):
        sub = strategy.by_node.get(byz)
        return core_values(sub, byz) if sub is not None else []
    if isinstance(strategy, CoreStrategy):
        return [c.value for c in strategy.core[byz] if c.value is not None]
    if strategy.name == "silent":
        return []
    return None


def _faults_against_honest(res: SimResult) -> list[str]:
    return [f"node {o} recorded {flt} against honest node {flt.sender}"
            for o, flt in res.faults_against(res.honest)][:10]


def check_rb(out: Outcome) -> dict[str, list[str]]:
    case, res = out.case, out.result
    v: dict[str, list[str]] = {p: [] for p in (
        "validity", "agreement", "integrity", "totality", "faults", "liveness")}
    delivered: dict[tuple, dict[int, Delivered]] = {}
    for i in res.honest:
        seen: set = set()
        for d in res.outputs[i]:
            if not isinstance(d, Delivered):
                v["integrity"].append(f"node {i} output a non-Delivered {d!r}")
                continue
            if d.instance in seen:
                v["integrity"].append(f"node {i} delivered {d.instance} twice")
            seen.add(d.instance)
            if digest(d.vector) != d.digest:
                v["integrity"].append(f"node {i} delivered a vector whose digest is not "
                                      f"the one it names for {d.instance}")
            delivered.setdefault(d.instance, {}).setdefault(i, d)
    for inst, by_node in sorted(delivered.items()):
        first = next(iter(by_node.values()))
        for i, d in by_node.items():
            if d.digest != first.digest or not vectors_equal(d.vector, first.vector):
                v["agreement"].append(f"{inst}: nodes {min(by_node)} and {i} delivered "
                                      "different values")
        missing = [i for i in res.honest if i not in by_node]
        if missing:
            v["totality"].append(f"{inst}: delivered by {sorted(by_node)} but not by {missing}")
        origin = inst[2]
        if origin in res.honest:
            if inst != (0, 0, origin) or origin != case.origin:
                v["validity"].append(f"delivered {inst}, which honest node {origin} never "
                                     "broadcast")
            elif not vectors_equal(first.vector, out.inputs[origin]):
                v["validity"].append(f"{inst}: delivered a vector other than the origin's")
        else:
            allowed = core_values(out.strategy, origin)
            if allowed is not None and not any(
                vectors_equal(first.vector, a) for a in allowed
            ):
                v["validity"].append(f"{inst}: delivered a value the Byzantine origin {origin} "
                                     "never held")
    target = (0, 0, case.origin)
    if not case.byzantine_origin:
        got = delivered.get(target, {})
        if len(got) != len(res.honest):
            v["validity"].append(
                f"honest origin {case.origin}: delivered only by {sorted(got)} of {res.honest}")
        if not all(res.done.values()):
            v["liveness"].append(f"not done: {sorted(i for i, x in res.done.items() if not x)}")
    elif case.strategy == "honest" and len(delivered.get(target, {})) != len(res.honest):
        v["liveness"].append("a Byzantine origin that behaves honestly was not delivered")
    if not res.quiescent:
        v["liveness"].append("the run did not quiesce")
    v["faults"] = _faults_against_honest(res)
    if case.strategy == "honest" and res.faults:
        v["faults"].append(f"honest-behaving Byzantine nodes drew faults: {res.faults[:3]}")
    return v


def check_witness(out: Outcome) -> dict[str, list[str]]:
    return check_views(out.case, out.result, out.inputs, out.strategy, rounds=1)


def check_views(case: Case, res: SimResult, inputs: dict[int, np.ndarray], strategy: Strategy,
                rounds: int, value_of: Callable[[int, int], np.ndarray] | None = None
                ) -> dict[str, list[str]]:
    """Witness properties for ``rounds`` rounds. ``value_of(origin, round)`` is an honest
    origin's vector in a round (default: its input, round 0)."""
    n, f = case.n, case.f
    if value_of is None:
        def value_of(i: int, r: int) -> np.ndarray:
            return inputs[i]

    v: dict[str, list[str]] = {p: [] for p in (
        "size", "overlap", "agreement", "validity", "integrity", "liveness", "faults")}
    views: dict[int, dict[int, View]] = {r: {} for r in range(rounds)}
    for i in res.honest:
        for view in res.outputs[i]:
            if not isinstance(view, View) or not 0 <= view.round < rounds:
                v["integrity"].append(f"node {i} output {view!r}")
                continue
            if i in views[view.round]:
                v["integrity"].append(f"node {i} output two views for round {view.round}")
                continue
            views[view.round][i] = view
            if not n - f <= len(view.values) <= n:
                v["size"].append(f"node {i} round {view.round}: |V| = {len(view.values)}")
            if len(set(view.witnesses)) < n - f:
                v["size"].append(f"node {i} round {view.round}: only {view.witnesses} witnesses")
            if list(view.values) != sorted(view.values):
                v["integrity"].append(f"node {i} round {view.round}: origins not sorted")
            for o, x in view.values.items():
                if o in res.honest:
                    if not vectors_equal(x, value_of(o, view.round)):
                        v["validity"].append(f"node {i} round {view.round}: honest origin {o}'s "
                                             "vector differs from the one it broadcast")
                else:
                    allowed = core_values(strategy, o) if rounds == 1 else None
                    if allowed is not None and not any(vectors_equal(x, a) for a in allowed):
                        v["validity"].append(f"node {i}: Byzantine origin {o}'s vector was "
                                             "never held by it")
    for r in range(rounds):
        got = views[r]
        for i, j in itertools.combinations(sorted(got), 2):
            a, b = got[i].values, got[j].values
            common = a.keys() & b.keys()
            if len(common) < n - f:
                v["overlap"].append(f"round {r}: |V_{i} ∩ V_{j}| = {len(common)} < n-f = {n - f}"
                                    f" ({sorted(a)} vs {sorted(b)})")
            for o in sorted(common):
                if not vectors_equal(a[o], b[o]):
                    v["agreement"].append(f"round {r}: origin {o} has different vectors at "
                                          f"nodes {i} and {j}")
        if len(got) != len(res.honest):
            v["liveness"].append(f"round {r}: no view at {sorted(set(res.honest) - set(got))}")
    if not all(res.done.values()):
        v["liveness"].append(f"not done: {sorted(i for i, x in res.done.items() if not x)}")
    if not res.quiescent:
        v["liveness"].append("the run did not quiesce")
    v["faults"] = _faults_against_honest(res)
    if (case.strategy == "honest" or not case.byzantine_ids) and res.faults:
        v["faults"].append(f"faults without misbehaviour: {res.faults[:3]}")
    return v


# -- hand-driving a protocol (unit tests) ---------------------------------------------------
def kinds(step: Step) -> list[tuple[int, str]]:
    """``(target, message kind)`` of every message in a step."""
    return [(t, m.NAME) for t, m in step.messages]


def fault_kinds(step: Step) -> list[tuple[int, str]]:
    return [(flt.sender, flt.kind) for flt in step.faults]


# -- strategies of the tests ------------------------------------------------------------------
MESSAGE_KINDS = ("value", "echo", "ready", "fetch", "reply", "report")


class KindRouted(CoreStrategy):
    """Honest core whose messages of each kind reach only a subset of the nodes.

    ``routes`` maps a message kind (``"value"``, ``"echo"``, ``"ready"``, ...) to the ids it
    may reach; kinds not named reach everyone. Without ``routes`` the Byzantine nodes pick one
    favourite honest node, an "edge" set (the favourite and just enough honest nodes for the
    Byzantine ECHOes to complete an ECHO quorum) and a plan of :attr:`PLANS` saying, per
    kind, whether it goes to everyone, to no one, to the favourite, to the edge set or to a
    random subset: e.g. VALUE to the edge set and ECHO/READY to the favourite alone pushes
    exactly one honest node over a threshold (the classic attack on totality).
    """

    name = "targeted"
    PLANS: ClassVar[dict[str, dict[str, str]]] = {
        # VALUE to just enough nodes, ECHO and READY to one: only the favourite can reach
        # the thresholds with the Byzantine help (totality)
        "totality": {"value": "edge", "echo": "favourite", "ready": "favourite"},
        "split": {"value": "edge", "echo": "edge", "ready": "favourite", "report": "edge"},
        "value-edge": {"value": "edge"},
        "random": dict.fromkeys(MESSAGE_KINDS, "random"),
    }

    def __init__(self, routes: dict[str, Iterable[int]] | None = None) -> None:
        self.routes = None if routes is None else {k: frozenset(v) for k, v in routes.items()}

    def setup(self, ctx: Any) -> None:
        super().setup(ctx)
        self.table: dict[int, dict[str, frozenset[int]]] = {}
        rng, honest = ctx.rng, list(ctx.honest_ids)
        favourite = rng.choice(honest)  # shared by all Byzantine nodes
        # just enough honest VALUE receivers for the Byzantine ECHOes to complete a quorum
        edge = max(1, min(len(honest), echo_threshold(ctx.n, ctx.f) - len(ctx.byzantine_ids)))
        rest = [h for h in honest if h != favourite]
        edge_set = [favourite, *rng.sample(rest, edge - 1)]
        plan = rng.choice(tuple(self.PLANS))
        self.plan = plan if self.routes is None else "fixed"
        for b in ctx.byzantine_ids:
            if self.routes is not None:
                self.table[b] = dict(self.routes)
                continue
            others = [d for d in range(ctx.n) if d != b]
            self.table[b] = {}
            for k in MESSAGE_KINDS:
                mode = self.PLANS[plan].get(k, "all")
                if mode == "random":
                    mode = rng.choice(("all", "none", "favourite", "edge", "subset"))
                if mode == "all":
                    sub = others
                elif mode == "none":
                    sub = []
                elif mode == "favourite":
                    sub = [favourite]
                elif mode == "edge":
                    sub = edge_set
                else:
                    sub = rng.sample(others, rng.randrange(len(others) + 1))
                self.table[b][k] = frozenset(sub) | frozenset(ctx.byzantine_ids)  # collusion

    def route(self, byz, core, target, msg):  # type: ignore[override]
        allowed = self.table[byz].get(msg.NAME)
        if allowed is None:
            return [(byz, target, msg)]
        dsts = allowed if target == ALL else allowed & {target}
        return [(byz, d, msg) for d in sorted(dsts) if d != byz]


# -- selective strategies with a fixed reach (for constructed FETCH cases) -----------------
class FixedSelective(Selective):
    """:class:`Selective` whose messages reach exactly ``reach`` (a set of ids)."""

    def __init__(self, reach: Iterable[int]) -> None:
        super().__init__()
        self.fixed = frozenset(reach)

    def setup(self, ctx: Any) -> None:
        super().setup(ctx)
        for b in ctx.byzantine_ids:
            self.subset[b] = self.fixed - {b}


class FixedEquivocate(Equivocate):
    """:class:`Equivocate` whose core 0 talks to exactly ``side0`` and core 1 to the rest."""

    def __init__(self, side0: Iterable[int]) -> None:
        super().__init__()
        self.side0 = frozenset(side0)

    def setup(self, ctx: Any) -> None:
        super().setup(ctx)
        for b in ctx.byzantine_ids:
            self.side[b] = {d: 0 if d in self.side0 else 1 for d in range(ctx.n) if d != b}


# -- command line: replay one case --------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.broadcast._harness",
                                description="Replay one case of the broadcast test grid.")
    p.add_argument("kind", choices=["rb", "witness"])
    p.add_argument("n", type=int)
    p.add_argument("f", type=int)
    p.add_argument("seed", type=int)
    p.add_argument("--trace", help="write the delivery trace (JSON lines) to this path")
    p.add_argument("--unsafe", action="store_true", help="allow n < 3f+1 (test_unsafe.py)")
    a = p.parse_args(argv)
    case = make_case(a.kind, a.n, a.f, a.seed)
    print(case.describe())
    out = run_case(case, trace=a.trace, unsafe=a.unsafe)
    res = out.result
    print(f"events={res.events} time={res.time:.3f} quiescent={res.quiescent} "
          f"done={res.done}")
    print(f"messages by kind: {res.metrics.messages_by_kind}")
    print(f"faults by kind: {res.metrics.faults_by_kind}")
    for i in res.honest:
        print(f"node {i}: {res.outputs[i]}")
    bad = out.failures()
    print("\n".join(bad) if bad else "all properties hold")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
