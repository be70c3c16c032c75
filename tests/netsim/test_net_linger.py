"""A node started late still finishes: decided nodes serve their peers until every peer has
decided (or the linger expires), over real loopback TCP with mutual TLS, in one process."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from agreement import AveragingAgreement
from netsim.net.cluster import free_ports, generate
from netsim.net.node import DEFAULT_LINGER, run_node

pytestmark = pytest.mark.anyio

LATE = 2.0  # seconds: more than the one second after which peers used to stop serving


@pytest.fixture(params=["asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_a_node_started_late_still_finishes(tmp_path, anyio_backend):
    n, f, rounds, d = 4, 1, 3, 3
    cfg = generate(n, tmp_path, f=f, ports=free_ports(n))
    x = np.random.default_rng(7).standard_normal((n, d))
    protos = [AveragingAgreement(i, n, f, x[i], rounds=rounds) for i in range(n)]
    reports = {}
    late = n - 1
    early_decided = anyio.Event()
    decided = set()

    def on_decided(rt):
        decided.add(rt.node_id)
        if decided >= set(range(late)):
            early_decided.set()

    async def one(i: int) -> None:
        if i == late:
            # the others need only n - f = 3 nodes: they decide without this one, and it
            # starts (binds its port, dials them) only after they have all decided
            with anyio.fail_after(30):
                await early_decided.wait()
            await anyio.sleep(LATE)
        reports[i] = await run_node(cfg, i, protos[i], timeout=60, on_decided=on_decided)

    assert DEFAULT_LINGER > LATE
    with anyio.fail_after(90):  # bounded in time: a regression fails, never hangs
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    assert all(p.done for p in protos)
    assert set(decided) == set(range(n))
    assert reports[late].decided_at is not None
    # the early nodes stopped because every peer (the late one too) had decided, not because
    # their linger ran out
    for i in range(late):
        assert reports[i].peers_done == [j for j in range(n) if j != i]
    # agreement and validity of the late node's output too (trimmed mean: inside the box)
    outs = np.stack([p.decision for p in protos])
    assert (outs >= x.min(0) - 1e-12).all() and (outs <= x.max(0) + 1e-12).all()
