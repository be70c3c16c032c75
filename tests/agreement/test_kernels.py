"""The compiled column kernels (agreement.rules.kernels) against the numpy path: identical bits
on every input, the same errors, networks that sort, and the switch between the two paths."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import agreement.rules as R
from agreement.rules import kernels
from agreement.rules.coordinate import median_numpy, trimmed_mean_numpy

numba = pytest.importorskip("numba")

SETTINGS = settings(max_examples=100, deadline=None)


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_same_bits(got: np.ndarray | None, want: np.ndarray) -> None:
    assert got is not None and got.dtype == want.dtype and got.shape == want.shape
    diff = np.flatnonzero(bits(got) != bits(want))
    assert diff.size == 0, (
        f"{diff.size} coordinates differ, first {int(diff[0])}: "
        f"{got[diff[0]]!r} vs {want[diff[0]]!r}")


def special(dtype: type) -> list[float]:
    fi = np.finfo(dtype)
    tiny = float(np.nextafter(dtype(0), dtype(1)))  # the least subnormal
    return [0.0, -0.0, 1.0, -1.0, tiny, -tiny, 3 * tiny, float(fi.tiny), float(fi.max),
            -float(fi.max), float(fi.max) / 3, 0.5, 1e-3]


@st.composite
def kernel_views(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """A view of m = 1..64 values, d = 1..40, float32 or float64, drawn from the whole finite
    range (subnormals, values near overflow) mixed with a pool of special values (ties,
    both zeros), and f = 0..(m-1)//2."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    m = draw(st.integers(1, 64))
    d = draw(st.integers(1, 40))
    f = draw(st.integers(0, (m - 1) // 2))
    width = 32 if dtype == np.float32 else 64
    elements = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, width=width),
        st.sampled_from(special(dtype)),
        st.integers(-3, 3).map(float),
    )
    return draw(hnp.arrays(dtype, (m, d), elements=elements)), f


@SETTINGS
@given(kernel_views())
def test_kernel_matches_numpy_bit_for_bit(vf: tuple[np.ndarray, int]) -> None:
    x, f = vf
    assert_same_bits(kernels.trimmed_mean(x, f), trimmed_mean_numpy(x, f))
    assert_same_bits(kernels.median(x), median_numpy(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,d", [(16, 100_000), (33, 20_000), (7, 50_001), (64, 3_000)])
def test_seeded_large_views_match_bit_for_bit(dtype: type, m: int, d: int) -> None:
    rng = np.random.default_rng(m * d)
    x = rng.standard_normal((m, d)).astype(dtype)
    x[:, : d // 4] = np.round(x[:, : d // 4] * 2)  # ties, signed zeros
    x[: m // 3, d // 4 : d // 2] *= np.float32(1e30)  # outliers
    x[:, -5:] = np.finfo(dtype).max * 0.9  # overflow of the dtype's sum
    for f in sorted({0, m // 4, (m - 1) // 2}):
        assert_same_bits(kernels.trimmed_mean(x, f), trimmed_mean_numpy(x, f))
    assert_same_bits(kernels.median(x), median_numpy(x))
    y = kernels.trimmed_mean(x, m // 4)
    assert np.isfinite(y).all() and (y[-5:] == x[0, -5:]).all()  # the float64 fallback


def test_rules_use_the_kernel_and_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules (and a CPU tensor, through prepare) give the same bits on both paths."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((9, 40_000)).astype(np.float32)
    assert x.size >= kernels.MIN_ELEMENTS and kernels.worthwhile(x.size)
    # (small views run numpy until the kernel is loaded or repaid: test_small_views_switch_...)
    monkeypatch.delenv(kernels.ENV_DISABLE, raising=False)
    assert kernels.enabled() and kernels.backend() == f"numba {numba.__version__}"
    fast = [R.trimmed_mean(x, 2), R.median(x), R.trimmed_mean(torch.from_numpy(x), 2).numpy()]
    monkeypatch.setenv(kernels.ENV_DISABLE, "1")
    assert not kernels.enabled() and kernels.backend() == "numpy fallback"
    slow = [R.trimmed_mean(x, 2), R.median(x), R.trimmed_mean(torch.from_numpy(x), 2).numpy()]
    for a, b in zip(fast, slow, strict=True):
        assert_same_bits(a, b)


@pytest.mark.parametrize("disabled", ["0", "1"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise_the_same_error(disabled: str, bad: float,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernels.ENV_DISABLE, disabled)
    for m, col in [(5, 0), (16, 777), (32, 59_999)]:
        x = np.ones((m, 60_000), np.float32)  # above MIN_ELEMENTS: the rules run the kernel
        x[m // 2, col] = bad  # a middle rank: a sort does not push a NaN to either end here
        if disabled == "0":
            assert kernels.trimmed_mean(x, 1) is None and kernels.median(x) is None
        with pytest.raises(ValueError, match=r"trimmed_mean: the view contains non-finite"):
            R.trimmed_mean(x, 1)
        with pytest.raises(ValueError, match=r"median: the view contains non-finite"):
            R.median(x)


def test_non_contiguous_and_tiny_views() -> None:
    x = np.random.default_rng(5).standard_normal((300, 11))
    xt = x.T  # (11, 300), not C-contiguous
    assert_same_bits(kernels.trimmed_mean(xt, 3), trimmed_mean_numpy(xt, 3))
    ro = xt.copy()
    ro.setflags(write=False)  # a view of received bytes is read-only
    assert_same_bits(kernels.median(ro), median_numpy(ro))
    one = np.array([[-0.0, 2.5]])
    assert_same_bits(kernels.median(one), np.array([0.0, 2.5]))  # the canonical zero
    with pytest.raises(TypeError, match="float32/float64"):
        kernels.window(np.ones((3, 4), np.int64), 0, 3, False)


@pytest.mark.parametrize("m", range(1, 17))
def test_pruned_networks_sort_their_window_zero_one(m: int) -> None:
    """0-1 principle (Knuth, TAOCP vol. 3, §5.3.4, Theorem Z): a comparator network sorts
    every input iff it sorts every 0-1 input; for a window [lo, hi) the pruned network must
    give the window's ranks exactly and the right count of ones below and above it."""
    inputs = np.array(list(itertools.product([0, 1], repeat=m)), np.int8).T  # (m, 2^m)
    want = np.sort(inputs, axis=0)
    for lo in range(m):
        for hi in range(lo + 1, m + 1):
            y = inputs.copy()
            for i, j in kernels.comparators(m, lo, hi):
                y[i], y[j] = np.minimum(y[i], y[j]), np.maximum(y[i], y[j])
            assert (y[lo:hi] == want[lo:hi]).all(), (m, lo, hi)
            assert (y[:lo].sum(0) == want[:lo].sum(0)).all()
            assert (y[hi:].sum(0) == want[hi:].sum(0)).all()


@pytest.mark.parametrize("m", [13, 16, 31, 32, 33, 64])
def test_networks_sort_random_inputs(m: int) -> None:
    rng = np.random.default_rng(m)
    x = rng.integers(0, 5, (m, 4000)).astype(np.float64)
    assert len(kernels.batcher_network(m)) >= len(kernels.comparators(m, m // 4, m - m // 4))
    assert list(kernels.SORT8) == kernels.batcher_network(8)
    assert list(kernels.MERGE16) == kernels.batcher_network(16)[len(kernels.SORT8) * 2 :]
    for lo, hi in [(0, m), (m // 4, m - m // 4), ((m - 1) // 2, m // 2 + 1)]:
        y = x.copy()
        for i, j in kernels.comparators(m, lo, hi):
            y[i], y[j] = np.minimum(y[i], y[j]), np.maximum(y[i], y[j])
        assert (y[lo:hi] == np.sort(x, axis=0)[lo:hi]).all()


def test_bad_network_arguments() -> None:
    with pytest.raises(ValueError, match="m >= 1"):
        kernels.batcher_network(0)
    with pytest.raises(ValueError, match="0 <= lo < hi <= m"):
        kernels.prune(kernels.batcher_network(4), 4, 2, 2)


def test_kernel_is_compiled_without_the_gil() -> None:
    kernels.median(np.ones((3, 5)))
    assert kernels.compiled().targetoptions["nogil"] is True


def test_importing_agreement_and_small_views_do_not_import_numba() -> None:
    code = ("import sys, numpy as np, agreement, agreement.rules as R; "
            "R.trimmed_mean(np.ones((5, 100)), 1); R.median(np.ones((5, 100))); "
            "assert 'numba' not in sys.modules, 'numba imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@settings(max_examples=50, deadline=None)
@given(kernel_views(), st.data())
def test_batch_rows_are_the_single_view_bits(vf: tuple[np.ndarray, int],
                                             data: st.DataObject) -> None:
    """Row i of a batch has the bits of the rule on values[masks[i]], on the kernel and on
    the numpy fallback."""
    x, f = vf
    m = len(x)
    k = data.draw(st.integers(2, 6))
    masks = np.zeros((k, m), bool)
    for i in range(k):
        size = data.draw(st.integers(2 * f + 1, m))
        keep = data.draw(st.lists(st.integers(0, m - 1), min_size=size, max_size=size,
                                  unique=True))
        masks[i, keep] = True
    sizes = masks.sum(axis=1)
    tm = kernels.window_batch(x, masks, np.full(k, f), sizes - f, False)
    med = kernels.window_batch(x, masks, (sizes - 1) // 2, sizes // 2 + 1, True)
    for i, mk in enumerate(masks):
        assert_same_bits(tm[i], trimmed_mean_numpy(x[mk], f))
        assert_same_bits(med[i], median_numpy(x[mk]))


@pytest.mark.parametrize("disabled", ["0", "1"])
def test_rule_batch_is_the_loop_bit_for_bit(disabled: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernels.ENV_DISABLE, disabled)
    rng = np.random.default_rng(11)
    for m, f, d, k in [(7, 2, 50_000, 5), (31, 10, 3000, 21), (16, 5, 20_001, 11)]:
        x = rng.standard_normal((m, d)).astype(np.float32)
        x[:, :100] = np.round(x[:, :100])
        masks = np.ones((k, m), bool)
        for i in range(1, k):
            masks[i, rng.choice(m, rng.integers(0, f + 1), replace=False)] = False
        assert int(masks.sum()) * d >= kernels.MIN_ELEMENTS
        for rule in (R.make_rule("trimmed-mean", f), R.make_rule("median", f)):
            got = rule.batch(x, masks)
            for i, mk in enumerate(masks):
                assert_same_bits(got[i], rule(x[mk]))
    x = rng.standard_normal((7, 50))
    x[0, 3] = np.nan  # in no view: still refused, as the accelerator path does
    masks = np.ones((3, 7), bool)
    masks[:, 0] = False
    for rule in (R.make_rule("trimmed-mean", 2), R.make_rule("median", 2)):
        with pytest.raises(ValueError, match="non-finite"):
            rule.batch(x, masks)


def test_small_views_switch_to_the_kernel_once_their_total_repays_it(monkeypatch) -> None:
    """The ski-rental rule: under MIN_ELEMENTS a view runs numpy until the process's rule calls
    reach AMORTISE_ELEMENTS values, then the kernel; the bits are the same either way."""
    monkeypatch.setattr(kernels, "_KERNEL", None)
    monkeypatch.setattr(kernels, "_seen", 0)
    assert not kernels.worthwhile(1000)
    monkeypatch.setattr(kernels, "_seen", kernels.AMORTISE_ELEMENTS)
    assert kernels.worthwhile(1000)
    monkeypatch.setattr(kernels, "_seen", 0)
    assert kernels.worthwhile(kernels.MIN_ELEMENTS)


def test_preload_then_every_view_runs_the_kernel_with_the_same_bits(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "_seen", 0)
    assert kernels.preload()
    assert kernels.worthwhile(10)  # the kernel is loaded: no reason to wait
    x = np.random.default_rng(3).standard_normal((7, 300)).astype(np.float32)
    x.flags.writeable = False
    got = R.trimmed_mean(x, 2)
    np.testing.assert_array_equal(got, trimmed_mean_numpy(x, 2))


def test_threads_reaching_the_first_call_together_build_one_kernel(monkeypatch) -> None:
    """Four threads (InProcessNetwork's nodes) calling the kernel first at the same time: one
    builds it, the others wait (without the lock numba raised 'A jit decorator was called on
    an already jitted function')."""
    import threading
    import time
    import types

    built: list[str] = []

    def njit(**_options: object):
        def wrap(fn):
            built.append(getattr(fn, "__name__", "?"))
            time.sleep(0.005)  # widen the window a race needs
            return fn
        return wrap

    monkeypatch.setattr(kernels, "_numba", lambda: types.SimpleNamespace(njit=njit))
    monkeypatch.setattr(kernels, "_KERNEL", None)
    start = threading.Barrier(4)
    got: list[object] = []

    def first_call() -> None:
        start.wait()
        got.append(kernels.compiled())

    threads = [threading.Thread(target=first_call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and len({id(k) for k in got}) == 1
    assert len(built) == 9  # the 8 helpers and the kernel, once
