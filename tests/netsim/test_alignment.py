"""Decoded vectors are aligned: numpy runs unaligned float arrays on slow paths (v·v about 20x
slower on a 4 MB float32 vector), so the transport's decoder places a large body with its
coordinates on a 64-byte boundary (zero-copy), and :func:`decode` copies a vector that a body
leaves unaligned (the simulator's ``bytes``, small frames) once."""

from __future__ import annotations

import numpy as np
import pytest

from netsim.codec import DIRECT_FRAME, FrameDecoder, decode, encode, frame
from netsim.messages import Value
from netsim.net.transport import ALIGN_AT, ENVELOPE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [1 << 20, 4096, 777])
def test_the_receive_decoder_delivers_aligned_zero_copy_vectors(dtype, chunk) -> None:
    vec = np.arange(DIRECT_FRAME, dtype=dtype)
    body = ENVELOPE.pack(3, 1, 0) + encode(Value((0, 1, 2), vec))
    stream = frame(body) * 3
    dec = FrameDecoder(len(body), ALIGN_AT)
    out = [b for s in range(0, len(stream), chunk) for b in dec.feed(stream[s : s + chunk])]
    assert len(out) == 3
    for got in out:
        assert bytes(got) == body
        msg = decode(memoryview(got)[ENVELOPE.size :])
        assert msg.vector.ctypes.data % 64 == 0 and msg.vector.flags.aligned
        assert np.shares_memory(msg.vector, np.frombuffer(got, np.uint8))  # no copy
        np.testing.assert_array_equal(msg.vector, vec)


@pytest.mark.parametrize("pad", range(8))
def test_decode_copies_an_unaligned_vector_once_and_keeps_the_bytes(pad) -> None:
    vec = np.linspace(-1, 1, 1001)
    body = encode(Value((0, 1, 2), vec))
    raw = np.zeros(len(body) + 8, np.uint8)
    raw[pad : pad + len(body)] = np.frombuffer(body, np.uint8)
    view = memoryview(raw)[pad : pad + len(body)]
    msg = decode(view)
    assert msg.vector.flags.aligned and not msg.vector.flags.writeable
    np.testing.assert_array_equal(msg.vector, vec)
    assert encode(msg) == body
