"""Campaign execution (agreement.campaigns.execute): the records do not depend on the number
of workers or on a Dask cluster, an interrupted campaign resumes with its finished records
kept, and the files a campaign writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import agreement
from agreement.campaigns import load_spec, run_campaign
from agreement.campaigns.execute import FILES, chunks, task_cost

SMALL: dict[str, Any] = {
    "name": "small",
    "seeds": {"start": 0, "count": 10},
    # mda at (4, 1) is below its resilience (kappa >= 1): a skipped cell, so the grid is mixed
    "axes": {"protocol": ["trimmed-mean", "mda"], "nf": [[4, 1], [7, 2]],
             "strategy": ["split", "equivocate"]},
    "fixed": {"d": 3, "rounds": 2, "scheduler": "targeted", "engine": "message",
              "codec": True},
    "checks": {"claims": True},
}


def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records without ``wall_time`` (the one field that may differ between two runs)."""
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in records]


def file_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / FILES["records"]).read_text().splitlines()]


def same_files(a: Path, b: Path) -> None:
    """Two campaign folders hold the same records (but wall_time) and identical other files."""
    assert strip(file_records(a)) == strip(file_records(b))
    for role in ("failures", "summary", "summary_md", "spec"):
        assert (a / FILES[role]).read_text() == (b / FILES[role]).read_text(), role


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("w1")
    return out, run_campaign(SMALL, out, workers=1, progress=False)


def test_one_worker_writes_every_task_in_task_order(one_worker: tuple[Path, Any]) -> None:
    out, res = one_worker
    spec = load_spec(SMALL)
    keys = [t.key for t in spec.tasks()]
    assert [r["key"] for r in res.records] == keys
    assert [r["key"] for r in file_records(out)] == keys
    assert res.computed == len(keys) and res.resumed == 0
    assert {r["status"] for r in res.records} <= {"ok", "violation", "error"}
    assert res.skipped and all(s["reason"] for s in res.skipped)
    assert load_spec(out / FILES["spec"]) == spec  # spec.toml is the spec as run
    assert json.loads((out / FILES["summary"]).read_text()) == res.summary


def test_two_workers_give_the_same_records_in_the_same_order(
        one_worker: tuple[Path, Any], tmp_path: Path) -> None:
    out1, res1 = one_worker
    res2 = run_campaign(SMALL, tmp_path, workers=2, progress=False)
    assert res2.where.startswith("local, 2 worker")
    assert strip(res2.records) == strip(res1.records)
    same_files(out1, tmp_path)


def test_a_local_dask_cluster_gives_the_same_records(one_worker: tuple[Path, Any],
                                                      tmp_path: Path) -> None:
    """Through the command line's ``--cluster ADDRESS``, on a cluster of 2 worker processes
    started here (one thread each)."""
    distributed = pytest.importorskip("distributed")
    from agreement.cli import main

    out1, _ = one_worker
    spec_file = tmp_path / "small.toml"
    spec_file.write_text(load_spec(SMALL).to_toml())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rc = main(["campaign", str(spec_file), "--out", str(tmp_path / "dask"), "--cluster",
                   cluster.scheduler_address, "--json"])
    assert rc == 0
    same_files(out1, tmp_path / "dask")


def test_a_dask_client_can_be_passed_in(one_worker: tuple[Path, Any], tmp_path: Path) -> None:
    """``cluster=`` a ``distributed.Client`` (here of an in-process cluster): used, not
    closed."""
    distributed = pytest.importorskip("distributed")
    out1, _ = one_worker
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(
                                      cluster, set_as_default=False) as client:
        res = run_campaign(SMALL, tmp_path, cluster=client, progress=False)
        assert res.where.startswith("dask cluster") and client.status == "running"
    same_files(out1, tmp_path)


def test_resume_keeps_the_finished_records_and_ends_like_an_uninterrupted_run(
        one_worker: tuple[Path, Any], tmp_path: Path) -> None:
    """An interruption leaves k whole lines and a torn one: the rerun keeps the k records
    (their wall_time unchanged: not recomputed), runs the rest, and ends with the files of
    the uninterrupted campaign."""
    out1, res1 = one_worker
    lines = (out1 / FILES["records"]).read_text().splitlines()
    k = 7
    for name in ("spec",):
        (tmp_path / FILES[name]).write_text((out1 / FILES[name]).read_text())
    (tmp_path / FILES["records"]).write_text("\n".join(lines[:k]) + "\n" + lines[k][:40])
    res = run_campaign(SMALL, tmp_path, workers=2, progress=False)
    assert res.resumed == k and res.computed == len(res1.records) - k
    kept = [json.loads(line) for line in lines[:k]]
    assert [r["wall_time"] for r in res.records[:k]] == [r["wall_time"] for r in kept]
    same_files(out1, tmp_path)
    again = run_campaign(SMALL, tmp_path, workers=1, progress=False)  # nothing left to run
    assert again.computed == 0 and again.resumed == len(res1.records)
    assert again.records == res.records


def test_fresh_starts_over(one_worker: tuple[Path, Any], tmp_path: Path) -> None:
    _, res1 = one_worker
    run_campaign(SMALL, tmp_path, workers=1, progress=False)
    before = file_records(tmp_path)
    res = run_campaign(SMALL, tmp_path, workers=1, progress=False, resume=False)
    assert res.computed == len(res1.records) and res.resumed == 0
    assert strip(res.records) == strip(before)


def test_a_different_spec_in_the_same_folder_is_refused(one_worker: tuple[Path, Any],
                                                        tmp_path: Path) -> None:
    small = {**SMALL, "seeds": 2}
    run_campaign(small, tmp_path, workers=1, progress=False)
    other = {**small, "fixed": {**SMALL["fixed"], "rounds": 3}}
    with pytest.raises(ValueError, match=r"another campaign.*resume=False"):
        run_campaign(other, tmp_path, workers=1, progress=False)
    more = {**small, "seeds": 3}  # more seeds of the same study resume
    res = run_campaign(more, tmp_path, workers=1, progress=False)
    assert res.resumed == 2 * len(res.records) // 3
    with pytest.raises(ValueError, match="not tasks of this spec"):  # would drop seed 2
        run_campaign(small, tmp_path, workers=1, progress=False)
    assert len(file_records(tmp_path)) == len(res.records)


def test_failures_file_holds_each_violation_with_its_replay(tmp_path: Path) -> None:
    unsafe = {"name": "unsafe", "seeds": 3, "axes": {"nf": [[3, 1], [6, 2]]},
              "fixed": {"unsafe": True, "rounds": 3, "d": 4},
              "checks": {"claims": True, "agreement": 0.01}}
    with pytest.warns(RuntimeWarning):
        res = run_campaign(unsafe, tmp_path, workers=1, progress=False)
    assert not res.ok and len(res.failures) == len(res.records) == 6
    lines = (tmp_path / FILES["failures"]).read_text().splitlines()
    assert [json.loads(x) for x in lines] == res.failures
    for fail in res.failures:
        assert fail["status"] == "violation" and "check:agreement" in fail["violated"]
        assert fail["replay"]["command"].startswith("python -m agreement simulate")
        assert fail["reduced"]["replay"]["command"].startswith("python -m agreement simulate")


def test_progress_bar_shows_the_rate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_campaign({**SMALL, "seeds": 2}, tmp_path, workers=1, progress=True)
    err = capsys.readouterr().err
    assert "run/s" in err and "campaign small" in err
    run_campaign({**SMALL, "seeds": 2}, tmp_path / "quiet", workers=1, progress=False)
    assert capsys.readouterr().err == ""


def test_agreement_exports_campaign_lazily() -> None:
    assert agreement.campaign is run_campaign
    assert agreement.load_spec is load_spec
    with pytest.raises(AttributeError):
        _ = agreement.no_such_name


def test_bad_workers_and_cluster_are_refused(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_campaign(SMALL, tmp_path, workers=0)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "jungle\[dask\]"'):
        run_campaign({**SMALL, "seeds": 1}, tmp_path, cluster="tcp://127.0.0.1:1",
                     progress=False)


def test_chunks_cover_the_tasks_in_order() -> None:
    tasks = load_spec(SMALL).tasks()
    for workers in (1, 2, 7):
        parts = chunks(tasks, workers)
        assert sorted((t for part in parts for t in part), key=tasks.index) == tasks
        assert sum(len(p) for p in parts) == len(tasks)
        assert all(1 <= len(p) <= 16 for p in parts)
        costs = [sum(task_cost(t) for t in p) for p in parts]
        assert costs == sorted(costs, reverse=True)  # the costliest first


def test_an_unreachable_scheduler_names_the_flag(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    from agreement.campaigns import execute

    monkeypatch.setattr(execute, "CONNECT_TIMEOUT", 0.5)
    with pytest.raises(ValueError, match=r"--cluster tcp://127.0.0.1:1: cannot reach"):
        run_campaign({**SMALL, "seeds": 1}, tmp_path, cluster="tcp://127.0.0.1:1",
                     progress=False)


def test_the_result_as_a_dataframe(one_worker: tuple[Path, Any]) -> None:
    pytest.importorskip("pandas")
    _, res = one_worker
    df = res.to_dataframe()
    assert len(df) == len(res.records) and list(df["key"]) == [r["key"] for r in res.records]


def test_a_scheduler_without_workers_is_reported(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    from agreement.campaigns import execute

    monkeypatch.setattr(execute, "WORKER_TIMEOUT", 0.5)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None
                                  ) as cluster, pytest.raises(ValueError,
                                                              match="no worker joined"):
        run_campaign({**SMALL, "seeds": 1}, tmp_path, cluster=cluster.scheduler_address,
                     progress=False)
