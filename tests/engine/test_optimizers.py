"""Optimizers and clipping: torch.optim agreement, exact resume, validation messages."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest

from bplab.backend import get_backend, to_host
from bplab.clipping import clip_grad_norm_, clip_grad_value_
from bplab.errors import ConfigError
from bplab.layers.base import Parameter
from bplab.optimizers import OPTIMIZERS, make_optimizer
from bplab.schedules import make_schedule

SHAPES = {"fc.weight": (3, 4), "fc.bias": (3,), "out.weight": (2, 3)}

# bplab spec, torch class name (None: compared with a hand-written reference)
OPT_CASES = [
    ({"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
     "SGD"),
    ({"type": "sgd", "lr": 0.05, "momentum": 0.8, "dampening": 0.3, "maximize": True}, "SGD"),
    ({"type": "adagrad", "lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.02,
      "initial_accumulator_value": 0.1, "eps": 1e-8}, "Adagrad"),
    ({"type": "rmsprop", "lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True,
      "weight_decay": 0.01, "eps": 1e-6}, "RMSprop"),
    ({"type": "adam", "lr": 0.02, "betas": (0.8, 0.99), "amsgrad": True,
      "weight_decay": 0.05, "eps": 1e-7}, "Adam"),
    ({"type": "adamw", "lr": 0.02, "betas": (0.85, 0.995), "weight_decay": 0.1}, "AdamW"),
    ({"type": "nadam", "lr": 0.01, "weight_decay": 0.02, "momentum_decay": 5e-3}, "NAdam"),
    ({"type": "nadam", "lr": 0.01, "weight_decay": 0.02, "decoupled_weight_decay": True,
      "maximize": True}, "NAdam"),
    ({"type": "lion", "lr": 3e-3, "betas": (0.85, 0.98), "weight_decay": 0.1}, None),
]
OPT_IDS = [f"{s['type']}{i}" for i, (s, _) in enumerate(OPT_CASES)]

# (schedule spec or None, clipping): variants run for every optimizer
VARIANTS = {
    "plain": (None, None),
    "cosine+norm": ({"type": "cosine", "T_max": 40, "eta_min": 1e-4, "interval": "step"},
                    ("norm", 1.5)),
    "step+value": ({"type": "step", "step_size": 15, "gamma": 0.5, "interval": "step"},
                   ("value", 0.4)),
    "onecycle+inf": ({"type": "one_cycle", "max_lr": 0.03, "total_steps": 101,
                      "interval": "step"}, ("inf", 0.7)),
}


def _init(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in SHAPES.items()}


def _grads(params: dict, step: int) -> dict:
    """Fixed synthetic gradients: a quadratic pull plus a step-dependent term, computed on
    the host from each side's own current parameters. On every 7th step out.weight gets no
    gradient (torch: grad None), so skipping is compared too."""
    out = {}
    for k, (name, p) in enumerate(params.items()):
        if name == "out.weight" and step % 7 == 3:
            continue
        idx = np.arange(p.size).reshape(p.shape)
        out[name] = 0.8 * p + np.sin(0.37 * (step + 1) * (idx + 1) + k) * (1 + step % 3)
    return out


def _torch_clip(torch, tparams, clip):
    kind, value = clip
    if kind == "value":
        torch.nn.utils.clip_grad_value_(tparams, value)
    else:
        norm = math.inf if kind == "inf" else 2.0
        torch.nn.utils.clip_grad_norm_(tparams, value, norm)


def _clip(params, clip):
    kind, value = clip
    if kind == "value":
        clip_grad_value_(params, value)
    else:
        clip_grad_norm_(params, value, math.inf if kind == "inf" else 2.0)


def run_bplab(spec, steps, variant=(None, None), backend="numpy", dtype="float64",
              params=None, opt_state=None, sched_state=None, start=0):
    xp = get_backend(backend).xp
    init = params if params is not None else _init()
    named = [(n, Parameter(n, xp.asarray(v, dtype=dtype))) for n, v in init.items()]
    opt = make_optimizer(spec, named)
    sched_spec, clip = variant
    sched = make_schedule(sched_spec, opt, 10, 100) if sched_spec else None
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    if sched_state is not None:
        sched.load_state_dict(sched_state)
    for step in range(start, start + steps):
        opt.zero_grad()
        host = {n: to_host(p.data).astype(np.float64) for n, p in named}
        for n, g in _grads(host, step).items():
            dict(named)[n].add_grad(xp.asarray(g, dtype=dtype))
        if clip:
            _clip(named, clip)
        opt.step()
        if sched:
            sched.batch_end()
    return {n: to_host(p.data).copy() for n, p in named}, opt, sched


def run_torch(torch, cls_name, spec, steps, variant=(None, None)):
    tparams = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True)
               for n, v in _init().items()}
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    opt = getattr(torch.optim, cls_name)(list(tparams.values()), **kwargs)
    sched_spec, clip = variant
    sched = None
    if sched_spec:
        lrs = torch.optim.lr_scheduler
        kind = sched_spec["type"]
        if kind == "cosine":
            sched = lrs.CosineAnnealingLR(opt, sched_spec["T_max"], sched_spec["eta_min"])
        elif kind == "step":
            sched = lrs.StepLR(opt, sched_spec["step_size"], sched_spec["gamma"])
        else:
            sched = lrs.OneCycleLR(opt, sched_spec["max_lr"], sched_spec["total_steps"],
                                   cycle_momentum=sched_spec.get("cycle_momentum", False),
                                   base_momentum=sched_spec.get("base_momentum", 0.85),
                                   max_momentum=sched_spec.get("max_momentum", 0.95))
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        host = {n: p.detach().numpy().copy() for n, p in tparams.items()}
        for n, g in _grads(host, step).items():
            tparams[n].grad = torch.tensor(g)
        if clip:
            _torch_clip(torch, [p for p in tparams.values() if p.grad is not None], clip)
        opt.step()
        if sched:
            sched.step()
    return {n: p.detach().numpy() for n, p in tparams.items()}


def lion_reference(spec, steps, variant):
    """The Lion paper's rule (Chen et al. 2023, Algorithm 2), written out plainly."""
    lr0, (b1, b2), wd = spec["lr"], spec["betas"], spec["weight_decay"]
    sched_spec, clip = variant
    params = _init()
    m = {n: np.zeros_like(p) for n, p in params.items()}
    for step in range(steps):
        lr = _reference_lr(sched_spec, lr0, step)
        grads = _grads(params, step)
        if clip:
            kind, value = clip
            if kind == "value":
                grads = {n: np.clip(g, -value, value) for n, g in grads.items()}
            else:
                flat = np.concatenate([g.ravel() for g in grads.values()])
                total = np.abs(flat).max() if kind == "inf" else np.sqrt((flat**2).sum())
                coef = min(value / (total + 1e-6), 1.0)
                grads = {n: g * coef for n, g in grads.items()}
        for n, g in grads.items():
            c = b1 * m[n] + (1 - b1) * g
            params[n] = params[n] * (1 - lr * wd) - lr * np.sign(c)
            m[n] = b2 * m[n] + (1 - b2) * g
    return params


def _reference_lr(sched_spec, lr0, step):
    """Closed forms of the schedules above, for the Lion reference."""
    if sched_spec is None:
        return lr0
    kind = sched_spec["type"]
    if kind == "cosine":
        eta, t_max = sched_spec["eta_min"], sched_spec["T_max"]
        return eta + (lr0 - eta) * (1 + math.cos(math.pi * step / t_max)) / 2
    if kind == "step":
        return lr0 * sched_spec["gamma"] ** (step // sched_spec["step_size"])
    max_lr, n = sched_spec["max_lr"], sched_spec["total_steps"]
    initial, end_up = max_lr / 25.0, 0.3 * n - 1
    if step <= end_up:
        pct, start, end = step / end_up, initial, max_lr
    else:
        pct, start, end = (step - end_up) / (n - 1 - end_up), max_lr, initial / 1e4
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


@pytest.fixture
def torch64():
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    # torch keeps NAdam's mu_product in the default dtype: float64 makes it comparable
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def _assert_close(ours, ref, rtol=1e-8):
    for name in ref:
        scale = np.abs(ref[name]).max()
        err = np.abs(ours[name] - ref[name]).max() / scale
        assert err < rtol, f"{name}: relative error {err:.2e}"


def test_every_optimizer_is_covered():
    assert {s["type"] for s, _ in OPT_CASES} == set(OPTIMIZERS)


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
@pytest.mark.parametrize("case", OPT_CASES, ids=OPT_IDS)
def test_100_steps_agree_with_torch(case, variant, torch64):
    spec, torch_name = case
    ours, _, _ = run_bplab(spec, 100, VARIANTS[variant])
    if torch_name is None:
        assert not hasattr(torch64.optim, "Lion")  # compare with torch once it has one
        ref = lion_reference(spec, 100, VARIANTS[variant])
    else:
        ref = run_torch(torch64, torch_name, spec, 100, VARIANTS[variant])
    moved = max(np.abs(ref[n] - v).max() for n, v in _init().items())
    assert moved > 1e-2  # the comparison is not between two untouched copies
    _assert_close(ours, ref)


MOMENTUM_CASES = [(c, i) for c, i in zip(OPT_CASES, OPT_IDS)
                  if c[1] in ("SGD", "RMSprop", "Adam", "AdamW", "NAdam")]


@pytest.mark.parametrize("case", [c for c, _ in MOMENTUM_CASES],
                         ids=[i for _, i in MOMENTUM_CASES])
def test_one_cycle_cycling_momentum_agrees_with_torch(case, torch64):
    """One-cycle with cycle_momentum moves momentum (SGD, RMSprop) or beta1 (Adam family)
    against the lr, as torch does; 100 steps of each optimizer end at torch's weights."""
    spec, torch_name = case
    variant = ({"type": "one_cycle", "max_lr": 0.03, "total_steps": 101, "interval": "step",
                "cycle_momentum": True, "base_momentum": 0.7, "max_momentum": 0.93}, None)
    ours, opt, _ = run_bplab(spec, 100, variant)
    ref = run_torch(torch64, torch_name, spec, 100, variant)
    _assert_close(ours, ref)
    # without the cycling the weights differ: the momentum did change the run
    plain, _, _ = run_bplab(spec, 100, ({**variant[0], "cycle_momentum": False}, None))
    assert max(np.abs(plain[n] - ref[n]).max() for n in ref) > 1e-6


def test_one_cycle_cycling_momentum_needs_a_momentum():
    with pytest.raises(ConfigError, match="Adagrad has neither"):
        make_schedule({"type": "one_cycle", "max_lr": 0.1, "total_steps": 10,
                       "cycle_momentum": True}, make_optimizer({"type": "adagrad"}, []))
    with pytest.raises(ConfigError, match="base_momentum must not exceed max_momentum"):
        make_schedule({"type": "one_cycle", "max_lr": 0.1, "total_steps": 10,
                       "cycle_momentum": True, "base_momentum": 0.99},
                      make_optimizer({"type": "sgd"}, []))


@pytest.mark.parametrize("case", OPT_CASES, ids=OPT_IDS)
def test_defaults_match_torch(case):
    torch = pytest.importorskip("torch")
    spec, torch_name = case
    ours = OPTIMIZERS[spec["type"]].defaults()
    if torch_name is None:
        assert (ours["lr"], ours["betas"], ours["weight_decay"]) == (1e-4, (0.9, 0.99), 0.0)
        return
    theirs = getattr(torch.optim, torch_name)([torch.zeros(1, requires_grad=True)]).defaults
    for key, value in ours.items():
        assert theirs[key] == value, key


@pytest.mark.parametrize("variant", ["plain", "cosine+norm"])
@pytest.mark.parametrize("case", OPT_CASES, ids=OPT_IDS)
def test_resume_from_state_dict_is_bit_identical(case, variant, backend_name):
    spec = case[0]
    v = VARIANTS[variant]
    straight, _, _ = run_bplab(spec, 12, v, backend=backend_name)
    first, opt, sched = run_bplab(spec, 5, v, backend=backend_name)
    opt_state = opt.state_dict()
    sched_state = sched.state_dict() if sched else None
    saved = copy.deepcopy(opt_state)
    # host arrays only, and a snapshot: stepping on does not change what was saved
    for st in opt_state["state"].values():
        for value in st.values():
            assert value is None or isinstance(value, (int, float, np.ndarray))
    opt.step()
    for name, st in saved["state"].items():
        for key, value in st.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(opt_state["state"][name][key], value)
    resumed, opt2, _ = run_bplab(spec, 7, v, backend=backend_name, params=first,
                                 opt_state=opt_state, sched_state=sched_state, start=5)
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name])
    assert opt2.lr == run_bplab(spec, 12, v)[1].lr


@pytest.mark.parametrize("case", OPT_CASES, ids=OPT_IDS)
def test_float32_stays_float32(case, backend_name):
    ours, opt, _ = run_bplab(case[0], 3, backend=backend_name, dtype="float32")
    assert all(v.dtype == np.float32 for v in ours.values())
    for st in opt.state_dict()["state"].values():
        for value in st.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


def test_parameters_without_grad_are_skipped_and_get_no_state():
    a, b = Parameter("a", np.ones(3)), Parameter("b", np.ones(2))
    opt = make_optimizer({"type": "adam", "lr": 0.1, "weight_decay": 0.5}, [("a", a), ("b", b)])
    a.add_grad(np.ones(3))
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert not np.allclose(a.data, 1.0)
    assert set(opt.state) == {"a"}
    opt.zero_grad()
    assert not a.has_grad


def test_grad_is_left_untouched_by_the_step():
    p = Parameter("w", np.ones(4))
    g = np.arange(4.0)
    p.add_grad(g)
    make_optimizer({"type": "sgd", "lr": 0.1, "weight_decay": 0.3, "maximize": True},
                   [("w", p)]).step()
    np.testing.assert_array_equal(p.grad, g)


def test_lr_is_readable_and_settable_live():
    p = Parameter("w", np.zeros(2))
    opt = make_optimizer({"type": "sgd", "lr": 0.1}, [("w", p)])
    opt.lr = 1.0
    p.add_grad(np.array([1.0, -2.0]))
    opt.step()
    np.testing.assert_array_equal(p.data, [-1.0, 2.0])
    assert opt.hyper["lr"] == 1.0
    with pytest.raises(ConfigError, match=r"lr=-0\.5"):
        opt.lr = -0.5


def test_load_state_dict_reports_parameters_that_do_not_fit():
    p = Parameter("w", np.zeros(3))
    opt = make_optimizer("adam", [("w", p)])
    p.add_grad(np.ones(3))
    opt.step()
    state = opt.state_dict()
    other = make_optimizer("adam", [("v", Parameter("v", np.zeros(3)))])
    with pytest.raises(ConfigError, match="unexpected w"):
        other.load_state_dict(state)
    small = make_optimizer("adam", [("w", Parameter("w", np.zeros(2)))])
    with pytest.raises(ConfigError, match="wrong shape w"):
        small.load_state_dict(state)
    with pytest.raises(ConfigError, match="'adam'"):
        make_optimizer("sgd", [("w", p)]).load_state_dict(state)


@pytest.mark.parametrize("spec, message", [
    ({"type": "adam", "lr": -0.1}, "Adam: lr must be >= 0, received lr=-0.1"),
    ({"type": "adam", "betas": (0.9, 1.0)}, "betas=(0.9, 1.0)"),
    ({"type": "nadam", "betas": [-0.1, 0.9]}, "betas=[-0.1, 0.9]"),
    ({"type": "adamw", "eps": -1e-8}, "eps=-1e-08"),
    ({"type": "sgd", "momentum": -0.5}, "SGD: momentum must be >= 0, received momentum=-0.5"),
    ({"type": "sgd", "lr": 0.1, "nesterov": True},
     "Nesterov momentum requires a momentum and zero dampening"),
    ({"type": "sgd", "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "dampening=0.1"),
    ({"type": "rmsprop", "alpha": 1.5}, "alpha=1.5"),
    ({"type": "adagrad", "lr_decay": -1}, "lr_decay=-1"),
    ({"type": "rmsprop", "centered": "yes"}, "centered='yes'"),
    ({"type": "lion", "weight_decay": float("nan")}, "weight_decay=nan"),
    ({"type": "adam", "momentum": 0.9}, "unknown hyper-parameter 'momentum'"),
    ({"type": "adamax"}, "unknown optimizer 'adamax'"),
])
def test_validation_messages_quote_the_bad_value(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_optimizer(spec, [])


def test_every_optimizer_describes_its_hyper_parameters():
    for cls in OPTIMIZERS.values():
        assert cls.__doc__ and "<-" in cls.__doc__  # the update rule
        assert cls.options[0].name == "lr"
        for opt in cls.options:
            assert opt.doc and not opt.required


# -- clipping ----------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, backend_name, rng):
    torch = pytest.importorskip("torch")
    xp = get_backend(backend_name).xp
    grads = [rng.normal(size=s) for s in [(3, 4), (4,), (2, 2)]]
    params = [Parameter(f"p{i}", xp.zeros(g.shape)) for i, g in enumerate(grads)]
    for p, g in zip(params, grads):
        p.add_grad(xp.asarray(g))
    skipped = Parameter("skipped", xp.zeros(3))  # a stale buffer that must not count
    skipped.grad[...] = 100.0
    total = clip_grad_norm_([*params, skipped], max_norm, norm_type)
    tps = [torch.zeros(g.shape, dtype=torch.float64) for g in grads]
    for t, g in zip(tps, grads):
        t.grad = torch.tensor(g)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert type(total).__module__.split(".")[0] == xp.__name__ and total.shape == ()
    assert float(total) == pytest.approx(ttotal.item(), rel=1e-12)
    for p, t in zip(params, tps):
        np.testing.assert_allclose(to_host(p.grad), t.grad.numpy(), rtol=1e-12)
    assert float(skipped.grad[0]) == 100.0


def test_clip_grad_value_matches_torch_and_accepts_named_params(rng):
    torch = pytest.importorskip("torch")
    g = rng.normal(size=(5, 3))
    p = Parameter("w", np.zeros((5, 3)))
    p.add_grad(g)
    clip_grad_value_([("w", p)], 0.3)
    t = torch.zeros(5, 3, dtype=torch.float64)
    t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_([t], 0.3)
    np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_clipping_keeps_float32_and_rejects_bad_values():
    p = Parameter("w", np.zeros(3, np.float32))
    p.add_grad(np.array([3, 4, 0], np.float32))
    total = clip_grad_norm_([p], 1.0)
    assert total.dtype == np.float32 and p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, [0.6, 0.8, 0.0], rtol=1e-6)
    with pytest.raises(ConfigError, match="max_norm=-1.0"):
        clip_grad_norm_([p], -1.0)
    with pytest.raises(ConfigError, match="norm_type=0.0"):
        clip_grad_norm_([p], 1.0, 0)
    with pytest.raises(ConfigError, match="clip_value=-0.1"):
        clip_grad_value_([p], -0.1)
    assert float(clip_grad_norm_([], 1.0)) == 0.0
