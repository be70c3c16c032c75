"""Compiled column kernels of the coordinate-wise rules (trimmed mean and median).

A coordinate-wise rule reads the ``m`` values of each of the ``d`` coordinates of a view and
reduces them by rank. Its floor is one pass over the ``(m, d)`` array, the cost of a plain
mean. The kernel here comes close to it (BENCHMARKS.md, section "rules"): it walks the view in
blocks of ``B`` columns, copies each row's block once into an ``(m, B)`` buffer that stays in
the L1 cache (contiguous reads, and the finiteness check fused into the copy), sorts every
column of the buffer at once with a *sorting network* (a fixed list of compare-exchanges
``(i, j)``, each one a branch-free, vectorised min/max over the ``B`` columns of rows ``i``
and ``j``), then reduces the rows of the window of ranks the rule keeps.

The network is Batcher's odd-even merge sort on the next power of two, truncated to ``m``
wires (the missing wires act as ``+inf`` and their comparators never swap), then *pruned* for
the window ``[lo, hi)`` of ranks the rule reads: working back from the last comparator, one
whose two wires both end below ``lo`` (or both at or above ``hi``) and that no later kept
comparator reads only orders values the rule ignores, and is dropped. The window's ranks stay
exactly sorted and the values below and above it stay the right sets. (For the median of 16
values that leaves 53 of 63 comparators; for the trimmed mean of 32 values with f = 8, 181 of
191.) The first three stages of the network stay inside blocks of 8 wires: on each full block
they run as one fixed 8-wire sorter (:data:`SORT8`) whose values stay in registers, 8 loads
and 8 stores per column for 19 comparators instead of 4 memory accesses per comparator; the
fourth stage likewise on each full block of 16 wires (:data:`MERGE16`, 25 comparators).

The reductions, the same in the compiled kernel and in its numpy fallback
(``agreement.rules.coordinate``), so that the two give identical bits on every input:

- trimmed mean, ranks ``f .. m-f-1``: ``s = x_(f) + x_(f+1) + ... + x_(m-f-1)`` summed in
  ascending rank order in the view's dtype, ``y = s / (m-2f)``; where ``s`` overflows (float32
  values near the maximum) the same sum in float64, divided, rounded to the dtype; then ``y``
  is clipped to ``[x_(f), x_(m-f-1)]`` (only rounding can put it outside);
- median: ``x_(h)`` for odd ``m = 2h+1``; for even ``m = 2h``,
  ``0.5·x_(h-1) + 0.5·x_(h)`` clipped to ``[x_(h-1), x_(h)]`` (halving two subnormals rounds
  below both);
- then ``y + 0``: a zero result is ``+0``. A sort orders ``-0`` and ``+0`` as equal, so which
  of them lands on a given rank depends on the sort's implementation (numpy dispatches its sort
  to AVX2 or AVX-512 code by machine); the canonical zero makes the rule's bits independent of
  it.

A value that is not finite (NaN, ``±inf``) makes the kernel return ``False``; the caller raises
the rule's ValueError. numba is optional: without it, with the environment variable
``JUNGLE_NO_NUMBA=1``, or for views under :data:`MIN_ELEMENTS` values, the numpy path runs.
The kernel is compiled on its first call, once per dtype (float32, float64), and cached on disk
(``cache=True``); importing :mod:`agreement` neither imports numba nor compiles anything. It
holds no GIL (``nogil=True``), so a thread can run a rule beside a network node's I/O.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

import numpy as np

ENV_DISABLE = "JUNGLE_NO_NUMBA"
"""Set this environment variable to ``1`` to run the numpy path even where numba is installed
(read at every call)."""

_L1_BYTES = 1 << 15  # the block buffer's target size: an (m, B) block stays in a 32 KiB L1


def _numba() -> Any:
    """The numba module, or None where it is not installed (imported once, on first use)."""
    global _NUMBA
    if _NUMBA is _UNSET:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is in the test extra
            numba = None
        _NUMBA = numba
    return _NUMBA


_UNSET: Any = object()
_NUMBA: Any = _UNSET


def enabled() -> bool:
    """Whether the compiled kernels run: numba is installed and ``JUNGLE_NO_NUMBA`` is not
    ``1``."""
    return os.environ.get(ENV_DISABLE, "") != "1" and _numba() is not None


MIN_ELEMENTS = 1 << 18
"""The rules use the kernel for a view of at least this many values (``m·d``, summed over the
views of a batch), or once the process has run :data:`AMORTISE_ELEMENTS` values through the
rules. A process's first kernel call costs about a second (importing numba and loading the
compiled code from the disk cache, or compiling it: a few seconds), which a few small views
never repay; the numpy path gives the same bits, so the choice changes no output."""

AMORTISE_ELEMENTS = 1 << 27
"""Values (summed over every rule call of the process) after which even small views run the
kernel: about a second of the numpy fallback, the cost of loading the kernel once. The rule
of the ski-rental problem: by switching when the fallback has cost what the switch costs, a
process never spends more than twice what it would have spent knowing its future (a long
LEARN run of small views switches early in the run; a test of a few small views never
imports numba)."""

_seen = 0  # values offered to worthwhile() in this process (approximate across threads)


def worthwhile(elements: int) -> bool:
    """Whether a rule on ``elements`` values runs the kernel: :func:`enabled`, and
    ``elements >= MIN_ELEMENTS`` or this process's rule calls have reached
    :data:`AMORTISE_ELEMENTS` values (numba is not even imported before)."""
    global _seen
    _seen += elements
    if elements < MIN_ELEMENTS and _seen < AMORTISE_ELEMENTS and _KERNEL is None:
        return False
    return enabled()


def preload() -> bool:
    """Import numba and load (or compile) the kernel now, for float32 and float64 views,
    writable and read-only (each is a signature of its own), so that the first rule call of a
    process that will run large views (a network node, before its first round) does not pay
    it; afterwards every view runs the kernel. Returns :func:`enabled` (False: nothing to
    load)."""
    if not enabled():
        return False
    for dtype in (np.float32, np.float64):
        for writable in (True, False):
            x = np.zeros((3, 4), dtype)
            x.flags.writeable = writable
            window(x, 1, 2, False)
    return True


def backend() -> str:
    """The kernel the coordinate-wise rules run on the CPU: ``"numba 0.68.1"`` (the version
    installed) or ``"numpy fallback"``."""
    return f"numba {_numba().__version__}" if enabled() else "numpy fallback"


# --------------------------------------------------------------------------------------------
# sorting networks


def batcher_network(m: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort on ``n = 2^ceil(log2 m)`` wires, truncated to ``m``.

    Each pair ``(i, j)``, ``i < j``, is a compare-exchange leaving the minimum on wire ``i``.
    On ``n`` wires the network sorts every input (Batcher 1968; Knuth, TAOCP vol. 3,
    §5.3.4); the wires ``m .. n-1`` of a truncated input hold ``+inf``, so a comparator that
    touches one never swaps and can be left out.
    """
    return [(a, b) for a, b, _ in _batcher_stages(m)]


def _batcher_stages(m: int) -> list[tuple[int, int, int]]:
    """:func:`batcher_network` with each comparator's merge stage ``p`` (1, 2, 4, ...): the
    comparators of stage ``p`` stay inside blocks of ``2p`` wires."""
    if m < 1:
        raise ValueError(f"a sorting network needs m >= 1 wires, got m={m}")
    n = 1 << (m - 1).bit_length()
    out: list[tuple[int, int, int]] = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < m:
                        out.append((a, b, p))
            k //= 2
        p *= 2
    return out


SORT8 = ((0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (1, 2), (5, 6),
         (0, 4), (1, 5), (2, 6), (3, 7), (2, 4), (3, 5), (1, 2), (3, 4), (5, 6))
"""Batcher's network on 8 wires (its stages 1, 2, 4: 19 comparators). The kernel runs it on
each full block of 8 wires in registers (8 loads and 8 stores per column instead of 4 memory
accesses per comparator), before the rest of the network."""

MERGE16 = ((0, 8), (1, 9), (2, 10), (3, 11), (4, 12), (5, 13), (6, 14), (7, 15), (4, 8), (5, 9),
           (6, 10), (7, 11), (2, 4), (3, 5), (6, 8), (7, 9), (10, 12), (11, 13), (1, 2), (3, 4),
           (5, 6), (7, 8), (9, 10), (11, 12), (13, 14))
"""Stage 8 of Batcher's network on 16 wires (25 comparators merging two sorted blocks of 8),
run on each full block of 16 wires in registers after :data:`SORT8`."""


def prune(pairs: list[tuple[int, int]], m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The comparators of ``pairs`` still needed when only ranks ``lo .. hi-1`` must come out
    in order (the ranks below ``lo`` and those from ``hi`` up only as the right sets).

    Walking back from the last comparator, ``(i, j)`` is dropped when both wires lie in the
    same ignored group (``< lo`` or ``>= hi``) and no comparator kept after it touches either
    wire: it then only permutes two values that end in the same group, unseen by the rest.
    """
    if not 0 <= lo < hi <= m:
        raise ValueError(f"the window of ranks must satisfy 0 <= lo < hi <= m, got "
                         f"lo={lo}, hi={hi}, m={m}")
    live: set[int] = set()
    kept: list[tuple[int, int]] = []
    for i, j in reversed(pairs):
        same = (i < lo and j < lo) or (i >= hi and j >= hi)
        if same and i not in live and j not in live:
            continue
        kept.append((i, j))
        live.update((i, j))
    kept.reverse()
    return kept


@lru_cache(maxsize=256)
def network(m: int, lo: int, hi: int) -> np.ndarray:
    """The comparators the kernel runs after :data:`SORT8` on each of the ``m // 8`` full
    blocks of 8 wires (Batcher's stages 1, 2, 4 there) and :data:`MERGE16` on each of the
    ``m // 16`` full blocks of 16 (stage 8), pruned for the window ``[lo, hi)``, as a
    ``(K, 2)`` int64 array (cached)."""
    rest = [(a, b) for a, b, p in _batcher_stages(m)
            if not ((p <= 4 and a // 8 < m // 8) or (p == 8 and a // 16 < m // 16))]
    arr = np.array(prune(rest, m, lo, hi), np.int64).reshape(-1, 2)
    arr.setflags(write=False)
    return arr


def comparators(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """Every compare-exchange the kernel applies for ``m`` values and the window ``[lo, hi)``,
    in order: :data:`SORT8` on each full block of 8 wires, :data:`MERGE16` on each full block
    of 16, then :func:`network`. (Blocks hold disjoint wires, and a block's comparators
    precede the others on its wires in Batcher's order, so the reordering is the same
    network.)"""
    pre = [(8 * q + a, 8 * q + b) for q in range(m // 8) for a, b in SORT8]
    pre += [(16 * q + a, 16 * q + b) for q in range(m // 16) for a, b in MERGE16]
    return pre + [(int(a), int(b)) for a, b in network(m, lo, hi)]


def block_columns(m: int, itemsize: int) -> int:
    """Columns per block: an ``(m, B)`` buffer of about 32 KiB, ``B`` a multiple of 64."""
    return max(64, (_L1_BYTES // max(1, m * itemsize)) // 64 * 64)


# --------------------------------------------------------------------------------------------
# the kernel (plain Python here; compiled by numba on first use)


def _copy_block(x: Any, idx: Any, mi: int, s: int, b: int, buf: Any, chk: Any) -> bool:
    """``buf[r, :b] = x[idx[r], s:s+b]`` for ``r < mi``; False if a value is not finite
    (``v - v`` is NaN exactly for NaN and ``±inf``)."""
    zero = chk.dtype.type(0)
    for c in range(b):
        chk[c] = zero
    for r in range(mi):
        row = idx[r]
        for c in range(b):
            v = x[row, s + c]
            buf[r, c] = v
            chk[c] += v - v
    for c in range(b):  # noqa: SIM110 (numba compiles the loop, not a generator)
        if chk[c] != zero:
            return False
    return True


def _sort_block(net: Any, b: int, buf: Any) -> None:
    """Apply the compare-exchanges of ``net`` to the first ``b`` columns of ``buf``."""
    for k in range(net.shape[0]):
        i = net[k, 0]
        j = net[k, 1]
        for c in range(b):
            a = buf[i, c]
            v = buf[j, c]
            buf[i, c] = v if v < a else a
            buf[j, c] = a if v < a else v


def _cx(a: Any, v: Any) -> tuple[Any, Any]:
    """A compare-exchange: ``(min, max)``, as :func:`_sort_block` computes them."""
    return (v if v < a else a), (a if v < a else v)


def _sort8(o: int, b: int, buf: Any) -> None:
    """:data:`SORT8` on rows ``o .. o+7`` of the first ``b`` columns of ``buf``, in registers."""
    for c in range(b):
        v0, v1, v2, v3 = buf[o, c], buf[o + 1, c], buf[o + 2, c], buf[o + 3, c]
        v4, v5, v6, v7 = buf[o + 4, c], buf[o + 5, c], buf[o + 6, c], buf[o + 7, c]
        v0, v1 = _cx(v0, v1)
        v2, v3 = _cx(v2, v3)
        v4, v5 = _cx(v4, v5)
        v6, v7 = _cx(v6, v7)
        v0, v2 = _cx(v0, v2)
        v1, v3 = _cx(v1, v3)
        v4, v6 = _cx(v4, v6)
        v5, v7 = _cx(v5, v7)
        v1, v2 = _cx(v1, v2)
        v5, v6 = _cx(v5, v6)
        v0, v4 = _cx(v0, v4)
        v1, v5 = _cx(v1, v5)
        v2, v6 = _cx(v2, v6)
        v3, v7 = _cx(v3, v7)
        v2, v4 = _cx(v2, v4)
        v3, v5 = _cx(v3, v5)
        v1, v2 = _cx(v1, v2)
        v3, v4 = _cx(v3, v4)
        v5, v6 = _cx(v5, v6)
        buf[o, c], buf[o + 1, c], buf[o + 2, c], buf[o + 3, c] = v0, v1, v2, v3
        buf[o + 4, c], buf[o + 5, c], buf[o + 6, c], buf[o + 7, c] = v4, v5, v6, v7


def _merge16(o: int, b: int, buf: Any) -> None:
    """:data:`MERGE16` on rows ``o .. o+15`` of the first ``b`` columns of ``buf``."""
    for c in range(b):
        v0, v1, v2, v3 = buf[o, c], buf[o + 1, c], buf[o + 2, c], buf[o + 3, c]
        v4, v5, v6, v7 = buf[o + 4, c], buf[o + 5, c], buf[o + 6, c], buf[o + 7, c]
        v8, v9, v10, v11 = buf[o + 8, c], buf[o + 9, c], buf[o + 10, c], buf[o + 11, c]
        v12, v13, v14, v15 = buf[o + 12, c], buf[o + 13, c], buf[o + 14, c], buf[o + 15, c]
        v0, v8 = _cx(v0, v8)
        v1, v9 = _cx(v1, v9)
        v2, v10 = _cx(v2, v10)
        v3, v11 = _cx(v3, v11)
        v4, v12 = _cx(v4, v12)
        v5, v13 = _cx(v5, v13)
        v6, v14 = _cx(v6, v14)
        v7, v15 = _cx(v7, v15)
        v4, v8 = _cx(v4, v8)
        v5, v9 = _cx(v5, v9)
        v6, v10 = _cx(v6, v10)
        v7, v11 = _cx(v7, v11)
        v2, v4 = _cx(v2, v4)
        v3, v5 = _cx(v3, v5)
        v6, v8 = _cx(v6, v8)
        v7, v9 = _cx(v7, v9)
        v10, v12 = _cx(v10, v12)
        v11, v13 = _cx(v11, v13)
        v1, v2 = _cx(v1, v2)
        v3, v4 = _cx(v3, v4)
        v5, v6 = _cx(v5, v6)
        v7, v8 = _cx(v7, v8)
        v9, v10 = _cx(v9, v10)
        v11, v12 = _cx(v11, v12)
        v13, v14 = _cx(v13, v14)
        buf[o, c], buf[o + 1, c], buf[o + 2, c], buf[o + 3, c] = v0, v1, v2, v3
        buf[o + 4, c], buf[o + 5, c], buf[o + 6, c], buf[o + 7, c] = v4, v5, v6, v7
        buf[o + 8, c], buf[o + 9, c], buf[o + 10, c], buf[o + 11, c] = v8, v9, v10, v11
        buf[o + 12, c], buf[o + 13, c], buf[o + 14, c], buf[o + 15, c] = v12, v13, v14, v15


def _reduce_trimmed(s: int, b: int, lo: int, hi: int, buf: Any, acc: Any, out: Any) -> None:
    """``out[s+c]``: the trimmed mean of ranks ``lo .. hi-1`` of column ``c`` of ``buf`` (a
    branch-free vectorised pass, then the float64 sum for the columns whose sum overflowed)."""
    zero = acc.dtype.type(0)
    wf = acc.dtype.type(hi - lo)
    for c in range(b):
        acc[c] = buf[lo, c]
    for r in range(lo + 1, hi):
        for c in range(b):
            acc[c] += buf[r, c]
    over = 0
    for c in range(b):
        y = acc[c]
        over += y - y != zero
        _clip_store(y / wf, buf[lo, c], buf[hi - 1, c], zero, out, s + c)
    if over:
        for c in range(b):
            if acc[c] - acc[c] != zero:  # the dtype's sum overflowed: the same sum in float64
                t = np.float64(buf[lo, c])
                for r in range(lo + 1, hi):
                    t += np.float64(buf[r, c])
                out[s + c] = t / np.float64(hi - lo)  # rounded to the dtype
                _clip_store(out[s + c], buf[lo, c], buf[hi - 1, c], zero, out, s + c)


def _clip_store(y: Any, a: Any, z: Any, zero: Any, out: Any, at: int) -> None:
    """``out[at] = min(max(y, a), z) + 0`` (numpy's clip; ``+ 0`` turns ``-0`` into ``+0``)."""
    y = y if y > a else a
    y = y if y < z else z
    out[at] = y + zero


def _reduce_median(s: int, b: int, m: int, buf: Any, out: Any) -> None:
    """``out[s+c]``: the median of column ``c`` of ``buf`` (rows sorted)."""
    h = m // 2
    zero = out.dtype.type(0)
    half = out.dtype.type(0.5)
    if m % 2:
        for c in range(b):
            out[s + c] = buf[h, c] + zero
        return
    for c in range(b):
        a = buf[h - 1, c]
        z = buf[h, c]
        _clip_store(a * half + half * z, a, z, zero, out, s + c)


def _window_kernel(x: Any, rows: Any, sizes: Any, lo: Any, hi: Any, median: bool,
                   nets: Any, offs: Any, out: Any, buf: Any, acc: Any) -> int:
    """The rule on the views ``x[rows[i, :sizes[i]]]``, ``i < k``, block by block (each block
    of ``x`` is read from memory once, then from the cache for every view). Returns -1, or
    the first view found holding a value that is not finite."""
    d = x.shape[1]
    B = buf.shape[1]
    for s in range(0, d, B):
        b = min(B, d - s)
        for i in range(rows.shape[0]):
            mi = sizes[i]
            if not _copy_block(x, rows[i], mi, s, b, buf, acc):
                return i
            for q in range(mi // 8):
                _sort8(8 * q, b, buf)
            for q in range(mi // 16):
                _merge16(16 * q, b, buf)
            _sort_block(nets[offs[i] : offs[i + 1]], b, buf)
            if median:
                _reduce_median(s, b, mi, buf, out[i])
            else:
                _reduce_trimmed(s, b, lo[i], hi[i], buf, acc, out[i])
    return -1


_KERNEL: Any = None
_BUILD = threading.Lock()


def compiled() -> Any:
    """The compiled kernel (a numba dispatcher; its helpers compiled with it), built on first
    use. Needs numba (see :func:`enabled`)."""
    global _KERNEL
    if _KERNEL is None:
        with _BUILD:  # threads (InProcessNetwork's nodes) may reach the first call together
            if _KERNEL is None:
                nb = _numba()
                jit = nb.njit(parallel=False, cache=True, nogil=True, fastmath=False)
                g = globals()
                for name in ("_clip_store", "_copy_block", "_cx", "_sort8", "_merge16",
                             "_sort_block", "_reduce_trimmed", "_reduce_median"):
                    g[name] = jit(g[name])  # the kernel resolves its helpers as globals
                _KERNEL = jit(_window_kernel)
    return _KERNEL


def _check_input(x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64) or x.ndim != 2:
        raise TypeError(f"the column kernel takes a 2-D float32/float64 numpy array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)} of shape "
                        f"{getattr(x, 'shape', None)}")
    return np.ascontiguousarray(x)


def window_batch(x: np.ndarray, masks: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 median: bool) -> np.ndarray | None:
    """Row ``i``: the rule on the view ``x[masks[i]]`` of ``m_i`` values, per column: the
    trimmed mean of its ranks ``lo[i] .. hi[i]-1``, or (``median``) its median, whose middle
    ranks ``lo[i]``/``hi[i]-1`` are then ``(m_i-1)//2`` and ``m_i//2``. Each row has the bits
    of the same rule on ``x[masks[i]]`` alone (the same kernel on the same values). Returns
    None if a value of a view is not finite (rows outside every view are not read). The caller
    checks :func:`enabled` first; ``masks`` is ``(k, m)`` boolean with ``lo < hi <= m_i``."""
    x = _check_input(x)
    m, d = x.shape
    k = masks.shape[0]
    sizes = masks.sum(axis=1).astype(np.int64)
    lo = np.asarray(lo, np.int64)
    hi = np.asarray(hi, np.int64)
    rows = np.zeros((k, m), np.int64)
    parts = []
    for i in range(k):
        rows[i, : sizes[i]] = np.flatnonzero(masks[i])
        parts.append(network(int(sizes[i]), int(lo[i]), int(hi[i])))
    offs = np.zeros(k + 1, np.int64)
    offs[1:] = np.cumsum([len(p) for p in parts])
    nets = np.concatenate(parts) if offs[-1] else np.zeros((0, 2), np.int64)
    m_max = int(sizes.max()) if k else 1
    B = min(d, block_columns(m_max, x.itemsize))
    out = np.empty((k, d), x.dtype)
    buf = np.empty((m_max, B), x.dtype)
    acc = np.empty(B, x.dtype)
    bad = compiled()(x, rows, sizes, lo, hi, median, nets, offs, out, buf, acc)
    return out if bad < 0 else None


def window(x: np.ndarray, lo: int, hi: int, median: bool) -> np.ndarray | None:
    """:func:`window_batch` on the single view ``x`` (all its rows): a ``(d,)`` result."""
    x = _check_input(x)
    m = x.shape[0]
    out = window_batch(x, np.ones((1, m), bool), np.array([lo]), np.array([hi]), median)
    return None if out is None else out[0]


def trimmed_mean(x: np.ndarray, f: int) -> np.ndarray | None:
    """Compiled trimmed mean of ranks ``f .. m-f-1`` (needs ``m >= 2f+1``); None if a value of
    ``x`` is not finite."""
    return window(x, f, x.shape[0] - f, False)


def median(x: np.ndarray) -> np.ndarray | None:
    """Compiled median (midpoint of the two middle values for even ``m``); None if a value of
    ``x`` is not finite."""
    m = x.shape[0]
    return window(x, (m - 1) // 2, m // 2 + 1, True)


__all__ = ["AMORTISE_ELEMENTS", "ENV_DISABLE", "MERGE16", "MIN_ELEMENTS", "SORT8", "backend",
           "batcher_network", "block_columns", "comparators", "compiled", "enabled", "median",
           "network", "preload", "prune", "trimmed_mean", "window", "window_batch",
           "worthwhile"]
