"""The real network: the same sans-IO protocols between processes and hosts.

- :mod:`netsim.net.tls`: the cluster CA, node certificates, mutual TLS 1.3 with the node id
  bound in the certificate;
- :mod:`netsim.net.cluster`: the static cluster configuration (``cluster.toml``);
- :mod:`netsim.net.transport`: reliable authenticated channels on TCP (anyio: asyncio or
  trio), bounded frames and queues, resend after reconnect;
- :mod:`netsim.net.runtime`: drives one sans-IO protocol over a transport;
- :mod:`netsim.net.driver`: the blocking driver (successive sessions at one node, for a
  caller without an event loop, e.g. a torch training loop), in-process and transport networks;
- :mod:`netsim.net.node`: one node process, honest or running a Byzantine strategy;
- :mod:`netsim.net.loopback`, :mod:`netsim.net.launch`: clusters in one process or n processes
  on loopback; :mod:`netsim.net.rendezvous`: peers found through torchrun's store.
"""
