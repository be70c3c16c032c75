"""``python -m agreement campaign`` (and ``jungle campaign``): the summary, the failures'
replay commands (which reproduce them), the exit status, ``--json``, resume and the errors
of a bad spec."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agreement.campaigns import RecordStore
from agreement.cli import main
from jungle_cli.main import main as jungle

ROOT = Path(__file__).resolve().parents[3]

SAFE = """\
name = "safe"
seeds = { start = 0, count = 4 }
[axes]
nf = [[4, 1], [7, 2]]
strategy = ["split", "equivocate"]
[fixed]
d = 3
rounds = 2
engine = "message"
[checks]
claims = true
"""

UNSAFE = """\
name = "unsafe"
seeds = 3
[axes]
nf = [[3, 1], [6, 2]]
[fixed]
unsafe = true
d = 4
rounds = 3
strategy = "split"
scheduler = "targeted"
[checks]
claims = true
agreement = 0.01
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_safe_campaign_prints_its_summary_and_exits_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["campaign", write(tmp_path, SAFE), "--out", str(out), "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "campaign safe: 16 runs (16 run now, 0 kept from before)" in text
    assert "|" in text and "all runs within the claims" in text
    assert (out / "records.jsonl").exists() and (out / "summary.md").exists()
    rc = main(["campaign", write(tmp_path, SAFE), "--out", str(out), "--workers", "1"])
    assert rc == 0 and "(0 run now, 16 kept from before)" in capsys.readouterr().out


def test_json_is_one_document_without_a_progress_bar(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = jungle(["campaign", write(tmp_path, SAFE), "--out", str(tmp_path / "o"),
                 "--workers", "2", "--json", "--seeds", "10:2"])
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert rc == 0 and doc["ok"] is True and doc["runs"] == 8 and doc["failures"] == []
    assert {s["cell_id"] for s in doc["summary"]} == {
        json.loads(line)["cell_id"] for line in
        Path(doc["paths"]["records"]).read_text().splitlines()}
    seeds = {json.loads(line)["seed"] for line in
             Path(doc["paths"]["records"]).read_text().splitlines()}
    assert seeds == {10, 11}  # --seeds START:COUNT
    assert "run/s" not in cap.err


def test_an_unsafe_campaign_exits_1_and_its_replays_reproduce_the_violation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """n = 3f with ``unsafe``: the agreement check fails; the printed replay command and its
    reduced version, run, give the recorded diameters, beyond the check's bound."""
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning):
        rc = main(["campaign", write(tmp_path, UNSAFE), "--out", str(out), "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 1
    assert "VIOLATION" in text and "replay:  python -m agreement simulate" in text
    assert "reduced (" in text and "exit status 1" in text
    failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    records = {json.loads(x)["key"]: json.loads(x)
               for x in (out / "records.jsonl").read_text().splitlines()}
    fail = failures[-1]
    for cmd, diameters in ((fail["replay"]["command"], records[fail["key"]]["diameters"]),
                           (fail["reduced"]["replay"]["command"],
                            fail["reduced"]["diameters"])):
        assert cmd in text
        argv = shlex.split(cmd)
        assert argv[:3] == ["python", "-m", "agreement"]
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        rep = json.loads(proc.stdout)
        assert rep["diameters"] == diameters
        assert rep["diameters"][-1] > 0.01 * rep["diameters"][0]  # the violation, again


def test_json_of_an_unsafe_campaign_lists_the_failures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(RuntimeWarning):
        rc = main(["campaign", write(tmp_path, UNSAFE), "--out", str(tmp_path / "o"),
                   "--workers", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["ok"] is False and len(doc["failures"]) == 6
    assert all(f["replay"]["command"] for f in doc["failures"])


@pytest.mark.parametrize("text,needle", [
    ('name = "x"\nseeds = 2\n[axes]\nnf = [[4, 1]]\nstrategy = ["foo"]\n', "axes.strategy"),
    ('name = "x"\nseeds = 2\n[axes]\nnf = [[4, 1]]\ncolour = ["red"]\n', "colour"),
    ('name = "x"\nseeds = [\n', "invalid TOML"),
])
def test_an_invalid_spec_names_the_file_and_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str) -> None:
    path = write(tmp_path, text)
    assert main(["campaign", path, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: SPEC {path}: ") and needle in err


def test_bad_command_lines_name_the_flag(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", str(tmp_path / "none.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: SPEC ") and "no such file" in err
    spec = write(tmp_path, SAFE)
    (tmp_path / "file").write_text("")
    assert main(["campaign", spec, "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["campaign", spec, "--workers", "2", "--cluster", "tcp://127.0.0.1:1"]) == 2
    assert "drop --workers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["campaign", spec, "--seeds", "0:0"])
    assert "--seeds" in capsys.readouterr().err
    main(["campaign", spec, "--out", str(tmp_path / "o"), "--seeds", "2", "--workers", "1"])
    capsys.readouterr()
    other = write(tmp_path, SAFE.replace("rounds = 2", "rounds = 3"), "other.toml")
    assert main(["campaign", other, "--out", str(tmp_path / "o")]) == 2
    assert "--fresh" in capsys.readouterr().err
    assert main(["campaign", other, "--out", str(tmp_path / "o"), "--fresh", "--seeds", "1",
                 "--workers", "1"]) == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killing_a_campaign_then_rerunning_it_resumes(tmp_path: Path, sig: int) -> None:
    """A CLI run killed (its process group: SIGKILL, or Ctrl-C's SIGINT, which it reports
    with exit status 130) after some records: the rerun keeps them (not recomputed). The
    child's SIGINT is reset to the default first: a test run started in the background of a
    shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler (the
    campaign ran to the end with exit status 0)."""
    spec = write(tmp_path, SAFE.replace("count = 4", "count = 60"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "agreement", "campaign", spec, "--out", str(out),
           "--workers", "2", "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    records = out / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and records.read_text().count("\n") >= 20:
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, sig)
        assert records.read_text().count("\n") < 240, "the campaign ended before the kill"
    _, err = proc.communicate(timeout=60)
    if killed and sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command again to resume" in err
    kept = {r["key"]: r["wall_time"] for r in RecordStore(records).records()}
    assert len(kept) >= 20
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    doc = json.loads(done.stdout)
    assert done.returncode == 0 and doc["runs"] == 240 and doc["resumed"] == len(kept)
    final = {r["key"]: r["wall_time"] for r in RecordStore(records).records()}
    assert all(final[k] == w for k, w in kept.items())  # kept, not recomputed


def test_plot_draws_both_figures_into_out(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "o"
    rc = main(["campaign", write(tmp_path, SAFE), "--out", str(out), "--workers", "1",
               "--seeds", "2", "--plot", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    for key, name in (("diameters_png", "diameters.png"), ("heatmap_png", "heatmap.png")):
        assert doc["paths"][key] == str(out / name) and (out / name).stat().st_size > 0


def test_a_campaign_that_checks_nothing_says_so(tmp_path: Path, capsys) -> None:
    """The median baseline carries no claim: with no [checks] its runs cannot fail, and the
    command says how many runs were judged by something (a campaign must not look like a
    pass when nothing was tested)."""
    spec = tmp_path / "median.toml"
    spec.write_text('name = "median"\nseeds = 3\n[fixed]\nprotocol = "median"\nnf = [7, 2]\n'
                    'd = 3\nrounds = 2\n')
    assert main(["campaign", str(spec), "--out", str(tmp_path / "out"), "--workers", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "tested: 0 of 3 runs judged by a claim or a check" in out
    assert "WARNING: 3 runs checked nothing" in out
    spec.write_text(spec.read_text().replace('protocol = "median"', 'protocol = "trimmed-mean"'))
    assert main(["campaign", str(spec), "--out", str(tmp_path / "tm"), "--workers", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "tested: 3 of 3 runs judged by a claim or a check" in out and "WARNING" not in out
