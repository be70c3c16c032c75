"""Plots of a campaign: diameters per round with quantile bands, and a heatmap of worst ratios.

Two figures, drawn from a campaign's records and summary (``agreement.campaigns``), never from
a rerun:

- :func:`plot_diameters`: per cell, the honest ℓ2 diameter after every round relative to the
  input diameter, ``Δ2(x^r) / Δ2(x^0)``, over the cell's seeds: the median and the 5-95%
  quantile band, on a log scale, beside the proven contraction where the records' verdicts
  carry one (docs/theory.md §5.1, §5.3): for trimmed mean ``min(√d, √(n-1))·λ^r`` with
  ``λ = f/(n-2f)`` (``tm-l2-contraction``, proofs/trimmed_mean.md Corollary 4), for MDA
  ``κ(n,f)^r`` (``mda-contraction``, proofs/mda.md Theorem 1), in general ``B^r`` for a
  per-round ℓ2 bound ``B`` (the claims of :mod:`agreement.claims` whose measure is
  ``l2-contraction``). A cell without such a verdict (MVE in d >= 2, median, krum, a run below
  the protocol's resilience, another gather) gets no line: nothing is proven there.
- :func:`plot_heatmap`: the worst ratio ``measured / bound`` over every claim of the cell (the
  summary's per-claim worst ratios, see :func:`agreement.campaigns.summary.summarize`), on a
  grid of two chosen axes, the cells sharing a grid position aggregated by their maximum;
  the colour scale is centred on 1.0, the bound (a ratio above 1 is a violated claim).

Both return what they drew (:class:`DiameterPlot`, :class:`HeatmapPlot`) so that a caller or
a test can read the numbers behind the picture. matplotlib is imported lazily (the ``plot``
extra: ``pip install "jungle[plot]"``); the Agg backend is used, so no display is needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..claims import BY_NAME

QUANTILES = (0.05, 0.5, 0.95)
"""The band of :func:`plot_diameters`: the 5% and 95% quantiles around the median."""
EXACT = 1e-12
"""Relative diameters at or below this are exact agreement up to float64 rounding: they are
drawn on a floor line of the log scale (a tenth of the smallest larger value drawn), labelled
"exact agreement"; the returned arrays keep the measured values."""
MAX_CELLS = 36
"""At most this many panels in one :func:`plot_diameters` figure (see its ``max_cells``)."""
REST = "cell rest"
"""The axis name of :func:`plot_heatmap` for "every other parameter that varies"."""


@dataclass(frozen=True)
class CellDiameters:
    """One panel of :func:`plot_diameters`: ``rounds`` (0..T), the quantiles (5%, median,
    95%) of ``Δ2(x^r)/Δ2(x^0)`` over the ``runs`` seeds used, and ``bound`` (the proven
    ``Δ2(x^r)/Δ2(x^0)`` bound per round, ``None`` when the records carry no ℓ2 contraction)."""

    cell_id: str
    runs: int
    rounds: np.ndarray
    q05: np.ndarray
    median: np.ndarray
    q95: np.ndarray
    bound: np.ndarray | None


@dataclass(frozen=True)
class DiameterPlot:
    """What :func:`plot_diameters` drew: the file and one :class:`CellDiameters` per panel;
    ``omitted`` lists the cells left out by ``max_cells`` (the least bad ones)."""

    path: Path
    cells: list[CellDiameters]
    omitted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HeatmapPlot:
    """What :func:`plot_heatmap` drew: ``values[i, j]`` is the worst ratio to bound of the cells
    at ``y_labels[i]``, ``x_labels[j]`` (NaN: no claim there, or no such cell)."""

    path: Path
    x: str
    y: str
    x_labels: list[str]
    y_labels: list[str]
    values: np.ndarray


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('campaign plots need matplotlib: pip install "jungle[plot]" '
                          "(or pip install matplotlib)") from None
    return plt


def _relative_diameters(record: Mapping[str, Any]) -> np.ndarray | None:
    """``Δ2(x^r)/Δ2(x^0)`` of one record, or ``None`` for a record without a usable history
    (an error, or an input diameter of 0: nothing to normalise by)."""
    diam = record.get("diameters")
    if not diam:
        return None
    d = np.asarray(diam, dtype=float)
    base = record.get("input_diameter")
    base = float(d[0]) if base is None else float(base)
    if not math.isfinite(base) or base <= 0:
        return None
    return d / base


def contraction_line(record: Mapping[str, Any], rounds: int) -> np.ndarray | None:
    """The proven bound on ``Δ2(x^r)/Δ2(x^0)`` for ``r = 0..rounds``, read from the record's
    verdicts (so it is the bound the run was checked against), or ``None``.

    Trimmed mean (``tm-l2-contraction`` with bound ``B = s·λ``, ``s = min(√d, √(n-1))``, and
    ``tm-contraction`` with bound ``λ``): ``s·λ^r`` for ``r >= 1`` (proofs/trimmed_mean.md,
    Corollary 4: the ranges shrink by ``λ`` each round, the factor ``s`` is paid once).
    Otherwise a per-round ℓ2 contraction claim with bound ``B`` (MDA's ``κ``): ``B^r`` by
    induction on the rounds. Round 0 is 1 (the inputs themselves)."""
    verdicts = record.get("verdicts") or {}

    def bound(name: str) -> float | None:
        v = verdicts.get(name)
        if not isinstance(v, Mapping) or v.get("status") not in ("holds", "violated"):
            return None
        b = v.get("bound")
        return float(b) if b is not None and math.isfinite(float(b)) else None

    r = np.arange(rounds + 1, dtype=float)
    lam, l2 = bound("tm-contraction"), bound("tm-l2-contraction")
    if lam is not None and l2 is not None and lam > 0:
        line = (l2 / lam) * lam**r
        line[0] = 1.0
        return line
    for name in sorted(verdicts):
        claim = BY_NAME.get(name)
        b = bound(name)
        if claim is not None and claim.measure == "l2-contraction" and b is not None:
            return b**r
    return None


def _group(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        groups.setdefault(str(rec["cell_id"]), []).append(rec)
    return groups


def cell_diameters(cell_id: str, records: Sequence[Mapping[str, Any]]) -> CellDiameters | None:
    """The quantiles (:data:`QUANTILES`) over the records of one cell of ``Δ2(x^r)/Δ2(x^0)``
    per round, and the proven line (:func:`contraction_line`); ``None`` when no record of the
    cell has a usable history. Records of unequal length (a run that stopped early) are
    padded with NaN and the quantiles of each round are taken over the runs that reached it."""
    rows = [(rec, rel) for rec in records if (rel := _relative_diameters(rec)) is not None]
    if not rows:
        return None
    t = max(len(rel) for _, rel in rows)
    mat = np.full((len(rows), t), np.nan)
    for i, (_, rel) in enumerate(rows):
        mat[i, : len(rel)] = rel
    q05, med, q95 = np.nanquantile(mat, QUANTILES, axis=0)
    line = None
    for rec, _ in rows:
        if (line := contraction_line(rec, t - 1)) is not None:
            break
    return CellDiameters(cell_id, len(rows), np.arange(t), q05, med, q95, line)


def _select(groups: dict[str, list[Mapping[str, Any]]], cells: Sequence[str] | None,
            max_cells: int) -> tuple[list[CellDiameters], list[str]]:
    if cells is not None:
        unknown = [c for c in cells if c not in groups]
        if unknown:
            raise ValueError(f"plot_diameters: cells {unknown} have no records; known cells: "
                             f"{', '.join(list(groups)[:20])}{' ...' if len(groups) > 20 else ''}")
        groups = {c: groups[c] for c in cells}
    panels = [p for c, recs in groups.items() if (p := cell_diameters(c, recs)) is not None]
    if not panels:
        raise ValueError("plot_diameters: no record has a diameter history (every run "
                         "failed with an error, or had an input diameter of 0)")
    if len(panels) <= max_cells:
        return panels, []
    # the worst cells first: largest median final relative diameter, then cell order
    order = sorted(range(len(panels)), key=lambda i: (-np.nan_to_num(panels[i].median[-1]), i))
    keep = sorted(order[:max_cells])
    omitted = [panels[i].cell_id for i in sorted(order[max_cells:])]
    return [panels[i] for i in keep], omitted


def plot_diameters(records: Iterable[Mapping[str, Any]], path: str | Path,
                   cells: Sequence[str] | None = None, *,
                   max_cells: int = MAX_CELLS) -> DiameterPlot:
    """Draw, per cell, the median of ``Δ2(x^r)/Δ2(x^0)`` over its seeds with the 5-95%
    quantile band, log scale, and the proven contraction line where there is one
    (:func:`contraction_line`); one panel per cell, in the records' cell order.

    ``cells``: the cell ids to draw (default: every cell with a usable record). With more
    than ``max_cells`` cells, the ``max_cells`` cells with the largest median final relative
    diameter are drawn (the worst ones) and the rest listed in ``DiameterPlot.omitted`` and in
    the figure's title. Writes a PNG (or any format matplotlib infers from ``path``'s suffix).
    ``ValueError`` for no records, unknown cells, or no usable history."""
    records = list(records)
    if not records:
        raise ValueError("plot_diameters: no records to plot (the campaign wrote none: "
                         "check its records.jsonl)")
    if max_cells < 1:
        raise ValueError(f"plot_diameters: max_cells must be >= 1, got {max_cells}")
    panels, omitted = _select(_group(records), cells, max_cells)
    plt = _pyplot()
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False,
                             sharey=True)
    floor = _floor(panels)
    for ax, p in zip(axes.flat, panels, strict=False):
        _draw_panel(ax, p, floor)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    title = "honest ℓ2 diameter / input diameter: median and 5-95% band over seeds"
    if omitted:
        title += f"\n(the {len(panels)} worst of {len(panels) + len(omitted)} cells)"
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return DiameterPlot(path, panels, omitted)


def _floor(panels: Sequence[CellDiameters]) -> float:
    """The log scale's floor: a tenth of the smallest drawn value above :data:`EXACT`."""
    vals = np.concatenate([np.concatenate([p.q05, p.median, p.q95]) for p in panels])
    above = vals[np.isfinite(vals) & (vals > EXACT)]
    return max(EXACT, 0.1 * float(above.min())) if above.size else EXACT


def _draw_panel(ax: Any, p: CellDiameters, floor: float) -> None:
    lo, mid, hi = (np.where(a > EXACT, a, floor) for a in (p.q05, p.median, p.q95))
    ax.fill_between(p.rounds, lo, hi, alpha=0.3, label="5-95%")
    ax.semilogy(p.rounds, mid, "o-", ms=3, label=f"median ({p.runs} runs)")
    if p.bound is not None:
        ax.semilogy(p.rounds, np.maximum(p.bound, floor), "k--", label="proven bound")
    if np.any(np.concatenate([p.q05, p.median, p.q95]) <= EXACT):
        ax.axhline(floor, color="tab:green", ls=":", lw=1, label="exact agreement")
    ax.set_title(p.cell_id, fontsize=7)
    ax.set_xlabel("round")
    ax.set_xticks(p.rounds)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)


def _ratio(x: Any) -> float:
    """A ratio of the summary as a float (NaN for None; "inf" as the records write it)."""
    if x is None:
        return math.nan
    return float(x)


def worst_ratio(row: Mapping[str, Any]) -> float:
    """The worst ratio ``measured / bound`` of a summary row over every claim (the claims'
    ``worst_ratio``) and every requested check (its largest measure over its bound); NaN when
    the cell has none (no claim, or only errors). An infinite ratio stays infinite."""
    found = [_ratio(c.get("worst_ratio")) for c in (row.get("claims") or {}).values()
             if isinstance(c, Mapping)]
    for chk in (row.get("checks") or {}).values():
        if isinstance(chk, Mapping) and chk.get("max") is not None and chk.get("bound"):
            found.append(_ratio(chk["max"]) / _ratio(chk["bound"]))
    found = [r for r in found if not math.isnan(r)]
    return max(found) if found else math.nan


def _label(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _axis_values(rows: Sequence[Mapping[str, Any]], x: str, y: str
                 ) -> tuple[list[str], list[str]]:
    """The x and y labels of every row (``cell rest``: the parameters that vary across the
    rows, other than the other axis, as ``key=value``)."""
    params = [dict(r.get("params") or {}) for r in rows]
    known = sorted({k for p in params for k in p})
    for name, what in ((x, "x"), (y, "y")):
        if name != REST and name not in known:
            raise ValueError(f"plot_heatmap: unknown {what} axis {name!r}; known: "
                             f"{', '.join([*known, REST])}")
    if x == y:
        raise ValueError(f"plot_heatmap: x and y are both {x!r}; choose two axes")
    varying = [k for k in known if len({_label(p.get(k)) for p in params}) > 1]

    def label(p: dict[str, Any], axis: str, other: str) -> str:
        if axis != REST:
            return _label(p.get(axis))
        keys = [k for k in varying if k != other]
        return " ".join(f"{k}={_label(p.get(k))}" for k in keys) or "all"

    return [label(p, x, y) for p in params], [label(p, y, x) for p in params]


def plot_heatmap(summary: Sequence[Mapping[str, Any]], path: str | Path, x: str = "strategy",
                 y: str = REST) -> HeatmapPlot:
    """Draw the worst ratio to bound (:func:`worst_ratio`) of every cell of ``summary`` on a
    grid: ``x`` and ``y`` are parameter names of the cells (``strategy``, ``scheduler``,
    ``n``, ``protocol``, ...) or ``"cell rest"`` (every other parameter that varies); cells
    at the same grid position are aggregated by their maximum. Each square is annotated
    with its value; the colour scale is centred on 1.0 (the bound: above it, a claim is
    violated) and 1.0 is marked on the colour bar. ``ValueError`` for an empty summary or an
    unknown axis (the message lists the known ones)."""
    rows = list(summary)
    if not rows:
        raise ValueError("plot_heatmap: empty summary (the campaign has no cell with records)")
    xs, ys = _axis_values(rows, x, y)
    x_labels, y_labels = list(dict.fromkeys(xs)), list(dict.fromkeys(ys))
    values = np.full((len(y_labels), len(x_labels)), np.nan)
    for row, xl, yl in zip(rows, xs, ys, strict=True):
        w = worst_ratio(row)
        i, j = y_labels.index(yl), x_labels.index(xl)
        if not math.isnan(w):
            values[i, j] = w if math.isnan(values[i, j]) else max(values[i, j], w)
    path = Path(path)
    _draw_heatmap(values, x_labels, y_labels, x, y, path)
    return HeatmapPlot(path, x, y, x_labels, y_labels, values)


def _draw_heatmap(values: np.ndarray, x_labels: list[str], y_labels: list[str], x: str,
                  y: str, path: Path) -> None:
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    finite = values[np.isfinite(values)]
    vmax = max(2.0, float(finite.max()) if finite.size else 2.0)
    shown = np.where(np.isposinf(values), vmax, values)  # an infinite ratio: the top colour
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=vmax)
    w, h = len(x_labels), len(y_labels)
    label_w = 0.07 * max(len(s) for s in y_labels)  # inches for the longest y label
    fig, ax = plt.subplots(figsize=(min(4 + label_w + 0.9 * w, 40), min(2.5 + 0.45 * h, 60)))
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="lightgrey")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, aspect="auto")
    for i in range(h):
        for j in range(w):
            v = values[i, j]
            ax.text(j, i, "no claim" if math.isnan(v) else f"{v:.3g}", ha="center",
                    va="center", fontsize=7)
    ax.set_xticks(range(w), x_labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(h), y_labels, fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("worst measured/bound over the claims\n(1.0 = the bound)", fontsize=10)
    bar = fig.colorbar(im, ax=ax)
    bar.ax.axhline(1.0, color="black", lw=2)
    bar.set_label("worst ratio to bound")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
