"""The per-process driver never dies silently: a protocol exception is logged with the
node, the session and the message that triggered it, and the node stops with a clear
``ProtocolError``; a dead transport is an error, not a silent wait; hostile bytes (a REPORT
with more origins than n) are faults."""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import struct
import threading
import time

import numpy as np
import pytest

import learning.optim as optim
from agreement import AveragingAgreement
from learning.optim import AgreementNode, InProcessNetwork, TransportNetwork
from netsim.codec import encode
from netsim.messages import Value
from netsim.net.runtime import ProtocolError


class _Buggy(AveragingAgreement):
    def handle(self, sender, message, now):  # type: ignore[override]
        if sender == 1:
            raise KeyError("a bug in handle")
        return super().handle(sender, message, now)


def test_protocol_exception_is_logged_and_raised_as_protocol_error(monkeypatch, caplog):
    monkeypatch.setattr(optim, "AveragingAgreement", _Buggy)
    caplog.set_level(logging.ERROR, logger="learning.optim")
    net = InProcessNetwork(4)
    node = AgreementNode(net.endpoint(0), 1, timeout=5.0)
    # node 1's (valid) VALUE for session 3, round 0, already waiting in node 0's queue
    net.endpoint(1).send(0, encode(Value((3, 0, 1), np.zeros(2, dtype=np.float32))))
    t0 = time.monotonic()
    with pytest.raises(ProtocolError) as exc:
        node.agree(np.ones(2, dtype=np.float32), rounds=1, session=3)
    assert time.monotonic() - t0 < 5.0  # raised, not a hang until the timeout
    err = exc.value
    assert (err.node_id, err.session, err.sender, err.message) == (0, 3, 1, "value (3, 0, 1)")
    assert isinstance(err.__cause__, KeyError)
    assert "node 0, session 3" in str(err) and "from node 1" in str(err)
    recs = [r for r in caplog.records if r.name == "learning.optim"]
    assert len(recs) == 1 and "value (3, 0, 1)" in recs[0].getMessage()
    assert recs[0].exc_info is not None
    with pytest.raises(ProtocolError):  # the node stays stopped
        node.agree(np.ones(2, dtype=np.float32), rounds=1, session=5)
    with pytest.raises(ProtocolError):
        node.serve(0.1)


def test_report_with_more_origins_than_n_is_a_fault():
    net = InProcessNetwork(4)
    node = AgreementNode(net.endpoint(0), 1)
    k = 2**16 - 1
    body = b"JG\x02\x06" + struct.pack(f"<IIH{k}H", 0, 0, k, *range(k))
    node._route(1, body, 0)
    assert node.fault_counts == {"malformed": 1}
    assert node.faults[0].sender == 1 and node.faults[0].detail == "bad-report"


def test_a_dead_transport_is_an_error_not_a_silent_wait(caplog):
    """``TransportNetwork.recv`` notices that the transport's task ended with an exception
    (here a stand-in future) and raises instead of waiting out its timeout."""
    net = object.__new__(TransportNetwork)
    net.node_id, net.n = 2, 4
    net._q = queue.Queue()
    net._out, net._out_lock = [], threading.Lock()  # no sends queued
    fut: concurrent.futures.Future = concurrent.futures.Future()
    fut.set_exception(OSError("address in use"))
    net._future = fut
    caplog.set_level(logging.ERROR, logger="learning.optim")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="node 2: the transport stopped"):
        net.recv(30.0)
    assert time.monotonic() - t0 < 5.0
    assert any("transport stopped" in r.getMessage() for r in caplog.records)
    net._future = None  # no transport task yet: a plain timeout
    assert net.recv(0.05) is None
