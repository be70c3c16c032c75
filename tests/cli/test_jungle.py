"""The ``jungle`` console script: every command dispatches to its package's command line."""

from __future__ import annotations

import json

import pytest

from jungle_cli import bench
from jungle_cli.main import COMMANDS, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in COMMANDS:
        assert f"  {cmd}" in out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


def test_simulate_dispatches(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["simulate", "--n", "4", "--f", "1", "--dim", "3", "--rounds", "3", "--seed",
               "1", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["n"] == 4 and len(rep["diameters"]) == 4


@pytest.mark.parametrize("cmd,home", [
    ("broadcast", "broadcast.cli"), ("simulate", "agreement.cli"), ("node", "agreement.cli"),
    ("launch", "agreement.cli"), ("keys", "netsim.cli"),
])
def test_each_command_has_one_home(cmd: str, home: str) -> None:
    assert COMMANDS[cmd][0] == home


def test_broadcast_dispatches(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["broadcast", "--n", "4", "--f", "1", "--dim", "2", "--strategy", "equivocate",
               "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["command"] == "broadcast"
    assert rep["agreement"] is True and rep["totality"] is True


def test_bench_lists_and_refuses_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in bench.BENCHES)
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
