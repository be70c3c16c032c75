"""The witness gather assembles each view as one (|V|, d) array while the values arrive: the
matrix equals the stack of the view's values (bit for bit, rows in origin order), is
C-contiguous and read-only, is the block's first rows (the rows after a gap moved up in
place), and a late value or a gather without a session dtype and dimension never corrupts
it."""

from __future__ import annotations

import numpy as np
import pytest

from broadcast import View, WitnessGather
from netsim.messages import Ready, Report, Value, digest
from netsim.protocol import Step


def _deliver(wg: WitnessGather, origin: int, x: np.ndarray, rnd: int = 0) -> Step:
    inst = (0, rnd, origin)
    out = Step()
    out.extend(wg.handle(origin, Value(inst, x), 0.0))
    for s in range(2 * wg.f + 1):
        out.extend(wg.handle(s, Ready(inst, digest(x)), 0.0))
    return out


def _view(wg: WitnessGather, order: list[int], xs: dict[int, np.ndarray],
          report: tuple[int, ...]) -> View:
    out = Step()
    for o in order:
        out.extend(_deliver(wg, o, xs[o]))
    for k in range(wg.n - wg.f):
        out.extend(wg.handle(k, Report(0, 0, report), 0.0))
    (view,) = [v for v in out.outputs if isinstance(v, View)]
    return view


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order, report", [
    ([2, 0, 1, 3, 4, 5, 6], (0, 1, 2, 3, 4)),   # all n values, arrival out of order
    ([4, 1, 0, 3, 2], (0, 1, 2, 3, 4)),         # origins 0..4: the block's first rows
    ([6, 1, 0, 3, 2], (0, 1, 2, 3, 6)),         # a gap: the later rows moved up
    ([6, 5, 0, 4, 2], (0, 2, 4, 5, 6)),         # gaps everywhere
])
def test_view_rows_equal_the_stack(dtype, order, report):
    n, f, d = 7, 2, 1000
    rng = np.random.default_rng(11)
    xs = {o: rng.standard_normal(d).astype(dtype) for o in range(n)}
    wg = WitnessGather(0, n, f, dim=d, dtype=dtype)
    view = _view(wg, order, xs, report)
    m = view.matrix()
    assert view.origins == tuple(sorted(order))
    want = np.stack([xs[o] for o in sorted(order)])
    assert m.dtype == want.dtype and m.tobytes() == want.tobytes()
    assert m.flags.c_contiguous and not m.flags.writeable
    assert view.matrix() is m  # assembled once
    block = wg.state[0].block
    assert m.base is block  # no copy of the view at the rule
    for i, o in enumerate(view.origins):  # the values are the rows
        assert np.array_equal(view.values[o], m[i]) and not view.values[o].flags.writeable
    # a late value neither enters the view nor overwrites its rows
    late = [o for o in range(n) if o not in order]
    for o in late:
        _deliver(wg, o, xs[o] + 100)
    assert view.matrix().tobytes() == want.tobytes()


def test_a_gather_without_session_dtype_keeps_mixed_values_as_they_are():
    n, f = 4, 1
    wg = WitnessGather(0, n, f)  # no dim, no dtype: any valid vector is a value
    xs = {0: np.arange(3.0), 1: np.arange(3, dtype=np.float32), 2: np.arange(5.0)}
    out = Step()
    for o, x in xs.items():
        out.extend(_deliver(wg, o, x))
    for k in range(n - f):
        out.extend(wg.handle(k, Report(0, 0, (0, 1, 2)), 0.0))
    (view,) = [v for v in out.outputs if isinstance(v, View)]
    assert view.rows is None
    for o, x in xs.items():
        assert view.values[o].dtype == x.dtype and np.array_equal(view.values[o], x)
    with pytest.raises(ValueError):
        view.matrix()  # ragged: no (|V|, d) array, as before
