"""The one strict codec of Jungle (docs/architecture.md, "Messages on the wire").

Body layout (all integers little-endian)::

    header   magic b"JG" | version u8 | kind u8
    VALUE, REPLY, SEND   instance | dtype u8 | count u32 | count * itemsize raw bytes
    ECHO, READY, FETCH   instance | digest 32 bytes
    REPORT               session u32 | round u32 | k u16 | k * origin u16 (strictly increasing)
    instance = session u32 | round u32 | origin u16

A frame on a stream is ``length u32 | body`` with ``length <= max_frame``.

Version 2 (this one): digests are BLAKE3 (:func:`netsim.messages.digest`); version 1 used
BLAKE2b-256, so a version-1 body is refused (``bad-version``) instead of disagreeing on every
digest.

Guarantees: :func:`decode` either returns a message whose :func:`encode` is exactly the input,
or raises :class:`DecodeError` (never another exception). Allocation is bounded before any
field is unpacked: vectors are read-only views of the body, zero-copy where the body places
their coordinates aligned to their item size (:class:`FrameDecoder` does for large bodies;
else one aligned copy of at most the body's size, since numpy's kernels on unaligned floats
are up to 20x slower), and a REPORT listing more than ``max_origins`` origins (the cluster's n: the
runtime, the simulator and the optimizer's driver pass it; default
:data:`DEFAULT_MAX_ORIGINS`) is refused (``bad-report``) before its origins are unpacked, so
a decoded REPORT costs at most ~40 bytes of Python objects per allowed origin (a tuple slot
and an int), whatever the body claims. Only float32 and float64 vectors are accepted and the
element count must match the byte length exactly. No pickle, no eval, no variable-length
integers.
"""

from __future__ import annotations

import itertools
import struct

import numpy as np

from .messages import (
    CODE_DTYPES,
    DIGEST_SIZE,
    DTYPE_CODES,
    KIND_TYPES,
    Echo,
    Fetch,
    Message,
    Ready,
    Reply,
    Report,
    Send,
    Value,
    _DigestMessage,
    _VectorMessage,
)

MAGIC = b"JG"
VERSION = 2
"""The wire format's version: 2 since digests are BLAKE3 (1: BLAKE2b-256)."""
DEFAULT_MAX_FRAME = 1 << 28
"""Default maximum body size: 256 MiB (a float32 vector of 67M coordinates)."""
DEFAULT_MAX_ORIGINS = 1024
"""Default bound on a REPORT's origins when the caller does not pass the cluster's n (an
honest report lists n-f origins). Without it a 131 KB body of 65535 origins unpacks into
~2.6 MB of Python ints; with it a report costs at most ~40 KB."""

_HEAD = struct.Struct("<2sBB")
_INST = struct.Struct("<IIH")
_VEC = struct.Struct("<IIHBI")  # instance + dtype code + count
_DIG = struct.Struct(f"<IIH{DIGEST_SIZE}s")
_REP = struct.Struct("<IIH")  # session, round, k
_LEN = struct.Struct("<I")
HEADER_SIZE = _HEAD.size
VECTOR_OVERHEAD = HEADER_SIZE + _VEC.size
DIGEST_MESSAGE_SIZE = HEADER_SIZE + _DIG.size


class DecodeError(Exception):
    """Hostile or malformed bytes. ``reason`` is a short stable tag used as the fault kind."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def encode(message: Message) -> bytes:
    """Encode a message body (no length prefix). A vector's bytes are copied once, straight
    from its memory into the body (no ``tobytes()`` then concatenation)."""
    kind = message.KIND
    head = _HEAD.pack(MAGIC, VERSION, kind)
    if isinstance(message, _DigestMessage):
        return head + _DIG.pack(*message.instance, message.digest)
    if isinstance(message, _VectorMessage):
        vec = message.vector
        if not vec.flags.c_contiguous:
            vec = np.ascontiguousarray(vec)
        return b"".join((
            head,
            _VEC.pack(*message.instance, DTYPE_CODES[vec.dtype], vec.shape[0]),
            memoryview(vec).cast("B"),
        ))
    if isinstance(message, Report):
        k = len(message.origins)
        return head + _REP.pack(message.session, message.round, k) + struct.pack(
            f"<{k}H", *message.origins
        )
    raise TypeError(f"not a wire message: {message!r}")


def wire_size(message: Message) -> int:
    """``len(encode(message))`` without encoding (for metrics when the codec is off)."""
    if isinstance(message, _DigestMessage):
        return DIGEST_MESSAGE_SIZE
    if isinstance(message, _VectorMessage):
        return VECTOR_OVERHEAD + message.vector.nbytes
    if isinstance(message, Report):
        return HEADER_SIZE + _REP.size + 2 * len(message.origins)
    raise TypeError(f"not a wire message: {message!r}")


def _new(cls: type[Message], **fields: object) -> Message:
    """Build a message from already-validated fields (decode's fast path)."""
    obj = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


def _byte_view(body: object) -> bytes | memoryview:
    """``body`` as itself (``bytes``) or a flat byte memoryview of it (no copy when it is
    contiguous); :class:`DecodeError` ``not-bytes`` for an object without a buffer."""
    if type(body) is bytes:
        return body
    try:
        view = memoryview(body)  # type: ignore[arg-type]
    except TypeError as exc:
        raise DecodeError("not-bytes", type(body).__name__) from exc
    if not view.c_contiguous:  # one copy
        return view.tobytes()
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B")


def decode(
    body: bytes | bytearray | memoryview,
    max_size: int = DEFAULT_MAX_FRAME,
    max_origins: int = DEFAULT_MAX_ORIGINS,
) -> Message:
    """Decode one message body. Raises :class:`DecodeError` on anything malformed.

    ``max_size`` bounds the body; ``max_origins`` (give the cluster's n) bounds a REPORT's
    origins, checked before they are unpacked. ``body`` may be any bytes-like object: it is
    not copied (a vector is a read-only view of it, which keeps it alive), so the caller
    must not modify a mutable body afterwards (the transport never does: each frame body is
    its own buffer)."""
    body = _byte_view(body)
    size = len(body)
    if size > max_size:
        raise DecodeError("oversized", f"{size} > {max_size} bytes")
    if size < HEADER_SIZE:
        raise DecodeError("truncated", f"{size} bytes")
    magic, version, kind = _HEAD.unpack_from(body)
    if magic != MAGIC:
        raise DecodeError("bad-magic")
    if version != VERSION:
        raise DecodeError("bad-version", str(version))
    cls = KIND_TYPES.get(kind)
    if cls is None:
        raise DecodeError("unknown-kind", str(kind))
    if cls is Echo or cls is Ready or cls is Fetch:
        if size != DIGEST_MESSAGE_SIZE:
            raise DecodeError("bad-length", f"{cls.NAME} of {size} bytes")
        session, rnd, origin, dig = _DIG.unpack_from(body, HEADER_SIZE)
        return _new(cls, instance=(session, rnd, origin), digest=dig)
    if cls is Value or cls is Reply or cls is Send:
        if size < VECTOR_OVERHEAD:
            raise DecodeError("truncated", f"{cls.NAME} of {size} bytes")
        session, rnd, origin, code, count = _VEC.unpack_from(body, HEADER_SIZE)
        dtype = CODE_DTYPES.get(code)
        if dtype is None:
            raise DecodeError("bad-dtype", str(code))
        if size - VECTOR_OVERHEAD != count * dtype.itemsize:
            raise DecodeError(
                "bad-length", f"{count} x {dtype} needs {count * dtype.itemsize} bytes"
            )
        vec = np.frombuffer(body, dtype=dtype, count=count, offset=VECTOR_OVERHEAD)
        if not vec.flags.aligned:  # numpy's kernels on unaligned floats are up to 20x slower
            vec = vec.copy()  # one aligned copy, of at most the body's size
        vec.flags.writeable = False  # a view of a mutable body too
        return _new(cls, instance=(session, rnd, origin), vector=vec)
    # Report
    if size < HEADER_SIZE + _REP.size:
        raise DecodeError("truncated", f"report of {size} bytes")
    session, rnd, k = _REP.unpack_from(body, HEADER_SIZE)
    if size != HEADER_SIZE + _REP.size + 2 * k:
        raise DecodeError("bad-length", f"report of {k} origins in {size} bytes")
    if k > max_origins:  # before unpacking: k Python ints would cost ~36 bytes each
        raise DecodeError("bad-report", f"{k} origins, more than n = {max_origins}")
    origins = struct.unpack_from(f"<{k}H", body, HEADER_SIZE + _REP.size)
    if any(a >= b for a, b in itertools.pairwise(origins)):
        raise DecodeError("bad-report", "origins not strictly increasing")
    return _new(Report, session=session, round=rnd, origins=origins)


def frame(body: bytes) -> bytes:
    """Length-prefix a body for a stream transport."""
    return _LEN.pack(len(body)) + body


DIRECT_FRAME = 1 << 16
"""Frame bodies of at least this many bytes are read into a buffer of their own, of exactly
their length (:class:`FrameDecoder`); smaller ones go through one preallocated buffer."""
_ALIGN = 64  # the alignment of a large body's ``align_at`` byte (a cache line)


class FrameDecoder:
    """Incremental splitter of a byte stream into frame bodies.

    No buffer grows, shrinks or moves: the 4-byte length prefix is collected in a fixed
    4-byte buffer; a body below :data:`DIRECT_FRAME` bytes is collected in one preallocated
    buffer (and returned as ``bytes``, or copied straight out of the chunk when the chunk
    holds it whole); a larger body is written, chunk by chunk, into its own uninitialised
    buffer of exactly its length (memory is committed as the bytes arrive), which is
    returned as a read-only ``memoryview`` without a further copy (decode it in place with
    :func:`decode`). Every returned body compares equal to the ``bytes`` it holds. Byte
    ``align_at`` of a large body (the transport passes where a VALUE's coordinates start)
    lies on a 64-byte boundary, so a decoded vector is an aligned, zero-copy view.

    Memory is bounded: besides the fixed buffers it holds at most one incomplete frame of
    at most ``max_frame`` bytes. A length prefix above ``max_frame`` raises
    :class:`DecodeError` ("oversized"): the stream cannot be resynchronised and the caller
    must close it.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, align_at: int = 0) -> None:
        self.max_frame = max_frame
        self.align_at = align_at
        self._head = bytearray(_LEN.size)
        self._hn = 0  # prefix bytes collected in _head
        self._small = memoryview(bytearray(min(max_frame, DIRECT_FRAME)))
        self._body: memoryview | None = None  # the body being filled (prefix complete)
        self._arr: np.ndarray | None = None  # the own buffer of a large body
        self._len = 0
        self._fill = 0

    def _begin(self, length: int) -> None:
        """The prefix said ``length``: check it and pick the body's buffer."""
        if length > self.max_frame:
            self._hn, self._body, self._arr = 0, None, None
            raise DecodeError("oversized", f"frame of {length} > {self.max_frame} bytes")
        self._len, self._fill = length, 0
        if length >= DIRECT_FRAME:
            # uninitialised (no page touched), placed so that byte ``align_at`` of the body
            # (where a vector's coordinates start) is 64-byte aligned: numpy runs unaligned
            # float arrays on slow paths (v·v 20x slower on a 4 MB float32 vector)
            arr = np.empty(length + _ALIGN, dtype=np.uint8)
            shift = -(arr.ctypes.data + self.align_at) % _ALIGN
            self._arr = arr[shift : shift + length]
            self._body = memoryview(self._arr)
        else:
            self._body = self._small

    def _finish(self) -> bytes | memoryview:
        body, self._body = self._body, None
        assert body is not None
        if self._arr is None:
            return bytes(body[: self._len])
        self._arr = None
        return body.toreadonly()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | memoryview]:
        """Add bytes; return the complete frame bodies now available, in order."""
        out: list[bytes | memoryview] = []
        mv = _byte_view(data)
        pos, end = 0, len(mv)
        while pos < end:
            if self._body is None:
                if self._hn == 0 and end - pos >= _LEN.size:
                    (length,) = _LEN.unpack_from(mv, pos)
                    pos += _LEN.size
                    if length < DIRECT_FRAME and end - pos >= length <= self.max_frame:
                        out.append(bytes(mv[pos : pos + length]))  # whole in the chunk
                        pos += length
                        continue
                else:
                    take = min(_LEN.size - self._hn, end - pos)
                    self._head[self._hn : self._hn + take] = mv[pos : pos + take]
                    self._hn += take
                    pos += take
                    if self._hn < _LEN.size:
                        break
                    self._hn = 0
                    (length,) = _LEN.unpack_from(self._head)
                self._begin(length)
                if length == 0:
                    out.append(self._finish())
                continue
            take = min(self._len - self._fill, end - pos)
            self._body[self._fill : self._fill + take] = mv[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == self._len:
                out.append(self._finish())
        return out

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (its prefix included)."""
        if self._body is None:
            return self._hn
        return _LEN.size + self._fill
