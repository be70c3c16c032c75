"""``torchrun --nproc-per-node 4 train.py``: one node per process, peers found through
torchrun's TCPStore, LEARN's agreement over mutual TLS (slow: four processes start torch)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "collaborative_digits.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_torchrun_four_processes_agree(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "4",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           str(EXAMPLE), "--torchrun", str(tmp_path / "keys"), "--steps", "10"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    accs = dict(re.findall(r"node (\d)(?: \(Byzantine\))?: accuracy ([0-9.]+)", out.stdout))
    assert sorted(accs) == ["0", "1", "2", "3"], out.stdout
    honest = {accs[i] for i in ("1", "2", "3")}
    assert len(honest) == 1, accs  # the honest models agree (same parameters, same accuracy)
    assert all((tmp_path / "keys" / f"cluster-{i}.toml").exists() for i in range(4))
