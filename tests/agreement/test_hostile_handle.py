"""Hostile values are faults, never exceptions (issue 11 §3).

A Byzantine peer that sends well-typed messages whose vectors have another dtype than the
session's (a float64 value of 1e100 in a float32 session), or vectors that make a rule's
output invalid, must be a recorded :class:`netsim.protocol.Fault`: no exception out of
``handle()``, and an honest decision is a valid vector of the session's dtype.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from agreement import AveragingAgreement
from netsim.messages import valid_vector
from netsim.protocol import ALL, Protocol, Step


def _fifo(nodes: dict[int, Protocol], n: int, max_events: int = 200_000) -> list:
    """Deliver every message in FIFO order (self-messages included); return the faults
    recorded at every node as ``(observer, fault)``."""
    q: deque = deque()
    faults: list = []

    def post(src: int, step: Step) -> None:
        faults.extend((src, flt) for flt in step.faults)
        for target, msg in step.messages:
            for dst in (range(n) if target == ALL else (target,)):
                q.append((src, dst, msg))

    for i, p in nodes.items():
        post(i, p.start(0.0))
    events = 0
    while q and events < max_events:
        src, dst, msg = q.popleft()
        events += 1
        if dst in nodes:
            post(dst, nodes[dst].handle(src, msg, 0.0))
    return faults


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_float64_value_in_float32_session_is_a_fault(rounds: int) -> None:
    """The reported failure: node 3 runs the protocol honestly but with a float64 input of
    1e100 in a float32 session of the ``mean`` protocol. Before the fix the value entered the
    float32 views, the mean overflowed to inf, and with one round the honest nodes decided
    inf; with more rounds the next broadcast raised ``ValueError`` out of ``handle()``."""
    n, f, d = 4, 1, 3
    x = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    nodes: dict[int, Protocol] = {
        i: AveragingAgreement(i, n, f, x[i], protocol="mean", rounds=rounds)
        for i in range(n - 1)
    }
    nodes[n - 1] = AveragingAgreement(n - 1, n, f, np.full(d, 1e100), protocol="mean",
                                      rounds=rounds)
    faults = _fifo(nodes, n)
    lo, hi = x[: n - 1].min(axis=0), x[: n - 1].max(axis=0)
    for i in range(n - 1):
        p = nodes[i]
        assert p.done, f"node {i} did not decide"
        y = p.decision
        assert y.dtype == np.float32 and y.shape == (d,)
        assert valid_vector(y)
        assert np.all(lo <= y) and np.all(y <= hi), (i, y)
    kinds = {(obs, flt.sender, flt.kind) for obs, flt in faults if obs < n - 1}
    assert any(s == n - 1 and k == "invalid-value" for _, s, k in kinds), kinds
    details = [flt.detail for obs, flt in faults if flt.kind == "invalid-value"]
    assert any("float64" in dt for dt in details), details


@pytest.mark.parametrize("views", ["random", "omniscient"])
def test_round_engine_judges_byzantine_rows_in_the_session_dtype(views: str) -> None:
    """The round engine's view filter: a float64 Byzantine value of 1e100 in a float32
    session is ±inf in the session's dtype, hence in no view (before the fix the ``plan``
    path judged the float64 row valid and its float32 cast, inf, entered the views)."""
    import warnings

    from agreement.engine import RoundEngine

    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    attack = "outlier" if views == "omniscient" else (
        lambda honest, b, rng: np.full((b, honest.shape[1]), 1e100))
    params = {"scale": 1e100} if views == "omniscient" else None
    eng = RoundEngine(4, 1, "mean", attack=attack, views=views, attack_params=params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        hist, plans = eng.run(x, 3)
    for y in hist[1:]:
        assert y.dtype == np.float32 and np.isfinite(y).all()
        assert np.all(x.min(axis=0) <= y) and np.all(y <= x.max(axis=0))
    assert all(not p.masks[:, 3:].any() for p in plans)


# -- the fallback on an invalid rule output -------------------------------------------------


class _BadRule:
    """A stand-in rule whose output is invalid: NaN, the wrong dtype, or an exception."""

    name = "bad"

    def __init__(self, how: str) -> None:
        self.how = how

    def __call__(self, view: np.ndarray) -> np.ndarray:
        if self.how == "nan":
            return np.full(view.shape[1], np.nan, dtype=view.dtype)
        if self.how == "dtype":
            return view.mean(axis=0).astype(np.float16)
        if self.how == "shape":
            return view[:2]
        raise ValueError("the rule refuses this view")


@pytest.mark.parametrize("how", ["nan", "dtype", "shape", "raises"])
def test_an_invalid_rule_output_is_a_fault_and_the_node_keeps_its_value(how: str) -> None:
    n, f, d, rounds = 4, 1, 3, 3
    x = np.random.default_rng(2).standard_normal((n, d)).astype(np.float32)
    nodes: dict[int, Protocol] = {
        i: AveragingAgreement(i, n, f, x[i], protocol="trimmed-mean", rounds=rounds)
        for i in range(n)
    }
    nodes[0].rule = _BadRule(how)  # type: ignore[attr-defined]
    faults = _fifo(nodes, n)
    assert all(p.done for p in nodes.values())
    p0 = nodes[0]
    assert all(np.array_equal(h, x[0]) for h in p0.history)  # type: ignore[attr-defined]
    own = [flt for obs, flt in faults if obs == 0 and flt.kind == "invalid-rule-output"]
    assert len(own) == rounds and all(flt.sender == 0 for flt in own)
    assert "kept this node's current value" in own[0].detail
    # the others are not blamed, and still decide valid values in the honest box
    assert all(flt.kind == "invalid-rule-output" for _, flt in faults)
    for i in range(1, n):
        y = nodes[i].decision  # type: ignore[attr-defined]
        assert y.dtype == np.float32 and valid_vector(y)
        assert np.all(x.min(axis=0) <= y) and np.all(y <= x.max(axis=0))


# -- the property: every protocol's handle against hostile, well-typed messages ------------
#
# A cluster of n nodes, b <= f of them Byzantine. The honest nodes run the protocol under a
# random delivery order (every honest message is delivered eventually, the Byzantine nodes
# send nothing honest); the Byzantine nodes inject a hypothesis-drawn list of well-typed
# hostile messages (wrong dtype, wrong dimension, non-finite, huge norms, valid extremes,
# far-future rounds and other sessions, forged origins, random and replayed digests,
# reports of the wrong size or naming unknown origins), each to some honest nodes, some of
# them several times (duplicates). Asserted: no exception out of handle(); liveness (every
# honest node completes); safety (below); faults only against the Byzantine senders (or a
# node's own ``invalid-rule-output``); and bounded retained state, with R the rounds of the
# session (rounds 0..R-1 are the only ones accepted):
#   Bracha:   <= n·R instances; each: <= 2 stored values, <= n echoers, readiers, servers,
#             <= f+1 fetch targets, <= n digest counters each for echoes and readies;
#   witness:  Bracha's, plus <= R rounds of <= n values and <= n reports of n-f origins;
#   first-quorum: <= R rounds of <= n vectors;
#   agreement: the gather's, plus <= R views and R+1 history vectors.

import random as _random  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agreement.gathers import FirstQuorumGather  # noqa: E402
from agreement.protocol import CONFIGS  # noqa: E402
from broadcast import Delivered, ReliableBroadcast, View, WitnessGather  # noqa: E402
from netsim.messages import (  # noqa: E402
    Echo,
    Fetch,
    Ready,
    Reply,
    Report,
    Send,
    Value,
    digest,
)


def _smallest_n(name: str, f: int) -> int:
    x = np.zeros(2)
    for n in range(3 * f + 1, 12 * f + 2):
        try:
            AveragingAgreement(0, n, f, x, protocol=name, rounds=1)
            return n
        except ValueError:
            continue
    raise AssertionError(f"no n accepted for {name} at f={f}")


TARGETS = ("rb", "witness", "first-quorum", *(f"agreement:{c}" for c in CONFIGS),
           "agreement:trimmed-mean/first-quorum")
_N1 = {t: (_smallest_n(t.split(":")[1].split("/")[0], 1) if t.startswith("agreement:")
           else 4) for t in TARGETS}


def _hostile_vector(kind: str, d: int, dtype: np.dtype, rng: _random.Random,
                    honest: list[np.ndarray]) -> np.ndarray:
    other = np.float64 if dtype == np.float32 else np.float32
    g = np.random.default_rng(rng.randrange(2**32))
    if kind == "valid":
        return g.standard_normal(d).astype(dtype)
    if kind == "copy":  # an honest value, replayed
        return rng.choice(honest)
    if kind == "other-dtype":
        with np.errstate(over="ignore"):  # a float32 of 1e100 is inf: invalid twice over
            return (g.standard_normal(d) * rng.choice([1.0, 1e30, 1e100])).astype(other)
    if kind == "other-dim":
        return g.standard_normal(rng.choice([0, 1, d + 1, 2 * d + 3])).astype(dtype)
    if kind == "nan":
        v = g.standard_normal(d).astype(dtype)
        v[rng.randrange(d)] = rng.choice([np.nan, np.inf, -np.inf])
        return v
    if kind == "huge":  # invalid for float64 (squared norm > 2^1000); float32: the maximum
        return np.full(d, 1e160 if dtype == np.float64 else np.finfo(np.float32).max, dtype)
    if kind == "extreme-valid":  # valid, but as large or small as the dtype allows
        big = 1e150 / np.sqrt(d) if dtype == np.float64 else 3e38
        return np.array([rng.choice([big, -big, 1e-310 if dtype == np.float64 else 1e-45,
                                     0.0]) for _ in range(d)], dtype=dtype)
    raise AssertionError(kind)


VECTOR_KINDS = ("valid", "copy", "other-dtype", "other-dim", "nan", "huge", "extreme-valid")
MESSAGE_KINDS = ("value", "send", "reply", "echo", "ready", "fetch", "report")


@st.composite
def _hostile_plan(draw: st.DrawFn, target: str) -> dict:
    f = draw(st.sampled_from([1, 2])) if target in ("rb", "witness", "first-quorum",
                                                    "agreement:trimmed-mean",
                                                    "agreement:trimmed-mean/first-quorum") else 1
    n = 3 * f + 1 if f > 1 else _N1[target]
    b = draw(st.integers(1, f))
    byz = sorted(draw(st.lists(st.integers(0, n - 1), min_size=b, max_size=b, unique=True)))
    # weighted towards what can reach a view: the Byzantine node's own instance of a round
    # of the session, sent to every honest node, as the vector message the gather uses
    main = "send" if target.endswith("first-quorum") else "value"
    specs = draw(st.lists(st.tuples(
        st.sampled_from(byz),                                            # sender
        st.sampled_from([main] * 6 + list(MESSAGE_KINDS)),
        st.sampled_from(VECTOR_KINDS),
        st.sampled_from(["own"] * 6 + ["forged", "unknown"]),            # origin
        st.sampled_from([0, 0, 0, 1, 1, "last", "next", 2**32 - 1]),      # round
        st.sampled_from([0] * 9 + [1]),                                  # session offset
        st.sampled_from([0, 0, 0, 1]),                                   # 0: all, 1: one
        st.integers(1, 3),                                               # copies
    ), min_size=0, max_size=30))
    # and always one attack on a real instance: the first Byzantine node's own round-0
    # value, of a drawn kind, to every honest node
    specs.insert(0, (byz[0], main, draw(st.sampled_from(VECTOR_KINDS)), "own", 0, 0, 0, 1))
    return {
        "n": n, "f": f, "byz": byz, "specs": specs,
        "d": draw(st.integers(1, 4)),
        "dtype": draw(st.sampled_from([np.float32, np.float64])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _build(target: str, n: int, f: int, d: int, dtype, rounds: int, x: np.ndarray,
           honest: list[int]) -> dict[int, Protocol]:
    nodes: dict[int, Protocol] = {}
    for i in honest:
        if target == "rb":
            nodes[i] = ReliableBroadcast(i, n, f, dim=d, dtype=dtype, max_round=rounds - 1)
        elif target == "witness":
            nodes[i] = WitnessGather(i, n, f, dim=d, dtype=dtype, window=0, rounds=rounds)
        elif target == "first-quorum":
            nodes[i] = FirstQuorumGather(i, n, f, dim=d, dtype=dtype, max_round=rounds - 1)
        else:
            name, _, gather = target.split(":")[1].partition("/")
            nodes[i] = AveragingAgreement(i, n, f, x[0, i], protocol=name,
                                          gather=gather or None, rounds=rounds)
    return nodes


def _starts(target: str, node: Protocol, i: int, x: np.ndarray, rounds: int) -> Step:
    if target.startswith("agreement:"):
        return node.start(0.0)
    out = Step()
    for r in range(rounds):
        op = node.broadcast if target == "rb" else node.gather  # type: ignore[attr-defined]
        out.extend(op(r, x[r, i]))
    return out


def _hostile_messages(plan: dict, rounds: int, x: np.ndarray, rng: _random.Random,
                      honest: list[int]) -> list:
    n, d, dtype = plan["n"], plan["d"], np.dtype(plan["dtype"])
    f = plan["f"]
    honest_vals = [x[r, i] for r in range(rounds) for i in honest]
    out = []
    for sender, kind, vkind, okind, rsel, soff, tsel, copies in plan["specs"]:
        rnd = {"last": rounds - 1, "next": rounds}.get(rsel, rsel)  # type: ignore[arg-type]
        origin = {"own": sender, "forged": rng.choice(honest),
                  "unknown": rng.choice([n, n + 1, 2**16 - 1])}[okind]
        inst = (soff, rnd, origin)
        vec = _hostile_vector(vkind, d, dtype, rng, honest_vals)
        if kind in ("value", "send", "reply"):
            msg = {"value": Value, "send": Send, "reply": Reply}[kind](inst, vec)
        elif kind == "report":
            k = rng.choice([n - f, n - f, n, 1, n + 2])
            pool = list(range(n + 3))
            origins = sorted(rng.sample(pool, min(k, len(pool))))
            msg = Report(soff, rnd, tuple(origins))
        else:
            h = rng.choice([digest(vec), digest(rng.choice(honest_vals)), rng.randbytes(32)])
            msg = {"echo": Echo, "ready": Ready, "fetch": Fetch}[kind](inst, h)
        dsts = honest if tsel == 0 else [rng.choice(honest)]
        out.extend((sender, dst, msg) for dst in dsts for _ in range(copies))
    return out


def _retained(target: str, node: Protocol) -> None:
    """Assert the retained-state bounds stated above."""
    n, f = node.n, node.f
    rb = gather = node
    if target.startswith("agreement:"):
        ag: AveragingAgreement = node  # type: ignore[assignment]
        assert len(ag.views) <= ag.rounds and len(ag.history) <= ag.rounds + 1
        gather = ag.gatherer
        rounds = ag.rounds
    else:
        rounds = R
    if isinstance(gather, WitnessGather):
        assert len(gather.state) <= rounds
        for st_ in gather.state.values():
            assert len(st_.values) <= n and len(st_.reports) <= n
            assert all(len(s) == n - f for s in st_.reports.values())
        rb = gather.rb
    if isinstance(gather, FirstQuorumGather):
        assert len(gather.received) <= rounds
        assert all(len(v) <= n for v in gather.received.values())
        return
    assert isinstance(rb, ReliableBroadcast)
    assert len(rb.instances) <= n * rounds
    for inst in rb.instances.values():
        assert len(inst.store) <= 2
        assert len(inst.echo_from) <= n and len(inst.ready_from) <= n
        assert len(inst.echo_count) <= n and len(inst.ready_count) <= n
        assert len(inst.served) <= n and len(inst.fetch_sent) <= f + 1


R = 2  # rounds of every session of the property
_SEEN: set[str] = set()  # the fault kinds the property produced (for a coverage check)


def _valid_in_session(v: np.ndarray, d: int, dtype) -> bool:
    return v.dtype == np.dtype(dtype) and v.shape == (d,) and valid_vector(v)


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_messages_are_faults_never_exceptions(target: str, data: st.DataObject) -> None:
    plan = data.draw(_hostile_plan(target))
    n, f, d, dtype, byz = plan["n"], plan["f"], plan["d"], plan["dtype"], plan["byz"]
    honest = [i for i in range(n) if i not in byz]
    rng = _random.Random(plan["seed"])
    x = np.random.default_rng(plan["seed"]).standard_normal((R, n, d)).astype(dtype)
    nodes = _build(target, n, f, d, dtype, R, x, honest)
    pending: list = []
    faults: list = []
    outputs: dict[int, list] = {i: [] for i in honest}

    def post(src: int, step: Step) -> None:
        faults.extend((src, flt) for flt in step.faults)
        outputs[src].extend(step.outputs)
        for tgt, msg in step.messages:
            pending.extend((src, dst, msg) for dst in (range(n) if tgt == ALL else (tgt,)))

    for i in honest:
        post(i, _starts(target, nodes[i], i, x, R))
    pending.extend(_hostile_messages(plan, R, x, rng, honest))
    events = 0
    while pending:
        k = rng.randrange(len(pending))
        pending[k], pending[-1] = pending[-1], pending[k]
        src, dst, msg = pending.pop()
        events += 1
        assert events < 200_000
        if dst in nodes:
            post(dst, nodes[dst].handle(src, msg, float(events)))  # never raises
    _SEEN.update(flt.kind for _, flt in faults)

    # faults only against the Byzantine senders (or a node's own invalid rule output)
    for obs, flt in faults:
        assert flt.sender in byz or (flt.kind == "invalid-rule-output" and flt.sender == obs), \
            (obs, flt)
    for i in honest:
        _retained(target, nodes[i])
    # liveness and safety
    if target == "rb":
        got: dict = {}
        for i in honest:
            insts = [o.instance for o in outputs[i]]
            assert len(insts) == len(set(insts))  # integrity: one delivery per instance
            for o in outputs[i]:
                assert isinstance(o, Delivered)
                assert _valid_in_session(o.vector, d, dtype)
                got.setdefault(o.instance, set()).add(o.vector.tobytes())
            for r in range(R):  # validity: every honest origin's value, as sent
                for j in honest:
                    assert nodes[i].deliveries[(0, r, j)].vector.tobytes() == x[r, j].tobytes()
        assert all(len(v) == 1 for v in got.values())  # agreement
        for inst in got:  # totality
            assert all(inst in nodes[i].deliveries for i in honest)
    elif target in ("witness", "first-quorum"):
        for r in range(R):
            views = [nodes[i].views[r] for i in honest]  # type: ignore[attr-defined]
            for v in views:
                assert isinstance(v, View) and n - f <= len(v.values) <= n
                for o, vec in v.values.items():
                    assert _valid_in_session(vec, d, dtype)
                    if o in honest:
                        assert vec.tobytes() == x[r, o].tobytes()
            if target == "witness":
                for a in views:
                    for b in views:
                        common = a.values.keys() & b.values.keys()
                        assert len(common) >= n - f
                        assert all(a.values[o].tobytes() == b.values[o].tobytes()
                                   for o in common)
    else:
        name = target.split(":")[1].split("/")[0]
        lo, hi = x[0, honest].min(axis=0), x[0, honest].max(axis=0)
        for i in honest:
            p: AveragingAgreement = nodes[i]  # type: ignore[assignment]
            assert p.done, (i, p.round)
            assert _valid_in_session(p.decision, d, dtype)
            for view in p.views.values():  # no invalid value in a view
                assert all(_valid_in_session(v, d, dtype) for v in view.values.values())
            if name in ("trimmed-mean", "median"):
                assert np.all(lo <= p.decision) and np.all(p.decision <= hi), (lo, p.decision, hi)


def test_the_property_produced_every_kind_of_fault() -> None:
    """The hostile messages of the property reach every check (run after it; alone, it
    runs a few examples of every target itself)."""
    if not _SEEN:
        for target in TARGETS:
            test_hostile_messages_are_faults_never_exceptions(target)
    expected = {"invalid-value", "future-round", "wrong-session", "bad-origin",
                "value-not-from-origin", "bad-report", "duplicate", "unexpected-message",
                "unsolicited-reply", "unknown-fetch"}
    assert expected <= _SEEN, expected - _SEEN
