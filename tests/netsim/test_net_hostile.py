"""Hostile peers against honest nodes on the real network (asyncio and trio).

Nodes 0..2 of n=4, f=1 run trimmed-mean agreement over mutual TLS; node 3's identity (its
certificate and key) belongs to the test, which attacks node 0 and node 1 with raw sockets:
garbage before TLS, stalled connections, foreign and unpinned certificates, no certificate,
oversized length prefixes, garbage frames, frames claiming another sender, floods, and a
peer that never reads. The honest nodes must decide within the bounds, record faults only
against node 3, and keep bounded queues.
"""

from __future__ import annotations

import struct

import anyio
import numpy as np
import pytest
from anyio.streams.tls import TLSStream

from agreement import AveragingAgreement
from netsim.codec import encode, frame
from netsim.messages import Echo, Value
from netsim.net.loopback import LocalCluster
from netsim.net.tls import ClusterCA, client_context, issue_node_cert, make_ca, server_context
from netsim.net.transport import ACK, DATA, ENVELOPE, HELLO, WELCOME, TransportSettings

from .harness import LIMIT, check_bounds

pytestmark = pytest.mark.anyio
N, F, ROUNDS, HOSTILE = 4, 1, 3, 3


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _honest(d: int, seed: int = 11) -> list[AveragingAgreement]:
    x = np.random.default_rng(seed).standard_normal((N, d))
    return [AveragingAgreement(i, N, F, x[i], rounds=ROUNDS) for i in range(N - 1)]


def _env(kind: int, sender: int, seq: int, body: bytes = b"") -> bytes:
    return frame(ENVELOPE.pack(kind, sender, seq) + body)


async def _read_until_closed(stream, limit: float = 5.0) -> bytes:
    """Read until the honest side closes the connection; return what it sent."""
    got = b""
    with anyio.fail_after(limit):
        try:
            while True:
                got += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return got


async def _tls_as(cluster: LocalCluster, target: int, cert=None, key=None, ca_pem=None):
    cfg = cluster.config
    e = cfg.node(HOSTILE)
    ctx = client_context(ca_pem or cfg.ca.read_bytes(), cert or e.cert, key or e.key)
    return await anyio.connect_tcp("127.0.0.1", cluster.port(target), ssl_context=ctx,
                                   tls_standard_compatible=False)


async def _hello(stream, sender: int, target: int) -> None:
    await stream.send(_env(HELLO, sender, target))
    data = await stream.receive()
    kind, who, _ = ENVELOPE.unpack_from(data, 4)
    assert (kind, who) == (WELCOME, target)


async def _authenticated_attacks(cluster: LocalCluster, done: list[str]) -> None:
    """As node 3 (a valid certificate), against node 0, one connection per attack."""
    # 1. a length prefix far above the maximum frame
    s = await _tls_as(cluster, 0)
    await _hello(s, HOSTILE, 0)
    await s.send(struct.pack("<I", 2**31) + b"\0" * 64)
    await _read_until_closed(s)
    done.append("oversized")
    # 2. garbage bodies in valid envelopes (codec faults), then a frame without envelope
    s = await _tls_as(cluster, 0)
    await _hello(s, HOSTILE, 0)
    bodies = [b"", b"JG", b"JG\x02\x09" + b"\0" * 20, b"XX\x01\x01" + b"\0" * 30,
              b"JG\x02\x01" + struct.pack("<IIHBI", 0, 0, 3, 1, 2**31) + b"\0" * 8,
              encode(Echo((0, 0, 3), b"\0" * 32))[:-1]]
    for k, body in enumerate(bodies):
        await s.send(_env(DATA, HOSTILE, k, body))
    await s.send(frame(b"\x03\x03"))
    await _read_until_closed(s)
    done.append("garbage-frames")
    # 3. HELLO claiming to be node 1 over node 3's certificate
    s = await _tls_as(cluster, 0)
    await s.send(_env(HELLO, 1, 0))
    await _read_until_closed(s)
    done.append("impersonation-hello")
    # 4. a DATA frame claiming sender 1 after an honest HELLO as 3
    s = await _tls_as(cluster, 0)
    await _hello(s, HOSTILE, 0)
    v = Value((0, 0, 1), np.zeros(8))
    await s.send(_env(DATA, 1, len(bodies), encode(v)))
    await _read_until_closed(s)
    done.append("impersonation-data")
    # 5. a gap in the sequence numbers
    s = await _tls_as(cluster, 0)
    await _hello(s, HOSTILE, 0)
    await s.send(_env(DATA, HOSTILE, 10**6, encode(v)))
    await _read_until_closed(s)
    done.append("bad-seq")
    # 6. a flood of valid messages for rounds the protocol never runs, on node 1
    s = await _tls_as(cluster, 1)
    await _hello(s, HOSTILE, 1)
    for k in range(300):
        await s.send(_env(DATA, HOSTILE, k, encode(Value((0, 10 + k, 3), np.ones(8)))))
    await s.aclose()
    done.append("flood")


async def _unauthenticated_attacks(cluster: LocalCluster, tmp_path, done: list[str]) -> None:
    """Connections that must be refused before any frame is accepted (against node 1)."""
    port = cluster.port(1)
    # garbage instead of a TLS ClientHello
    s = await anyio.connect_tcp("127.0.0.1", port)
    await s.send(b"\x16\x03\x01\xff\xff" + bytes(range(256)) * 4)
    await _read_until_closed(s)
    # a connection that stalls before the handshake (closed after handshake_timeout)
    s = await anyio.connect_tcp("127.0.0.1", port)
    await _read_until_closed(s)
    # a certificate for node 3 from a foreign CA
    foreign = make_ca("foreign")
    cred = issue_node_cert(foreign, HOSTILE)
    (tmp_path / "f.pem").write_bytes(cred.cert_pem)
    (tmp_path / "f.key").write_bytes(cred.key_pem)
    cfg = cluster.config
    with pytest.raises((anyio.BrokenResourceError, OSError, anyio.EndOfStream)):
        # our side trusts the cluster CA, the server refuses the foreign client certificate
        s = await _tls_as(cluster, 1, cert=tmp_path / "f.pem", key=tmp_path / "f.key")
        await _read_until_closed(s)
        raise anyio.EndOfStream
    # a certificate for node 3 from the cluster CA, but not the pinned one
    ca = ClusterCA(cfg.ca.read_bytes(), (cfg.ca.parent / "ca.key").read_bytes())
    other = issue_node_cert(ca, HOSTILE)
    (tmp_path / "u.pem").write_bytes(other.cert_pem)
    (tmp_path / "u.key").write_bytes(other.key_pem)
    s = await _tls_as(cluster, 1, cert=tmp_path / "u.pem", key=tmp_path / "u.key")
    await _read_until_closed(s)
    # no client certificate at all
    import ssl

    ctx = ssl.create_default_context(cadata=cfg.ca.read_text())
    ctx.check_hostname = False
    with pytest.raises((anyio.BrokenResourceError, OSError, anyio.EndOfStream)):
        s = await anyio.connect_tcp("127.0.0.1", port, ssl_context=ctx,
                                    tls_standard_compatible=False)
        await _read_until_closed(s)
        raise anyio.EndOfStream
    done.append("unauthenticated")


async def test_hostile_peers_cannot_hurt_honest_nodes(tmp_path, anyio_backend):
    nodes = _honest(d=8)
    settings = TransportSettings(handshake_timeout=1.0, backoff_max=0.1, max_fault_log=50)
    done: list[str] = []
    with anyio.fail_after(LIMIT):
        async with LocalCluster(N, tmp_path / "keys", settings=settings) as cluster:
            reports: dict = {}

            async def honest() -> None:
                reports.update(await cluster.run(dict(enumerate(nodes)), linger=2.0))

            async with anyio.create_task_group() as tg:
                tg.start_soon(honest)
                tg.start_soon(_authenticated_attacks, cluster, done)
                tg.start_soon(_unauthenticated_attacks, cluster, tmp_path, done)
    assert sorted(done) == sorted(["oversized", "garbage-frames", "impersonation-hello",
                                   "impersonation-data", "bad-seq", "flood", "unauthenticated"])
    assert all(p.done for p in nodes)
    check_bounds(nodes, N, F, ROUNDS)
    for rep in reports.values():
        assert all(flt.sender == HOSTILE for flt in rep.faults), rep.faults
        assert len(rep.faults) <= 2 * 50 + 1000  # bounded logs (network + runtime)
    c0 = reports[0].fault_counts
    assert c0.get("oversized") == 1
    assert c0.get("impersonation") == 2
    assert c0.get("bad-seq") == 1
    assert c0.get("malformed", 0) >= len(["6 bodies"]) + 5  # each bad body, then the frame
    assert reports[1].fault_counts  # the flood of far-future rounds: protocol faults
    t1 = reports[1].transport
    assert t1["rejected"] >= 5, t1  # garbage, stall, foreign CA, unpinned, no certificate
    assert t1["rejected_reasons"].get("auth", 0) >= 1  # the unpinned certificate


async def test_peer_that_never_reads_is_cut_off(tmp_path, anyio_backend):
    """Node 3 accepts, welcomes and never reads nor acknowledges: the honest senders' queues
    to it stay below the cap and the peer is cut off (overflow or stall), not waited for."""
    nodes = _honest(d=4000)
    cap = 96 * 1024
    settings = TransportSettings(max_queue_bytes=cap, high_water=48 * 1024,
                                 stall_timeout=0.5, backoff_max=0.05)
    with anyio.fail_after(LIMIT):
        async with LocalCluster(N, tmp_path, settings=settings) as cluster:
            await cluster.close_listener(HOSTILE)
            e = cluster.config.node(HOSTILE)
            ctx = server_context(cluster.config.ca.read_bytes(), e.cert, e.key)
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1",
                                                       local_port=cluster.port(HOSTILE))
            peak = [0]

            async def sink(raw) -> None:
                s = await TLSStream.wrap(raw, server_side=True, ssl_context=ctx,
                                         standard_compatible=False)
                await s.receive()  # the HELLO
                await s.send(_env(WELCOME, HOSTILE, 0))
                await anyio.sleep_forever()  # never read, never acknowledge

            async def watch() -> None:
                while True:
                    peak[0] = max(peak[0], *(net.outboxes[HOSTILE].queued_bytes
                                             for net in cluster.networks[:3]))
                    await anyio.sleep(0.005)

            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, sink)
                tg.start_soon(watch)
                reports = await cluster.run(dict(enumerate(nodes)), linger=0.3)
                tg.cancel_scope.cancel()
    assert all(p.done for p in nodes)
    check_bounds(nodes, N, F, ROUNDS)
    assert peak[0] <= cap
    cut = [net.outboxes[HOSTILE].cut for net in cluster.networks[:3]]
    assert set(cut) <= {"send-queue-overflow", "stalled"} and any(cut), cut
    for rep in reports.values():
        assert all(flt.sender == HOSTILE for flt in rep.faults)
    assert ACK != DATA  # the frame kinds are distinct tags
