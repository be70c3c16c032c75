"""Keys, cluster configuration, ``python -m netsim keys`` and the network commands of
agreement (``python -m agreement node`` / ``launch``)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agreement.cli import main as agreement_main
from netsim.cli import main
from netsim.net.cluster import generate, load_config
from netsim.net.tls import AuthError, authenticate, fingerprint_pem, node_id_of

ROOT = Path(__file__).resolve().parents[2]


def _der(pem: bytes) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(pem.decode())


def test_keys_command_writes_ca_certs_and_config(tmp_path, capsys):
    out = tmp_path / "cluster"
    assert main(["keys", "--n", "7", "--out", str(out)]) == 0
    assert "n=7 (f=2)" in capsys.readouterr().out
    data = tomllib.loads((out / "cluster.toml").read_text())
    assert data["cluster"]["n"] == 7 and data["cluster"]["f"] == 2
    assert [e["id"] for e in data["nodes"]] == list(range(7))
    assert [e["port"] for e in data["nodes"]] == [27000 + i for i in range(7)]
    cfg = load_config(out / "cluster.toml")
    assert cfg.ca_fingerprint == fingerprint_pem((out / "ca.pem").read_bytes())
    for e in cfg.nodes:
        pem = e.cert.read_bytes()
        assert node_id_of(_der(pem)) == e.id  # the id is bound in the certificate
        assert fingerprint_pem(pem) == e.fingerprint
        assert stat.S_IMODE(os.stat(e.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out / "ca.key").st_mode) == 0o600
    assert cfg.ssl_contexts(3) is not None


def test_authenticate_checks_id_pin_and_expected_peer(tmp_path):
    a = generate(4, tmp_path / "a", ports=[0] * 4)
    b = generate(4, tmp_path / "b", ports=[0] * 4)
    der = _der(a.node(2).cert.read_bytes())
    assert authenticate(der, a.fingerprints) == 2
    assert authenticate(der, a.fingerprints, expected=2) == 2
    with pytest.raises(AuthError, match="dialed node 1"):
        authenticate(der, a.fingerprints, expected=1)
    with pytest.raises(AuthError, match="fingerprint"):
        authenticate(der, b.fingerprints)  # the same id, another cluster's certificate
    with pytest.raises(AuthError, match="not in the cluster"):
        authenticate(der, {0: "x", 1: "y"})
    with pytest.raises(AuthError, match="no certificate"):
        authenticate(None, a.fingerprints)
    with pytest.raises(AuthError, match="node id"):
        authenticate(_der(a.ca.read_bytes()), a.fingerprints)  # the CA binds no node id


def test_plaintext_is_loopback_only_and_config_errors_are_clear(tmp_path):
    generate(4, tmp_path, hosts=["10.0.0.1"] * 4, ports=[1, 2, 3, 4])
    load_config(tmp_path / "cluster.toml")  # fine with TLS
    with pytest.raises(ValueError, match="refuses non-loopback"):
        load_config(tmp_path / "cluster.toml", plaintext=True)
    with pytest.raises(ValueError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[cluster]\nn = 2\n")
    with pytest.raises(ValueError, match="missing a field"):
        load_config(tmp_path / "bad.toml")


def test_node_command_rejects_bad_input(tmp_path, capsys):
    generate(4, tmp_path, ports=[0] * 4)
    rc = agreement_main(["node", "--config", str(tmp_path / "cluster.toml"), "--id", "9",
                         "--rounds", "2", "--input", "x.npy", "--output", "y.npy"])
    assert rc == 2 and "not in range" in capsys.readouterr().err


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agreement", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_launch_acceptance(backend):
    """The acceptance command: n=4 processes over mutual TLS, one equivocating; honest
    outputs agree within the bound; the report has every field of `simulate`."""
    p = _run("launch", "--n", "4", "--f", "1", "--protocol", "trimmed-mean", "--dim", "1000",
             "--rounds", "10", "--strategy", "equivocate", "--json", "--backend", backend,
             "--timeout", "90")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    sim = _run("simulate", "--n", "4", "--f", "1", "--dim", "4", "--rounds", "2", "--json")
    assert sim.returncode == 0, sim.stderr
    assert set(json.loads(sim.stdout)) <= set(rep)
    assert rep["engine"] == "network" and rep["byzantine_ids"] == [0]
    assert len(rep["diameters"]) == 11
    assert rep["averaging_within_bound"] is True
    assert rep["contraction_within_bound"] is True
    assert rep["faults_against_honest"] == 0
    assert rep["messages"] > 0 and rep["wire_bytes"] >= rep["bytes"]


def test_launch_refuses_omniscient_strategies():
    p = _run("launch", "--n", "4", "--f", "1", "--strategy", "split", "--timeout", "10")
    assert p.returncode == 2 and "omniscient" in p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend,strategy,plain", [
    ("asyncio", "crash", False), ("trio", "twins", False), ("asyncio", "forge", True),
])
def test_launch_seven_processes(backend, strategy, plain):
    """n=7, f=2 processes; the bounds of simulation hold and honest nodes record no fault
    against each other (with TLS, and in the explicit plaintext mode)."""
    args = ["launch", "--n", "7", "--f", "2", "--dim", "2000", "--rounds", "6",
            "--strategy", strategy, "--backend", backend, "--json", "--timeout", "120",
            "--seed", "5"]
    if plain:
        args.append("--insecure-loopback-plaintext")
    p = _run(*args)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["byzantine_ids"] == [0, 1]
    assert rep["averaging_within_bound"] and rep["contraction_within_bound"]
    assert rep["faults_against_honest"] == 0
    assert rep["scheduler"] == ("loopback-tcp" if plain else "loopback-tcp-tls")
    assert ("INSECURE" in p.stderr or "WARNING" in p.stderr) == plain
