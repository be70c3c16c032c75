"""LEARN's method: the agreement layer run on the gradients (``T_t`` rounds) and on the
parameters, at the round or the message level (docs/theory.md §2, §6).

``ĝ = AvgAgree_{T_t}(g)``, descend, ``θ <- AvgAgree_{param_rounds}(θ)``; with a C-averaging
agreement ``||∇L̄(θ̄)|| <= (1+δ)·C·K`` (docs/theory.md §6). :class:`Agreement` is one kind of
round (gradients or parameters) with its engine and its counters; :func:`calibrate_round`
measures what one round-level round stands for on the wire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agreement import get_config
from agreement.adversary import ValueAttack
from agreement.engine import RoundEngine
from agreement.protocol import check_resilience
from agreement.rules import make_rule

from ..attacks import AttackHook, ValueAttackHook
from .base import Method, Setup, StepInput, Traffic, protocol_strategies, register_method


@register_method
class Learn(Method):
    """LEARN: ``ĝ = AvgAgree_{T_t}(g)``, descend, ``θ <- AvgAgree_{param_rounds}(θ)``; needs
    the protocol's resilience (:func:`agreement.protocol.check_resilience`) unless unsafe."""

    name = "learn"
    agreement = True
    rule = "the agreement protocol"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        cfg = setup.cfg
        check_resilience(cfg.protocol, cfg.n, cfg.f, unsafe=cfg.unsafe)
        self.agree_g = Agreement(setup, setup.hooks[0], salt=0)
        self.agree_p = Agreement(setup, setup.hooks[1], salt=1)
        self.round_times: list[tuple[int, float]] = []
        """Per step: ``(agreement rounds, their wall time in seconds)``, gradient and
        parameter rounds together (the attack's computation included)."""

    def step(self, s: StepInput) -> torch.Tensor:
        cfg = self.setup.cfg
        self.gradient_rounds.append(cfg.rounds_at(s.t, s.sent.shape[1]))
        t0 = time.perf_counter()
        ghat = self.agree_g(s.sent, s.own, self.gradient_rounds[-1])
        spent = time.perf_counter() - t0
        new = s.descend(ghat)
        if cfg.param_rounds:
            t0 = time.perf_counter()
            new = self.agree_p(new, s.mean - s.lr * s.own, cfg.param_rounds)
            spent += time.perf_counter() - t0
        self.round_times.append((self.gradient_rounds[-1] + cfg.param_rounds, spent))
        return new

    def round_time(self, skip: int = 5) -> float | None:
        """Mean wall time of one agreement round (seconds): the rounds' time over their
        count, the first ``skip`` steps left out when more than ``2·skip`` ran (as
        ``TrainResult.step_time``); ``None`` before any round."""
        rows = self.round_times[skip:] if len(self.round_times) > 2 * skip else self.round_times
        rounds = sum(r for r, _ in rows)
        return sum(t for _, t in rows) / rounds if rounds else None

    def traffic(self, d: int, itemsize: int) -> Traffic:
        cfg, g, p = self.setup.cfg, self.agree_g, self.agree_p
        rounds = g.rounds + p.rounds
        if cfg.engine == "message":
            return Traffic(g.messages + p.messages, g.bytes + p.bytes,
                           "measured (message engine)", g.faults + p.faults, rounds)
        m1, b1 = calibrate_round(cfg.n, cfg.f, d, cfg.protocol, cfg.dtype, cfg.unsafe)
        return Traffic(m1 * rounds, b1 * rounds,
                       "rounds x one measured message-level round (Byzantine ids honest)",
                       rounds=rounds)


_CALIBRATION: dict[tuple[int, int, int, str, str], tuple[int, int]] = {}


def calibrate_round(n: int, f: int, d: int, protocol: str, dtype: str = "float32",
                    unsafe: bool = False) -> tuple[int, int]:
    """Messages and bytes of ONE message-level round of ``protocol`` at ``(n, f, d)``
    (reliable broadcast + witnesses, Byzantine ids behaving honestly, random scheduler, codec
    on): what a round-level round stands for on the wire."""
    from agreement import run

    key = (n, f, d, protocol, dtype)
    if key not in _CALIBRATION:
        x = np.random.default_rng(0).standard_normal((n, d)).astype(dtype)
        res = run(x, f=f, protocol=protocol, rounds=1, engine="message", strategy="honest",
                  scheduler="random", seed=0, unsafe=unsafe)
        _CALIBRATION[key] = (res.messages, res.bytes)
    return _CALIBRATION[key]


@dataclass
class Agreement:
    """AvgAgree over the honest rows, at the round or the message level, with the Byzantine
    vectors of one kind of round (``hook`` for learning attacks); counts what it ran."""

    setup: Setup
    hook: AttackHook | ValueAttackHook | None
    salt: int
    messages: int = 0
    bytes: int = 0
    faults: int = 0
    rounds: int = 0
    calls: int = 0
    engine: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        cfg = self.setup.cfg
        conf = get_config(cfg.protocol)
        if isinstance(self.hook, AttackHook):
            # the line-searched attacks search against the protocol's rule on one view;
            # reliable broadcast delivers one value per Byzantine node (receivers stays off)
            self.hook.rule = make_rule(conf.rule, cfg.f)
        if cfg.engine != "round":
            return
        if cfg.attack == "dissensus":
            attack: Any = "omniscient"
        elif cfg.attack == "none" or not self.setup.byz_ids:
            attack = "silent"
        else:
            attack = self.hook
        views = "omniscient" if cfg.attack == "dissensus" else cfg.views
        rule = make_rule(conf.rule, cfg.f)
        self.engine = RoundEngine(
            cfg.n, cfg.f, rule, gather=conf.gather, attack=attack,
            views=views, byzantine_ids=self.setup.byz_ids, seed=cfg.seed * 7919 + self.salt,
            attack_params={"scale": cfg.attack_params["scale"]}
            if cfg.attack == "dissensus" and "scale" in cfg.attack_params else None,
        )

    def __call__(self, honest: torch.Tensor, own: torch.Tensor, rounds: int) -> torch.Tensor:
        self.rounds += rounds
        self.calls += 1
        if self.hook is not None:
            self.hook.own = own
        if self.engine is not None:
            x = honest
            for _ in range(rounds):
                x, _ = self.engine.step(x)
            return x
        return self._message(honest, own, rounds)

    def _message(self, honest: torch.Tensor, own: torch.Tensor, rounds: int) -> torch.Tensor:
        from agreement import run

        from ..adversary import LearningValueAttack

        cfg, byz_ids = self.setup.cfg, self.setup.byz_ids
        x = np.empty((cfg.n, honest.shape[1]),
                     dtype=np.float64 if honest.dtype == torch.float64 else np.float32)
        x[self.setup.honest_ids] = honest.detach().cpu().numpy()
        if byz_ids:
            x[byz_ids] = own.detach().cpu().numpy()
        scheduler = "random"
        if cfg.attack == "none":
            byz: Any = "silent"
        elif cfg.attack == "dissensus":
            byz, scheduler = "omniscient", "targeted"
        elif isinstance(self.hook, ValueAttackHook):
            byz = ValueAttack(self.hook.fn, **self.hook.params)
        elif cfg.attack in protocol_strategies():
            byz = cfg.attack
        else:
            byz = LearningValueAttack(self.hook, honest.device, honest.dtype)
        res = run(x, f=cfg.f, protocol=cfg.protocol, rounds=rounds, strategy=byz,
                  byzantine_ids=byz_ids, scheduler=scheduler,
                  seed=(cfg.seed * 1_000_003 + self.calls * 2 + self.salt) % 2**31,
                  engine="message", unsafe=cfg.unsafe)
        self.messages += res.messages
        self.bytes += res.bytes
        self.faults += sum(res.faults.values())
        return torch.as_tensor(res.outputs, dtype=honest.dtype, device=honest.device)


__all__ = ["Agreement", "Learn", "calibrate_round"]
