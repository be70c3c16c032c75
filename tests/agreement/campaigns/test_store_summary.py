"""RecordStore (append, flush, torn last line, completed keys), to_dataframe, and the summary
per cell (worst ratio per claim with its seed, quantiles, counts) and its Markdown table."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pytest

from agreement.campaigns.runs import run_task
from agreement.campaigns.spec import load_spec
from agreement.campaigns.store import RecordStore, load_records, to_dataframe
from agreement.campaigns.summary import format_summary, summarize

# (4, 1) reaches 1% of the input diameter in 10 rounds (λ = 1/2); (6, 2), n = 3f, stalls
SPEC = {"name": "s", "seeds": 4,
        "axes": {"nf": [[4, 1], [6, 2]], "inputs": ["gaussian", "uniform"]},
        "fixed": {"d": 2, "rounds": 10, "unsafe": True}, "checks": {"agreement": 0.01}}


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    with warnings.catch_warnings():  # the (6, 2) cells are unsafe on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        return [run_task(t) for t in load_spec(SPEC).tasks()]


def test_append_records_completed_and_a_torn_last_line(tmp_path, records) -> None:
    path = tmp_path / "out" / "records.jsonl"
    store = RecordStore(path)
    assert store.records() == [] and store.completed() == set()
    for rec in records[:3]:
        store.append(rec)
    assert store.records() == records[:3]
    assert store.completed() == {r["key"] for r in records[:3]}
    line = json.dumps(records[3], sort_keys=True)
    with path.open("a") as fh:  # a process killed in the middle of a line
        fh.write(line[: len(line) // 2])
    assert load_records(path) == records[:3]
    again = RecordStore(path)  # a resumed campaign appends after the cut
    again.append(records[3])
    assert again.records() == records[:4]
    assert path.read_text().count("\n") == 4


def test_a_damaged_line_inside_the_file_is_an_error(tmp_path, records) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(records[0]) + "\n{oops\n" + json.dumps(records[1]) + "\n")
    with pytest.raises(ValueError, match=r"records\.jsonl:2: not a JSON record"):
        load_records(path)


def test_rewrite_replaces_the_file_and_a_key_written_twice_counts_once(tmp_path,
                                                                        records) -> None:
    store = RecordStore(tmp_path / "r.jsonl")
    store.append(records[1])
    store.append(records[0])
    store.append(records[1])
    assert store.records() == [records[0], records[1]]
    store.rewrite(records[:2])
    assert store.records() == records[:2] and not list(tmp_path.glob("*.tmp"))


def test_to_dataframe_one_row_per_record_params_flattened(tmp_path, records) -> None:
    store = RecordStore(tmp_path / "r.jsonl")
    for rec in records:
        store.append(rec)
    for df in (to_dataframe(records), to_dataframe(store.path)):
        assert len(df) == len(records)
        assert list(df["key"]) == [r["key"] for r in records]
        for col in ("n", "f", "d", "protocol", "strategy", "scheduler", "seed", "status",
                    "averaging_ratio", "verdict.tm-contraction.ratio",
                    "check.agreement.measured"):
            assert col in df.columns, col
        assert set(df[df["n"] == 6]["status"]) == {"violation"}
        assert set(df[df["n"] == 4]["status"]) == {"ok"}


def test_summarize_worst_ratio_with_its_seed_quantiles_and_counts(records) -> None:
    summary = summarize(records)
    assert [s["cell_id"] for s in summary] == [c.cell_id for c in load_spec(SPEC).cells()]
    for cell in summary:
        mine = [r for r in records if r["cell_id"] == cell["cell_id"]]
        assert cell["runs"] == 4 and cell["ok"] + cell["violations"] + cell["errors"] == 4
        if cell["params"]["n"] == 6:  # n = 3f: nothing claimed, the agreement check fails
            assert cell["violations"] == 4 and cell["violating_seeds"] == [0, 1, 2, 3]
            assert cell["worst_ratio"] is None and cell["no_claim"] == 4
            assert cell["checks"]["agreement"]["violated"] == 4
            continue
        assert cell["violations"] == 0 and cell["errors"] == 0
        for name, c in cell["claims"].items():
            ratios = [r["verdicts"][name]["ratio"] for r in mine]
            assert c["evaluated"] == 4 and c["worst_ratio"] == max(ratios)
            assert c["worst_seed"] == mine[ratios.index(max(ratios))]["seed"]
            assert c["q05"] <= c["median"] <= c["q95"] <= c["worst_ratio"]
            assert c["median"] in ratios  # empirical quantiles: values of the sample
        worst = max(c["worst_ratio"] for c in cell["claims"].values())
        assert cell["worst_ratio"] == worst
        assert cell["claims"][cell["worst_claim"]]["worst_ratio"] == worst
        avg = [r["averaging_ratio"] for r in mine]
        assert cell["averaging_ratio"]["max"] == max(avg)
        assert cell["averaging_ratio"]["median"] == float(
            np.quantile(avg, 0.5, method="inverted_cdf"))


def test_summarize_on_hand_made_records() -> None:
    def rec(seed: int, ratio: float, status: str = "ok") -> dict[str, Any]:
        return {"key": f"c/{seed}", "cell_id": "c", "params": {"n": 4}, "seed": seed,
                "status": status, "averaging_ratio": ratio / 10, "final_diameter_ratio": 0.0,
                "verdicts": {"x": {"status": "holds" if ratio <= 1 else "violated",
                                   "ratio": ratio}}, "checks": {}}
    recs = [rec(s, r) for s, r in enumerate([0.2, 0.9, 0.4, 1.5, 0.3])]
    recs[3]["status"] = "violation"
    recs.append({"key": "c/9", "cell_id": "c", "params": {"n": 4}, "seed": 9,
                 "status": "error", "verdicts": {}, "checks": {}})
    [s] = summarize(recs)
    assert (s["runs"], s["ok"], s["violations"], s["errors"]) == (6, 4, 1, 1)
    assert s["claims"]["x"] == {"evaluated": 5, "violated": 1, "worst_ratio": 1.5,
                                "worst_seed": 3, "runs": 5, "q05": 0.2, "median": 0.4,
                                "q95": 1.5}
    assert (s["worst_ratio"], s["worst_claim"], s["worst_seed"]) == (1.5, "x", 3)
    assert s["error_seeds"] == [9] and s["violating_seeds"] == [3]


def test_format_summary_is_a_markdown_table(records) -> None:
    text = format_summary(summarize(records))
    lines = text.splitlines()
    assert lines[0].startswith("| cell | runs | ok | violations | errors | worst ratio")
    assert len(lines) == 2 + 4
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    row = next(line for line in lines if "n6-f2" in line)
    assert "| 4 | 0 | 4 | 0 | no claim; agreement" in row
    row = next(line for line in lines if "n4-f1-d2-split" in line)
    assert "(tm-" in row and ", seed " in row
