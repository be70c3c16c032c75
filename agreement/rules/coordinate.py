"""Coordinate-wise rules: mean, trimmed mean, median (and Bulyan's closest-to-median step).

These rules are memory-bound: the floor is one pass over the ``m x d`` view (compare with a plain
mean). On the CPU the trimmed mean and the median run on the compiled column kernel of
:mod:`agreement.rules.kernels` (numba: blocks of columns, a pruned sorting network vectorised
over the columns) where numba is installed, ``JUNGLE_NO_NUMBA`` is not ``1`` and the view holds
at least ``kernels.MIN_ELEMENTS`` values (the same bits either way). The numpy
fallback processes a view in column chunks: each chunk is transposed into a small ``(b, m)``
buffer whose rows are sorted with numpy's SIMD sort (for the small ``m`` of a view faster than
``np.partition`` along axis 0 and than ``torch.sort``, see BENCHMARKS.md), then reduced with the
kernel's operations in the kernel's order (ascending rank, in the view's dtype), so both paths
give identical bits (:func:`trimmed_mean_numpy` and :func:`median_numpy` run the fallback
directly). The extremes of each sorted row also give the finiteness check for free (NaN sorts
last). On an accelerator the torch operations are used (``torch.sort``,
``torch.median``/``torch.kthvalue``).

Batches (all honest views at once, docs/architecture.md "Engines for agreement") give row ``i``
the bits of the single-view rule on ``values[masks[i]]``: on the compiled kernel each block of
columns is read from memory once and sorted per view from the cache; the numpy fallback runs
the views one by one. On an accelerator the values are sorted once and every view is the global
order with its excluded values masked out (``(k, m, chunk)`` intermediates).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import kernels
from ._backend import (
    Prepared,
    Rule,
    _torch,
    all_finite,
    check_f,
    check_size,
    nonfinite_error,
    prepare,
)

# --------------------------------------------------------------------------------------------
# numpy kernels


def _chunk(m: int) -> int:
    return max(256, (1 << 17) // max(m, 1))


def _sorted_chunks(x: np.ndarray, who: str) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(s, e, t)``: ``t`` is ``x[:, s:e].T`` with each row sorted ascending.

    Raises ValueError if the chunk holds a NaN or an infinity (they sort to the row ends).
    """
    m, d = x.shape
    B = min(_chunk(m), d)
    buf = np.empty((B, m), x.dtype)
    for s in range(0, d, B):
        e = min(d, s + B)
        t = buf[: e - s]
        np.copyto(t, x[:, s:e].T)
        t.sort(axis=1)
        if not (np.isfinite(t[:, 0]).all() and np.isfinite(t[:, m - 1]).all()):
            raise nonfinite_error(who)
        yield s, e, t


def _mean_np(x: np.ndarray, who: str) -> np.ndarray:
    out = x.mean(axis=0)
    if not np.isfinite(out).all():
        if not np.isfinite(x).all():
            raise nonfinite_error(who)
        out = x.mean(axis=0, dtype=np.float64).astype(x.dtype)  # overflow of the float32 sum
    return out


def _trimmed_mean_np(x: np.ndarray, f: int, who: str) -> np.ndarray:
    """The trimmed mean on numpy's row sort: per column ``y = (x_(f) + ... + x_(m-f-1)) / w``,
    ``w = m - 2f``, summed in ascending rank order in the view's dtype (the float64 sum where
    the dtype's overflows), clipped to ``[x_(f), x_(m-f-1)]``, a zero result made ``+0``: the
    same operations, in the same order, as the compiled kernel (agreement.rules.kernels), so
    the two give identical bits."""
    m, d = x.shape
    w = m - 2 * f  # f = 0 too: the sorted path clips the mean to [min, max] (rounding)
    out = np.empty(d, x.dtype)
    for s, e, t in _sorted_chunks(x, who):
        seg = out[s:e]
        seg[:] = t[:, f]
        with np.errstate(over="ignore"):
            for r in range(f + 1, m - f):
                seg += t[:, r]
            bad = ~np.isfinite(seg)  # the dtype's sum overflowed: those columns in float64
            if bad.any():
                mid = t[bad, f : m - f]
                acc = mid[:, 0].astype(np.float64)
                for r in range(1, w):
                    acc += mid[:, r]
                seg[bad] = acc / w
                seg[~bad] /= w
            else:
                seg /= w
        np.clip(seg, t[:, f], t[:, m - f - 1], out=seg)  # only corrects rounding
        seg += 0  # -0 -> +0: a sort may put either zero on a rank (see the kernels' docstring)
    return out


def _median_np(x: np.ndarray, who: str) -> np.ndarray:
    """The median on numpy's row sort (the compiled kernel's operations, identical bits)."""
    m, d = x.shape
    out = np.empty(d, x.dtype)
    h = m // 2
    for s, e, t in _sorted_chunks(x, who):
        if m % 2:
            out[s:e] = t[:, h]
        else:
            np.multiply(t[:, h - 1], 0.5, out=out[s:e])
            out[s:e] += 0.5 * t[:, h]
            # halving two subnormals rounds to 0, outside [t_(h-1), t_(h)]: clip (rounding only)
            np.clip(out[s:e], t[:, h - 1], t[:, h], out=out[s:e])
        out[s:e] += 0  # -0 -> +0
    return out


def _closest_to_median_np(z: np.ndarray, beta: int, who: str) -> np.ndarray:
    """Per coordinate, the mean of the ``beta`` values closest to the coordinate-wise median."""
    th, d = z.shape
    out = np.empty(d, z.dtype)
    nw = th - beta + 1
    ones = np.ones(beta, z.dtype)
    for s, e, t in _sorted_chunks(z, who):
        med = 0.5 * t[:, (th - 1) // 2] + 0.5 * t[:, th // 2]
        cost = np.maximum(med[:, None] - t[:, :nw], t[:, beta - 1 :] - med[:, None])
        best = np.argmin(cost, axis=1)
        sums = np.stack([t[:, j : j + beta] @ ones for j in range(nw)], axis=1)
        seg = np.take_along_axis(sums, best[:, None], 1)[:, 0] / beta
        lo = np.take_along_axis(t, best[:, None], 1)[:, 0]
        hi = np.take_along_axis(t, (best + beta - 1)[:, None], 1)[:, 0]
        out[s:e] = np.clip(seg, lo, hi)
    return out


# ---- batches (numpy) -------------------------------------------------------------------------


def _window_batch_cpu(x: np.ndarray, masks: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      median: bool, who: str) -> np.ndarray:
    """Row ``i``: the trimmed mean of ranks ``[lo_i, hi_i)`` (``median``: the median) of the
    view ``x[masks[i]]``, with the bits of the single-view rule on that view, on the compiled
    kernel (each block of ``x`` read once for all views) or the numpy fallback (one view at a
    time). Raises ValueError if any value of ``x`` is not finite, in a view or not."""
    unused = ~masks.any(axis=0)
    if unused.any() and not np.isfinite(x[unused]).all():
        raise nonfinite_error(who)
    if kernels.worthwhile(int(masks.sum()) * x.shape[1]):
        out = kernels.window_batch(x, masks, lo, hi, median)
        if out is None:
            raise nonfinite_error(who)
        return out
    if median:
        return np.stack([_median_np(x[mk], who) for mk in masks])
    return np.stack([_trimmed_mean_np(x[mk], int(f), who) for mk, f in zip(masks, lo,
                                                                            strict=True)])


def _mean_batch_np(x: np.ndarray, masks: np.ndarray, who: str) -> np.ndarray:
    w = masks.astype(x.dtype)
    out = (w @ x) / masks.sum(axis=1)[:, None].astype(x.dtype)
    if not np.isfinite(out).all():
        if not np.isfinite(x).all():
            raise nonfinite_error(who)
        w64 = masks.astype(np.float64)
        out = ((w64 @ x.astype(np.float64)) / masks.sum(axis=1)[:, None]).astype(x.dtype)
    return out


# --------------------------------------------------------------------------------------------
# torch kernels (accelerators)


def _torch_sorted(x: Any, who: str) -> Any:
    torch = _torch()
    s = torch.sort(x, dim=0).values
    if not (torch.isfinite(s[0]).all() and torch.isfinite(s[-1]).all()):
        raise nonfinite_error(who)
    return s


def _mean_torch(x: Any, who: str) -> Any:
    out = x.mean(dim=0)
    if not all_finite(out):
        if not all_finite(x):
            raise nonfinite_error(who)
        out = x.double().mean(dim=0).to(x.dtype)
    return out


def _trimmed_mean_torch(x: Any, f: int, who: str) -> Any:
    m = x.shape[0]
    s = _torch_sorted(x, who)
    mid = s[f : m - f]
    out = mid.mean(dim=0)
    if not all_finite(out):
        out = mid.double().mean(dim=0).to(x.dtype)
    return _torch().clamp(out, s[f], s[m - f - 1])


def _median_torch(x: Any, who: str) -> Any:
    torch = _torch()
    if not all_finite(x):
        raise nonfinite_error(who)
    m = x.shape[0]
    lo = torch.median(x, dim=0).values  # the lower median, rank (m-1)//2
    if m % 2:
        return lo
    hi = torch.kthvalue(x, m // 2 + 1, dim=0).values
    return torch.minimum(torch.maximum(0.5 * lo + 0.5 * hi, lo), hi)  # rounding of subnormals


def _closest_to_median_torch(z: Any, beta: int, who: str) -> Any:
    torch = _torch()
    th = z.shape[0]
    s = _torch_sorted(z, who)
    med = 0.5 * s[(th - 1) // 2] + 0.5 * s[th // 2]
    nw = th - beta + 1
    cost = torch.maximum(med - s[:nw], s[beta - 1 :] - med)  # (nw, d)
    best = torch.argmin(cost, dim=0, keepdim=True)
    sums = torch.stack([s[j : j + beta].sum(dim=0) for j in range(nw)])
    out = sums.gather(0, best)[0] / beta
    return torch.clamp(out, s.gather(0, best)[0], s.gather(0, best + beta - 1)[0])


def _window_batch_torch(x: Any, masks: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                        mid: bool, who: str) -> Any:
    """Per view ``i``: mean of the values of view-rank in ``[lo_i, hi_i)`` (``mid``: midpoint of
    the two window ends). Sort once, then mask per view: ``(k, m, chunk)`` intermediates."""
    torch = _torch()
    m, d = x.shape
    k = masks.shape[0]
    s, o = torch.sort(x, dim=0)
    if not (torch.isfinite(s[0]).all() and torch.isfinite(s[-1]).all()):
        raise nonfinite_error(who)
    mk = torch.from_numpy(masks).to(x.device)
    lo_t = torch.from_numpy(lo).to(x.device)[:, None, None]
    hi_t = torch.from_numpy(hi).to(x.device)[:, None, None]
    out = torch.empty((k, d), dtype=x.dtype, device=x.device)
    B = max(1, min(d, (1 << 26) // max(1, k * m)))
    for c in range(0, d, B):
        e = min(d, c + B)
        sv = s[:, c:e]
        M = mk[:, o[:, c:e]]  # (k, m, b): is the element at sorted position p in view i
        rank = M.cumsum(dim=1, dtype=torch.int32)  # 1-based view-rank at each position
        first = M & (rank == lo_t + 1)
        last = M & (rank == hi_t)
        a = (first * sv).sum(dim=1)
        b = (last * sv).sum(dim=1)
        if mid:
            out[:, c:e] = torch.minimum(torch.maximum(0.5 * a + 0.5 * b, a), b)
        else:
            keep = M & (rank > lo_t) & (rank <= hi_t)
            acc = (keep * sv.double()).sum(dim=1) / torch.from_numpy(hi - lo).to(x.device)[:, None]
            out[:, c:e] = torch.clamp(acc.to(x.dtype), a, b)
    return out


# --------------------------------------------------------------------------------------------
# dispatch


def _tm_dispatch(prep: Prepared, f: int, who: str) -> Any:
    if prep.use_torch:
        return _trimmed_mean_torch(prep.x, f, who)
    if kernels.worthwhile(prep.x.size):
        out = kernels.trimmed_mean(prep.x, f)
        if out is None:
            raise nonfinite_error(who)
        return out
    return _trimmed_mean_np(prep.x, f, who)


def _median_dispatch(prep: Prepared, who: str) -> Any:
    if prep.use_torch:
        return _median_torch(prep.x, who)
    if kernels.worthwhile(prep.x.size):
        out = kernels.median(prep.x)
        if out is None:
            raise nonfinite_error(who)
        return out
    return _median_np(prep.x, who)


def trimmed_mean_numpy(view: Any, f: int) -> Any:
    """The trimmed mean on the numpy path whatever the environment (numba or not): the
    fallback that the compiled kernel must match bit for bit (tests and benchmarks)."""
    rule = TrimmedMean(f)
    prep = prepare(view, rule.label)
    rule.check(prep.m)
    if prep.use_torch:
        raise ValueError("trimmed_mean_numpy: pass a numpy array or a CPU tensor (the numpy "
                         "path), not an accelerator tensor")
    return prep.wrap(_trimmed_mean_np(prep.x, f, rule.label))


def median_numpy(view: Any) -> Any:
    """The median on the numpy path whatever the environment (see :func:`trimmed_mean_numpy`)."""
    prep = prepare(view, Median.label)
    if prep.use_torch:
        raise ValueError("median_numpy: pass a numpy array or a CPU tensor (the numpy path), "
                         "not an accelerator tensor")
    return prep.wrap(_median_np(prep.x, Median.label))


def closest_to_median_mean(prep: Prepared, beta: int, who: str) -> Any:
    """Bulyan's aggregation step on a prepared ``(θ, d)`` view (returns compute form)."""
    if prep.use_torch:
        return _closest_to_median_torch(prep.x, beta, who)
    return _closest_to_median_np(prep.x, beta, who)


# --------------------------------------------------------------------------------------------
# rules


@dataclass(frozen=True)
class Mean(Rule):
    """Plain average ``y = (1/m) Σ_i x_i``.

    Precondition: ``m >= 1``. Guarantee: none claimed (a single Byzantine value moves it
    arbitrarily far); the non-robust baseline. ``f`` is recorded but not used.
    """

    name: ClassVar[str] = "mean"
    label: ClassVar[str] = "mean"

    def _apply(self, prep: Prepared) -> Any:
        if prep.use_torch:
            return _mean_torch(prep.x, self.label)
        return _mean_np(prep.x, self.label)

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        if prep.use_torch:
            torch = _torch()
            if not all_finite(prep.x):
                raise nonfinite_error(self.label)
            w = torch.from_numpy(masks).to(device=prep.x.device, dtype=prep.x.dtype)
            return (w @ prep.x) / w.sum(dim=1, keepdim=True)
        return _mean_batch_np(prep.x, masks, self.label)


@dataclass(frozen=True)
class TrimmedMean(Rule):
    """Coordinate-wise trimmed mean ``TM_f`` (docs/theory.md §5.1).

    Per coordinate ``c``, sort ``x_1c <= ... <= x_mc`` and average the middle values:
    ``y_c = (1/(m-2f)) Σ_{r=f+1}^{m-f} x_(r)c``.

    Precondition: ``m >= 2f+1``.
    Guarantee: if at most ``f`` of the ``m`` values are Byzantine, each ``y_c`` lies within the
    range of the honest values of coordinate ``c`` (each kept value is bracketed by honest ones);
    more precisely ``y_c`` lies in the range of any ``m-f`` of the inputs. Iterated over views
    gathered by RB + witnesses (n >= 3f+1) the honest range contracts by ``λ = f/(n-2f)`` per
    round [docs/theory.md §5.1, to prove].
    """

    name: ClassVar[str] = "trimmed-mean"
    label: ClassVar[str] = "trimmed_mean"

    def min_size(self) -> int:
        return 2 * self.f + 1

    def _size_expr(self) -> str:
        return "2f+1"

    def _apply(self, prep: Prepared) -> Any:
        return _tm_dispatch(prep, self.f, self.label)

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        sizes = masks.sum(axis=1)
        lo = np.full(len(sizes), self.f)
        hi = sizes - self.f
        if prep.use_torch:
            return _window_batch_torch(prep.x, masks, lo, hi, False, self.label)
        return _window_batch_cpu(prep.x, masks, lo, hi, False, self.label)


@dataclass(frozen=True)
class Median(Rule):
    """Coordinate-wise median: per coordinate the middle value, or for even ``m`` the midpoint
    ``(x_(m/2) + x_(m/2+1)) / 2`` of the two middle values (as ``numpy.median``).

    Precondition: ``m >= 2f+1`` (``f`` is the number of Byzantine values it must tolerate; the
    median itself does not use ``f``).
    Guarantee: with at most ``f < m/2`` Byzantine values, each coordinate lies within the range
    of the honest values of that coordinate.
    """

    name: ClassVar[str] = "median"
    label: ClassVar[str] = "median"

    def min_size(self) -> int:
        return 2 * self.f + 1

    def _size_expr(self) -> str:
        return "2f+1"

    def _apply(self, prep: Prepared) -> Any:
        return _median_dispatch(prep, self.label)

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        sizes = masks.sum(axis=1)
        lo = (sizes - 1) // 2
        hi = sizes // 2 + 1
        if prep.use_torch:
            return _window_batch_torch(prep.x, masks, lo, hi, True, self.label)
        return _window_batch_cpu(prep.x, masks, lo, hi, True, self.label)


# --------------------------------------------------------------------------------------------
# functions


def mean(view: Any) -> Any:
    """Plain average of the view (see :class:`Mean`)."""
    return Mean()(view)


def trimmed_mean(view: Any, f: int) -> Any:
    """Coordinate-wise trimmed mean dropping the ``f`` smallest and ``f`` largest values per
    coordinate (see :class:`TrimmedMean`); needs ``m >= 2f+1``."""
    return TrimmedMean(f)(view)


def median(view: Any) -> Any:
    """Coordinate-wise median (midpoint of the two middle values for even ``m``)."""
    return Median()(view)


__all__ = [
    "Mean",
    "Median",
    "TrimmedMean",
    "check_f",
    "check_size",
    "closest_to_median_mean",
    "mean",
    "median",
    "median_numpy",
    "prepare",
    "trimmed_mean",
    "trimmed_mean_numpy",
]
