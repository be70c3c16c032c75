"""ByzSGD as sans-IO protocols (learning.protocols.byzsgd) in netsim's simulator: the gather's
rank bound after every gather, a mutant that breaks it, convergence under attack,
resilience, hostile input as faults, replay."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from learning.protocols.byzsgd import (
    BYZSGD_STRATEGIES,
    GATHER,
    GRADIENT,
    MODEL,
    ByzSGDConfig,
    ByzSGDServer,
    ByzSGDWorker,
    FarOutside,
    FinalModel,
    SignFlip,
    Stale,
    check_gather,
    make_byzsgd_strategy,
    quadratic_oracle,
    simulate_byzsgd,
)
from learning.protocols.gather import median_gather_bounds
from netsim.adversary import Equivocate, Mixed
from netsim.messages import Echo, Send
from netsim.sim.adversary import BUILTIN_STRATEGIES
from netsim.sim.schedulers import TargetedViews

D = 5
X0 = np.zeros(D)


def _mixed(cfg: ByzSGDConfig, server_strategy: str) -> Mixed:
    """``server_strategy`` at the Byzantine servers, sign-flip at the Byzantine workers."""
    by_node = {}
    for b in range(cfg.f_ps):
        by_node[b] = {"equivocate": Equivocate, "stale": Stale, "far": FarOutside}[
            server_strategy]()
    for k in range(cfg.f_w):
        by_node[cfg.n_ps + k] = SignFlip()
    return Mixed(by_node)


@pytest.mark.parametrize("shape", [(4, 1, 7, 2, 1), (7, 2, 7, 2, 2)])
@pytest.mark.parametrize("server_strategy", ["equivocate", "stale", "far"])
def test_every_honest_server_lies_within_the_gather_bound_after_every_gather(
        shape, server_strategy) -> None:
    n_ps, f_ps, n_w, f_w, every = shape
    cfg = ByzSGDConfig(n_ps, f_ps, n_w, f_w, steps=16, gather_every=every, lr=0.2)
    oracle = quadratic_oracle(cfg, D, spread=0.3, noise=0.1, seed=4)
    sched = TargetedViews()
    res = simulate_byzsgd(cfg, oracle, X0, strategy=_mixed(cfg, server_strategy),
                          scheduler=sched, seed=7)
    assert sched.targeting  # it read the honest values (ValueHistory): not plain random delays
    assert res.done and res.checked
    assert len(res.checks) == cfg.steps // every  # one check per gather, every one complete
    for check in res.checks:
        assert check.ok, (check.step, check.violation)
        # the check is the bound of gather.py on the honest pre-gather models, recomputed
        low, high = median_gather_bounds(check.pre, cfg.q_ps, f_ps)
        post = check.post.astype(np.float64)
        assert (post >= low).all() and (post <= high).all()
    # the schedule stresses the bound: honest pre-gather models differ, and some honest
    # post-gather value sits on the bound's edge (so a weaker rule would leave it)
    assert max(c.spread for c in res.checks) > 0.05
    assert min(c.edge_gap for c in res.checks if c.spread > 0) == 0.0
    # and the gather did not trivially agree: honest post-gather models differ too
    assert max(float(np.ptp(c.post, axis=0).max()) for c in res.checks) > 0.0


def test_the_check_can_fail_against_a_bound_that_ignores_the_byzantine_servers() -> None:
    """The far strategy drags medians to their quorum's honest extremes: a bound computed as
    if no server were Byzantine (b = 0, L = 2) is violated, the true one (b = 1) is not."""
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=12, lr=0.2)
    res = simulate_byzsgd(cfg, quadratic_oracle(cfg, D, seed=1), X0, strategy="far",
                          scheduler="targeted", seed=0)
    assert res.ok
    wrong = [check_gather(c.step, c.pre, c.post, cfg.q_ps, 0) for c in res.checks]
    assert any(not c.ok for c in wrong)


@pytest.mark.parametrize("server_strategy", ["far", "stale", "equivocate"])
def test_a_mean_gather_breaks_the_bound(server_strategy) -> None:
    """The mutant: servers averaging their gather instead of taking the median leave the
    bound (the same schedule and strategies that the median survives)."""
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=16, lr=0.2, gather_rule="mean")
    res = simulate_byzsgd(cfg, quadratic_oracle(cfg, D, seed=1), X0,
                          strategy=_mixed(cfg, server_strategy), scheduler="targeted", seed=0)
    assert res.done and not res.ok
    assert sum(not c.ok for c in res.checks) >= 1


@pytest.mark.parametrize("scheduler", ["random", "heavy-tail", "targeted"])
@pytest.mark.parametrize("server_strategy", ["far", "stale", "equivocate"])
def test_honest_servers_converge_near_the_honest_optimum_under_attack(
        scheduler, server_strategy) -> None:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=40, gather_every=2, lr=0.2)
    oracle = quadratic_oracle(cfg, D, center=1.0, spread=0.1, noise=0.1, seed=2)
    for seed in (0, 1):
        res = simulate_byzsgd(cfg, oracle, X0, strategy=_mixed(cfg, server_strategy),
                              scheduler=scheduler, seed=seed)
        assert res.ok
        opt = oracle.optimum(res.honest_workers)
        start = float(np.linalg.norm(opt))  # about sqrt(5): every model starts at 0
        assert res.distance_to(opt) < 0.15 * start, (seed, res.distance_to(opt))


def test_at_most_f_ps_byzantine_servers_two_of_seven() -> None:
    cfg = ByzSGDConfig(7, 2, 7, 2, steps=40, gather_every=2, lr=0.2)
    oracle = quadratic_oracle(cfg, D, spread=0.1, seed=3)
    res = simulate_byzsgd(cfg, oracle, X0, strategy="far", scheduler="targeted", seed=5)
    assert res.ok and res.byzantine_ids == (0, 1, 7, 8)
    assert res.distance_to(oracle.optimum(res.honest_workers)) < 0.35


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES | set(BYZSGD_STRATEGIES)))
def test_every_strategy_runs_and_the_bound_holds(name) -> None:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=6, lr=0.2)
    res = simulate_byzsgd(cfg, quadratic_oracle(cfg, D, seed=0), X0, strategy=name,
                          scheduler="targeted", seed=1)
    assert res.ok and len(res.checks) == cfg.steps
    assert set(res.messages_by_channel) >= {"model", "gradient", "gather"}


def test_traffic_is_counted_by_channel() -> None:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=3, gather_every=3)
    res = simulate_byzsgd(cfg, quadratic_oracle(cfg, D), X0, byzantine_ids=(), seed=0)
    # every server sends MODEL(0..2) to 7 workers; every worker GRADIENT(0..2) to 4 servers;
    # one gather (step 3) of 4 servers to the 3 others
    assert res.messages_by_channel == {"gather": 12, "gradient": 84, "model": 84}
    assert res.bytes_by_channel["model"] == 84 * res.bytes_by_channel["gather"] // 12
    assert res.faults_by_kind == {}


def test_below_resilience_is_refused_unless_unsafe() -> None:
    with pytest.raises(ValueError, match=r"server group .* needs n >= 3f\+1 \(n=3, f=1"):
        ByzSGDConfig(3, 1, 7, 2, steps=4)
    with pytest.raises(ValueError, match=r"worker group .* needs n >= 3f\+1 \(n=6, f=2"):
        ByzSGDConfig(4, 1, 6, 2, steps=4)
    with pytest.warns(RuntimeWarning, match="unsafe=True"):
        cfg = ByzSGDConfig(3, 1, 7, 2, steps=4, unsafe=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simulate_byzsgd(cfg, quadratic_oracle(cfg, D), X0, strategy="far", seed=0)
    assert res.done and not res.checked  # L = floor(3/2) - 1 = 0: no bound to check
    with pytest.raises(ValueError, match="at most f_ps=1 servers"):
        simulate_byzsgd(ByzSGDConfig(4, 1, 7, 2, steps=2), quadratic_oracle(cfg, D), X0,
                        byzantine_ids=(0, 1))


def _server(steps: int = 4) -> tuple[ByzSGDConfig, ByzSGDServer]:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=steps, gather_every=2)
    return cfg, ByzSGDServer(cfg, 1, X0)


def _kinds(step) -> list[str]:
    return [f.kind for f in step.faults]


def test_hostile_inputs_at_a_server_are_faults() -> None:
    cfg, s = _server()
    s.start(0.0)
    w = cfg.n_ps  # a worker id
    g = np.ones(D)
    cases = [
        (w, Echo((GRADIENT, 0, w), bytes(32)), "unexpected-message"),
        (w, Send((9, 0, w), g), "unknown-channel"),
        (w, Send((GRADIENT, 0, w + 1), g), "value-not-from-origin"),
        (0, Send((GRADIENT, 0, 0), g), "wrong-role"),        # a server sending a gradient
        (w, Send((GATHER, 2, w), g), "wrong-role"),          # a worker sending a gather
        (0, Send((MODEL, 0, 0), g), "unexpected-message"),   # servers take no models
        (w, Send((GRADIENT, 4, w), g), "step-out-of-range"),
        (w, Send((GRADIENT, 2**31, w), g), "step-out-of-range"),
        (0, Send((GATHER, 1, 0), g), "step-out-of-range"),   # step 1 is no gather step
        (0, Send((GATHER, 6, 0), g), "step-out-of-range"),   # beyond the last step
        (w, Send((GRADIENT, 0, w), np.ones(D + 1)), "invalid-value"),
        (w + 1, Send((GRADIENT, 0, w + 1), np.ones(D, dtype=np.float32)), "invalid-value"),
        (w + 2, Send((GRADIENT, 0, w + 2), np.full(D, np.nan)), "invalid-value"),
        (w + 3, Send((GRADIENT, 0, w + 3), np.full(D, 1e300)), "invalid-value"),
        (w + 4, Send((GRADIENT, 1, w + 4), g), None),        # a future step: buffered
        (w + 4, Send((GRADIENT, 1, w + 4), g), "duplicate"),
        (w + 4, Send((GRADIENT, 1, w + 4), 2 * g), "equivocation"),
        (w + 5, Send((GRADIENT, 0, w + 5), g), None),
    ]
    for sender, msg, kind in cases:
        step = s.handle(sender, msg, 0.0)
        assert _kinds(step) == ([] if kind is None else [kind]), (msg, kind)
        assert [f.sender for f in step.faults] == ([] if kind is None else [sender])
    assert s.t == 0  # only one valid gradient of step 0 so far
    assert s.valid[(GRADIENT, 1)] == {w + 4: s.valid[(GRADIENT, 1)][w + 4]}  # the first kept
    assert np.array_equal(s.valid[(GRADIENT, 1)][w + 4], g)


def test_a_server_steps_on_its_first_quorum_and_ignores_late_messages() -> None:
    cfg, s = _server(steps=2)
    workers = list(cfg.worker_ids)
    for k, w in enumerate(workers[: cfg.q_w]):
        step = s.handle(w, Send((GRADIENT, 0, w), np.full(D, float(k))), 0.0)
    assert s.t == 1 and not s.gathering  # step 1 is no gather step
    assert sorted(d for d, _ in step.messages) == workers  # MODEL(1) to every worker
    late = s.handle(workers[-1], Send((GRADIENT, 0, workers[-1]), np.ones(D)), 0.0)
    assert not late  # a step already done: ignored, no fault
    for k, w in enumerate(workers[: cfg.q_w]):
        step = s.handle(w, Send((GRADIENT, 1, w), np.full(D, float(k))), 0.0)
    assert s.gathering and {d for d, _ in step.messages} == {0, 2, 3}  # GATHER(2) to the others
    pre = s.x
    step = s.handle(0, Send((GATHER, 2, 0), pre + 10.0), 0.0)
    assert s.gathering  # own + one: not a quorum of 3 yet
    step = s.handle(2, Send((GATHER, 2, 2), pre - 1.0), 0.0)
    assert s.done and [type(o) for o in step.outputs] == [FinalModel]
    rec = s.records[-1]
    assert rec.step == 2 and rec.origins == (1, 0, 2)
    assert np.array_equal(rec.post, pre)  # the median of {pre, pre + 10, pre - 1}
    assert not s.handle(3, Send((GATHER, 2, 3), pre), 0.0)  # after the end: ignored


def test_hostile_inputs_at_a_worker_are_faults() -> None:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=2)
    calls = []

    def oracle(x, t, w):
        calls.append((t, w))
        return x - 1.0

    wk = ByzSGDWorker(cfg, 5, X0, oracle)
    x = np.ones(D)
    cases = [
        (6, Send((MODEL, 0, 6), x), "wrong-role"),           # a worker sending a model
        (6, Send((GATHER, 2, 6), x), "wrong-role"),
        (0, Send((GATHER, 2, 0), x), "unexpected-message"),  # workers take no gathers
        (0, Send((MODEL, 0, 1), x), "value-not-from-origin"),
        (0, Send((MODEL, 2, 0), x), "step-out-of-range"),
        (0, Send((MODEL, 0, 0), x), None),
        (0, Send((MODEL, 0, 0), x + 1), "equivocation"),
        (1, Send((MODEL, 0, 1), np.full(D, np.inf)), "invalid-value"),
        (2, Send((MODEL, 0, 2), 3 * x), None),
    ]
    for sender, msg, kind in cases:
        assert _kinds(wk.handle(sender, msg, 0.0)) == ([] if kind is None else [kind])
    assert wk.t == 0 and not calls  # two valid models of q_ps = 3
    step = wk.handle(3, Send((MODEL, 0, 3), 2 * x), 0.0)
    assert calls == [(0, 5)] and wk.t == 1
    assert np.array_equal(wk.value_at(0), 2 * x)  # median of x, 3x, 2x
    assert sorted(d for d, _ in step.messages) == list(cfg.server_ids)
    assert all(m.instance == (GRADIENT, 0, 5) for _, m in step.messages)
    assert set(wk.view_at(0)) == {0, 2, 3} and wk.view_at(1) is None


def test_buffers_stay_bounded_under_a_flood() -> None:
    cfg, s = _server(steps=50)
    w = cfg.n_ps
    for t in range(2**16):
        s.handle(w, Send((GRADIENT, t % 60, w), np.full(D, float(t))), 0.0)
    # at most one vector per (channel, step, origin), steps < 50
    assert sum(len(v) for v in s.seen.values()) == cfg.steps


def test_same_seed_same_run_byte_for_byte() -> None:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=10, gather_every=2, lr=0.2)
    oracle = quadratic_oracle(cfg, D, seed=1)

    def run(seed):
        return simulate_byzsgd(cfg, oracle, X0, strategy="equivocate", scheduler="targeted",
                               seed=seed)

    a, b, c = run(3), run(3), run(4)
    assert sorted(a.models) == sorted(b.models)
    assert all(a.models[s].tobytes() == b.models[s].tobytes() for s in a.models)
    assert [(r.step, r.pre.tobytes(), r.post.tobytes(), r.origins)
            for s in sorted(a.records) for r in a.records[s]] == \
        [(r.step, r.pre.tobytes(), r.post.tobytes(), r.origins)
         for s in sorted(b.records) for r in b.records[s]]
    assert a.messages_by_channel == b.messages_by_channel and a.summary() == b.summary()
    assert any(a.models[s].tobytes() != c.models[s].tobytes() for s in a.models)


def test_float32_sessions_and_bad_arguments() -> None:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=4)
    res = simulate_byzsgd(cfg, quadratic_oracle(cfg, D), X0.astype(np.float32),
                          strategy="far", scheduler="targeted", seed=0)
    assert res.ok and all(v.dtype == np.float32 for v in res.models.values())
    with pytest.raises(ValueError, match="gather_every must be >= 1"):
        ByzSGDConfig(4, 1, 7, 2, steps=4, gather_every=0)
    with pytest.raises(ValueError, match="x0 must be a 1-D float32 or float64"):
        simulate_byzsgd(cfg, quadratic_oracle(cfg, D), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="ByzSGD's own: far, sign-flip, stale"):
        make_byzsgd_strategy("nope")
    with pytest.raises(ValueError, match="is not a server"):
        ByzSGDServer(cfg, 5, X0)
