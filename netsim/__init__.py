"""netsim: the message-passing layer of Jungle.

- :mod:`netsim.messages` and :mod:`netsim.codec`: the typed wire messages and the one strict
  codec;
- :mod:`netsim.protocol`: the sans-IO protocol interface (``start``/``handle`` -> ``Step``);
- :mod:`netsim.simulator`, :mod:`netsim.schedulers`, :mod:`netsim.adversary`: the
  deterministic adversarial simulator, its schedulers and its Byzantine strategies.

Nothing here imports torch.
"""

from .adversary import STRATEGIES, Strategy, make_strategy
from .codec import DecodeError, decode, encode
from .messages import Echo, Fetch, InstanceId, Message, Ready, Reply, Report, Send, Value, digest
from .protocol import ALL, EMPTY, Fault, Protocol, Step, require_resilience
from .schedulers import SCHEDULERS, Scheduler, make_scheduler
from .simulator import SimResult, SimulationError, Simulator, simulate

__all__ = [
    "ALL",
    "EMPTY",
    "SCHEDULERS",
    "STRATEGIES",
    "DecodeError",
    "Echo",
    "Fault",
    "Fetch",
    "InstanceId",
    "Message",
    "Protocol",
    "Ready",
    "Reply",
    "Report",
    "Scheduler",
    "Send",
    "SimResult",
    "SimulationError",
    "Simulator",
    "Step",
    "Strategy",
    "Value",
    "decode",
    "digest",
    "encode",
    "make_scheduler",
    "make_strategy",
    "require_resilience",
    "simulate",
]
