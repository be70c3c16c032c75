"""ByzSGD (El-Mhamdi, Guerraoui, Guirguis, Hoang, Rouault, PODC 2020) as sans-IO protocols:
Byzantine parameter servers and Byzantine workers over an asynchronous network
(docs/systems/byzsgd.md).

Nodes ``0..n_ps-1`` are parameter servers (at most ``f_ps`` Byzantine), nodes
``n_ps..n_ps+n_w-1`` workers (at most ``f_w`` Byzantine); netsim sees ``n = n_ps + n_w``
nodes and ``f = f_ps + f_w``. Resilience: ``n_ps >= 3 f_ps + 1`` and ``n_w >= 3 f_w + 1``
(:func:`netsim.protocol.require_resilience`; refused unless ``unsafe``). Quorums
``q_ps = n_ps - f_ps`` and ``q_w = n_w - f_w``: a node waits for the *first* ``q``
messages of distinct senders, never for all. With ``T = gather_every``, step ``t`` is::

    server s:  on the first q_w GRADIENT(t):  ĝ = rule(those q_w vectors)         (MDA_{f_w})
                                             x_s <- x_s - lr_t · ĝ ;  t <- t + 1
               if t % T == 0 (a gather):     GATHER(t, x_s) to every other server; on the
                                             first q_ps GATHER(t) (its own always among them)
                                             x_s <- coordinate-wise median of them
               if t < steps: MODEL(t, x_s) to every worker, else output x_s
    worker w:  on the first q_ps MODEL(t):   x̂ = model_rule(those)       (coordinate median)
                                             GRADIENT(t, oracle(x̂, t, w)) to every server

Wire: :class:`netsim.messages.Send` with instance ``(channel, step, origin)``, channels
:data:`MODEL` (1), :data:`GRADIENT` (2) and :data:`GATHER` (3); no codec change.

**The gather's guarantee** (:mod:`learning.protocols.gather`, proven there): with ``b``
Byzantine servers and ``L = floor((q_ps+1)/2) - b >= 1``, every honest server's model after
a gather lies coordinate-wise in ``[v_(L), v_(h+1-L)]`` of the ``h`` honest pre-gather
models. It is validity plus a trimming of the ``L-1`` most extreme honest values, *not* a
multiplicative contraction (at ``n_ps = 3 f_ps + 1``, ``L = 1``: the honest range itself).
:func:`simulate_byzsgd` checks every honest server against it after every gather.

Hostile input is a :class:`~netsim.protocol.Fault`, never an exception, and memory stays
bounded (at most one vector per channel, step and origin, steps ``< steps``): ``unexpected-
message`` (not a SEND, or a channel this node does not take), ``unknown-channel``,
``value-not-from-origin``, ``wrong-role`` (a worker sending MODEL/GATHER, a server sending
GRADIENT), ``step-out-of-range``, ``invalid-value`` (:func:`netsim.messages.vector_problem`
with the session's dtype and dimension), ``duplicate`` and ``equivocation`` (a second,
different message for the same channel, step and origin: the first is kept). Messages of
steps already done are ignored (normal asynchrony); later ones are buffered.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agreement.rules import make_rule
from netsim.adversary import ALL, CoreStrategy, Strategy, make_strategy
from netsim.messages import Message, Send, as_vector, vector_problem
from netsim.protocol import Fault, Protocol, Step, require_resilience
from netsim.sim.schedulers import Scheduler, make_scheduler
from netsim.sim.simulator import SimResult, Simulator

from .gather import median_gather_bounds, median_gather_rank

MODEL = 1
"""Channel of ``MODEL(t, x_s)``: server ``s``'s model entering step ``t``, to every worker."""
GRADIENT = 2
"""Channel of ``GRADIENT(t, g)``: a worker's gradient of step ``t``, to every server."""
GATHER = 3
"""Channel of ``GATHER(t, x_s)``: server ``s``'s pre-gather model at step ``t``, to every
other server (only when ``t % gather_every == 0``)."""
CHANNEL_NAMES: dict[int, str] = {MODEL: "model", GRADIENT: "gradient", GATHER: "gather"}
_SENDER_ROLE = {MODEL: "server", GRADIENT: "worker", GATHER: "server"}

Oracle = Callable[[np.ndarray, int, int], np.ndarray]
"""``oracle(x̂, t, w) -> g``: worker ``w``'s (its node id) stochastic gradient at ``x̂`` in
step ``t``; a pure, deterministic numpy function (the protocol stays sans-IO)."""


@dataclass(frozen=True)
class ByzSGDConfig:
    """One ByzSGD deployment (module doc). ``lr_t = lr / (1 + lr_decay · t)``.

    ``rule``: the servers' gradient rule (:func:`agreement.rules.make_rule` with ``f_w``,
    on ``q_w`` vectors); ``model_rule``: the workers' rule on ``q_ps`` models (with
    ``f_ps``); ``gather_rule``: the servers' rule on a gather (``median``, the one the bound
    of :mod:`learning.protocols.gather` covers; any other registered rule is a baseline
    without that guarantee). ``ValueError`` below ``n_ps >= 3f_ps+1`` or
    ``n_w >= 3f_w+1`` unless ``unsafe`` (then a ``RuntimeWarning``)."""

    n_ps: int
    f_ps: int
    n_w: int
    f_w: int
    steps: int
    gather_every: int = 1
    lr: float = 0.1
    lr_decay: float = 0.0
    rule: str = "mda"
    model_rule: str = "median"
    gather_rule: str = "median"
    unsafe: bool = False

    def __post_init__(self) -> None:
        require_resilience(self.n_ps, self.f_ps, 3,
                           "the ByzSGD server group (n_ps servers, f_ps Byzantine)", self.unsafe)
        require_resilience(self.n_w, self.f_w, 3,
                           "the ByzSGD worker group (n_w workers, f_w Byzantine)", self.unsafe)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got steps={self.steps}")
        if self.gather_every < 1:
            raise ValueError(f"gather_every must be >= 1, got gather_every={self.gather_every}")
        if not (self.lr > 0 and np.isfinite(self.lr)) or not self.lr_decay >= 0:
            raise ValueError(f"need lr > 0 and lr_decay >= 0, got lr={self.lr}, "
                             f"lr_decay={self.lr_decay}")
        for name, f, q in ((self.rule, self.f_w, self.q_w),
                           (self.model_rule, self.f_ps, self.q_ps),
                           (self.gather_rule, self.f_ps, self.q_ps)):
            need = make_rule(name, f).min_size()
            if need > q and not self.unsafe:
                raise ValueError(f"rule {name} with f={f} needs >= {need} vectors, but a "
                                 f"quorum holds {q}")

    @property
    def n(self) -> int:
        """All nodes: ``n_ps + n_w``."""
        return self.n_ps + self.n_w

    @property
    def f(self) -> int:
        """The simulator's Byzantine bound: ``f_ps + f_w``."""
        return self.f_ps + self.f_w

    @property
    def q_ps(self) -> int:
        """The servers' quorum ``n_ps - f_ps``."""
        return self.n_ps - self.f_ps

    @property
    def q_w(self) -> int:
        """The workers' quorum ``n_w - f_w``."""
        return self.n_w - self.f_w

    @property
    def server_ids(self) -> range:
        return range(self.n_ps)

    @property
    def worker_ids(self) -> range:
        return range(self.n_ps, self.n)

    def lr_at(self, t: int) -> float:
        """``lr_t = lr / (1 + lr_decay · t)``."""
        return self.lr / (1.0 + self.lr_decay * t)

    def is_gather(self, t: int) -> bool:
        """Step ``t >= 1`` starts with a gather iff ``t % gather_every == 0``."""
        return t >= 1 and t % self.gather_every == 0


@dataclass(frozen=True, slots=True)
class GatherRecord:
    """One gather at one server: the step, the model before and after, the quorum's origins
    (in arrival order, this server first)."""

    step: int
    pre: np.ndarray
    post: np.ndarray
    origins: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FinalModel:
    """A server's output: its model after ``steps`` steps."""

    node_id: int
    steps: int
    vector: np.ndarray


def _session_vector(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1 or x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise ValueError(f"x0 must be a 1-D float32 or float64 vector, got dtype {x.dtype} "
                         f"and shape {x.shape}")
    x = as_vector(x)
    why = vector_problem(x)
    if why is not None:
        raise ValueError(f"x0 is not a valid vector ({why})")
    return x


class _Node(Protocol):
    """Intake shared by servers and workers: validation, buffering, first-quorum order."""

    role = ""
    accepts: frozenset[int] = frozenset()

    def __init__(self, config: ByzSGDConfig, node_id: int, x0: Any) -> None:
        self.config = config
        self.node_id, self.n, self.f = node_id, config.n, config.f
        self.x0 = _session_vector(x0)
        self.dtype, self.dim = self.x0.dtype, self.x0.shape[0]
        self.t = 0
        self.seen: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        self.valid: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        self.finished = False

    @property
    def done(self) -> bool:
        return self.finished

    def _in_range(self, channel: int, t: int) -> bool:
        if channel == GATHER:
            return self.config.is_gather(t) and t <= self.config.steps
        return 0 <= t < self.config.steps

    @abstractmethod
    def _consumed(self, channel: int, t: int) -> bool:
        """True when this node no longer needs ``(channel, t)``: ignored, not a fault."""

    def _intake(self, sender: int, message: Message) -> Fault | None:
        """Validate and buffer one message; a :class:`Fault`, or ``None`` (buffered or
        ignored)."""
        if type(message) is not Send:
            return Fault(sender, "unexpected-message", message.NAME)
        channel, t, origin = message.instance
        if channel not in CHANNEL_NAMES:
            return Fault(sender, "unknown-channel", f"{message.instance}")
        if origin != sender:
            return Fault(sender, "value-not-from-origin", f"{message.instance}")
        role = "server" if sender < self.config.n_ps else "worker"
        if role != _SENDER_ROLE[channel]:
            return Fault(sender, "wrong-role",
                         f"a {role} sent {CHANNEL_NAMES[channel]} (step {t})")
        if channel not in self.accepts:
            return Fault(sender, "unexpected-message",
                         f"a {self.role} takes no {CHANNEL_NAMES[channel]} (step {t})")
        if not self._in_range(channel, t):
            return Fault(sender, "step-out-of-range", f"{CHANNEL_NAMES[channel]} step {t}")
        if self.finished or self._consumed(channel, t):
            return None
        key = (channel, t)
        got = self.seen.setdefault(key, {})
        vec = message.vector
        if sender in got:
            kind = "duplicate" if got[sender].tobytes() == vec.tobytes() else "equivocation"
            return Fault(sender, kind, f"{CHANNEL_NAMES[channel]} step {t}")
        got[sender] = vec
        why = vector_problem(vec, self.dtype, self.dim)
        if why is not None:
            return Fault(sender, "invalid-value", f"{CHANNEL_NAMES[channel]} step {t}: {why}")
        self.valid.setdefault(key, {})[sender] = vec
        return None

    def _take(self, channel: int, t: int, q: int,
              first: Mapping[int, np.ndarray] | None = None) -> dict[int, np.ndarray] | None:
        """The first ``q`` valid vectors of ``(channel, t)`` (``first`` ahead of them), in
        arrival order, or ``None`` while fewer arrived; the buffers of the key are freed."""
        got = dict(first or {})
        for o, v in self.valid.get((channel, t), {}).items():
            if len(got) == q:
                break
            got.setdefault(o, v)
        if len(got) < q:
            return None
        self.seen.pop((channel, t), None)
        self.valid.pop((channel, t), None)
        return got

    def _apply_rule(self, rule: Any, rows: Mapping[int, np.ndarray], what: str,
                    step: Step) -> np.ndarray | None:
        """``rule(rows)`` in the session dtype, or ``None`` and a fault of this node
        (``invalid-rule-output``) when it refuses or gives an invalid vector."""
        try:
            with np.errstate(all="ignore"):
                y = np.asarray(rule(np.stack(list(rows.values()))), dtype=self.dtype)
            why = vector_problem(y, self.dtype, self.dim)
        except (ValueError, ArithmeticError) as exc:
            why = f"the rule raised {type(exc).__name__}: {exc}"
        if why is None:
            return as_vector(y)
        step.faults.append(Fault(self.node_id, "invalid-rule-output",  # type: ignore[attr-defined]
                                 f"{what}: {why}"))
        return None

    def handle(self, sender: int, message: Message, now: float) -> Step:
        """Handle one authenticated message; never raises on what a peer sends (module doc:
        the fault kinds)."""
        flt = self._intake(sender, message)
        step = Step()
        if flt is not None:
            step.faults.append(flt)  # type: ignore[attr-defined]
            return step
        if not self.finished:
            self._advance(step)
        return step

    @abstractmethod
    def _advance(self, step: Step) -> None:
        """Take every quorum that is complete, in step order, adding to ``step``."""


class ByzSGDServer(_Node):
    """An honest parameter server (module doc). Implements
    :class:`netsim.protocol.ValueHistory`: ``value_at(t)`` is its model entering step ``t``
    (post-gather; its latest model, possibly pre-gather, if not there yet), ``view_at(t)``
    the gather set of step ``t`` (``origin -> model``), ``None`` if none. :attr:`records`:
    its gathers, read-only."""

    role = "server"
    accepts = frozenset({GRADIENT, GATHER})

    def __init__(self, config: ByzSGDConfig, node_id: int, x0: Any) -> None:
        if node_id not in config.server_ids:
            raise ValueError(f"node {node_id} is not a server (servers: 0..{config.n_ps - 1})")
        super().__init__(config, node_id, x0)
        self.x = self.x0
        self.gathering = False
        self.history: list[np.ndarray] = [self.x0]
        self._records: list[GatherRecord] = []
        self._views: dict[int, dict[int, np.ndarray]] = {}
        self.rule = make_rule(config.rule, config.f_w)
        self.gather_rule = (None if config.gather_rule == "median"
                            else make_rule(config.gather_rule, config.f_ps))

    @property
    def records(self) -> tuple[GatherRecord, ...]:
        return tuple(self._records)

    def _consumed(self, channel: int, t: int) -> bool:
        if channel == GRADIENT:
            return t < self.t
        return t < self.t or (t == self.t and not self.gathering)

    def _models(self, t: int, x: np.ndarray) -> Step:
        return Step([(w, Send((MODEL, t, self.node_id), x)) for w in self.config.worker_ids])

    def start(self, now: float) -> Step:
        return self._models(0, self.x0)

    def _advance(self, step: Step) -> None:
        cfg = self.config
        while not self.finished:
            if self.gathering:
                got = self._take(GATHER, self.t, cfg.q_ps, {self.node_id: self.x})
                if got is None:
                    return
                self._finish_gather(got, step)
            else:
                got = self._take(GRADIENT, self.t, cfg.q_w)
                if got is None:
                    return
                g = self._apply_rule(self.rule, got, f"step {self.t} gradients", step)
                if g is not None:
                    with np.errstate(all="ignore"):
                        y = (self.x - self.dtype.type(cfg.lr_at(self.t)) * g).astype(self.dtype)
                    if vector_problem(y, self.dtype, self.dim) is None:
                        self.x = as_vector(y)
                self.t += 1
                if cfg.is_gather(self.t):
                    self.gathering = True
                    others = [s for s in cfg.server_ids if s != self.node_id]
                    msg = Send((GATHER, self.t, self.node_id), self.x)
                    step.messages.extend((s, msg) for s in others)  # type: ignore[attr-defined]
                else:
                    self._enter(step)

    def _finish_gather(self, got: dict[int, np.ndarray], step: Step) -> None:
        pre = self.x
        if self.gather_rule is None:
            post = as_vector(np.median(np.stack(list(got.values())), axis=0).astype(self.dtype))
        else:
            post = self._apply_rule(self.gather_rule, got, f"gather {self.t}", step)
            post = pre if post is None else post
        self._records.append(GatherRecord(self.t, pre, post, tuple(got)))
        self._views[self.t] = {o: got[o] for o in sorted(got)}
        self.x = post
        self.gathering = False
        self._enter(step)

    def _enter(self, step: Step) -> None:
        """Enter step ``self.t`` with model ``self.x``: MODEL to the workers, or output."""
        self.history.append(self.x)
        if self.t < self.config.steps:
            step.extend(self._models(self.t, self.x))
        else:
            self.finished = True
            step.outputs.append(FinalModel(self.node_id, self.t, self.x))  # type: ignore[attr-defined]

    def value_at(self, round: int) -> np.ndarray:
        """The model entering step ``round`` (the latest model if not there yet)."""
        if round < 0:
            raise ValueError(f"steps count from 0, got {round}")
        return self.history[round] if round < len(self.history) else self.x

    def view_at(self, round: int) -> dict[int, np.ndarray] | None:
        """The gather set of step ``round`` (``origin -> model``), ``None`` if none."""
        return self._views.get(round)


class ByzSGDWorker(_Node):
    """An honest worker (module doc). Implements :class:`netsim.protocol.ValueHistory`:
    ``value_at(t)`` is its ``x̂`` of step ``t`` (its latest if not there yet, ``x0`` before
    the first), ``view_at(t)`` the models it combined in step ``t``."""

    role = "worker"
    accepts = frozenset({MODEL})

    def __init__(self, config: ByzSGDConfig, node_id: int, x0: Any, oracle: Oracle) -> None:
        if node_id not in config.worker_ids:
            raise ValueError(f"node {node_id} is not a worker (workers: {config.n_ps}.."
                             f"{config.n - 1})")
        super().__init__(config, node_id, x0)
        self.oracle = oracle
        self.rule = make_rule(config.model_rule, config.f_ps)
        self.estimates: list[np.ndarray] = []
        self._views: dict[int, dict[int, np.ndarray]] = {}

    def _consumed(self, channel: int, t: int) -> bool:
        return t < self.t

    def start(self, now: float) -> Step:
        return Step()

    def _advance(self, step: Step) -> None:
        cfg = self.config
        while not self.finished:
            got = self._take(MODEL, self.t, cfg.q_ps)
            if got is None:
                return
            self._views[self.t] = {o: got[o] for o in sorted(got)}
            xhat = self._apply_rule(self.rule, got, f"step {self.t} models", step)
            if xhat is None:
                xhat = self.estimates[-1] if self.estimates else self.x0
            self.estimates.append(xhat)
            g = np.asarray(self.oracle(xhat, self.t, self.node_id), dtype=self.dtype)
            why = vector_problem(g, self.dtype, self.dim)
            if why is not None:
                step.faults.append(Fault(  # type: ignore[attr-defined]
                    self.node_id, "invalid-oracle-output", f"step {self.t}: {why}; sent 0"))
                g = np.zeros(self.dim, dtype=self.dtype)
            msg = Send((GRADIENT, self.t, self.node_id), g)
            step.messages.extend((s, msg) for s in cfg.server_ids)  # type: ignore[attr-defined]
            self.t += 1
            self.finished = self.t == cfg.steps

    def value_at(self, round: int) -> np.ndarray:
        """``x̂`` of step ``round`` (the latest, or ``x0`` before the first, if not there)."""
        if round < 0:
            raise ValueError(f"steps count from 0, got {round}")
        if round < len(self.estimates):
            return self.estimates[round]
        return self.estimates[-1] if self.estimates else self.x0

    def view_at(self, round: int) -> dict[int, np.ndarray] | None:
        """The models combined in step ``round`` (``origin -> model``), ``None`` if none."""
        return self._views.get(round)


def make_node(config: ByzSGDConfig, oracle: Oracle, node_id: int, x0: Any) -> _Node:
    """The honest node ``node_id``: a :class:`ByzSGDServer` (ids ``< n_ps``) or a
    :class:`ByzSGDWorker`, starting from ``x0``."""
    if node_id in config.server_ids:
        return ByzSGDServer(config, node_id, x0)
    return ByzSGDWorker(config, node_id, x0, oracle)


# -- Byzantine strategies specific to ByzSGD -------------------------------------------------
def _retag(msg: Message, vector: np.ndarray) -> Send:
    """``msg``'s instance with another vector."""
    return Send(msg.instance, vector)  # type: ignore[attr-defined]


class Stale(CoreStrategy):
    """Honest cores whose vectors never move: a Byzantine server sends its step-0 model (its
    input) in every MODEL and GATHER, tagged with the current step; a Byzantine worker sends
    its first gradient in every GRADIENT."""

    name = "stale"

    def setup(self, ctx: Any) -> None:
        super().setup(ctx)
        self.first: dict[int, np.ndarray] = {}

    def route(self, byz, core, target, msg):  # type: ignore[override]
        if type(msg) is not Send:
            return [(byz, target, msg)]
        channel = msg.instance[0]
        if channel in (MODEL, GATHER):
            old = as_vector(np.asarray(self.ctx.inputs[byz], dtype=msg.vector.dtype))
        else:
            old = self.first.setdefault(byz, msg.vector)
        return [(byz, target, _retag(msg, old))]


class SignFlip(CoreStrategy):
    """Byzantine workers send their honest core's gradient times ``-scale`` (default 4);
    Byzantine servers behave honestly."""

    name = "sign-flip"

    def __init__(self, scale: float = 4.0) -> None:
        if not scale > 0:
            raise ValueError(f"sign-flip needs scale > 0, got {scale!r}")
        self.scale = scale

    def route(self, byz, core, target, msg):  # type: ignore[override]
        if type(msg) is Send and msg.instance[0] == GRADIENT:
            v = msg.vector
            flipped = (-self.scale * v.astype(np.float64)).astype(v.dtype)
            if vector_problem(flipped, v.dtype, v.shape[0]) is None:
                return [(byz, target, _retag(msg, flipped))]
        return [(byz, target, msg)]


class FarOutside(CoreStrategy):
    """Vectors far outside, a different side per receiver: every SEND of the honest core
    (models, gathers, gradients) becomes ``v + s·scale·(1 + max|v|)·1`` with ``s = -1`` for
    even receiver ids and ``+1`` for odd ones (default ``scale`` 100): each honest gather
    median is dragged to one end of its quorum's honest values, the worst case of
    :func:`learning.protocols.gather.median_gather_bounds`."""

    name = "far"

    def __init__(self, scale: float = 100.0) -> None:
        if not scale > 0:
            raise ValueError(f"far needs scale > 0, got {scale!r}")
        self.scale = scale

    def route(self, byz, core, target, msg):  # type: ignore[override]
        if type(msg) is not Send or target == ALL:
            return [(byz, target, msg)]
        v = msg.vector
        s = 1.0 if target % 2 else -1.0
        with np.errstate(all="ignore"):
            shift = s * self.scale * (1.0 + float(np.abs(v).max(initial=0.0)))
            far = (v.astype(np.float64) + shift).astype(v.dtype)
        if vector_problem(far, v.dtype, v.shape[0]) is not None:
            return [(byz, target, msg)]
        return [(byz, target, _retag(msg, far))]


BYZSGD_STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (Stale, SignFlip, FarOutside)
}
"""ByzSGD's own strategies by name (not registered in netsim's global ``STRATEGIES``):
``stale``, ``sign-flip``, ``far``. Every netsim strategy runs too
(:func:`make_byzsgd_strategy`)."""


def make_byzsgd_strategy(name: str, **params: Any) -> Strategy:
    """A strategy of :data:`BYZSGD_STRATEGIES`, else netsim's
    (:func:`netsim.adversary.make_strategy`: ``silent``, ``equivocate``, ``flood``, ...)."""
    factory = BYZSGD_STRATEGIES.get(name)
    if factory is not None:
        return factory(**params)
    try:
        return make_strategy(name, **params)
    except ValueError as exc:
        raise ValueError(f"{exc}; ByzSGD's own: {', '.join(sorted(BYZSGD_STRATEGIES))}"
                         ) from None


# -- a gradient oracle with a known optimum --------------------------------------------------
@dataclass(frozen=True)
class QuadraticOracle:
    """Worker ``w`` minimises ``f_w(x) = ½||x - c_w||²``: ``oracle(x, t, w) = x - c_w +
    noise·ξ``, ``ξ ~ N(0, I)`` drawn from ``default_rng([seed, t, w])`` (deterministic).
    ``centers[k]`` is worker ``first_worker + k``'s ``c_w``. The honest workers' average
    loss has its minimum at the mean of their centres (:meth:`optimum`)."""

    centers: np.ndarray
    first_worker: int
    noise: float = 0.0
    seed: int = 0

    def __call__(self, x: np.ndarray, t: int, w: int) -> np.ndarray:
        c = self.centers[w - self.first_worker]
        g = np.asarray(x, dtype=np.float64) - c
        if self.noise:
            g = g + self.noise * np.random.default_rng([self.seed, t, w]).standard_normal(g.shape)
        return g.astype(np.asarray(x).dtype)

    def optimum(self, workers: Sequence[int]) -> np.ndarray:
        """``argmin_x (1/|H|) Σ_{w in H} f_w(x)`` = the mean of the centres of ``workers``."""
        return self.centers[[w - self.first_worker for w in workers]].mean(axis=0)


def quadratic_oracle(config: ByzSGDConfig, dim: int, *, center: float = 1.0,
                     spread: float = 0.3, noise: float = 0.1, seed: int = 0
                     ) -> QuadraticOracle:
    """Heterogeneous quadratics: ``c_w = center·1 + spread·N(0, I)`` per worker (seeded)."""
    rng = np.random.default_rng(seed)
    centers = center + spread * rng.standard_normal((config.n_w, dim))
    return QuadraticOracle(centers, config.n_ps, noise, seed)


# -- the runner ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GatherCheck:
    """The bound of :func:`~learning.protocols.gather.median_gather_bounds` at one gather:
    ``pre`` (rows: the honest servers in id order) and ``post`` their models before and
    after; ``low``/``high`` the bound; ``violation`` the largest excursion out of it (0:
    within); ``spread`` the largest per-coordinate range of ``pre``; ``edge_gap`` the
    smallest ``min(post - low, high - post) / (high - low)`` over servers and coordinates
    where ``high > low`` (0: some server sits on the bound's edge)."""

    step: int
    pre: np.ndarray
    post: np.ndarray
    low: np.ndarray
    high: np.ndarray
    violation: float
    spread: float
    edge_gap: float

    @property
    def ok(self) -> bool:
        return self.violation == 0.0


def check_gather(step: int, pre: np.ndarray, post: np.ndarray, q: int, b: int) -> GatherCheck:
    """Check the post-gather models ``post`` against the bound of the pre-gather ones."""
    low, high = median_gather_bounds(pre, q, b)
    post64 = post.astype(np.float64)
    out = np.maximum(low - post64, post64 - high)
    width = high - low
    wide = width > 0
    gap = np.minimum(post64 - low, high - post64)[:, wide] / width[wide]
    spread = float((pre.max(axis=0) - pre.min(axis=0)).max(initial=0.0))
    return GatherCheck(step, pre, post, low, high, float(max(out.max(initial=0.0), 0.0)),
                       spread, float(gap.min(initial=np.inf)))


class _ChannelTally:
    """A text stream for the simulator's ``trace``: wire messages and bytes by channel
    (``model``, ``gradient``, ``gather``) or by kind for anything else (``raw``, ``echo``)."""

    def __init__(self) -> None:
        self.messages: dict[str, int] = {}
        self.bytes: dict[str, int] = {}

    def write(self, text: str) -> int:
        for line in text.splitlines():
            rec = json.loads(line)
            if rec["src"] == rec["dst"]:
                continue
            kind, inst = rec["kind"], rec["instance"]
            if kind == "send" and inst is not None:
                kind = CHANNEL_NAMES.get(inst[0], f"send:{inst[0]}")
            self.messages[kind] = self.messages.get(kind, 0) + 1
            self.bytes[kind] = self.bytes.get(kind, 0) + rec["size"]
        return len(text)

    def flush(self) -> None:
        """Nothing buffered."""


@dataclass
class GatherRun:
    """A finished ByzSGD run, wherever it ran (the simulator's :class:`ByzSGDResult`, the
    network's :class:`~learning.protocols.byzsgd_net.NetworkResult`): the honest servers'
    final ``models``, their gather ``records`` and every gather's ``checks`` (``checked`` is
    false where the bound has no precondition, ``L < 1``: unsafe runs)."""

    config: ByzSGDConfig
    byzantine_ids: tuple[int, ...]
    honest_servers: tuple[int, ...]
    honest_workers: tuple[int, ...]
    models: dict[int, np.ndarray]
    records: dict[int, tuple[GatherRecord, ...]]
    checks: list[GatherCheck]
    checked: bool

    @property
    def ok(self) -> bool:
        """Every honest server finished and every gather lies within its bound."""
        return self.done and all(c.ok for c in self.checks)

    @property
    def done(self) -> bool:
        return len(self.models) == len(self.honest_servers)

    def diameter(self) -> float:
        """The largest ℓ2 distance between two honest final models."""
        m = np.stack([self.models[s] for s in sorted(self.models)]).astype(np.float64)
        return float(np.sqrt(((m[:, None] - m[None]) ** 2).sum(axis=2)).max())

    def distance_to(self, point: np.ndarray) -> float:
        """The largest ℓ2 distance from an honest final model to ``point``."""
        return max(float(np.linalg.norm(v.astype(np.float64) - point))
                   for v in self.models.values())


@dataclass
class ByzSGDResult(GatherRun):
    """What :func:`simulate_byzsgd` produced (:class:`GatherRun`), with the run's seed,
    strategy and scheduler, traffic by channel, faults by kind and the simulator's own
    result ``sim``."""

    seed: int
    strategy: str
    scheduler: str
    messages_by_channel: dict[str, int]
    bytes_by_channel: dict[str, int]
    faults_by_kind: dict[str, int]
    sim: SimResult = field(repr=False)

    def summary(self) -> str:
        """A few lines for a terminal: the setting, traffic, faults, the bound."""
        cfg = self.config
        worst = max((c.violation for c in self.checks), default=0.0)
        lines = [
            f"ByzSGD n_ps={cfg.n_ps} f_ps={cfg.f_ps} n_w={cfg.n_w} f_w={cfg.f_w} "
            f"steps={cfg.steps} gather_every={cfg.gather_every} strategy={self.strategy} "
            f"scheduler={self.scheduler} seed={self.seed} byzantine={list(self.byzantine_ids)}",
            "messages " + " ".join(f"{k}={v}" for k, v in sorted(self.messages_by_channel.items())),
            "bytes " + " ".join(f"{k}={v}" for k, v in sorted(self.bytes_by_channel.items())),
            "faults " + (" ".join(f"{k}={v}" for k, v in sorted(self.faults_by_kind.items()))
                         or "none"),
            f"gathers checked {len(self.checks)}, within the bound "
            f"{sum(c.ok for c in self.checks)}, worst violation {worst:.3g}"
            + ("" if self.checked else " (no bound: L < 1)"),
            f"honest servers done {len(self.models)}/{len(self.honest_servers)}, final "
            f"diameter {self.diameter():.4g}" if self.models else "no honest server finished",
        ]
        return "\n".join(lines)


def default_byzantine_ids(config: ByzSGDConfig) -> tuple[int, ...]:
    """The first ``f_ps`` servers and the first ``f_w`` workers."""
    return tuple(range(config.f_ps)) + tuple(config.n_ps + k for k in range(config.f_w))


def _check_byzantine_ids(config: ByzSGDConfig, ids: Sequence[int]) -> tuple[int, ...]:
    byz = tuple(sorted(set(int(i) for i in ids)))
    if any(not 0 <= i < config.n for i in byz):
        raise ValueError(f"byzantine_ids must be in range({config.n}), got {list(byz)}")
    servers = [i for i in byz if i < config.n_ps]
    if len(servers) > config.f_ps or len(byz) - len(servers) > config.f_w:
        raise ValueError(f"byzantine_ids {list(byz)}: at most f_ps={config.f_ps} "
                         f"servers (ids < {config.n_ps}) and f_w={config.f_w} workers")
    return byz


def gather_checks(config: ByzSGDConfig, records: Mapping[int, Sequence[GatherRecord]],
                  b: int) -> tuple[list[GatherCheck], bool]:
    """:func:`check_gather` at every step where every honest server (the keys of
    ``records``) gathered, with ``b`` Byzantine servers; ``([], False)`` where the bound has
    no precondition (``L < 1``, an unsafe configuration)."""
    try:
        median_gather_rank(config.q_ps, b)
    except ValueError:
        return [], False
    by_step: dict[int, dict[int, GatherRecord]] = {}
    for s, recs in records.items():
        for r in recs:
            by_step.setdefault(r.step, {})[s] = r
    checks = []
    for t in sorted(by_step):
        got = by_step[t]
        if len(got) < len(records):  # a server that never reached this gather
            continue
        pre = np.stack([got[s].pre for s in sorted(got)]).astype(np.float64)
        post = np.stack([got[s].post for s in sorted(got)])
        checks.append(check_gather(t, pre, post, config.q_ps, b))
    return checks, True


def simulate_byzsgd(
    config: ByzSGDConfig,
    oracle: Oracle,
    x0: Any,
    *,
    byzantine_ids: Sequence[int] | None = None,
    strategy: str | Strategy = "silent",
    scheduler: str | Scheduler = "random",
    seed: int = 0,
    strategy_params: Mapping[str, Any] | None = None,
    scheduler_params: Mapping[str, Any] | None = None,
    codec: bool = True,
) -> ByzSGDResult:
    """Run ByzSGD in netsim's simulator to quiescence: every node starts from ``x0``
    (Byzantine cores included; ``equivocate``'s second core from another input), the
    Byzantine nodes (default :func:`default_byzantine_ids`) play ``strategy`` (a name of
    :data:`BYZSGD_STRATEGIES` or netsim's, or a :class:`~netsim.adversary.Strategy`), the
    ``scheduler`` (a name of :data:`netsim.sim.schedulers.SCHEDULERS` or an instance)
    delivers, all from one ``seed``: the same arguments give byte-identical models."""
    x0 = _session_vector(x0)
    byz = _check_byzantine_ids(config, default_byzantine_ids(config) if byzantine_ids is None
                               else byzantine_ids)
    strat = (make_byzsgd_strategy(strategy, **(strategy_params or {}))
             if isinstance(strategy, str) else strategy)
    sched = (make_scheduler(scheduler, **(scheduler_params or {}))
             if isinstance(scheduler, str) else scheduler)
    tally = _ChannelTally()
    sim = Simulator(config.n, config.f, lambda i, x: make_node(config, oracle, i, x),
                    {i: x0 for i in range(config.n)}, byzantine_ids=byz, strategy=strat,
                    scheduler=sched, seed=seed, codec=codec, trace=tally)  # type: ignore[arg-type]
    res = sim.run()
    servers = tuple(i for i in res.honest if i < config.n_ps)
    models = {s: o.vector for s in servers for o in res.outputs[s] if isinstance(o, FinalModel)}
    records = {s: sim.nodes[s].records for s in servers}  # type: ignore[attr-defined]
    b = sum(1 for i in byz if i < config.n_ps)
    checks, checked = gather_checks(config, records, b)
    return ByzSGDResult(
        config=config, byzantine_ids=byz, honest_servers=servers,
        honest_workers=tuple(i for i in res.honest if i >= config.n_ps), models=models,
        records=records, checks=checks, checked=checked, seed=seed,
        strategy=getattr(strat, "name", type(strat).__name__), scheduler=sched.describe(),
        messages_by_channel=dict(sorted(tally.messages.items())),
        bytes_by_channel=dict(sorted(tally.bytes.items())),
        faults_by_kind=dict(sorted(res.metrics.faults_by_kind.items())), sim=res)


__all__ = [
    "BYZSGD_STRATEGIES",
    "CHANNEL_NAMES",
    "GATHER",
    "GRADIENT",
    "MODEL",
    "ByzSGDConfig",
    "ByzSGDResult",
    "ByzSGDServer",
    "ByzSGDWorker",
    "FarOutside",
    "FinalModel",
    "GatherCheck",
    "GatherRecord",
    "GatherRun",
    "Oracle",
    "QuadraticOracle",
    "SignFlip",
    "Stale",
    "check_gather",
    "default_byzantine_ids",
    "gather_checks",
    "make_byzsgd_strategy",
    "make_node",
    "quadratic_oracle",
    "simulate_byzsgd",
]
