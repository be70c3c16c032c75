"""Grids of training runs: method specs with per-method overrides, several seeds, worker
processes (the rows must not depend on how the runs were scheduled)."""

from __future__ import annotations

import pytest

from learning.experiments import method_config, run_grid, traffic_markdown
from learning.learn import TrainConfig

BASE = TrainConfig(dataset="digits", model="mlp", hidden=8, n=7, f=2, steps=6, eval_every=6,
                   batch_size=8)


def test_a_recipe_sets_fields_for_one_method_only() -> None:
    cfg = method_config(BASE, "server:median@worker_momentum=0.9@weight_decay=0")
    assert (cfg.method, cfg.protocol) == ("server", "median")
    assert cfg.worker_momentum == 0.9 and cfg.momentum == 0.0  # they would compound
    assert cfg.weight_decay == 0
    assert method_config(BASE, "server:median").momentum == BASE.momentum


@pytest.mark.parametrize("spec, match", [
    ("server:median@nope=1", "field of TrainConfig"),
    ("server:median@worker_momentum", "FIELD=VALUE"),
    ("dsgd:median", "takes no rule"),
    ("nothing", "unknown method"),
])
def test_bad_method_specs_say_what_to_write(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        method_config(BASE, spec)


def test_seeds_average_and_workers_do_not_change_the_rows() -> None:
    methods = ["dsgd", "server:trimmed-mean"]
    serial = run_grid(BASE, ["sign-flip"], methods, seeds=[0, 1])
    pooled = run_grid(BASE, ["sign-flip"], methods, seeds=[0, 1], workers=2)
    key = [(r["method"], r["accuracy_by_seed"], r["accuracy_min"]) for r in serial]
    assert key == [(r["method"], r["accuracy_by_seed"], r["accuracy_min"]) for r in pooled]
    for r in serial:
        per = r["accuracy_by_seed"]
        assert r["seeds"] == [0, 1] and len(per) == 2
        assert r["accuracy_mean"] == pytest.approx(sum(per) / 2)
        assert r["accuracy_min"] <= min(per)
    one = run_grid(BASE, ["sign-flip"], ["dsgd"], seeds=[1])[0]
    assert one["accuracy_mean"] == serial[0]["accuracy_by_seed"][1]


def test_the_traffic_table_has_a_row_per_method() -> None:
    rows = run_grid(BASE, ["none"], ["dsgd", "local"])
    table = traffic_markdown(rows)
    assert "| dsgd | 42 |" in table  # n(n-1) = 42 parameter vectors per step
    assert "| local | 0 | 0B |" in table
