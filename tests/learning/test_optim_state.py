"""CollaborativeSGD keeps torch.optim's contract: its state (step counter, momentum and
worker-momentum buffers) is in ``self.state`` so ``state_dict()`` / ``load_state_dict()``
checkpoint and resume to the same parameters as an uninterrupted run; several parameter
groups; the resilience check at construction; ``close()`` and the context manager; a node
playing a protocol-level Byzantine process (``strategy=``); liveness messages."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch
from torch import nn

from learning.optim import AgreementNode, CollaborativeSGD, InProcessNetwork

D_W, D_B = (2, 3), 3  # a 2x3 weight and a bias: d = 9


def _model() -> tuple[nn.Parameter, nn.Parameter]:
    return (nn.Parameter(torch.zeros(D_W, dtype=torch.float64)),
            nn.Parameter(torch.zeros(D_B, dtype=torch.float64)))


def _opt(w, b, ep, f, **kw):
    """Two parameter groups: the weight with weight decay and momentum, the bias with no
    decay and Nesterov momentum at its own lr."""
    groups = [{"params": [w]},
              {"params": [b], "weight_decay": 0.0, "lr": 0.2, "momentum": 0.5,
               "nesterov": True}]
    return CollaborativeSGD(groups, lr=0.3, momentum=0.9, weight_decay=0.1,
                            worker_momentum=0.5, node=ep, f=f, rounds="log", timeout=30,
                            **kw)


def _loss(w, b, i, t):
    """Node i's loss at step t: different data at every node and step (deterministic)."""
    rng = np.random.default_rng(1000 * i + t)
    x = torch.as_tensor(rng.standard_normal((4, D_W[1])))
    y = torch.as_tensor(rng.standard_normal((4, D_W[0])))
    return 0.5 * ((x @ w.T + b[:D_W[0]] - y) ** 2).sum() + 0.1 * (b ** 2).sum()


def _threads(n, target):
    errors: list[BaseException] = []

    def wrap(i):
        try:
            target(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ths = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(120)
    assert not errors, errors


def _train(n, f, steps, start=None):
    """Every node trains ``steps`` steps (from the checkpoint ``start[i]`` if given, into a
    fresh model, optimizer and network); returns parameters, checkpoints and sessions."""
    net = InProcessNetwork(n)
    res: dict[int, tuple[np.ndarray, dict, list[int], int]] = {}

    def node(i):
        w, b = _model()
        with _opt(w, b, net.endpoint(i), f) as opt:
            if start is not None:
                params, state = start[i]
                with torch.no_grad():
                    w.copy_(params[0]), b.copy_(params[1])
                opt.load_state_dict(state)
            for _ in range(steps):
                opt.zero_grad()
                _loss(w, b, i, opt.t + 1).backward()
                opt.step()
            sessions = sorted(opt.node.sessions)
        res[i] = (torch.cat([w.detach().reshape(-1), b.detach()]).numpy().copy(),
                  {"params": (w.detach().clone(), b.detach().clone()),
                   "state": opt.state_dict()}, sessions, opt.t)

    _threads(n, node)
    return res


def test_state_dict_resumes_bit_identical_to_an_uninterrupted_run():
    """f = 0 (every view holds all n values, and the trimmed mean sorts): agreement is then
    deterministic, so the resumed run must equal the uninterrupted one bit for bit."""
    n, f = 3, 0
    full = _train(n, f, 6)
    half = _train(n, f, 3)
    ckpt = {i: (half[i][1]["params"], half[i][1]["state"]) for i in range(n)}
    assert all(half[i][3] == 3 for i in range(n))
    resumed = _train(n, f, 3, start=ckpt)
    for i in range(n):
        assert resumed[i][3] == 6
        assert resumed[i][2][0] == 8 and resumed[i][2][-1] == 13  # sessions 2t, 2t+1 of t=4..6
        assert np.array_equal(resumed[i][0], full[i][0]), i
    assert np.array_equal(full[0][0], full[1][0])  # the nodes agree exactly
    assert not np.array_equal(half[0][0], full[0][0])  # and the last steps moved them


def test_state_dict_holds_every_buffer_and_round_trips():
    n = 3
    out = _train(n, 0, 2)
    sd = out[0][1]["state"]
    assert [len(g["params"]) for g in sd["param_groups"]] == [1, 1]
    assert sd["param_groups"][1]["weight_decay"] == 0.0 and sd["param_groups"][1]["nesterov"]
    for k in (0, 1):
        st = sd["state"][k]
        assert st["step"] == 2
        assert {"momentum_buffer", "worker_momentum_buffer"} <= set(st)
    w, b = _model()
    opt = _opt(w, b, InProcessNetwork(3).endpoint(0), 0)
    opt.load_state_dict(sd)
    assert opt.t == 2
    again = opt.state_dict()
    for k in (0, 1):
        for key in ("momentum_buffer", "worker_momentum_buffer"):
            assert torch.equal(again["state"][k][key], sd["state"][k][key])


def test_two_groups_apply_their_own_hyperparameters():
    """With one node (n = 1, f = 0) agreement returns the input: the step must be exactly
    torch.optim.SGD's, group by group."""
    torch.manual_seed(0)
    ref_w, ref_b = nn.Parameter(torch.randn(D_W, dtype=torch.float64)), nn.Parameter(
        torch.randn(D_B, dtype=torch.float64))
    w, b = nn.Parameter(ref_w.detach().clone()), nn.Parameter(ref_b.detach().clone())
    groups = lambda w, b: [{"params": [w]}, {"params": [b], "weight_decay": 0.0,  # noqa: E731
                                             "lr": 0.2, "momentum": 0.5, "nesterov": True}]
    ref = torch.optim.SGD(groups(ref_w, ref_b), lr=0.3, momentum=0.9, weight_decay=0.1)
    opt = CollaborativeSGD(groups(w, b), lr=0.3, momentum=0.9, weight_decay=0.1,
                           node=InProcessNetwork(1).endpoint(0), f=0, rounds=1)
    for t in range(4):
        for o, (pw, pb) in ((ref, (ref_w, ref_b)), (opt, (w, b))):
            o.zero_grad()
            _loss(pw, pb, 0, t).backward()
            o.step()
        torch.testing.assert_close(w, ref_w, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(b, ref_b, rtol=1e-12, atol=1e-12)
    assert opt.t == 4 and len(opt.param_groups) == 2


def test_resilience_and_the_hub_are_refused_at_construction():
    p = nn.Parameter(torch.zeros(2))
    net = InProcessNetwork(4)
    with pytest.raises(ValueError, match=r"n >= 3f\+1.*n=4, f=2.*unsafe=True.*lower f"):
        CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=2)
    with pytest.raises(TypeError, match=r"net\.endpoint\(i\)"):
        CollaborativeSGD([p], lr=0.1, node=net, f=1)
    with pytest.raises(TypeError, match=r"net\.endpoint\(i\)"):
        AgreementNode(net, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nesterov"):
        CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=1, nesterov=True)
    with pytest.raises(ValueError, match="param_rounds"):
        CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=1, param_rounds=-1)
    with pytest.raises(ValueError, match="cannot run over a real network"):
        CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=1, strategy="alie")


def test_context_manager_closes_and_step_after_close_raises():
    n, f = 4, 1
    net = InProcessNetwork(n)
    closed: dict[int, tuple[bool, bool]] = {}

    def node(i):
        w, b = _model()
        with _opt(w, b, net.endpoint(i), f, linger=60.0) as opt:
            for _ in range(3):
                opt.zero_grad()
                _loss(w, b, i, opt.t + 1).backward()
                opt.step()
        closed[i] = (opt.close(), opt.node.closed)  # idempotent: the first close's result
        with pytest.raises(RuntimeError, match="after close"):
            opt.step()

    _threads(n, node)
    assert closed == {i: (True, True) for i in range(n)}  # every peer finished: no linger


@pytest.mark.parametrize("n,f,strategies", [
    (4, 1, {0: "equivocate"}),
    (4, 1, {3: "crash"}),
    (7, 2, {0: "equivocate", 1: "silent"}),
    (7, 2, {2: "flood", 5: "crash"}),
    (4, 1, {1: "object"}),  # a Strategy object: equivocation to one node against two
])
def test_byzantine_processes_do_not_stop_the_honest_nodes(n, f, strategies):
    from netsim.adversary import Strategy
    from netsim.sim.adversary import Equivocate

    objects: dict[int, Strategy] = {b: Equivocate(split=1) for b, s in strategies.items()
                                    if s == "object"}
    xs = np.random.default_rng(3).standard_normal((n, 4))
    out: dict[int, np.ndarray] = {}
    heard: dict[int, set[int]] = {}
    faults: dict[int, dict[str, int]] = {}
    net = InProcessNetwork(n)

    def node(i):
        theta = nn.Parameter(torch.zeros(4, dtype=torch.float64))
        strategy = objects.get(i, strategies.get(i))
        with CollaborativeSGD([theta], lr=0.5, node=net.endpoint(i), f=f, timeout=30,
                              strategy=strategy, seed=7, linger=5.0) as opt:
            for _ in range(6):
                opt.zero_grad()
                (0.5 * ((theta - torch.as_tensor(xs[i])) ** 2).sum()).backward()
                opt.step()
            assert opt.node.byzantine == (i in strategies)
            heard[i] = set().union(*opt.node.heard.values())
            faults[i] = dict(opt.node.fault_counts)
        out[i] = theta.detach().numpy().copy()

    _threads(n, node)
    honest = [i for i in range(n) if i not in strategies]
    thetas = np.stack([out[i] for i in honest])
    spread = max(np.linalg.norm(xs[a] - xs[b]) for a in honest for b in honest)
    diam = max(np.linalg.norm(p - q) for p in thetas for q in thetas)
    assert diam < 0.05 * spread
    lo, hi = xs[honest].min(0), xs[honest].max(0)  # trimmed mean stays in the honest box
    assert np.all(thetas >= lo - 1e-9) and np.all(thetas <= hi + 1e-9)
    for b, name in strategies.items():  # the strategies ran, within the honest window
        spoke = any(b in heard[i] for i in honest)
        assert spoke == (name != "silent") or name == "crash", (b, name, heard)
    assert not any("stale-session" in faults[i] for i in honest), faults
    if "flood" in strategies.values():
        assert all(sum(faults[i].values()) > 0 for i in honest)


def test_a_waiting_node_says_which_peers_it_waits_for(caplog):
    """Nodes 0 and 3 never run: nodes 1 and 2 cannot gather n - f = 3 values. Both warn
    after ``report_after`` and time out naming the silent peers."""
    caplog.set_level(logging.WARNING, logger="learning.optim")
    net = InProcessNetwork(4)
    errors: dict[int, BaseException] = {}

    def node(i):
        an = AgreementNode(net.endpoint(i), 1, timeout=1.0, report_after=0.2)
        try:
            an.agree(np.ones(3), rounds=2, session=12)
        except TimeoutError as exc:
            errors[i] = exc

    th = threading.Thread(target=node, args=(2,))
    th.start()
    node(1)
    th.join(30)
    msg = str(errors[1])
    assert "session 12 round 0 of 2: waiting for round-0 messages from nodes 0, 3" in msg
    assert "nothing at all in this session from 0, 3" in msg
    assert "heard round 0 from 2" in msg
    assert "waiting for round-0 messages from nodes 0, 3" in str(errors[2])
    warned = [r.getMessage() for r in caplog.records if r.name == "learning.optim"]
    assert any("node 1:" in m and "from nodes 0, 3" in m for m in warned), warned


def test_close_over_the_real_network_waits_for_every_done(tmp_path):
    """Over netsim's real network (mutual TLS) ``close()`` announces the transport's DONE,
    serves until every peer said DONE and acknowledged this node's data, then shuts the
    transport down."""
    from learning.optim import TransportNetwork
    from netsim.net.cluster import generate

    n, f = 4, 1
    cfg = generate(n, tmp_path, f=f)
    nets = [TransportNetwork.from_config(cfg, i) for i in range(n)]
    closed: dict[int, bool] = {}

    def node(i):
        w, b = _model()
        opt = _opt(w, b, nets[i], f, linger=60.0)
        with opt:
            for _ in range(3):
                opt.zero_grad()
                _loss(w, b, i, opt.t + 1).backward()
                opt.step()
        closed[i] = opt.close()

    try:
        _threads(n, node)
    finally:
        for net in nets:
            net.close()  # idempotent
    assert closed == {i: True for i in range(n)}
