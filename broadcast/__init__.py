"""broadcast: Bracha reliable broadcast and the witness gather, as sans-IO protocols.

- :class:`ReliableBroadcast` (docs/theory.md §3): validity, agreement, integrity, totality for
  ``n >= 3f+1``;
- :class:`WitnessGather` (docs/theory.md §4): one view per round, any two honest views sharing at
  least ``n-f`` values.
"""

from .bracha import Delivered, ReliableBroadcast, echo_threshold
from .witness import View, WitnessGather

__all__ = ["Delivered", "ReliableBroadcast", "View", "WitnessGather", "echo_threshold"]
