"""The per-process API: one node per process (or thread), a torch optimizer that runs LEARN.

    net = InProcessNetwork(n)                     # or the real network (see below)
    with CollaborativeSGD(model.parameters(), lr=0.1, node=net.endpoint(i), f=1) as opt:
        for x, y in my_loader:
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

:meth:`CollaborativeSGD.step` is docs/theory.md §6 at this node: it flattens the gradients of
every parameter group (in group order) into one vector, runs averaging agreement on it with
the other nodes (by default the rounds proven to contract by ``2^-N_t``, ``N_t = max(1,
ceil(log2 t))``; or ``N_t`` raw rounds, or a fixed count: see ``rounds``), applies the agreed
gradient per group (each group's lr, momentum, weight decay, as ``torch.optim.SGD``), then
runs one agreement round on the flat parameters and writes them back. Agreement is the real
sans-IO protocol (:class:`agreement.AveragingAgreement`: reliable broadcast, witnesses, the
rule), the same code the simulator runs; every message goes through the one codec
(:func:`netsim.codec.encode` / :func:`~netsim.codec.decode`), and bytes the codec rejects
are recorded faults against their sender, never exceptions.

The contract: every node starts from the same parameters (seed the model's construction
with a shared seed), builds the optimizer with the same arguments and calls ``step`` the
same number of times; step ``t`` uses sessions ``2t`` (gradient) and ``2t + 1``
(parameters). The state is torch's (:attr:`CollaborativeSGD.state`: per parameter the step
counter ``step``, ``momentum_buffer`` and ``worker_momentum_buffer``), so ``state_dict()`` /
``load_state_dict()`` checkpoint and resume: a resumed optimizer continues at session
``2(t+1)``. A node can play a protocol-level Byzantine process (``strategy=``, a strategy of
:data:`netsim.net.node.NETWORK_STRATEGIES`) to test a deployment.

The network is an interface (:class:`Network`: ``node_id``, ``n``, ``send(target, body)``,
``recv(timeout) -> (sender, body) | None``), so a transport plugs in without touching the
optimizer. The blocking driver and both implementations live in :mod:`netsim.net.driver`
(re-exported here): :class:`InProcessNetwork` (n endpoints in one process, nodes as
threads; pass ``net.endpoint(i)``) and :class:`TransportNetwork` (netsim's real network,
mutual TLS over TCP; ``TransportNetwork.from_config("cluster.toml", node_id)``,
``.from_torchrun(workdir)``). :class:`AgreementNode` is that driver
(:class:`netsim.net.driver.SessionNode`: bounded buffers, the fault log, ``ProtocolError``,
liveness warnings, the linger of :meth:`~netsim.net.driver.SessionNode.close`) running
:class:`agreement.AveragingAgreement`, or :class:`netsim.net.node.StrategyProtocol` for a
Byzantine process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from agreement import AveragingAgreement, Decision
from agreement.protocol import check_resilience
from netsim.adversary import Strategy
from netsim.net.driver import (
    DEFAULT_LINGER,
    InProcessNetwork,
    Network,
    SessionNode,
    TransportNetwork,
)
from netsim.net.node import NETWORK_STRATEGIES, StrategyProtocol, make_network_strategy

from .learn import check_proven, log_target, proven_rounds


class AgreementNode(SessionNode):
    """Runs successive averaging agreements (one per session) at one node over a
    :class:`Network`: :class:`netsim.net.driver.SessionNode` with a factory that builds
    :class:`agreement.AveragingAgreement` (``protocol``, ``f``, ``rule_params``, ``unsafe``).

    Hostile input is a recorded fault (:attr:`faults`, :attr:`fault_counts`). A protocol
    that raises (a bug) never dies silently: the exception is logged (logger
    ``learning.optim``) with the node, the session and the message (type, instance,
    sender), and :meth:`agree` / :meth:`serve` raise :class:`netsim.net.runtime.ProtocolError`
    with that information; the node is then stopped (:attr:`error`; every later call raises
    it again). A session that takes longer than ``report_after`` seconds is logged with what
    it waits for (:meth:`~netsim.net.driver.SessionNode.waiting_for`).

    ``strategy``: make this node a protocol-level Byzantine process: a name of
    :data:`netsim.net.node.NETWORK_STRATEGIES` (``"equivocate"``, ``"silent"``, ``"crash"``,
    ``"flood"``, ...; a fresh strategy per session) or a
    :class:`netsim.adversary.Strategy` object (set up again at every session), run as
    :class:`netsim.net.node.StrategyProtocol` around honest-looking cores of the session's
    agreement, with the seed ``seed`` (see :meth:`agree`).
    """

    logger = logging.getLogger(__name__)

    def __init__(self, network: Network, f: int, *, protocol: str = "trimmed-mean",
                 timeout: float = 120.0, window: int = 8, unsafe: bool = False,
                 rule_params: dict[str, Any] | None = None,
                 strategy: str | Strategy | None = None, seed: int = 0,
                 report_after: float = 5.0) -> None:
        super().__init__(network, timeout=timeout, window=window, report_after=report_after)
        if isinstance(strategy, str):
            make_network_strategy(strategy)  # an unknown or omniscient name: the list
        elif strategy is not None and not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a name of NETWORK_STRATEGIES "
                            f"({', '.join(NETWORK_STRATEGIES)}) or a netsim.adversary.Strategy,"
                            f" got {type(strategy).__name__}")
        self.f = f
        self.protocol = protocol
        self.unsafe = unsafe
        self.rule_params = rule_params
        self.strategy = strategy
        self.seed = seed

    @property
    def byzantine(self) -> bool:
        """Whether this node plays a Byzantine process (``strategy``)."""
        return self.strategy is not None

    def agree(self, x: np.ndarray, rounds: int, session: int) -> np.ndarray:
        """Averaging agreement on ``x`` for ``rounds`` rounds in ``session``; blocks until
        this node decides (``TimeoutError`` after ``timeout`` seconds without a message;
        :class:`ProtocolError` if the protocol raised, now or in an earlier call).

        A Byzantine node (``strategy``) decides nothing: it runs the strategy for the
        session (its cores' input is ``x``) until ``f + 1`` peers, hence at least one honest
        node, sent messages of the session's last round (so it keeps pace with the honest
        nodes instead of racing past their window), keeps answering in that session while
        it lies in its window, and returns ``x`` unchanged."""

        def core(i: int, xi: Any) -> AveragingAgreement:
            return AveragingAgreement(i, self.n, self.f, xi, protocol=self.protocol,
                                      rounds=rounds, session=session, unsafe=self.unsafe,
                                      rule_params=self.rule_params)

        if self.strategy is None:
            proto = self.run(lambda: core(self.node_id, x), session)
            assert isinstance(proto, AveragingAgreement) and proto.decision is not None
            return proto.decision
        strategy = (make_network_strategy(self.strategy) if isinstance(self.strategy, str)
                    else self.strategy)

        def caught_up() -> bool:
            heard = self.heard.get(session, {})
            return sum(1 for r in heard.values() if r >= rounds - 1) >= self.f + 1

        self.run(lambda: StrategyProtocol(self.node_id, self.n, self.f, strategy, core, x,
                                          seed=self.seed * 2**32 + session),
                 session, until=caught_up)
        return np.array(x, copy=True)


class CollaborativeSGD(torch.optim.Optimizer):
    """SGD whose gradient and parameters go through averaging agreement (LEARN at one node,
    docs/theory.md §6).

    At step ``t`` (from 1), with ``g`` the flat gradient of all parameter groups in group
    order (``m = β_w·m + g`` with worker momentum) and ``θ`` the flat parameters::

        ĝ = AvgAgree_{T_t}(g)                       session 2t, T_t rounds (``rounds``)
        per group and parameter p:  u = ĝ_p + wd·θ_p
            b_p = μ·b_p + (1 - dampening)·u   (b_p = u at its first step),  u = b_p
            (nesterov: u = u + μ·b_p)
            θ_p <- θ_p - lr·u
        θ <- AvgAgree_{param_rounds}(θ)             session 2t + 1

    With a C-averaging agreement and ``n >= 3f+1`` (the witness gather; each protocol's
    resilience: :func:`agreement.protocol.check_resilience`, checked here) the honest
    models agree and ``||∇L̄(θ̄)|| <= (1+δ)·C·K`` (docs/theory.md §2, §6). Every node must
    start from the same parameters and make the same calls (module doc).

    Parameters
    ----------
    params:
        The model's parameters, or parameter groups (dicts, as for ``torch.optim.SGD``,
        e.g. a no-decay group with ``weight_decay=0``): one flat vector is agreed on.
    lr, momentum, dampening, nesterov, weight_decay:
        As in ``torch.optim.SGD``, per group (applied to the agreed gradient).
    node:
        This node's :class:`Network` endpoint (``net.endpoint(i)`` of an
        :class:`InProcessNetwork`, a :class:`TransportNetwork`) or an :class:`AgreementNode`.
    f:
        The Byzantine bound. ``ValueError`` at construction where the protocol does not
        run at (n, f) (``n >= 3f+1`` for trimmed-mean), naming what to change.
    protocol:
        An agreement protocol of :data:`agreement.CONFIGS` (``nnm`` included), or
        pre-aggregation stages composed with a protocol's rule, e.g.
        ``"arc+nnm+trimmed-mean"`` (docs/theory.md §5.5: constants measured, not proven, so
        ``rounds="log"`` or an integer).
    rounds:
        Gradient agreement rounds per step. ``"proven"`` (default): the least count whose
        proven contraction reaches docs/theory.md §6's target ``2^-N_t`` (``N_t = max(1,
        ceil(log2 t))``) in the model's dimension d: :func:`learning.learn.proven_rounds`,
        i.e. ``agreement.constants.rounds_for_target(protocol, n, f, d, 2^-N_t, 1.0)``
        (trimmed-mean, mda and ball-mda only; another protocol raises ``ValueError``). ``"log"``:
        ``N_t`` raw rounds, the paper's count, which the theorem's guarantee does NOT cover.
        Or a fixed integer (no guarantee either). :attr:`rounds_log` lists the rounds run at
        every step of this object (:attr:`last_rounds` the latest; not part of the state).
    param_rounds:
        Agreement rounds on the parameters after each step (default 1; 0 to skip).
    worker_momentum:
        If > 0, agree on the local momentum ``m = β_w·m + g`` instead of the raw gradient
        (``m`` is ``state[p]["worker_momentum_buffer"]``).
    gradient_hook:
        ``hook(flat_gradient) -> vector`` applied before agreement (what this node puts in:
        value-level experiments with Byzantine processes).
    strategy, seed:
        Make this node a protocol-level Byzantine process (:class:`AgreementNode`): a name
        of :data:`netsim.net.node.NETWORK_STRATEGIES` or a
        :class:`netsim.adversary.Strategy`. Its :meth:`step` still runs both sessions
        (keeping pace with the honest nodes), but agrees on nothing: it takes a local SGD
        step with its own (hooked) gradient, so its parameters are not meaningful.
    timeout, report_after, linger:
        Seconds without a message before ``TimeoutError``; seconds in one session before
        a warning says what it waits for; the most seconds :meth:`close` serves peers.
    unsafe:
        Run below the protocol's resilience (a ``RuntimeWarning`` instead of the error).
    """

    def __init__(self, params: Iterable[Any], lr: float, *, node: Network | AgreementNode,
                 f: int, protocol: str = "trimmed-mean", rounds: int | str = "proven",
                 param_rounds: int = 1, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 worker_momentum: float = 0.0, gradient_hook: Any = None,
                 timeout: float = 120.0, unsafe: bool = False,
                 strategy: str | Strategy | None = None, seed: int = 0,
                 report_after: float = 5.0, linger: float = DEFAULT_LINGER) -> None:
        _check_hyper(lr, rounds, param_rounds, momentum, dampening, nesterov, weight_decay,
                     worker_momentum)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay))
        self.node = _make_node(node, f, protocol=protocol, timeout=timeout, unsafe=unsafe,
                               strategy=strategy, seed=seed, report_after=report_after)
        try:
            check_resilience(self.node.protocol, self.node.n, self.node.f,
                             unsafe=self.node.unsafe)
        except ValueError as exc:
            raise ValueError(
                f"CollaborativeSGD(f={self.node.f}, protocol={self.node.protocol!r}) on a "
                f"network of n={self.node.n} nodes: {exc}; or lower f, run more nodes (n), "
                "or choose another protocol") from None
        if rounds == "proven":
            check_proven(self.node.protocol)
        self.rounds = rounds
        self.rounds_log: list[int] = []  # the gradient agreement rounds run at every step
        self.param_rounds = param_rounds
        self.worker_momentum = worker_momentum
        self.gradient_hook = gradient_hook
        self.linger = linger

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def d(self) -> int:
        """The dimension of the agreed vectors: all parameters of all groups."""
        return sum(p.numel() for p in self._params())

    @property
    def t(self) -> int:
        """Steps taken (``state[p]["step"]``, restored by ``load_state_dict``)."""
        ps = self._params()
        return int(self.state[ps[0]].get("step", 0)) if ps and ps[0] in self.state else 0

    def rounds_at(self, t: int) -> int:
        """Gradient agreement rounds of step ``t`` (see ``rounds``)."""
        if self.rounds == "proven":
            return proven_rounds(self.node.protocol, self.node.n, self.node.f, self.d,
                                 log_target(t))
        if self.rounds == "log":
            return log_target(t)
        return int(self.rounds)

    @property
    def last_rounds(self) -> int | None:
        """The gradient agreement rounds of the latest step (``None`` before the first)."""
        return self.rounds_log[-1] if self.rounds_log else None

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """One LEARN step (class doc): sessions ``2t`` and ``2t + 1``. The state and the
        parameters change only once both agreements returned (an exception, e.g. a
        ``TimeoutError``, leaves them as they were). ``RuntimeError`` after :meth:`close`."""
        if self.node.closed:
            raise RuntimeError("CollaborativeSGD.step() after close(): build a new optimizer "
                               "(and node) to continue, e.g. from a state_dict() checkpoint")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        ps = self._params()
        t = self.t + 1
        g, wm = self._gradient(ps)
        send = self.gradient_hook(g) if self.gradient_hook is not None else g
        host = send.detach().to("cpu", torch.float64 if send.dtype == torch.float64
                                else torch.float32).numpy()
        rounds = self.rounds_at(t)
        ghat = torch.as_tensor(self.node.agree(host, rounds, 2 * t),
                               dtype=g.dtype, device=g.device)
        self.rounds_log.append(rounds)
        theta, bufs = self._update(ghat)
        if self.param_rounds:
            theta = torch.as_tensor(
                self.node.agree(theta.detach().cpu().numpy(), self.param_rounds, 2 * t + 1),
                dtype=theta.dtype, device=theta.device)
        offset = 0
        for p in ps:  # commit: parameters and state
            p.copy_(theta[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
            st = self.state[p]
            st["step"] = t
            if p in wm:
                st["worker_momentum_buffer"] = wm[p]
            if p in bufs:
                st["momentum_buffer"] = bufs[p]
        return loss

    def _gradient(self, ps: list[torch.Tensor]
                  ) -> tuple[torch.Tensor, dict[torch.Tensor, torch.Tensor]]:
        """The flat gradient this node puts in (worker momentum applied), and the new worker
        momentum buffers (committed by :meth:`step`)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in ps]
        wm: dict[torch.Tensor, torch.Tensor] = {}
        if self.worker_momentum:
            for p, gp in zip(ps, grads, strict=True):
                old = self.state[p].get("worker_momentum_buffer")
                wm[p] = (gp.clone() if old is None
                         else old.mul(self.worker_momentum).add_(gp))
            grads = [wm[p] for p in ps]
        return torch.cat([gp.reshape(-1) for gp in grads]), wm

    def _update(self, ghat: torch.Tensor
                ) -> tuple[torch.Tensor, dict[torch.Tensor, torch.Tensor]]:
        """``θ - lr·u`` per group (class doc) as one flat vector, and the new momentum
        buffers (committed by :meth:`step`)."""
        out = torch.empty_like(ghat)  # fresh per step: the agreement keeps its input
        bufs: dict[torch.Tensor, torch.Tensor] = {}
        offset = 0
        for group in self.param_groups:
            mu, wd = group["momentum"], group["weight_decay"]
            for p in group["params"]:
                u = ghat[offset:offset + p.numel()]
                theta = p.detach().reshape(-1).to(ghat.dtype)
                if wd:
                    u = u + wd * theta
                if mu:
                    old = self.state[p].get("momentum_buffer")
                    buf = (u.clone().view_as(p) if old is None else
                           old.mul(mu).add_(u.view_as(p), alpha=1 - group["dampening"]))
                    bufs[p] = buf
                    u = u + mu * buf.reshape(-1) if group["nesterov"] else buf.reshape(-1)
                # θ - lr·u written in place into the flat vector (the same operations, so
                # the same bits, as torch.cat of the per-parameter differences)
                torch.sub(theta, group["lr"] * u, out=out[offset:offset + p.numel()])
                offset += p.numel()
        return out, bufs

    def serve(self, seconds: float = 2.0) -> None:
        """Serve slower peers for ``seconds`` (after the last step; :meth:`close` stops as
        soon as no peer needs this node)."""
        self.node.serve(seconds)

    def close(self, linger: float | None = None) -> bool:
        """Finish: serve slower peers until every peer has closed too and this node's last
        messages were delivered, for at most ``linger`` seconds (default: the constructor's
        ``linger``), then shut the network down (:meth:`netsim.net.driver.SessionNode.
        close`). Idempotent; returns whether every peer finished. :meth:`step` then
        raises."""
        return self.node.close(self.linger if linger is None else linger)

    def __enter__(self) -> CollaborativeSGD:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """:meth:`close`; after an exception, at once (no linger)."""
        self.close(None if exc_type is None else 0.0)


def _check_hyper(lr: float, rounds: int | str, param_rounds: int, momentum: float,
                 dampening: float, nesterov: bool, weight_decay: float,
                 worker_momentum: float) -> None:
    """``ValueError`` naming the keyword for a hyperparameter out of range."""
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if rounds not in ("proven", "log") and (
            not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1):
        raise ValueError(
            f"rounds must be 'proven', 'log' or an integer >= 1, got {rounds!r}")
    if not isinstance(param_rounds, int) or isinstance(param_rounds, bool) or param_rounds < 0:
        raise ValueError(f"param_rounds must be an integer >= 0, got {param_rounds!r}")
    for name, v in (("momentum", momentum), ("weight_decay", weight_decay),
                    ("worker_momentum", worker_momentum), ("dampening", dampening)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")


def _make_node(node: Any, f: int, **kw: Any) -> AgreementNode:
    """This optimizer's :class:`AgreementNode` (``node`` itself, or one over ``node``)."""
    if isinstance(node, InProcessNetwork):
        raise TypeError("node= takes one node's endpoint, not the whole in-process network: "
                        "pass node=net.endpoint(i) for node i")
    if isinstance(node, AgreementNode):
        if kw["strategy"] is not None:
            raise ValueError("strategy= with an AgreementNode: give the strategy to the "
                             "AgreementNode instead")
        return node
    return AgreementNode(node, f, **kw)


__all__ = ["AgreementNode", "CollaborativeSGD", "Decision", "InProcessNetwork", "Network",
           "TransportNetwork"]
