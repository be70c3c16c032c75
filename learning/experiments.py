"""Grids of training runs: the compare table (attacks x methods), the heterogeneity sweep and
the main demo, with Markdown/JSON tables and plots.

A *method* is written ``learn:PROTOCOL`` (LEARN with an agreement protocol of
:data:`agreement.CONFIGS`), ``server:RULE`` (a trusted server with a robust rule of
:mod:`agreement.rules`, or ``zeno``), ``byzsgd[:RULE]`` (ByzSGD, its servers' gradient
rule), or the bare name of any other method of :data:`learning.methods.METHODS` (``dsgd``,
``local``, ``kardam``, ``async-sgd``, ``choco``). Every grid also reports what each method
sent per step (:func:`traffic_markdown`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .learn import METHODS, PROVEN_PROTOCOLS, TrainConfig, TrainResult, train

ATTACKS_ALL = ("none", "sign-flip", "gaussian", "label-flip", "alie", "ipm", "mimic",
               "dissensus", "nan")
METHODS_COMPARE = ("local", "dsgd", "server:trimmed-mean", "server:median", "learn:median",
                   "learn:trimmed-mean")
DEMO_ATTACKS = ("none", "sign-flip", "tailored", "label-flip")
"""The demo's attacks: two that collapse plain averaging (sign-flip; tailored, the
equivocation that reliable broadcast defeats) and the one that costs LEARN's proven rule most
among the original attacks (label-flip)."""
DEMO_METHODS = ("dsgd", "server:arc+nnm+trimmed-mean@worker_momentum=0.9", "learn:trimmed-mean",
                "learn:nnm")
"""The demo's methods: D-SGD; the best trusted-server recipe of the recipe grid (BENCHMARKS.md);
LEARN's default (trimmed mean, the proven round schedule); LEARN with NNM (its constants
measured, not proven: ``rounds="log"``)."""


def method_config(base: TrainConfig, method: str) -> TrainConfig:
    """``base`` with the method (and protocol/rule) of ``method``, then its overrides.

    ``METHOD@KEY=VALUE@KEY=VALUE`` sets fields of the configuration for this method only (a
    recipe: ``learn:nnm@worker_momentum=0.9``, ``server:trimmed-mean@momentum=0``); a
    ``worker_momentum`` above 0 without a ``momentum`` sets ``momentum=0`` (the two do not
    compound). Values parse as int, then float, else stay strings.

    ``learn:P`` for a protocol without a proven contraction (median, krum, mean, mve) when
    ``base.rounds == "proven"``: no proven round count exists, so this baseline runs
    ``rounds="log"`` (N_t rounds, no guarantee); its row says so (``rounds: log``) and the
    Markdown table marks it (:func:`pivot_markdown`)."""
    method, over = _overrides(method)
    cfg = _method_only(base, method)
    return replace(cfg, **over) if over else cfg


def parse_value(text: str) -> int | float | str:
    """A command-line value: an int if it parses as one, else a float, else the string."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            continue
    return text


def _overrides(spec: str) -> tuple[str, dict[str, Any]]:
    """``"learn:nnm@worker_momentum=0.9"`` -> ``("learn:nnm", {"worker_momentum": 0.9,
    "momentum": 0.0})``; an unknown field or a malformed item is a ``ValueError``."""
    from dataclasses import fields

    method, *items = spec.split("@")
    known = {f.name for f in fields(TrainConfig)} - {"method", "protocol"}
    over: dict[str, Any] = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep or key not in known:
            raise ValueError(f"method {spec!r}: after '@' give FIELD=VALUE with a field of "
                             f"TrainConfig (e.g. worker_momentum=0.9), got {it!r}")
        over[key] = parse_value(val)
    if over.get("worker_momentum") and "momentum" not in over:
        over["momentum"] = 0.0
    return method, over


def _method_only(base: TrainConfig, method: str) -> TrainConfig:
    kind, _, proto = method.partition(":")
    if kind == "learn":
        proto = proto or "trimmed-mean"
        rounds = base.rounds
        if rounds == "proven" and proto not in PROVEN_PROTOCOLS:
            rounds = "log"
        return replace(base, method=kind, protocol=proto, rounds=rounds)
    if kind == "server":
        return replace(base, method=kind, protocol=proto or "trimmed-mean")
    cls = METHODS.get(kind)
    if cls is not None and (not proto or cls.rule is not None):
        return replace(base, method=kind, protocol=proto) if proto else replace(base, method=kind)
    if cls is not None:
        raise ValueError(f"method {kind!r} takes no rule: write {kind}, not {method}")
    others = ", ".join(sorted(set(METHODS) - {"learn", "server"}))
    raise ValueError(f"unknown method {method!r}: use learn:PROTOCOL, server:RULE or one of "
                     f"{others}")


def _run_one(cfg: TrainConfig) -> TrainResult:
    """One run of a grid, as a worker process returns it (no final parameters)."""
    import torch

    torch.set_num_threads(1)
    res = train(cfg)
    res.final_params = None
    return res


def _row(attack: str, method: str, res: TrainResult) -> dict[str, Any]:
    row = {**{k: v for k, v in res.as_dict().items() if k not in ("history", "accuracies")},
           "attack": attack, "method": method}
    row["history"] = res.history
    return row


def _over_seeds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for the seeds of one (attack, method) cell: the first seed's row with
    ``accuracy_mean`` the mean over seeds of the honest mean accuracy, ``accuracy_min`` the
    smallest honest accuracy of any seed, ``seeds`` and ``accuracy_by_seed``."""
    out = dict(rows[0])
    means = [r["accuracy_mean"] for r in rows]
    out["seeds"] = [r["seed"] for r in rows]
    out["accuracy_by_seed"] = means
    if all(m is not None for m in means):
        out["accuracy_mean"] = sum(means) / len(means)
        out["accuracy_min"] = min(r["accuracy_min"] for r in rows)
    out["test_loss"] = sum(r["test_loss"] for r in rows) / len(rows)
    return out


def run_grid(base: TrainConfig, attacks: Sequence[str], methods: Sequence[str],
             on_result: Callable[[str, str, TrainResult], None] | None = None,
             seeds: Sequence[int] | None = None, workers: int = 1,
             ) -> list[dict[str, Any]]:
    """Every (attack, method) pair from ``base``, for every seed of ``seeds`` (default:
    ``base.seed``); one row dict per pair (:func:`_over_seeds` for several seeds: mean over
    seeds, smallest minimum). ``workers > 1`` runs the trainings in that many processes
    (each with one torch thread); the rows are the same as serially, in the same order."""
    for m in methods:
        method_config(base, m)  # fail early on a bad name
    seeds = [base.seed] if not seeds else list(seeds)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    cells = [(a, m) for a in attacks for m in methods]
    cfgs = [replace(method_config(base, m), attack=a, seed=sd,
                    attack_params=dict(base.attack_params) if a == base.attack else {})
            for a, m in cells for sd in seeds]
    results: list[TrainResult] = []
    if workers == 1:
        for i, cfg in enumerate(cfgs):
            results.append(train(cfg))
            if on_result is not None:
                on_result(*cells[i // len(seeds)], results[-1])
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, res in enumerate(pool.map(_run_one, cfgs)):
                results.append(res)
                if on_result is not None:
                    on_result(*cells[i // len(seeds)], res)
    rows = [_row(*cells[i // len(seeds)], res) for i, res in enumerate(results)]
    if len(seeds) == 1:
        return rows
    k = len(seeds)
    return [_over_seeds(rows[j:j + k]) for j in range(0, len(rows), k)]


def _cell(row: dict[str, Any]) -> str:
    if row.get("accuracy_mean") is None:
        return f"loss {row['test_loss']:.3g}"
    return f"{row['accuracy_mean']:.3f} / {row['accuracy_min']:.3f}"


def pivot_markdown(rows: list[dict[str, Any]], row_key: str = "attack",
                   col_key: str = "method") -> str:
    """Rows ``row_key`` x columns ``col_key``; cells "mean / min" honest test accuracy."""
    rvals = list(dict.fromkeys(r[row_key] for r in rows))
    cvals = list(dict.fromkeys(r[col_key] for r in rows))
    cell = {(r[row_key], r[col_key]): _cell(r) for r in rows}
    # a LEARN column whose gradient-round schedule is not the proven one says which it is
    sched = {r[col_key]: r.get("rounds") for r in rows if col_key == "method"
             and str(r[col_key]).startswith("learn") and r.get("rounds") != "proven"}

    def head(c: Any) -> str:
        return f"{c} (rounds {sched[c]})" if sched.get(c) is not None else str(c)

    out = [f"| {row_key} | " + " | ".join(head(c) for c in cvals) + " |",
           "|---|" + "---|" * len(cvals)]
    for rv in rvals:
        out.append(f"| {rv} | " + " | ".join(cell.get((rv, c), "") for c in cvals) + " |")
    return "\n".join(out)


def _human(x: float) -> str:
    for unit, k in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= k:
            return f"{x / k:.3g} {unit}"
    return f"{x:.3g}"


def traffic_markdown(rows: list[dict[str, Any]]) -> str:
    """One row per method: messages and bytes per step (the run's totals over its steps, as
    each method counts them: ``traffic``) and the mean ms per step, from its attack-free row
    (else its first): what each method's guarantee costs on the wire."""
    by: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["method"] not in by or r.get("attack") == "none":
            by[r["method"]] = r
    out = ["| method | messages / step | bytes / step | ms / step | counted as |",
           "|---|---|---|---|---|"]
    for m, r in by.items():
        steps = max(1, int(r["steps"]))
        out.append(f"| {m} | {_human(r['messages'] / steps)} | {_human(r['bytes'] / steps)}B"
                   f" | {r['step_time'] * 1e3:.2f} | {r['traffic']} |")
    return "\n".join(out)


def plot_grid(rows: list[dict[str, Any]], path: str | Path, title: str,
              row_key: str = "attack", col_key: str = "method",
              legend: dict[str, str] | None = None) -> None:
    """A grouped bar chart of honest mean accuracy (min as a black tick); ``legend``
    (attack -> what it sends) is written under the chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rvals = list(dict.fromkeys(r[row_key] for r in rows))
    cvals = list(dict.fromkeys(r[col_key] for r in rows))
    by = {(r[row_key], r[col_key]): r for r in rows}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(rvals) * max(1, len(cvals)) / 3), 4))
    width = 0.8 / max(1, len(cvals))
    for j, c in enumerate(cvals):
        xs = [i + (j - (len(cvals) - 1) / 2) * width for i in range(len(rvals))]
        means = [(by.get((rv, c)) or {}).get("accuracy_mean") or 0.0 for rv in rvals]
        mins = [(by.get((rv, c)) or {}).get("accuracy_min") or 0.0 for rv in rvals]
        ax.bar(xs, means, width, label=str(c))
        ax.scatter(xs, mins, marker="_", color="black", s=80, zorder=3)
    ax.set_xticks(range(len(rvals)), [str(r) for r in rvals], rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("honest test accuracy\n(bar: mean, tick: min)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=min(len(cvals), 4), frameon=False)
    notes = [f"{k}: {legend[k]}" for k in rvals if legend and k in legend]
    if notes:  # which attack is which, under the chart
        fig.set_figheight(4 + 0.18 * len(notes))
        fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, va="bottom", ha="left")
        fig.tight_layout(rect=(0, 0.045 * len(notes) / (1 + 0.045 * len(notes)), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """Honest accuracy (mean and min) and parameter diameter against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    if history and history[0].get("accuracy_mean") is not None:
        ax.plot(steps, [h["accuracy_mean"] for h in history], label="accuracy (mean)")
        ax.plot(steps, [h["accuracy_min"] for h in history], "--", label="accuracy (min)")
        ax.set_ylabel("honest test accuracy")
    else:
        ax.plot(steps, [h["test_loss"] for h in history], label="test loss")
    ax2 = ax.twinx()
    ax2.semilogy(steps, [max(h["diameter"], 1e-12) for h in history], color="gray",
                 alpha=0.6, label="diameter")
    ax2.set_ylabel("honest parameter diameter")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def story_markdown(rows: list[dict[str, Any]], collapse: float = 0.2, hold: float = 0.05
                   ) -> str:
    """The demo's reading of its grid, one line per (attack, method) under attack: the
    method *collapses* (mean honest accuracy below ``collapse``), *holds* (within ``hold`` of
    its own attack-free accuracy, or better), or *loses* the difference in points."""
    base = {r["method"]: r.get("accuracy_mean") for r in rows if r["attack"] == "none"}
    lines = []
    for r in rows:
        acc, ref = r.get("accuracy_mean"), base.get(r["method"])
        if r["attack"] == "none" or acc is None or ref is None:
            continue
        if acc < collapse:
            verdict = "collapses"
        elif acc >= ref - hold:
            verdict = "holds"
        else:
            verdict = f"loses {100 * (ref - acc):.1f} points"
        lines.append(f"- {r['attack']}: {r['method']} {verdict} ({acc:.3f}, attack-free "
                     f"{ref:.3f})")
    return "\n".join(lines)


def write_outputs(rows: list[dict[str, Any]], out: Path, stem: str, title: str,
                  row_key: str = "attack", col_key: str = "method",
                  legend: dict[str, str] | None = None, story: bool = False) -> str:
    """Write ``stem.md``, ``stem.json``, ``stem.png`` into ``out``; return the Markdown.
    ``legend`` (attack -> what it sends) is printed under the table and the plot;
    ``story`` adds :func:`story_markdown`'s verdicts."""
    out.mkdir(parents=True, exist_ok=True)
    what = ("mean over seeds of the honest mean / the smallest honest accuracy of any seed"
            if rows and "seeds" in rows[0] else "mean / min over honest nodes")
    md = f"## {title}\n\nHonest test accuracy, {what}.\n\n" + \
        pivot_markdown(rows, row_key, col_key) + "\n"
    if legend:
        md += "\nThe attacks (what the Byzantine nodes send):\n\n" + "\n".join(
            f"- {k}: {legend[k]}" for k in dict.fromkeys(r["attack"] for r in rows)
            if k in legend) + "\n"
    if story:
        md += "\nWhat happened:\n\n" + story_markdown(rows) + "\n"
    if "method" in (row_key, col_key):
        md += "\nTraffic per step (attack-free run):\n\n" + traffic_markdown(rows) + "\n"
    (out / f"{stem}.md").write_text(md)
    (out / f"{stem}.json").write_text(json.dumps(rows, indent=1, default=str))
    plot_grid(rows, out / f"{stem}.png", title, row_key, col_key, legend)
    return md


def sweep_alie(base: TrainConfig, zs: Sequence[float] = (0.5, 1.0, 2.0),
               alphas: Sequence[float] = (0.1, 1.0, 100.0),
               on_result: Callable[[str, str, TrainResult], None] | None = None,
               ) -> list[dict[str, Any]]:
    """ALIE with ``z`` in ``zs`` against LEARN (``base``'s method) for Dirichlet ``α`` in
    ``alphas`` (plus the attack-free run at each α)."""
    rows = []
    for alpha in alphas:
        for z in (None, *zs):
            cfg = replace(base, alpha=alpha, attack="none" if z is None else "alie",
                          attack_params={} if z is None else {"z": z})
            res = train(cfg)
            label = "none" if z is None else f"alie z={z:g}"
            row = {"alpha": alpha, "attack": label,
                   **{k: v for k, v in res.as_dict().items()
                      if k not in ("history", "accuracies", "attack", "alpha")}}
            rows.append(row)
            if on_result is not None:
                on_result(label, f"alpha={alpha:g}", res)
    return rows
