"""The per-process API: n nodes as threads over the in-process network, running the real
sans-IO agreement protocol through the codec."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from torch import nn

from learning.optim import AgreementNode, CollaborativeSGD, InProcessNetwork


def _run(n, f, steps, hooks=None, garbage_from=None, protocol="trimmed-mean", d=6, seed=0,
         rounds="proven", logs=None):
    """Node j minimises ½||θ - x_j||² with CollaborativeSGD; returns honest θ and x (and, in
    ``logs``, each node's per-step gradient rounds)."""
    net = InProcessNetwork(n)
    xs = np.random.default_rng(seed).standard_normal((n, d))
    out: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def node(i):
        try:
            theta = nn.Parameter(torch.zeros(d, dtype=torch.float64))
            opt = CollaborativeSGD([theta], lr=0.5, node=net.endpoint(i), f=f,
                                   protocol=protocol, timeout=30, rounds=rounds,
                                   gradient_hook=(hooks or {}).get(i))
            target = torch.as_tensor(xs[i])
            for _ in range(steps):
                opt.zero_grad()
                (0.5 * ((theta - target) ** 2).sum()).backward()
                opt.step()
            opt.serve(0.3)
            out[i] = theta.detach().numpy().copy()
            if logs is not None:
                logs[i] = (list(opt.rounds_log), opt.last_rounds)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    if garbage_from is not None:  # a Byzantine peer that only sends malformed frames
        ep = net.endpoint(garbage_from)
        for k in range(n):
            if k != garbage_from:
                ep.send(k, b"\x00garbage" * 3)
    threads = [threading.Thread(target=node, args=(i,)) for i in range(n)
               if i != garbage_from]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    return out, xs, net


def test_threads_agree_and_average():
    n, f = 4, 1
    out, xs, net = _run(n, f, steps=12, hooks={0: lambda g: -100.0 * g})
    honest = [1, 2, 3]
    thetas = np.stack([out[i] for i in honest])
    spread = max(np.linalg.norm(xs[a] - xs[b]) for a in honest for b in honest)
    diam = max(np.linalg.norm(p - q) for p in thetas for q in thetas)
    assert diam < 0.05 * spread  # agreement
    # C-averaging against a sign-flipping, amplifying node: within the TM constant
    from agreement import constants

    C = constants.averaging_constant("trimmed-mean", n, f, xs.shape[1])
    assert np.linalg.norm(thetas.mean(0) - xs[honest].mean(0)) <= (1 + diam) * C * spread
    assert net.messages > 0 and net.bytes > 0


def test_default_rounds_are_the_proven_count():
    """λ = 1/2 at (4,1), d = 6: min(√6, √3)·2^-T <= 2^-N_t, so T = N_t + 1."""
    from agreement import constants

    logs: dict[int, tuple[list[int], int]] = {}
    _run(4, 1, steps=5, logs=logs)
    want = [constants.rounds_for_target("trimmed-mean", 4, 1, 6, 2.0 ** -max(
        1, math.ceil(math.log2(t))), 1.0) for t in range(1, 6)]
    assert want == [2, 2, 3, 3, 4]
    for i in range(4):
        assert logs[i] == (want, 4)


def test_log_and_integer_rounds():
    logs: dict[int, tuple[list[int], int]] = {}
    _run(4, 1, steps=5, rounds="log", logs=logs)
    assert logs[1] == ([1, 1, 2, 2, 3], 3)
    _run(4, 1, steps=3, rounds=2, logs=logs)
    assert logs[2] == ([2, 2, 2], 2)


def test_proven_needs_a_proven_contraction_and_mda_runs_at_10_2():
    net = InProcessNetwork(10)
    p = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=r'rounds="proven".*median.*rounds="log"'):
        CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=2, protocol="median")
    CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=2, protocol="median", rounds="log")
    with pytest.raises(ValueError, match=r"κ\(9,2\)"):
        CollaborativeSGD([p], lr=0.1, node=InProcessNetwork(9).endpoint(0), f=2,
                         protocol="mda")
    import warnings

    logs: dict[int, tuple[list[int], int]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MDA at n = 10, f = 2 needs no unsafe
        out, xs, _ = _run(10, 2, steps=1, protocol="mda", d=2, logs=logs)
    assert logs[5] == ([5], 5)  # κ(10,2) = 6/7: ceil(1 / log2(7/6)) = 5
    thetas = np.stack([out[i] for i in range(10)])
    assert np.ptp(thetas, axis=0).max() < np.ptp(xs, axis=0).max()


def test_malformed_frames_are_faults_not_crashes():
    out, _, _ = _run(4, 1, steps=4, garbage_from=0)
    assert sorted(out) == [1, 2, 3]


def test_agreement_node_records_decode_faults():
    net = InProcessNetwork(4)
    node = AgreementNode(net.endpoint(1), 1)
    node._route(0, b"junk", 0)
    assert node.faults and node.faults[0].kind == "malformed" and node.faults[0].sender == 0
    for _ in range(1500):  # a flood of garbage: counted, the log stays bounded
        node._route(0, b"junk", 0)
    assert node.fault_counts["malformed"] == 1501 and len(node.faults) == 1000


def test_bad_arguments():
    net = InProcessNetwork(4)
    p = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="lr"):
        CollaborativeSGD([p], lr=0, node=net.endpoint(0), f=1)
    with pytest.raises(ValueError, match="rounds"):
        CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=1, rounds=0)
    with pytest.raises(ValueError, match="3f\\+1"):
        opt = CollaborativeSGD([p], lr=0.1, node=net.endpoint(0), f=2, timeout=0.1)
        p.grad = torch.zeros(2)
        opt.step()


def test_example_script_runs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "collaborative_digits.py"
    spec = importlib.util.spec_from_file_location("collaborative_digits", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--n", "4", "--f", "1", "--steps", "8"])
    assert res["diameter"] < 1e-3 and len(res["accuracies"]) == 3
    # --strategy: node 0 plays a protocol-level Byzantine process; the honest nodes agree
    res = mod.main(["--n", "4", "--f", "1", "--steps", "6", "--strategy", "equivocate"])
    assert res["diameter"] < 1e-3 and len(res["accuracies"]) == 3


def test_real_network_mutual_tls(tmp_path):
    """The same optimizer over netsim's real network (mutual TLS over loopback TCP), one
    Byzantine node putting in -100 x its gradient."""
    from learning.optim import TransportNetwork
    from netsim.net.cluster import generate

    n, f, d = 4, 1, 5
    cfg = generate(n, tmp_path, f=f)
    xs = np.random.default_rng(1).standard_normal((n, d))
    nets = [TransportNetwork.from_config(cfg, i) for i in range(n)]
    out: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def node(i):
        try:
            theta = nn.Parameter(torch.zeros(d, dtype=torch.float64))
            opt = CollaborativeSGD([theta], lr=0.5, node=nets[i], f=f, timeout=30,
                                   gradient_hook=(lambda g: -100.0 * g) if i == 0 else None)
            for _ in range(6):
                opt.zero_grad()
                (0.5 * ((theta - torch.as_tensor(xs[i])) ** 2).sum()).backward()
                opt.step()
            opt.serve(0.5)
            out[i] = theta.detach().numpy().copy()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=node, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(90)
    finally:
        for net in nets:
            net.close()
    assert not errors, errors
    honest = np.stack([out[i] for i in (1, 2, 3)])
    spread = max(np.linalg.norm(xs[a] - xs[b]) for a in (1, 2, 3) for b in (1, 2, 3))
    assert max(np.linalg.norm(p - q) for p in honest for q in honest) < 0.05 * spread
    from agreement import constants

    C = constants.averaging_constant("trimmed-mean", n, f, d)
    assert np.linalg.norm(honest.mean(0) - xs[1:].mean(0)) <= 1.05 * C * spread


def test_transport_network_batches_sends_in_order_and_done_after_them(tmp_path):
    """``TransportNetwork.send`` queues; the batch reaches the peer in order (flushed after
    FLUSH_EVERY sends without any ``recv``, and by ``announce_done``), and the DONE comes
    after every message sent before it."""
    from netsim.net.cluster import generate
    from netsim.net.driver import FLUSH_EVERY, TransportNetwork

    cfg = generate(2, tmp_path, f=0)
    nets = [TransportNetwork.from_config(cfg, i) for i in range(2)]
    try:
        k = 3 * FLUSH_EVERY + 5
        got = []

        def receive(upto: int) -> None:
            while len(got) < upto:
                msg = nets[1].recv(20.0)
                assert msg is not None, f"only {len(got)} of {upto} messages arrived"
                got.append(msg)

        for j in range(FLUSH_EVERY):  # node 0 never calls recv: the batch goes when full
            nets[0].send(1, j.to_bytes(4, "little") * (1 + j % 7))
        receive(FLUSH_EVERY)
        for j in range(FLUSH_EVERY, k):
            nets[0].send(1, j.to_bytes(4, "little") * (1 + j % 7))
        nets[0].announce_done()
        receive(k)
        assert [s for s, _ in got] == [0] * k
        assert [bytes(b) for _, b in got] == [j.to_bytes(4, "little") * (1 + j % 7)
                                               for j in range(k)]
        for _ in range(200):
            if 0 in nets[1].peers_done():
                break
            nets[1].recv(0.05)
        assert nets[1].peers_done() == {0}
        assert nets[1].recv(0.1) is None  # nothing after the DONE
    finally:
        for net in nets:
            net.close()
