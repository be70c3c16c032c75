"""The wire vocabulary of Jungle: typed, frozen message classes.

Every message that any Jungle protocol sends is one of the classes below, and
:mod:`netsim.codec` is the only way they become bytes. The broadcast and agreement layers
give them meaning; netsim only knows their shape, which lets its adversary strategies
(flood, forge, ...) build hostile messages without importing the layers above.

Instances are identified by ``InstanceId = (session, round, origin)`` (docs/theory.md §3: one
reliable-broadcast instance per session, round and origin).

Vectors are 1-D numpy arrays of dtype float32 or float64. They are made read-only views on
construction (no copy), so a vector shared by reference in the simulator cannot be changed by
a receiver.
"""

from __future__ import annotations

import itertools
import struct
from typing import ClassVar

import blake3
import numpy as np

InstanceId = tuple[int, int, int]
"""``(session, round, origin)``: session < 2**32, round < 2**32, origin < 2**16."""

DIGEST_SIZE = 32
"""BLAKE3 digests of 32 bytes, the wire format's one digest since codec version 2
(docs/theory.md §3; version 1 used BLAKE2b-256)."""

DTYPE_CODES: dict[np.dtype, int] = {np.dtype("<f4"): 1, np.dtype("<f8"): 2}
CODE_DTYPES: dict[int, np.dtype] = {code: dt for dt, code in DTYPE_CODES.items()}
_VEC_HEAD = struct.Struct("<BI")  # dtype code, element count


def as_vector(value: object) -> np.ndarray:
    """Return ``value`` as a read-only little-endian float32/float64 1-D array (no copy if
    it already is one). Raises ``ValueError`` for other dtypes or shapes."""
    arr = np.asarray(value)
    if arr.dtype.kind != "f" or arr.dtype.itemsize not in (4, 8):  # either byte order
        raise ValueError(f"vectors must be float32 or float64, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"vectors must be 1-D, got shape {arr.shape}")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


def vector_bytes(vector: np.ndarray) -> bytes:
    """Canonical encoding of a vector: dtype code (u8), length (u32 LE), raw LE data."""
    return _VEC_HEAD.pack(DTYPE_CODES[vector.dtype], vector.shape[0]) + vector.tobytes()


def digest(vector: np.ndarray) -> bytes:
    """``H(v)``: BLAKE3 (32 bytes) of the canonical encoding of ``v``,
    ``dtype code u8 | length u32 LE | raw LE data`` (:func:`vector_bytes`; docs/theory.md §3).

    One hasher, fed the 5-byte head then the vector's memory (no copy for a contiguous
    vector); ``max_threads=1``: single-threaded (the nodes already share the cores), and the
    library releases the GIL while it hashes a large input. Collision resistance (128-bit
    security) is what reliable broadcast's agreement needs of ``H`` (§3)."""
    h = blake3.blake3(_VEC_HEAD.pack(DTYPE_CODES[vector.dtype], vector.shape[0]),
                      max_threads=1)
    h.update(memoryview(np.ascontiguousarray(vector)).cast("B"))
    return h.digest()


MAX_SQUARED_NORM = 2.0**1000
"""The largest squared norm of a valid float64 vector (``||v|| <= 2^500 ≈ 3.3e150``)."""


def session_dtype(dtype: object) -> np.dtype:
    """The little-endian float32/float64 dtype that ``dtype`` names (a session's dtype is
    compared with the wire's, which is always little-endian). ``ValueError`` otherwise."""
    dt = np.dtype(dtype)  # type: ignore[call-overload]
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise ValueError(f"a session's dtype must be float32 or float64, got {dt}")
    return dt.newbyteorder("<")


def vector_problem(
    vector: np.ndarray, dtype: np.dtype | None = None, dim: int | None = None
) -> str | None:
    """Why ``vector`` is not a valid value of a session of ``dtype`` and dimension ``dim``
    (``None``: not constrained), or ``None`` when it is valid (:func:`valid_vector`).

    The reasons, in the order checked: ``dtype float64, the session's is float32`` (a value
    of another dtype never enters a view: a float64 1e100 in a float32 view would make a
    rule's float32 output overflow to inf), ``dimension 5, the session's is 3``,
    ``non-finite`` and ``squared norm above 2^1000``."""
    if dtype is not None and vector.dtype != dtype:
        return f"dtype {vector.dtype.name}, the session's is {np.dtype(dtype).name}"
    if vector.ndim != 1:
        return f"shape {vector.shape}, not a 1-D vector"
    if dim is not None and vector.shape[0] != dim:
        return f"dimension {vector.shape[0]}, the session's is {dim}"
    # one pass: s = v·v (in the vector's dtype) is finite only if every v_i is (a NaN or an
    # infinity makes s NaN or inf, and a sum of squares cannot cancel), so a finite s (and,
    # for float64, s <= 2^1000) proves the vector valid; otherwise the exact checks name why
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.dot(vector, vector)
    if vector.dtype == np.float64:
        if s <= MAX_SQUARED_NORM:
            return None
    elif np.isfinite(s):
        return None
    if not np.isfinite(vector).all():
        return "non-finite"
    if vector.dtype == np.float64:  # finite, so s is the squared norm, above the bound
        return "squared norm above 2^1000"
    return None  # float32 squares that overflow float32: no bound for float32 vectors


def valid_vector(
    vector: np.ndarray, dtype: np.dtype | None = None, dim: int | None = None
) -> bool:
    """The value validity of Jungle's protocols: every entry finite, and (float64) a squared
    norm ``Σ v_i² <= 2^1000`` (``||v|| <= ~3.3e150``); when given, of the session's ``dtype``
    (exactly: no conversion) and dimension ``dim``. Larger vectors cannot be compared
    through float64 squared distances (Gram matrices, their centring and sums over a view
    would overflow, or a rescaling would lose every other vector's digits), and no honest
    vector is that large, so they are invalid values, like NaN. (A float32 vector's squared
    norm is always far below the bound.) :func:`vector_problem` says why a vector is not
    valid."""
    return vector_problem(vector, dtype, dim) is None


def vectors_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality of two vectors (dtype, length and bytes; NaNs compare by bits)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Message:
    """Base class of all wire messages. ``KIND`` is the one-byte type tag of the codec."""

    __slots__ = ()
    KIND: ClassVar[int]
    NAME: ClassVar[str]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # every slot along the MRO: the concrete classes declare ``__slots__ = ()``
        cls._FIELDS = tuple(
            s for c in reversed(cls.__mro__) for s in c.__dict__.get("__slots__", ())
        )

    def _fields(self) -> tuple:
        return tuple(getattr(self, s) for s in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for a, b in zip(self._fields(), other._fields(), strict=True):
            if isinstance(a, np.ndarray):
                if not vectors_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    def __hash__(self) -> int:
        return hash((self.KIND, *(
            f.tobytes() if isinstance(f, np.ndarray) else f for f in self._fields()
        )))

    def __repr__(self) -> str:
        parts = []
        for s in self._FIELDS:
            v = getattr(self, s)
            if isinstance(v, np.ndarray):
                v = f"<{v.dtype} vector d={v.shape[0]}>"
            elif isinstance(v, bytes):
                v = v[:4].hex() + "…"
            parts.append(f"{s}={v}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _check_instance(instance: InstanceId) -> InstanceId:
    session, rnd, origin = instance
    if not (0 <= session < 2**32 and 0 <= rnd < 2**32 and 0 <= origin < 2**16):
        raise ValueError(f"instance id out of range: {instance!r}")
    return (int(session), int(rnd), int(origin))


def _check_digest(d: bytes) -> bytes:
    if not isinstance(d, bytes) or len(d) != DIGEST_SIZE:
        raise ValueError(f"digests are {DIGEST_SIZE} bytes")
    return d


class _VectorMessage(Message):
    __slots__ = ("instance", "vector")
    instance: InstanceId
    vector: np.ndarray

    def __init__(self, instance: InstanceId, vector: object) -> None:
        object.__setattr__(self, "instance", _check_instance(instance))
        object.__setattr__(self, "vector", as_vector(vector))


class _DigestMessage(Message):
    __slots__ = ("digest", "instance")
    instance: InstanceId
    digest: bytes

    def __init__(self, instance: InstanceId, digest: bytes) -> None:
        object.__setattr__(self, "instance", _check_instance(instance))
        object.__setattr__(self, "digest", _check_digest(digest))


class Value(_VectorMessage):
    """Bracha ``VALUE(v)``: the origin's value for an instance."""

    __slots__ = ()
    KIND = 1
    NAME = "value"


class Echo(_DigestMessage):
    """Bracha ``ECHO(H(v))``."""

    __slots__ = ()
    KIND = 2
    NAME = "echo"


class Ready(_DigestMessage):
    """Bracha ``READY(H(v))``."""

    __slots__ = ()
    KIND = 3
    NAME = "ready"


class Fetch(_DigestMessage):
    """``FETCH(h)``: ask a node that echoed ``h`` for the value with that digest."""

    __slots__ = ()
    KIND = 4
    NAME = "fetch"


class Reply(_VectorMessage):
    """The answer to a ``FETCH``: a value the receiver checks against the digest it asked."""

    __slots__ = ()
    KIND = 5
    NAME = "reply"


class Report(Message):
    """Witness ``REPORT(r, S)``: the first n-f origins a node RB-delivered in a round (§4)."""

    __slots__ = ("origins", "round", "session")
    KIND = 6
    NAME = "report"
    session: int
    round: int
    origins: tuple[int, ...]

    def __init__(self, session: int, round: int, origins: tuple[int, ...]) -> None:
        _check_instance((session, round, 0))
        origins = tuple(int(o) for o in origins)
        if any(not 0 <= o < 2**16 for o in origins) or len(origins) >= 2**16:
            raise ValueError("report origins out of range")
        if any(a >= b for a, b in itertools.pairwise(origins)):
            raise ValueError("report origins must be strictly increasing")
        object.__setattr__(self, "session", int(session))
        object.__setattr__(self, "round", int(round))
        object.__setattr__(self, "origins", origins)

    @property
    def instance(self) -> InstanceId:
        """Reports belong to a round, not to an origin: origin 0 by convention."""
        return (self.session, self.round, 0)


class Send(_VectorMessage):
    """A plain (not reliably broadcast) vector, for the first-quorum gather."""

    __slots__ = ()
    KIND = 7
    NAME = "send"


MESSAGE_TYPES: tuple[type[Message], ...] = (Value, Echo, Ready, Fetch, Reply, Report, Send)
KIND_TYPES: dict[int, type[Message]] = {t.KIND: t for t in MESSAGE_TYPES}
KIND_NAMES: dict[int, str] = {t.KIND: t.NAME for t in MESSAGE_TYPES}


def with_round(message: Message, rnd: int) -> Message:
    """A copy of ``message`` moved to round ``rnd`` (used by the flood strategy)."""
    if isinstance(message, Report):
        return Report(message.session, rnd, message.origins)
    session, _, origin = message.instance  # type: ignore[attr-defined]
    if isinstance(message, _VectorMessage):
        return type(message)((session, rnd, origin), message.vector)
    assert isinstance(message, _DigestMessage)
    return type(message)((session, rnd, origin), message.digest)
