"""torchrun rendezvous through a torch.distributed TCPStore on loopback, then agreement over
mutual TLS pinned to the fingerprints the ranks published (asyncio and trio)."""

from __future__ import annotations

import threading
from datetime import timedelta

import anyio
import numpy as np
import pytest

from agreement import AveragingAgreement
from netsim.net.node import run_node
from netsim.net.rendezvous import torchrun_cluster

from .harness import LIMIT, check_bounds

torch_dist = pytest.importorskip("torch.distributed")
pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _rendezvous(tmp_path, n: int) -> list:
    # the agent's store, as torchrun's elastic agent hosts it (ranks connect as clients)
    master = torch_dist.TCPStore("127.0.0.1", 0, n + 1, is_master=True,
                                 timeout=timedelta(seconds=20), wait_for_workers=False)
    env = {"WORLD_SIZE": str(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(master.port),
           "TORCHELASTIC_USE_AGENT_STORE": "True"}
    out: list = [None] * n
    errors: list = []

    def rank(i: int) -> None:
        try:
            out[i] = torchrun_cluster(tmp_path / f"rank{i}", env={**env, "RANK": str(i)},
                                      session="t", timeout=20)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=rank, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return out


async def test_torchrun_rendezvous_then_agreement(tmp_path, anyio_backend):
    n, f, rounds = 4, 1, 2
    got = _rendezvous(tmp_path, n)
    cfgs = [c for c, _ in got]
    assert [r for _, r in got] == list(range(n))
    # every rank sees the same cluster: addresses and pinned fingerprints
    assert len({tuple((e.host, e.port, e.fingerprint) for e in c.nodes) for c in cfgs}) == 1
    assert all(c.f == 1 and c.n == n for c in cfgs)
    x = np.random.default_rng(4).standard_normal((n, 6))
    nodes = [AveragingAgreement(i, n, f, x[i], rounds=rounds) for i in range(n)]
    reports: dict = {}

    async def one(i: int) -> None:
        reports[i] = await run_node(cfgs[i], i, nodes[i], linger=1.0, timeout=LIMIT)

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    assert all(p.done for p in nodes)
    check_bounds(nodes, n, f, rounds)
    assert all(r.fault_counts == {} and r.transport["rejected"] == 0 for r in reports.values())


def test_torchrun_environment_errors(tmp_path):
    with pytest.raises(ValueError, match="RANK"):
        torchrun_cluster(tmp_path, env={"WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="not in range"):
        torchrun_cluster(tmp_path, env={"RANK": "5", "WORLD_SIZE": "2",
                                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})
