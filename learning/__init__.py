"""learning: LEARN, collaborative SGD from averaging agreement (docs/theory.md §6), on torch.

- :func:`train` / :class:`TrainConfig`: n nodes simulated in one process (round-level engine
  by default, message level for small runs), LEARN or a baseline (local, D-SGD, trusted
  server), under the learning attacks of :mod:`learning.attacks`;
- :class:`CollaborativeSGD`: the per-process API, one node per process (a torch optimizer
  that runs averaging agreement with the other nodes over a :class:`Network`: netsim's real
  network through :class:`TransportNetwork`, or threads through :class:`InProcessNetwork`;
  both, and the blocking driver under :class:`AgreementNode`, live in
  :mod:`netsim.net.driver`);
- :mod:`learning.data`: digits, MNIST/CIFAR-10 from local files, synthetic tasks with a known
  optimum, Dirichlet and shard splits; :mod:`learning.models`: MLP, CNN, the batched
  :class:`~learning.models.Swarm`;
- :mod:`learning.experiments`: the compare grid, the ALIE sweep and the main demo;
  ``python -m learning train|compare|sweep|demo``.

Importing :mod:`learning` imports torch (the ``learn`` extra).
"""

from .learn import METHODS, TrainConfig, TrainResult, train
from .optim import AgreementNode, CollaborativeSGD, InProcessNetwork, Network, TransportNetwork

__all__ = [
    "METHODS",
    "AgreementNode",
    "CollaborativeSGD",
    "InProcessNetwork",
    "Network",
    "TrainConfig",
    "TrainResult",
    "TransportNetwork",
    "train",
]
