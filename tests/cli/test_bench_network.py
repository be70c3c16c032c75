"""The network benchmark's quick form, its fair baseline (benchmarks.exchange) and its profile
summary (benchmarks.profile): what they print and what they measure, at tiny sizes (no
wall-clock assertion: only the table's shape, the bytes moved and the classification)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import exchange
from benchmarks import profile as prof

ROOT = Path(__file__).resolve().parents[2]


def test_quick_prints_both_transports_beside_both_exchanges_and_writes_nothing(tmp_path):
    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "BENCHMARKS.md", tmp_path / "BENCHMARKS.md")
    before = hashlib.sha256((tmp_path / "BENCHMARKS.md").read_bytes()).hexdigest()
    p = subprocess.run([sys.executable, "-m", "benchmarks.bench_network", "--quick"],
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    header = next(line for line in out.splitlines() if line.startswith("| transport |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert "vs same-transport exchange" in cols and "vs the other exchange" in cols
    same, other = cols.index("vs same-transport exchange"), cols.index("vs the other exchange")
    for name in ("mutual TLS 1.3", "plaintext (insecure)"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == len(cols)
        assert re.fullmatch(r"\*\*\d+(\.\d+)?x\*\*", cells[same])
        assert re.fullmatch(r"\d+(\.\d+)?x", cells[other])
    assert "single loopback socket pair" in out  # the former baseline, labelled
    assert "n = 4 processes, f = 1, d = 10000" in out
    assert "(--quick: BENCHMARKS.md not written)" in out
    assert hashlib.sha256((tmp_path / "BENCHMARKS.md").read_bytes()).hexdigest() == before


@pytest.mark.parametrize("tls", [True, False])
def test_the_exchange_moves_every_vector_to_every_peer(tls):
    res = exchange.run(3, 1000, 3, tls=tls)  # each worker checks the vectors it received
    assert sorted(res.round_time) == [0, 1, 2] and sorted(res.cpu_per_round) == [0, 1, 2]
    assert all(t > 0 for t in res.round_time.values())
    assert all(c > 0 for c in res.cpu_per_round.values())
    assert res.payload == 3 * 2 * 4 * 1000 and res.tls is tls
    assert res.cpu_floor == pytest.approx(sum(res.cpu_per_round.values()) / os.cpu_count())


def test_the_exchange_refuses_sizes_it_cannot_time():
    with pytest.raises(ValueError, match="--rounds must be >= 2"):
        exchange.run(3, 10, 1, tls=False)
    with pytest.raises(ValueError, match="--n must be >= 2"):
        exchange.run(1, 10, 3, tls=False)


def test_the_summary_charges_each_sample_to_its_innermost_category(tmp_path):
    raw = "\n".join([
        # a memmove (unsymbolised libc) inside the frame decoder: decoding
        "main (netsim/net/runtime.py:1);FrameDecoder.feed (netsim/codec.py:287);"
        "0x7f00 (libc.so.6) 30",
        # a finiteness check called by the broadcast: a check, not protocol logic
        "ReliableBroadcast.problem (broadcast/bracha.py:169);"
        "vector_problem (netsim/messages.py:105) 20",
        # TLS inside the transport; the socket write inside TLS: socket
        "Network._send_big (netsim/net/transport.py:382);TLSStream.send "
        "(anyio/streams/tls.py:275);SSLObject.write (ssl.py:930) 15",
        "TLSStream._flush_write_bio (anyio/streams/tls.py:187);"
        "SocketStream.send (anyio/_backends/_asyncio.py:1474) 10",
        "AsyncIOBackend.run (anyio/_backends/_asyncio.py:2621);Runner.run "
        "(asyncio/runners.py:118) 5",
        # start-up (an import, even of ssl) and the output files: left out
        "<module> (agreement/__main__.py:5);_find_and_load (<frozen importlib._bootstrap>:1176);"
        "<module> (ssl.py:477) 40",
        "watch (netsim/net/node.py:212);on_decided (netsim/cli.py:275);stack "
        "(numpy/_core/shape_base.py:465) 7",
        " 3",
    ])
    (tmp_path / "raw.txt").write_text(raw)
    s = prof.summarise(prof.read_raw(tmp_path / "raw.txt"), rate=200)
    assert s.busy == 80
    assert dict(s.categories) == {
        "frame decoding (codec)": 30, "checks (isfinite / norms)": 20, "TLS (ssl)": 15,
        "socket send/recv": 10,
        "event loop (asyncio/uvloop/anyio, with uvloop's own socket reads)": 5,
    }
    assert dict(s.excluded) == {prof.STARTUP.name: 40,
                                "after the last round (history and output files)": 7,
                                prof.NO_STACK: 3}
    assert s.leaves["libc.so.6 in FrameDecoder.feed (netsim/codec.py)"] == 30
    md = s.markdown(3)
    assert "| frame decoding (codec) | 30 | 37.5% |" in md and "top 3 leaf functions" in md


def test_py_spy_profiles_a_running_process_when_it_can_attach(tmp_path):
    why = prof.unavailable(native=False)
    if why is not None:
        pytest.skip(why)
    code = ("import time, numpy as np\na = np.random.rand(200_000)\nt = time.time()\n"
            "while time.time() - t < 2: np.sort(a)\n")
    child = subprocess.Popen([sys.executable, "-c", code])
    out = tmp_path / "raw.txt"
    rec = prof.record(child.pid, out, native=False, rate=100)
    child.wait(timeout=60)
    prof.stop(rec)
    s = prof.summarise(prof.read_raw(out), rate=100)
    assert s.busy > 0 and s.leaves  # the sort loop's samples, charged to some frame
