"""The renamed keywords and attributes (README.md, "What changed in this release"): for one
release the old name still works, with a ``DeprecationWarning`` that names the new one; both
at once is a ``TypeError``; the new name never warns."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from broadcast import ReliableBroadcast
from netsim.deprecation import deprecated_alias, renamed_keywords
from netsim.sim.adversary import make_strategy
from netsim.sim.simulator import Simulator

N, F = 4, 1


def _factory(i, x):
    return ReliableBroadcast(i, N, F, value=x, expect=((0, 0, 0),))


def _sim(**kw) -> Simulator:
    return Simulator(N, F, _factory, {0: np.arange(3.0)}, seed=2, **kw)


def test_the_helper_maps_the_old_keyword_and_names_the_new_one():
    @renamed_keywords(old="new")
    def fn(*, new=0):
        return new

    with pytest.warns(DeprecationWarning, match=r"'old' is deprecated .* use 'new'") as rec:
        assert fn(old=5) == 5
    assert rec[0].filename == __file__  # the warning points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fn(new=6) == 6
    with pytest.raises(TypeError, match="give new= only"):
        fn(old=1, new=2)


def test_the_alias_reads_the_new_attribute_and_refuses_writes():
    class C:
        old = deprecated_alias("new")

        def __init__(self):
            self.new = 3

    c = C()
    with pytest.warns(DeprecationWarning, match=r"C: the attribute 'old' .* use 'new'"):
        assert c.old == 3
    with pytest.raises(AttributeError, match="set 'new'"):
        c.old = 4


def test_simulator_byzantine_keyword_is_byzantine_ids_with_a_warning():
    strat = dict(strategy=make_strategy("equivocate"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = _sim(byzantine_ids=(0,), **strat).run()
    with pytest.warns(DeprecationWarning, match=r"Simulator: .*'byzantine'.*'byzantine_ids'"):
        old = _sim(byzantine=(0,), **strat).run()
    assert new.byzantine_ids == old.byzantine_ids == (0,)
    digests = [[o.digest for o in r.outputs[i]] for r in (new, old) for i in r.honest]
    assert digests[: N - 1] == digests[N - 1:] and new.metrics.messages == old.metrics.messages
    with pytest.raises(TypeError, match="byzantine_ids= only"):
        _sim(byzantine=(0,), byzantine_ids=(0,))


def test_old_id_attributes_warn_and_agree():
    sim = _sim(byzantine_ids=(3,))
    res = sim.run()
    for obj in (sim, res, sim.context):
        with pytest.warns(DeprecationWarning, match="use 'byzantine_ids'"):
            assert obj.byzantine == obj.byzantine_ids == (3,)
    with pytest.warns(DeprecationWarning, match="only: .*'byzantine_ids'"):
        assert sim.context.only(byzantine=(3,)).byzantine_ids == (3,)
