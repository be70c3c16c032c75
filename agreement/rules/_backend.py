"""Shared machinery of the robust rules: input handling, validation, the Gram matrix, outputs.

A *view* is ``m`` vectors of dimension ``d``: an ``(m, d)`` numpy array, an ``(m, d)`` torch
tensor on any device, or a sequence of 1-D vectors (numpy arrays or torch tensors). Rules return
a ``(d,)`` vector of the input's type, dtype and device.

Backends
--------
* numpy arrays and torch tensors on the CPU are processed with numpy (a CPU tensor is viewed
  zero-copy through ``Tensor.numpy()``; numpy's SIMD row sort is ~3x faster than ``torch.sort``
  for the small ``m`` of a view), the trimmed mean and the median on the compiled column kernel
  of :mod:`agreement.rules.kernels` where numba is installed (the same bits);
* tensors on an accelerator (CUDA, ...) stay there and are processed with torch operations.
  ``FORCE_TORCH_OPS = True`` routes CPU tensors through the torch code as well (used by the
  tests, so that the accelerator code path is exercised on machines without a GPU).

torch is imported lazily: it is only looked up in ``sys.modules`` (an input can only be a torch
tensor if the caller imported torch), so importing :mod:`agreement` never imports torch.

Gram matrix
-----------
Distance-based rules (Krum, geometric median, MDA, MVE, ...) depend on ``d`` only through the
``m x m`` Gram matrix ``G = X Xᵀ``: ``||x_i - x_j||² = G_ii + G_jj - 2 G_ij``. It is computed
once, in float64 (float32 inputs are converted chunk by chunk, so no float64 copy of the view is
ever materialised), and everything after it is ``m x m`` work. To limit cancellation, when the
error bound ``4·eps·sqrt(d)·(G_ii + G_jj)`` is not negligible against some ``||x_i - x_j||²``
(points far from the origin relative to their spread, or far outliers), the Gram matrix is
recomputed about a robust centre (a medoid: the point whose ``ceil(m/2)-1``-th nearest neighbour
is closest); distances are translation invariant. Values so large that ``G`` overflows are
rescaled by a power of two (``Gram.scale``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

#: Route CPU torch tensors through the torch (accelerator) code path instead of numpy.
FORCE_TORCH_OPS = False

_EPS64 = float(np.finfo(np.float64).eps)
# after rescaling the largest value to ~1, a nonzero squared norm below this has lost its
# digits to underflow (float64's smallest normal is ~2.2e-308; 1e-250 leaves margin for d)
_DYNAMIC_FLOOR = 1e-250


# --------------------------------------------------------------------------------------------
# torch, lazily


def _torch() -> Any:
    """The torch module if the caller has imported it, else None (never imports it)."""
    return sys.modules.get("torch")


def is_tensor(obj: object) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


# --------------------------------------------------------------------------------------------
# the prepared view


@dataclass
class Prepared:
    """A validated ``(m, d)`` view in its compute form.

    ``x`` is a numpy array (float32 or float64) when ``use_torch`` is False, else a torch tensor
    (float32 or float64) on the input's device. ``wrap`` turns a numpy/torch result back into
    the input's type, dtype and device.
    """

    x: Any
    use_torch: bool
    kind: str  # "numpy" or "torch"
    out_dtype: Any  # numpy dtype or torch dtype of the outputs
    device: Any = None

    @property
    def m(self) -> int:
        return int(self.x.shape[0])

    @property
    def d(self) -> int:
        return int(self.x.shape[1])

    def wrap(self, result: Any) -> Any:
        """Convert a computed result (numpy array or torch tensor) to the input's form."""
        if self.kind == "numpy":
            if is_tensor(result):  # pragma: no cover - numpy inputs never produce tensors
                result = result.cpu().numpy()
            return np.asarray(result).astype(self.out_dtype, copy=False)
        torch = _torch()
        if not isinstance(result, torch.Tensor):
            result = torch.from_numpy(np.ascontiguousarray(result))
        return result.to(device=self.device, dtype=self.out_dtype)

    def subset(self, mask: np.ndarray) -> Prepared:
        """The prepared view restricted to the rows selected by a boolean mask."""
        if self.use_torch:
            torch = _torch()
            idx = torch.from_numpy(np.flatnonzero(mask)).to(self.x.device)
            x = self.x.index_select(0, idx)
        else:
            x = self.x[mask]
        return Prepared(x, self.use_torch, self.kind, self.out_dtype, self.device)


def _shape_error(who: str, shape: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"{who}: a view must be a 2-D (m, d) array/tensor or a sequence of 1-D vectors of "
        f"equal length, got shape {shape}"
    )


def _np_compute_dtype(dt: np.dtype) -> tuple[np.dtype, np.dtype]:
    """(compute dtype, output dtype) for a numpy dtype."""
    if dt == np.float64 or dt == np.float32:
        return dt, dt
    if dt == np.float16:
        return np.dtype(np.float32), dt
    if dt.kind in "iub":
        return np.dtype(np.float64), np.dtype(np.float64)
    if dt.kind == "f":  # longdouble
        return np.dtype(np.float64), dt
    raise TypeError(f"unsupported dtype {dt} (real floating point or integer values expected)")


def prepare(view: Any, who: str) -> Prepared:
    """Validate a view (type, shape, emptiness) and bring it to its compute form.

    Finiteness is *not* checked here: each rule checks it as part of its own pass over the data
    (a separate ``isfinite`` pass would cost as much as a coordinate-wise rule itself).
    """
    torch = _torch()
    if isinstance(view, np.ndarray):
        arr = view
    elif torch is not None and isinstance(view, torch.Tensor):
        return _prepare_tensor(view, who)
    elif isinstance(view, Sequence) and not isinstance(view, (str, bytes)):
        if len(view) == 0:
            raise ValueError(f"{who}: empty view (m=0); at least one vector is needed")
        if torch is not None and any(isinstance(v, torch.Tensor) for v in view):
            if not all(isinstance(v, torch.Tensor) for v in view):
                raise TypeError(f"{who}: a sequence view mixes torch tensors and other types")
            if any(v.dim() != 1 for v in view):
                raise _shape_error(who, tuple(next(v for v in view if v.dim() != 1).shape))
            if len({int(v.shape[0]) for v in view}) != 1:
                raise ValueError(f"{who}: the vectors of a view must all have the same length")
            return _prepare_tensor(torch.stack(list(view)), who)
        items = [np.asarray(v) for v in view]
        if any(v.ndim != 1 for v in items):
            raise _shape_error(who, next(v.shape for v in items if v.ndim != 1))
        if len({v.shape[0] for v in items}) != 1:
            raise ValueError(f"{who}: the vectors of a view must all have the same length")
        arr = np.stack(items)
    else:
        raise TypeError(
            f"{who}: expected a numpy array, a torch tensor or a sequence of 1-D vectors, "
            f"got {type(view).__name__}"
        )
    if arr.ndim != 2:
        raise _shape_error(who, arr.shape)
    if arr.shape[0] == 0:
        raise ValueError(f"{who}: empty view (m=0); at least one vector is needed")
    if arr.shape[1] == 0:
        raise ValueError(f"{who}: vectors of dimension d=0")
    cdt, odt = _np_compute_dtype(arr.dtype)
    if arr.dtype != cdt:
        arr = arr.astype(cdt)
    return Prepared(arr, False, "numpy", odt)


def _prepare_tensor(t: Any, who: str) -> Prepared:
    torch = _torch()
    t = t.detach()
    if t.dim() != 2:
        raise _shape_error(who, tuple(t.shape))
    if t.shape[0] == 0:
        raise ValueError(f"{who}: empty view (m=0); at least one vector is needed")
    if t.shape[1] == 0:
        raise ValueError(f"{who}: vectors of dimension d=0")
    if t.is_complex():
        raise TypeError(f"{who}: unsupported dtype {t.dtype} (real values expected)")
    out_dtype = t.dtype if t.is_floating_point() else torch.float64
    cdt = t.dtype if t.dtype in (torch.float32, torch.float64) else (
        torch.float32 if t.is_floating_point() else torch.float64
    )
    use_torch = t.device.type != "cpu" or FORCE_TORCH_OPS
    if use_torch:
        return Prepared(t.to(cdt), True, "torch", out_dtype, t.device)
    x = t.to(cdt).numpy()
    return Prepared(x, False, "torch", out_dtype, t.device)


# --------------------------------------------------------------------------------------------
# validation helpers


def check_f(who: str, f: object) -> int:
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)):
        raise TypeError(f"{who}: f must be an integer, got {type(f).__name__}")
    if f < 0:
        raise ValueError(f"{who} needs f >= 0, got f={f}")
    return int(f)


def check_size(who: str, m: int, f: int, need: int, expr: str) -> None:
    """Raise ``ValueError('{who} needs m >= {expr} values, got m=.. with f=..')``."""
    if m < need:
        raise ValueError(f"{who} needs m >= {expr} values, got m={m} with f={f}")


def nonfinite_error(who: str) -> ValueError:
    return ValueError(f"{who}: the view contains non-finite values (NaN or ±inf)")


def all_finite(x: Any) -> bool:
    if is_tensor(x):
        return bool(_torch().isfinite(x).all())
    return bool(np.isfinite(x).all())


def prepare_masks(masks: Any, m: int, who: str) -> np.ndarray:
    """Masks as a ``(k, m)`` boolean numpy array (they are small: k x m)."""
    if is_tensor(masks):
        masks = masks.detach().cpu().numpy()
    mk = np.asarray(masks)
    if mk.ndim != 2 or mk.shape[1] != m:
        raise ValueError(f"{who}.batch: masks must have shape (k, m={m}), got {mk.shape}")
    if mk.dtype != np.bool_:
        if mk.dtype.kind not in "iu" or not np.isin(mk, (0, 1)).all():
            raise TypeError(f"{who}.batch: masks must be boolean, got dtype {mk.dtype}")
        mk = mk.astype(bool)
    return mk


def check_mask_sizes(who: str, masks: np.ndarray, need: int, expr: str, f: int) -> None:
    sizes = masks.sum(axis=1)
    bad = np.flatnonzero(sizes < need)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{who} needs m >= {expr} values, got m={int(sizes[i])} with f={f} "
            f"(batch mask row {i})"
        )


# --------------------------------------------------------------------------------------------
# the Gram matrix


@dataclass
class Gram:
    """Float64 Gram matrix of the rows of ``X / scale`` about some centre ``c`` (unknown to the
    caller; distances and all the rules are translation invariant):
    ``G[i, j] = <x_i/scale - c, x_j/scale - c>``."""

    G: np.ndarray
    scale: float = 1.0
    d: int = 1

    def noise(self) -> float:
        """Relative rounding of the entries of ``G``, ``c = 4·eps·(sqrt(d) + 2)``: an entry
        ``G_ij`` carries an error up to ``~eps·sqrt(d)·max(G_ii, G_jj)`` (the dot product) plus
        ``~2·eps·max G_ii`` (the centring), and a ``q x q`` centred sub-Gram matrix of such
        errors moves an eigenvalue by up to ``q`` times that: below ``c·q·max_{i∈S} G_ii`` an
        eigenvalue of subset ``S`` is indistinguishable from 0 (e.g. duplicated points). (A
        floor without the factor ``q`` let a rounding eigenvalue of four duplicates pass as a
        second dimension; a floor from the whole view's largest ``G_ii`` let one far value
        flatten every other subset.)"""
        return 4.0 * _EPS64 * (math.sqrt(self.d) + 2.0)

    def distances2(self) -> np.ndarray:
        """Squared distances ``||x_i - x_j||² / scale²`` (symmetric, zero diagonal, >= 0)."""
        return sq_distances(self.G)

    def sub(self, idx: np.ndarray) -> Gram:
        return Gram(self.G[np.ix_(idx, idx)], self.scale, self.d)


def sq_distances(G: np.ndarray) -> np.ndarray:
    g = np.diag(G)
    D = g[:, None] + g[None, :] - 2.0 * G
    D = 0.5 * (D + D.T)
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    return D


def _chunk_cols(m: int) -> int:
    return max(512, 65536 // max(m, 1))


def _gram_pass_np(blocks: list[np.ndarray], centre: int | None, scale: float) -> np.ndarray:
    m = sum(b.shape[0] for b in blocks)
    d = blocks[0].shape[1]
    B = min(_chunk_cols(m), d)
    buf = np.empty((m, B), np.float64)
    G = np.zeros((m, m), np.float64)
    inv = 1.0 / scale
    for s in range(0, d, B):
        e = min(d, s + B)
        c = buf[:, : e - s]
        r = 0
        for b in blocks:
            np.copyto(c[r : r + b.shape[0]], b[:, s:e])
            r += b.shape[0]
        if scale != 1.0:
            c *= inv
        if centre is not None:
            c -= c[centre].copy()
        G += c @ c.T
    return G


def _gram_pass_torch(blocks: list[Any], centre: int | None, scale: float) -> np.ndarray:
    torch = _torch()
    m = sum(int(b.shape[0]) for b in blocks)
    d = int(blocks[0].shape[1])
    dev = blocks[0].device
    B = min(d, _chunk_cols(m) * (64 if dev.type != "cpu" else 1))
    buf = torch.empty((m, B), dtype=torch.float64, device=dev)
    G = torch.zeros((m, m), dtype=torch.float64, device=dev)
    for s in range(0, d, B):
        e = min(d, s + B)
        c = buf[:, : e - s]
        r = 0
        for b in blocks:
            c[r : r + b.shape[0]].copy_(b[:, s:e])
            r += int(b.shape[0])
        if scale != 1.0:
            c.mul_(1.0 / scale)
        if centre is not None:
            c.sub_(c[centre].clone())
        G.addmm_(c, c.T)
    return G.cpu().numpy()


def _medoid(D: np.ndarray) -> int:
    m = D.shape[0]
    if m <= 2:
        return 0
    k = max(1, math.ceil(m / 2) - 1)
    radii = np.sort(D, axis=1)[:, k]  # column 0 is the point itself
    return int(np.argmin(radii))


def gram_of(blocks: list[Any], use_torch: bool, who: str) -> Gram:
    """Gram matrix (float64, numpy) of the rows of the stacked blocks, with the finiteness check.

    Raises ValueError if a value is NaN or infinite (detected through the diagonal of ``G``).
    """
    d = int(blocks[0].shape[1])
    pass_ = _gram_pass_torch if use_torch else _gram_pass_np
    scale = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        G = pass_(blocks, None, scale)
    if not np.isfinite(G).all():
        if not all(all_finite(b) for b in blocks):
            raise nonfinite_error(who)
        # finite but huge values: rescale by a power of two (exact; at most 2^1023, so that
        # values up to the float64 maximum are divided, not overflowed)
        amax = max(
            float(b.abs().max()) if use_torch else float(np.abs(b).max()) for b in blocks
        )
        scale = math.ldexp(1.0, min(math.ceil(math.log2(amax)), 1023))
        G = pass_(blocks, None, scale)
        rows = np.concatenate([
            b.abs().amax(dim=1).double().cpu().numpy() if use_torch else np.abs(b).max(axis=1)
            for b in blocks
        ]).astype(np.float64) / scale
        if not np.isfinite(G).all() or ((rows > 0) & (rows * rows < _DYNAMIC_FLOOR)).any():
            # some squared norms underflowed next to the largest: their distances are lost,
            # and a rule would compare zeros (an unbounded error, proofs/mve.md Prop. 9)
            raise ValueError(
                f"{who}: the view's values span more than float64 can compare through "
                f"squared distances (largest |x| = {amax:.3g}, some vectors' squared norms "
                "vanish next to it); the protocols never get here: such values are "
                "invalid (netsim.messages.valid_vector)"
            )
    D = sq_distances(G)
    g = np.diag(G)
    noise = 4.0 * _EPS64 * math.sqrt(d) * (g[:, None] + g[None, :])
    # a pair is unresolved when its squared distance is within the rounding of the entries:
    # D > 0 but below 1e6 x the noise, or D = 0 (cancelled) for two rows that differ (values
    # with a common offset much larger than their spread: at a relative spread of 1e-8 every
    # D of the raw Gram matrix cancels to exactly 0, and MDA then picked the first subset,
    # 0.77·Δ2 from the honest mean against β = 0.586; found by proofs' search)
    unresolved = ~np.eye(len(g), dtype=bool) & (noise > 1e-6 * D)
    if unresolved.any() and (
        (unresolved & (D > 0)).any() or not _zero_pairs_identical(blocks, unresolved)
    ):
        G = pass_(blocks, _medoid(D), scale)
    return Gram(G, scale, d)


def _zero_pairs_identical(blocks: list[Any], pairs: np.ndarray) -> bool:
    """Whether the rows of every pair marked in ``pairs`` (all at squared distance 0) are
    bitwise identical. Each connected group of paired rows is compared with its first row:
    if every row equals it, every pair in the group is identical (equality is transitive);
    otherwise some pair differs, or the group is not one point, and the caller recentres.
    One comparison per row, O(m·d), against the O(m²·d) of a second Gram pass."""
    rows = [(b, r) for b in blocks for r in range(int(b.shape[0]))]
    m = len(rows)
    root = np.full(m, -1)
    for start in range(m):
        if root[start] >= 0 or not pairs[start].any():
            continue
        root[start], stack = start, [start]
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(pairs[i] & (root < 0)):
                root[j] = start
                stack.append(int(j))
    for i in range(m):
        if root[i] < 0 or root[i] == i:
            continue
        (bi, ri), (bj, rj) = rows[i], rows[int(root[i])]
        a, b = bi[ri], bj[rj]
        same = bool(_torch().equal(a, b)) if is_tensor(a) else bool(np.array_equal(a, b))
        if not same:
            return False
    return True


def gram(prep: Prepared, who: str, extra: list[Any] | None = None) -> Gram:
    """Gram matrix of the view's rows (and of ``extra`` rows appended after them)."""
    blocks = [prep.x, *(extra or [])]
    return gram_of(blocks, prep.use_torch, who)


def combine(prep: Prepared, A: np.ndarray, extra: Any = None) -> Any:
    """``A @ X`` (coefficients times the view's rows, ``extra`` rows appended), computed in the
    view's compute dtype on its device. ``A`` is ``(m,)`` or ``(k, m)``; returns the same rank.
    Rows of ``A`` that select a single vector (one coefficient 1, the rest 0) return an exact copy.
    """
    x = prep.x
    one = A.ndim == 1
    A2 = np.atleast_2d(A)
    if prep.use_torch:
        torch = _torch()
        if extra is not None:
            x = torch.cat([x, extra], 0)
        At = torch.from_numpy(A2).to(device=x.device, dtype=x.dtype)
        out = At @ x
        sel = _selections(A2)
        for i, j in sel:
            out[i] = x[j]
    else:
        if extra is not None:
            x = np.concatenate([x, extra], 0)
        out = A2.astype(x.dtype) @ x
        for i, j in _selections(A2):
            out[i] = x[j]
    return out[0] if one else out


def _selections(A: np.ndarray) -> list[tuple[int, int]]:
    nz = A != 0
    rows = np.flatnonzero(nz.sum(axis=1) == 1)
    out = []
    for i in rows:
        j = int(np.flatnonzero(nz[i])[0])
        if A[i, j] == 1.0:
            out.append((int(i), j))
    return out


# --------------------------------------------------------------------------------------------
# the Rule base class


@dataclass(frozen=True)
class Rule:
    """A robust rule: a frozen callable mapping a view of ``m`` vectors to one vector.

    ``name`` is the registry name, ``f`` the number of values it tolerates (or trims).
    ``rule(view)`` applies it to one view; ``rule.batch(values, masks)`` applies it to the views
    ``values[masks[i]]`` for every row ``i`` of ``masks`` at once.
    """

    name: ClassVar[str] = "rule"
    label: ClassVar[str] = "rule"  # name used in error messages (the function's name)

    f: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "f", check_f(self.label, self.f))

    # -- to override --------------------------------------------------------------------
    def min_size(self) -> int:
        """The least view size ``m`` for which the rule is defined."""
        return 1

    def _size_expr(self) -> str:
        return "1"

    def _apply(self, prep: Prepared) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_batch(self, prep: Prepared, masks: np.ndarray) -> Any:
        """Default: loop over the views (rules that share work across views override it)."""
        rows = [self._apply(prep.subset(mk)) for mk in masks]
        if prep.use_torch:
            return _torch().stack(rows)
        return np.stack(rows)

    # -- public -------------------------------------------------------------------------
    def check(self, m: int) -> None:
        check_size(self.label, m, self.f, self.min_size(), self._size_expr())

    def __call__(self, view: Any) -> Any:
        prep = prepare(view, self.label)
        self.check(prep.m)
        return prep.wrap(self._apply(prep))

    def batch(self, values: Any, masks: Any) -> Any:
        """Row ``i`` of the result is ``self(values[masks[i]])``; values ``(m, d)``, masks
        ``(k, m)`` boolean (numpy or torch); the result is ``(k, d)`` of the values' type."""
        prep = prepare(values, self.label)
        mk = prepare_masks(masks, prep.m, self.label)
        check_mask_sizes(self.label, mk, self.min_size(), self._size_expr(), self.f)
        if mk.shape[0] == 0:
            empty = np.empty((0, prep.d), np.float64)
            return prep.wrap(empty)
        if mk.shape[0] == 1:  # one view: the single-view kernel (no cross-view bookkeeping)
            y = self._apply(prep.subset(mk[0]))
            return prep.wrap(y[None] if not prep.use_torch else y.unsqueeze(0))
        return prep.wrap(self._apply_batch(prep, mk))
