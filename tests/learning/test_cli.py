"""``python -m learning``: train --json, compare/demo outputs, errors."""

from __future__ import annotations

import json

from learning.cli import main


def test_train_json(capsys, tmp_path):
    png = tmp_path / "curve.png"
    rc = main(["train", "--steps", "12", "--hidden", "8", "--attack", "alie", "--json",
               "--eval-every", "6", "--plot", str(png), "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("accuracy_mean", "accuracy_min", "diameter", "steps", "attack", "protocol",
                "n", "f", "seed", "messages", "bytes", "wall_time", "loss"):
        assert key in out
    assert out["steps"] == 12 and out["attack"] == "alie" and out["n"] == 10
    assert 0 <= out["accuracy_min"] <= out["accuracy_mean"] <= 1
    assert png.stat().st_size > 0


def test_train_text_and_attack_param(capsys):
    rc = main(["train", "--steps", "5", "--hidden", "8", "--attack", "alie", "--attack-param",
               "z=1.5", "--method", "server", "--protocol", "median", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "honest accuracy mean" in out and "server (median)" in out


def test_errors_exit_2(capsys):
    assert main(["train", "--steps", "2", "--protocol", "mda", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "κ(10,3)" in err and "smallest n for f=3 is 14" in err and "--unsafe" in err
    assert "unsafe=True" not in err and err.startswith("error: ") and err.count("\n") == 1
    # no proven contraction: the flags to use instead, not the Python keywords
    assert main(["train", "--steps", "2", "--protocol", "median", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--rounds log" in err and "--rounds INTEGER" in err and 'rounds="' not in err
    assert main(["train", "--steps", "2", "--rounds", "often", "--no-progress"]) == 2
    assert "--rounds" in capsys.readouterr().err
    assert main(["train", "--steps", "2", "--attack", "ipm", "--attack-param", "z=1",
                 "--no-progress"]) == 2


def test_acceptance_gradient_rounds_are_proven(capsys):
    """The issue's acceptance command: the last of the 64 gradient agreements runs the
    proven count, 19 rounds (N_64 = 6; 3·(3/4)^19 <= 2^-6 < 3·(3/4)^18)."""
    from agreement.constants import rounds_for_target

    rc = main(["train", "--dataset", "digits", "--n", "10", "--f", "3", "--attack", "alie",
               "--steps", "64", "--json", "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    g = out["gradient_rounds"]
    assert len(g) == 64 and out["rounds"] == "proven"
    assert g[-1] == rounds_for_target("trimmed-mean", 10, 3, 4810, 2.0**-6, 1.0) == 19
    assert out["agreement_rounds"] == sum(g) + 64


def test_train_log_rounds_and_mda_without_unsafe(capsys):
    rc = main(["train", "--steps", "4", "--hidden", "4", "--rounds", "log", "--json",
               "--protocol", "median", "--no-progress"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["gradient_rounds"] == [1, 1, 2, 2]
    rc = main(["train", "--steps", "2", "--hidden", "4", "--n", "10", "--f", "2",
               "--protocol", "mda", "--json", "--no-progress"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["gradient_rounds"] == [5, 5]


def test_help_states_the_schedules(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "'proven' (default" in out and "NOT covered by the theorem's guarantee" in out
    assert "mda (κ(n,f) < 1: n >= 5 at f=1, 10 at f=2, 14 at f=3" in out


def test_compare_writes_table_json_plot(capsys, tmp_path):
    rc = main(["compare", "--steps", "6", "--hidden", "8", "--eval-every", "6",
               "--attacks", "none,sign-flip", "--methods",
               "dsgd,server:median,learn:trimmed-mean,learn:median", "--out", str(tmp_path)])
    assert rc == 0
    md = (tmp_path / "compare.md").read_text()
    assert "| sign-flip |" in md and "server:median" in md and "learn:trimmed-mean |" in md
    # learn:median has no proven count: it runs log rounds, and its column says so
    assert "learn:median (rounds log)" in md
    rows = json.loads((tmp_path / "compare.json").read_text())
    assert len(rows) == 8 and {r["method"] for r in rows} == {
        "dsgd", "server:median", "learn:trimmed-mean", "learn:median"}
    by = {r["method"]: r for r in rows}
    assert by["learn:median"]["rounds"] == "log" and by["learn:trimmed-mean"]["rounds"] == \
        "proven"
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_demo_and_sweep_small(tmp_path):
    assert main(["demo", "--steps", "4", "--hidden", "8", "--attacks", "none,alie",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "demo.png").exists() and (tmp_path / "demo.md").exists()
    assert main(["sweep", "--steps", "4", "--hidden", "8", "--zs", "1", "--alphas", "1,100",
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert len(rows) == 4 and {r["alpha"] for r in rows} == {1.0, 100.0}
