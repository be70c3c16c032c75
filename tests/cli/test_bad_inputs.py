"""Every bad command line is one line ``error: ...`` on stderr naming the flag to change, with
a non-zero exit (2 for usage errors), never a traceback; nothing is written silently.

Table-driven, in-process through the command lines' ``main(argv)`` (one subprocess checks the
real entry point). Files live in tmp_path; nodes only ever bind loopback addresses."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agreement.cli import main as agreement_main
from broadcast.cli import main as broadcast_main
from learning.cli import main as learning_main
from netsim.cli import MOVED
from netsim.cli import main as netsim_main
from netsim.net.cluster import free_ports, generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cluster of 4 on free loopback ports, and configurations broken one way each."""
    d = tmp_path_factory.mktemp("bad-inputs")
    generate(4, d / "k", f=1, ports=free_ports(4))
    good = (d / "k" / "cluster.toml").read_text()
    first_fp = re.search(r'\nfingerprint = "([0-9a-f:]+)"', good)
    assert first_fp is not None
    fp = first_fp.group(1)
    wrong = ("00" if not fp.startswith("00") else "11") + fp[2:]
    (d / "k" / "wrong-fp.toml").write_text(good.replace(fp, wrong, 1))
    port0 = re.search(r"\nport = (\d+)", good)
    assert port0 is not None
    (d / "k" / "port.toml").write_text(good.replace(port0.group(0), "\nport = 99999", 1))
    (d / "k" / "no-cert.toml").write_text(good.replace('"node-0.pem"', '"missing.pem"'))
    np.save(d / "x.npy", np.zeros(3))
    (d / "empty.npy").write_bytes(b"")
    (d / "a-file").write_text("not a folder")
    return d


def node(d: Path, config: str = "cluster.toml", inp: str = "x.npy", out: str = "out.npy",
         *extra: str) -> list[str]:
    return ["node", "--config", str(d / "k" / config), "--id", "0", "--rounds", "2",
            "--input", str(d / inp), "--output", str(d / out), "--timeout", "30", *extra]


SIM = ["simulate", "--n", "4", "--f", "1", "--dim", "2", "--rounds", "1"]

# (name, command line (main, argv from the files folder), the flag the message must name,
#  the exit status)
CASES: list[tuple[str, Callable[[Path], tuple[Callable, list[str]]], str, int]] = [
    # the eleven that ended in a traceback
    ("simulate --n 0", lambda d: (agreement_main, ["simulate", "--n", "0"]), "--n", 2),
    ("simulate --dim 0", lambda d: (agreement_main, ["simulate", "--dim", "0"]), "--dim", 2),
    ("simulate --plot missing folder",
     lambda d: (agreement_main, [*SIM, "--plot", str(d / "nope" / "p.png")]), "--plot", 2),
    ("simulate --trace missing folder",
     lambda d: (agreement_main, [*SIM, "--trace", str(d / "nope" / "t.jsonl")]), "--trace", 2),
    ("keys --out an existing file",
     lambda d: (netsim_main, ["keys", "--n", "4", "--out", str(d / "a-file")]), "--out", 2),
    ("launch --byzantine-ids a,b",
     lambda d: (agreement_main, ["launch", "--strategy", "crash", "--byzantine-ids", "a,b"]),
     "--byzantine-ids", 2),
    ("node: a 0-byte .npy", lambda d: (agreement_main, node(d, inp="empty.npy")), "--input", 2),
    ("node: a missing certificate file",
     lambda d: (agreement_main, node(d, config="no-cert.toml")), "--config", 2),
    ("node: a wrong fingerprint",
     lambda d: (agreement_main, node(d, config="wrong-fp.toml")), "--config", 2),
    ("node: port 99999", lambda d: (agreement_main, node(d, config="port.toml")), "--config", 2),
    ("node: a missing output folder",
     lambda d: (agreement_main, node(d, out="nope/out.npy")), "--output", 2),
    ("node: --timeout expiry",  # the other nodes never start
     lambda d: (agreement_main, [*node(d)[:-2], "--timeout", "1"]), "--timeout", 3),
    # the two accepted silently
    ("keys --base-port 65535",
     lambda d: (netsim_main, ["keys", "--n", "4", "--out", str(d / "k-port"),
                              "--base-port", "65535"]), "--base-port", 2),
    ("keys --n 3 --f 1",
     lambda d: (netsim_main, ["keys", "--n", "3", "--f", "1", "--out", str(d / "k-f")]),
     "--f", 2),
    # more of the same kinds
    ("simulate --f -1", lambda d: (agreement_main, ["simulate", "--f", "-1"]), "--f", 2),
    ("simulate --f >= --n", lambda d: (agreement_main, ["simulate", "--n", "4", "--f", "4"]),
     "--f", 2),
    ("simulate --rounds 0", lambda d: (agreement_main, ["simulate", "--rounds", "0"]),
     "--rounds", 2),
    ("simulate --n x", lambda d: (agreement_main, ["simulate", "--n", "x"]), "--n", 2),
    ("simulate --delta 0", lambda d: (agreement_main, ["simulate", "--delta", "0"]), "--delta", 2),
    ("simulate below resilience",
     lambda d: (agreement_main, [*SIM[:5], "--protocol", "mda"]), "--unsafe", 2),
    ("simulate --engine round with a protocol-level strategy",
     lambda d: (agreement_main, [*SIM, "--engine", "round", "--strategy", "flood"]),
     "--engine message", 2),
    ("simulate --delta with a baseline",
     lambda d: (agreement_main, [*SIM[:5], "--protocol", "median", "--delta", "0.1"]),
     "--rounds", 2),
    ("broadcast --origin out of range",
     lambda d: (broadcast_main, ["run", "--origin", "9"]), "--origin", 2),
    ("broadcast --byzantine-ids x",
     lambda d: (broadcast_main, ["run", "--strategy", "crash", "--byzantine-ids", "x"]),
     "--byzantine-ids", 2),
    ("launch --byzantine-ids without a strategy",
     lambda d: (agreement_main, ["launch", "--byzantine-ids", "1"]), "--byzantine-ids", 2),
    ("launch --linger -1", lambda d: (agreement_main, ["launch", "--linger", "-1"]), "--linger", 2),
    ("launch --strategy omniscient attack",
     lambda d: (agreement_main, ["launch", "--strategy", "split"]), "--strategy", 2),
    ("launch --workdir an existing file",
     lambda d: (agreement_main, ["launch", "--workdir", str(d / "a-file")]), "--workdir", 2),
    ("simulate --plot a folder", lambda d: (agreement_main, [*SIM, "--plot", str(d)]), "--plot", 2),
    ("keys --hosts count", lambda d: (netsim_main, ["keys", "--n", "4", "--out",
                                                    str(d / "k-h"), "--hosts", "a,b"]),
     "--hosts", 2),
    ("node: a missing --config", lambda d: (agreement_main, node(d, config="nope.toml")),
     "--config", 2),
    ("node: --id out of range",
     lambda d: (agreement_main, [*node(d)[:4], "9", *node(d)[5:]]), "--id", 2),
    ("node: a missing input", lambda d: (agreement_main, node(d, inp="nope.npy")), "--input", 2),
    ("node: --f >= n", lambda d: (agreement_main, node(d, "cluster.toml", "x.npy", "out.npy",
                                                   "--f", "4")), "--f", 2),
    ("node: --timeout 0", lambda d: (agreement_main, [*node(d)[:-2], "--timeout", "0"]),
     "--timeout", 2),
    ("train --n 0", lambda d: (learning_main, ["train", "--n", "0"]), "--n", 2),
    ("train --f >= --n", lambda d: (learning_main, ["train", "--n", "4", "--f", "4",
                                                    "--steps", "1"]), "--f", 2),
    ("train --attack-param", lambda d: (learning_main, ["train", "--steps", "1",
                                                        "--attack-param", "z"]),
     "--attack-param", 2),
    ("train --lr 0", lambda d: (learning_main, ["train", "--lr", "0"]), "--lr", 2),
]


def _call(entry: Callable, argv: list[str]) -> int:
    try:
        return entry(argv)
    except SystemExit as exc:  # argparse's usage errors
        return exc.code if isinstance(exc.code, int) else 1


@pytest.mark.parametrize("name,make,flag,code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_one_line_error(files, capsys, name, make, flag, code):
    entry, argv = make(files)
    rc = _call(entry, argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, (rc, err)
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert flag in lines[0], f"the message does not name {flag}: {lines[0]}"
    assert "=True" not in lines[0] and "engine='" not in lines[0], lines[0]


def test_nothing_is_written_for_a_refused_cluster(files, capsys):
    for name, extra in (("r-port", ["--n", "4", "--base-port", "65535"]),
                        ("r-f", ["--n", "3", "--f", "1"]),
                        ("r-h", ["--n", "4", "--hosts", "a,b"])):
        assert _call(netsim_main, ["keys", "--out", str(files / name), *extra]) == 2
        assert not (files / name).exists()
    capsys.readouterr()


def test_the_real_entry_point_prints_one_line():
    p = subprocess.run([sys.executable, "-m", "agreement", "simulate", "--n", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "error: argument --n: must be >= 1, got 0 (see `python -m agreement simulate --help`)"]


@pytest.mark.parametrize("command", sorted(MOVED))
def test_an_old_command_path_names_its_new_home(capsys, command):
    """``python -m netsim simulate|node|launch|broadcast`` moved: one line naming the new
    command, exit 2, whatever the flags."""
    assert _call(netsim_main, [command, "--n", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert MOVED[command] in err[0] and f"jungle {command}" in err[0], err


def test_an_old_command_path_fails_at_the_real_entry_point():
    p = subprocess.run([sys.executable, "-m", "netsim", "broadcast", "--witness"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "error: `python -m netsim broadcast` has moved: run `python -m broadcast run` "
        "(or `jungle broadcast`)"]
