"""``--quick`` of the benchmarks: it runs, names its command relative to the repository, prints
the machine's load, and never writes BENCHMARKS.md (BENCHMARKS.md's tested blocks run every
benchmark's ``--quick``: tests/docs/test_documented_commands.py)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _checkout(tmp_path: Path) -> Path:
    """benchmarks/ and BENCHMARKS.md in a scratch folder (the libraries come from ROOT)."""
    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "BENCHMARKS.md", tmp_path / "BENCHMARKS.md")
    return tmp_path


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_quick_prints_the_module_command_and_the_load_and_writes_nothing(tmp_path) -> None:
    cwd = _checkout(tmp_path)
    before = _digest(cwd / "BENCHMARKS.md")
    for args in (["-m", "benchmarks.bench_broadcast", "--quick"],
                 ["-m", "jungle_cli.main", "bench", "broadcast", "--quick"]):
        p = _run(cwd, *args)
        assert p.returncode == 0, p.stderr
        assert "Command: `python -m benchmarks.bench_broadcast --quick`" in p.stdout
        assert str(cwd) not in p.stdout  # no machine-local path in the report
        avg = r"\d+\.\d\d, \d+\.\d\d, \d+\.\d\d"
        assert re.search(rf"{os.cpu_count()} logical cores, .*; load average \(1, 5, 15 min\) "
                         rf"{avg} at the start, {avg} at the end", p.stdout)
        assert "(--quick: BENCHMARKS.md not written)" in p.stdout
        assert "| 16 | 5 |" in p.stdout and "| 31 |" not in p.stdout  # tiny sizes only
    assert _digest(cwd / "BENCHMARKS.md") == before


def test_quick_refuses_the_long_accuracy_grids(tmp_path) -> None:
    p = _run(_checkout(tmp_path), "-m", "benchmarks.bench_learning", "--quick", "--accuracy")
    assert p.returncode == 2
    assert "drop --quick to run --accuracy" in p.stderr


def test_an_overloaded_machine_does_not_write_unless_told(tmp_path, monkeypatch, capsys) -> None:
    from benchmarks import report

    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# Benchmarks\n")
    monkeypatch.setattr(report, "BENCHMARKS_MD", target)
    assert not report.overloaded(load=0.5, cores=2) and report.overloaded(load=2.5, cores=2)
    monkeypatch.setattr(report, "START_LOAD_1MIN", (os.cpu_count() or 1) + 0.5)
    report.finish("x", "body", quick=False, no_write=False)
    assert "not written: the 1-minute load was" in capsys.readouterr().out
    assert target.read_text() == "# Benchmarks\n"
    report.finish("x", "body", quick=False, no_write=False, allow_load=True)
    assert "<!-- bench:x -->\nbody\n<!-- /bench:x -->" in target.read_text()
    assert "(flags: " in report.machine()
