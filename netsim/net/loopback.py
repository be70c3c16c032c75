"""In-process clusters on loopback: n nodes in one event loop over real TCP and real TLS.

For tests, benchmarks and single-machine experiments (processes: :mod:`netsim.net.launch`)::

    async with LocalCluster(4, keys_dir) as cluster:     # CA, certificates, listeners
        reports = await cluster.run({i: protocol_i for i in range(4)})

Nodes absent from ``run``'s mapping are *crashed*: their listening socket is closed, so
peers get connection refused and keep retrying with backoff until they linger out.
:meth:`LocalCluster.close_listener` frees a node's port for a hostile test peer to take.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from ..protocol import Protocol
from .cluster import ClusterConfig, generate
from .runtime import NodeReport, Runtime
from .transport import Network, TransportSettings


class LocalCluster:
    """``n`` networks on ``host`` with a fresh cluster CA in ``keys_dir`` (mutual TLS), or
    none at all with ``plaintext=True`` (the explicit unauthenticated loopback mode)."""

    def __init__(self, n: int, keys_dir: str | Path | None = None, *, f: int | None = None,
                 plaintext: bool = False, settings: TransportSettings | None = None,
                 host: str = "127.0.0.1") -> None:
        if keys_dir is None and not plaintext:
            raise ValueError("give keys_dir (for the ephemeral cluster CA) or plaintext=True")
        self.n, self.host, self.plaintext = n, host, plaintext
        self.keys_dir = Path(keys_dir) if keys_dir is not None else None
        self.f = (n - 1) // 3 if f is None else f
        self.settings = settings
        self.config: ClusterConfig | None = None
        self.networks: list[Network] = []

    async def __aenter__(self) -> LocalCluster:
        n = self.n
        if self.plaintext:
            tls: list[Any] = [None] * n
            fps: dict[int, str] = {}
        else:
            assert self.keys_dir is not None
            cfg = generate(n, self.keys_dir, f=self.f, ports=[0] * n)
            tls = [cfg.ssl_contexts(i) for i in range(n)]
            fps = cfg.fingerprints
            self.config = cfg
        self.networks = [Network(i, n, tls=tls[i], fingerprints=fps, settings=self.settings)
                         for i in range(n)]
        for net in self.networks:
            await net.listen(self.host, 0)
        addrs = {i: (self.host, self.port(i)) for i in range(n)}
        for net in self.networks:
            net.addresses = {p: addrs[p] for p in net.peers}
        if self.config is not None:
            self.config = self.config.with_addresses(addrs)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for i in range(self.n):
            await self.close_listener(i)

    def port(self, i: int) -> int:
        port = self.networks[i].port
        assert port is not None
        return port

    async def close_listener(self, i: int) -> None:
        """Close node ``i``'s listening socket (its port stays in everyone's address book)."""
        lst = self.networks[i]._listener
        if lst is not None:
            await lst.aclose()

    async def run(self, protocols: Mapping[int, Protocol], *, linger: float = 5.0,
                  timeout: float | None = 60.0) -> dict[int, NodeReport]:
        """Run the given nodes to completion (others are crashed); return their reports."""
        for i in range(self.n):
            if i not in protocols:
                await self.close_listener(i)
        reports: dict[int, NodeReport] = {}

        async def one(i: int) -> None:
            rt = Runtime(protocols[i], self.networks[i])
            reports[i] = await rt.run(linger=linger, timeout=timeout)

        async with anyio.create_task_group() as tg:
            for i in sorted(protocols):
                tg.start_soon(one, i)
        return dict(sorted(reports.items()))


async def run_local_cluster(protocols: list[Protocol], keys_dir: str | Path | None = None,
                            **kwargs: Any) -> list[NodeReport]:
    """Run ``protocols`` (node ``i`` is ``protocols[i]``) as one loopback cluster; the
    keyword arguments go to :class:`LocalCluster` and :meth:`LocalCluster.run`."""
    run_kw = {k: kwargs.pop(k) for k in ("linger", "timeout") if k in kwargs}
    async with LocalCluster(len(protocols), keys_dir, **kwargs) as cluster:
        reports = await cluster.run(dict(enumerate(protocols)), **run_kw)
    return list(reports.values())
