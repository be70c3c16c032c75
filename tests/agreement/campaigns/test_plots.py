"""agreement.campaigns.plots: the files are written, and what they draw comes from the records.

Records and summary rows are made by hand in the shape of the module contract (runs.py's
record, summary.py's row), so these tests check the plots alone: the quantile bands are the
quantiles of the records' relative diameters, the bound line is the proven contraction of the
records' verdicts, the heatmap's squares are the worst ratios of the summary.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from agreement import constants
from agreement.campaigns.plots import (
    REST,
    contraction_line,
    plot_diameters,
    plot_heatmap,
    worst_ratio,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _record(cell: str, seed: int, diameters: list[float], *, protocol: str = "trimmed-mean",
            n: int = 7, f: int = 2, d: int = 4, status: str = "ok",
            strategy: str = "split") -> dict:
    verdicts: dict = {}
    if protocol == "trimmed-mean":
        lam = constants.tm_contraction(n, f)
        verdicts = {
            "tm-contraction": {"status": "holds", "measured": 0.1, "bound": lam, "ratio": 0.3},
            "tm-l2-contraction": {"status": "holds", "measured": 0.2,
                                  "bound": constants.tm_l2_contraction(n, f, d, 1),
                                  "ratio": 0.2},
        }
    elif protocol == "mda":
        verdicts = {"mda-contraction": {"status": "holds", "measured": 0.1,
                                        "bound": constants.mda_contraction(n, f),
                                        "ratio": 0.4}}
    else:
        verdicts = {protocol: {"status": "no-claim", "measured": None, "bound": None,
                               "ratio": None}}
    return {"key": f"{cell}/{seed}", "cell_id": cell, "seed": seed, "status": status,
            "params": {"protocol": protocol, "n": n, "f": f, "d": d, "strategy": strategy,
                       "scheduler": "targeted", "rounds": len(diameters) - 1},
            "diameters": diameters, "input_diameter": diameters[0], "verdicts": verdicts}


def _cell(cell: str, rng: np.random.Generator, runs: int = 20, rounds: int = 3,
          **kw: object) -> list[dict]:
    out = []
    for s in range(runs):
        base = float(rng.uniform(1, 3))
        out.append(_record(cell, s, [base * 0.3**r * float(rng.uniform(0.5, 1.0)) if r else base
                                     for r in range(rounds + 1)], **kw))
    return out


def _png(path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 1000


def test_diameters_bands_and_bound_come_from_the_records(tmp_path):
    rng = np.random.default_rng(0)
    tm = _cell("tm-n7-f2", rng)
    mda = _cell("mda-n5-f1", rng, protocol="mda", n=5, f=1)
    med = _cell("median-n7-f2", rng, protocol="median")
    plot = plot_diameters(tm + mda + med, tmp_path / "d.png")
    _png(tmp_path / "d.png")
    assert [p.cell_id for p in plot.cells] == ["tm-n7-f2", "mda-n5-f1", "median-n7-f2"]
    for p, recs in zip(plot.cells, (tm, mda, med), strict=True):
        rel = np.array([np.array(r["diameters"]) / r["input_diameter"] for r in recs])
        assert p.runs == len(recs)
        np.testing.assert_allclose(p.median, np.quantile(rel, 0.5, axis=0))
        np.testing.assert_allclose(p.q05, np.quantile(rel, 0.05, axis=0))
        np.testing.assert_allclose(p.q95, np.quantile(rel, 0.95, axis=0))
        assert np.all(p.q05 <= p.median) and np.all(p.median <= p.q95)
        assert p.median[0] == 1.0
    r = np.arange(4)
    lam = constants.tm_contraction(7, 2)
    expected = min(math.sqrt(4), math.sqrt(6)) * lam**r
    expected[0] = 1.0
    np.testing.assert_allclose(plot.cells[0].bound, expected)   # Corollary 4: s·λ^r
    np.testing.assert_allclose(plot.cells[1].bound, constants.mda_contraction(5, 1) ** r)
    assert plot.cells[2].bound is None                           # median: nothing proven


def test_errors_and_zero_diameters_are_skipped_and_exact_agreement_is_kept(tmp_path):
    recs = [_record("c", 0, [2.0, 1.0, 0.0]), _record("c", 1, [4.0, 1.0, 0.0]),
            {"key": "c/2", "cell_id": "c", "seed": 2, "status": "error", "params": {},
             "diameters": None, "input_diameter": None, "verdicts": {}},
            _record("c", 3, [0.0, 0.0, 0.0])]
    p = plot_diameters(recs, tmp_path / "d.png").cells[0]
    assert p.runs == 2
    np.testing.assert_allclose(p.median, [1.0, 0.375, 0.0])   # exact agreement stays 0
    _png(tmp_path / "d.png")


def test_diameters_selection_and_the_worst_cells_beyond_max_cells(tmp_path):
    recs = [_record(f"c{i}", 0, [1.0, 0.1 * (i + 1)]) for i in range(5)]
    sel = plot_diameters(recs, tmp_path / "a.png", cells=["c3", "c1"])
    assert [p.cell_id for p in sel.cells] == ["c3", "c1"]
    worst = plot_diameters(recs, tmp_path / "b.png", max_cells=2)
    assert [p.cell_id for p in worst.cells] == ["c3", "c4"]  # largest final diameters, in order
    assert worst.omitted == ["c0", "c1", "c2"]
    with pytest.raises(ValueError, match="cells \\['nope'\\] have no records"):
        plot_diameters(recs, tmp_path / "c.png", cells=["nope"])


def test_diameters_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no records"):
        plot_diameters([], tmp_path / "d.png")
    err = {"key": "c/0", "cell_id": "c", "seed": 0, "status": "error", "params": {},
           "diameters": None, "verdicts": {}}
    with pytest.raises(ValueError, match="no record has a diameter history"):
        plot_diameters([err], tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()


def test_contraction_line_ignores_no_claim_and_infinite_bounds():
    rec = _record("c", 0, [1.0, 0.5], protocol="mda", n=5, f=1)
    rec["verdicts"]["mda-contraction"]["status"] = "no-claim"
    assert contraction_line(rec, 3) is None
    rec["verdicts"]["mda-contraction"].update(status="holds", bound=math.inf)
    assert contraction_line(rec, 3) is None


def _row(cell: str, params: dict, ratios: dict[str, float | None]) -> dict:
    return {"cell_id": cell, "params": params, "runs": 10, "ok": 10, "violations": 0,
            "errors": 0, "claims": {k: {"worst_ratio": v, "worst_seed": 3}
                                    for k, v in ratios.items()}}


def _summary() -> list[dict]:
    rows = []
    for proto in ("trimmed-mean", "mda"):
        for n, f in ((7, 2), (10, 3)):
            for strat in ("split", "equivocate"):
                for sched in ("targeted", "random"):
                    r = 0.1 * n + (0.5 if strat == "split" else 0) + (0.05 if sched == "random"
                                                                      else 0)
                    claims = {"a": r, "b": r / 2} if proto == "trimmed-mean" else {"c": None}
                    rows.append(_row(f"{proto}-{n}-{strat}-{sched}",
                                     {"protocol": proto, "n": n, "f": f, "d": 4,
                                      "strategy": strat, "scheduler": sched}, claims))
    return rows


def test_heatmap_values_are_the_summary_worst_ratios_aggregated_by_max(tmp_path):
    rows = _summary()
    hm = plot_heatmap(rows, tmp_path / "h.png")
    _png(tmp_path / "h.png")
    assert (hm.x, hm.y) == ("strategy", REST)
    assert hm.x_labels == ["split", "equivocate"]
    assert hm.y_labels[0] == "f=2 n=7 protocol=trimmed-mean scheduler=targeted"
    assert hm.values.shape == (8, 2)
    for row in rows:
        p = row["params"]
        y = f"f={p['f']} n={p['n']} protocol={p['protocol']} scheduler={p['scheduler']}"
        v = hm.values[hm.y_labels.index(y), hm.x_labels.index(p["strategy"])]
        w = worst_ratio(row)
        assert (math.isnan(v) and math.isnan(w)) or v == w
    by = plot_heatmap(rows, tmp_path / "h2.png", x="scheduler", y="n")
    assert by.x_labels == ["targeted", "random"] and by.y_labels == ["7", "10"]
    # max over protocol and strategy: split is the worst, MDA's cells have no ratio
    np.testing.assert_allclose(by.values, [[1.2, 1.25], [1.5, 1.55]])


def test_worst_ratio_is_the_max_over_claims_and_checks():
    row = _row("c", {}, {"a": 0.5, "b": 1.5, "c": None})
    row["checks"] = {"agreement": {"max": 0.025, "bound": 0.01, "violated": 3}}
    assert worst_ratio(row) == pytest.approx(2.5)
    row["claims"]["c"] = {"worst_ratio": "inf"}     # the records' JSON for an infinite ratio
    assert worst_ratio(row) == math.inf
    assert math.isnan(worst_ratio(_row("c", {}, {"x": None})))


def test_heatmap_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="empty summary"):
        plot_heatmap([], tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"unknown x axis 'colour'; known: .*strategy.*cell rest"):
        plot_heatmap(_summary(), tmp_path / "h.png", x="colour")
    with pytest.raises(ValueError, match="unknown y axis 'nf'"):
        plot_heatmap(_summary(), tmp_path / "h.png", y="nf")
    with pytest.raises(ValueError, match="both 'n'"):
        plot_heatmap(_summary(), tmp_path / "h.png", x="n", y="n")


def test_plots_of_real_records_and_their_summary(tmp_path):
    from agreement.campaigns import load_spec, run_task, summarize

    spec = load_spec({"name": "p", "seeds": 3,
                      "axes": {"protocol": ["trimmed-mean", "mda"], "nf": [[4, 1], [5, 1]]},
                      "fixed": {"d": 2, "rounds": 3, "strategy": "split"}})
    records = [run_task(t) for t in spec.tasks()]   # MDA at (4, 1) is skipped: κ >= 1
    assert [r["status"] for r in records] == ["ok"] * 9, [r["error"] for r in records]
    plot = plot_diameters(records, tmp_path / "d.png")
    assert [p.cell_id for p in plot.cells] == [c.cell_id for c in spec.cells()]
    r = np.arange(4)
    for p, c in zip(plot.cells, spec.cells(), strict=True):
        n, f, d = c.params["n"], c.params["f"], c.params["d"]
        if c.params["protocol"] == "mda":
            expected = constants.mda_contraction(n, f) ** r
        else:
            expected = constants.tm_l2_contraction(n, f, d, 1) / constants.tm_contraction(
                n, f) * constants.tm_contraction(n, f) ** r
            expected[0] = 1.0
        np.testing.assert_allclose(p.bound, expected)
        assert np.all(p.median[1:] <= p.bound[1:])          # the runs hold their claims
    summary = summarize(records)
    hm = plot_heatmap(summary, tmp_path / "h.png", x="protocol", y="n")
    _png(tmp_path / "h.png")
    for row in summary:
        v = hm.values[hm.y_labels.index(str(row["params"]["n"])),
                      hm.x_labels.index(row["params"]["protocol"])]
        assert v == pytest.approx(float(row["worst_ratio"])) and v <= 1 + 1e-9
