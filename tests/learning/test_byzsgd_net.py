"""ByzSGD over the real network (learning.protocols.byzsgd_net): the specification file
every process builds its protocol and oracle from, and one launch of n processes over
mutual TLS on loopback (slow: each process imports torch through the learning package)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from learning.protocols.byzsgd import ByzSGDConfig, quadratic_oracle
from learning.protocols.byzsgd_net import build_parser, launch_byzsgd, read_spec, write_spec


def test_the_specification_round_trips_exactly(tmp_path) -> None:
    cfg = ByzSGDConfig(4, 1, 7, 2, steps=9, gather_every=3, lr=0.125, lr_decay=0.01)
    oracle = quadratic_oracle(cfg, 6, spread=0.37, noise=0.2, seed=11)
    path = write_spec(tmp_path / "spec.json", cfg, oracle)
    cfg2, oracle2 = read_spec(path)
    assert cfg2 == cfg
    assert oracle2.centers.tobytes() == oracle.centers.tobytes()
    x = np.linspace(-1, 1, 6)
    assert oracle2(x, 3, 5).tobytes() == oracle(x, 3, 5).tobytes()


def test_a_bad_specification_names_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "config": {"n_ps": 3, "f_ps": 1, "n_w": 7,
                                                         "f_w": 2, "steps": 2},
                               "oracle": {"centers": [[0.0]], "first_worker": 3,
                                          "noise": 0.0, "seed": 0}}))
    with pytest.raises(ValueError, match=r"bad.json: .*server group .* needs n >= 3f\+1"):
        read_spec(bad)
    with pytest.raises(ValueError, match="not a ByzSGD specification"):
        read_spec(tmp_path / "missing.json")
    args = build_parser().parse_args(
        ["node", "--protocol", str(bad), "--rounds", "2", "--config", "c.toml", "--id", "0",
         "--input", "x.npy", "--output", "o.npy"])
    assert args.protocol == str(bad) and args.rounds == 2


@pytest.mark.slow
def test_byzsgd_processes_over_mutual_tls_train_and_keep_the_gather_bound() -> None:
    cfg = ByzSGDConfig(4, 1, 4, 1, steps=10, gather_every=2, lr=0.2)
    oracle = quadratic_oracle(cfg, 5, spread=0.1, noise=0.1, seed=1)
    res = launch_byzsgd(cfg, oracle, np.zeros(5), strategy="equivocate", seed=0, timeout=240)
    assert res.byzantine_ids == (0, 4) and res.honest_servers == (1, 2, 3)
    assert res.ok and res.checked and len(res.checks) == 5
    opt = oracle.optimum(res.honest_workers)
    start = float(np.linalg.norm(opt))
    assert max(float(np.linalg.norm(m - opt)) for m in res.models.values()) < 0.25 * start
    for s in res.honest_servers:  # the records came from the processes' reports
        assert [r.step for r in res.records[s]] == [2, 4, 6, 8, 10]
        # MODEL(0..9) to 4 workers and GATHER(2, 4, .., 10) to 3 servers, over the wire
        assert res.reports[s]["metrics"]["messages"] == 4 * 10 + 3 * 5
