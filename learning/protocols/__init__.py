"""Sans-IO protocols of the seeds' other training systems (docs/systems/): the same
:class:`netsim.protocol.Protocol` contract as the agreement layer, so they run in netsim's
simulator under every scheduler and Byzantine strategy, and over the real network.

- :mod:`~learning.protocols.gather`: the rank bounds of a coordinate-wise median over a
  first-quorum gather (ByzSGD's model contraction).
- :mod:`~learning.protocols.byzsgd`: ByzSGD (docs/systems/byzsgd.md): Byzantine parameter
  servers and workers, first-quorum steps and median gathers every ``gather_every`` steps,
  its own Byzantine strategies (``stale``, ``sign-flip``, ``far``) and
  :func:`~learning.protocols.byzsgd.simulate_byzsgd`, which checks every gather against
  the bound of :mod:`~learning.protocols.gather`;
  :mod:`~learning.protocols.byzsgd_net` runs it as one process per node over mutual TLS.
- :mod:`~learning.protocols.kardam`: Kardam's Lipschitz and frequency filters (one pure
  core), the server state on numpy or torch vectors, the sans-IO server and workers and
  :func:`~learning.protocols.kardam.simulate_kardam` (docs/systems/kardam.md).
"""
