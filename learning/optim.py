"""The per-process API: one node per process (or thread), a torch optimizer that runs LEARN.

    net = InProcessNetwork(n)                     # or, later, the real network (see below)
    opt = CollaborativeSGD(model.parameters(), lr=0.1, node=net.endpoint(i), f=1)
    for x, y in my_loader:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

:meth:`CollaborativeSGD.step` is docs/theory.md §6 at this node: it flattens the gradients into one
vector, runs averaging agreement on it with the other nodes (by default the rounds proven to
contract by ``2^-N_t``, ``N_t = max(1, ceil(log2 t))``; or ``N_t`` raw rounds, or a fixed
count: see ``rounds``), applies the agreed gradient (momentum, weight decay), then runs
one agreement round on the parameters and writes them back. Agreement is the real sans-IO
protocol (:class:`agreement.AveragingAgreement`: reliable broadcast, witnesses, the rule),
the same code the simulator runs; every message goes through the one codec
(:func:`netsim.codec.encode` / :func:`~netsim.codec.decode`), and bytes the codec rejects
are recorded faults against their sender, never exceptions. Every node must start from the
same parameters (seed the model's construction with a shared seed) and call ``step`` the
same number of times; step ``t`` uses sessions ``2t`` (gradient) and ``2t + 1`` (parameters).

The network is an interface (:class:`Network`: ``node_id``, ``n``, ``send(target, body)``,
``recv(timeout) -> (sender, body) | None``), so a transport plugs in without touching the
optimizer. The blocking driver and both implementations live in :mod:`netsim.net.driver`
(re-exported here): :class:`InProcessNetwork` (n endpoints in one process, nodes as
threads) and :class:`TransportNetwork` (netsim's real network, mutual TLS over TCP;
``TransportNetwork.from_config("cluster.toml", node_id)``, ``.from_torchrun(workdir)``).
:class:`AgreementNode` is that driver (:class:`netsim.net.driver.SessionNode`: bounded
buffers, the fault log, ``ProtocolError``) running :class:`agreement.AveragingAgreement`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from agreement import AveragingAgreement, Decision
from agreement.protocol import check_resilience
from netsim.net.driver import InProcessNetwork, Network, SessionNode, TransportNetwork

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
    it again).
    """

    logger = logging.getLogger(__name__)

    def __init__(self, network: Network, f: int, *, protocol: str = "trimmed-mean",
                 timeout: float = 120.0, window: int = 8, unsafe: bool = False,
                 rule_params: dict[str, Any] | None = None) -> None:
        super().__init__(network, timeout=timeout, window=window)
        self.f = f
        self.protocol = protocol
        self.unsafe = unsafe
        self.rule_params = rule_params

    def agree(self, x: np.ndarray, rounds: int, session: int) -> np.ndarray:
        """Averaging agreement on ``x`` for ``rounds`` rounds in ``session``; blocks until
        this node decides (``TimeoutError`` after ``timeout`` seconds without a message;
        :class:`ProtocolError` if the protocol raised, now or in an earlier call)."""

        def factory() -> AveragingAgreement:
            return AveragingAgreement(self.node_id, self.n, self.f, x, protocol=self.protocol,
                                      rounds=rounds, session=session, unsafe=self.unsafe,
                                      rule_params=self.rule_params)

        proto = self.run(factory, session)
        assert isinstance(proto, AveragingAgreement) and proto.decision is not None
        return proto.decision


class CollaborativeSGD(torch.optim.Optimizer):
    """SGD whose gradient and parameters go through averaging agreement (LEARN at one node).

    Parameters
    ----------
    params:
        The model's parameters (as for ``torch.optim.SGD``; one parameter group).
    lr, momentum, weight_decay:
        As in ``torch.optim.SGD`` (applied to the agreed gradient).
    node:
        This node's :class:`Network` endpoint (or an :class:`AgreementNode`).
    f:
        The Byzantine bound (the protocol's resilience, where its proven contraction is below
        1: :func:`agreement.protocol.check_resilience`, is checked here).
    protocol:
        An agreement protocol of :data:`agreement.CONFIGS`.
    rounds:
        Gradient agreement rounds per step. ``"proven"`` (default): the least count whose
        proven contraction reaches docs/theory.md §6's target ``2^-N_t`` (``N_t = max(1,
        ceil(log2 t))``) in the model's dimension d: :func:`learning.learn.proven_rounds`,
        i.e. ``agreement.constants.rounds_for_target(protocol, n, f, d, 2^-N_t, 1.0)``
        (trimmed-mean and mda only; another protocol raises ``ValueError``). ``"log"``:
        ``N_t`` raw rounds, the paper's count, which the theorem's guarantee does NOT cover.
        Or a fixed integer (no guarantee either). :attr:`rounds_log` lists the rounds run at
        every step (:attr:`last_rounds` the latest).
    param_rounds:
        Agreement rounds on the parameters after each step (default 1; 0 to skip).
    worker_momentum:
        If > 0, agree on the local momentum ``m = β·m + g`` instead of the raw gradient.
    gradient_hook:
        ``hook(flat_gradient) -> vector`` applied before agreement (what this node puts in;
        for experiments with Byzantine processes).
    """

    def __init__(self, params: Iterable[Any], lr: float, *, node: Network | AgreementNode,
                 f: int, protocol: str = "trimmed-mean", rounds: int | str = "proven",
                 param_rounds: int = 1, momentum: float = 0.0, weight_decay: float = 0.0,
                 worker_momentum: float = 0.0, gradient_hook: Any = None,
                 timeout: float = 120.0, unsafe: bool = False) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if rounds not in ("proven", "log") and (
                not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1):
            raise ValueError(
                f"rounds must be 'proven', 'log' or an integer >= 1, got {rounds!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        if len(self.param_groups) != 1:
            raise ValueError("CollaborativeSGD takes one parameter group")
        self.node = node if isinstance(node, AgreementNode) else AgreementNode(
            node, f, protocol=protocol, timeout=timeout, unsafe=unsafe)
        check_resilience(self.node.protocol, self.node.n, self.node.f,
                         unsafe=self.node.unsafe)
        self.d = sum(p.numel() for p in self.param_groups[0]["params"])
        if rounds == "proven":
            check_proven(self.node.protocol)
        self.rounds = rounds
        self.rounds_log: list[int] = []  # the gradient agreement rounds run at every step
        self.param_rounds = param_rounds
        self.worker_momentum = worker_momentum
        self.gradient_hook = gradient_hook
        self.t = 0
        self._wm: torch.Tensor | None = None
        self._buf: torch.Tensor | None = None

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
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        ps = group["params"]
        self.t += 1
        t = self.t
        g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                       for p in ps])
        if self.worker_momentum:
            self._wm = g.clone() if self._wm is None else self._wm.mul_(
                self.worker_momentum).add_(g)
            g = self._wm
        send = self.gradient_hook(g) if self.gradient_hook is not None else g
        host = send.detach().to("cpu", torch.float64 if send.dtype == torch.float64
                                else torch.float32).numpy()
        rounds = self.rounds_at(t)
        self.rounds_log.append(rounds)
        ghat = torch.as_tensor(self.node.agree(host, rounds, 2 * t),
                               dtype=g.dtype, device=g.device)
        theta = torch.nn.utils.parameters_to_vector(ps)
        if group["weight_decay"]:
            ghat = ghat + group["weight_decay"] * theta
        if group["momentum"]:
            self._buf = ghat.clone() if self._buf is None else self._buf.mul_(
                group["momentum"]).add_(ghat)
            ghat = self._buf
        theta = theta - group["lr"] * ghat
        if self.param_rounds:
            host = theta.detach().cpu().numpy()
            theta = torch.as_tensor(self.node.agree(host, self.param_rounds, 2 * t + 1),
                                    dtype=theta.dtype, device=theta.device)
        torch.nn.utils.vector_to_parameters(theta, ps)
        return loss

    def serve(self, seconds: float = 2.0) -> None:
        """Serve slower peers for ``seconds`` (call after the last step)."""
        self.node.serve(seconds)


__all__ = ["AgreementNode", "CollaborativeSGD", "Decision", "InProcessNetwork", "Network",
           "TransportNetwork"]
