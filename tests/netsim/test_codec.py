"""The wire messages and the strict codec: round trips, canonical decoding of hostile bytes,
bounded allocation, stream framing, constructor validation and immutability."""

from __future__ import annotations

import itertools
import struct
import tracemalloc

import blake3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.codec import (
    DIGEST_MESSAGE_SIZE,
    MAGIC,
    VECTOR_OVERHEAD,
    VERSION,
    DecodeError,
    FrameDecoder,
    decode,
    encode,
    frame,
    wire_size,
)
from netsim.messages import (
    DIGEST_SIZE,
    MESSAGE_TYPES,
    Echo,
    Fetch,
    Message,
    Ready,
    Reply,
    Report,
    Send,
    Value,
    as_vector,
    digest,
    vector_bytes,
    with_round,
)

REASONS = {
    "oversized",
    "truncated",
    "bad-magic",
    "bad-version",
    "unknown-kind",
    "bad-length",
    "bad-dtype",
    "bad-report",
}
VECTOR_TYPES = (Value, Reply, Send)
DIGEST_TYPES = (Echo, Ready, Fetch)
F32 = np.dtype("<f4")
F64 = np.dtype("<f8")

# Bit patterns worth having on the wire: quiet and signalling NaNs with payloads, negative
# NaN, infinities, negative zero, the smallest subnormal, the largest finite value.
SPECIAL_BITS = {
    F32: [0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7F800001, 0x7FBFFFFF, 0x7F800000,
          0xFF800000, 0x80000000, 0x00000001, 0x7F7FFFFF],
    F64: [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000000001, 0x7FF0000000000001,
          0x7FF7FFFFFFFFFFFF, 0x7FF0000000000000, 0xFFF0000000000000, 0x8000000000000000,
          0x0000000000000001, 0x7FEFFFFFFFFFFFFF],
}
BITS_VIEW = {F32: np.uint32, F64: np.uint64}

instance_ids = st.tuples(
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1)
)
extreme_instance_ids = st.tuples(
    st.sampled_from([0, 1, 2**31, 2**32 - 1]),
    st.sampled_from([0, 1, 2**31, 2**32 - 1]),
    st.sampled_from([0, 1, 2**15, 2**16 - 1]),
)
any_instance = st.one_of(instance_ids, extreme_instance_ids)


@st.composite
def vectors(draw, max_small: int = 48, large: bool = True) -> np.ndarray:
    dtype = draw(st.sampled_from([F32, F64]))
    sizes = st.integers(0, max_small)
    if large:
        sizes = st.one_of(sizes, st.sampled_from([1000, 65_537]))
    d = draw(sizes)
    seed = draw(st.integers(0, 2**32 - 1))
    buf = bytearray(np.random.default_rng(seed).bytes(d * dtype.itemsize))
    arr = np.frombuffer(buf, dtype=dtype)
    if d:
        bits = arr.view(BITS_VIEW[dtype])
        specials = draw(
            st.lists(
                st.tuples(st.integers(0, d - 1), st.sampled_from(SPECIAL_BITS[dtype])),
                max_size=6,
            )
        )
        for i, b in specials:
            bits[i] = b
    return arr


digests = st.binary(min_size=DIGEST_SIZE, max_size=DIGEST_SIZE)
origin_lists = st.one_of(
    st.lists(st.integers(0, 2**16 - 1), unique=True, max_size=40).map(sorted),
    st.sampled_from([(), (0,), (2**16 - 1,), tuple(range(2**16 - 1)), tuple(range(1, 2**16))]),
)


def messages(vecs=None) -> st.SearchStrategy[Message]:
    vecs = vecs if vecs is not None else vectors()
    return st.one_of(
        st.builds(lambda t, i, v: t(i, v), st.sampled_from(VECTOR_TYPES), any_instance, vecs),
        st.builds(lambda t, i, h: t(i, h), st.sampled_from(DIGEST_TYPES), any_instance, digests),
        st.builds(
            lambda i, o: Report(i[0], i[1], tuple(o)), any_instance, origin_lists
        ),
    )


small_messages = messages(vectors(max_small=12, large=False)).filter(
    lambda m: not isinstance(m, Report) or len(m.origins) < 64
)


def check_canonical(data: bytes, **kw) -> Message | None:
    """decode(data) either raises DecodeError with a known reason, or returns a message
    that re-encodes to exactly ``data``. Any other exception fails the test."""
    try:
        m = decode(data, **kw)
    except DecodeError as exc:
        assert exc.reason in REASONS, exc.reason
        return None
    assert isinstance(m, Message)
    assert encode(m) == data
    assert wire_size(m) == len(data)
    return m


# -- (a) round trips ---------------------------------------------------------------------


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_round_trip_is_exact(m: Message) -> None:
    data = encode(m)
    assert isinstance(data, bytes)
    assert wire_size(m) == len(data)
    assert data[:2] == MAGIC and data[2] == VERSION and data[3] == m.KIND
    m2 = decode(data, max_origins=2**16 - 1)  # the largest report a u16 count can say
    assert type(m2) is type(m)
    assert m2 == m and hash(m2) == hash(m)
    assert encode(m2) == data
    if isinstance(m, VECTOR_TYPES):
        assert m2.vector.dtype == m.vector.dtype
        assert m2.vector.shape == m.vector.shape
        assert m2.vector.tobytes() == m.vector.tobytes()  # NaN payloads survive, bit for bit
        assert not m2.vector.flags.writeable
        assert m2.instance == m.instance
        assert all(type(x) is int for x in m2.instance)
    elif isinstance(m, DIGEST_TYPES):
        assert (m2.instance, m2.digest) == (m.instance, m.digest)
        assert type(m2.digest) is bytes
    else:
        assert (m2.session, m2.round, m2.origins) == (m.session, m.round, m.origins)
        assert type(m2.origins) is tuple
    # every buffer type gives the same message
    assert decode(bytearray(data), max_origins=2**16 - 1) == m
    assert decode(memoryview(data), max_origins=2**16 - 1) == m


@settings(max_examples=200, deadline=None)
@given(small_messages, small_messages)
def test_equal_messages_iff_equal_encodings(a: Message, b: Message) -> None:
    assert (a == b) == (encode(a) == encode(b))
    if a == b:
        assert hash(a) == hash(b)


def test_all_seven_kinds_distinct() -> None:
    assert sorted(t.KIND for t in MESSAGE_TYPES) == list(range(1, 8))
    assert len({t.NAME for t in MESSAGE_TYPES}) == 7
    v = np.arange(3.0)
    h = digest(as_vector(v))
    msgs = [Value((1, 2, 3), v), Echo((1, 2, 3), h), Ready((1, 2, 3), h), Fetch((1, 2, 3), h),
            Reply((1, 2, 3), v), Report(1, 2, (3,)), Send((1, 2, 3), v)]
    assert sorted(type(m).__name__ for m in msgs) == sorted(t.__name__ for t in MESSAGE_TYPES)
    # same fields, different kinds: never equal, never the same bytes
    for i, a in enumerate(msgs):
        for j, b in enumerate(msgs):
            assert (a == b) == (i == j)
            assert (encode(a) == encode(b)) == (i == j)


def test_messages_with_different_fields_are_unequal() -> None:
    v = np.arange(4.0)
    base = Value((1, 2, 3), v)
    assert base == Value((1, 2, 3), v.copy())
    assert base != Value((1, 2, 4), v)
    assert base != Value((1, 2, 3), v + 1)
    assert base != Value((1, 2, 3), v.astype(np.float32))
    assert base != Value((1, 2, 3), v[:3])
    assert Echo((0, 0, 0), bytes(32)) != Echo((0, 0, 0), b"\x01" + bytes(31))
    assert Echo((0, 0, 0), bytes(32)) != Echo((0, 0, 1), bytes(32))
    nan = np.array([np.nan])
    assert Value((0, 0, 0), nan) == Value((0, 0, 0), nan.copy())  # NaNs compare by bits
    assert Report(0, 0, (1, 2)) != Report(0, 0, (1, 3))
    assert "instance=(1, 2, 3)" in repr(base) and "d=4" in repr(base)


def test_encoding_layout() -> None:
    v = np.array([1.0, -2.0], dtype=np.float32)
    data = encode(Value((7, 8, 9), v))
    assert data == b"JG\x02\x01" + struct.pack("<IIHBI", 7, 8, 9, 1, 2) + v.tobytes()
    assert len(data) == VECTOR_OVERHEAD + 8
    h = bytes(range(32))
    assert encode(Ready((1, 2, 3), h)) == b"JG\x02\x03" + struct.pack("<IIH", 1, 2, 3) + h
    assert len(encode(Ready((1, 2, 3), h))) == DIGEST_MESSAGE_SIZE
    assert encode(Report(5, 6, (1, 300))) == b"JG\x02\x06" + struct.pack("<IIHHH", 5, 6, 2, 1,
                                                                        300)


def test_d_zero_and_big_endian_and_strided_inputs() -> None:
    for dt in (np.float32, np.float64):
        m = Value((0, 0, 0), np.zeros(0, dtype=dt))
        data = encode(m)
        assert len(data) == VECTOR_OVERHEAD
        m2 = decode(data)
        assert m2 == m and m2.vector.shape == (0,) and m2.vector.dtype == dt
    # big-endian input is converted to little-endian, value preserved
    for be in [(np.arange(5) * 1.5).astype(">f8"), np.array([1.0, -2.5], dtype=">f4")]:
        assert be.dtype.byteorder == ">"
        m = Send((1, 1, 1), be)
        le = be.astype(be.dtype.newbyteorder("<"))
        assert m.vector.dtype == le.dtype and m.vector.dtype.byteorder in "<="
        np.testing.assert_array_equal(m.vector, be)
        assert not m.vector.flags.writeable
        assert encode(m) == encode(Send((1, 1, 1), le))
        assert decode(encode(m)) == Send((1, 1, 1), le)
        assert digest(m.vector) == digest(as_vector(le))
    # a non-contiguous input encodes its logical values
    x = np.arange(10.0)
    m = Reply((0, 0, 0), x[::3])
    assert decode(encode(m)).vector.tolist() == [0.0, 3.0, 6.0, 9.0]
    assert digest(m.vector) == digest(as_vector(np.ascontiguousarray(x[::3])))


def test_digest_is_blake3_of_canonical_encoding() -> None:
    v = as_vector(np.array([1.0, 2.0], dtype=np.float32))
    assert vector_bytes(v) == b"\x01\x02\x00\x00\x00" + v.tobytes()
    assert digest(v) == blake3.blake3(vector_bytes(v)).digest()
    # pinned: the wire format of codec version 2 (a change here is a new VERSION)
    assert digest(v).hex() == (
        "2fa21ba4cfe2614174783a4832a9a1011bf6993d1537d26ad40f01cf0c6b8863")
    assert digest(v) != digest(as_vector(v.astype(np.float64)))
    big = as_vector(np.random.default_rng(0).standard_normal(300_000))  # multi-chunk input
    assert digest(big) == blake3.blake3(vector_bytes(big)).digest()
    assert digest(as_vector(big[::2])) == blake3.blake3(vector_bytes(
        as_vector(np.ascontiguousarray(big[::2])))).digest()


def test_version_1_frames_are_refused() -> None:
    """Version 1 (BLAKE2b digests) and version 2 (BLAKE3) nodes would disagree on every
    digest: a version-1 body is a ``bad-version`` error, not a silent disagreement."""
    assert VERSION == 2
    body = bytearray(encode(Echo((0, 0, 0), bytes(32))))
    body[2] = 1
    with pytest.raises(DecodeError) as exc:
        decode(bytes(body))
    assert exc.value.reason == "bad-version"


@settings(max_examples=100, deadline=None)
@given(small_messages, st.integers(0, 2**32 - 1))
def test_with_round_moves_only_the_round(m: Message, rnd: int) -> None:
    m2 = with_round(m, rnd)
    assert type(m2) is type(m)
    assert m2.instance[1] == rnd
    assert m2.instance[0] == m.instance[0]
    if not isinstance(m, Report):
        assert m2.instance[2] == m.instance[2]
    assert with_round(m2, m.instance[1]) == m


# -- (b) hostile bytes -------------------------------------------------------------------

raw_frames = st.one_of(
    st.binary(max_size=128),
    st.builds(
        lambda kind, body: MAGIC + bytes([VERSION, kind]) + body,
        st.one_of(st.integers(1, 7), st.integers(0, 255)),
        st.binary(max_size=96),
    ),
    # a vector header whose dtype/count may or may not match the body
    st.builds(
        lambda kind, inst, code, count, body: MAGIC + bytes([VERSION, kind])
        + struct.pack("<IIHBI", *inst, code, count) + body,
        st.sampled_from([1, 5, 7]),
        instance_ids,
        st.one_of(st.sampled_from([1, 2]), st.integers(0, 255)),
        st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)),
        st.binary(max_size=64),
    ),
    # a report header whose count may or may not match the body
    st.builds(
        lambda inst, k, body: MAGIC + bytes([VERSION, 6]) + struct.pack("<IIH", *inst[:2], k)
        + body,
        instance_ids,
        st.one_of(st.integers(0, 6), st.integers(0, 2**16 - 1)),
        st.binary(max_size=16),
    ),
)


@settings(max_examples=4000, deadline=None)
@given(raw_frames)
def test_random_bytes_decode_canonically_or_fail_cleanly(data: bytes) -> None:
    check_canonical(data)


@st.composite
def mutated_frames(draw) -> tuple[bytes, bytes]:
    original = encode(draw(small_messages))
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(
            ["flip", "truncate", "extend", "kind", "dtype", "count", "byte", "insert", "delete"]
        ))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=16))
        elif op == "kind" and len(data) > 3:
            data[3] = draw(st.one_of(st.integers(0, 8), st.integers(0, 255)))
        elif op == "dtype" and len(data) > 14:
            data[14] = draw(st.one_of(st.integers(0, 3), st.integers(0, 255)))
        elif op == "count" and len(data) >= 19:
            count = draw(st.one_of(st.integers(0, 16), st.integers(0, 2**32 - 1)))
            data[15:19] = struct.pack("<I", count)
        elif op == "byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i : i + draw(st.integers(1, 4))]
    return original, bytes(data)


@settings(max_examples=5000, deadline=None)
@given(mutated_frames())
def test_mutated_frames_decode_canonically_or_fail_cleanly(pair: tuple[bytes, bytes]) -> None:
    original, data = pair
    m = check_canonical(data)
    if m is not None:
        # canonical: a frame that decodes to a message equal to the original's *is* it
        assert (m == decode(original)) == (data == original)


@settings(max_examples=1500, deadline=None)
@given(mutated_frames(), st.integers(0, 200))
def test_max_size_is_enforced_first(pair: tuple[bytes, bytes], max_size: int) -> None:
    _, data = pair
    if len(data) > max_size:
        with pytest.raises(DecodeError) as exc:
            decode(data, max_size)
        assert exc.value.reason == "oversized"
    else:
        check_canonical(data, max_size=max_size)


def test_specific_rejections() -> None:
    good = encode(Value((0, 0, 0), np.arange(2.0)))
    cases = {
        b"": "truncated",
        b"JG\x01": "truncated",
        b"XG\x01\x01" + good[4:]: "bad-magic",
        b"JG\x01\x01" + good[4:]: "bad-version",  # version 1: BLAKE2b digests
        b"JG\x03\x01" + good[4:]: "bad-version",
        b"JG\x02\x00" + good[4:]: "unknown-kind",
        b"JG\x02\x08" + good[4:]: "unknown-kind",
        good[:14] + b"\x03" + good[15:]: "bad-dtype",
        good[:-1]: "bad-length",
        good + b"\x00": "bad-length",
        good[:VECTOR_OVERHEAD - 1]: "truncated",
        encode(Echo((0, 0, 0), bytes(32))) + b"\x00": "bad-length",
        encode(Echo((0, 0, 0), bytes(32)))[:-1]: "bad-length",
        b"JG\x02\x06" + struct.pack("<IIHHH", 0, 0, 2, 5, 5): "bad-report",
        b"JG\x02\x06" + struct.pack("<IIHHH", 0, 0, 2, 6, 5): "bad-report",
        b"JG\x02\x06" + struct.pack("<IIHH", 0, 0, 2, 5): "bad-length",
        b"JG\x02\x06" + struct.pack("<II", 0, 0): "truncated",
    }
    for data, reason in cases.items():
        with pytest.raises(DecodeError) as exc:
            decode(data)
        assert exc.value.reason == reason, (data, exc.value)
    # an f4 body of 2 elements is not an f8 body of 1: dtype and count must agree
    f4 = encode(Value((0, 0, 0), np.arange(2, dtype=np.float32)))
    as_f8 = f4[:14] + b"\x02" + f4[15:]
    with pytest.raises(DecodeError, match="bad-length"):
        decode(as_f8)


# -- (c) bounded allocation, zero-copy views -----------------------------------------------


def _peak_alloc(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", [1, 5, 7])
@pytest.mark.parametrize("code", [1, 2])
def test_huge_count_with_short_body_is_bad_length_without_allocating(kind, code) -> None:
    data = MAGIC + bytes([VERSION, kind]) + struct.pack("<IIHBI", 0, 0, 0, code, 2**32 - 1)
    data += bytes(8)

    def attempt() -> None:
        with pytest.raises(DecodeError) as exc:
            decode(data)
        assert exc.value.reason == "bad-length"

    assert _peak_alloc(attempt) < 64 * 1024  # a 32 GiB claim allocates (next to) nothing


@pytest.mark.parametrize("n", [4, 10, 100])
def test_report_with_more_origins_than_n_is_refused_before_unpacking(n: int) -> None:
    """A full 131 KB REPORT of 65535 origins: refused (``bad-report``) when the cluster has
    n nodes, with a peak allocation far below what unpacking it costs (measured: ~2.6 MB
    for 65535 Python ints and their tuple; the bound asserted here is 16 KB)."""
    data = encode(Report(0, 0, tuple(range(2**16 - 1))))
    assert len(data) > 131_000

    def refuse() -> None:
        with pytest.raises(DecodeError) as exc:
            decode(data, max_origins=n)
        assert exc.value.reason == "bad-report"

    refused = _peak_alloc(refuse)
    unpacked = _peak_alloc(lambda: decode(data, max_origins=2**16 - 1))
    assert refused < 16 * 1024, refused
    assert unpacked > 1_000_000, unpacked  # what the bound prevents
    # the default bound refuses it too, and an honest report of n-f origins still decodes
    with pytest.raises(DecodeError, match="bad-report"):
        decode(data)
    ok = encode(Report(0, 0, tuple(range(n - 1))))
    assert decode(ok, max_origins=n).origins == tuple(range(n - 1))
    assert _peak_alloc(lambda: decode(ok, max_origins=n)) < 16 * 1024 + 40 * n


def test_report_claiming_many_origins_with_short_body() -> None:
    data = b"JG\x02\x06" + struct.pack("<IIH", 0, 0, 2**16 - 1) + bytes(4)
    with pytest.raises(DecodeError, match="bad-length"):
        decode(data)


def test_oversized_body() -> None:
    data = encode(Value((0, 0, 0), np.zeros(100)))
    with pytest.raises(DecodeError) as exc:
        decode(data, max_size=len(data) - 1)
    assert exc.value.reason == "oversized"
    assert decode(data, max_size=len(data)) == Value((0, 0, 0), np.zeros(100))
    with pytest.raises(DecodeError, match="oversized"):
        decode(b"garbage" * 10, max_size=10)  # size is checked before anything else


def test_decoded_vectors_are_read_only_zero_copy_views() -> None:
    vec = np.random.default_rng(0).standard_normal(1 << 20)  # 8 MiB
    body = encode(Value((1, 2, 3), vec))
    # a body whose coordinates lie aligned (as the transport's FrameDecoder places them; an
    # unaligned one is copied once: tests/netsim/test_alignment.py)
    raw = np.empty(len(body) + 64, np.uint8)
    start = -(raw.ctypes.data + VECTOR_OVERHEAD) % 64
    raw[start : start + len(body)] = np.frombuffer(body, np.uint8)
    data = memoryview(raw[start : start + len(body)])
    holder: list[Message] = []
    peak = _peak_alloc(lambda: holder.append(decode(data)))
    assert peak < 64 * 1024  # far below the 8 MiB body: nothing was copied
    m = holder[0]
    assert np.shares_memory(m.vector, np.frombuffer(data, dtype=np.uint8))
    assert not m.vector.flags.writeable
    with pytest.raises(ValueError):
        m.vector[0] = 1.0
    np.testing.assert_array_equal(m.vector, vec)


# -- (d) the stream framer ----------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(small_messages.map(encode), st.binary(max_size=40)), max_size=12),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_frame_decoder_any_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(b) for b in bodies)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    dec = FrameDecoder(max_frame=max([0, *map(len, bodies)]))
    out: list[bytes] = []
    bound = 4 + max([0, *map(len, bodies)])
    for a, b in itertools.pairwise(points):
        out += dec.feed(stream[a:b])
        assert dec.buffered < bound  # never more than one incomplete frame (and its prefix)
    out += dec.feed(b"")
    assert out == bodies
    assert dec.buffered == 0


def test_frame_decoder_byte_by_byte_and_all_at_once() -> None:
    bodies = [encode(Echo((i, i, i), bytes([i]) * 32)) for i in range(5)] + [b""]
    stream = b"".join(frame(b) for b in bodies)
    dec = FrameDecoder()
    got = [body for i in range(len(stream)) for body in dec.feed(stream[i : i + 1])]
    assert got == bodies
    assert FrameDecoder().feed(stream) == bodies
    assert [decode(b) for b in got[:-1]] == [decode(b) for b in bodies[:-1]]


def test_frame_decoder_oversized_prefix_raises_and_clears() -> None:
    dec = FrameDecoder(max_frame=100)
    assert dec.feed(frame(bytes(100))) == [bytes(100)]  # exactly max_frame is fine
    assert dec.feed(struct.pack("<I", 50) + bytes(10)) == []
    assert dec.buffered == 14
    dec2 = FrameDecoder(max_frame=100)
    with pytest.raises(DecodeError) as exc:
        dec2.feed(struct.pack("<I", 101) + bytes(1000))
    assert exc.value.reason == "oversized"
    assert dec2.buffered == 0
    with pytest.raises(DecodeError, match="oversized"):
        dec2.feed(frame(b"ok") + struct.pack("<I", 2**32 - 1))
    assert dec2.buffered == 0


def test_frame_decoder_buffer_bounded_while_a_large_frame_arrives() -> None:
    dec = FrameDecoder(max_frame=10_000)
    stream = frame(bytes(10_000))
    for i in range(0, len(stream), 997):
        assert dec.feed(stream[i : i + 997]) in ([], [bytes(10_000)])
        assert dec.buffered <= 10_004
    assert dec.buffered == 0


# -- (e) constructors and immutability ----------------------------------------------------


@pytest.mark.parametrize("cls", VECTOR_TYPES)
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(3, dtype=np.int32),
        np.zeros(3, dtype=np.int64),
        np.zeros(3, dtype=np.uint8),
        np.zeros(3, dtype=bool),
        np.zeros(3, dtype=np.float16),
        np.zeros(3, dtype=np.complex128),
        np.zeros((2, 2)),
        np.zeros((1, 3), dtype=np.float32),
        np.float64(1.0),
        np.array(["a", "b"]),
        [1, 2, 3],
    ],
    ids=lambda a: f"{np.asarray(a).dtype}{np.asarray(a).shape}",
)
def test_vector_messages_reject_bad_vectors(cls, bad) -> None:
    with pytest.raises(ValueError):
        cls((0, 0, 0), bad)


BAD_INSTANCES = [(-1, 0, 0), (0, -1, 0), (0, 0, -1), (2**32, 0, 0), (0, 2**32, 0),
                 (0, 0, 2**16)]


@pytest.mark.parametrize("bad", BAD_INSTANCES)
def test_out_of_range_instance_ids(bad) -> None:
    for cls in VECTOR_TYPES:
        with pytest.raises(ValueError):
            cls(bad, np.zeros(1))
    for cls in DIGEST_TYPES:
        with pytest.raises(ValueError):
            cls(bad, bytes(32))
    if bad[2] == 0:
        with pytest.raises(ValueError):
            Report(bad[0], bad[1], ())


@pytest.mark.parametrize("cls", DIGEST_TYPES)
def test_digest_length_and_type(cls) -> None:
    for bad in (b"", bytes(31), bytes(33), bytearray(32), "x" * 32):
        with pytest.raises(ValueError):
            cls((0, 0, 0), bad)
    assert cls((0, 0, 0), bytes(32)).digest == bytes(32)


def test_report_validation() -> None:
    for bad in [(1, 1), (2, 1), (0, 5, 3), (-1,), (2**16,)]:
        with pytest.raises(ValueError):
            Report(0, 0, bad)
    with pytest.raises(ValueError):
        Report(0, 0, tuple(range(2**16)))  # a u16 count cannot say 65536
    r = Report(0, 0, [3, 7])
    assert r.origins == (3, 7) and r.instance == (0, 0, 0)


@given(small_messages)
@settings(max_examples=100, deadline=None)
def test_messages_are_immutable(m: Message) -> None:
    data = encode(m)
    fields = ["instance", "vector", "digest", "origins", "session", "round", "other"]
    for name in fields:
        with pytest.raises(AttributeError):
            setattr(m, name, 0)
    for name in fields:
        with pytest.raises(AttributeError):
            delattr(m, name)
    if isinstance(m, VECTOR_TYPES) and m.vector.size:
        with pytest.raises(ValueError):
            m.vector[0] = 1.0
    assert encode(m) == data


def test_vector_is_a_read_only_view_not_a_copy() -> None:
    x = np.arange(4.0)
    m = Value((0, 0, 0), x)
    assert np.shares_memory(m.vector, x)
    assert not m.vector.flags.writeable
    assert x.flags.writeable  # the caller's array is untouched
