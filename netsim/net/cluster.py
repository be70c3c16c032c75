"""The static cluster configuration: who the nodes are, where they listen, which certificate
each one holds.

``python -m netsim keys --n 7 --out DIR`` writes, in ``DIR``::

    ca.pem, ca.key            the cluster CA (keep ca.key offline: it can mint node ids)
    node-<i>.pem, node-<i>.key  node i's certificate and key (keys are mode 0600)
    cluster.toml              the configuration below

``cluster.toml`` (read with :mod:`tomllib`, written by hand: it is small and flat)::

    [cluster]
    n = 7
    f = 2
    ca = "ca.pem"
    ca_fingerprint = "ab:cd:..."

    [[nodes]]
    id = 0
    host = "127.0.0.1"
    port = 27000
    cert = "node-0.pem"
    key = "node-0.key"
    fingerprint = "12:34:..."

Paths are relative to the configuration file. A node needs the CA certificate, its own
certificate and key, and the fingerprints of the others (not their certificates: they present
them in the TLS handshake). This configuration is the trust root for deployments that trust no
rendezvous service; :mod:`netsim.net.rendezvous` builds the same object from torchrun's store.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .tls import (
    client_context,
    fingerprint_pem,
    issue_node_cert,
    make_ca,
    server_context,
    write_private,
)


@dataclass(frozen=True)
class NodeEntry:
    """One node of the cluster: id, address, certificate files, pinned fingerprint."""

    id: int
    host: str
    port: int
    fingerprint: str
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class ClusterConfig:
    """A cluster: ``n`` nodes, the Byzantine bound ``f``, the CA and every node's entry.

    ``plaintext`` is only ever set by the explicit ``--insecure-loopback-plaintext`` flag:
    then there is no TLS and no authentication at all, and every address must be loopback.
    """

    n: int
    f: int
    ca: Path | None
    nodes: tuple[NodeEntry, ...]
    ca_fingerprint: str = ""
    plaintext: bool = False
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.n < 1 or not 0 <= self.f < self.n:
            raise ValueError(f"cluster needs n >= 1 and 0 <= f < n, got n={self.n}, f={self.f}")
        ids = [e.id for e in self.nodes]
        if ids != list(range(self.n)):
            raise ValueError(f"cluster nodes must be ids 0..{self.n - 1} in order, got {ids}")
        for e in self.nodes:
            if not 0 <= e.port <= MAX_PORT:
                raise ValueError(f"node {e.id}'s port {e.port} is not a TCP port (0..{MAX_PORT})")
        if self.plaintext:
            require_loopback(self)

    def node(self, i: int) -> NodeEntry:
        if not 0 <= i < self.n:
            raise ValueError(f"node id {i} is not in range(n) = range({self.n})")
        return self.nodes[i]

    @property
    def fingerprints(self) -> dict[int, str]:
        return {e.id: e.fingerprint for e in self.nodes}

    def with_addresses(self, addresses: dict[int, tuple[str, int]]) -> ClusterConfig:
        """The same cluster with some nodes' ``(host, port)`` replaced."""
        nodes = tuple(
            replace(e, host=addresses[e.id][0], port=addresses[e.id][1])
            if e.id in addresses else e
            for e in self.nodes
        )
        return replace(self, nodes=nodes)

    def check_node(self, i: int) -> None:
        """Check what node ``i`` needs before it starts, with a ``ValueError`` naming the
        file: the CA certificate, its own certificate and key can be read, its certificate's
        fingerprint is the one the configuration pins for id ``i`` (else every peer would
        refuse it, and it would wait for its timeout), and the CA's is ``ca_fingerprint``
        (when given). Nothing to check in plaintext mode."""
        if self.plaintext:
            return
        e = self.node(i)
        if self.ca is None or e.cert is None or e.key is None:
            raise ValueError(f"node {i} has no certificate/key files in the configuration")
        pems = {}
        for what, path in (("CA certificate", self.ca), ("certificate", e.cert),
                           ("key", e.key)):
            try:
                pems[what] = Path(path).read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read node {i}'s {what} {path}: "
                                 f"{exc.strerror or exc}") from None
        got = _pem_fingerprint(pems["certificate"], f"node {i}'s certificate {e.cert}")
        if got != e.fingerprint.lower():
            raise ValueError(
                f"node {i}'s certificate {e.cert} has fingerprint {got}, but the configuration "
                f"pins {e.fingerprint} for node {i}: a wrong certificate or a stale config"
            )
        if self.ca_fingerprint:
            ca_got = _pem_fingerprint(pems["CA certificate"], f"the CA certificate {self.ca}")
            if ca_got != self.ca_fingerprint.lower():
                raise ValueError(
                    f"the CA certificate {self.ca} has fingerprint {ca_got}, but the "
                    f"configuration says ca_fingerprint = {self.ca_fingerprint}"
                )
        try:
            self.ssl_contexts(i)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"node {i}'s certificate {e.cert} and key {e.key} do not load "
                             f"into TLS: {exc}") from None

    def ssl_contexts(self, i: int) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
        """``(server, client)`` TLS contexts of node ``i`` (``None`` in plaintext mode)."""
        if self.plaintext:
            return None
        e = self.node(i)
        if self.ca is None or e.cert is None or e.key is None:
            raise ValueError(f"node {i} has no certificate/key files in the configuration")
        ca_pem = Path(self.ca).read_bytes()
        return server_context(ca_pem, e.cert, e.key), client_context(ca_pem, e.cert, e.key)


MAX_PORT = 65535

DEFAULT_BASE_PORT = 27000
"""Node i of a generated cluster on other hosts than loopback listens on ``27000 + i``: below
Linux's ephemeral range (32768-60999), from which outgoing connections take their local
ports, so a listener never finds its port taken by one (``python -m netsim keys
--base-port``)."""
"""The largest TCP port."""


def require_loopback(cfg: ClusterConfig) -> None:
    """Plaintext is allowed on loopback addresses only; raise ``ValueError`` otherwise."""
    for e in cfg.nodes:
        try:
            ok = ipaddress.ip_address(e.host).is_loopback
        except ValueError:
            ok = e.host == "localhost"
        if not ok:
            raise ValueError(
                f"--insecure-loopback-plaintext refuses non-loopback address {e.host!r} "
                f"(node {e.id}): without TLS any host on the path could forge node ids"
            )


def free_ports(k: int, host: str = "127.0.0.1") -> list[int]:
    """``k`` distinct TCP ports that were free on ``host`` a moment ago (bind to port 0)."""
    socks = []
    try:
        for _ in range(k):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(cfg: ClusterConfig, path: Path) -> None:
    """Write ``cfg`` as TOML (paths relative to ``path``'s folder when inside it)."""
    base = path.parent.resolve()

    def rel(p: Path | None) -> str:
        if p is None:
            return ""
        p = Path(p).resolve()
        return str(p.relative_to(base)) if p.is_relative_to(base) else str(p)

    lines = [
        "# Jungle cluster configuration (python -m netsim keys). Trust root of the cluster:",
        "# node ids are bound to these certificate fingerprints.",
        "[cluster]",
        f"n = {cfg.n}",
        f"f = {cfg.f}",
        f"ca = {_toml_str(rel(cfg.ca))}",
        f"ca_fingerprint = {_toml_str(cfg.ca_fingerprint)}",
    ]
    for e in cfg.nodes:
        lines += [
            "",
            "[[nodes]]",
            f"id = {e.id}",
            f"host = {_toml_str(e.host)}",
            f"port = {e.port}",
            f"cert = {_toml_str(rel(e.cert))}",
            f"key = {_toml_str(rel(e.key))}",
            f"fingerprint = {_toml_str(e.fingerprint)}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_config(path: str | Path, *, plaintext: bool = False) -> ClusterConfig:
    """Read a cluster configuration; ``ValueError`` with the reason if it is malformed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read cluster config {path}: {exc}") from None
    base = path.parent

    def p(s: object) -> Path | None:
        return (base / str(s)) if s else None

    try:
        c = data["cluster"]
        nodes = tuple(
            NodeEntry(
                id=int(e["id"]), host=str(e["host"]), port=int(e["port"]),
                fingerprint=str(e["fingerprint"]).lower(), cert=p(e.get("cert")),
                key=p(e.get("key")),
            )
            for e in data["nodes"]
        )
        return ClusterConfig(
            n=int(c["n"]), f=int(c.get("f", (int(c["n"]) - 1) // 3)), ca=p(c.get("ca")),
            nodes=nodes, ca_fingerprint=str(c.get("ca_fingerprint", "")),
            plaintext=plaintext, path=path,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"cluster config {path} is missing a field: {exc}") from None


def generate(
    n: int,
    out: str | Path,
    *,
    f: int | None = None,
    hosts: list[str] | None = None,
    ports: list[int] | None = None,
) -> ClusterConfig:
    """Make a CA and ``n`` node certificates in ``out`` and write ``out/cluster.toml``.

    ``hosts`` default to 127.0.0.1; ``ports`` default to free loopback ports picked now.
    ``f`` defaults to the largest with ``n >= 3f + 1``; a larger one is refused (every
    protocol's witness gather needs ``n >= 3f + 1``, docs/theory.md §3). ``ValueError`` for a
    bad argument, or an ``out`` that exists and is not a folder, before anything is written.
    """
    if n < 1:
        raise ValueError(f"need n >= 1 nodes, got {n}")
    f = (n - 1) // 3 if f is None else f
    if f < 0 or n < 3 * f + 1:
        raise ValueError(
            f"a cluster of n={n} nodes tolerates at most f={(n - 1) // 3} Byzantine nodes "
            f"(n >= 3f+1), got f={f}"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    hosts = hosts or ["127.0.0.1"] * n
    if len(hosts) != n:
        raise ValueError(f"need {n} hosts, got {len(hosts)}")
    if ports is None:
        ports = free_ports(n) if all(h == "127.0.0.1" for h in hosts) else [
            DEFAULT_BASE_PORT + i for i in range(n)]
    if len(ports) != n:
        raise ValueError(f"need {n} ports, got {len(ports)}")
    bad = [p for p in ports if not 0 <= p <= MAX_PORT]
    if bad:
        raise ValueError(f"ports must be in 0..{MAX_PORT}, got {bad[:3]}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot make the folder {out}: {exc.strerror or exc}") from None
    ca = make_ca()
    (out / "ca.pem").write_bytes(ca.cert_pem)
    write_private(out / "ca.key", ca.key_pem)
    entries = []
    for i in range(n):
        cred = issue_node_cert(ca, i, hosts[i])
        cert, key = out / f"node-{i}.pem", out / f"node-{i}.key"
        cert.write_bytes(cred.cert_pem)
        write_private(key, cred.key_pem)
        entries.append(NodeEntry(i, hosts[i], ports[i], cred.fingerprint, cert, key))
    cfg = ClusterConfig(n, f, out / "ca.pem", tuple(entries),
                        ca_fingerprint=fingerprint_pem(ca.cert_pem), path=out / "cluster.toml")
    write_config(cfg, out / "cluster.toml")
    return cfg


def _pem_fingerprint(pem: bytes, what: str) -> str:
    """The SHA-256 fingerprint of a PEM certificate; ``ValueError`` naming ``what`` if the
    bytes are not one."""
    try:
        return fingerprint_pem(pem)
    except (ValueError, IndexError, TypeError) as exc:
        raise ValueError(f"{what} is not a PEM certificate: {exc}") from None
