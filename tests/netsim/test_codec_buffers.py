"""The codec's buffers: frames above DIRECT_FRAME read into buffers of their own (any
chunking, bounded memory, read-only results), zero-copy decoding of any bytes-like body,
the one-copy encoding, and the fused validity check against the exact one."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.codec import (
    DIRECT_FRAME,
    VECTOR_OVERHEAD,
    DecodeError,
    FrameDecoder,
    decode,
    encode,
    frame,
)
from netsim.messages import (
    DTYPE_CODES,
    MAX_SQUARED_NORM,
    Echo,
    Reply,
    Send,
    Value,
    vector_problem,
)


def _bodies(seed: int, sizes: list[int]) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for size in sizes]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([0, 1, 40, DIRECT_FRAME - 1, DIRECT_FRAME, DIRECT_FRAME + 7,
                              3 * DIRECT_FRAME]), min_size=1, max_size=6),
    st.lists(st.integers(0, 5 * DIRECT_FRAME), max_size=12),
    st.integers(0, 2**16),
)
def test_large_frames_any_chunking(sizes: list[int], cuts: list[int], seed: int) -> None:
    bodies = _bodies(seed, sizes)
    stream = b"".join(frame(b) for b in bodies)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    dec = FrameDecoder(max_frame=max(sizes))
    out: list[bytes | memoryview] = []
    for a, b in itertools.pairwise(points):
        out += dec.feed(memoryview(stream)[a:b])  # any bytes-like chunk
        assert dec.buffered < 4 + max(sizes)  # at most one incomplete frame
    assert out == bodies
    assert dec.buffered == 0
    for body, size in zip(out, sizes, strict=True):
        if size >= DIRECT_FRAME:  # its own buffer, handed out read-only
            assert isinstance(body, memoryview) and body.readonly and body.nbytes == size
        else:
            assert type(body) is bytes


def test_a_large_frame_is_written_in_place_not_reallocated() -> None:
    body = _bodies(1, [5 * DIRECT_FRAME])[0]
    stream = frame(body)
    dec = FrameDecoder()
    assert dec.feed(stream[:10]) == []
    target = dec._body  # the frame's own buffer, allocated when its length was known
    assert target is not None and target.nbytes == len(body)
    for i in range(10, len(stream) - 1, 4093):
        assert dec.feed(stream[i : min(i + 4093, len(stream) - 1)]) == []
        assert dec._body is target
    (got,) = dec.feed(stream[-1:])
    assert got == body and got.obj is target.obj  # the same memory, no copy at the end


def test_oversized_prefix_of_a_large_frame_raises_and_resets() -> None:
    dec = FrameDecoder(max_frame=3 * DIRECT_FRAME)
    dec.feed(struct.pack("<I", 2 * DIRECT_FRAME) + bytes(100))
    assert dec.buffered == 104
    dec2 = FrameDecoder(max_frame=3 * DIRECT_FRAME)
    with pytest.raises(DecodeError) as exc:
        dec2.feed(struct.pack("<I", 3 * DIRECT_FRAME + 1))
    assert exc.value.reason == "oversized" and dec2.buffered == 0
    # the prefix split across chunks is checked the same way
    dec3 = FrameDecoder(max_frame=10)
    assert dec3.feed(struct.pack("<I", 11)[:3]) == []
    with pytest.raises(DecodeError, match="oversized"):
        dec3.feed(struct.pack("<I", 11)[3:])
    assert dec3.buffered == 0


@pytest.mark.parametrize("kind", [Value, Reply, Send])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decode_is_zero_copy_and_read_only(kind: type, dtype: type) -> None:
    v = np.random.default_rng(2).standard_normal(50_000).astype(dtype)
    data = encode(kind((3, 4, 5), v))
    for body in (data, bytearray(data), memoryview(data), memoryview(bytearray(data))):
        msg = decode(body)
        assert msg == kind((3, 4, 5), v)
        assert not msg.vector.flags.writeable and msg.vector.flags.aligned
        raw = np.frombuffer(body, dtype=np.uint8)
        aligned = (raw.ctypes.data + VECTOR_OVERHEAD) % np.dtype(dtype).itemsize == 0
        # in place where the body leaves the coordinates aligned, else one aligned copy
        assert np.shares_memory(msg.vector, raw) == aligned
    # a frame from the decoder that aligns the coordinates decodes in place
    (got,) = FrameDecoder(align_at=VECTOR_OVERHEAD).feed(frame(data))
    assert np.shares_memory(decode(got).vector, np.frombuffer(got, dtype=np.uint8))
    # a non-byte or non-contiguous buffer is read as its bytes
    assert decode(memoryview(data).cast("B")) == decode(data)
    strided = np.frombuffer(data + data, dtype=np.uint8)[::2]
    with pytest.raises(DecodeError):
        decode(strided)  # its bytes are not a body
    with pytest.raises(DecodeError) as exc:
        decode(12345)  # type: ignore[arg-type]
    assert exc.value.reason == "not-bytes"


def test_encode_layout_is_unchanged_for_any_memory_layout() -> None:
    x = np.arange(30.0)
    for v in (x, x[::3], x.astype(np.float32)[::-1], np.asfortranarray(x)):
        m = Value((1, 2, 3), v)
        head = encode(Echo((1, 2, 3), bytes(32)))[:4]
        want = (bytes([head[0], head[1], head[2], Value.KIND])
                + struct.pack("<IIHBI", 1, 2, 3, DTYPE_CODES[m.vector.dtype], len(v))
                + np.ascontiguousarray(m.vector).tobytes())
        assert encode(m) == want
        assert len(want) == VECTOR_OVERHEAD + m.vector.nbytes
        assert type(encode(m)) is bytes


def _exact_problem(v: np.ndarray) -> str | None:
    """The two-pass check of codec version 1 (the reference for the fused one)."""
    if not np.isfinite(v).all():
        return "non-finite"
    if v.dtype == np.float64:
        with np.errstate(over="ignore"):
            if not np.dot(v, v) <= MAX_SQUARED_NORM:
                return "squared norm above 2^1000"
    return None


_specials = st.sampled_from([0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e38, -3.4e38, 1e150,
                             1e154, 1e300, -1e308, 5e-324])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_specials, st.floats(allow_nan=True, allow_infinity=True)),
                max_size=40),
       st.sampled_from([np.float32, np.float64]))
def test_fused_check_names_the_same_problem_as_the_exact_one(xs: list[float],
                                                             dtype: type) -> None:
    with np.errstate(over="ignore"):
        v = np.array(xs, dtype=dtype)
    assert vector_problem(v) == _exact_problem(v)
    assert vector_problem(v[::2]) == _exact_problem(v[::2])


def test_fused_check_at_scale() -> None:
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        v = rng.standard_normal(200_000).astype(dtype)
        assert vector_problem(v, dtype, 200_000) is None
        for bad in (np.nan, np.inf, -np.inf):
            w = v.copy()
            w[123_457] = bad
            assert vector_problem(w, dtype, 200_000) == "non-finite"
    big = np.full(4, 2.0**499)  # ||v||^2 = 2^1000: the bound itself is valid
    assert vector_problem(big) is None
    big[0] = 2.0**500
    assert vector_problem(big) == "squared norm above 2^1000"
    f32 = np.full(10, 3e38, dtype=np.float32)  # squares overflow float32: still valid
    assert vector_problem(f32) is None
