"""``agreement.run``: one averaging-agreement experiment, at the message or the round level.

    res = agreement.run(inputs, f=3, protocol="trimmed-mean", rounds=10, seed=5)
    res.diameters          # honest ℓ2 diameter after every round (index 0 = inputs)
    res.averaging_ratio    # ||ȳ - x̄|| / Δ2(x)
    res.views_differed     # False: no round stressed the rule (no contraction was tested)

``inputs`` is an ``(n, d)`` array: row ``i`` is node ``i``'s input. The Byzantine nodes are
``byzantine_ids`` (default ``0..f-1``); their rows are the inputs of their honest-looking cores
(message level) and are otherwise unused. ``strategy`` names a netsim protocol-level
strategy (silent, crash, equivocate, twins, replay, flood, forge, garbage, ...; message level
only) or a value attack of :mod:`agreement.attacks` (push, split, alie, outlier, nan,
omniscient; both levels), by name (what :func:`netsim.adversary.register_strategy` and
:func:`agreement.attacks.register_value_attack` registered included) or as an object: a
:class:`netsim.adversary.Strategy` (message level) or a value-attack function
``fn(honest, f, rng, **attack_params) -> (f, d)`` (both levels; docs/guides/adversary.md).

**Adversarial defaults.** A run is adversarial unless asked otherwise, in the API and the
command line alike: ``strategy=DEFAULT_STRATEGY`` (``split``: low values to one side of the
honest nodes, high to the other), ``scheduler=DEFAULT_SCHEDULER`` (``targeted``:
:class:`netsim.sim.schedulers.TargetedViews`, each side sees its own Byzantine values first) and,
at the round level, ``views=DEFAULT_VIEWS`` (``omniscient``, the round engine's counterpart).
Under the benign ``random`` scheduler with silent Byzantine nodes honest views almost never
differ (about 7% of rounds; ``fifo``: none), and a contraction measured on such a run checks
nothing: :attr:`AgreementResult.views_differed` says whether any round had two honest nodes
with different views, so that tests can refuse the runs that did not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netsim.adversary import STRATEGIES, Strategy, make_strategy
from netsim.deprecation import deprecated_alias, renamed_keywords
from netsim.sim.schedulers import Scheduler, make_scheduler
from netsim.sim.simulator import Simulator

from . import constants
from .adversary import ValueAttack
from .attacks import Attack, value_attack_names
from .engine import RoundEngine
from .protocol import AveragingAgreement, get_config

DEFAULT_STRATEGY = "split"
"""The default Byzantine behaviour of :func:`run` and of ``python -m agreement simulate``."""
DEFAULT_BYZANTINE = DEFAULT_STRATEGY
"""Deprecated (for this release only): the old name of :data:`DEFAULT_STRATEGY`."""
DEFAULT_SCHEDULER = "targeted"
"""The default scheduler (message level) of :func:`run` and of the command line."""
DEFAULT_VIEWS = "omniscient"
"""The default view chooser (round level) of :func:`run` and of the command line."""


def views_differ(views: list[dict[int, tuple[int, ...]]]) -> bool:
    """True iff in some round two honest nodes had different view origin sets."""
    return any(len({frozenset(o) for o in rnd.values()}) > 1 for rnd in views)


def diameter(x: np.ndarray) -> float:
    """``Δ2(x) = max_{j,k} ||x_j - x_k||_2`` over the rows of ``x`` (via the Gram matrix of the
    centred rows, in float64)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 2:
        return 0.0
    c = x - x.mean(axis=0)
    g = c @ c.T
    sq = np.diag(g)
    d2 = sq[:, None] + sq[None, :] - 2 * g
    return float(np.sqrt(max(0.0, float(d2.max()))))


@dataclass
class AgreementResult:
    """What one run produced (JSON-able through :meth:`as_dict`)."""

    n: int
    f: int
    d: int
    protocol: str
    engine: str
    rounds: int
    seed: int
    strategy: str
    byzantine_ids: list[int]
    scheduler: str
    honest: list[int]
    history: np.ndarray  # (rounds + 1, h, d)
    diameters: list[float]
    averaging_error: float
    averaging_ratio: float
    messages: int = 0
    bytes: int = 0
    virtual_time: float = 0.0
    wall_time: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    faults_against_honest: int = 0
    views: list[dict[int, tuple[int, ...]]] = field(default_factory=list)
    byzantine_values: list[dict[int, np.ndarray]] = field(default_factory=list)
    complete: bool = True
    gather: str = "witness"  # the proven bounds assume the witness gather (agreement.gathers)

    byzantine = deprecated_alias("strategy")

    @property
    def views_differed(self) -> bool:
        """True iff in some round two honest nodes had different view origin sets.

        False means the adversary never made the views differ: every honest node applied
        the rule to the same view each round, so the outputs agree exactly after one round
        and the run tests no contraction or averaging bound beyond validity (see the module
        doc: under ``random``/``silent`` this is the common case). A run without a view log
        (e.g. ``engine="network"``, built by a front end) reports False."""
        return views_differ(self.views)

    @property
    def outputs(self) -> np.ndarray:
        """The honest outputs ``(h, d)``."""
        return self.history[-1]

    def coordinate_ranges(self) -> np.ndarray:
        """``(rounds + 1, d)``: the honest range of every coordinate after every round."""
        return self.history.max(axis=1) - self.history.min(axis=1)

    def bounds(self) -> dict[str, float | None]:
        """The protocol's claimed bounds at (n, f, d) from :mod:`agreement.constants`."""
        try:
            return {
                "contraction": constants.contraction(self.protocol, self.n, self.f, self.d),
                "averaging_constant": constants.averaging_constant(
                    self.protocol, self.n, self.f, self.d
                ),
            }
        except ValueError:  # below the resilience bound (unsafe runs)
            return {"contraction": None, "averaging_constant": None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "f": self.f,
            "d": self.d,
            "protocol": self.protocol,
            "engine": self.engine,
            "rounds": self.rounds,
            "seed": self.seed,
            "strategy": self.strategy,
            "byzantine": self.strategy,  # the deprecated key of "strategy", for this release
            "byzantine_ids": self.byzantine_ids,
            "scheduler": self.scheduler,
            "diameters": self.diameters,
            "averaging_error": self.averaging_error,
            "averaging_ratio": self.averaging_ratio,
            "messages": self.messages,
            "bytes": self.bytes,
            "virtual_time": self.virtual_time,
            "wall_time": self.wall_time,
            "faults": self.faults,
            "faults_against_honest": self.faults_against_honest,
            "complete": self.complete,
            "views_differed": self.views_differed,
            "gather": self.gather,
            "bounds": self.bounds(),
        }


def _progress_bar(enabled: bool | None, total: int, unit: str) -> Any:
    """A tqdm bar shown after one second (or a no-op when disabled)."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, delay=1.0, disable=not enabled, leave=False)


def _finish(
    history: np.ndarray, common: dict[str, Any], **extra: Any
) -> AgreementResult:
    diam = [diameter(h) for h in history]
    err = float(np.linalg.norm(history[-1].astype(np.float64).mean(0)
                               - history[0].astype(np.float64).mean(0)))
    ratio = err / diam[0] if diam[0] > 0 else (0.0 if err == 0 else float("inf"))
    return AgreementResult(history=history, diameters=diam, averaging_error=err,
                           averaging_ratio=ratio, **common, **extra)


@dataclass
class _Setup:
    """A validated run: the inputs, who is Byzantine, the round count and the fields every
    result carries (``common``)."""

    x: np.ndarray
    f: int
    protocol: str
    rounds: int
    seed: int
    byz_ids: list[int]
    honest: list[int]
    gather: str | None  # as given (None: the protocol's own gather)
    common: dict[str, Any]

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def _setup(inputs: Any, f: int, protocol: str, rounds: int | None, delta: float | None,
           strategy: str | Strategy | Attack, byzantine_ids: list[int] | None,
           scheduler: str | Scheduler, seed: int, engine: str, gather: str | None,
           n: int | None) -> _Setup:
    """Check the inputs and ids, resolve the round count (``rounds``, or from ``delta`` and
    the honest input diameter) and gather what every result carries."""
    x = np.asarray(inputs)
    if x.ndim != 2:
        raise ValueError(f"inputs must be an (n, d) array, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("inputs must be finite")
    if n is not None and n != x.shape[0]:
        raise ValueError(f"n={n} but inputs has {x.shape[0]} rows")
    n, d = x.shape
    byz_ids = list(range(f)) if byzantine_ids is None else sorted(set(byzantine_ids))
    if strategy == "none":
        byz_ids = []
    if len(byz_ids) > f or any(not 0 <= b < n for b in byz_ids):
        raise ValueError(f"byzantine_ids must be at most f={f} ids in range({n})")
    honest = [i for i in range(n) if i not in set(byz_ids)]
    cfg = get_config(protocol)
    if rounds is None:
        if delta is None:
            raise ValueError("give rounds or delta")
        rounds = constants.rounds_for_target(protocol, n, f, d, delta, diameter(x[honest]))
    strat_name = strategy if isinstance(strategy, str) else getattr(
        strategy, "name", getattr(strategy, "__name__", "custom"))
    sched_name = scheduler if isinstance(scheduler, str) else getattr(scheduler, "name", "custom")
    common = dict(n=n, f=f, d=d, protocol=protocol, engine=engine, rounds=rounds, seed=seed,
                  strategy=strat_name, byzantine_ids=byz_ids, scheduler=sched_name,
                  honest=honest, gather=gather or cfg.gather)
    return _Setup(x, f, protocol, rounds, seed, byz_ids, honest, gather, common)


def _run_round(s: _Setup, strategy: str | Strategy | Attack, views: str | None,
               attack_params: dict[str, Any] | None, rule_params: dict[str, Any] | None,
               unsafe: bool, progress: bool | None) -> AgreementResult:
    """The round-level engine (:class:`agreement.engine.RoundEngine`): value attacks and
    silent only; the adversary picks the honest views (``views``, default omniscient)."""
    names = value_attack_names()
    if isinstance(strategy, Strategy) or (
            isinstance(strategy, str) and strategy not in (*names, "silent", "none")):
        raise ValueError(
            f"the round-level engine runs value attacks ({', '.join(names)}, or a value-attack "
            f"function) and silent; {strategy!r} is a protocol-level strategy (or unknown): use "
            "engine='message'"
        )
    from .protocol import check_resilience

    t0 = time.perf_counter()
    check_resilience(s.protocol, s.n, s.f, unsafe=unsafe)
    eng = RoundEngine(
        s.n, s.f, get_config(s.protocol).rule, gather=s.common["gather"],
        attack="silent" if strategy == "none" else strategy,
        views=DEFAULT_VIEWS if views is None else views,
        byzantine_ids=s.byz_ids, seed=s.seed, attack_params=attack_params, rule_params=rule_params,
    )
    honest = s.honest
    with _progress_bar(progress, s.rounds, "rounds") as bar:
        hist, plans = eng.run(s.x[honest], s.rounds, on_round=lambda r: bar.update(1))
    view_log = [
        {honest[j]: tuple(p.node_of_row[p.masks[j]].tolist()) for j in range(len(honest))}
        for p in plans
    ]
    return _finish(np.stack(hist), s.common, wall_time=time.perf_counter() - t0,
                   views=view_log)


def _message_strategy(strategy: str | Strategy | Attack,
                      attack_params: dict[str, Any] | None) -> Strategy | None:
    """The message level's Byzantine strategy for ``strategy`` (None: silent nodes)."""
    if isinstance(strategy, Strategy):
        return strategy
    if callable(strategy):
        return ValueAttack(strategy, **(attack_params or {}))
    if strategy in ("none", "silent"):
        return None
    if strategy in value_attack_names():
        return ValueAttack(strategy, **(attack_params or {}))
    if strategy in STRATEGIES:
        return make_strategy(strategy)
    raise ValueError(
        f"unknown Byzantine behaviour {strategy!r}; known: "
        f"{', '.join(sorted(STRATEGIES))}, {', '.join(value_attack_names())}"
    )


def _run_message(s: _Setup, strategy: str | Strategy | Attack, scheduler: str | Scheduler,
                 attack_params: dict[str, Any] | None, rule_params: dict[str, Any] | None,
                 codec: bool, trace: Any, unsafe: bool, progress: bool | None
                 ) -> AgreementResult:
    """The message-level engine: the sans-IO :class:`AveragingAgreement` of every node in
    netsim's :class:`~netsim.sim.simulator.Simulator`, every message through the codec."""
    n, f, rounds, honest = s.n, s.f, s.rounds, s.honest

    def factory(i: int, xi: Any) -> AveragingAgreement:
        return AveragingAgreement(
            i, n, f, xi, protocol=s.protocol, rounds=rounds, gather=s.gather,
            rule_params=rule_params, unsafe=unsafe,
        )

    t0 = time.perf_counter()
    strat = _message_strategy(strategy, attack_params)
    sched = make_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
    sim = Simulator(n, f, factory, {i: s.x[i] for i in range(n)},
                    byzantine_ids=s.byz_ids,
                    strategy=strat, scheduler=sched, seed=s.seed, codec=codec, trace=trace)
    nodes = [sim.nodes[i] for i in honest]
    with _progress_bar(progress, rounds * len(honest), "node-rounds") as bar:
        def tick(_sim: Simulator) -> None:
            bar.update(sum(node.round for node in nodes) - bar.n)

        res = sim.run(tick=tick if progress else None)
    if not all(node.done for node in nodes):  # pragma: no cover - a liveness failure
        c = s.common
        raise RuntimeError(
            f"liveness failure: honest nodes {[i for i in honest if not sim.nodes[i].done]} "
            f"did not decide (seed={s.seed}, n={n}, f={f}, protocol={s.protocol}, "
            f"strategy={c['strategy']}, scheduler={c['scheduler']})"
        )
    return _message_result(s, sim, res, t0)


def _message_result(s: _Setup, sim: Simulator, res: Any, t0: float) -> AgreementResult:
    """The result of a finished simulation: every honest node's history, the view origins
    and the Byzantine values in every round, the metrics and the faults (``t0``: when the
    run started, for its wall time)."""
    honest, rounds, byz = s.honest, s.rounds, set(s.byz_ids)
    nodes = [sim.nodes[i] for i in honest]
    hist = np.stack([np.stack([node.history[r] for node in nodes]) for r in range(rounds + 1)])
    view_log = [{i: sim.nodes[i].views[r].origins for i in honest} for r in range(rounds)]
    byz_vals = [
        {o: v for i in honest for o, v in sim.nodes[i].views[r].values.items() if o in byz}
        for r in range(rounds)
    ]
    against_honest = sum(1 for _, flt in res.faults if flt.sender not in byz)
    kinds = res.metrics.faults_by_kind
    return _finish(
        hist, s.common, messages=res.metrics.messages, bytes=res.metrics.bytes,
        virtual_time=res.time, wall_time=time.perf_counter() - t0,
        faults={k: kinds[k] for k in sorted(kinds)},
        faults_against_honest=against_honest, views=view_log, byzantine_values=byz_vals,
        complete=True,
    )


@renamed_keywords(byzantine="strategy")
def run(
    inputs: Any,
    *,
    f: int,
    protocol: str = "trimmed-mean",
    rounds: int | None = None,
    delta: float | None = None,
    strategy: str | Strategy | Attack = DEFAULT_STRATEGY,
    byzantine_ids: list[int] | None = None,
    scheduler: str | Scheduler = DEFAULT_SCHEDULER,
    seed: int = 0,
    engine: str = "message",
    views: str | None = None,
    gather: str | None = None,
    rule_params: dict[str, Any] | None = None,
    attack_params: dict[str, Any] | None = None,
    codec: bool = True,
    trace: Any = None,
    unsafe: bool = False,
    n: int | None = None,
    progress: bool | None = False,
) -> AgreementResult:
    """Run one averaging agreement among ``n = len(inputs)`` nodes (see the module doc).

    ``rounds``, or ``delta`` (the target honest diameter; rounds from
    :func:`agreement.constants.rounds_for_target` with the honest input diameter).
    The defaults are adversarial (module doc): ``strategy="split"``,
    ``scheduler="targeted"``; pass ``strategy="silent", scheduler="random"`` for the benign
    run. ``engine="round"`` skips messages: ``views`` (``omniscient``, the default, or
    ``random``) says how the adversary picks views; ``scheduler`` and ``codec`` then do not
    apply. ``progress``
    shows a progress bar (on stderr) once a run has lasted a second. ``byzantine=``, the
    deprecated name of ``strategy``, still works for this release with a
    ``DeprecationWarning``.
    """
    s = _setup(inputs, f, protocol, rounds, delta, strategy, byzantine_ids, scheduler, seed,
               engine, gather, n)
    if engine == "round":
        return _run_round(s, strategy, views, attack_params, rule_params, unsafe, progress)
    if engine != "message":
        raise ValueError(f"unknown engine {engine!r}; known: message, round")
    return _run_message(s, strategy, scheduler, attack_params, rule_params, codec, trace,
                        unsafe, progress)
