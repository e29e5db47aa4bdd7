"""Learning-rate schedules: torch.optim.lr_scheduler agreement, intervals, resume, messages."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from bplab.errors import ConfigError
from bplab.optimizers import make_optimizer
from bplab.schedules import SCHEDULES, make_schedule

LR = 0.3

# bplab spec, torch scheduler builder, number of steps compared
CASES = [
    ({"type": "step", "step_size": 3, "gamma": 0.5},
     lambda L, o: L.StepLR(o, 3, 0.5), 25),
    ({"type": "multi_step", "milestones": [2, 5, 5, 9], "gamma": 0.3},
     lambda L, o: L.MultiStepLR(o, [2, 5, 5, 9], 0.3), 25),
    ({"type": "exponential", "gamma": 0.9}, lambda L, o: L.ExponentialLR(o, 0.9), 25),
    ({"type": "cosine", "T_max": 7, "eta_min": 0.01},
     lambda L, o: L.CosineAnnealingLR(o, 7, 0.01), 30),
    ({"type": "warmup", "warmup_steps": 6, "start_factor": 0.1},
     lambda L, o: L.LinearLR(o, 0.1, 1.0, 6), 12),
    ({"type": "warmup", "total_iters": 6, "start_factor": 0.2, "end_factor": 0.5},
     lambda L, o: L.LinearLR(o, 0.2, 0.5, 6), 12),
    ({"type": "one_cycle", "max_lr": 1.0, "total_steps": 30},
     lambda L, o: L.OneCycleLR(o, 1.0, 30, cycle_momentum=False), 29),
    ({"type": "one_cycle", "max_lr": 1.0, "total_steps": 40, "three_phase": True,
      "anneal_strategy": "linear", "pct_start": 0.25, "div_factor": 10.0,
      "final_div_factor": 100.0},
     lambda L, o: L.OneCycleLR(o, 1.0, 40, cycle_momentum=False, three_phase=True,
                               anneal_strategy="linear", pct_start=0.25, div_factor=10.0,
                               final_div_factor=100.0), 39),
]
IDS = [f"{c[0]['type']}{i}" for i, c in enumerate(CASES)]


def _sgd(lr=LR):
    return make_optimizer({"type": "sgd", "lr": lr}, [])


def _torch_lrs(torch, build, steps, metrics=None):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR)
    sched = build(torch.optim.lr_scheduler, opt)
    lrs = [opt.param_groups[0]["lr"]]
    for i in range(steps):
        opt.step()
        sched.step(*([] if metrics is None else [metrics[i]]))
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_every_schedule_is_covered():
    assert {c[0]["type"] for c in CASES} | {"reduce_on_plateau"} == set(SCHEDULES)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_learning_rates_agree_with_torch(case):
    torch = pytest.importorskip("torch")
    spec, build, steps = case
    opt = _sgd()
    sched = make_schedule(spec, opt)
    ours = [opt.lr]
    for _ in range(steps):
        sched.step()
        ours.append(opt.lr)
        assert sched.get_last_lr() == opt.lr
    theirs = _torch_lrs(torch, build, steps)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert len(set(np.round(ours, 12))) > 2  # the schedule did move


@pytest.mark.parametrize("kw", [
    {},
    {"mode": "max", "patience": 2, "cooldown": 2, "threshold_mode": "abs", "threshold": 0.01,
     "factor": 0.5, "min_lr": 0.01},
    {"patience": 0, "threshold": 0.0, "eps": 0.05, "factor": 0.5},
], ids=["defaults", "max-abs-cooldown", "eps"])
def test_reduce_on_plateau_agrees_with_torch(kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    metrics = [float(rng.normal(scale=0.3) + (5 - i * 0.1 if i < 25 else 2.5))
               for i in range(80)]
    opt = _sgd()
    sched = make_schedule({"type": "reduce_on_plateau", **kw}, opt)
    ours = [opt.lr]
    for m in metrics:
        sched.epoch_end(m)
        ours.append(opt.lr)
    theirs = _torch_lrs(torch, lambda L, o: L.ReduceLROnPlateau(o, **kw), 80, metrics)
    assert ours == theirs
    assert ours[-1] < LR


def test_cosine_follows_the_closed_form_past_t_max():
    opt = _sgd()
    sched = make_schedule({"type": "cosine", "T_max": 7, "eta_min": 0.01}, opt)
    for t in range(1, 40):
        sched.step()
        closed = 0.01 + (LR - 0.01) * (1 + math.cos(math.pi * t / 7)) / 2
        assert opt.lr == pytest.approx(closed, rel=1e-8, abs=1e-15)


def test_lengths_default_to_the_run_in_the_schedule_interval():
    opt = _sgd()
    sched = make_schedule({"type": "cosine", "interval": "epoch"}, opt, steps_per_epoch=10,
                          total_steps=95)
    assert sched.T_max == 10  # 95 batches = 10 epochs (the last one short)
    for _ in range(10):
        sched.epoch_end()
    assert opt.lr == pytest.approx(0.0, abs=1e-15)
    cyc = make_schedule({"type": "one_cycle", "max_lr": 0.5}, _sgd(), 10, 95)
    assert cyc.interval == "step" and cyc.total_steps == 95
    with pytest.raises(ConfigError, match="T_max is required"):
        make_schedule("cosine", _sgd())


def test_batch_end_and_epoch_end_step_only_in_their_interval():
    opt = _sgd()
    sched = make_schedule({"type": "exponential", "gamma": 0.5, "interval": "epoch"}, opt)
    sched.batch_end()
    assert opt.lr == LR
    sched.epoch_end()
    assert opt.lr == LR * 0.5
    per_batch = make_schedule({"type": "exponential", "gamma": 0.5, "interval": "step"},
                              opt)
    per_batch.epoch_end()
    assert opt.lr == LR * 0.5
    per_batch.batch_end()
    assert opt.lr == LR * 0.25


def test_a_live_lr_change_is_carried_on_as_in_torch():
    torch = pytest.importorskip("torch")
    opt = _sgd()
    sched = make_schedule({"type": "step", "step_size": 2, "gamma": 0.5}, opt)
    p = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([p], lr=LR)
    tsched = torch.optim.lr_scheduler.StepLR(topt, 2, 0.5)
    for i in range(7):
        if i == 3:
            opt.lr = 0.05
            topt.param_groups[0]["lr"] = 0.05
        sched.step()
        topt.step()
        tsched.step()
        assert opt.lr == topt.param_groups[0]["lr"]


def test_one_cycle_holds_its_final_lr_after_the_cycle():
    opt = _sgd()
    sched = make_schedule({"type": "one_cycle", "max_lr": 1.0, "total_steps": 10,
                           "anneal_strategy": "linear"}, opt)
    assert opt.lr == pytest.approx(1.0 / 25)
    for _ in range(15):
        sched.step()
        assert opt.lr >= 0
    assert opt.lr == pytest.approx(1.0 / 25 / 1e4)


def test_warmup_then_hands_over_to_another_schedule():
    opt = _sgd()
    sched = make_schedule({"type": "warmup", "warmup_steps": 4, "start_factor": 0.25,
                           "then": {"type": "cosine", "eta_min": 0.0}}, opt, 1, 14)
    lrs = [opt.lr]
    for _ in range(14):
        sched.batch_end()
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs[:5], [LR * f for f in (0.25, 0.4375, 0.625, 0.8125, 1.0)])
    # then a cosine over the remaining 10 steps, from the lr reached
    for t in range(11):
        assert lrs[4 + t] == pytest.approx(LR * (1 + math.cos(math.pi * t / 10)) / 2,
                                           abs=1e-12)


@pytest.mark.parametrize("spec", [
    {"type": "cosine", "T_max": 9, "eta_min": 0.02},
    {"type": "multi_step", "milestones": [3, 6]},
    {"type": "one_cycle", "max_lr": 0.9, "total_steps": 20},
    {"type": "warmup", "warmup_steps": 3, "then": {"type": "exponential", "gamma": 0.8}},
    {"type": "reduce_on_plateau", "patience": 1, "factor": 0.5},
], ids=lambda s: s["type"])
def test_resume_from_state_dict(spec):
    metrics = [1.0, 0.9, 0.95, 0.97, 0.99, 0.96, 0.98, 0.99, 1.0, 1.1, 1.2, 1.3]

    def advance(sched, start, n):
        for i in range(start, start + n):
            sched.step(metrics[i]) if sched.needs_metric else sched.step()

    opt = _sgd()
    straight = make_schedule(spec, opt)
    advance(straight, 0, 12)

    opt1 = _sgd()
    first = make_schedule(spec, opt1)
    advance(first, 0, 5)
    saved = json.loads(json.dumps(first.state_dict()))  # survives a project file
    opt2 = _sgd()
    opt2.load_state_dict(opt1.state_dict())
    resumed = make_schedule(spec, opt2)  # building takes a step: loading must undo it
    resumed.load_state_dict(saved)
    assert opt2.lr == opt1.lr
    advance(resumed, 5, 7)
    assert opt2.lr == opt.lr and resumed.get_last_lr() == straight.get_last_lr()


@pytest.mark.parametrize("spec, message", [
    ({"type": "step", "step_size": 0}, "step_size=0"),
    ({"type": "step"}, "step_size is required"),
    ({"type": "exponential", "gamma": -0.5}, "gamma=-0.5"),
    ({"type": "cosine", "T_max": 5, "eta_min": -1}, "eta_min=-1"),
    ({"type": "warmup", "start_factor": 0.0}, "start_factor=0.0"),
    ({"type": "warmup", "total_iters": 3, "warmup_steps": 4}, "total_iters=3, warmup_steps=4"),
    ({"type": "reduce_on_plateau", "factor": 1.0}, "factor=1.0"),
    ({"type": "reduce_on_plateau", "mode": "up"}, "mode='up'"),
    ({"type": "one_cycle", "total_steps": 10, "pct_start": 1.5}, "pct_start=1.5"),
    ({"type": "multi_step", "milestones": [2, -1]}, "milestones=[2, -1]"),
    ({"type": "step", "step_size": 2, "interval": "batch"}, "interval='batch'"),
    ({"type": "cosine", "T_max": 3, "warm": 1}, "unknown hyper-parameter 'warm'"),
    ({"type": "linear"}, "unknown schedule 'linear'"),
])
def test_validation_messages_quote_the_bad_value(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_schedule(spec, _sgd())


def test_plateau_needs_a_metric_and_ignores_batches():
    opt = _sgd()
    sched = make_schedule({"type": "reduce_on_plateau", "patience": 0}, opt)
    sched.batch_end()
    sched.epoch_end()  # no metric this epoch: nothing to judge
    assert sched.last_epoch == 0
    with pytest.raises(ConfigError, match="metric"):
        sched.step()


def test_no_schedule():
    assert make_schedule(None, _sgd()) is None


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("opt_spec, torch_cls, key", [
    ({"type": "sgd", "lr": 0.1, "momentum": 0.5}, "SGD", "momentum"),
    ({"type": "adam", "lr": 0.1, "betas": (0.9, 0.98)}, "Adam", "betas"),
])
def test_one_cycle_momentum_curve_matches_torch(opt_spec, torch_cls, key, three_phase):
    torch = pytest.importorskip("torch")
    cfg = {"max_lr": 1.0, "total_steps": 30, "cycle_momentum": True, "base_momentum": 0.8,
           "max_momentum": 0.9, "three_phase": three_phase,
           "anneal_strategy": "linear" if three_phase else "cos"}
    opt = make_optimizer(opt_spec, [])
    sched = make_schedule({"type": "one_cycle", **cfg}, opt)

    def momentum(h):
        return h[key][0] if key == "betas" else h[key]

    ours = [(opt.lr, momentum(opt.hyper))]
    for _ in range(29):
        sched.batch_end()
        ours.append((opt.lr, momentum(opt.hyper)))
    if key == "betas":
        assert opt.hyper["betas"][1] == 0.98  # beta2 is kept

    p = torch.zeros(1, requires_grad=True)
    kwargs = {k: v for k, v in opt_spec.items() if k != "type"}
    topt = getattr(torch.optim, torch_cls)([p], **kwargs)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **cfg)
    group = topt.param_groups[0]
    theirs = [(group["lr"], momentum(group))]
    for _ in range(29):
        topt.step()
        tsched.step()
        theirs.append((group["lr"], momentum(group)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert min(m for _, m in ours) == pytest.approx(0.8, abs=0.02)  # it did cycle
