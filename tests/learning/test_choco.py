"""CHOCO-SGD (learning.methods.choco) and the compression operators (learning.compression):
the command line, training at a fraction of D-SGD's bytes, the collapse under an attack (no
defence), the exact uncompressed limit (D-SGD), the graphs and their weights, each operator's
contraction, bias and wire bytes, and the errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from learning import cli
from learning.compression import (
    COMPRESSIONS,
    Compression,
    make_compression,
    register_compression,
)
from learning.learn import TrainConfig, train
from learning.methods.choco import (
    default_consensus_lr,
    measured_delta,
    metropolis_weights,
    neighbours,
    spectral_gap,
    theory_consensus_lr,
    torus_shape,
)
from tests.netsim import public_strategy_example as example

SMALL = dict(dataset="digits", hidden=16, n=10, seed=0, eval_every=1000)


def _train(**kw) -> object:
    return train(TrainConfig(**{**SMALL, **kw}))


# --- the method -----------------------------------------------------------------------------


def test_the_command_line_reports_accuracy_bytes_and_messages(capsys) -> None:
    rc = cli.main(["train", "--method", "choco", "--topology", "ring", "--compression",
                   "topk:0.01", "--json", "--steps", "20", "--hidden", "16", "--f", "0",
                   "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "choco" and 0 <= out["accuracy_mean"] <= 1
    # d = 1210: k = ceil(0.01·1210) = 13 values + 13 int32 indices = 104 bytes per message;
    # a ring of 10 has 20 directed edges
    assert out["messages"] == 20 * 20
    assert out["bytes"] == 20 * 20 * 104
    assert "topk:0.01" in out["traffic"]


def test_choco_trains_near_dsgd_at_a_fraction_of_its_bytes() -> None:
    choco = _train(method="choco", topology="ring", compression="topk:0.01", f=0, steps=150)
    dsgd = _train(method="dsgd", f=0, steps=150)
    local = _train(method="local", f=0, steps=150)
    assert choco.accuracy_mean >= dsgd.accuracy_mean - 0.05, (choco.accuracy_mean,
                                                             dsgd.accuracy_mean)
    assert choco.accuracy_mean > local.accuracy_mean + 0.05  # the gossip does help
    assert choco.bytes * 100 < dsgd.bytes


def test_an_attack_collapses_choco() -> None:
    """No defence: Byzantine public copies at μ + 10·N(0, I) drive the honest models to
    chance, where the same nodes silent (their copies stay at x_0) leave them training."""
    kw = dict(method="choco", f=3, byzantine_ids=[0, 3, 6], steps=150)
    silent = _train(attack="none", **kw)
    attacked = _train(attack="gaussian", attack_params={"sigma": 10.0}, **kw)
    assert silent.accuracy_mean > 0.75
    assert attacked.accuracy_mean < 0.3
    assert attacked.diameter > 10 * silent.diameter


def test_uncompressed_choco_on_the_complete_graph_with_gamma_one_is_dsgd() -> None:
    """Q = identity makes x̂ = x^{t+½}; on the complete graph (w_ij = 1/n) with γ = 1 the
    update is the plain mean of D-SGD."""
    kw = dict(f=0, steps=30, dtype="float64")
    choco = _train(method="choco", topology="complete", compression="none", consensus_lr=1.0,
                   **kw)
    dsgd = _train(method="dsgd", **kw)
    torch.testing.assert_close(choco.final_params, dsgd.final_params, rtol=1e-9, atol=1e-9)
    assert choco.messages == dsgd.messages and choco.bytes == dsgd.bytes


def test_invalid_byzantine_copies_are_discarded_and_per_receiver_copies_work() -> None:
    kw = dict(method="choco", f=3, steps=15, dtype="float64")
    silent = _train(attack="none", **kw)
    nan = _train(attack="nan", **kw)
    assert torch.equal(nan.final_params, silent.final_params)
    plain = _train(attack=example.shift, **kw)
    per = _train(attack=_same_rows, **kw)
    torch.testing.assert_close(per.final_params, plain.final_params, rtol=1e-12, atol=1e-12)
    assert not torch.equal(plain.final_params, silent.final_params)
    two_sided = _train(attack="dissensus", **kw)
    assert torch.isfinite(two_sided.final_params).all()


def _same_rows(honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
    return np.repeat(example.shift(honest, f, rng)[None], honest.shape[0], axis=0)


_same_rows.per_receiver = True  # type: ignore[attr-defined]


@pytest.mark.parametrize("topology,n,edges", [("ring", 10, 20), ("torus", 12, 48),
                                              ("complete", 6, 30)])
def test_traffic_counts_every_directed_edge(topology, n, edges) -> None:
    res = _train(method="choco", topology=topology, n=n, f=0, steps=3, compression="sign")
    assert res.messages == 3 * edges
    assert res.bytes == 3 * edges * (math.ceil(1210 / 8) + 4)


# --- graphs and step sizes ----------------------------------------------------------------


def test_graphs_and_metropolis_weights() -> None:
    assert neighbours("ring", 5)[0] == [1, 4]
    torus = neighbours("torus", 12)  # 3 x 4: node 5 is at (1, 1)
    assert torus_shape(12) == (3, 4) and torus_shape(9) == (3, 3) and torus_shape(16) == (4, 4)
    assert torus[5] == [1, 4, 6, 9]
    assert all(len(x) == 4 for x in torus)
    assert all(i in torus[j] for i in range(12) for j in torus[i])  # symmetric
    for topo, n in [("ring", 7), ("torus", 15), ("complete", 5)]:
        w = metropolis_weights(neighbours(topo, n))
        np.testing.assert_allclose(w, w.T)
        np.testing.assert_allclose(w.sum(axis=1), 1.0)
        assert (w >= 0).all()
        assert 0 < spectral_gap(w) <= 1
    w = metropolis_weights(neighbours("ring", 10))
    assert w[0, 1] == pytest.approx(1 / 3) and w[0, 0] == pytest.approx(1 / 3)
    assert spectral_gap(metropolis_weights(neighbours("complete", 6))) == pytest.approx(1.0)
    # the ring's gap: 1 - (1/3 + 2/3·cos(2π/10))
    assert spectral_gap(w) == pytest.approx(2 / 3 * (1 - math.cos(2 * math.pi / 10)))


def test_consensus_step_sizes() -> None:
    w = metropolis_weights(neighbours("ring", 10))
    gamma = theory_consensus_lr(0.01, w)
    assert 0 < gamma < 1e-4  # the theory's γ* ~ δ·ρ²: far too small to train in practice
    assert default_consensus_lr(1.0) == 1.0
    assert default_consensus_lr(0.5) == pytest.approx(0.5 / (0.5 + 5 * 0.5))
    with pytest.raises(ValueError, match="contraction"):
        default_consensus_lr(0.0)
    op = make_compression("topk:0.5")
    v = torch.tensor([[3.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert measured_delta(op, v) == 1.0  # the zero row does not count
    assert measured_delta(op, torch.zeros(2, 4)) == 0.5


@pytest.mark.parametrize("topology,n,match", [
    ("torus", 10, r"n = a·b with 3 <= a <= b .* n=10 = 2·5: use n in 9, 12, 15, 16"),
    ("torus", 8, r"n=8 = 2·4"),
    ("torus", 7, r"n=7 = 1·7"),
    ("ring", 2, r"topology='ring' needs n >= 3"),
    ("complete", 1, r"topology='complete' needs n >= 2"),
    ("star", 5, r"unknown topology='star'; known: complete, ring, torus"),
])
def test_topology_errors(topology, n, match) -> None:
    with pytest.raises(ValueError, match=match):
        neighbours(topology, n)


def test_bad_settings_are_errors_naming_the_flag(capsys) -> None:
    with pytest.raises(ValueError, match=r"consensus_lr=1.5 must be in \(0, 1\]"):
        _train(method="choco", f=0, steps=1, consensus_lr=1.5)
    rc = cli.main(["train", "--method", "choco", "--topology", "torus", "--steps", "1",
                   "--no-progress"])
    assert rc == 2
    assert "--topology 'torus' needs n = a·b" in capsys.readouterr().err
    rc = cli.main(["train", "--method", "choco", "--compression", "topk", "--steps", "1",
                   "--no-progress"])
    assert rc == 2
    assert "--compression 'topk': topk needs a fraction" in capsys.readouterr().err


# --- compression operators ----------------------------------------------------------------


def _vectors(d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dense = torch.randn((20, d), generator=g, dtype=torch.float64)
    heavy = dense ** 3  # heavy-tailed coordinates
    sparse = torch.zeros((3, d), dtype=torch.float64)
    sparse[torch.arange(3), torch.arange(3)] = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    return torch.cat([dense, heavy, sparse])


@pytest.mark.parametrize("spec", ["topk:0.01", "topk:0.1", "topk:0.5", "topk:1", "sign",
                                  "none"])
@pytest.mark.parametrize("d", [7, 100, 1210])
def test_deterministic_operators_contract_every_vector_by_delta(spec, d) -> None:
    op = make_compression(spec)
    v = _vectors(d)
    err = (op(v) - v).square().sum(dim=1)
    bound = (1 - op.delta(d)) * v.square().sum(dim=1)
    assert (err <= bound * (1 + 1e-12) + 1e-300).all()
    assert op(v).dtype == v.dtype and op(v).shape == v.shape


def test_top_k_keeps_the_largest_entries() -> None:
    op = make_compression("topk:0.4")
    v = torch.tensor([[0.1, -5.0, 2.0, 0.0, 3.0]])
    assert op.k(5) == 2
    assert op(v).tolist() == [[0.0, -5.0, 0.0, 0.0, 3.0]]
    assert make_compression("topk:0.01").k(100) == 1
    assert make_compression("topk:0.01").k(4810) == 49  # ceil(48.1)
    assert make_compression("topk:0.001").k(10) == 1  # at least one coordinate


def test_scaled_sign_error_is_exact() -> None:
    """||Q(v) - v||² = (1 - ||v||_1² / (d·||v||²))·||v||²; a 1-sparse vector attains δ = 1/d."""
    op = make_compression("sign")
    d = 50
    v = _vectors(d)
    err = (op(v) - v).square().sum(dim=1)
    sq, l1 = v.square().sum(dim=1), v.abs().sum(dim=1)
    torch.testing.assert_close(err, sq - l1 * l1 / d)
    one = torch.zeros((1, d), dtype=torch.float64)
    one[0, 3] = -2.0
    err1 = (op(one) - one).square().sum()
    assert float(err1) == pytest.approx((1 - 1 / d) * 4.0)
    assert op(one)[0, 0] == pytest.approx(2.0 / d)  # sign(0) = +1
    assert op(one)[0, 3] == pytest.approx(-2.0 / d)


def test_random_k_contracts_in_expectation_and_is_biased_by_k_over_d() -> None:
    """Each draw drops exactly d - k coordinates; E ||Q(v) - v||² = (1 - k/d)·||v||² and
    E Q(v) = (k/d)·v (the unscaled, contractive version)."""
    op = make_compression("randk:0.25")
    d, draws = 40, 4000
    k = op.k(d)
    assert k == 10 and op.delta(d) == 0.25
    g = torch.Generator().manual_seed(1)
    v = torch.randn((1, d), generator=g, dtype=torch.float64).expand(draws, d).contiguous()
    q = op(v, g)
    assert ((q != 0).sum(dim=1) == k).all()
    assert ((q == v) | (q == 0)).all()
    ratio = ((q - v).square().sum(dim=1) / v.square().sum(dim=1)).mean()
    assert float(ratio) == pytest.approx(1 - k / d, abs=0.01)
    torch.testing.assert_close(q.mean(dim=0), (k / d) * v[0], atol=0.05 * float(v.abs().max()),
                               rtol=0)
    # the shared seed: the same generator state gives the receivers the same indices
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(op(v[:3], g1) != 0, op(v[:3], g2) != 0)


def test_wire_bytes() -> None:
    d = 1210
    assert make_compression("topk:0.01").wire_bytes(d, 4) == 13 * (4 + 4)
    assert make_compression("topk:0.01").wire_bytes(d, 8) == 13 * (8 + 4)
    assert make_compression("randk:0.01").wire_bytes(d, 4) == 13 * 4
    assert make_compression("sign").wire_bytes(d, 4) == 152 + 4  # d bits and one scale
    assert make_compression("none").wire_bytes(d, 4) == d * 4
    assert make_compression("none").unbiased
    assert not make_compression("randk:0.5").unbiased
    assert make_compression("none").delta(d) == 1.0 and make_compression("sign").delta(d) == 1 / d


@pytest.mark.parametrize("spec,match", [
    ("topk", r"compression='topk': topk needs a fraction .* topk:FRACTION"),
    ("topk:0", "0 < FRACTION <= 1"),
    ("randk:1.5", "0 < FRACTION <= 1"),
    ("randk:abc", "randk needs a fraction"),
    ("sign:2", r"compression='sign:2': sign takes no parameter"),
    ("qsgd:4", r"unknown compression 'qsgd'; known: none, randk, sign, topk"),
])
def test_compression_errors(spec, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_compression(spec)


def test_register_compression() -> None:
    class Half(Compression):
        spec = "half"

        def __call__(self, v, gen=None):
            return 0.5 * v

        def delta(self, d):
            return 0.75  # ||v/2 - v||² = ||v||²/4

        def wire_bytes(self, d, itemsize):
            return d * itemsize

    register_compression("test-half", lambda param: Half())
    try:
        assert make_compression("test-half").delta(10) == 0.75
        with pytest.raises(ValueError, match="already registered"):
            register_compression("test-half", lambda param: Half())
        register_compression("test-bad", lambda param: object())
        with pytest.raises(ValueError, match=r"not a learning\.compression\.Compression"):
            make_compression("test-bad")
    finally:
        COMPRESSIONS.pop("test-half", None)
        COMPRESSIONS.pop("test-bad", None)
