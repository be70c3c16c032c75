"""Campaign specs: a grid of averaging-agreement runs (the axes), values shared by every cell
(``fixed``), a seed range and the checks that decide a violation.

A spec is a TOML file, a TOML string or a dict of the same shape::

    name = "quick"
    seeds = { start = 0, count = 20 }        # or seeds = 20, or { start = 0, stop = 20 }
    [axes]                                   # the grid: the cartesian product, in this order
    protocol = ["trimmed-mean", "mda"]
    nf = [[4, 1], [7, 2]]                    # (n, f) pairs; or separate n = [...], f = [...]
    d = [4]
    strategy = ["split", "equivocate"]
    scheduler = ["targeted", "random"]
    [fixed]                                  # one value for every cell (the same keys)
    rounds = 3
    inputs = "gaussian"
    engine = "message"
    [checks]
    claims = true       # a violated verdict of the claims table (agreement.claims) is a violation
    agreement = 0.01    # optional: final honest diameter <= 0.01 x the input diameter

The keys (axes or fixed, not both) are the parameters of ``python -m agreement simulate``:
``protocol`` (:data:`agreement.protocol.CONFIGS`), ``n``, ``f`` or ``nf``, ``d`` (``--dim``),
``rounds``, ``strategy`` (a value attack of :mod:`agreement.attacks`, a netsim strategy of
:data:`netsim.adversary.STRATEGIES`, or ``none``), ``scheduler``
(:data:`netsim.sim.schedulers.SCHEDULERS`), ``inputs`` (:data:`agreement.inputs.INPUTS`),
``engine`` (message, round), ``views`` (round engine: random, omniscient), ``gather``
(witness, first-quorum; for both, ``"default"`` is the default), ``codec`` and ``unsafe``
(booleans), and the Python-only ``rule_params`` and ``attack_params`` (tables). Unset keys
take ``simulate``'s defaults (:data:`DEFAULTS`). A cell below its protocol's resilience
(:func:`agreement.protocol.check_resilience`: n >= 3f+1 for the witness gather and the
trimmed mean, κ(n,f) < 1 for MDA; docs/theory.md §5) is skipped, with the reason in
:meth:`CampaignSpec.skipped_cells`, unless ``unsafe = true``; so is a round-engine cell with
a protocol-level strategy (the round engine runs value attacks and silent only).
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim.adversary import STRATEGIES
from netsim.sim.schedulers import SCHEDULERS

from ..attacks import value_attack_names
from ..inputs import INPUTS
from ..protocol import CONFIGS, check_resilience

KEYS = ("protocol", "n", "f", "nf", "d", "rounds", "strategy", "scheduler", "inputs", "engine",
        "views", "gather", "codec", "unsafe", "rule_params", "attack_params")
"""The parameter keys a spec's ``axes`` and ``fixed`` tables accept."""
DEFAULTS: dict[str, Any] = {
    "protocol": "trimmed-mean", "d": 50, "rounds": 10, "strategy": "split",
    "scheduler": "targeted", "inputs": "gaussian", "engine": "message", "views": None,
    "gather": None, "codec": True, "unsafe": False, "rule_params": {}, "attack_params": {},
}
"""The value of every key a spec leaves unset: ``python -m agreement simulate``'s defaults
(``n`` and ``f`` have none: a spec names them)."""
PARAM_ORDER = ("protocol", "n", "f", "d", "rounds", "strategy", "scheduler", "inputs", "engine",
               "views", "gather", "codec", "unsafe", "rule_params", "attack_params")
CHECK_KEYS = ("claims", "agreement")
TOP_KEYS = ("name", "seeds", "axes", "fixed", "checks", "skip_unresilient")


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its stable id and every run parameter (:data:`PARAM_ORDER`)."""

    cell_id: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Task:
    """One run: a cell's parameters and one seed (inputs from ``make_inputs(inputs, n, d,
    seed)`` and the run's ``seed``, as ``simulate --seed``); ``checks`` as in the spec."""

    cell_id: str
    params: dict[str, Any]
    seed: int
    checks: dict[str, Any] = field(default_factory=lambda: {"claims": True})

    @property
    def key(self) -> str:
        """``"<cell_id>/<seed>"``: the record's key (what a resumed campaign skips)."""
        return f"{self.cell_id}/{self.seed}"


def _known(key: str, value: Any, allowed: Any) -> Any:
    if value not in allowed:
        raise ValueError(f"{key}: unknown {_WHAT[key.split('.')[-1].split('[')[0]]} "
                         f"{value!r}; known: {', '.join(sorted(map(str, allowed)))}")
    return value


_WHAT = {"protocol": "protocol", "strategy": "strategy", "scheduler": "scheduler",
         "inputs": "input generator", "engine": "engine", "views": "view chooser",
         "gather": "gather"}


def _int(key: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{key}: expected an integer >= {least}, got {value!r}")
    return value


def _check_value(key: str, name: str, value: Any) -> Any:
    """``value`` of parameter ``name`` (``key``: where it is in the TOML), or ValueError."""
    if name == "protocol":
        return _known(key, value, CONFIGS)
    if name in ("n", "d", "rounds"):
        return _int(key, value, 1)
    if name == "f":
        return _int(key, value, 0)
    if name == "nf":
        if not (isinstance(value, (list, tuple)) and len(value) == 2):
            raise ValueError(f"{key}: expected an [n, f] pair, got {value!r}")
        return [_int(key, value[0], 1), _int(key, value[1], 0)]
    if name == "strategy":
        return _known(key, value, {*STRATEGIES, *value_attack_names(), "none"})
    if name == "scheduler":
        return _known(key, value, SCHEDULERS)
    if name == "inputs":
        return _known(key, value, INPUTS)
    if name == "engine":
        return _known(key, value, ("message", "round"))
    if name == "views":  # None or "default": the engine's default (omniscient)
        return None if value in (None, "default") else _known(key, value,
                                                              ("random", "omniscient"))
    if name == "gather":  # None or "default": the protocol's own gather
        return None if value in (None, "default") else _known(key, value,
                                                              ("witness", "first-quorum"))
    if name in ("codec", "unsafe"):
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {value!r}")
        return value
    if name in ("rule_params", "attack_params"):
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a table (e.g. {{ center = \"mean\" }}), got "
                             f"{value!r}")
        return dict(value)
    raise ValueError(f"{key}: unknown key; known: {', '.join(KEYS)}")


def _check_axes(axes: Any, fixed: Any) -> tuple[dict[str, list], dict[str, Any]]:
    if not isinstance(axes, dict) or not isinstance(fixed, dict):
        raise ValueError("axes and fixed must be tables")
    out_axes: dict[str, list] = {}
    for name, values in axes.items():
        if name not in KEYS:
            raise ValueError(f"axes.{name}: unknown key; known: {', '.join(KEYS)}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"axes.{name}: expected a non-empty list of values, got {values!r}")
        out_axes[name] = [_check_value(f"axes.{name}[{i}]", name, v) for i, v in enumerate(values)]
    out_fixed = {name: _check_value(f"fixed.{name}", name, v) for name, v in fixed.items()}
    out_fixed = {k: v for k, v in out_fixed.items() if v is not None}  # None: the default
    both = sorted(set(out_axes) & set(out_fixed))
    if both:
        raise ValueError(f"axes.{both[0]} and fixed.{both[0]}: a key is an axis or fixed, not both")
    given = set(out_axes) | set(out_fixed)
    if "nf" in given and given & {"n", "f"}:
        raise ValueError("axes.nf: give nf or n and f, not both")
    if "nf" not in given and not {"n", "f"} <= given:
        raise ValueError("axes.nf: the spec must give nf (a list of [n, f] pairs) or n and f "
                         "(in axes or fixed)")
    return out_axes, out_fixed


def _seeds(value: Any) -> range:
    if isinstance(value, range):
        return value
    if isinstance(value, dict):
        extra = sorted(set(value) - {"start", "count", "stop"})
        if extra or "start" not in value or ("count" in value) == ("stop" in value):
            raise ValueError(f"seeds: expected {{ start = S, count = C }} or {{ start = S, stop = "
                             f"E }}, got {value!r}")
        start = _int("seeds.start", value["start"], 0)
        stop = (start + _int("seeds.count", value["count"], 1) if "count" in value
                else _int("seeds.stop", value["stop"], start + 1))
        return range(start, stop)
    return range(_int("seeds", value, 1))


def _checks(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"checks: expected a table, got {value!r}")
    for k in value:
        if k not in CHECK_KEYS:
            raise ValueError(f"checks.{k}: unknown check; known: {', '.join(CHECK_KEYS)}")
    claims = value.get("claims", True)
    if not isinstance(claims, bool):
        raise ValueError(f"checks.claims: expected true or false, got {claims!r}")
    out: dict[str, Any] = {"claims": claims}
    if value.get("agreement") is not None:
        a = value["agreement"]
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not a > 0:
            raise ValueError(f"checks.agreement: expected a positive number (the final honest "
                             f"diameter over the input diameter), got {a!r}")
        out["agreement"] = float(a)
    return out


def _slug(value: Any) -> str:
    if isinstance(value, dict):
        return "-".join(f"{k}-{_slug(v)}" for k, v in sorted(value.items()))
    return str(value).lower().replace(" ", "").replace("/", "_")


def cell_id(params: dict[str, Any], axes: dict[str, list] | None = None) -> str:
    """The short stable id of a cell: ``protocol-nN-fF-dD-strategy-scheduler-inputs-engine``,
    then ``rR`` when rounds is an axis and every other parameter that differs from
    :data:`DEFAULTS` (``views-random``, ``gather-first-quorum``, ``nocodec``, ``unsafe``,
    ``rule_params`` and ``attack_params`` as ``key-value``)."""
    p = params
    parts = [p["protocol"], f"n{p['n']}", f"f{p['f']}", f"d{p['d']}", p["strategy"],
             p["scheduler"], p["inputs"], p["engine"]]
    if axes is not None and "rounds" in axes:
        parts.append(f"r{p['rounds']}")
    for k in ("views", "gather"):
        if p[k] is not None:
            parts.append(f"{k}-{p[k]}")
    if not p["codec"]:
        parts.append("nocodec")
    if p["unsafe"]:
        parts.append("unsafe")
    if p["rule_params"]:
        parts.append(_slug(p["rule_params"]))
    if p["attack_params"]:
        parts.append("atk-" + _slug(p["attack_params"]))
    return "-".join(str(x) for x in parts)


def _skip_reason(p: dict[str, Any]) -> str | None:
    """Why a cell does not run (None: it runs)."""
    if p["f"] >= p["n"]:
        return f"f={p['f']} must be below n={p['n']}"
    if p["engine"] == "round" and p["strategy"] not in (*value_attack_names(), "silent", "none"):
        return (f"the round engine runs value attacks and silent only; {p['strategy']!r} is a "
                "protocol-level strategy (engine = \"message\")")
    if not p["unsafe"]:
        try:
            check_resilience(p["protocol"], p["n"], p["f"])
        except ValueError as exc:
            why = str(exc).replace("; pass unsafe=True to run it anyway", "")
            return f"{why}; set unsafe = true to run it anyway"
    return None


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign: the grid (``axes``, in order), the values every cell shares (``fixed``), the
    seeds of every cell, the checks (``claims``: a violated verdict of
    :func:`agreement.claims.evaluate` is a violation; ``agreement``: the final honest diameter
    must be at most that fraction of the input diameter) and whether cells below their
    protocol's resilience are skipped (True) or are an error of the spec (False)."""

    name: str
    axes: dict[str, list]
    fixed: dict[str, Any] = field(default_factory=dict)
    seeds: range = range(1)
    checks: dict[str, Any] = field(default_factory=lambda: {"claims": True})
    skip_unresilient: bool = True

    def _grid(self) -> list[tuple[dict[str, Any], str | None]]:
        names = list(self.axes)
        out = []
        for combo in itertools.product(*(self.axes[k] for k in names)):
            p = {**DEFAULTS, **self.fixed, **dict(zip(names, combo, strict=True))}
            if "nf" in p:
                p["n"], p["f"] = p.pop("nf")
            p = {k: p[k] for k in PARAM_ORDER}
            out.append((p, _skip_reason(p)))
        return out

    def _all_cells(self) -> list[tuple[Cell, str | None]]:
        cells, seen = [], {}
        for p, why in self._grid():
            cid = cell_id(p, self.axes)
            if cid in seen:
                raise ValueError(f"axes: two cells get the id {cid!r} ({seen[cid]} and {p}); "
                                 "make their parameters differ in a named key")
            seen[cid] = p
            cells.append((Cell(cid, p), why))
        return cells

    def cells(self) -> list[Cell]:
        """The cells that run, in the order of the cartesian product of the axes (the first
        axis varies slowest), each with its stable id (:func:`cell_id`)."""
        return [c for c, why in self._all_cells() if why is None]

    def skipped_cells(self) -> list[tuple[Cell, str]]:
        """The cells that do not run, with the reason (below the protocol's resilience without
        ``unsafe``, a protocol-level strategy on the round engine, f >= n)."""
        return [(c, why) for c, why in self._all_cells() if why is not None]

    def tasks(self) -> list[Task]:
        """Every run: cell-major (the order of :meth:`cells`), then seed in increasing order."""
        return [Task(c.cell_id, dict(c.params), s, dict(self.checks))
                for c in self.cells() for s in self.seeds]

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict of TOML's shape: ``load_spec(spec.to_dict()) == spec``."""
        return {"name": self.name,
                "seeds": {"start": self.seeds.start, "count": len(self.seeds)},
                "axes": json.loads(json.dumps(self.axes)),
                "fixed": json.loads(json.dumps(self.fixed)),
                "checks": dict(self.checks), "skip_unresilient": self.skip_unresilient}

    def to_toml(self) -> str:
        """The spec as TOML text (what ``load_spec`` reads back into an equal spec)."""
        d = self.to_dict()
        lines = [f"name = {_toml(d['name'])}", f"seeds = {_toml(d['seeds'])}",
                 f"skip_unresilient = {_toml(d['skip_unresilient'])}"]
        for table in ("axes", "fixed", "checks"):
            lines += ["", f"[{table}]"]
            lines += [f"{k} = {_toml(v)}" for k, v in d[table].items() if v is not None]
        return "\n".join(lines) + "\n"


def _toml(v: Any) -> str:
    """One TOML value (strings, booleans, numbers, lists and inline tables; None, which TOML
    lacks, only in the views and gather axes, as "default")."""
    if v is None:
        return '"default"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"cannot write {v!r} as TOML")


def _read(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(source, dict):
        return source
    if isinstance(source, Path) or ("\n" not in source and "=" not in source):
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"spec {source}: {exc.strerror or exc}") from None
    else:
        text = source
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"spec: invalid TOML: {exc}") from None


def load_spec(source: str | Path | dict[str, Any]) -> CampaignSpec:
    """A :class:`CampaignSpec` from a TOML file (a path), TOML text or a dict of the same shape
    (the module doc). Every error is a ValueError naming the TOML key and what it accepts."""
    raw = _read(source)
    for k in raw:
        if k not in TOP_KEYS:
            raise ValueError(f"{k}: unknown key; known: {', '.join(TOP_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    axes, fixed = _check_axes(raw.get("axes", {}), raw.get("fixed", {}))
    skip = raw.get("skip_unresilient", True)
    if not isinstance(skip, bool):
        raise ValueError(f"skip_unresilient: expected true or false, got {skip!r}")
    spec = CampaignSpec(name=name, axes=axes, fixed=fixed, seeds=_seeds(raw.get("seeds", 1)),
                        checks=_checks(raw.get("checks", {})), skip_unresilient=skip)
    skipped = spec.skipped_cells()
    if not skip:
        for c, why in skipped:
            if why.endswith("set unsafe = true to run it anyway"):
                raise ValueError(f"axes: cell {c.cell_id} is below its protocol's resilience "
                                 f"({why}); set skip_unresilient = true or fixed.unsafe = true")
    if not spec.cells():
        why = skipped[0][1] if skipped else "the grid is empty"
        raise ValueError(f"axes: no cell runs ({why})")
    return spec


__all__ = ["CHECK_KEYS", "DEFAULTS", "KEYS", "PARAM_ORDER", "CampaignSpec", "Cell", "Task",
           "cell_id", "load_spec"]
