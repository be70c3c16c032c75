"""The round-level engine (docs/architecture.md, "Engines for agreement").

For large simulations and for training, messages are skipped: each round the adversary
picks every honest node's view directly among those the gather allows, and all honest
nodes' rules run as one batched tensor operation (``rule.batch(values, masks)``) on one
device (numpy, or torch on CPU or CUDA).

Rows of the value matrix are the ``h`` honest vectors (in honest-id order) followed by the
Byzantine versions (one row per Byzantine node, or two, low and high, for a two-sided attack
under the first-quorum gather). ``masks[j, k]`` says whether honest node ``j`` sees row
``k``. What the adversary may choose:

- ``witness``: each view has ``n-f..n`` rows, any two views share ``>= n-f`` rows, a
  Byzantine node has ONE value (the same in every view that holds it), invalid
  (non-finite) values are in no view;
- ``first-quorum``: each view has exactly ``n-f`` rows, at most one version per Byzantine
  node, any two views share ``>= n-2f`` rows.

View choosers: ``random`` (a common core of n-f rows plus random extras) and
``omniscient`` (honest nodes split in two sides along their widest direction; each side's
view drops the values that pull it towards the other side, within the overlap allowed).

Your own attack: ``attack`` may be a function of the value-attack contract
(:mod:`agreement.attacks`): ``attack(honest, b, rng, **attack_params) -> (b, d)`` on numpy
arrays with the engine's numpy generator, with ``random`` or ``omniscient`` views (the views
are chosen from the values it returns, as for a built-in attack); torch values are copied to
the host for it and its rows copied back. A *per-receiver* attack (``per_receiver = True``)
returns ``(h, b, d)``, row ``j`` for the ``j``-th honest node: under ``first-quorum`` honest
node ``j`` may see only its own versions (equivocation goes through), under ``witness`` a
Byzantine node has one value, row 0's (reliable broadcast delivers at most one).

Learning-level Byzantine vectors: a callable marked ``native_form = True`` (the learning
attacks' :class:`learning.attacks.AttackHook`) instead receives the round's honest values in
their own form (a torch tensor stays on its device) and returns the b Byzantine values in
that form. With ``random`` views and such a callable (or ``silent``) nothing is copied to
the host: only the b validity flags of the Byzantine rows are. With ``omniscient`` views the
adversary picks the views on the host: the callable is then given the host's numpy values
(it must accept them and return numpy, as the learning attacks' hook does) and the views
are chosen from its rows as for a value attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from netsim.deprecation import deprecated_alias, renamed_keywords
from netsim.messages import MAX_SQUARED_NORM

from .attacks import TWO_SIDED, attack_values, check_value_attack, is_per_receiver, split_sides
from .rules import make_rule


def valid_rows(values: Any) -> Any:
    """Row-wise :func:`netsim.messages.valid_vector` (numpy or torch, on the values' device):
    finite entries and, for float64, a squared norm <= 2^1000. Invalid rows enter no view.

    The engine judges Byzantine rows in the session's dtype (the honest values'): they are
    converted to it first (:func:`session_rows`), as the message path only accepts vectors
    of exactly that dtype, so a Byzantine node's best is its value rounded to the session's
    dtype, and a value that overflows it (a float64 1e100 in a float32 session) is ±inf,
    hence invalid, in both."""
    if type(values).__module__.startswith("torch"):
        import torch

        ok = torch.isfinite(values).all(dim=1)
        if values.dtype == torch.float64:
            ok &= (values * values).sum(dim=1) <= MAX_SQUARED_NORM
        return ok
    ok = np.isfinite(values).all(axis=1)
    if values.dtype == np.float64:
        with np.errstate(over="ignore", invalid="ignore"):
            ok &= np.einsum("ij,ij->i", values, values) <= MAX_SQUARED_NORM
    return ok


def valid_flags(values: Any) -> np.ndarray:
    """:func:`valid_rows` as a host boolean array (what the views are chosen from). A CPU
    tensor is judged through its zero-copy numpy view (``np.isfinite`` is several times
    cheaper than ``torch.isfinite`` on the small Byzantine block of a round); the float64
    norm bound, and every accelerator tensor, go through :func:`valid_rows` itself, so the
    flags are those of :func:`valid_rows` exactly (the same comparisons, the same sums)."""
    if type(values).__module__.startswith("torch"):
        import torch

        if values.device.type != "cpu" or values.dtype == torch.float64 or len(values) == 0:
            return valid_rows(values).cpu().numpy()
        return np.isfinite(values.detach().numpy()).all(axis=1)
    return np.asarray(valid_rows(values))


def session_rows(rows: Any, like: Any) -> Any:
    """``rows`` in the dtype (and, for torch, on the device) of ``like``, the honest values:
    a value that overflows the dtype becomes ±inf (no warning), which :func:`valid_rows`
    refuses."""
    if type(like).__module__.startswith("torch"):
        return rows.to(dtype=like.dtype, device=like.device)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(rows).astype(like.dtype, copy=False)


def check_views(masks: np.ndarray, n: int, f: int, gather: str, versions: np.ndarray) -> None:
    """Raise ``AssertionError`` unless ``masks`` are views the gather allows.

    ``versions[k]`` is the node id of row ``k`` (Byzantine rows with two versions repeat
    the id).
    """
    sizes = masks.sum(axis=1)
    ids = np.unique(versions)
    by_id = np.stack([masks[:, versions == i].any(axis=1) for i in ids], axis=1)
    inter = by_id.astype(np.int64) @ by_id.T.astype(np.int64)  # overlap counted by node id
    h = masks.shape[0]
    if gather == "witness":
        assert (sizes >= n - f).all() and (sizes <= n).all(), sizes
        assert (inter >= n - f).all(), inter.min()
    else:
        assert (sizes == n - f).all(), sizes
        assert h == 0 or (inter >= n - 2 * f).all(), inter.min()
    for node in np.unique(versions):
        rows = versions == node
        if rows.sum() > 1:
            assert (masks[:, rows].sum(axis=1) <= 1).all(), f"two versions of node {node}"


@dataclass
class RoundPlan:
    """One round as the adversary set it: value rows, their node ids, and the views."""

    values: Any
    node_of_row: np.ndarray
    masks: np.ndarray


class RoundEngine:
    """Run averaging-agreement rounds without messages.

    Parameters
    ----------
    n, f:
        Nodes and Byzantine bound; the honest nodes are ``h = n - len(byzantine_ids)``.
    rule:
        A rule name (with ``rule_params``) or a rule object with ``batch``.
    gather:
        ``witness`` or ``first-quorum``: which views the adversary may pick.
    attack:
        ``silent``, a value attack of :mod:`agreement.attacks` by name (``omniscient`` too),
        or a function of the value-attack contract (module doc; non-finite rows are invalid
        and enter no view).
    views:
        ``random`` or ``omniscient``.
    byzantine_ids:
        The Byzantine ids (default ``0..f-1``; ``[]`` for none; ``byzantine=``, its
        deprecated name, still works for this release with a ``DeprecationWarning``).
    seed:
        Seeds the engine's one generator.
    """

    byzantine = deprecated_alias("byzantine_ids")

    @renamed_keywords(byzantine="byzantine_ids")
    def __init__(
        self,
        n: int,
        f: int,
        rule: Any,
        *,
        gather: str = "witness",
        attack: Any = "silent",
        views: str | None = None,
        byzantine_ids: list[int] | None = None,
        seed: int = 0,
        attack_params: dict[str, Any] | None = None,
        rule_params: dict[str, Any] | None = None,
    ) -> None:
        if gather not in ("witness", "first-quorum"):
            raise ValueError(f"unknown gather {gather!r}; known: first-quorum, witness")
        self.n, self.f = n, f
        self.rule = make_rule(rule, f, **(rule_params or {})) if isinstance(rule, str) else rule
        self.gather = gather
        self.attack = attack
        self.views = views or ("omniscient" if attack == "omniscient" else "random")
        if self.views not in ("random", "omniscient"):
            raise ValueError(f"unknown view chooser {self.views!r}; known: omniscient, random")
        self.byzantine_ids = list(range(f)) if byzantine_ids is None else sorted(byzantine_ids)
        if len(self.byzantine_ids) > f:
            raise ValueError(f"at most f={f} Byzantine nodes")
        self.honest = [i for i in range(n) if i not in set(self.byzantine_ids)]
        self.rng = np.random.default_rng(seed)
        self.attack_params = dict(attack_params or {})
        self.native = callable(attack) and bool(getattr(attack, "native_form", False))
        self.per_receiver = is_per_receiver(attack)
        if isinstance(attack, str) and attack == "alie":
            self.attack_params.setdefault("n", n)

    # -- the adversary's choices -------------------------------------------------------------
    def _byzantine_rows(self, honest: np.ndarray) -> tuple[np.ndarray, list[int], np.ndarray]:
        """Byzantine value rows, their node ids, and their side (0 low, 1 high, -1 none;
        ``-2 - j``: a per-receiver version that only honest node ``j`` may see)."""
        b = len(self.byzantine_ids)
        h, d = honest.shape
        if (isinstance(self.attack, str) and self.attack == "silent") or b == 0:
            return np.zeros((0, d)), [], np.zeros(0, dtype=int)
        vals = attack_values(self.attack, honest, b, self.rng, **self.attack_params)
        if not (isinstance(self.attack, str) and self.attack in TWO_SIDED):
            name = repr(getattr(self.attack, "__name__", self.attack))
            vals = check_value_attack(vals, b, h, d, self.per_receiver, name)
            if not self.per_receiver:
                return vals, list(self.byzantine_ids), np.full(b, -1)
            if self.gather == "witness":  # one value per Byzantine node: row 0's
                return vals[0], list(self.byzantine_ids), np.full(b, -1)
            return (vals.reshape(h * b, d), list(self.byzantine_ids) * h,
                    np.repeat(-2 - np.arange(h), b))
        if self.gather == "first-quorum":  # equivocation goes through: both versions
            rows = np.concatenate([vals[0], vals[1]])
            return rows, list(self.byzantine_ids) * 2, np.repeat([0, 1], b)
        # one value per Byzantine node under reliable broadcast: half low, half high
        side = np.array([0 if k < (b + 1) // 2 else 1 for k in range(b)])
        return vals[side, np.arange(b)], list(self.byzantine_ids), side

    def plan(self, honest: np.ndarray) -> RoundPlan:
        """Choose the round's Byzantine values and every honest node's view."""
        h = honest.shape[0]
        byz, byz_ids, byz_side = self._byzantine_rows(honest)
        byz = session_rows(byz, honest)  # validity is judged in the session's dtype
        values = np.concatenate([honest, byz])
        node_of_row = np.array(self.honest + byz_ids, dtype=np.int64)
        m = values.shape[0]
        valid = np.ones(m, dtype=bool)
        valid[h:] = valid_rows(byz) if len(byz) else valid[h:]
        masks = np.zeros((h, m), dtype=bool)
        owner = None
        if self.per_receiver and self.gather == "first-quorum":
            owner = np.concatenate([np.full(h, -1), np.where(byz_side <= -2, -2 - byz_side, -1)])
            byz_side = np.where(byz_side <= -2, -1, byz_side)
        if self.views == "omniscient":
            self._omniscient_views(honest, values, valid, byz_side, masks, owner)
        else:
            self._random_views(valid, node_of_row, masks, owner)
        return RoundPlan(values, node_of_row, masks)

    def _random_views(self, valid: np.ndarray, node_of_row: np.ndarray, masks: np.ndarray,
                      owner: np.ndarray | None = None):
        """Random views; ``owner[k] = j >= 0``: row ``k`` may be in honest node ``j``'s view
        only (a per-receiver version; first-quorum)."""
        n, f = self.n, self.f
        h = masks.shape[0]
        rng = self.rng
        if self.gather == "witness":
            avail = np.flatnonzero(valid)
            core = rng.choice(avail, size=n - f, replace=False)
            masks[:, core] = True
            in_core = np.zeros(len(valid), dtype=bool)
            in_core[core] = True
            rest = avail[~in_core[avail]]  # sorted, as np.setdiff1d (3x cheaper)
            if len(rest):
                masks[:, rest] = rng.random((h, len(rest))) < 0.5
            return
        for j in range(h):  # first-quorum: n-f rows, at most one version per node
            mine = valid if owner is None else valid & ((owner == -1) | (owner == j))
            order = rng.permutation(np.flatnonzero(mine))
            seen: set[int] = set()
            take = []
            for k in order:
                if int(node_of_row[k]) not in seen:
                    seen.add(int(node_of_row[k]))
                    take.append(k)
                if len(take) == n - f:
                    break
            masks[j, take] = True

    def _omniscient_views(self, honest, values, valid, byz_side, masks, owner=None):
        n, f = self.n, self.f
        h = honest.shape[0]
        side, u = split_sides(honest)
        with np.errstate(invalid="ignore", over="ignore"):  # invalid rows are never used
            proj = values @ u
        avail = np.flatnonzero(valid)
        if self.gather == "witness":
            spare = len(avail) - (n - f)  # rows the two sides may drop in total
            k_low_side = (spare + 1) // 2
            k_high_side = spare - k_low_side
            order = avail[np.argsort(proj[avail], kind="stable")]
            low_view = np.zeros(values.shape[0], dtype=bool)
            high_view = np.zeros(values.shape[0], dtype=bool)
            low_view[order[: len(order) - k_low_side]] = True  # drops the highest
            high_view[order[k_high_side:]] = True  # drops the lowest
            masks[side == 0] = low_view
            masks[side == 1] = high_view
            return
        h_rows = np.arange(h)
        for j in range(h):
            mine = side[j]
            # this side's Byzantine version, then the honest values closest to this side
            byz_rows = [k for k in avail[avail >= h] if byz_side[k - h] in (mine, -1)
                        and (owner is None or owner[k] in (-1, j))]
            hon = h_rows[np.argsort(proj[:h] if mine == 0 else -proj[:h], kind="stable")]
            take = (byz_rows + list(hon))[: n - f]
            masks[j, take] = True

    # -- running ---------------------------------------------------------------------------
    def _forced_views(self, h: int) -> bool:
        """Whether every honest view must hold all ``h`` honest rows and nothing else: no
        Byzantine row this round and ``h = n - f`` (each gather's views then have exactly
        ``n - f`` rows). The view draws then cannot change any view, and nothing else
        reads the generator of a silent (or Byzantine-free) engine, so they are skipped."""
        return h == self.n - self.f

    def _step_direct(self, honest: Any, is_torch: bool) -> tuple[Any, RoundPlan]:
        """A round with random views and a callable (or silent) attack, in the values' own
        form and device: only the Byzantine rows' validity flags reach the host."""
        h = honest.shape[0]
        b = len(self.byzantine_ids)
        if (isinstance(self.attack, str) and self.attack == "silent") or b == 0:
            values = honest.contiguous() if is_torch else np.ascontiguousarray(honest)
            ids = np.array(self.honest, dtype=np.int64)
            masks = np.ones((h, h), dtype=bool)
            if not self._forced_views(h):
                masks[:] = False
                self._random_views(np.ones(h, dtype=bool), ids, masks)
            return self._batch(values, masks), RoundPlan(values, ids, masks)
        if self.native or not is_torch:
            byz = self.attack(honest, b, self.rng, **self.attack_params)
        else:  # a numpy value attack on torch values: through the host
            import torch

            host = self.attack(honest.detach().cpu().numpy(), b, self.rng,
                               **self.attack_params)
            byz = torch.as_tensor(np.asarray(host), device=honest.device)
        if tuple(byz.shape) != (b, honest.shape[1]):
            raise ValueError(f"the attack returned shape {tuple(byz.shape)}, "
                             f"expected {(b, honest.shape[1])}")
        byz = session_rows(byz, honest)
        valid_byz = valid_flags(byz)
        every = bool(valid_byz.all())
        if is_torch:
            import torch

            kept = byz if every else byz[torch.as_tensor(valid_byz, device=byz.device)]
            values = torch.cat([honest, kept])
        else:
            values = np.concatenate([honest, byz if every else byz[valid_byz]])
        ids = np.array(self.honest + [self.byzantine_ids[k] for k in np.flatnonzero(valid_byz)],
                       dtype=np.int64)
        masks = np.zeros((h, len(ids)), dtype=bool)
        self._random_views(np.ones(len(ids), dtype=bool), ids, masks)
        return self._batch(values, masks), RoundPlan(values, ids, masks)

    def step(self, honest: Any) -> tuple[Any, RoundPlan]:
        """One round: returns the honest vectors of the next round and the plan."""
        is_torch = type(honest).__module__.startswith("torch")
        direct = (callable(self.attack) and not self.per_receiver) or (
            isinstance(self.attack, str) and self.attack == "silent")
        if self.views == "random" and direct:
            return self._step_direct(honest, is_torch)
        host = honest.detach().cpu().numpy() if is_torch else np.asarray(honest)
        plan = self.plan(host)
        h = host.shape[0]
        seen = plan.masks.any(axis=0)  # rows in no view (e.g. invalid values) are dropped
        seen[:h] = True
        every = bool(seen.all())  # then no row is dropped: the plan's rows as they are
        masks = plan.masks if every else plan.masks[:, seen]
        if is_torch:
            import torch

            if every and honest.device.type == "cpu" and plan.values.dtype == host.dtype:
                # the plan's rows are the honest rows then the Byzantine ones in the session
                # dtype: the same numbers torch.cat would copy, viewed without a copy
                return self._batch(torch.from_numpy(plan.values), masks), plan
            values = torch.cat([
                honest,
                torch.as_tensor(plan.values[h:][seen[h:]], dtype=honest.dtype,
                                device=honest.device),
            ])
            return self._batch(values, masks), plan  # masks are small: they stay on the host
        return self._batch(plan.values if every else plan.values[seen], masks), plan

    def _batch(self, values: Any, masks: np.ndarray) -> Any:
        """``rule.batch`` over the distinct views only (honest nodes often share a view),
        each honest node getting its view's row."""
        m = masks.shape[1]
        if len(masks) and (masks == masks[0]).all():  # one view for all (no attack, often)
            out = self.rule.batch(values, masks[:1])
            if type(out).__module__.startswith("torch"):
                return out.expand(len(masks), -1).clone()
            return np.repeat(out, len(masks), axis=0)
        if m <= 62:  # rows as bit patterns: a 1-D unique (np.unique(axis=0) is ~5x slower)
            keys = masks.astype(np.int64) @ (np.int64(1) << np.arange(m, dtype=np.int64))
            _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
            uniq = masks[first]
        else:
            uniq, inv = np.unique(masks, axis=0, return_inverse=True)
        if len(uniq) == len(masks):
            return self.rule.batch(values, masks)
        out = self.rule.batch(values, uniq)
        inv = inv.reshape(-1)
        if type(out).__module__.startswith("torch"):
            import torch

            return out[torch.as_tensor(inv, device=out.device)]
        return out[inv]

    def run(
        self, inputs: Any, rounds: int, on_round: Any = None
    ) -> tuple[list[Any], list[RoundPlan]]:
        """``rounds`` rounds from the honest ``inputs`` (h, d); returns every round's honest
        vectors (index 0 = inputs) and the plans. ``on_round(r)`` is called after each."""
        history = [inputs]
        plans = []
        x = inputs
        for r in range(rounds):
            x, plan = self.step(x)
            history.append(x)
            plans.append(plan)
            if on_round is not None:
                on_round(r)
        return history, plans
