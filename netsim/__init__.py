"""netsim: the message-passing layer of Jungle.

- :mod:`netsim.messages` and :mod:`netsim.codec`: the typed wire messages and the one strict
  codec;
- :mod:`netsim.protocol`: the sans-IO protocol interface (``start``/``handle`` -> ``Step``);
- :mod:`netsim.simulator`, :mod:`netsim.schedulers`, :mod:`netsim.adversary`: the
  deterministic adversarial simulator, its schedulers and its Byzantine strategies;
- the real network: :mod:`netsim.tls` (cluster CA, node certificates, mutual TLS),
  :mod:`netsim.cluster` (the static cluster configuration), :mod:`netsim.transport`
  (reliable authenticated TCP channels on anyio), :mod:`netsim.runtime` (drives any sans-IO
  protocol over them, on asyncio or trio), :mod:`netsim.node` (one node process, Byzantine
  strategies over a network), :mod:`netsim.loopback` (in-process clusters),
  :mod:`netsim.launch` (n processes on loopback), :mod:`netsim.rendezvous` (torchrun).

Nothing here imports torch.
"""

from .adversary import STRATEGIES, Strategy, make_strategy
from .cluster import ClusterConfig, load_config
from .cluster import generate as generate_cluster
from .codec import DecodeError, decode, encode
from .loopback import LocalCluster, run_local_cluster
from .messages import Echo, Fetch, InstanceId, Message, Ready, Reply, Report, Send, Value, digest
from .node import NETWORK_STRATEGIES, StrategyProtocol, run_node
from .protocol import ALL, EMPTY, Fault, Protocol, Step, require_resilience
from .runtime import NodeReport, Runtime
from .schedulers import SCHEDULERS, Scheduler, make_scheduler
from .simulator import SimResult, SimulationError, Simulator, simulate
from .transport import Network, TransportSettings

__all__ = [
    "ALL",
    "EMPTY",
    "NETWORK_STRATEGIES",
    "SCHEDULERS",
    "STRATEGIES",
    "ClusterConfig",
    "DecodeError",
    "Echo",
    "Fault",
    "Fetch",
    "InstanceId",
    "LocalCluster",
    "Message",
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
    "decode",
    "digest",
    "encode",
    "generate_cluster",
    "load_config",
    "make_scheduler",
    "make_strategy",
    "require_resilience",
    "run_local_cluster",
    "run_node",
    "simulate",
]
