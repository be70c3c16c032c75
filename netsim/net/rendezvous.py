"""Finding the peers under torchrun: a rendezvous through torch.distributed's TCPStore.

**Trust.** The store is a *trusted bootstrap*: it is unauthenticated, and whoever controls
it (or the network path to it) during the rendezvous decides which certificate fingerprints
the nodes pin, hence who the nodes are. After the rendezvous, every connection is mutual TLS
pinned to the fingerprints read from the store, and a Byzantine *node* gains nothing from
it: it can publish only its own entry (first write wins is not needed: each rank writes only
its own key, and a rank's entry is read once). Deployments that trust no rendezvous service
use the static cluster configuration instead (``python -m netsim keys``, then
``python -m agreement node --config cluster.toml``).

How (:func:`torchrun_cluster`): with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` from torchrun's environment, each rank

1. makes its own key and a certificate binding its rank as node id (a one-off CA of its own
   issues it; the CA key is discarded at once, and the node key never leaves the process);
2. picks a free TCP port on its host and publishes ``{host, port, certificate chain}`` under
   ``jungle/<session>/node/<rank>`` in the store (rank 0 hosts the store unless torchrun's
   agent already does: ``TORCHELASTIC_USE_AGENT_STORE=True``);
3. waits for every rank's entry, then writes into ``workdir`` the bundle of every rank's
   one-off CA certificate (the trust anchors, ``anchors-<rank>.pem``), its own certificate
   and key (``node-<rank>.pem``/``.key``) and the configuration with the pinned fingerprints
   (``cluster-<rank>.toml``, a :class:`~netsim.net.cluster.ClusterConfig` like the static one).
   Every file name carries the rank, so ranks sharing a folder never write the same file.

torch is imported here only, lazily: nothing else in netsim needs it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from .cluster import ClusterConfig, NodeEntry, free_ports, write_config
from .tls import fingerprint_pem, self_signed_node_cert, write_private

_END = "-----END CERTIFICATE-----"


def _split_chain(pem: str) -> list[str]:
    parts = [p + _END + "\n" for p in pem.split(_END) if p.strip()]
    return [p.strip() + "\n" for p in parts]


def _default_host(master: str) -> str:
    try:
        if ipaddress.ip_address(master).is_loopback:
            return "127.0.0.1"
    except ValueError:
        if master == "localhost":
            return "127.0.0.1"
    return socket.gethostbyname(socket.getfqdn())


def torchrun_cluster(
    workdir: str | Path,
    *,
    f: int | None = None,
    host: str | None = None,
    session: str = "default",
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
    store: Any = None,
) -> tuple[ClusterConfig, int]:
    """Rendezvous through torchrun's TCPStore; return ``(config, my_node_id)``.

    ``env`` defaults to ``os.environ`` (needs ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``); ``host`` is the address this node advertises (default: 127.0.0.1 when
    the master is on loopback, else this host's address); ``f`` defaults to
    ``(n - 1) // 3``. ``store`` may be an existing ``torch.distributed.Store`` (then the
    environment's master address is not used). Raises ``ValueError`` for a missing or bad
    variable and ``TimeoutError`` when not every rank shows up within ``timeout`` seconds.
    """
    env = os.environ if env is None else env
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        master, mport = env["MASTER_ADDR"], int(env["MASTER_PORT"])
    except KeyError as exc:
        raise ValueError(f"torchrun rendezvous needs the environment variable {exc}") from None
    except ValueError as exc:
        raise ValueError(f"bad torchrun environment: {exc}") from None
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is not in range(WORLD_SIZE={world})")
    host = host or _default_host(master)
    if store is None:
        from torch.distributed import TCPStore  # lazily: only the rendezvous needs torch

        agent = env.get("TORCHELASTIC_USE_AGENT_STORE", "") == "True"
        store = TCPStore(master, mport, world, is_master=(rank == 0 and not agent),
                         timeout=timedelta(seconds=timeout), wait_for_workers=False)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    cred = self_signed_node_cert(rank, host)
    (work / f"node-{rank}.pem").write_bytes(cred.cert_pem)
    write_private(work / f"node-{rank}.key", cred.key_pem)
    port = free_ports(1, host)[0]
    prefix = f"jungle/{session}/node/"
    store.set(prefix + str(rank), json.dumps(
        {"host": host, "port": port, "cert": cred.cert_pem.decode("ascii")}))
    keys = [prefix + str(i) for i in range(world)]
    try:
        store.wait(keys, timedelta(seconds=timeout))
    except Exception as exc:  # torch raises its own DistStoreError / RuntimeError
        raise TimeoutError(f"rendezvous: not every rank published within {timeout} s: "
                           f"{exc}") from None
    entries, anchors = [], []
    for i in range(world):
        try:
            rec = json.loads(store.get(prefix + str(i)))
            chain = _split_chain(rec["cert"])
            if len(chain) != 2:
                raise ValueError("expected a certificate and its one-off CA")
            entries.append(NodeEntry(
                i, str(rec["host"]), int(rec["port"]), fingerprint_pem(chain[0].encode()),
                cert=work / f"node-{i}.pem" if i == rank else None,
                key=work / f"node-{i}.key" if i == rank else None,
            ))
            anchors.append(chain[1])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"rendezvous: malformed entry for rank {i}: {exc}") from None
    # per-rank file names: the ranks of one machine (or of a shared file system) write the
    # same folder at the same time, and a rank reading another's half-written trust anchors
    # failed every TLS handshake (seen under torchrun --nproc-per-node 4)
    anchors_path = work / f"anchors-{rank}.pem"
    anchors_path.write_text("".join(anchors))
    cfg = ClusterConfig(world, (world - 1) // 3 if f is None else f, anchors_path,
                        tuple(entries), path=work / f"cluster-{rank}.toml")
    write_config(cfg, work / f"cluster-{rank}.toml")
    return cfg, rank
