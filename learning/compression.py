"""Compression operators for communication-efficient gossip (CHOCO-SGD,
:mod:`learning.methods.choco`), one registry by name (:data:`COMPRESSIONS`).

An operator ``Q`` maps each row ``v`` of a ``(m, d)`` tensor to its compressed form (on the
rows' device, in their dtype) and states two things:

- its **contraction** ``δ(d)`` in ``(0, 1]``: ``E_Q ||Q(v) - v||² <= (1 - δ)·||v||²`` for every
  ``v`` in ``R^d`` (Koloskova, Stich and Jaggi, ICML 2019, Assumption 1: the property CHOCO's
  analysis needs; ``δ = 1`` is no compression);
- its **wire bytes** ``wire_bytes(d, itemsize)``: what one compressed vector costs on the wire
  (``itemsize`` bytes per value, 4 bytes per index).

The operators of :data:`COMPRESSIONS`:

- ``topk:FRACTION``: the ``k = ceil(FRACTION·d)`` entries of largest ``|v_i|`` kept, the
  others 0 (deterministic, biased); ``δ = k/d``; ``k·itemsize + 4k`` bytes (the values and
  their int32 indices);
- ``randk:FRACTION``: ``k = ceil(FRACTION·d)`` entries chosen uniformly at random kept, NOT
  rescaled (biased: ``E Q(v) = (k/d)·v``); ``δ = k/d``; ``k·itemsize`` bytes (the indices
  come from a seed that sender and receivers share);
- ``sign``: ``(||v||_1 / d)·sign(v)`` with ``sign(0) = +1`` (biased); ``δ = 1/d``;
  ``ceil(d/8) + itemsize`` bytes (d sign bits and one scale);
- ``none``: ``Q(v) = v``; ``δ = 1``; ``d·itemsize`` bytes.

Why each ``δ`` holds (per vector, not only in expectation, except ``randk``):

- top-k drops the ``d - k`` entries of smallest magnitude, whose squares sum to at most their
  share ``(d - k)/d`` of ``||v||²``: ``||Q(v) - v||² <= (1 - k/d)·||v||²``;
- random-k drops a uniform ``(d - k)``-subset: ``E ||Q(v) - v||² = (1 - k/d)·||v||²``
  exactly. The rescaled ``(d/k)``-version is unbiased but has
  ``E ||Q(v) - v||² = (d/k - 1)·||v||²``, which is not a contraction for ``k <= d/2``; CHOCO
  needs the contraction, so ``randk`` is the unscaled operator;
- scaled sign: with ``s = ||v||_1 / d``, ``||Q(v) - v||² = ||v||² - 2s·||v||_1 + d·s² =
  (1 - ||v||_1² / (d·||v||²))·||v||²``, and ``||v||_1² >= ||v||²`` gives ``δ = 1/d`` (attained by
  1-sparse vectors; about ``2/π`` for dense Gaussian ones).

Add an operator with :func:`register_compression`; :func:`make_compression` builds one from
its ``NAME[:PARAMETER]`` spelling (``TrainConfig.compression``, ``--compression``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from netsim.registry import register, unknown

INDEX_BYTES = 4
"""Bytes of one coordinate index on the wire (int32: dimensions below 2^31)."""


class Compression:
    """A compression operator ``Q`` (module doc): ``q = op(v, gen)`` for rows ``v`` ``(m, d)``,
    with its contraction :meth:`delta` and its :meth:`wire_bytes`."""

    spec: str = ""
    """How the operator is spelled (``topk:0.01``)."""
    unbiased: bool = False
    """True iff ``E Q(v) = v``."""

    def __call__(self, v: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def delta(self, d: int) -> float:
        """``δ`` with ``E ||Q(v) - v||² <= (1 - δ)·||v||²`` for every ``v`` in ``R^d``."""
        raise NotImplementedError

    def wire_bytes(self, d: int, itemsize: int) -> int:
        """Bytes of one compressed vector of dimension ``d`` (``itemsize`` bytes per value)."""
        raise NotImplementedError

    def describe(self, d: int, itemsize: int) -> str:
        """One line for a traffic report."""
        return f"{self.spec}: {self.wire_bytes(d, itemsize)} bytes per vector of {d}"


def _fraction(spec: str, name: str, param: str | None) -> float:
    try:
        frac = float(param) if param is not None else math.nan
    except ValueError:
        frac = math.nan
    if not 0 < frac <= 1:
        raise ValueError(f"compression={spec!r}: {name} needs a fraction of the coordinates, "
                         f"{name}:FRACTION with 0 < FRACTION <= 1 (e.g. {name}:0.01)")
    return frac


class _Sparse(Compression):
    """Keep ``k = ceil(fraction·d)`` coordinates (at least 1, at most d)."""

    def __init__(self, name: str, param: str | None) -> None:
        self.spec = name if param is None else f"{name}:{param}"
        self.fraction = _fraction(self.spec, name, param)

    def k(self, d: int) -> int:
        """The kept coordinates: ``min(d, max(1, ceil(fraction·d)))``."""
        return min(d, max(1, math.ceil(self.fraction * d - 1e-9)))

    def delta(self, d: int) -> float:
        return self.k(d) / d

    def keep(self, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        return out.scatter_(1, idx, v.gather(1, idx))


class TopK(_Sparse):
    """``topk:FRACTION``: the ``k`` entries of largest magnitude of each row (module doc)."""

    def __init__(self, param: str | None) -> None:
        super().__init__("topk", param)

    def __call__(self, v: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        k = self.k(v.shape[1])
        return self.keep(v, v.abs().topk(k, dim=1, sorted=False).indices)

    def wire_bytes(self, d: int, itemsize: int) -> int:
        return self.k(d) * (itemsize + INDEX_BYTES)


class RandK(_Sparse):
    """``randk:FRACTION``: ``k`` uniformly random entries of each row, not rescaled (the
    contractive, biased version; module doc). The indices come from ``gen``, a generator
    that sender and receivers seed alike, so only the ``k`` values travel."""

    def __init__(self, param: str | None) -> None:
        super().__init__("randk", param)

    def __call__(self, v: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        m, d = v.shape
        keys = torch.rand((m, d), generator=gen, device=v.device)
        return self.keep(v, keys.topk(self.k(d), dim=1, sorted=False).indices)

    def wire_bytes(self, d: int, itemsize: int) -> int:
        return self.k(d) * itemsize


class ScaledSign(Compression):
    """``sign``: ``(||v||_1 / d)·sign(v)`` per row, ``sign(0) = +1`` (module doc)."""

    spec = "sign"

    def __call__(self, v: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        scale = v.abs().sum(dim=1, keepdim=True) / v.shape[1]
        return torch.where(v >= 0, scale, -scale)

    def delta(self, d: int) -> float:
        return 1.0 / d

    def wire_bytes(self, d: int, itemsize: int) -> int:
        return math.ceil(d / 8) + itemsize


class Identity(Compression):
    """``none``: ``Q(v) = v``."""

    spec = "none"
    unbiased = True

    def __call__(self, v: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return v.clone()

    def delta(self, d: int) -> float:
        return 1.0

    def wire_bytes(self, d: int, itemsize: int) -> int:
        return d * itemsize


def _no_parameter(cls: type[Compression]) -> Callable[[str | None], Compression]:
    def factory(param: str | None) -> Compression:
        if param is not None:
            raise ValueError(f"compression={cls.spec + ':' + param!r}: {cls.spec} takes no "
                             f"parameter (write {cls.spec})")
        return cls()

    return factory


COMPRESSIONS: dict[str, Callable[[str | None], Compression]] = {
    "topk": TopK,
    "randk": RandK,
    "sign": _no_parameter(ScaledSign),
    "none": _no_parameter(Identity),
}
"""Compression operators by name: ``factory(parameter or None) -> Compression``."""


def register_compression(name: str, factory: Callable[[str | None], Compression], *,
                         replace: bool = False) -> Callable[[str | None], Compression]:
    """Add ``factory`` (``NAME:PARAMETER`` -> ``factory("PARAMETER")``, ``NAME`` ->
    ``factory(None)``) to :data:`COMPRESSIONS`; a taken name is a ``ValueError`` unless
    ``replace``."""
    return register(COMPRESSIONS, name, factory, what="compression", replace=replace)


def make_compression(spec: str) -> Compression:
    """The operator spelled ``NAME[:PARAMETER]`` (``topk:0.01``, ``randk:0.1``, ``sign``,
    ``none``); an unknown name or a bad parameter is a ``ValueError`` naming ``compression=``."""
    if not isinstance(spec, str):
        raise ValueError(f"compression must be a name such as 'topk:0.01', got {spec!r}")
    name, sep, param = spec.partition(":")
    if name not in COMPRESSIONS:
        raise ValueError(f"compression={spec!r}: " + str(unknown("compression", name,
                                                                 COMPRESSIONS)))
    op = COMPRESSIONS[name](param if sep else None)
    if not isinstance(op, Compression):
        raise ValueError(f"the compression registered as {name!r} built a "
                         f"{type(op).__name__}, not a learning.compression.Compression")
    op.spec = spec
    return op


__all__ = ["COMPRESSIONS", "INDEX_BYTES", "Compression", "Identity", "RandK", "ScaledSign",
           "TopK", "make_compression", "register_compression"]
