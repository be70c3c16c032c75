"""Campaign specs: the TOML and dict forms, the seed forms, the validation of every axis
against the registries (errors name the TOML key), the cell order and ids, the resilience
skips and the round trips through to_dict and to_toml."""

from __future__ import annotations

import pytest

from agreement.campaigns.spec import DEFAULTS, PARAM_ORDER, CampaignSpec, load_spec

QUICK = """
name = "quick"
seeds = { start = 0, count = 2 }
[axes]
protocol = ["trimmed-mean", "mda"]
nf = [[4, 1], [7, 2]]
d = [4]
strategy = ["split", "equivocate"]
scheduler = ["targeted", "random"]
[fixed]
rounds = 3
inputs = "gaussian"
engine = "message"
[checks]
claims = true
agreement = 0.01
"""

QUICK_DICT = {
    "name": "quick", "seeds": {"start": 0, "count": 2},
    "axes": {"protocol": ["trimmed-mean", "mda"], "nf": [[4, 1], [7, 2]], "d": [4],
             "strategy": ["split", "equivocate"], "scheduler": ["targeted", "random"]},
    "fixed": {"rounds": 3, "inputs": "gaussian", "engine": "message"},
    "checks": {"claims": True, "agreement": 0.01},
}


def spec_with(**over: object) -> dict:
    base = {"name": "t", "seeds": 1, "axes": {"nf": [[4, 1]]}, "fixed": {"d": 2, "rounds": 2}}
    base.update(over)
    return base


def test_toml_text_file_and_dict_give_the_same_spec(tmp_path) -> None:
    path = tmp_path / "quick.toml"
    path.write_text(QUICK)
    a, b, c, d = load_spec(QUICK), load_spec(path), load_spec(str(path)), load_spec(QUICK_DICT)
    assert a == b == c == d
    assert isinstance(a, CampaignSpec)
    assert a.name == "quick" and a.seeds == range(0, 2)
    assert a.checks == {"claims": True, "agreement": 0.01}


@pytest.mark.parametrize("seeds, expected", [
    (20, range(20)), ({"start": 3, "count": 4}, range(3, 7)), ({"start": 2, "stop": 5},
                                                               range(2, 5)),
])
def test_seed_forms(seeds: object, expected: range) -> None:
    assert load_spec(spec_with(seeds=seeds)).seeds == expected


@pytest.mark.parametrize("seeds", [0, -1, {"count": 3}, {"start": 0, "count": 2, "stop": 2},
                                   {"start": -1, "count": 2}, "ten", True])
def test_bad_seeds_name_the_key(seeds: object) -> None:
    with pytest.raises(ValueError, match=r"^seeds"):
        load_spec(spec_with(seeds=seeds))


@pytest.mark.parametrize("table, key, value, message", [
    ("axes", "strategy", ["split", "foo"],
     r"axes\.strategy\[1\]: unknown strategy 'foo'; known: .*equivocate.*split"),
    ("axes", "scheduler", ["nope"], r"axes\.scheduler\[0\]: unknown scheduler 'nope'; known: "
                                    r".*targeted"),
    ("axes", "protocol", ["trimmed-mean", "avg"],
     r"axes\.protocol\[1\]: unknown protocol 'avg'; known: .*mda.*trimmed-mean"),
    ("fixed", "inputs", "normal", r"fixed\.inputs: unknown input generator 'normal'; known: "
                                  r".*gaussian"),
    ("fixed", "engine", "gpu", r"fixed\.engine: unknown engine 'gpu'; known: message, round"),
    ("axes", "views", ["all"], r"axes\.views\[0\]: unknown view chooser 'all'"),
    ("fixed", "gather", "fast", r"fixed\.gather: unknown gather 'fast'"),
    ("fixed", "rounds", 0, r"fixed\.rounds: expected an integer >= 1, got 0"),
    ("axes", "d", [4, "8"], r"axes\.d\[1\]: expected an integer >= 1, got '8'"),
    ("fixed", "unsafe", "yes", r"fixed\.unsafe: expected true or false"),
    ("fixed", "rule_params", "mean", r"fixed\.rule_params: expected a table"),
    ("axes", "strategy", [], r"axes\.strategy: expected a non-empty list"),
    ("axes", "colour", ["red"], r"axes\.colour: unknown key; known: protocol, n, f, nf"),
])
def test_every_axis_is_checked_against_its_registry(table: str, key: str, value: object,
                                                    message: str) -> None:
    raw = spec_with()
    raw[table] = {**raw[table], key: value}
    with pytest.raises(ValueError, match=message):
        load_spec(raw)


def test_structural_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"axes\.nf\[0\]: expected an \[n, f\] pair"):
        load_spec(spec_with(axes={"nf": [[4]]}))
    with pytest.raises(ValueError, match=r"axes\.nf: give nf or n and f, not both"):
        load_spec(spec_with(axes={"nf": [[4, 1]], "n": [7]}))
    with pytest.raises(ValueError, match=r"axes\.nf: the spec must give nf"):
        load_spec(spec_with(axes={"n": [4]}))
    with pytest.raises(ValueError, match=r"axes\.d and fixed\.d: a key is an axis or fixed"):
        load_spec(spec_with(axes={"nf": [[4, 1]], "d": [2]}))
    with pytest.raises(ValueError, match=r"^name: expected a non-empty string"):
        load_spec(spec_with(name=""))
    with pytest.raises(ValueError, match=r"^colour: unknown key; known: name, seeds"):
        load_spec(spec_with(colour=1))
    with pytest.raises(ValueError, match=r"^checks\.agreement: expected a positive number"):
        load_spec(spec_with(checks={"agreement": -1}))
    with pytest.raises(ValueError, match=r"^checks\.speed: unknown check; known: claims, "
                                         r"agreement"):
        load_spec(spec_with(checks={"speed": 1}))
    with pytest.raises(ValueError, match=r"^spec: invalid TOML"):
        load_spec("name = \n[axes")


def test_cells_follow_the_axes_order_with_stable_ids() -> None:
    spec = load_spec(QUICK)
    ids = [c.cell_id for c in spec.cells()]
    # the first axis (protocol) varies slowest; mda runs at neither (4, 1) nor (7, 2)
    assert ids[:4] == [
        "trimmed-mean-n4-f1-d4-split-targeted-gaussian-message",
        "trimmed-mean-n4-f1-d4-split-random-gaussian-message",
        "trimmed-mean-n4-f1-d4-equivocate-targeted-gaussian-message",
        "trimmed-mean-n4-f1-d4-equivocate-random-gaussian-message",
    ]
    assert ids[4] == "trimmed-mean-n7-f2-d4-split-targeted-gaussian-message"
    assert len(ids) == len(set(ids)) == 8
    assert ids == [c.cell_id for c in load_spec(QUICK).cells()]
    for c in spec.cells():
        assert list(c.params) == list(PARAM_ORDER)
        assert c.params["rounds"] == 3 and c.params["views"] is DEFAULTS["views"]


def test_tasks_are_cell_major_then_seed() -> None:
    spec = load_spec(QUICK)
    tasks = spec.tasks()
    cells = spec.cells()
    assert [(t.cell_id, t.seed) for t in tasks] == [(c.cell_id, s) for c in cells
                                                    for s in (0, 1)]
    assert tasks[1].key == f"{cells[0].cell_id}/1"
    assert tasks[0].checks == {"claims": True, "agreement": 0.01}


def test_cells_below_resilience_are_skipped_with_the_reason_unless_unsafe() -> None:
    spec = load_spec(QUICK)
    skipped = spec.skipped_cells()
    assert len(skipped) == 8 and all(c.params["protocol"] == "mda" for c, _ in skipped)
    assert "κ(4,1)" in skipped[0][1] and skipped[0][1].endswith("set unsafe = true to run "
                                                                "it anyway")
    unsafe = load_spec({**QUICK_DICT, "fixed": {**QUICK_DICT["fixed"], "unsafe": True}})
    assert len(unsafe.cells()) == 16 and not unsafe.skipped_cells()
    assert unsafe.cells()[0].cell_id.endswith("-unsafe")
    with pytest.raises(ValueError, match=r"axes: cell mda-n4-f1.* below its protocol's "
                                         r"resilience"):
        load_spec({**QUICK_DICT, "skip_unresilient": False})
    with pytest.raises(ValueError, match=r"axes: no cell runs .*n >= 3f\+1"):
        load_spec(spec_with(axes={"nf": [[3, 1]]}))


def test_protocol_level_strategies_on_the_round_engine_are_skipped() -> None:
    spec = load_spec(spec_with(axes={"nf": [[4, 1]], "engine": ["message", "round"],
                                     "strategy": ["alie", "equivocate"]}))
    assert [c.cell_id for c in spec.cells()] == [
        "trimmed-mean-n4-f1-d2-alie-targeted-gaussian-message",
        "trimmed-mean-n4-f1-d2-equivocate-targeted-gaussian-message",
        "trimmed-mean-n4-f1-d2-alie-targeted-gaussian-round",
    ]
    [(cell, why)] = spec.skipped_cells()
    assert cell.params["strategy"] == "equivocate" and "round engine" in why


def test_ids_name_every_axis_that_varies() -> None:
    spec = load_spec(spec_with(axes={"nf": [[7, 1]], "rounds": [1, 2],
                                     "rule_params": [{}, {"center": "mean"}]},
                               fixed={"protocol": "mve", "d": 1, "views": "random",
                                      "engine": "round", "strategy": "alie"}))
    assert [c.cell_id for c in spec.cells()] == [
        "mve-n7-f1-d1-alie-targeted-gaussian-round-r1-views-random",
        "mve-n7-f1-d1-alie-targeted-gaussian-round-r1-views-random-center-mean",
        "mve-n7-f1-d1-alie-targeted-gaussian-round-r2-views-random",
        "mve-n7-f1-d1-alie-targeted-gaussian-round-r2-views-random-center-mean",
    ]


def test_to_dict_and_to_toml_round_trip() -> None:
    for raw in (QUICK, spec_with(axes={"nf": [[7, 1]], "rule_params": [{"center": "mean"}]},
                                 fixed={"protocol": "mve", "d": 1, "gather": "witness",
                                        "codec": False}, seeds={"start": 5, "count": 3},
                                 skip_unresilient=False)):
        spec = load_spec(raw)
        assert load_spec(spec.to_dict()) == spec
        assert load_spec(spec.to_toml()) == spec
        assert spec.to_dict()["seeds"] == {"start": spec.seeds.start, "count": len(spec.seeds)}


def test_default_views_and_gather_in_an_axis_round_trip_through_toml() -> None:
    spec = load_spec(spec_with(axes={"nf": [[4, 1]], "views": [None, "random"],
                                     "gather": ["default", "first-quorum"]},
                               fixed={"engine": "round", "strategy": "alie", "views": None}))
    assert [(c.params["views"], c.params["gather"]) for c in spec.cells()] == [
        (None, None), (None, "first-quorum"), ("random", None), ("random", "first-quorum")]
    assert load_spec(spec.to_toml()) == spec
