"""Running a campaign: every task of a spec, on a local process pool or a Dask cluster.

:func:`run_campaign` (exported as :func:`agreement.campaign`) runs the tasks of a
:class:`~agreement.campaigns.spec.CampaignSpec` (cell-major, then seed) with
:func:`~agreement.campaigns.runs.run_task` and writes, under ``out``:

- ``records.jsonl``: one record per run, appended as each finishes (an interrupted campaign
  keeps them), rewritten in task order at the end;
- ``failures.jsonl``: the violations and errors, each with its replay command and its
  reduced version;
- ``summary.json`` / ``summary.md``: :func:`~agreement.campaigns.summary.summarize`, and its
  Markdown table;
- ``spec.toml``: the spec as run (what ``load_spec`` reads back).

Runs are independent and each is a function of its task alone (one seed drives inputs,
scheduler and strategy: docs/architecture.md, "The core idea"), so the records do not depend
on where or in which order they ran: one worker, a pool of k and a Dask cluster write
identical files except each record's ``wall_time``. Resume: the keys already in
``records.jsonl`` are not run again (``resume=False``, the command line's ``--fresh``,
starts over); a spec that differs from the ``spec.toml`` already there in anything but its
seeds is refused, so records of two studies are never mixed.

Where it runs: ``workers=1`` in this process; ``workers=k`` (default ``os.cpu_count()``) a
``concurrent.futures.ProcessPoolExecutor`` fed with chunks of tasks, a few per worker in
flight so the progress bar moves and memory stays bounded; ``cluster="tcp://HOST:PORT"`` (or
a ``distributed.Client``) the same chunks through ``client.submit`` on a Dask cluster
(``pip install "jungle[dask]"``). Every worker must have the same Jungle installed, and any
plugin the spec names imported (a process pool started by fork inherits this process's; on a
platform that spawns, call :func:`run_campaign` under ``if __name__ == "__main__":``).

Across hosts (Dask's own command line, installed with ``distributed``): start a scheduler on
one host, ``dask scheduler --port 8786``; on every host, workers of one thread each (a run is
CPU-bound Python: threads of one process share its GIL), ``dask worker tcp://HOST:8786
--nworkers N --nthreads 1``; then ``jungle campaign SPEC.toml --cluster tcp://HOST:8786``
from any host that reaches the scheduler. The files are written where the command runs; the
workers send back records only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runs import reduce_failure, run_task
from .spec import CampaignSpec, Task, load_spec
from .store import RecordStore
from .summary import format_summary, summarize

FILES = {"records": "records.jsonl", "failures": "failures.jsonl", "summary": "summary.json",
         "summary_md": "summary.md", "spec": "spec.toml"}
"""The files a campaign writes under its ``out`` folder, by role."""

CONNECT_TIMEOUT = 20.0
"""Seconds to wait for a Dask scheduler before ``--cluster`` is reported unreachable (one
just started takes a few seconds to listen on a loaded machine)."""

WORKER_TIMEOUT = 60.0
"""Seconds to wait for the first Dask worker to join the scheduler."""

FAILED = ("violation", "error")
"""The record statuses that are failures (saved to ``failures.jsonl``, exit status 1)."""


@dataclass
class CampaignResult:
    """What :func:`run_campaign` returns: the records in task order, the summary per cell,
    the failures (violations and errors with their replays), the skipped cells, where the
    files are, and how many runs this call computed (``computed``) or found already done
    (``resumed``)."""

    name: str
    out: Path
    records: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    computed: int = 0
    resumed: int = 0
    wall_time: float = 0.0
    where: str = "local"

    @property
    def ok(self) -> bool:
        """No violation and no error."""
        return not self.failures

    @property
    def paths(self) -> dict[str, str]:
        """The files written, by role (:data:`FILES`)."""
        return {role: str(self.out / name) for role, name in FILES.items()}

    def to_dataframe(self) -> Any:
        """The records as a pandas DataFrame (:func:`~agreement.campaigns.store.
        to_dataframe`: one row per run, the parameters flattened to columns)."""
        from .store import to_dataframe

        return to_dataframe(self.records)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict: everything but the records (they are in ``records.jsonl``)."""
        return {"name": self.name, "out": str(self.out), "paths": self.paths, "ok": self.ok,
                "runs": len(self.records), "computed": self.computed, "resumed": self.resumed,
                "wall_time": self.wall_time, "where": self.where,
                "skipped": self.skipped,
                "summary": self.summary, "failures": self.failures}


def task_key(task: Task) -> str:
    """The record key of a task, ``"<cell_id>/<seed>"`` (:attr:`Task.key`)."""
    return task.key


def run_and_reduce(task: Task) -> dict[str, Any]:
    """:func:`run_task`, and for a violation or an error its reduced version
    (:func:`reduce_failure`) when the record has none yet, so that the reduction runs on
    the worker and is kept by a resumed campaign. Never raises: a reduction that fails
    leaves ``reduced`` null and says why in ``reduce_error``."""
    rec = run_task(task)
    if rec.get("status") in FAILED and rec.get("reduced") is None:
        try:
            rec["reduced"] = reduce_failure(rec)
        except Exception as exc:  # the record stands; the reduction is a bonus
            rec["reduced"] = None
            rec["reduce_error"] = f"{type(exc).__name__}: {exc}"
    return rec


def run_chunk(tasks: list[Task]) -> list[dict[str, Any]]:
    """:func:`run_and_reduce` on each task of a chunk (the unit a worker receives)."""
    return [run_and_reduce(t) for t in tasks]


def task_cost(task: Task) -> float:
    """A run's relative cost, for balancing only: ``n² · rounds`` at the message level (each
    round is n reliable broadcasts of n² messages; measured: 0.09-0.13 ms per n²·round for
    n = 4..13, d <= 16), ``n · rounds · d`` at the round level (one rule per node)."""
    p = task.params
    n, rounds = int(p.get("n", 1)), int(p.get("rounds") or 10)
    if p.get("engine", "message") == "message":
        return float(n * n * rounds)
    return float(n * rounds * max(1, int(p.get("d", 1))) / 16)


def chunks(tasks: list[Task], workers: int) -> list[list[Task]]:
    """``tasks`` cut into consecutive chunks of at most 16 (about 64 chunks per worker, so
    the bar moves and the last chunks are short), the costliest chunks first
    (:func:`task_cost`: longest-first keeps the workers busy until the end; the order of the
    records does not depend on it, they are sorted in task order at the end)."""
    size = max(1, min(16, len(tasks) // max(1, 64 * workers)))
    parts = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    return sorted(parts, key=lambda part: -sum(task_cost(t) for t in part))


def _as_spec(spec: CampaignSpec | str | os.PathLike[str] | dict[str, Any]) -> CampaignSpec:
    return spec if isinstance(spec, CampaignSpec) else load_spec(spec)


def run_campaign(
    spec: CampaignSpec | str | os.PathLike[str] | dict[str, Any],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    cluster: Any = None,
    progress: bool | None = None,
    resume: bool = True,
) -> CampaignResult:
    """Run every task of ``spec`` (a :class:`CampaignSpec`, a TOML path or text, or a dict)
    and write the campaign's files under ``out`` (module doc).

    ``workers``: local processes (default ``os.cpu_count()``; 1 runs in this process);
    ``cluster``: a Dask scheduler address ``"tcp://HOST:PORT"`` or a ``distributed.Client``
    (then ``workers`` is ignored); ``progress``: a tqdm bar on stderr with runs/s and the ETA
    (default: when stderr is a terminal); ``resume``: keep the records already in
    ``out/records.jsonl`` and run only the others (False: start over).
    Guarantee: the records, in task order, are the same for any ``workers`` and on a cluster,
    except ``wall_time`` (each run is a function of its task: runs.py)."""
    spec = _as_spec(spec)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _prepare(out, spec, resume)
    tasks = spec.tasks()
    store = RecordStore(out / FILES["records"])
    done = store.completed() if resume else set()
    _check_no_strangers(done, tasks, out)
    (out / FILES["spec"]).write_text(spec.to_toml())
    pending = [t for t in tasks if task_key(t) not in done]
    resumed = len(tasks) - len(pending)
    show = sys.stderr.isatty() if progress is None else progress
    with _bar(len(tasks), resumed, show, spec.name) as tick:
        if cluster is not None:
            where = _run_dask(pending, cluster, store.append, tick)
        else:
            n = workers or os.cpu_count() or 1
            where = _run_local(pending, n, store.append, tick)
    records = _final_records(store, tasks)
    result = _write_outputs(out, spec, records)
    result.computed, result.resumed, result.where = len(pending), resumed, where
    result.wall_time = time.perf_counter() - t0
    return result


def _prepare(out: Path, spec: CampaignSpec, resume: bool) -> None:
    """Start over (``resume=False``: the earlier files removed) or check that the spec
    already in ``out`` is this one up to its seeds."""
    spec_path = out / FILES["spec"]
    if not resume:
        for name in FILES.values():
            (out / name).unlink(missing_ok=True)
    elif spec_path.exists() and (out / FILES["records"]).exists():
        try:
            before = load_spec(spec_path).to_dict()
        except (ValueError, OSError):
            before = None
        now = spec.to_dict()
        if before is None or {k: v for k, v in before.items() if k != "seeds"} != {
                k: v for k, v in now.items() if k != "seeds"}:
            raise ValueError(
                f"{out} holds the records of another campaign ({spec_path} differs from this "
                "spec in more than its seeds): pass resume=False to start over, or another "
                "out folder")


def _check_no_strangers(done: set[str], tasks: list[Task], out: Path) -> None:
    """Refuse to resume over records that this spec would drop (the final rewrite keeps
    the spec's tasks only): seeds outside a smaller ``--seeds`` range, say."""
    strangers = done - {task_key(t) for t in tasks}
    if strangers:
        raise ValueError(
            f"{out} holds {len(strangers)} records that are not tasks of this spec (e.g. "
            f"{min(strangers)}: seeds outside its range?); rerun with their seeds, pass "
            "resume=False to drop them, or give another out folder")


class _bar:
    """A tqdm progress bar over the tasks (``initial`` already done) as a context manager
    whose value is ``tick(k)``; nothing at all when ``show`` is false."""

    def __init__(self, total: int, initial: int, show: bool, name: str) -> None:
        self.total, self.initial, self.show, self.name = total, initial, show, name
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if self.show:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.initial, unit="run",
                            desc=f"campaign {self.name}", file=sys.stderr, smoothing=0.1)
            return self.bar.update
        return lambda _k: None

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_local(pending: list[Task], workers: int, emit: Callable[[dict[str, Any]], None],
               tick: Callable[[int], None]) -> str:
    """The pending tasks in this process (one worker) or on a process pool, each record
    passed to ``emit`` as its chunk finishes; at most ``3 * workers`` chunks in flight."""
    if workers == 1 or len(pending) <= 1:
        for task in pending:
            emit(run_and_reduce(task))
            tick(1)
        return "local, 1 worker (in process)"
    todo: Iterator[list[Task]] = iter(chunks(pending, workers))
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        running = {pool.submit(run_chunk, c) for c in _take(todo, 3 * workers)}
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                recs = fut.result()
                for rec in recs:
                    emit(rec)
                tick(len(recs))
                running |= {pool.submit(run_chunk, c) for c in _take(todo, 1)}
    except BaseException:  # interrupted: what was emitted stays; do not wait for the rest
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return f"local, {workers} worker processes"


def _take(it: Iterator[list[Task]], k: int) -> Iterable[list[Task]]:
    for _ in range(k):
        nxt = next(it, None)
        if nxt is None:
            return
        yield nxt


def dask_client(cluster: Any) -> tuple[Any, bool]:
    """``(client, owned)``: the ``distributed.Client`` given, or a new one connected to the
    scheduler address ``cluster`` (``owned``: close it after). ImportError naming the extra
    when ``distributed`` is absent; ValueError naming ``--cluster`` when the scheduler
    cannot be reached."""
    try:
        import distributed
    except ImportError:
        raise ImportError('--cluster needs the distributed package: pip install '
                          '"jungle[dask]" (or pip install distributed)') from None
    if isinstance(cluster, distributed.Client):
        return cluster, False
    if not isinstance(cluster, str):
        raise ValueError(f"cluster must be a scheduler address 'tcp://HOST:PORT' or a "
                         f"distributed.Client, got {type(cluster).__name__}")
    try:
        return distributed.Client(cluster, timeout=CONNECT_TIMEOUT, set_as_default=False), True
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"--cluster {cluster}: cannot reach the Dask scheduler ({exc})"
                         ) from None


def _run_dask(pending: list[Task], cluster: Any, emit: Callable[[dict[str, Any]], None],
              tick: Callable[[int], None]) -> str:
    """The pending tasks on a Dask cluster, in chunks (``client.submit(run_chunk, chunk)``,
    ``as_completed``), each record passed to ``emit`` as its chunk finishes."""
    client, owned = dask_client(cluster)
    try:
        from distributed import as_completed

        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except TimeoutError:
            raise ValueError(
                f"--cluster {client.scheduler.address}: no worker joined the scheduler in "
                f"{WORKER_TIMEOUT:.0f} s; start one with `dask worker "
                f"{client.scheduler.address} --nthreads 1`") from None
        n = max(1, sum(client.nthreads().values()))
        futures = [client.submit(run_chunk, c, pure=False) for c in chunks(pending, n)]
        for fut in as_completed(futures, loop=client.loop):
            recs = fut.result()
            for rec in recs:
                emit(rec)
            tick(len(recs))
            fut.release()
        n = sum(client.nthreads().values())
        return f"dask cluster {client.scheduler.address}, {n} worker threads"
    finally:
        if owned:
            client.close()


def _final_records(store: RecordStore, tasks: list[Task]) -> list[dict[str, Any]]:
    """The records of ``tasks`` in task order (the last one of a key, if a key was
    appended twice), and ``records.jsonl`` rewritten that way (atomically)."""
    by_key = {rec["key"]: rec for rec in store.records()}
    records = [by_key[t.key] for t in tasks if t.key in by_key]
    store.rewrite(records)
    return records


def failure_entry(rec: dict[str, Any]) -> dict[str, Any]:
    """The ``failures.jsonl`` line of a failed record: what failed (the violated claims and
    checks, or the error), its replay and its reduced version."""
    violated = rec.get("violated")
    if violated is None:
        violated = [k for k, v in (rec.get("verdicts") or {}).items()
                    if v.get("status") == "violated"]
        violated += [f"check:{k}" for k, v in (rec.get("checks") or {}).items()
                     if v.get("status") == "violated"]
    return {"key": rec["key"], "cell_id": rec.get("cell_id"), "seed": rec.get("seed"),
            "params": rec.get("params"), "status": rec.get("status"), "violated": violated,
            "error": rec.get("error"), "replay": rec.get("replay"),
            "reduced": rec.get("reduced"), "reduce_error": rec.get("reduce_error")}


def _write_outputs(out: Path, spec: CampaignSpec, records: list[dict[str, Any]]
                   ) -> CampaignResult:
    summary = summarize(records)
    failures = [failure_entry(r) for r in records if r.get("status") in FAILED]
    skipped = skipped_entries(spec)
    with (out / FILES["failures"]).open("w") as fh:
        for entry in failures:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
    (out / FILES["summary"]).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    md = format_summary(summary)
    if skipped:
        md += "\n\nSkipped cells (below the protocol's resilience; set unsafe = true to run "
        md += "them):\n" + "\n".join(
            f"- {s['cell_id']}: {s['reason']}" for s in skipped)
    (out / FILES["summary_md"]).write_text(md + "\n")
    return CampaignResult(name=spec.name, out=out, records=records, summary=summary,
                          failures=failures, skipped=skipped)


def skipped_entries(spec: CampaignSpec) -> list[dict[str, Any]]:
    """The cells of ``spec`` that do not run, as ``{"cell_id", "reason"}``."""
    return [{"cell_id": cell.cell_id, "reason": why} for cell, why in spec.skipped_cells()]
