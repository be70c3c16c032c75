"""netsim: the message-passing layer of Jungle.

The vocabulary every layer shares, at this package's top level:

- :mod:`netsim.messages` and :mod:`netsim.codec`: the typed wire messages and the one strict
  codec;
- :mod:`netsim.protocol`: the sans-IO protocol interface (``start``/``handle`` -> ``Step``);
- :mod:`netsim.dispatch`: how a ``Step`` is applied, the same everywhere (the
  :class:`Dispatcher`: targets expanded, self-messages delivered locally, one encoding per
  send), the bounded :class:`FaultLog` and the wire :class:`Metrics`;
- :mod:`netsim.adversary`: the public API for writing a Byzantine strategy
  (:class:`Strategy`, :class:`CoreStrategy`, the typed read-only :class:`AdversaryContext`,
  :func:`register_strategy`; docs/guides/adversary.md), since both the simulator and the real
  network run strategies;
- :mod:`netsim.registry` and :mod:`netsim.plugins`: how users extend the registries, and
  how the command lines load their ``--plugin`` modules.

Below it, one sub-package per way of running protocols:

- :mod:`netsim.sim`: the deterministic adversarial simulator, its schedulers and its
  Byzantine strategies;
- :mod:`netsim.net`: the real network (mutual TLS, the cluster configuration, reliable TCP
  channels on anyio, the runtime that drives a protocol over them, node processes, loopback
  clusters, the launcher, the torchrun rendezvous).

Nothing here imports torch.
"""

from .adversary import AdversaryContext, CoreStrategy, Emission, register_strategy
from .codec import DecodeError, decode, encode
from .dispatch import Dispatcher, FaultLog, InvalidTarget, Metrics, Wire, destinations
from .messages import Echo, Fetch, InstanceId, Message, Ready, Reply, Report, Send, Value, digest
from .net.cluster import ClusterConfig, load_config
from .net.cluster import generate as generate_cluster
from .net.loopback import LocalCluster, run_local_cluster
from .net.node import NETWORK_STRATEGIES, StrategyProtocol, run_node
from .net.runtime import NodeReport, Runtime
from .net.transport import Network, TransportSettings
from .protocol import ALL, EMPTY, Fault, Protocol, Step, ValueHistory, require_resilience
from .sim.adversary import STRATEGIES, Strategy, make_strategy
from .sim.schedulers import SCHEDULERS, Scheduler, make_scheduler, register_scheduler
from .sim.simulator import SimResult, SimulationError, Simulator, simulate

__all__ = [
    "ALL",
    "EMPTY",
    "NETWORK_STRATEGIES",
    "SCHEDULERS",
    "STRATEGIES",
    "AdversaryContext",
    "ClusterConfig",
    "CoreStrategy",
    "DecodeError",
    "Dispatcher",
    "Echo",
    "Emission",
    "Fault",
    "FaultLog",
    "Fetch",
    "InstanceId",
    "InvalidTarget",
    "LocalCluster",
    "Message",
    "Metrics",
    "Network",
    "NodeReport",
    "Protocol",
    "Ready",
    "Reply",
    "Report",
    "Runtime",
    "Scheduler",
    "Send",
    "SimResult",
    "SimulationError",
    "Simulator",
    "Step",
    "Strategy",
    "StrategyProtocol",
    "TransportSettings",
    "Value",
    "ValueHistory",
    "Wire",
    "decode",
    "destinations",
    "digest",
    "encode",
    "generate_cluster",
    "load_config",
    "make_scheduler",
    "make_strategy",
    "register_scheduler",
    "register_strategy",
    "require_resilience",
    "run_local_cluster",
    "run_node",
    "simulate",
]
