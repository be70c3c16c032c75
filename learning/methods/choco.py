"""CHOCO-SGD (Koloskova, Stich and Jaggi, ICML 2019): decentralized SGD on a graph with
compressed gossip, ``--method choco``. A baseline WITHOUT any defence against Byzantine
nodes (docs/systems/choco.md).

Every node ``i`` holds its model ``x_i`` and the public copies ``x̂_j`` of itself and of its
neighbours ``N_i`` (all start at ``x_0``; a public copy is what the neighbours know of a
model). At step ``t``, with ``W`` the Metropolis-Hastings gossip matrix of the graph
(:func:`metropolis_weights`) and ``Q`` a compression operator of contraction ``δ``
(:mod:`learning.compression`)::

    x_i^{t+½} = x_i^t - η_t·u_i                  the harness's shared SGD update (local gradient)
    q_i       = Q(x_i^{t+½} - x̂_i)              sent to every neighbour
    x̂_j      <- x̂_j + q_j      for j in N_i ∪ {i}
    x_i^{t+1} = x_i^{t+½} + γ·Σ_{j ∈ N_i} w_ij·(x̂_j - x̂_i)

Guarantee (honest nodes only, none of them Byzantine): for ``γ`` small enough (the paper's
Theorem 2 value :func:`theory_consensus_lr`, ``γ* ~ δ·ρ²``, ``ρ`` the spectral gap of ``W``)
and a decaying step size, the average of the models converges at the rate of centralized SGD
and the models reach consensus. Against Byzantine nodes there is no guarantee at all: a
Byzantine neighbour's public copy is whatever it makes it (it sends ``q = target - x̂``), and
every honest neighbour moves toward it with weight ``γ·w_ib`` at every step.

Byzantine nodes (the harness's rows after the honest ones) choose their public copy ``x̂_b``
at every step with the attack hook of parameter rounds (``setup.hooks[1]``; the values
``(h, d)`` it sees are the honest ``x^{t+½}``, its "own" vectors the honest mean moved by the
Byzantine nodes' own gradient step): a ``(b, d)`` result is the copy every neighbour holds, a
per-receiver ``(h, b, d)`` one (and the two-sided ``dissensus`` attack) gives each honest
receiver its own copy. A non-finite copy is a message the receiver discards (its copy stays).
With ``--attack none`` the Byzantine nodes are silent: their copies stay at ``x_0``, and CHOCO,
without a failure detector, keeps pulling their neighbours toward ``x_0``; an attack-free run
is ``--f 0``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..compression import Compression, make_compression
from .base import Method, Setup, StepInput, Traffic, register_method, two_sided

TOPOLOGIES = ("complete", "ring", "torus")
"""The gossip graphs of ``--topology``."""

DEFAULT_CONSENSUS_MARGIN = 5.0
"""``c`` of the practical default ``γ = δ̂ / (δ̂ + c·(1 - δ̂))`` (:func:`default_consensus_lr`)."""


def torus_shape(n: int) -> tuple[int, int]:
    """``(a, b)`` with ``a·b = n``: ``a`` the largest divisor of ``n`` at most ``√n``; a 2-D
    torus needs ``a >= 3`` (4 distinct neighbours per node), else a ``ValueError``."""
    a = max(x for x in range(1, math.isqrt(n) + 1) if n % x == 0) if n >= 1 else 0
    if a < 3:
        near = [m for m in range(9, max(n, 9) + 8) if torus_shape_ok(m)][:4]
        raise ValueError(
            f"topology='torus' needs n = a·b with 3 <= a <= b (a the largest divisor of n at "
            f"most √n; 4 distinct neighbours per node), and n={n} "
            + (f"= {a}·{n // a}" if a else "has none")
            + f": use n in {', '.join(map(str, near))}, ... or topology='ring'")
    return a, n // a


def torus_shape_ok(n: int) -> bool:
    """True iff ``n`` has a 2-D torus shape (:func:`torus_shape`)."""
    return n >= 9 and max(x for x in range(1, math.isqrt(n) + 1) if n % x == 0) >= 3


def neighbours(topology: str, n: int) -> list[list[int]]:
    """``N_i`` for every node id ``i`` of the graph: ``ring`` (``i ± 1 mod n``, ``n >= 3``),
    ``torus`` (node ``r·b + c`` at ``(r, c)`` of an ``a x b`` grid (:func:`torus_shape`),
    neighbours ``(r ± 1 mod a, c)`` and ``(r, c ± 1 mod b)``) or ``complete`` (``n >= 2``)."""
    if topology == "ring":
        if n < 3:
            raise ValueError(f"topology='ring' needs n >= 3, got n={n}: use topology='complete'")
        return [sorted({(i - 1) % n, (i + 1) % n}) for i in range(n)]
    if topology == "torus":
        a, b = torus_shape(n)
        return [sorted({((r - 1) % a) * b + c, ((r + 1) % a) * b + c,
                        r * b + (c - 1) % b, r * b + (c + 1) % b})
                for r in range(a) for c in range(b)]
    if topology == "complete":
        if n < 2:
            raise ValueError(f"topology='complete' needs n >= 2, got n={n}")
        return [[j for j in range(n) if j != i] for i in range(n)]
    raise ValueError(f"unknown topology={topology!r}; known: {', '.join(TOPOLOGIES)}")


def metropolis_weights(nbrs: list[list[int]]) -> np.ndarray:
    """The Metropolis-Hastings gossip matrix ``W`` ``(n, n)``: ``w_ij = 1/(1 + max(deg_i,
    deg_j))`` on the edges, ``w_ii = 1 - Σ_{j ≠ i} w_ij``, 0 elsewhere (symmetric and
    doubly stochastic)."""
    n = len(nbrs)
    w = np.zeros((n, n))
    for i, ns in enumerate(nbrs):
        for j in ns:
            w[i, j] = 1.0 / (1 + max(len(ns), len(nbrs[j])))
    w[np.arange(n), np.arange(n)] = 1.0 - w.sum(axis=1)
    return w


def spectral_gap(w: np.ndarray) -> float:
    """``ρ = 1 - |λ_2(W)|``, ``|λ_2|`` the second largest eigenvalue modulus of the symmetric
    ``W`` (``ρ > 0`` iff the graph is connected)."""
    mods = np.sort(np.abs(np.linalg.eigvalsh(w)))[::-1]
    return float(1.0 - mods[1]) if len(mods) > 1 else 1.0


def theory_consensus_lr(delta: float, w: np.ndarray) -> float:
    """The consensus step size of the paper's Theorem 2 (Koloskova et al. 2019):
    ``γ* = ρ²δ / (16ρ + ρ² + 4β² + 2ρβ² - 8ρδ)`` with ``ρ`` the spectral gap
    (:func:`spectral_gap`) and ``β = ||I - W||_2``; of order ``δ·ρ²`` (tiny: ``~1.7e-5`` on a
    ring of 10 with top-1%)."""
    rho = spectral_gap(w)
    beta = float(np.abs(1.0 - np.linalg.eigvalsh(w)).max())
    return rho * rho * delta / (16 * rho + rho * rho + 4 * beta * beta
                                + 2 * rho * beta * beta - 8 * rho * delta)


def measured_delta(compression: Compression, v: torch.Tensor,
                   gen: torch.Generator | None = None) -> float:
    """``δ̂``: the contraction ``compression`` achieves on the rows of ``v``, the mean over the
    non-zero rows of ``1 - ||Q(v_i) - v_i||² / ||v_i||²``, at least its guaranteed ``δ(d)``
    (top-k and sign do far better on real differences than their worst case: 0.34 and 0.25
    for top-1% and sign on the first step of the digits MLP with 16 hidden units, against
    ``δ`` = 0.011 and 0.0008; docs/systems/choco.md)."""
    d = v.shape[1]
    norm = v.double().square().sum(dim=1)
    keep = norm > 0
    if not bool(keep.any()):
        return compression.delta(d)
    err = (compression(v, gen).double() - v.double()).square().sum(dim=1)
    ratio = (err[keep] / norm[keep]).mean()
    return max(compression.delta(d), min(1.0, float(1.0 - ratio)))


def default_consensus_lr(delta_hat: float) -> float:
    """The practical default ``γ = δ̂ / (δ̂ + c·(1 - δ̂))``, ``c`` =
    :data:`DEFAULT_CONSENSUS_MARGIN`, from the contraction ``δ̂`` measured on the first
    step's differences (:func:`measured_delta`): 1 without compression (plain gossip
    averaging), about ``δ̂/3`` for strong compression. Measured to train on the digits MLP
    (docs/systems/choco.md, its grid of step sizes), unlike the theory's
    :func:`theory_consensus_lr`, orders of magnitude smaller. The spectral gap does not
    enter: the largest ``γ`` that trained depended on the operator far more than on the
    graph (a ring of 10, a 3 x 3 torus, the complete graph of 10: at most a factor 2)."""
    if not 0 < delta_hat <= 1:
        raise ValueError(f"a contraction must be in (0, 1], got {delta_hat}")
    return delta_hat / (delta_hat + DEFAULT_CONSENSUS_MARGIN * (1.0 - delta_hat))


@register_method
class Choco(Method):
    """CHOCO-SGD on ``topology`` with ``compression`` and consensus step ``consensus_lr``
    (module doc; no defence against Byzantine nodes)."""

    name = "choco"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        cfg = setup.cfg
        self.compression: Compression = make_compression(cfg.compression)
        nbrs = neighbours(cfg.topology, cfg.n)
        self.degrees = [len(x) for x in nbrs]
        order = setup.honest_ids + setup.byz_ids  # rows: honest first, then Byzantine
        self.w = metropolis_weights(nbrs)
        self.w_rows = self.w[np.ix_(order, order)]
        if cfg.consensus_lr is not None and not 0 < cfg.consensus_lr <= 1:
            raise ValueError(f"consensus_lr={cfg.consensus_lr} must be in (0, 1]")
        self.gamma_given = cfg.consensus_lr
        self.gen: torch.Generator | None = None  # random-k's shared seed, on the device
        self.hat: torch.Tensor | None = None  # (h, d) honest public copies
        self.byz_hat: torch.Tensor | None = None  # (b, d) or (h, b, d) Byzantine copies
        self.gamma = math.nan

    def _start(self, s: StepInput) -> None:
        """First step: the public copies at ``x_0`` and the weights on the device."""
        setup, theta = self.setup, s.theta
        h, d = theta.shape
        self.hat = theta.clone()
        self.byz_hat = theta[:1].expand(setup.b, d).clone()
        off = self.w_rows.copy()
        np.fill_diagonal(off, 0.0)
        as_t = lambda a: torch.as_tensor(a, device=theta.device, dtype=theta.dtype)  # noqa: E731
        self.a_hh, self.a_hb = as_t(off[:h, :h]), as_t(off[:h, h:])
        self.out_weight = as_t(off[:h].sum(axis=1))[:, None]  # Σ_{j ∈ N_i} w_ij
        self.gen = torch.Generator(device=theta.device)
        self.gen.manual_seed(setup.cfg.seed * 2 + 1)

    def _byzantine_copies(self, half: torch.Tensor, s: StepInput) -> torch.Tensor:
        """This step's Byzantine public copies, ``(b, d)`` or per receiver ``(h, b, d)``."""
        setup, old = self.setup, self.byz_hat
        assert old is not None
        if not setup.attacked:
            return old  # silent: the copies stay
        if setup.cfg.attack == "dissensus":
            vals, side = two_sided(half, setup.b, setup.scale)
            new = vals[torch.as_tensor(side, device=half.device)]  # (h, b, d)
        else:
            new = self.byzantine_vectors(half, s.mean - s.lr * s.own, setup.hooks[1])
            if new.shape[0] == 0:
                return old
        if new.ndim == 3 and old.ndim == 2:
            old = old.expand(new.shape[0], *old.shape)
        elif new.ndim == 2 and old.ndim == 3:
            new = new.expand(old.shape[0], *new.shape)
        ok = torch.isfinite(new).all(dim=-1, keepdim=True)  # a non-finite q is discarded
        return torch.where(ok, new, old)

    def step(self, s: StepInput) -> torch.Tensor:
        if self.hat is None:
            self._start(s)
        assert self.hat is not None
        half = s.descend(s.sent)  # x^{t+½}
        diff = half - self.hat
        if math.isnan(self.gamma):
            self.gamma = self.gamma_given if self.gamma_given is not None else \
                default_consensus_lr(measured_delta(self.compression, diff, self.gen))
        self.hat += self.compression(diff, self.gen)  # x̂_i <- x̂_i + q_i
        self.byz_hat = self._byzantine_copies(half, s)
        mix = self.a_hh @ self.hat
        if self.setup.b:
            byz = self.byz_hat
            mix += torch.einsum("ib,ibd->id", self.a_hb, byz) if byz.ndim == 3 \
                else self.a_hb @ byz
        return half + self.gamma * (mix - self.out_weight * self.hat)

    def traffic(self, d: int, itemsize: int) -> Traffic:
        per = self.compression.wire_bytes(d, itemsize)
        messages = self.setup.cfg.steps * sum(self.degrees)
        return Traffic(messages, messages * per,
                       f"payload only: one compressed difference per directed edge per step "
                       f"({self.compression.spec}: {per} bytes of {d * itemsize}; "
                       f"{self.setup.cfg.topology}, γ={self.gamma:.3g})")


__all__ = ["DEFAULT_CONSENSUS_MARGIN", "TOPOLOGIES", "Choco", "default_consensus_lr",
           "measured_delta", "metropolis_weights", "neighbours", "spectral_gap",
           "theory_consensus_lr", "torus_shape", "torus_shape_ok"]
