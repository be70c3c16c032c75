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
    assert "6f+1" in capsys.readouterr().err
    assert main(["train", "--steps", "2", "--attack", "ipm", "--attack-param", "z=1",
                 "--no-progress"]) == 2


def test_compare_writes_table_json_plot(capsys, tmp_path):
    rc = main(["compare", "--steps", "6", "--hidden", "8", "--eval-every", "6",
               "--attacks", "none,sign-flip", "--methods", "dsgd,server:median,learn:trimmed-mean",
               "--out", str(tmp_path)])
    assert rc == 0
    md = (tmp_path / "compare.md").read_text()
    assert "| sign-flip |" in md and "server:median" in md and "learn:trimmed-mean" in md
    rows = json.loads((tmp_path / "compare.json").read_text())
    assert len(rows) == 6 and {r["method"] for r in rows} == {
        "dsgd", "server:median", "learn:trimmed-mean"}
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_demo_and_sweep_small(tmp_path):
    assert main(["demo", "--steps", "4", "--hidden", "8", "--attacks", "none,alie",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "demo.png").exists() and (tmp_path / "demo.md").exists()
    assert main(["sweep", "--steps", "4", "--hidden", "8", "--zs", "1", "--alphas", "1,100",
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert len(rows) == 4 and {r["alpha"] for r in rows} == {1.0, 100.0}
