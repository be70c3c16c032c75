"""agreement.campaigns: studies of many seeded runs, a grid of cells times a seed range.

A campaign is a :class:`CampaignSpec` (Python, or a TOML file read by :func:`load_spec`): the
grid's axes (protocol, n and f, d, strategy, scheduler, inputs, engine, rule parameters...),
values fixed for every cell, a seed range and the checks. :func:`campaign` runs every task
(one cell, one seed) with :func:`run_task` on a local process pool or a Dask cluster and
writes one record per run (JSON lines: :func:`load_records`, :func:`to_dataframe`), the
summary per cell (:func:`summarize`: runs, violations, worst ratio to each bound of the
claims table of docs/theory.md, quantiles), and every violation or error with the command
that replays it and a reduced version. The command line is ``python -m agreement campaign
SPEC.toml`` (``jungle campaign``).

Modules: :mod:`.spec` (the spec, its cells and tasks), :mod:`.runs` (one run as a record,
the reduction of a failure), :mod:`.store` (the JSON-lines records), :mod:`.summary`,
:mod:`.execute` (the pool, Dask, resume, the files), :mod:`.plots` (matplotlib, lazily).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "CampaignResult": "execute", "run_campaign": "execute", "campaign": "execute",
    "reduce_failure": "runs", "run_task": "runs",
    "CampaignSpec": "spec", "Cell": "spec", "Task": "spec", "load_spec": "spec",
    "RecordStore": "store", "load_records": "store", "to_dataframe": "store",
    "format_summary": "summary", "summarize": "summary",
    "plot_diameters": "plots", "plot_heatmap": "plots",
}
"""Each exported name and the module of this package that defines it."""


def __getattr__(name: str) -> Any:
    """The exported names, each imported from its module on first use: importing one module
    of the package (``agreement.campaigns.spec``) imports no other, and the plots import
    matplotlib only when drawn. ``campaign`` is :func:`~agreement.campaigns.execute.
    run_campaign` (``agreement.campaign(spec, out, *, workers=None, cluster=None,
    progress=None, resume=True)``)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{home}")
    value = getattr(module, "run_campaign" if name == "campaign" else name)
    globals()[name] = value
    return value


__all__ = sorted(_HOMES)
