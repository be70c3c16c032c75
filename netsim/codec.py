"""The one strict codec of Jungle (docs/architecture.md, "Messages on the wire").

Body layout (all integers little-endian)::

    header   magic b"JG" | version u8 | kind u8
    VALUE, REPLY, SEND   instance | dtype u8 | count u32 | count * itemsize raw bytes
    ECHO, READY, FETCH   instance | digest 32 bytes
    REPORT               session u32 | round u32 | k u16 | k * origin u16 (strictly increasing)
    instance = session u32 | round u32 | origin u16

A frame on a stream is ``length u32 | body`` with ``length <= max_frame``.

Guarantees: :func:`decode` either returns a message whose :func:`encode` is exactly the input,
or raises :class:`DecodeError` (never another exception). Allocation is bounded before any
field is unpacked: vectors are zero-copy, read-only views of the body (nothing is allocated
for them), and a REPORT listing more than ``max_origins`` origins (the cluster's n: the
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
VERSION = 1
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
    """Encode a message body (no length prefix)."""
    kind = message.KIND
    head = _HEAD.pack(MAGIC, VERSION, kind)
    if isinstance(message, _DigestMessage):
        return head + _DIG.pack(*message.instance, message.digest)
    if isinstance(message, _VectorMessage):
        vec = message.vector
        return (
            head
            + _VEC.pack(*message.instance, DTYPE_CODES[vec.dtype], vec.shape[0])
            + vec.tobytes()
        )
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


def decode(
    body: bytes | bytearray | memoryview,
    max_size: int = DEFAULT_MAX_FRAME,
    max_origins: int = DEFAULT_MAX_ORIGINS,
) -> Message:
    """Decode one message body. Raises :class:`DecodeError` on anything malformed.

    ``max_size`` bounds the body; ``max_origins`` (give the cluster's n) bounds a REPORT's
    origins, checked before they are unpacked."""
    if not isinstance(body, bytes):
        try:
            body = bytes(body)
        except Exception as exc:  # pragma: no cover - defensive
            raise DecodeError("not-bytes", type(body).__name__) from exc
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


class FrameDecoder:
    """Incremental splitter of a byte stream into frame bodies.

    Memory is bounded: the buffer never holds more than one incomplete frame of at most
    ``max_frame`` bytes plus the last chunk fed. A length prefix above ``max_frame`` raises
    :class:`DecodeError` ("oversized"): the stream cannot be resynchronised and the caller
    must close it.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete frame bodies now available, in order."""
        self._buf += data
        out: list[bytes] = []
        buf = self._buf
        pos = 0
        with memoryview(buf) as view:  # one copy per frame body (a bytearray slice is a copy)
            while len(buf) - pos >= _LEN.size:
                (length,) = _LEN.unpack_from(buf, pos)
                if length > self.max_frame:
                    view.release()
                    self._buf = bytearray()
                    raise DecodeError("oversized",
                                      f"frame of {length} > {self.max_frame} bytes")
                if len(buf) - pos - _LEN.size < length:
                    break
                start = pos + _LEN.size
                out.append(bytes(view[start : start + length]))
                pos = start + length
        if pos:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf)
