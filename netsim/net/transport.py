"""Authenticated, reliable TCP channels on anyio (asyncio or trio).

Topology: every node listens on one TCP port and *dials* every other node. The connection
that node ``i`` dials to node ``j`` carries ``i``'s messages to ``j`` and ``j``'s
acknowledgements back; ``j``'s messages to ``i`` use the connection ``j`` dials. So each
direction of each pair is one channel with one owner of its send queue, and reconnection
never races.

Frames are the codec's length-prefixed frames (:func:`netsim.codec.frame`, read with a
:class:`~netsim.codec.FrameDecoder` whose maximum is the largest message plus this header)
whose body starts with an envelope ``kind u8 | sender u16 | seq u64`` (little-endian)::

    HELLO    dialer -> listener   seq = the listener's id (whom the dialer meant to reach)
    WELCOME  listener -> dialer   seq = next sequence number it expects from the dialer
    DATA     dialer -> listener   seq = this message's number on the channel; body = a codec
                                  message (or, from a Byzantine node, anything)
    DONE     dialer -> listener   seq = as DATA; "my output is final" (ordered, reliable)
    ACK      listener -> dialer   seq = next expected: every seq below it was delivered

Copies and writes: a DATA body reaches ``deliver`` as a read-only ``memoryview`` of the
frame the :class:`~netsim.codec.FrameDecoder` filled (a large frame has a buffer of its own,
so the decoded vector is a view of it: no copy between the socket's chunk and the rule); a
large body is written after its header in zero-copy slices of 256 KiB (CPython's selector
transport otherwise copies and memmoves the unsent rest of a 4 MB write after each send, and
TLS would encrypt all of it into one buffer first); consecutive small frames of a channel's
queue (ECHO, READY, FETCH, DONE...) are coalesced into one write of up to 64 KiB.

Reliability (per channel ``i -> j``): messages get consecutive numbers and stay in ``i``'s
send queue until acknowledged. After a broken connection ``i`` reconnects with exponential
backoff (``backoff_min * 2^k``, capped at ``backoff_max``); the listener's WELCOME says
which number it expects next, and ``i`` resends from there. The listener delivers number
``s`` only when it expects ``s`` (it keeps its counter across connections), drops numbers
below (resends of delivered messages: not faults) and treats numbers above as a fault (a gap
is impossible from an honest peer over TCP). Hence, while the peer stays reachable, every
message is delivered exactly once and in order.

Memory is bounded against hostile peers:
- receive: at most one frame of ``max_frame`` bytes buffered per connection; the next frame
  is read only after the protocol has handled the previous one (TCP flow control throttles a
  flooding peer); at most ``max_pending_handshakes`` unauthenticated connections, each with a
  ``handshake_timeout``; one live connection per authenticated peer (a new one replaces it);
- send: the unacknowledged bytes queued for a peer are capped at ``max_queue_bytes``; past
  it the peer is cut off (a fault ``send-queue-overflow``). Backpressure: before the
  runtime handles the next incoming message it waits while some peer's queue is above
  ``high_water``; a peer that stays above it for ``stall_timeout`` seconds is cut off (a
  fault ``stalled``), so a peer that never reads can neither grow our memory without bound
  nor block us forever;
- the fault log (:class:`netsim.dispatch.FaultLog`) keeps counts by kind and the first
  ``max_fault_log`` faults.

Authentication: with TLS (the default) each side verifies the other's certificate against
the cluster CA and the pinned fingerprint, and takes the peer's id from it
(:mod:`netsim.net.tls`); a frame whose envelope claims another sender is a fault
(``impersonation``) and closes the connection. Without TLS (only through
``--insecure-loopback-plaintext``, loopback only) the id in HELLO is believed: nothing is
authenticated.
"""

from __future__ import annotations

import ssl
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import ByteStream, SocketAttribute, TaskGroup
from anyio.streams.tls import TLSAttribute, TLSStream

from ..codec import DEFAULT_MAX_FRAME, VECTOR_OVERHEAD, DecodeError, FrameDecoder, frame
from ..dispatch import FaultLog, KeepsFaults
from ..protocol import Fault
from .tls import AuthError, authenticate

HELLO, WELCOME, DATA, DONE, ACK = 1, 2, 3, 4, 5
FRAME_NAMES = {HELLO: "hello", WELCOME: "welcome", DATA: "data", DONE: "done", ACK: "ack"}
ENVELOPE = struct.Struct("<BHQ")
ENVELOPE_SIZE = ENVELOPE.size
_LENGTH = struct.Struct("<I")  # the length prefix of :func:`netsim.codec.frame`
LENGTH_SIZE = _LENGTH.size
ALIGN_AT = ENVELOPE_SIZE + VECTOR_OVERHEAD
"""Where a DATA frame's vector coordinates start in its body: the receive decoder aligns it."""
_BIG = 1 << 16  # bodies from this size are sent after their header, not copied into it
_SLICE = 1 << 18  # a large body is written in slices of this many bytes
_BATCH = 1 << 16  # small frames are coalesced into writes of about this many bytes

_IO_ERRORS = (
    OSError,
    ssl.SSLError,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    TimeoutError,
    DecodeError,
    AuthError,
)


class ChannelError(Exception):
    """A connection-level protocol violation (the connection is closed, a fault recorded)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class TransportSettings:
    """Limits and timings of the transport (see the module docstring)."""

    max_message: int = DEFAULT_MAX_FRAME
    max_queue_bytes: int = 1 << 30
    high_water: int = 1 << 27
    stall_timeout: float = 60.0
    handshake_timeout: float = 10.0
    connect_timeout: float = 10.0
    backoff_min: float = 0.02
    backoff_max: float = 1.0
    max_pending_handshakes: int = 64
    recv_chunk: int = 1 << 20
    max_fault_log: int = 1000

    @property
    def max_frame(self) -> int:
        return self.max_message + ENVELOPE_SIZE


@dataclass
class TransportStats:
    """Counters of one node's transport (bytes include length prefixes and envelopes)."""

    wire_bytes_sent: int = 0
    wire_bytes_received: int = 0
    frames_sent: int = 0
    data_frames_sent: int = 0
    resent_frames: int = 0
    duplicates_dropped: int = 0
    connections: int = 0
    reconnects: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["rejected_reasons"] = dict(sorted(self.rejected_reasons.items()))
        return d


class Outbox:
    """The send queue of one channel: unacknowledged ``(kind, payload)`` items numbered
    ``acked .. next_seq - 1`` (``items[k]`` has number ``acked + k``)."""

    def __init__(self, peer: int) -> None:
        self.peer = peer
        self.items: deque[tuple[int, bytes]] = deque()
        self.acked = 0
        self.next_seq = 0
        self.queued_bytes = 0
        self.cut: str | None = None
        self.above_since: float | None = None
        self.sent_max = 0  # one past the highest number ever written (for resend counts)
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def changed(self) -> None:
        await self._changed.wait()

    def put(self, kind: int, payload: bytes) -> int:
        self.items.append((kind, payload))
        self.queued_bytes += len(payload) + ENVELOPE_SIZE + LENGTH_SIZE
        self.next_seq += 1
        self._notify()
        return self.next_seq - 1

    def get(self, seq: int) -> tuple[int, bytes]:
        return self.items[seq - self.acked]

    def ack(self, upto: int) -> bool:
        """Drop items below ``upto``; ``False`` if ``upto`` is beyond what was queued."""
        if upto > self.next_seq:
            return False
        while self.acked < upto:
            _, payload = self.items.popleft()
            self.queued_bytes -= len(payload) + ENVELOPE_SIZE + LENGTH_SIZE
            self.acked += 1
        self._notify()
        return True

    @property
    def flushed(self) -> bool:
        return self.cut is not None or self.acked == self.next_seq

    def drop_all(self, reason: str) -> None:
        self.cut = reason
        self.items.clear()
        self.queued_bytes = 0
        self.acked = self.next_seq
        self._notify()


Deliver = Callable[[int, bytes | memoryview], Awaitable[None]]
"""``deliver(peer, body)``: one DATA body from an authenticated peer, in channel order: a
read-only ``memoryview`` of the received frame (no copy; :func:`netsim.codec.decode` decodes
it in place, and ``bytes(body)`` copies it)."""


class Network(KeepsFaults):
    """One node's endpoint: a listener, a dialer per peer, reliable authenticated channels.

    Parameters
    ----------
    node_id, n:
        This node and the cluster size.
    addresses:
        ``{peer: (host, port)}`` for every other node (may be completed after
        :meth:`listen`, before :meth:`run`).
    tls:
        ``(server_context, client_context)`` from :meth:`netsim.net.cluster.ClusterConfig.
        ssl_contexts`, with ``fingerprints`` the pinned certificate fingerprints; ``None``
        means plaintext without any authentication (only for the explicit
        ``--insecure-loopback-plaintext`` flag).
    """

    def __init__(
        self,
        node_id: int,
        n: int,
        addresses: dict[int, tuple[str, int]] | None = None,
        *,
        tls: tuple[ssl.SSLContext, ssl.SSLContext] | None,
        fingerprints: dict[int, str] | None = None,
        settings: TransportSettings | None = None,
    ) -> None:
        if tls is not None and not fingerprints:
            raise ValueError("TLS needs the pinned fingerprints of the cluster")
        self.node_id, self.n = node_id, n
        self.addresses = dict(addresses or {})
        self.tls = tls
        self.fingerprints = dict(fingerprints or {})
        self.settings = settings or TransportSettings()
        self.peers = tuple(i for i in range(n) if i != node_id)
        self.outboxes = {p: Outbox(p) for p in self.peers}
        self.expected = {p: 0 for p in self.peers}  # next DATA number expected from p
        self.peer_done: set[int] = set()
        self.stats = TransportStats()
        self.fault_log = FaultLog(self.settings.max_fault_log)
        self._listener: Any = None
        self._inbound_scope: dict[int, anyio.CancelScope] = {}
        self._inbound_lock = {p: anyio.Lock() for p in self.peers}
        self._conn_scopes: set[anyio.CancelScope] = set()
        self._pending_handshakes = 0
        self._drained = anyio.Event()
        self._deliver: Deliver | None = None
        self.on_peer_done: Callable[[int], None] | None = None
        self.port: int | None = None

    # -- faults ---------------------------------------------------------------------------
    def fault(self, peer: int, kind: str, detail: str = "") -> None:
        """Record a fault against ``peer`` in :attr:`fault_log` (:class:`netsim.dispatch.
        FaultLog`: every fault counted by kind, the first ``max_fault_log`` kept)."""
        self.fault_log.record(self.node_id, Fault(peer, kind, detail))


    def _reject(self, reason: str) -> None:
        self.stats.rejected += 1
        r = self.stats.rejected_reasons
        r[reason] = r.get(reason, 0) + 1

    # -- sending --------------------------------------------------------------------------
    def send(self, peer: int, payload: bytes) -> bool:
        """Queue one DATA body for ``peer`` (never blocks). ``False`` if the peer is cut off
        (now or before): past ``max_queue_bytes`` of unacknowledged data it is cut off."""
        ob = self.outboxes[peer]
        if ob.cut is not None:
            return False
        size = len(payload) + ENVELOPE_SIZE + LENGTH_SIZE
        if ob.queued_bytes + size > self.settings.max_queue_bytes:
            self._cut(ob, "send-queue-overflow",
                      f"{ob.queued_bytes + size} > {self.settings.max_queue_bytes} bytes unacked")
            return False
        ob.put(DATA, payload)
        self._watermark(ob)
        return True

    def announce_done(self) -> None:
        """Tell every peer that this node's output is final (a DONE after all data)."""
        for ob in self.outboxes.values():
            if ob.cut is None:
                ob.put(DONE, b"")

    def _cut(self, ob: Outbox, kind: str, detail: str) -> None:
        self.fault(ob.peer, kind, detail)
        ob.drop_all(kind)
        self._drained.set()
        self._drained = anyio.Event()

    def _watermark(self, ob: Outbox) -> None:
        if ob.queued_bytes > self.settings.high_water:
            if ob.above_since is None:
                ob.above_since = anyio.current_time()
        elif ob.above_since is not None:
            ob.above_since = None
            self._drained.set()
            self._drained = anyio.Event()

    async def backpressure(self) -> None:
        """Wait while a live peer's queue is above ``high_water``; cut off peers that stay
        above it for ``stall_timeout`` seconds."""
        s = self.settings
        while True:
            over = [ob for ob in self.outboxes.values()
                    if ob.cut is None and ob.above_since is not None]
            if not over:
                return
            now = anyio.current_time()
            for ob in over:
                if now - ob.above_since >= s.stall_timeout:  # type: ignore[operator]
                    self._cut(ob, "stalled", f"queue above {s.high_water} bytes for "
                              f"{s.stall_timeout} s")
            live = [ob for ob in over if ob.cut is None]
            if not live:
                return
            wait = min(ob.above_since + s.stall_timeout for ob in live) - now  # type: ignore[operator]
            with anyio.move_on_after(max(wait, 0.0)):
                await self._drained.wait()

    @property
    def flushed(self) -> bool:
        """Every queued message acknowledged (or its peer cut off)."""
        return all(ob.flushed for ob in self.outboxes.values())

    @property
    def queued_bytes(self) -> int:
        return sum(ob.queued_bytes for ob in self.outboxes.values())

    # -- connections ----------------------------------------------------------------------
    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind the listening socket; return the port (useful with ``port=0``)."""
        self._listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        self.port = int(self._listener.extra(SocketAttribute.local_port))
        return self.port

    async def run(self, deliver: Deliver, task_group: TaskGroup | None = None) -> None:
        """Serve and dial until cancelled. ``deliver`` gets each DATA body in order."""
        if self._listener is None:
            raise RuntimeError("call listen() before run()")
        missing = [p for p in self.peers if p not in self.addresses]
        if missing:
            raise ValueError(f"no address for peers {missing}")
        self._deliver = deliver
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._serve)
            for p in self.peers:
                tg.start_soon(self._dial_loop, p)

    def drop_connections(self) -> int:
        """Abort every live connection, both directions (a fault-injection hook for tests
        and chaos runs: reliability must hide it). Returns how many were aborted."""
        k = len(self._conn_scopes)
        for sc in list(self._conn_scopes):
            sc.cancel()
        return k

    async def _send_frame(self, stream: ByteStream, kind: int, seq: int,
                          payload: bytes = b"") -> None:
        head = ENVELOPE.pack(kind, self.node_id, seq)
        if len(payload) < _BIG:
            data = frame(head + payload)
            await stream.send(data)
            size = len(data)
        else:  # the same frame (codec.frame's u32 length prefix), without copying the body
            await stream.send(_LENGTH.pack(len(head) + len(payload)) + head)
            await self._send_big(stream, payload)
            size = LENGTH_SIZE + len(head) + len(payload)
        self.stats.wire_bytes_sent += size
        self.stats.frames_sent += 1

    @staticmethod
    async def _send_big(stream: ByteStream, payload: bytes) -> None:
        """``payload`` in zero-copy slices of :data:`_SLICE` bytes: the event loop's
        transport then never holds (and, in CPython's selector transport, copies and
        memmoves) megabytes at once, and TLS encrypts a slice at a time."""
        view = memoryview(payload)
        for i in range(0, len(view), _SLICE):
            await stream.send(view[i : i + _SLICE])  # type: ignore[arg-type]

    async def _send_batch(self, stream: ByteStream, ob: Outbox, seq: int) -> int:
        """Write queued frames from number ``seq``: consecutive small ones (ECHO, READY,
        DONE, ...) coalesced into one write of at most :data:`_BATCH` bytes, a large one
        alone (:meth:`_send_frame`). Returns the next number to write."""
        kind, payload = ob.get(seq)
        if len(payload) >= _BIG or seq + 1 >= ob.next_seq:
            await self._send_frame(stream, kind, seq, payload)
            self._count_sent(ob, kind, seq)
            return seq + 1
        parts: list[bytes] = []
        size = 0
        while seq < ob.next_seq and size < _BATCH:
            kind, payload = ob.get(seq)
            if len(payload) >= _BIG:
                break
            head = ENVELOPE.pack(kind, self.node_id, seq)
            parts += (_LENGTH.pack(len(head) + len(payload)), head, payload)
            size += LENGTH_SIZE + len(head) + len(payload)
            self.stats.frames_sent += 1
            self._count_sent(ob, kind, seq)
            seq += 1
        await stream.send(b"".join(parts))
        self.stats.wire_bytes_sent += size
        return seq

    def _count_sent(self, ob: Outbox, kind: int, seq: int) -> None:
        if kind == DATA:
            self.stats.data_frames_sent += 1
        if seq < ob.sent_max:
            self.stats.resent_frames += 1
        ob.sent_max = max(ob.sent_max, seq + 1)

    async def _read_frames(self, stream: ByteStream,
                           decoder: FrameDecoder) -> list[bytes | memoryview]:
        chunk = await stream.receive(self.settings.recv_chunk)
        self.stats.wire_bytes_received += len(chunk)
        return decoder.feed(chunk)

    @staticmethod
    def _envelope(body: bytes) -> tuple[int, int, int]:
        if len(body) < ENVELOPE_SIZE:
            raise ChannelError("malformed", f"frame of {len(body)} bytes has no envelope")
        kind, sender, seq = ENVELOPE.unpack_from(body)
        if kind not in FRAME_NAMES:
            raise ChannelError("malformed", f"unknown frame kind {kind}")
        return kind, sender, seq

    async def _dial_loop(self, peer: int) -> None:
        ob = self.outboxes[peer]
        s = self.settings
        failures = 0
        while ob.cut is None:
            host, port = self.addresses[peer]
            with anyio.CancelScope() as scope:
                self._conn_scopes.add(scope)
                try:
                    await self._dial_once(peer, host, port, ob)
                except ChannelError as exc:
                    self.fault(peer, exc.kind, exc.detail)
                except _IO_ERRORS:
                    pass
                finally:
                    self._conn_scopes.discard(scope)
            if ob.cut is not None:
                return
            failures += 1
            self.stats.reconnects += 1
            await anyio.sleep(min(s.backoff_max, s.backoff_min * 2 ** min(failures - 1, 30)))

    async def _dial_once(self, peer: int, host: str, port: int, ob: Outbox) -> None:
        s = self.settings
        with anyio.fail_after(s.connect_timeout + s.handshake_timeout):
            if self.tls is not None:
                stream: ByteStream = await anyio.connect_tcp(
                    host, port, ssl_context=self.tls[1], tls_standard_compatible=False
                )
                der = stream.extra(TLSAttribute.peer_certificate_binary, None)
                try:
                    authenticate(der, self.fingerprints, expected=peer)
                except AuthError:
                    await anyio.aclose_forcefully(stream)
                    raise
            else:
                stream = await anyio.connect_tcp(host, port)
        async with stream:
            decoder = FrameDecoder(ENVELOPE_SIZE + 16)
            with anyio.fail_after(s.handshake_timeout):
                await self._send_frame(stream, HELLO, peer)
                frames: list[bytes] = []
                while not frames:
                    frames = await self._read_frames(stream, decoder)
            kind, sender, start = self._envelope(frames[0])
            if kind != WELCOME or sender != peer:
                raise ChannelError("bad-handshake", f"expected WELCOME from {peer}")
            if not ob.ack(start):
                raise ChannelError("bad-ack", f"peer expects {start} > {ob.next_seq} queued")
            self.stats.connections += 1
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write_loop, stream, ob, start, tg)
                await self._ack_loop(stream, decoder, peer, ob, frames[1:], tg)

    async def _write_loop(self, stream: ByteStream, ob: Outbox, seq: int,
                          tg: TaskGroup) -> None:
        try:
            while True:
                while seq >= ob.next_seq and ob.cut is None:
                    await ob.changed()
                if ob.cut is not None:
                    break
                seq = max(seq, ob.acked)
                if seq >= ob.next_seq:
                    continue
                seq = await self._send_batch(stream, ob, seq)
        except _IO_ERRORS:
            pass
        tg.cancel_scope.cancel()

    async def _ack_loop(self, stream: ByteStream, decoder: FrameDecoder, peer: int,
                        ob: Outbox, pending: list[bytes], tg: TaskGroup) -> None:
        try:
            frames = pending
            while True:
                for body in frames:
                    kind, sender, upto = self._envelope(body)
                    if sender != peer:
                        raise ChannelError("impersonation",
                                           f"frame claims sender {sender} on node {peer}'s "
                                           "connection")
                    if kind != ACK or len(body) != ENVELOPE_SIZE:
                        raise ChannelError("malformed", f"unexpected {FRAME_NAMES[kind]} frame")
                    if not ob.ack(upto):
                        raise ChannelError("bad-ack", f"ack {upto} > {ob.next_seq} sent")
                    self._watermark(ob)
                frames = await self._read_frames(stream, decoder)
        except ChannelError as exc:
            self.fault(peer, exc.kind, exc.detail)
        except DecodeError as exc:
            self.fault(peer, exc.reason, exc.detail)
        except _IO_ERRORS:
            pass
        tg.cancel_scope.cancel()

    async def _serve(self) -> None:
        await self._listener.serve(self._accept)

    async def _accept(self, raw: ByteStream) -> None:
        s = self.settings
        if self._pending_handshakes >= s.max_pending_handshakes:
            self._reject("too-many-handshakes")
            await anyio.aclose_forcefully(raw)
            return
        self._pending_handshakes += 1
        stream: ByteStream = raw
        peer = -1
        # before WELCOME an honest dialer sends exactly one HELLO: a decoder sized for it
        # bounds what an unauthenticated (plaintext) or not yet welcomed peer can make us hold
        decoder = FrameDecoder(ENVELOPE_SIZE)
        frames: list[bytes] = []
        try:
            with anyio.fail_after(s.handshake_timeout):
                if self.tls is not None:
                    stream = await TLSStream.wrap(raw, server_side=True,
                                                  ssl_context=self.tls[0],
                                                  standard_compatible=False)
                    der = stream.extra(TLSAttribute.peer_certificate_binary, None)
                    peer = authenticate(der, self.fingerprints)
                    if peer == self.node_id:
                        raise AuthError("peer presented this node's own id")
                while not frames:
                    frames = await self._read_frames(stream, decoder)
                kind, sender, target = self._envelope(frames[0])
                if kind != HELLO:
                    raise ChannelError("bad-handshake", f"{FRAME_NAMES[kind]} before HELLO")
                if self.tls is None:  # plaintext: the claimed id is all there is
                    if sender not in self.outboxes:
                        raise AuthError(f"unknown node id {sender}")
                    peer = sender
                elif sender != peer:
                    raise ChannelError("impersonation",
                                       f"node {peer} sent HELLO claiming to be {sender}")
                if target != self.node_id:
                    raise ChannelError("bad-handshake", f"HELLO for node {target}")
                if len(frames) > 1 or decoder.buffered:
                    raise ChannelError("bad-handshake", "data before WELCOME")
        except ChannelError as exc:
            self._pending_handshakes -= 1
            if peer >= 0:
                self.fault(peer, exc.kind, exc.detail)
            else:
                self._reject(exc.kind)
            await anyio.aclose_forcefully(stream)
            return
        except AuthError:
            self._pending_handshakes -= 1
            self._reject("auth")
            await anyio.aclose_forcefully(stream)
            return
        except (*_IO_ERRORS, Exception):
            self._pending_handshakes -= 1
            self._reject("handshake")
            await anyio.aclose_forcefully(stream)
            return
        self._pending_handshakes -= 1
        self.stats.accepted += 1
        old = self._inbound_scope.get(peer)
        if old is not None:
            old.cancel()  # one live connection per peer: the new one replaces it
        with anyio.CancelScope() as scope:
            self._inbound_scope[peer] = scope
            self._conn_scopes.add(scope)
            try:
                async with self._inbound_lock[peer]:
                    await self._receive_loop(stream, FrameDecoder(s.max_frame, ALIGN_AT), peer, [])
            except ChannelError as exc:
                self.fault(peer, exc.kind, exc.detail)
            except _IO_ERRORS:
                pass
            finally:
                self._conn_scopes.discard(scope)
                if self._inbound_scope.get(peer) is scope:
                    del self._inbound_scope[peer]
        await anyio.aclose_forcefully(stream)

    async def _receive_loop(self, stream: ByteStream, decoder: FrameDecoder, peer: int,
                            frames: list[bytes]) -> None:
        assert self._deliver is not None
        await self._send_frame(stream, WELCOME, self.expected[peer])
        acked = self.expected[peer]
        while True:
            for body in frames:
                kind, sender, seq = self._envelope(body)
                if sender != peer:
                    raise ChannelError("impersonation",
                                       f"frame claims sender {sender} on node {peer}'s channel")
                if kind not in (DATA, DONE):
                    raise ChannelError("malformed", f"unexpected {FRAME_NAMES[kind]} frame")
                exp = self.expected[peer]
                if seq < exp:
                    self.stats.duplicates_dropped += 1
                    continue
                if seq > exp:
                    raise ChannelError("bad-seq", f"got {seq}, expected {exp}")
                if kind == DONE:
                    if len(body) != ENVELOPE_SIZE:
                        raise ChannelError("malformed", "DONE with a body")
                    self.peer_done.add(peer)
                    if self.on_peer_done is not None:
                        self.on_peer_done(peer)
                else:
                    # deliver may wait (backpressure) before the protocol handles the
                    # message, never after: if cancelled there, the number is not consumed
                    # and the resend after reconnection delivers it
                    await self._deliver(peer, memoryview(body)[ENVELOPE_SIZE:])
                self.expected[peer] = exp + 1
            if self.expected[peer] != acked:
                acked = self.expected[peer]
                await self._send_frame(stream, ACK, acked)
            try:
                frames = await self._read_frames(stream, decoder)
            except DecodeError as exc:
                raise ChannelError("oversized" if exc.reason == "oversized" else "malformed",
                                   exc.detail) from None


def backoff_delays(settings: TransportSettings, k: int) -> list[float]:
    """The first ``k`` reconnection delays (``backoff_min * 2^i`` capped at
    ``backoff_max``), as the dialer uses them."""
    return [min(settings.backoff_max, settings.backoff_min * 2 ** min(i, 30)) for i in range(k)]


__all__ = [
    "ACK",
    "DATA",
    "DONE",
    "ENVELOPE",
    "HELLO",
    "WELCOME",
    "ChannelError",
    "Network",
    "Outbox",
    "TransportSettings",
    "TransportStats",
    "backoff_delays",
]
