"""``python -m agreement simulate``: the issue's acceptance commands, JSON fields, the bounds of
docs/theory.md beside the measures, --plot, determinism and clear errors."""

from __future__ import annotations

import json

import pytest

from agreement import constants
from agreement.cli import main

ACCEPTANCE = [
    ["--protocol", "trimmed-mean", "--n", "10", "--f", "3", "--dim", "50", "--rounds", "40"],
    ["--protocol", "mda", "--n", "13", "--f", "2", "--dim", "50", "--rounds", "40"],
    ["--protocol", "mve", "--n", "7", "--f", "1", "--dim", "3", "--rounds", "20"],
]
KEYS = {"n", "f", "d", "protocol", "rounds", "seed", "diameters", "averaging_error",
        "averaging_ratio", "messages", "bytes", "faults"}


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["simulate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args", ACCEPTANCE, ids=["trimmed-mean", "mda", "mve"])
@pytest.mark.parametrize("scheduler", ["random", "targeted"])
def test_acceptance_commands(capsys, args: list[str], scheduler: str) -> None:
    rep = simulate(capsys, *args, "--strategy", "split", "--scheduler", scheduler,
                   "--seed", "5")
    assert rep.keys() >= KEYS
    d = rep["diameters"]
    assert len(d) == rep["rounds"] + 1 and d[0] > 0
    assert d[-1] <= 1e-3 * d[0]
    n, f = rep["n"], rep["f"]
    if rep["protocol"] == "trimmed-mean":  # per coordinate, every round
        lam = constants.tm_contraction(n, f)
        assert max(rep["coordinate_contraction"]) <= lam + 1e-9
        assert rep["averaging_ratio"] <= constants.tm_averaging_constant(n, f, rep["d"])
    elif rep["protocol"] == "mda":
        kappa = constants.mda_contraction(n, f)
        assert max(rep["l2_contraction"]) <= kappa + 1e-9
        assert rep["averaging_ratio"] <= constants.mda_averaging_constant(n, f)
    else:  # mve: every round contracts; the constant is proofs' to state
        assert all(x < 1 for x in rep["l2_contraction"] if x)
    assert rep["contraction_within_bound"] in (True, None)
    assert rep["faults_against_honest"] == 0


def test_same_seed_same_report(capsys) -> None:
    args = ["--protocol", "trimmed-mean", "--n", "7", "--f", "2", "--dim", "4", "--rounds",
            "5", "--strategy", "equivocate", "--scheduler", "heavy-tail", "--seed", "3"]
    a, b = simulate(capsys, *args), simulate(capsys, *args)
    for rep in (a, b):
        rep.pop("wall_time")
    assert a == b


def test_round_engine_and_human_output(capsys) -> None:
    rep = simulate(capsys, "--protocol", "trimmed-mean", "--n", "31", "--f", "10", "--dim",
                   "20", "--rounds", "8", "--engine", "round", "--strategy", "omniscient")
    assert rep["engine"] == "round" and rep["contraction_within_bound"] is True
    assert main(["simulate", "--n", "7", "--f", "2", "--dim", "3", "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert "contraction bound: 0.6666" in out and "within: True" in out


def test_plot(capsys, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "diam.png"
    rep = simulate(capsys, "--n", "7", "--f", "2", "--dim", "3", "--rounds", "6", "--plot",
                   str(path))
    assert rep["plot"] == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "mda", "--n", "9", "--f", "2"], "κ(9,2) = 1.0000"),
    (["--protocol", "trimmed-mean", "--n", "9", "--f", "3"], "--unsafe"),
    (["--engine", "round", "--strategy", "equivocate"], "protocol-level strategy"),
])
def test_errors_are_clear(capsys, args: list[str], message: str) -> None:
    assert main(["simulate", *args, "--rounds", "2"]) == 2
    assert message in capsys.readouterr().err


def test_help_lists_everything(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    for word in ("trimmed-mean", "mda", "mve", "omniscient", "equivocate", "targeted",
                 "starve", "clusters"):
        assert word in out
