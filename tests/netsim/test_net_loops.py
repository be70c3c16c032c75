"""A node runs on uvloop's event loop and on asyncio's own (``--backend asyncio`` picks
uvloop when it is installed, ``asyncio-stdlib`` never does), over TLS and plaintext, with
values large enough to take the transport's large-frame paths (own receive buffers, sliced
writes) and many small frames (coalesced writes)."""

from __future__ import annotations

import asyncio

import anyio
import numpy as np
import pytest

from agreement import AveragingAgreement
from netsim.codec import DIRECT_FRAME
from netsim.net.loopback import run_local_cluster
from netsim.net.runtime import BACKENDS, event_loop, run_event_loop, uvloop_installed

from .harness import LIMIT, check_bounds

pytestmark = pytest.mark.anyio

uvloop = pytest.importorskip("uvloop")


@pytest.fixture(params=[("asyncio", {"use_uvloop": True}), ("asyncio", {"use_uvloop": False})],
                ids=["uvloop", "asyncio-stdlib"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict]:
    return request.param


@pytest.mark.parametrize("plaintext", [False, True], ids=["tls", "plaintext"])
async def test_agreement_on_both_loops_with_large_values(tmp_path, anyio_backend, plaintext):
    on_uvloop = isinstance(asyncio.get_running_loop(), uvloop.Loop)
    assert on_uvloop == anyio_backend[1]["use_uvloop"]
    n, f, rounds, d = 4, 1, 3, 3 * DIRECT_FRAME // 8 + 5  # float64 values of ~3 frames
    x = np.random.default_rng(7).standard_normal((n, d))
    nodes = [AveragingAgreement(i, n, f, x[i], protocol="trimmed-mean", rounds=rounds)
             for i in range(n)]
    with anyio.fail_after(LIMIT):
        reports = await run_local_cluster(nodes, None if plaintext else tmp_path,
                                          plaintext=plaintext, linger=2.0)
    check_bounds(nodes, n, f, rounds)
    for rep in reports:
        assert rep.fault_counts == {}
        assert rep.transport["resent_frames"] == 0
    # the same seeded inputs give the same decisions on either loop and either transport
    # whenever the views agree (they do when every node sees all n values)
    if all(len(v.values) == n for p in nodes for v in p.views.values()):
        ref = [np.asarray(p.decision) for p in nodes]
        assert all(np.array_equal(ref[0], r) for r in ref)


def test_event_loop_choices() -> None:
    assert BACKENDS == ("asyncio", "asyncio-stdlib", "trio")
    assert event_loop("asyncio") == ("asyncio", {"use_uvloop": uvloop_installed()})
    assert event_loop("asyncio-stdlib") == ("asyncio", {"use_uvloop": False})
    assert event_loop("trio") == ("trio", {})
    with pytest.raises(ValueError, match="--backend must be one of asyncio, asyncio-stdlib"):
        event_loop("curio")


def test_run_event_loop_uses_uvloop_when_installed() -> None:
    async def loop_kind() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert uvloop_installed()
    assert run_event_loop(loop_kind, "asyncio") == "uvloop"
    assert run_event_loop(loop_kind, "asyncio-stdlib") == "asyncio"
