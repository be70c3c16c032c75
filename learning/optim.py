"""The per-process API: one node per process (or thread), a torch optimizer that runs LEARN.

    net = InProcessNetwork(n)                     # or, later, the real network (see below)
    opt = CollaborativeSGD(model.parameters(), lr=0.1, node=net.endpoint(i), f=1)
    for x, y in my_loader:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

:meth:`CollaborativeSGD.step` is THEORY.md §6 at this node: it flattens the gradients into one
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
optimizer. Two implementations:

- :class:`InProcessNetwork`: n endpoints in one process connected by queues (nodes run as
  threads), for experiments and tests;
- :class:`TransportNetwork`: netsim's real network (:class:`netsim.net.transport.Network`:
  reliable authenticated channels, mutual TLS over TCP, one node per process), whose anyio
  event loop runs in a background thread of the process (a blocking portal).
  ``TransportNetwork.from_config("cluster.toml", node_id)`` uses the cluster configuration
  of ``python -m netsim keys``.

Bounded memory against hostile peers: messages for sessions more than ``window`` ahead of
this node, or older than its ``window`` most recent sessions, are dropped with a fault; at
most ``64·n²`` messages are buffered per future session; the fault log keeps the first 1000
faults and counts all of them by kind.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import torch

from agreement import AveragingAgreement, Decision
from agreement.protocol import check_resilience
from netsim.codec import DecodeError, decode, encode
from netsim.messages import Message
from netsim.net.runtime import ProtocolError, describe_message
from netsim.protocol import ALL, Fault, Step

from .learn import check_proven, log_target, proven_rounds

logger = logging.getLogger(__name__)


class Network(Protocol):
    """What a node needs from a transport (authenticated point-to-point channels)."""

    node_id: int
    n: int

    def send(self, target: int, body: bytes) -> None:
        """Send an encoded message to node ``target`` (never this node)."""

    def recv(self, timeout: float | None) -> tuple[int, bytes] | None:
        """The next ``(authenticated sender, body)``, or None after ``timeout`` seconds."""


class _Endpoint:
    def __init__(self, hub: InProcessNetwork, node_id: int) -> None:
        self.hub, self.node_id, self.n = hub, node_id, hub.n

    def send(self, target: int, body: bytes) -> None:
        if not 0 <= target < self.n or target == self.node_id:
            raise ValueError(f"bad target {target} for node {self.node_id}")
        self.hub.queues[target].put((self.node_id, bytes(body)))
        with self.hub.lock:
            self.hub.messages += 1
            self.hub.bytes += len(body)

    def recv(self, timeout: float | None) -> tuple[int, bytes] | None:
        try:
            return self.hub.queues[self.node_id].get(timeout=timeout)
        except queue.Empty:
            return None


class InProcessNetwork:
    """``n`` endpoints in one process, connected by thread-safe queues (FIFO per receiver;
    senders are authenticated by construction). Counts messages and bytes."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.queues: list[queue.Queue[tuple[int, bytes]]] = [queue.Queue() for _ in range(n)]
        self.lock = threading.Lock()
        self.messages = 0
        self.bytes = 0

    def endpoint(self, i: int) -> _Endpoint:
        if not 0 <= i < self.n:
            raise ValueError(f"node id {i} out of range({self.n})")
        return _Endpoint(self, i)


class TransportNetwork:
    """:class:`Network` over netsim's real network (:class:`netsim.net.transport.Network`).

    The transport's event loop runs in a background thread (an anyio blocking portal);
    ``send`` queues a body on the peer's reliable channel (never blocks; a peer cut off by
    the transport, e.g. for stalling, is a fault the transport records), ``recv`` takes the
    next delivered body. Delivered bodies wait in a queue of at most ``max_pending``
    messages; when it is full, the delivering channel waits (backpressure on that peer
    only), so memory stays bounded whatever the peers send.
    """

    def __init__(self, node_id: int, n: int, *, tls: Any, fingerprints: dict[int, str] | None,
                 host: str = "127.0.0.1", port: int = 0, settings: Any = None,
                 max_pending: int = 100_000) -> None:
        from anyio.from_thread import start_blocking_portal

        from netsim.net.transport import Network as _Net

        self.node_id, self.n = node_id, n
        self._q: queue.Queue[tuple[int, bytes]] = queue.Queue(maxsize=max_pending)
        self._cm = start_blocking_portal()
        self._portal = self._cm.__enter__()
        try:
            self.transport = self._portal.call(
                lambda: _Net(node_id, n, tls=tls, fingerprints=fingerprints, settings=settings))
            self.port: int = self._portal.call(self.transport.listen, host, port)
        except BaseException:
            self._cm.__exit__(None, None, None)
            raise
        self._future: Any = None

    @classmethod
    def from_config(cls, config: Any, node_id: int, *, settings: Any = None,
                    bind_host: str | None = None) -> TransportNetwork:
        """Node ``node_id`` of a cluster configuration (a :class:`netsim.net.cluster.
        ClusterConfig` or the path of its ``cluster.toml``), listening and dialling."""
        from netsim.net.cluster import load_config

        cfg = load_config(config) if isinstance(config, str | bytes) or hasattr(
            config, "__fspath__") else config
        entry = cfg.node(node_id)
        net = cls(node_id, cfg.n, tls=cfg.ssl_contexts(node_id),
                  fingerprints=cfg.fingerprints, host=bind_host or entry.host,
                  port=entry.port, settings=settings)
        net.start({e.id: (e.host, e.port) for e in cfg.nodes if e.id != node_id})
        return net

    @classmethod
    def from_torchrun(cls, workdir: Any, *, f: int | None = None, settings: Any = None,
                      **rendezvous: Any) -> tuple[TransportNetwork, Any]:
        """This process's node under ``torchrun``: peers found through torchrun's TCPStore
        (:func:`netsim.net.rendezvous.torchrun_cluster`: a *trusted* bootstrap that exchanges
        addresses and certificate fingerprints; ``workdir`` receives this node's key and the
        cluster config). Returns ``(network, config)``; the node id is ``RANK``."""
        from netsim.net.rendezvous import torchrun_cluster

        cfg, rank = torchrun_cluster(workdir, f=f, **rendezvous)
        return cls.from_config(cfg, rank, settings=settings), cfg

    def start(self, addresses: dict[int, tuple[str, int]]) -> None:
        """Set the peers' addresses and start serving and dialling."""
        self.transport.addresses = dict(addresses)
        q = self._q

        async def deliver(sender: int, body: bytes) -> None:
            import anyio

            while True:
                try:
                    q.put_nowait((sender, bytes(body)))
                    return
                except queue.Full:
                    await anyio.sleep(0.005)

        self._future = self._portal.start_task_soon(self.transport.run, deliver)

    def send(self, target: int, body: bytes) -> None:
        if not 0 <= target < self.n or target == self.node_id:
            raise ValueError(f"bad target {target} for node {self.node_id}")
        self._portal.call(self.transport.send, target, bytes(body))

    def recv(self, timeout: float | None) -> tuple[int, bytes] | None:
        """The next delivered message, or None after ``timeout``. If the transport's event
        loop task ended with an exception, that is logged and raised as ``RuntimeError``
        (instead of waiting, silently, for messages that can no longer come)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._check_transport()
            left = None if end is None else end - time.monotonic()
            try:
                return self._q.get(timeout=0.1 if left is None else max(0.0, min(left, 0.1)))
            except queue.Empty:
                if left is not None and left <= 0.1:
                    self._check_transport()
                    return None

    def _check_transport(self) -> None:
        fut = self._future
        if fut is None or not fut.done() or fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            logger.error("node %d: the transport stopped: %r", self.node_id, exc,
                         exc_info=(type(exc), exc, exc.__traceback__))
            raise RuntimeError(f"node {self.node_id}: the transport stopped "
                               f"({type(exc).__name__}: {exc})") from exc

    @property
    def faults(self) -> list[Fault]:
        """The transport's recorded faults (stalled or cut-off peers, bad frames, ...)."""
        return list(self.transport.faults)

    def close(self) -> None:
        """Stop the transport and its event-loop thread."""
        if self._future is not None:
            self._future.cancel()
        self._cm.__exit__(None, None, None)


class AgreementNode:
    """Runs successive averaging agreements (one per session) at one node over a
    :class:`Network`, keeping its recent sessions alive to serve slower peers.

    Hostile input is a recorded fault (:attr:`faults`, :attr:`fault_counts`). A protocol
    that raises (a bug) never dies silently: the exception is logged (logger
    ``learning.optim``) with the node, the session and the message (type, instance,
    sender), and :meth:`agree` / :meth:`serve` raise :class:`netsim.net.runtime.ProtocolError`
    with that information; the node is then stopped (:attr:`error`; every later call raises
    it again).
    """

    def __init__(self, network: Network, f: int, *, protocol: str = "trimmed-mean",
                 timeout: float = 120.0, window: int = 8, unsafe: bool = False,
                 rule_params: dict[str, Any] | None = None) -> None:
        self.net = network
        self.node_id, self.n, self.f = network.node_id, network.n, f
        self.protocol = protocol
        self.timeout = timeout
        self.window = window
        self.unsafe = unsafe
        self.rule_params = rule_params
        self.sessions: dict[int, AveragingAgreement] = {}
        self.pending: dict[int, list[tuple[int, Message]]] = {}
        self.faults: list[Fault] = []  # the first ``max_fault_log`` faults
        self.fault_counts: dict[str, int] = {}  # every fault, by kind
        self.max_fault_log = 1000
        self.t0 = time.monotonic()
        self.error: ProtocolError | None = None

    def _fault(self, flt: Fault) -> None:
        self.fault_counts[flt.kind] = self.fault_counts.get(flt.kind, 0) + 1
        if len(self.faults) < self.max_fault_log:
            self.faults.append(flt)

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _handle(self, proto: AveragingAgreement, sender: int | None, msg: Message | None,
                session: int) -> None:
        """``proto.handle(sender, msg)`` (``proto.start`` when ``msg`` is None) and its step
        applied; an exception is logged and raised as :class:`ProtocolError`."""
        try:
            if msg is None:
                step = proto.start(self._now())
            else:
                step = proto.handle(sender, msg, self._now())  # type: ignore[arg-type]
        except Exception as exc:
            err = ProtocolError(self.node_id, session, sender,
                                "start" if msg is None else describe_message(msg), exc)
            logger.error("%s", err, exc_info=(type(exc), exc, exc.__traceback__))
            self.error = err
            raise err from exc
        self._apply(step, session)

    def _apply(self, step: Step, session: int) -> None:
        for flt in step.faults:
            self._fault(flt)
        local: list[Message] = []
        for target, msg in step.messages:
            body = encode(msg)
            if target == ALL:
                for k in range(self.n):
                    if k != self.node_id:
                        self.net.send(k, body)
                local.append(msg)
            elif target == self.node_id:
                local.append(msg)
            else:
                self.net.send(target, body)
        proto = self.sessions.get(session)
        for msg in local:  # to itself: delivered locally, never on the wire
            if proto is not None:
                self._handle(proto, self.node_id, msg, session)

    def _route(self, sender: int, body: bytes, current: int) -> None:
        try:
            msg = decode(body, max_origins=self.n)
        except DecodeError as exc:
            self._fault(Fault(sender, "malformed", exc.reason))
            return
        session = msg.instance[0] if hasattr(msg, "instance") else msg.session  # type: ignore[attr-defined]
        proto = self.sessions.get(session)
        if proto is not None:
            self._handle(proto, sender, msg, session)
        elif current < session <= current + self.window:
            buf = self.pending.setdefault(session, [])
            if len(buf) < 64 * self.n * self.n:
                buf.append((sender, msg))
            else:
                self._fault(Fault(sender, "flood", f"session {session}"))
        else:
            self._fault(Fault(sender, "stale-session", f"session {session}"))

    def agree(self, x: np.ndarray, rounds: int, session: int) -> np.ndarray:
        """Averaging agreement on ``x`` for ``rounds`` rounds in ``session``; blocks until
        this node decides (``TimeoutError`` after ``timeout`` seconds without a message;
        :class:`ProtocolError` if the protocol raised, now or in an earlier call)."""
        if self.error is not None:
            raise self.error
        proto = AveragingAgreement(self.node_id, self.n, self.f, x, protocol=self.protocol,
                                   rounds=rounds, session=session, unsafe=self.unsafe,
                                   rule_params=self.rule_params)
        self.sessions[session] = proto
        for old in [s for s in self.sessions if s <= session - self.window]:
            del self.sessions[old]
        self._handle(proto, None, None, session)
        for sender, msg in self.pending.pop(session, []):
            self._handle(proto, sender, msg, session)
        while not proto.done:
            got = self.net.recv(self.timeout)
            if got is None:
                raise TimeoutError(
                    f"node {self.node_id}: no message for {self.timeout} s in session "
                    f"{session} (round {proto.round} of {rounds}); are n-f nodes running?")
            self._route(got[0], got[1], session)
        assert proto.decision is not None
        return proto.decision

    def serve(self, seconds: float) -> None:
        """Keep answering peers (echoes, readies, fetch replies) for ``seconds``: call it
        after the last step so that slower nodes can finish (:class:`ProtocolError` as in
        :meth:`agree`)."""
        if self.error is not None:
            raise self.error
        end = time.monotonic() + seconds
        current = max(self.sessions, default=0)
        while (left := end - time.monotonic()) > 0:
            got = self.net.recv(min(left, 0.05))
            if got is not None:
                self._route(got[0], got[1], current)


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
        proven contraction reaches THEORY §6's target ``2^-N_t`` (``N_t = max(1,
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
