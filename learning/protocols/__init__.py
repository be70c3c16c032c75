"""Sans-IO protocols of the seeds' other training systems (docs/systems/): the same
:class:`netsim.protocol.Protocol` contract as the agreement layer, so they run in netsim's
simulator under every scheduler and Byzantine strategy, and over the real network.

- :mod:`~learning.protocols.gather`: the rank bounds of a coordinate-wise median over a
  first-quorum gather (ByzSGD's model contraction).
"""
