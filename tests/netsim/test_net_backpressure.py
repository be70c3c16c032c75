"""Send queues: the memory cap, backpressure with a stall cutoff, reconnection backoff.

The timed ones run on trio's MockClock with autojump (pytest-trio): a 60-second stall or
minutes of backoff pass in virtual time, without waiting.
"""

from __future__ import annotations

import socket

import anyio
import pytest
import trio

from netsim.net.transport import Network, TransportSettings, backoff_delays


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _net(**kw: object) -> Network:
    settings = TransportSettings(**kw)  # type: ignore[arg-type]
    return Network(0, 3, {1: ("127.0.0.1", _closed_port()), 2: ("127.0.0.1", _closed_port())},
                   tls=None, settings=settings)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.anyio
async def test_queue_cap_cuts_a_peer_off_and_frees_its_memory(anyio_backend):
    net = _net(max_queue_bytes=10_000, high_water=8_000)
    body = b"x" * 2_900
    assert [net.send(1, body) for _ in range(3)] == [True] * 3
    assert net.outboxes[1].queued_bytes == 3 * (2_900 + 15)
    assert net.send(1, body) is False  # would pass 10 000 unacknowledged bytes
    assert net.outboxes[1].cut == "send-queue-overflow"
    assert net.outboxes[1].queued_bytes == 0 and not net.outboxes[1].items
    assert net.send(1, body) is False  # stays cut, no second fault
    assert net.fault_counts == {"send-queue-overflow": 1}
    assert net.send(2, body) is True  # other peers are unaffected
    net.announce_done()
    assert net.outboxes[2].next_seq == 2 and net.outboxes[1].next_seq == 3


@pytest.mark.trio
async def test_backpressure_waits_then_cuts_a_stalled_peer(autojump_clock):
    net = _net(max_queue_bytes=1 << 20, high_water=4_000, stall_timeout=60.0)
    t0 = trio.current_time()
    await net.backpressure()  # nothing queued: no wait
    assert trio.current_time() == t0
    for _ in range(3):
        net.send(1, b"y" * 2_000)  # above high water for peer 1
    net.send(2, b"z" * 100)
    await net.backpressure()  # waits for the queue to drain, then gives up on peer 1
    assert trio.current_time() - t0 >= 60.0
    assert net.outboxes[1].cut == "stalled" and net.outboxes[2].cut is None
    assert net.fault_counts == {"stalled": 1}


@pytest.mark.trio
async def test_backpressure_returns_when_acknowledged(autojump_clock):
    net = _net(high_water=4_000, stall_timeout=60.0)
    for _ in range(3):
        net.send(1, b"y" * 2_000)
    t0 = trio.current_time()

    async def ack_later() -> None:
        await trio.sleep(5.0)
        ob = net.outboxes[1]
        assert ob.ack(2)
        net._watermark(ob)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ack_later)
        await net.backpressure()
    assert 5.0 <= trio.current_time() - t0 < 60.0
    assert net.outboxes[1].cut is None and net.outboxes[1].acked == 2


@pytest.mark.trio
async def test_reconnection_backoff_bounds_the_dialing_rate(autojump_clock):
    """Two crashed peers for 120 virtual seconds: attempts are spaced by the backoff."""
    s = dict(backoff_min=0.05, backoff_max=2.0)
    net = _net(**s)
    net.send(1, b"a")
    net.send(2, b"b")
    await net.listen("127.0.0.1", 0)

    async def deliver(peer: int, body: bytes) -> None:  # pragma: no cover - nobody sends
        raise AssertionError

    with trio.move_on_after(120.0):
        await net.run(deliver)
    delays = backoff_delays(net.settings, 1000)
    assert delays[:4] == [0.05, 0.1, 0.2, 0.4] and max(delays) == 2.0
    # every failed attempt is followed by its delay: k attempts need sum(delays[:k-1]) <= 120
    most = next(k for k in range(1, 1000) if sum(delays[:k]) > 120.0)
    assert 2 * 10 <= net.stats.reconnects <= 2 * most
    assert net.outboxes[1].queued_bytes > 0 and net.fault_counts == {}  # kept, not dropped
    await net._listener.aclose()
    assert anyio.get_cancelled_exc_class() is not None
