"""Iterated averaging agreement = a gather + a rule, for T rounds (docs/theory.md §5), sans-IO.

At honest node ``i``, with input ``x_i^0``::

    for r = 0 .. T-1:
        V_i^r     := gather(r, x_i^r)          # a view of n-f..n vectors
        x_i^{r+1} := rule(V_i^r)
    output x_i^T

Named configurations (:data:`CONFIGS`):

=============  =========  =================  ============  ==================================
name           gather     rule               resilience    guarantee
=============  =========  =================  ============  ==================================
trimmed-mean   witness    TM_f               λ < 1:        λ = f/(n-2f) per coordinate, C_TM
                                             n >= 3f+1
mda            witness    MDA_f              κ(n,f) < 1:   κ(n,f) per round, C_MDA
                                             n >= 5, 10,
                                             14 at f=1,2,3
mve            witness    MVE_f              as mda        none: refuted (``proofs/mve.md``);
                                                           mean variant, 1-D: MDA's κ
median         witness    coordinate median  n >= 3f+1     none claimed (baseline)
krum           witness    Krum_f             n >= 3f+3     none claimed (baseline)
mean           witness    mean               n >= 3f+1     none claimed (no robustness)
nnm            witness    NNM_f, then TM_f   n >= 3f+1     box excess <= f/(n-2f)·Δ2
                                                           (proofs/nnm.md); contraction
                                                           measured, not proven
ball-mda       witness    ball MDA_f         proofs/       docs/theory.md §5.3,
                                             ball_mda.md   proofs/ball_mda.md
A+B+R          witness    stages, then R     views of n-f  measured, not proven
                                             values fit R  (docs/theory.md §5.5)
=============  =========  =================  ============  ==================================

Composed protocols: any composition of pre-aggregation stages and a protocol's rule
(``arc+nnm+trimmed-mean``, ``nnm+mda``, ``arc+median``: :mod:`agreement.rules.preagg`) is a
protocol too; :func:`get_config` builds its :class:`Config` on the fly (the witness gather of
the protocol whose rule comes last, the composed rule, a guarantee that says its constants
are measured, not proven). Its resilience is the baseline one: ``n >= 3f+1`` and views of
``n-f`` values large enough for every stage and the rule (NNM: ``m >= 2f+1``).

One rule (:func:`check_resilience`): a protocol's resilience is where its proven per-round
contraction is below 1 (:func:`agreement.constants.resilient`; trimmed-mean: ``λ < 1`` iff
``n >= 3f+1``; mda and mve: ``κ(n,f) < 1``, :func:`agreement.constants.mda_min_n`); a
protocol without a proven contraction is a baseline that runs wherever the witness gather
runs (``n >= 3f+1``) with views large enough for its rule (krum: ``n-f >= 2f+3``).
The constants are :mod:`agreement.constants`, proven (or refuted, for MVE) in ``proofs/``.
A configuration below its resilience condition raises ``ValueError`` unless ``unsafe=True``.
Messages of later rounds are accepted up to round T-1 and buffered by the gather (views
that complete early wait for their round); anything beyond is a fault. Invalid vectors are
faults and never enter a view. A node that has decided keeps handling messages, so slower
honest nodes still get the echoes, readies and fetch replies they need.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from broadcast import View
from netsim.messages import Message, valid_vector, vector_problem
from netsim.protocol import Fault, Protocol, Step

from . import constants
from .constants import rounds_for_target
from .gathers import make_gather
from .rules import STAGES, make_rule, parse_composition

MEASURED = "measured, not proven"


@dataclass(frozen=True)
class Config:
    """A named protocol: gather and rule. Its resilience is the one rule of
    :func:`check_resilience` (where its proven contraction is below 1); :meth:`min_n` and
    :attr:`resilience_text` state it."""

    name: str
    gather: str
    rule: str
    guarantee: str

    def min_n(self, f: int) -> int:
        """The smallest n at which this protocol runs with f faults without ``unsafe``:
        :func:`agreement.constants.min_n` (where the proven contraction is below 1, or the
        witness gather's ``3f+1``), raised until a view of ``n-f`` values is large enough for
        the rule (krum: ``2f+3``)."""
        n = constants.min_n(self.name, f)
        need = make_rule(self.rule, f).min_size()
        return max(n, need + f)

    @property
    def resilience_text(self) -> str:
        """The resilience condition in words, for help strings (with "constants measured,
        not proven" for the protocols whose constants are only measured: docs/theory.md
        §5.5)."""
        text = self._resilience_words()
        if MEASURED in self.guarantee:
            text += f"; constants {MEASURED}"
        return text

    def _resilience_words(self) -> str:
        if self.name == "trimmed-mean":
            return "λ = f/(n-2f) < 1: n >= 3f+1"
        if self.name in ("mda", "mve"):
            firsts = ", ".join(f"{constants.mda_min_n(f)} at f={f}" for f in (1, 2, 3))
            return f"κ(n,f) < 1: n >= {firsts}, ..."
        c = self.min_n(1) - 3  # the witness gather's 3f+1, or the rule's view-size need
        if all(self.min_n(f) == 3 * f + c for f in (2, 3, 10)):
            return f"n >= 3f+{c}"
        return "n >= " + ", ".join(f"{self.min_n(f)} at f={f}" for f in (1, 2, 3)) + ", ..."


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config("trimmed-mean", "witness", "trimmed-mean",
               "docs/theory.md §5.1, proofs/trimmed_mean.md"),
        Config("mda", "witness", "mda", "docs/theory.md §5.3, proofs/mda.md"),
        Config("mve", "witness", "mve", "none: docs/theory.md §5.2's claim refuted, proofs/mve.md"),
        Config("median", "witness", "median", "none (baseline)"),
        Config("krum", "witness", "krum", "none (baseline)"),
        Config("mean", "witness", "mean", "none (no robustness)"),
        Config("nnm", "witness", "nnm",
               "NNM then the trimmed mean: output within f/(n-2f)·Δ2 of the honest box "
               "(proofs/nnm.md, Proposition 1); contraction measured, not proven "
               "(docs/theory.md §5.5)"),
        Config("ball-mda", "witness", "ball-mda", "docs/theory.md §5.3, proofs/ball_mda.md"),
    )
}

MEASURED_GUARANTEE = ("measured, not proven: {stages} before the {rule} rule; the {base} "
                      "protocol's constants do not carry over (docs/theory.md §5.5, "
                      "python -m proofs verify)")


def composed_config(name: str) -> Config:
    """The :class:`Config` of a composed protocol ``name`` (pre-aggregation stages, then the
    rule of a protocol of :data:`CONFIGS`): that protocol's gather, the composed rule, and a
    guarantee saying its constants are measured, not proven. ``ValueError`` naming what to
    change for a malformed composition or a last rule that is no protocol's rule."""
    stages, last = parse_composition(name)
    base = next((c for c in CONFIGS.values() if c.rule == last), None)
    if base is None:
        rules = sorted({c.rule for c in CONFIGS.values()})
        raise ValueError(f"protocol {name!r}: the rule after the stages must be a protocol's "
                         f"rule ({', '.join(rules)}), got {last!r}")
    make_rule(name, 1)  # a malformed stage list or parameters fail here, not in a run
    return Config(name, base.gather, name, MEASURED_GUARANTEE.format(
        stages="+".join(stages), rule=last, base=base.name))


def get_config(name: str) -> Config:
    """The named configuration, or a composed one (``arc+nnm+trimmed-mean``:
    :func:`composed_config`); ``ValueError`` listing the names for an unknown one."""
    if name in CONFIGS:
        return CONFIGS[name]
    if isinstance(name, str) and "+" in name:
        return composed_config(name)
    raise ValueError(
        f"unknown protocol {name!r}; known: {', '.join(sorted(CONFIGS))}, or stages "
        f"({', '.join(STAGES)}) composed with a protocol's rule, e.g. arc+nnm+trimmed-mean"
    )


def check_resilience(protocol: str, n: int, f: int, *, unsafe: bool = False) -> None:
    """The one resilience rule, for every protocol of :data:`CONFIGS`.

    A protocol runs where ``n >= 3f+1`` (the witness gather) and its proven per-round
    contraction is below 1 (:func:`agreement.constants.resilient`): trimmed-mean
    ``λ = f/(n-2f) < 1`` (iff ``n >= 3f+1``, proofs/trimmed_mean.md); mda and mve
    ``κ(n,f) < 1`` (from n = 5 at f = 1, 10 at f = 2, 14 at f = 3; proofs/mda.md,
    "Resilience"). A protocol without a proven contraction (median, krum, mean) is a
    baseline that claims nothing and runs wherever the witness gather runs, with views of
    ``n-f`` values large enough for its rule. Below: ``ValueError`` naming the condition and
    the smallest n for this f; with ``unsafe`` a ``RuntimeWarning`` instead. Unknown
    protocol names, ``n < 1``, ``f < 0`` and ``f >= n`` always raise.
    """
    cfg = get_config(protocol)
    what = f"the {protocol} protocol"
    if n < 1 or f < 0:
        raise ValueError(f"{what} needs n >= 1 and f >= 0, got n={n}, f={f}")
    if f >= n:
        raise ValueError(f"{what} needs f < n, got n={n}, f={f}")
    least = cfg.min_n(f)
    if n >= least:
        return
    if n < 3 * f + 1:
        msg = f"{what} needs n >= 3f+1 (the witness gather; n={n}, f={f})"
    elif protocol in ("mda", "mve"):
        msg = (f"{what} needs κ(n,f) < 1 (proofs/mda.md): κ({n},{f}) = "
               f"{constants.resilience_factor(protocol, n, f):.4f} >= 1")
    elif (k := constants.resilience_factor(protocol, n, f)) is not None and k >= 1:
        msg = (f"{what} needs its proven per-round contraction below 1 ({cfg.guarantee}): "
               f"{k:.4f} >= 1 at n={n}, f={f}")
    else:
        msg = (f"{what} needs views of >= {make_rule(cfg.rule, f).min_size()} vectors, i.e. "
               f"n - f >= {least - f}")
    msg += f"; the smallest n for f={f} is {least}"
    if not unsafe:
        raise ValueError(msg + "; pass unsafe=True to run it anyway")
    warnings.warn(msg + "; running with unsafe=True", RuntimeWarning, stacklevel=3)


@dataclass(frozen=True, slots=True)
class Decision:
    """Output of averaging agreement: this node's vector after ``rounds`` rounds."""

    session: int
    rounds: int
    vector: np.ndarray


class AveragingAgreement(Protocol):
    """One honest node of iterated averaging agreement.

    Parameters
    ----------
    node_id, n, f:
        This node, the number of nodes, the Byzantine bound.
    x:
        This node's input vector (1-D float32/float64, finite, a squared norm <= 2^1000).
        Its dtype and dimension are the session's: a peer's vector of another dtype or
        dimension is an invalid value (a fault ``invalid-value``), never in a view.
    protocol:
        A name from :data:`CONFIGS`; ``gather`` and ``rule`` override its parts.
    rounds:
        The number of rounds T; or give ``delta`` and ``input_diameter`` to take the rounds
        that :func:`agreement.constants.rounds_for_target` proves sufficient.
    rule_params:
        Extra parameters of the rule (e.g. ``method="exact"`` for MVE).
    """

    def __init__(
        self,
        node_id: int,
        n: int,
        f: int,
        x: Any,
        *,
        protocol: str = "trimmed-mean",
        rounds: int | None = None,
        delta: float | None = None,
        input_diameter: float | None = None,
        gather: str | None = None,
        rule: str | None = None,
        rule_params: dict[str, Any] | None = None,
        session: int = 0,
        unsafe: bool = False,
    ) -> None:
        cfg = get_config(protocol)
        check_resilience(protocol, n, f, unsafe=unsafe)
        x = np.asarray(x)
        if x.ndim != 1 or x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
            raise ValueError(f"the input must be a 1-D float32 or float64 vector, got dtype "
                             f"{x.dtype} and shape {x.shape}: convert it with "
                             "np.asarray(x, dtype=np.float32) (or float64)")
        if x.dtype.byteorder == ">":  # the wire is little-endian: one session dtype
            x = x.astype(x.dtype.newbyteorder("<"))
        if not valid_vector(x):
            raise ValueError("the input vector must be finite, with a squared norm <= 2^1000 "
                             "(||x|| <= ~3.3e150): netsim.messages.valid_vector")
        d = x.shape[0]
        if rounds is None:
            if delta is None or input_diameter is None:
                raise ValueError("give rounds, or delta and input_diameter")
            rounds = rounds_for_target(protocol, n, f, d, delta, input_diameter)
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        self.node_id, self.n, self.f = node_id, n, f
        self.protocol = protocol
        self.rounds = rounds
        self.session = session
        self.rule = make_rule(rule or cfg.rule, f, **(rule_params or {}))
        if self.rule.min_size() > n - f and not unsafe:
            raise ValueError(
                f"rule {self.rule.name} needs views of >= {self.rule.min_size()} vectors, "
                f"but a view may hold only n-f = {n - f}"
            )
        self.dim = d
        self.dtype = x.dtype
        self.gatherer = make_gather(
            gather or cfg.gather, node_id, n, f, session=session, dim=d, dtype=x.dtype,
            max_round=rounds - 1, unsafe=unsafe,
        )
        self.history: list[np.ndarray] = [x]
        self.views: dict[int, View] = {}
        self.decision: np.ndarray | None = None

    @property
    def round(self) -> int:
        """The round this node is in (``rounds`` once it has decided)."""
        return len(self.history) - 1

    @property
    def done(self) -> bool:
        return self.decision is not None

    def start(self, now: float) -> Step:
        return self.gatherer.gather(0, self.history[0])

    def handle(self, sender: int, message: Message, now: float) -> Step:
        """Handle one message from ``sender``. Raises on no message a peer can send: what a
        peer gets wrong is a :class:`~netsim.protocol.Fault` of the gather (invalid values,
        of another dtype or dimension included, future rounds, forged origins, duplicates,
        bad reports) or of the round (``invalid-rule-output``, see :meth:`_advance`)."""
        step = self.gatherer.handle(sender, message, now)
        if not step.outputs:
            return step
        out = Step(list(step.messages), [], list(step.faults))
        for view in step.outputs:
            if isinstance(view, View):
                self.views[view.round] = view
        self._advance(out)
        return out

    def _advance(self, step: Step) -> None:
        """Apply the rule to every view that is ready for the current round:
        ``x^{r+1} = rule(V^r)``.

        A rule output that is not a valid vector of the session (:func:`netsim.messages.
        vector_problem`: non-finite, a squared norm above 2^1000, another dtype or shape),
        or a rule that refuses the view (``ValueError``, ``ArithmeticError``), is a fault
        ``invalid-rule-output`` of the round whose sender is this node, and the node keeps
        its current value: ``x^{r+1} = x^r``. Why this fallback:

        - safety: ``x^r`` is valid by induction (the input is checked in ``__init__``, and
          every later value is a valid rule output or this fallback), so the next broadcast
          never raises and the decision is a valid vector of the session's dtype; and
          ``x^r`` is this node's own honest value, so if every honest value of round ``r``
          lies in the honest inputs' bounding box ``B`` (trimmed mean's outputs lie in the
          per-coordinate range of the view's honest values, docs/theory.md §5.1), so does
          ``x^{r+1}``: by induction the decision stays in ``B``;
        - liveness: the node still gathers round ``r+1`` with a value, so the others' views
          still fill (a node that stopped would count against the f faults);
        - the cost: this node's value does not contract in that round, so the round's proven
          contraction (proofs/*.md) does not cover it; the fault says so. It cannot fire for
          the proven rules on views of valid values except at the float64 norm bound: their
          outputs lie in the view's per-coordinate range (trimmed mean, median) or are means
          of its rows (MDA), hence finite in the session's dtype, and only a coordinate-wise
          output of float64 values within a factor ``sqrt(|V|)`` of ``||v|| = 2^500`` can
          exceed the squared-norm bound. It fires for ``mean`` (no robustness) when one
          valid float32 value near 3e38 makes the mean overflow.
        """
        while self.decision is None and self.round in self.views:
            r = self.round
            y = self._rule_output(r, step)
            self.history.append(y)
            if r + 1 == self.rounds:
                self.decision = y
                step.outputs.append(Decision(self.session, self.rounds, y))  # type: ignore[attr-defined]
            else:
                step.extend(self.gatherer.gather(r + 1, y))

    def _rule_output(self, r: int, step: Step) -> np.ndarray:
        """``rule(V^r)`` if it is a valid vector of the session, else ``x^r`` and a fault
        (see :meth:`_advance`)."""
        try:
            with np.errstate(all="ignore"):
                y = np.asarray(self.rule(self.views[r].matrix()))
            why = vector_problem(y, self.dtype, self.dim)
        except (ValueError, ArithmeticError) as exc:
            why = f"the rule raised {type(exc).__name__}: {exc}"
        if why is None:
            return y
        step.faults.append(Fault(  # type: ignore[attr-defined]
            self.node_id, "invalid-rule-output",
            f"round {r}: rule {self.rule.name} gave an invalid vector ({why}); "
            "kept this node's current value"))
        return self.history[-1]

    # -- netsim.protocol.ValueHistory: what the adversary's context reads --------------------
    def value_at(self, round: int) -> np.ndarray:
        """``x_i^r``, this node's vector entering round ``round`` (``x_i^0`` its input, and
        ``x_i^T`` its decision); a node not there yet returns its latest vector."""
        if round < 0:
            raise ValueError(f"rounds count from 0, got {round}")
        return self.history[min(round, len(self.history) - 1)]

    def view_at(self, round: int) -> dict[int, np.ndarray] | None:
        """``V_i^r`` as ``origin -> vector`` (increasing origins), or ``None`` while this
        node's view of round ``round`` is not formed."""
        view = self.views.get(round)
        return None if view is None else view.values

    def view_origins(self) -> dict[int, tuple[int, ...]]:
        """The origins of this node's view in each round it completed."""
        return {r: tuple(v.values) for r, v in sorted(self.views.items())}


