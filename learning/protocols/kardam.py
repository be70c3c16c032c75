"""Kardam (Damaskinos, El-Mhamdi, Guerraoui, Patra, Taziki, ICML 2018): one trusted server,
``n`` asynchronous workers, at most ``f`` of them Byzantine (docs/systems/kardam.md).

The server holds ``x_t`` (version ``t``, one version per accepted gradient). Worker ``p``
computes ``g_p`` at the model ``x_{l_p}`` it holds and sends ``(g_p, l_p)``; its staleness
is ``τ = t - l_p``. The server passes ``g_p`` through two filters and, if both accept,

    x_{t+1} = x_t - γ_t · Λ(τ) · g_p,     Λ(τ) = exp(-β·τ)   (or 1/(1+τ))

so a stale honest gradient is dampened, never dropped for its staleness (up to the model
window ``W``, below). Kardam's adaptive learning rate (the seed's ``μ_t``) is not built:
``γ_t`` is the run's learning rate.

**Lipschitz filter.** ``K̂_p = ||g_p - g_r|| / ||x_{l_p} - x_{l_r}||``, with ``(g_r, l_r)`` the
reference: the last *accepted* gradient, or, when it was computed at ``l_r = l_p`` (the
quotient would be 0/0), the last accepted one computed at another version (the seed's
``K̂ = ||g_p - g_q|| / ||x_t - x_{t-1}||``; a filtered gradient never becomes the reference,
so a Byzantine one cannot poison the next honest coefficient). The record holds the latest
coefficient of each worker (``n`` slots, a worker not heard yet counts as ``+∞``);
``g_p`` passes iff ``K̂_p`` is at most the ``(n-f)``-th smallest slot, i.e. the
``(n-f)/n`` quantile, read before ``K̂_p`` replaces ``p``'s slot. While fewer than ``n - f`` workers
have a coefficient the threshold is ``+∞`` (the window is filling: everything passes).
With no reference at another version yet, or a zero denominator (``x_{l_p} = x_{l_r}``),
``K̂_p`` is undefined: the Lipschitz test passes and nothing is recorded. *What it gives*:
at most ``f`` slots are Byzantine, so the threshold lies between the ``(n-2f)``-th
smallest and the largest honest slot: an accepted Byzantine gradient is no "steeper" than
the steepest honest worker's latest one, and at most ``f`` honest slots can be above the
threshold.

**Frequency filter.** The seed's formulation: *any 2f consecutively accepted gradients
contain at least f from honest workers*, i.e. in the last ``2f`` accepted ids (``p``'s
appended) the ``f`` most frequent account for at most ``f`` entries, so no ``f``-set of
workers can dominate. With a full window that is exactly "the last ``2f`` accepted come from
``2f`` distinct workers" (an id twice, plus ``f-1`` others, is ``f+1`` entries), and that is
what is built, from the first gradient on: ``p`` is refused iff it is among the last
``2f - 1`` accepted ids. (Applied literally to a window still filling, the condition would
accept ``1, 4, 1`` at ``f = 3`` and then refuse every gradient forever: no 6-window that
starts so can be all distinct.) So no ``f``-set of workers, the Byzantine one included,
holds more than half of any ``2f`` consecutive updates, a flooding worker gets at most one
update in ``2f``, and liveness needs ``2f`` distinct workers sending (``n - f >= 2f``).
``f = 0``: no window, always accepted.

**Guarantee (conditional).** The paper's convergence argument needs the accepted Byzantine
gradients to stay in the honest gradients' "correct cone"; the filters bound their
steepness and their share, they do not prove that. It is a heuristic guarantee under the
paper's assumptions (Lipschitz-smooth loss, bounded honest variance, ``n >= 3f+1``), not
a theorem of docs/theory.md.

Layers: :class:`KardamFilter` is the one pure core (scalars and ids: the caller computes the
norms); :class:`ServerState` runs it on vectors of any array type (numpy here, torch in
:mod:`learning.methods.kardam`); :class:`KardamServer` / :class:`KardamWorker` are the sans-IO
protocols over netsim's :class:`~netsim.messages.Send` (``instance = (channel, version,
origin)``); :func:`simulate_kardam` runs them in netsim's simulator.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from netsim.dispatch import Metrics
from netsim.messages import Message, Send, as_vector, vector_problem
from netsim.protocol import EMPTY, Fault, Protocol, Step, require_resilience
from netsim.sim.adversary import CoreStrategy, Emission, Strategy
from netsim.sim.schedulers import Scheduler, make_scheduler
from netsim.sim.simulator import SimResult, Simulator

MODEL = 1
"""Channel (``session``) of the server's models to the workers: round = the model version."""
GRADIENT = 2
"""Channel of the workers' gradients: round = the version they were computed at."""
SERVER = 0
"""The server's node id in the simulator (the workers are ``1..n``)."""

DAMPENINGS = ("exp", "inverse")
"""``exp``: ``Λ(τ) = exp(-β·τ)``; ``inverse``: ``Λ(τ) = 1/(1+τ)``."""

STATUSES = ("accepted", "lipschitz", "frequency", "too-stale")
"""What the server did with a valid gradient: applied it, or why not."""


def dampening(tau: int, kind: str = "exp", beta: float = 0.1) -> float:
    """``Λ(τ)``: ``exp(-β·τ)`` (``kind="exp"``) or ``1/(1+τ)`` (``"inverse"``, β unused);
    ``Λ(0) = 1`` and ``Λ`` decreases with the staleness ``τ >= 0``."""
    if tau < 0:
        raise ValueError(f"staleness must be >= 0, got {tau}")
    if kind == "exp":
        return math.exp(-beta * tau)
    if kind == "inverse":
        return 1.0 / (1.0 + tau)
    raise ValueError(f"unknown dampening {kind!r}; known: {', '.join(DAMPENINGS)}")


def check_dampening(kind: str, beta: float) -> None:
    """``ValueError`` unless ``kind`` is one of :data:`DAMPENINGS` and ``beta >= 0``."""
    if kind not in DAMPENINGS:
        raise ValueError(f"unknown dampening {kind!r}; known: {', '.join(DAMPENINGS)}")
    if not (isinstance(beta, int | float) and beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The filters' decision on one gradient: ``status`` (``accepted``, ``lipschitz`` or
    ``frequency``), its coefficient ``K̂_p`` (``None``: undefined, module doc) and the
    threshold it was compared with."""

    status: str
    coefficient: float | None
    threshold: float

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class KardamFilter:
    """The Lipschitz and frequency filters of Kardam on scalars and ids (module doc): the
    one pure core. The caller computes ``||g_p - g_r||`` and ``||x_{l_p} - x_{l_r}||`` for
    the reference version :meth:`reference` names, then calls :meth:`decide`."""

    def __init__(self, n: int, f: int, *, unsafe: bool = False) -> None:
        require_resilience(n, f, 3, "Kardam's filters", unsafe)
        self.n, self.f = n, f
        self.latest: dict[int, float] = {}  # worker -> its latest defined coefficient
        self.recent: deque[int] = deque(maxlen=2 * f)  # ids of the last 2f accepted
        self.ref: int | None = None  # version of the last accepted gradient
        self.alt: int | None = None  # version of the last accepted one at another version

    def reference(self, version: int) -> int | None:
        """The version of the reference gradient for one computed at ``version``: the last
        accepted one, or the last accepted at another version (``None``: none yet)."""
        return self.ref if self.ref != version else self.alt

    @property
    def references(self) -> tuple[int, ...]:
        """The versions whose (gradient, model) the caller must keep: at most two."""
        return tuple(v for v in (self.ref, self.alt) if v is not None)

    def threshold(self) -> float:
        """The ``(n-f)``-th smallest of the ``n`` slots (unheard workers: ``+∞``)."""
        slots = sorted(self.latest.values())
        k = self.n - self.f  # the (n-f)/n quantile of n slots
        return slots[k - 1] if len(slots) >= k else math.inf

    def frequent(self, worker: int) -> bool:
        """True if the frequency filter refuses ``worker``: it is among the last ``2f - 1``
        accepted ids (module doc: with a full window, the same as "the ``f`` most frequent
        of the last ``2f`` ids, ``worker`` appended, account for more than ``f``")."""
        if self.f == 0:
            return False
        return worker in list(self.recent)[-(2 * self.f - 1):]

    def decide(self, worker: int, version: int, numerator: float | None,
               denominator: float | None) -> Verdict:
        """Filter one gradient of ``worker`` computed at ``version`` (``numerator`` /
        ``denominator``: the caller's norms against :meth:`reference`, ``None`` if there
        was none), record its coefficient and, if accepted, its id and version."""
        coef = None
        if numerator is not None and denominator is not None and denominator > 0:
            coef = numerator / denominator
        limit = self.threshold()
        if coef is not None:
            self.latest[worker] = coef
        if coef is not None and not coef <= limit:
            return Verdict("lipschitz", coef, limit)
        if self.frequent(worker):
            return Verdict("frequency", coef, limit)
        self.recent.append(worker)
        if version != self.ref:
            self.alt, self.ref = self.ref, version
        return Verdict("accepted", coef, limit)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the server did with one valid gradient: ``status`` (:data:`STATUSES`), its
    staleness ``tau``, the dampening ``factor`` ``Λ(τ)`` applied (``0`` if not applied)
    and the filters' :class:`Verdict` (``None`` without filters or when too stale)."""

    worker: int
    version: int
    tau: int
    status: str
    factor: float
    verdict: Verdict | None = None


@dataclass
class KardamStats:
    """Counts of a run: gradients accepted per worker, refused per reason and worker, the
    staleness histogram (``τ -> count``, every valid gradient that reached the server) and
    the dampening factors of the accepted ones."""

    accepted: Counter[int] = field(default_factory=Counter)
    refused: dict[str, Counter[int]] = field(
        default_factory=lambda: {s: Counter() for s in STATUSES[1:]})
    staleness: Counter[int] = field(default_factory=Counter)
    factors: list[float] = field(default_factory=list)

    def record(self, out: Outcome) -> None:
        self.staleness[out.tau] += 1
        if out.status == "accepted":
            self.accepted[out.worker] += 1
            self.factors.append(out.factor)
        else:
            self.refused[out.status][out.worker] += 1


V = TypeVar("V")


class ServerState(Generic[V]):
    """The server's side of Kardam on vectors of any array type (numpy, torch): the model
    versions of the window, the reference gradients, the filter, the update.

    ``window`` ``W``: the versions ``t-W+1..t`` are kept (memory ``W·d``); a gradient with
    ``τ >= W`` is a ``too-stale`` drop (its model is gone, the filter cannot judge it;
    ``Λ(τ) <= Λ(W)`` there, 0.0017 with the defaults). ``filters=False``: plain
    asynchronous SGD (``async-sgd``: no filters, ``Λ = 1``, no window, only ``x_t`` kept).
    ``norm(v) -> float`` is the caller's ℓ2 norm."""

    def __init__(self, x0: V, n: int, f: int, norm: Callable[[Any], float], *,
                 window: int = 64, beta: float = 0.1, kind: str = "exp",
                 filters: bool = True, unsafe: bool = False) -> None:
        check_dampening(kind, beta)
        if filters and (not isinstance(window, int) or window < 2):
            raise ValueError(f"window must be an integer >= 2 (model versions kept), "
                             f"got {window!r}")
        self.filter = KardamFilter(n, f, unsafe=unsafe) if filters else None
        self.window, self.beta, self.kind, self.norm = window, beta, kind, norm
        self.t = 0
        self.models: dict[int, V] = {0: x0}
        self.refs: dict[int, tuple[V, V]] = {}  # version -> (gradient, model at version)
        self.stats = KardamStats()

    @property
    def model(self) -> V:
        """``x_t``, the current model."""
        return self.models[self.t]

    def process(self, worker: int, version: int, g: V, lr: float) -> Outcome:
        """Filter and apply one valid gradient ``g`` of ``worker`` computed at ``version``
        (``0 <= version <= t``: the caller checks), with step size ``lr = γ_t``."""
        tau = self.t - version
        flt = self.filter
        if flt is None:
            out = Outcome(worker, version, tau, "accepted", 1.0)
            self._apply(g, lr)
        elif tau >= self.window:
            out = Outcome(worker, version, tau, "too-stale", 0.0)
        else:
            x_l = self.models[version]
            rv = flt.reference(version)
            num = den = None
            if rv is not None:
                g_r, x_r = self.refs[rv]
                num, den = self.norm(g - g_r), self.norm(x_l - x_r)
            verdict = flt.decide(worker, version, num, den)
            factor = dampening(tau, self.kind, self.beta) if verdict.accepted else 0.0
            out = Outcome(worker, version, tau, verdict.status, factor, verdict)
            if verdict.accepted:
                self.refs[version] = (g, x_l)
                self.refs = {v: self.refs[v] for v in flt.references}
                self._apply(g, lr * factor)
        self.stats.record(out)
        return out

    def _apply(self, g: V, step: float) -> None:
        x = self.models[self.t] - step * g
        self.t += 1
        self.models[self.t] = x
        if self.filter is None:
            self.models.pop(self.t - 1)
        else:
            self.models.pop(self.t - self.window, None)


@dataclass(frozen=True, slots=True)
class Done:
    """The server's output after its last update: the final version and model."""

    version: int
    model: np.ndarray


class KardamServer(Protocol):
    """The trusted server (node 0) of :func:`simulate_kardam`: it sends ``x_0`` to every
    worker, then for each gradient ``Send((GRADIENT, l_p, p), g_p)`` from worker ``p``
    filters and applies it (:class:`ServerState`) and sends the current model
    ``Send((MODEL, t, 0), x_t)`` back to ``p`` only (accepted, filtered or too stale
    alike: one model in flight per worker). After ``steps`` updates it outputs
    :class:`Done` and stops replying (the run quiesces).

    Faults (never an exception): ``unexpected-message``, ``wrong-channel``, ``forged-origin``
    (origin != sender), ``not-a-worker``, ``future-version`` (``l_p > t``),
    ``unsent-version`` (not the version last sent to ``p``: a worker holds exactly that
    one), ``invalid-value`` (:func:`netsim.messages.vector_problem`). A faulty gradient
    gets no reply. ``filters=False``: the asynchronous SGD baseline (every valid gradient
    applied, undampened)."""

    def __init__(self, n: int, f: int, x0: Any, *, steps: int, lr: float = 0.1,
                 window: int = 64, beta: float = 0.1, dampening: str = "exp",
                 filters: bool = True, unsafe: bool = False) -> None:
        x = as_vector(np.array(x0, dtype=np.float64))
        problem = vector_problem(x)
        if problem is not None:
            raise ValueError(f"the initial model is not a valid vector: {problem}")
        if steps < 1 or not lr > 0:
            raise ValueError(f"need steps >= 1 and lr > 0, got steps={steps}, lr={lr}")
        self.node_id, self.n, self.f = SERVER, n + 1, f
        self.workers, self.steps, self.lr = n, steps, lr
        self.state: ServerState[np.ndarray] = ServerState(
            x, n, f, lambda v: float(np.linalg.norm(v)), window=window, beta=beta,
            kind=dampening, filters=filters, unsafe=unsafe)
        self.sent = dict.fromkeys(range(1, n + 1), 0)  # worker -> version last sent
        self.dim = x.shape[0]

    @property
    def done(self) -> bool:
        return self.state.t >= self.steps

    def start(self, now: float) -> Step:
        msg = Send((MODEL, 0, SERVER), self.state.model)
        return Step([(p, msg) for p in range(1, self.workers + 1)])

    def _problem(self, sender: int, message: Message) -> Fault | None:
        if type(message) is not Send:
            return Fault(sender, "unexpected-message", message.NAME)
        channel, version, origin = message.instance
        if channel != GRADIENT:
            return Fault(sender, "wrong-channel", f"{message.instance}")
        if origin != sender:
            return Fault(sender, "forged-origin", f"{message.instance}")
        if sender not in self.sent:
            return Fault(sender, "not-a-worker", f"node {sender}")
        if version > self.state.t:
            return Fault(sender, "future-version", f"version {version} > t = {self.state.t}")
        if version != self.sent[sender]:
            return Fault(sender, "unsent-version",
                         f"version {version}, sent {self.sent[sender]}")
        why = vector_problem(message.vector, np.dtype(np.float64), self.dim)
        if why is not None:
            return Fault(sender, "invalid-value", f"version {version}: {why}")
        return None

    def handle(self, sender: int, message: Message, now: float) -> Step:
        if self.done:
            return EMPTY
        fault = self._problem(sender, message)
        if fault is not None:
            return Step(faults=[fault])
        _, version, _ = message.instance  # type: ignore[attr-defined]
        self.state.process(sender, version, message.vector, self.lr)  # type: ignore[attr-defined]
        t = self.state.t
        if self.done:
            return Step(outputs=[Done(t, self.state.model)])
        self.sent[sender] = t
        return Step([(sender, Send((MODEL, t, SERVER), self.state.model))])


Oracle = Callable[[np.ndarray, int, int], np.ndarray]
"""``oracle(x, version, worker) -> g``: a worker's stochastic gradient at ``x`` (pure: a
function of its arguments, seeded from them)."""


class KardamWorker(Protocol):
    """Worker ``p`` (``1..n``): on each model ``Send((MODEL, v, 0), x_v)`` from the server it
    sends ``Send((GRADIENT, v, p), oracle(x_v, v, p))``. Faults: ``unexpected-message``,
    ``not-the-server``, ``wrong-channel``, ``forged-origin``, ``old-version`` (below the
    version it holds), ``invalid-value``."""

    def __init__(self, node_id: int, n: int, f: int, oracle: Oracle, dim: int) -> None:
        self.node_id, self.n, self.f = node_id, n + 1, f
        self.oracle, self.dim = oracle, dim
        self.version = -1

    def handle(self, sender: int, message: Message, now: float) -> Step:
        if type(message) is not Send:
            return Step(faults=[Fault(sender, "unexpected-message", message.NAME)])
        channel, version, origin = message.instance
        kind = ("not-the-server" if sender != SERVER else "wrong-channel" if channel != MODEL
                else "forged-origin" if origin != SERVER
                else "old-version" if version < self.version else None)
        why = vector_problem(message.vector, np.dtype(np.float64), self.dim)
        if kind is None and why is not None:
            kind = "invalid-value"
        if kind is not None:
            return Step(faults=[Fault(sender, kind, f"{message.instance} {why or ''}")])
        self.version = version
        g = as_vector(np.asarray(self.oracle(message.vector, version, self.node_id),
                                 dtype=np.float64))
        return Step([(SERVER, Send((GRADIENT, version, self.node_id), g))])

    def start(self, now: float) -> Step:
        return EMPTY


ATTACKS: dict[str, Callable[[np.ndarray, np.random.Generator, float], np.ndarray]] = {
    "sign-flip": lambda g, rng, s: -s * g,
    "scaled": lambda g, rng, s: s * g,
    "gaussian": lambda g, rng, s: g + s * rng.standard_normal(g.shape),
}
"""The Byzantine workers' gradient transforms of :class:`GradientAttack`:
``g -> -scale·g``, ``scale·g``, ``g + scale·N(0, I)``."""


class GradientAttack(CoreStrategy):
    """Byzantine workers that run an honest :class:`KardamWorker` core each and send
    ``ATTACKS[attack](g, rng, scale)`` instead of its gradient (versions stay honest, so
    the filters, not the version checks, must stop them)."""

    name = "kardam-gradient"

    def __init__(self, attack: str = "sign-flip", scale: float = 10.0) -> None:
        if attack not in ATTACKS:
            raise ValueError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")
        self.attack, self.scale = attack, scale

    def setup(self, ctx: Any) -> None:
        super().setup(ctx)
        self.rng = ctx.np_rng()

    def route(self, byz: int, core: int, target: int, msg: Message) -> list[Emission]:
        if type(msg) is Send and msg.instance[0] == GRADIENT:
            g = ATTACKS[self.attack](np.asarray(msg.vector), self.rng, self.scale)
            msg = Send(msg.instance, g.astype(np.float64))
        return [(byz, target, msg)]


@dataclass
class KardamRun:
    """What :func:`simulate_kardam` produced: the final model and version, the server's
    :class:`KardamStats`, the faults (observer, fault) and traffic (:class:`Metrics`)."""

    model: np.ndarray
    updates: int
    stats: KardamStats
    faults: list[tuple[int, Fault]]
    metrics: Metrics
    result: SimResult

    @property
    def accepted(self) -> dict[int, int]:
        return dict(sorted(self.stats.accepted.items()))

    @property
    def filtered(self) -> dict[str, dict[int, int]]:
        return {k: dict(sorted(c.items())) for k, c in self.stats.refused.items()}

    @property
    def staleness(self) -> dict[int, int]:
        return dict(sorted(self.stats.staleness.items()))


def simulate_kardam(n: int, f: int, oracle: Oracle, x0: Any, *, steps: int = 200,
                    lr: float = 0.1, window: int = 64, beta: float = 0.1,
                    dampening: str = "exp", filters: bool = True,
                    byzantine_ids: Sequence[int] | None = None,
                    strategy: Strategy | None = None, scheduler: str | Scheduler = "heavy-tail",
                    seed: int = 0, unsafe: bool = False,
                    scheduler_params: Mapping[str, Any] | None = None) -> KardamRun:
    """Run Kardam in netsim's simulator: the server (node 0) and ``n`` workers (``1..n``),
    ``byzantine_ids`` (default ``1..f``) written by ``strategy`` (default
    :class:`GradientAttack` ``sign-flip``), delays from ``scheduler``; until the server's
    ``steps`` updates, then to quiescence. Deterministic in ``seed``. ``filters=False``:
    the same run without filters or dampening (asynchronous SGD, the baseline)."""
    x = np.array(x0, dtype=np.float64)
    byz = list(range(1, f + 1)) if byzantine_ids is None else list(byzantine_ids)
    if any(not 1 <= b <= n for b in byz):
        raise ValueError(f"byzantine_ids must be worker ids in 1..{n}, got {byz}")
    server = KardamServer(n, f, x, steps=steps, lr=lr, window=window, beta=beta,
                          dampening=dampening, filters=filters, unsafe=unsafe)

    def factory(i: int, _: Any) -> Protocol:
        return server if i == SERVER else KardamWorker(i, n, f, oracle, x.shape[0])

    sched = scheduler if isinstance(scheduler, Scheduler) else make_scheduler(
        scheduler, **dict(scheduler_params or {}))
    sim = Simulator(n + 1, f, factory, byzantine_ids=byz,
                    strategy=GradientAttack() if strategy is None else strategy,
                    scheduler=sched, seed=seed)
    res = sim.run()
    st = server.state
    return KardamRun(np.array(st.model), st.t, st.stats, res.faults, res.metrics, res)


__all__ = ["ATTACKS", "DAMPENINGS", "GRADIENT", "MODEL", "SERVER", "STATUSES", "Done",
           "GradientAttack", "KardamFilter", "KardamRun", "KardamServer", "KardamStats",
           "KardamWorker", "Oracle", "Outcome", "ServerState", "Verdict", "check_dampening",
           "dampening", "simulate_kardam"]
