"""Learning-rate schedules with torch.optim.lr_scheduler's semantics.

A schedule changes ``optimizer.lr`` each time :meth:`Schedule.step` is called, exactly as
the torch scheduler of the same name does per ``scheduler.step()``; like torch, building
one already takes the first step (epoch 0). The recursive (chainable) forms are used, so a
learning rate the user changes live is carried on from rather than overwritten.

``interval`` says what one step is: ``"epoch"`` or ``"step"`` (one batch). The training
loop calls :meth:`Schedule.batch_end` after every optimizer step and
:meth:`Schedule.epoch_end` after every epoch; each steps the schedule only when the
interval matches. Lengths left unset (``T_max``, one-cycle's ``total_steps``) default to
the run's length counted in that interval.

>>> from bplab.optimizers import make_optimizer
>>> opt = make_optimizer({"type": "sgd", "lr": 1.0}, [])
>>> sched = make_schedule({"type": "step", "step_size": 2, "gamma": 0.5}, opt)
>>> [(sched.epoch_end(), opt.lr)[1] for _ in range(4)]
[1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, ClassVar

from bplab.errors import ConfigError
from bplab.optimizers.base import Hyper, Optimizer, check_hyper
from bplab.specs import resolve_spec

__all__ = [
    "SCHEDULES",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LinearWarmup",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "Schedule",
    "StepLR",
    "make_schedule",
]

INTERVALS = ("epoch", "step")


class Schedule:
    """Base class: subclasses implement :meth:`get_lr` for ``self.last_epoch`` (0, 1, ...),
    reading the optimizer's current lr as torch's ``group["lr"]``.

    ``run_steps`` is the number of batches in the whole run (``make_schedule``'s
    ``total_steps``), ``steps_per_epoch`` converts it to epochs for ``interval="epoch"``.
    """

    type_name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    options: ClassVar[tuple[Hyper, ...]] = ()
    default_interval: ClassVar[str] = "epoch"
    summary: ClassVar[str] = ""
    needs_metric: ClassVar[bool] = False  # step(metric) wants a validation metric

    def __init__(self, optimizer: Optimizer, *, steps_per_epoch: int = 1,
                 run_steps: int | None = None, interval: str | None = None, **config: Any):
        interval = self.default_interval if interval is None else interval
        if interval not in INTERVALS:
            raise ConfigError(f"{self.label}: interval must be 'epoch' or 'step', received "
                              f"interval={interval!r}")
        self.interval = interval
        self.optimizer = optimizer
        self.config = check_hyper(self.label, self.options, config)
        self.check_config(self.config)
        # the run's length in this schedule's interval, or None when unknown
        self.run_length: int | None = None
        if run_steps is not None:
            per = 1 if interval == "step" else max(int(steps_per_epoch), 1)
            self.run_length = max(math.ceil(int(run_steps) / per), 1)
        self.base_lr = optimizer.lr  # torch's initial_lr
        self.last_epoch = -1
        self._last_lr = optimizer.lr
        self.setup()
        self.step()  # torch's _initial_step: epoch 0

    def check_config(self, config: dict[str, Any]) -> None:
        """Cross-checks between options."""

    def setup(self) -> None:
        """Resolve defaults that depend on the optimizer or the run (before epoch 0)."""

    def _length(self, name: str) -> int:
        value = self.config[name]
        if value is not None:
            return value
        if self.run_length is None:
            raise ConfigError(f"{self.label}: {name} is required when the run's length is "
                              "not known")
        return self.run_length

    # -- stepping ---------------------------------------------------------------------------
    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self, metric: Any = None) -> None:
        self.last_epoch += 1
        lr = self.get_lr()
        self.optimizer.lr = lr
        self._last_lr = self.optimizer.lr

    @property
    def base_lrs(self) -> list[float]:
        """torch's name: the lr the schedule started from, one per group (here one)."""
        return [self.base_lr]

    @base_lrs.setter
    def base_lrs(self, value: list[float]) -> None:
        self.base_lr = float(value[0])

    def get_last_lr(self) -> float:
        """The learning rate set by the last step (one parameter group: a float)."""
        return self._last_lr

    def batch_end(self) -> None:
        if self.interval == "step":
            self.step()

    def epoch_end(self, metric: Any = None) -> None:
        if self.interval == "epoch":
            self.step(metric)

    # -- saving and resuming -----------------------------------------------------------------
    _extra_state: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        d = {"type": self.type_name, "interval": self.interval, "last_epoch": self.last_epoch,
             "base_lr": self.base_lr, "last_lr": self._last_lr}
        d.update({k: getattr(self, k) for k in self._extra_state})
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore the position in the schedule, and the optimizer's lr with it (building a
        schedule takes a first step that changes the lr)."""
        if d.get("type") != self.type_name:
            raise ConfigError(f"{self.label}: cannot load the state of a {d.get('type')!r} "
                              "schedule")
        self.interval = d["interval"]
        self.last_epoch = int(d["last_epoch"])
        self.base_lr = float(d["base_lr"])
        self._last_lr = float(d["last_lr"])
        for k in self._extra_state:
            setattr(self, k, d[k])
        self.optimizer.lr = self._last_lr

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({cfg}, interval={self.interval!r})"


GAMMA = Hyper("gamma", "float", 0.1, doc="multiplies the learning rate", low=0.0,
              low_open=True)


class StepLR(Schedule):
    """StepLR: ``lr <- lr * gamma`` every ``step_size`` steps (``base_lr * gamma^(t //
    step_size)`` when nothing else changes lr)."""

    type_name = "step"
    label = "Step decay"
    options = (Hyper("step_size", "int", doc="steps between decays", low=1), GAMMA)
    summary = "Multiplies the learning rate by gamma every step_size epochs."

    def get_lr(self):
        t = self.last_epoch
        if t == 0 or t % self.config["step_size"] != 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.config["gamma"]


class MultiStepLR(Schedule):
    """MultiStepLR: ``lr <- lr * gamma`` at each milestone (twice if listed twice)."""

    type_name = "multi_step"
    label = "Multi-step decay"
    options = (Hyper("milestones", "ints_or_empty", doc="steps at which lr is multiplied by "
                     "gamma", low=1), GAMMA)
    summary = "Multiplies the learning rate by gamma at each listed epoch."

    def setup(self):
        self._milestones = Counter(self.config["milestones"])

    def get_lr(self):
        count = self._milestones.get(self.last_epoch, 0)
        if not count:
            return self.optimizer.lr
        return self.optimizer.lr * self.config["gamma"] ** count


class ExponentialLR(Schedule):
    """ExponentialLR: ``lr <- lr * gamma`` every step (``base_lr * gamma^t``)."""

    type_name = "exponential"
    label = "Exponential decay"
    options = (Hyper("gamma", "float", doc="multiplies the learning rate each step", low=0.0,
                     low_open=True),)
    summary = "Multiplies the learning rate by gamma every epoch."

    def get_lr(self):
        if self.last_epoch == 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.config["gamma"]


class CosineAnnealingLR(Schedule):
    """CosineAnnealingLR, in torch's recursive form, which equals (to rounding)::

        lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2

    and keeps following the cosine (back up) past T_max. ``T_max`` defaults to the run.
    """

    type_name = "cosine"
    label = "Cosine annealing"
    options = (
        Hyper("T_max", "int_or_none", None, doc="steps of the half cosine (default: the run)",
              low=1),
        Hyper("eta_min", "float", 0.0, doc="the lowest learning rate", low=0.0),
    )
    summary = "Lowers the learning rate along a half cosine from its start to eta_min."

    def setup(self):
        self.T_max = self._length("T_max")

    _extra_state = ("T_max",)

    def get_lr(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.config["eta_min"]
        lr = self.optimizer.lr
        if t == 0:
            return lr
        if (t - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta_min) + eta_min)


class LinearWarmup(Schedule):
    """LinearLR as a warm-up: the factor on lr goes linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps (alias ``warmup_steps``), then stays::

        lr_t = base_lr * (start + (end - start) * min(t, total_iters) / total_iters)

    computed recursively as torch does. With ``then`` (a schedule spec), that schedule
    takes over once the warm-up ends, starting from the lr reached.
    """

    type_name = "warmup"
    label = "Linear warm-up"
    default_interval = "step"
    options = (
        Hyper("total_iters", "int_or_none", None, doc="length of the warm-up (default 5)",
              low=1),
        Hyper("warmup_steps", "int_or_none", None, doc="same as total_iters", low=1),
        Hyper("start_factor", "float", 1.0 / 3, doc="lr factor at the first step", low=0.0,
              low_open=True, high=1.0),
        Hyper("end_factor", "float", 1.0, doc="lr factor at the end of the warm-up", low=0.0,
              high=1.0),
        Hyper("then", "schedule", None, doc="a schedule that takes over after the warm-up"),
    )
    summary = "Raises the learning rate linearly over the first steps."

    def __init__(self, optimizer, *, steps_per_epoch=1, run_steps=None, interval=None,
                 **config):
        then = config.pop("then", None)
        if then is not None and not isinstance(then, (str, dict)):
            raise ConfigError(f"{self.label}: then must be a schedule, received then={then!r}")
        self._then_spec = then
        self._run = (steps_per_epoch, run_steps)
        self.then: Schedule | None = None
        super().__init__(optimizer, steps_per_epoch=steps_per_epoch, run_steps=run_steps,
                         interval=interval, **config)
        self.config["then"] = then

    def check_config(self, config):
        a, b = config["total_iters"], config["warmup_steps"]
        if a is not None and b is not None and a != b:
            raise ConfigError(f"{self.label}: give total_iters or warmup_steps, received "
                              f"total_iters={a!r}, warmup_steps={b!r}")
        self.total_iters = a if a is not None else b if b is not None else 5

    def get_lr(self):
        t, n = self.last_epoch, self.total_iters
        start, end = self.config["start_factor"], self.config["end_factor"]
        lr = self.optimizer.lr
        if t == 0:
            return lr * start
        if t > n:
            return lr
        return lr * (1.0 + (end - start) / (n * start + (t - 1) * (end - start)))

    def step(self, metric=None):
        if self.then is not None:
            self.last_epoch += 1
            self.then.step(metric)
            self._last_lr = self.optimizer.lr
            return
        super().step(metric)
        if self._then_spec is not None and self.last_epoch == self.total_iters:
            self.then = self._make_then()

    def _make_then(self) -> Schedule:
        steps_per_epoch, total_steps = self._run
        if total_steps is not None:
            per = 1 if self.interval == "step" else max(int(steps_per_epoch), 1)
            total_steps = max(int(total_steps) - self.total_iters * per, 1)
        spec = self._then_spec
        spec = {"type": spec} if isinstance(spec, str) else dict(spec)
        spec.setdefault("interval", self.interval)
        if spec["interval"] != self.interval:
            raise ConfigError(f"{self.label}: the schedule after the warm-up must step per "
                              f"{self.interval} too, received interval={spec['interval']!r}")
        return make_schedule(spec, self.optimizer, steps_per_epoch, total_steps)

    def state_dict(self):
        d = super().state_dict()
        d["then"] = None if self.then is None else self.then.state_dict()
        return d

    def load_state_dict(self, d):
        super().load_state_dict(d)
        if d.get("then") is not None:
            self.then = self._make_then()
            self.then.load_state_dict(d["then"])
        else:
            self.then = None


class ReduceLROnPlateau(Schedule):
    """ReduceLROnPlateau: ``lr <- max(lr * factor, min_lr)`` once the metric passed to
    ``step(metric)`` has not improved for more than ``patience`` steps; then waits
    ``cooldown`` steps. Improvement (mode min, rel): ``metric < best * (1 - threshold)``;
    (abs): ``metric < best - threshold``; mode max mirrors. Changes below ``eps`` are skipped.
    """

    type_name = "reduce_on_plateau"
    label = "Reduce on plateau"
    options = (
        Hyper("mode", "choice", "min", doc="whether the metric should go down or up",
              choices=("min", "max")),
        Hyper("factor", "float", 0.1, doc="multiplies lr on a plateau", low=0.0, high=1.0,
              high_open=True),
        Hyper("patience", "int", 10, doc="steps without improvement tolerated", low=0),
        Hyper("threshold", "float", 1e-4, doc="smallest change that counts as improvement",
              low=0.0),
        Hyper("threshold_mode", "choice", "rel", doc="threshold relative to best, or absolute",
              choices=("rel", "abs")),
        Hyper("cooldown", "int", 0, doc="steps to wait after a reduction", low=0),
        Hyper("min_lr", "float", 0.0, doc="the lowest learning rate", low=0.0),
        Hyper("eps", "float", 1e-8, doc="smaller lr changes are ignored", low=0.0),
    )
    summary = "Lowers the learning rate when the validation loss stops improving."
    needs_metric = True
    _extra_state = ("best", "num_bad_epochs", "cooldown_counter")

    def __init__(self, optimizer, **kwargs):
        self._started = False
        super().__init__(optimizer, **kwargs)

    def setup(self):
        self.best = math.inf if self.config["mode"] == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _is_better(self, a: float, best: float) -> bool:
        c = self.config
        if c["mode"] == "min":
            return a < (best * (1.0 - c["threshold"]) if c["threshold_mode"] == "rel"
                        else best - c["threshold"])
        return a > (best * (c["threshold"] + 1.0) if c["threshold_mode"] == "rel"
                    else best + c["threshold"])

    def step(self, metric=None):
        if not self._started:  # torch builds it at last_epoch 0 without touching lr
            self._started = True
            self.last_epoch = 0
            self._last_lr = self.optimizer.lr
            return
        if metric is None:
            raise ConfigError(f"{self.label}: step(metric) needs the metric to watch "
                              "(a validation loss, say)")
        current = float(metric)
        c = self.config
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > c["patience"]:
            old = float(self.optimizer.lr)
            new = max(old * c["factor"], c["min_lr"])
            if old - new > c["eps"]:
                self.optimizer.lr = new
            self.cooldown_counter = c["cooldown"]
            self.num_bad_epochs = 0
        self._last_lr = self.optimizer.lr

    def epoch_end(self, metric=None):
        # a plateau is judged on a metric: without one this epoch has nothing to say
        if self.interval == "epoch" and metric is not None:
            self.step(metric)

    def batch_end(self) -> None:
        """Batches carry no metric to judge; the training loop calls ``step(metric)``."""


class OneCycleLR(Schedule):
    """OneCycleLR (Smith 2018), stepped per batch. lr rises from ``max_lr / div_factor``
    to ``max_lr`` over the first ``pct_start`` of ``total_steps``, then falls to
    ``max_lr / div_factor / final_div_factor`` (``three_phase``: back to the initial lr
    first, then down), annealing by cosine or linearly.

    With ``cycle_momentum`` the momentum (SGD, RMSprop) or beta1 (the Adam family) moves
    the other way, from ``max_momentum`` down to ``base_momentum`` while lr rises and back
    while it falls, as in torch.

    Differences from torch: momentum is cycled only when asked (``cycle_momentum`` is
    torch's default, not bplab's, so a project keeps the momentum it names);
    ``max_lr`` defaults to the optimizer's lr; from step ``total_steps`` on the lr and
    momentum stay at their final values (torch extrapolates the curve one step, then raises).
    """

    type_name = "one_cycle"
    label = "One-cycle"
    default_interval = "step"
    options = (
        Hyper("max_lr", "float_or_none", None, doc="the peak lr (default: the optimizer's)",
              low=0.0, low_open=True),
        Hyper("total_steps", "int_or_none", None, doc="length of the cycle (default: the run)",
              low=1),
        Hyper("pct_start", "float", 0.3, doc="fraction of the cycle spent rising", low=0.0,
              high=1.0),
        Hyper("anneal_strategy", "choice", "cos", doc="shape of the curves",
              choices=("cos", "linear")),
        Hyper("div_factor", "float", 25.0, doc="initial lr = max_lr / div_factor", low=0.0,
              low_open=True),
        Hyper("final_div_factor", "float", 1e4, doc="final lr = initial lr / final_div_factor",
              low=0.0, low_open=True),
        Hyper("three_phase", "bool", False, doc="come back down to the initial lr before the "
              "final annealing"),
        Hyper("cycle_momentum", "bool", False, doc="also cycle momentum (or Adam's beta1) "
              "inversely to the lr"),
        Hyper("base_momentum", "float", 0.85, doc="momentum at the peak lr", low=0.0,
              high=1.0),
        Hyper("max_momentum", "float", 0.95, doc="momentum at the start and the end",
              low=0.0, high=1.0),
    )
    summary = "Warms the learning rate up to max_lr, then anneals it far below its start."
    _extra_state = ("total_steps", "initial_lr", "max_lr", "min_lr")

    def check_config(self, config):
        if config["cycle_momentum"] and config["base_momentum"] > config["max_momentum"]:
            raise ConfigError(
                f"{self.label}: base_momentum must not exceed max_momentum, received "
                f"base_momentum={config['base_momentum']!r}, "
                f"max_momentum={config['max_momentum']!r}")

    def setup(self):
        c = self.config
        self.total_steps = self._length("total_steps")
        self.max_lr = c["max_lr"] if c["max_lr"] is not None else self.optimizer.lr
        self.initial_lr = self.max_lr / c["div_factor"]
        self.min_lr = self.initial_lr / c["final_div_factor"]
        self.momentum_key = None  # the optimizer's hyper-parameter that is cycled
        if c["cycle_momentum"]:
            hyper = self.optimizer.hyper
            self.momentum_key = "betas" if "betas" in hyper else "momentum"
            if self.momentum_key not in hyper:
                raise ConfigError(
                    f"{self.label}: cycle_momentum needs an optimizer with a momentum or "
                    f"betas (SGD, RMSprop, Adam, ...); {self.optimizer.label} has neither")

    def _phases(self) -> list[tuple[float, float, float, float, float]]:
        """(end step, start lr, end lr, start momentum, end momentum) of each phase, as
        torch's _schedule_phases."""
        n, pct = self.total_steps, self.config["pct_start"]
        lo, hi = self.config["base_momentum"], self.config["max_momentum"]
        if self.config["three_phase"]:
            return [(float(pct * n) - 1, self.initial_lr, self.max_lr, hi, lo),
                    (float(2 * pct * n) - 2, self.max_lr, self.initial_lr, lo, hi),
                    (n - 1, self.initial_lr, self.min_lr, hi, hi)]
        return [(float(pct * n) - 1, self.initial_lr, self.max_lr, hi, lo),
                (n - 1, self.max_lr, self.min_lr, lo, hi)]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.config["anneal_strategy"] == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        t = self.last_epoch
        phases = self._phases()
        if t >= self.total_steps:
            # the cycle ends at step total_steps - 1; torch extrapolates past it (a linear
            # anneal then goes below min_lr, even below 0) or raises
            self._set_momentum(phases[-1][4])
            return self.min_lr
        start_step = 0.0
        for i, (end_step, start, end, m_start, m_end) in enumerate(phases):
            if t <= end_step or i == len(phases) - 1:
                pct = (t - start_step) / (end_step - start_step)
                self._set_momentum(self._anneal(m_start, m_end, pct))
                return self._anneal(start, end, pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def _set_momentum(self, value: float) -> None:
        hyper = self.optimizer.hyper
        if self.momentum_key == "betas":
            hyper["betas"] = (value, *hyper["betas"][1:])
        elif self.momentum_key == "momentum":
            hyper["momentum"] = value


SCHEDULES: dict[str, type[Schedule]] = {
    cls.type_name: cls
    for cls in (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearWarmup,
                ReduceLROnPlateau, OneCycleLR)
}


def make_schedule(spec: str | dict[str, Any] | None, optimizer: Optimizer,
                  steps_per_epoch: int = 1, total_steps: int | None = None
                  ) -> Schedule | None:
    """Build a schedule from ``{"type": "cosine", "interval": "epoch", ...}`` (None: none).

    ``steps_per_epoch`` and ``total_steps`` (batches in the whole run) give the defaults of
    lengths left unset.
    """
    if spec is None:
        return None
    cls, config = resolve_spec(spec, SCHEDULES, "schedule")
    return cls(optimizer, steps_per_epoch=steps_per_epoch, run_steps=total_steps, **config)
