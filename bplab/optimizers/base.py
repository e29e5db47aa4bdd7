"""What every optimizer is: validated hyper-parameters, lazy per-name state, ``step``.

An optimizer owns a list of ``(name, Parameter)`` pairs, as returned by
``Network.named_parameters()``. ``step()`` updates every parameter whose ``has_grad`` is
True (torch skips ``grad is None``); state (moments, step counts) is created lazily per
parameter *name*, so ``state_dict()`` is keyed by the names used everywhere else in bplab.

Subclasses set ``type_name``, ``label`` (shown in messages), ``options`` (one
:class:`Hyper` per hyper-parameter: default, doc and bounds, enough for an editor) and
implement :meth:`Optimizer._init_state` and :meth:`Optimizer._update`; the update math
itself lives in small pure functions over arrays in the family's module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bplab.backend import get_array_module, to_host
from bplab.errors import ConfigError
from bplab.layers.base import Option, Parameter

__all__ = ["Hyper", "Optimizer", "check_hyper", "effective_grad", "lerp_"]


@dataclass(frozen=True)
class Hyper(Option):
    """A hyper-parameter of an optimizer, loss or schedule (an :class:`Option` that also knows
    open upper bounds and float pairs, and words its errors as Keras does).

    ``kind`` adds ``float_pair`` (torch's ``betas``: two floats, each within the bounds),
    ``ints_or_empty`` (a possibly empty list of non-negative ints, as ``milestones``) and
    ``float_or_none``. ``high_open`` makes the upper bound exclusive (``betas`` in [0, 1)).

    >>> Hyper("lr", "float", 1e-3, low=0).check("Adam", -0.1)
    Traceback (most recent call last):
    ...
    bplab.errors.ConfigError: Adam: lr must be >= 0, received lr=-0.1
    """

    high_open: bool = False

    def words(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return (f"in {'(' if self.low_open else '['}{lo:g}, {hi:g}"
                    f"{')' if self.high_open else ']'}")
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {hi:g}"
        return "a number"

    def _in_bounds(self, v: float) -> bool:
        lo, hi = self.low, self.high
        if lo is not None and (v < lo or (self.low_open and v == lo)):
            return False
        return not (hi is not None and (v > hi or (self.high_open and v == hi)))

    def check(self, label: str, value: Any) -> Any:
        """Return ``value`` normalised, or raise ConfigError quoting it."""

        def bad(what: str) -> ConfigError:
            return ConfigError(f"{label}: {self.name} must be {what}, received "
                               f"{self.quote(value)}")

        def number(v: Any, integer: bool = False) -> float:
            ok_types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            if isinstance(v, bool) or not isinstance(v, ok_types):
                if integer and isinstance(v, float) and v.is_integer():
                    return int(v)
                raise bad("an integer" if integer else "a number")
            v = int(v) if integer else float(v)
            if not math.isfinite(v):
                raise bad("a finite number")
            return v

        k = self.kind
        if k == "float_or_none" and value is None:
            return None
        if k in ("float", "float_or_none", "int", "int_or_none"):
            if k == "int_or_none" and value is None:
                return None
            v = number(value, integer=k.startswith("int"))
            if not self._in_bounds(v):
                raise bad(self.words())
            return v
        if k == "float_pair":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise bad("a pair of numbers")
            pair = tuple(number(v) for v in value)
            if not all(self._in_bounds(v) for v in pair):
                raise bad("a pair of numbers, each " + self.words())
            return pair
        if k == "ints_or_empty":
            if not isinstance(value, (list, tuple)):
                raise bad("a list of integers")
            out = [number(v, integer=True) for v in value]
            if any(not self._in_bounds(v) for v in out):
                raise bad("a list of integers, each " + self.words())
            return tuple(out)
        return super().check(label, value)  # bool, choice

    def quote(self, value: Any) -> str:
        return f"{self.name}={value!r}"  # Keras' wording: "received lr=-0.1"


def check_hyper(label: str, options: Iterable[Hyper], config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` against ``options``: unknown names, then every value."""
    options = tuple(options)
    known = {o.name for o in options}
    unknown = [k for k in config if k not in known]
    if unknown:
        takes = ", ".join(o.name for o in options) or "no hyper-parameters"
        raise ConfigError(f"{label}: unknown hyper-parameter {unknown[0]!r} (it takes {takes})")
    out: dict[str, Any] = {}
    for opt in options:
        if opt.name in config:
            out[opt.name] = opt.check(label, config[opt.name])
        elif opt.required:
            raise ConfigError(f"{label}: {opt.name} is required ({opt.doc})")
        else:
            out[opt.name] = opt.default
    return out


def effective_grad(xp, param, grad, out, weight_decay: float, maximize: bool):
    """``±grad + weight_decay * param`` written to ``out``, or ``grad`` itself when nothing
    changes it (torch's ``grad.add(param, alpha=weight_decay)``: p.grad is never modified,
    the training loop reads it after the step)."""
    if weight_decay != 0:
        xp.multiply(param, weight_decay, out=out)
        if maximize:
            out -= grad
        else:
            out += grad
        return out
    if maximize:
        return xp.negative(grad, out=out)
    return grad


LR_DOC = "learning rate: the size of each step"
WD_DOC = "L2 penalty added to the gradient (weight_decay * param)"
MAX_DOC = "maximize the objective instead of minimizing it"


class Optimizer:
    """Base class: updates named parameters in place from their accumulated gradients.

    ``opt.lr`` may be read and set at any time (schedules and the app do); every other
    hyper-parameter lives in ``opt.hyper`` and is read at each step, so it may change live.
    """

    type_name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    options: ClassVar[tuple[Hyper, ...]] = ()
    # State keys holding host scalars (ints / floats) rather than arrays.
    scalar_state: ClassVar[tuple[str, ...]] = ("step",)

    def __init__(self, named_params: Iterable[tuple[str, Parameter]], **hyper: Any):
        self.params: list[tuple[str, Parameter]] = [(n, p) for n, p in named_params]
        names = [n for n, _ in self.params]
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.label}: parameter names must be unique, received {names}")
        self.hyper: dict[str, Any] = check_hyper(self.label, self.options, hyper)
        self.check_hyper_together(self.hyper)
        self._state: dict[str, dict[str, Any]] = {}
        # Per-name scratch arrays (never saved): the hot path allocates nothing per step.
        self._scratch: dict[str, tuple[Any, Any]] = {}
        # Flat mode (see use_flat): one state for all parameters, in the network's layout.
        self._flat = None
        self._flat_param: Parameter | None = None
        self._flat_state: dict[str, Any] | None = None
        self._flat_scratch: tuple[Any, Any] | None = None
        self._flat_dirty = False

    # -- per-parameter state, and the flat fast path ----------------------------------------
    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """Per-parameter state by name (in flat mode, views into the flat state)."""
        if self._flat_dirty:
            self._materialize()
        return self._state

    @state.setter
    def state(self, value: dict[str, dict[str, Any]]) -> None:
        self._state = value
        self._flat_state = None  # rebuilt from these at the next flat step
        self._flat_dirty = False

    def use_flat(self, flat: Any) -> bool:
        """Update every parameter at once through a network's flat buffers.

        ``flat`` is :class:`bplab.graph.network.FlatParameters` (``Network.flatten_parameters``).
        The update rules are element-wise with one set of hyper-parameters, so updating the
        concatenation is the same arithmetic as updating each parameter, to the bit; it just
        costs a few array operations per step instead of a few per parameter. Steps where a
        parameter has no gradient fall back to the per-parameter path. Returns whether flat
        mode is on.
        """
        params = [p for _, p in self.params]
        if flat is None or not flat.owns(params):
            self._flat = None
            return False
        shim = Parameter.__new__(Parameter)
        shim.name, shim.data, shim.grad, shim.has_grad = "*", flat.data, flat.grad, True
        self._flat, self._flat_param = flat, shim
        self._flat_state = None
        self._flat_scratch = None
        return True

    def _build_flat_state(self) -> dict[str, Any] | None:
        """The flat state, from the per-parameter state if there is any; None if they differ
        in a way one flat state cannot hold (parameters at different step counts)."""
        flat = self._flat
        fresh = self._init_state(flat.data, self.hyper)
        per = self._state
        if not per:
            return fresh
        names = [n for n, _ in self.params]
        if any(n not in per for n in names):
            return None
        out: dict[str, Any] = {}
        for key in set(fresh) | {k for st in per.values() for k in st}:
            values = [per[n].get(key) for n in names]
            if all(_is_array(v) for v in values):
                buf = fresh[key] if _is_array(fresh.get(key)) else flat.data.copy()
                for n, v in zip(names, values):
                    buf[flat.slices[n]] = v.ravel()
                out[key] = buf
            elif all(v is None for v in values) or all(
                    not _is_array(v) and v == values[0] for v in values):
                out[key] = values[0]
            else:
                return None
        return out

    def _materialize(self) -> None:
        """Per-parameter state as views of the flat state (scalars copied)."""
        self._flat_dirty = False
        flat, fst = self._flat, self._flat_state
        if flat is None or fst is None:
            return
        state = {}
        for name, p in self.params:
            sl = flat.slices[name]
            state[name] = {k: (v[sl].reshape(p.shape) if _is_array(v) else v)
                           for k, v in fst.items()}
        self._state = state

    # -- hyper-parameters ------------------------------------------------------------------
    def check_hyper_together(self, hyper: dict[str, Any]) -> None:
        """Cross-checks between hyper-parameters (override where they constrain each other)."""

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = self._option("lr").check(self.label, value)

    def _option(self, name: str) -> Hyper:
        return next(o for o in self.options if o.name == name)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {o.name: o.default for o in cls.options}

    # -- the step --------------------------------------------------------------------------
    def zero_grad(self) -> None:
        for _, p in self.params:
            p.has_grad = False

    def step(self) -> None:
        """Apply one update to every parameter that received a gradient."""
        flat = self._flat
        if flat is not None:
            if flat.all_have_grad():
                fst = self._flat_state
                if fst is None:
                    fst = self._flat_state = self._build_flat_state()
                    if fst is None:  # cannot be flattened: stay per-parameter from now on
                        self._flat = None
                        return self.step()
                    self._materialize()
                if self._flat_scratch is None:
                    self._flat_scratch = (flat.data.copy(), flat.data.copy())
                self._update_all(get_array_module(flat.data),
                                 [(self._flat_param, fst, self._flat_scratch)], self.hyper)
                self._flat_dirty = True
                return None
            if self._flat_state is not None:
                # Some parameter has no gradient: update the others one by one, through
                # views of the flat state, and rebuild the flat state afterwards.
                self._materialize()
                self._flat_state = None
        state, scratch = self._state, self._scratch
        items = []
        for name, p in self.params:
            if not p.has_grad:
                continue
            st = state.get(name)
            if st is None:
                st = state[name] = self._init_state(p.data, self.hyper)
            tmp = scratch.get(name)
            if tmp is None:
                tmp = scratch[name] = (p.data.copy(), p.data.copy())
            items.append((p, st, tmp))
        if items:
            # One array module for all: a network lives on one device.
            self._update_all(get_array_module(items[0][0].data), items, self.hyper)

    def _init_state(self, data, h: dict[str, Any]) -> dict[str, Any]:
        """The state of one parameter before its first update."""
        raise NotImplementedError

    def _update_all(self, xp, items: list, h: dict[str, Any]) -> None:
        """Update each ``(Parameter, state, (tmp1, tmp2))``; ``h`` is :attr:`hyper`."""
        raise NotImplementedError

    # -- saving and resuming ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"type", "hyper", "state": {param name: {key: host array or number}}}``."""
        self.state  # noqa: B018 - materialises the per-parameter views in flat mode
        out: dict[str, dict[str, Any]] = {}
        for name, st in self._state.items():
            saved = {}
            for key, value in st.items():
                if value is None or isinstance(value, (int, float)):
                    saved[key] = value
                else:
                    host = to_host(value)
                    saved[key] = host.copy() if host is value else host
            out[name] = saved
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hyper.items()}
        return {"type": self.type_name, "hyper": hyper, "state": out}

    def load_state_dict(self, d: dict[str, Any], strict: bool = True) -> None:
        """Restore hyper-parameters and state (arrays go to each parameter's device).

        With ``strict``, state for unknown names or of the wrong shape raises ConfigError
        listing every such name; otherwise those entries are dropped.
        """
        if d.get("type") != self.type_name:
            raise ConfigError(f"{self.label}: cannot load the state of a "
                              f"{d.get('type')!r} optimizer")
        hyper = check_hyper(self.label, self.options, dict(d.get("hyper", {})))
        self.check_hyper_together(hyper)
        params = dict(self.params)
        unexpected, misshaped = [], []
        new_state: dict[str, dict[str, Any]] = {}
        for name, saved in d.get("state", {}).items():
            p = params.get(name)
            if p is None:
                unexpected.append(name)
                continue
            st: dict[str, Any] = {}
            for key, value in saved.items():
                if value is None or isinstance(value, (int, float, np.integer, np.floating)):
                    st[key] = value.item() if isinstance(value, np.generic) else value
                    continue
                arr = np.asarray(value)
                if arr.ndim == 0 and key in self.scalar_state:
                    st[key] = arr.item()
                    continue
                if arr.shape != p.shape:
                    misshaped.append(f"{name} ({key}: {arr.shape} vs {p.shape})")
                    break
                st[key] = get_array_module(p.data).array(arr, dtype=p.data.dtype)
            else:
                new_state[name] = st
        if strict and (unexpected or misshaped):
            parts = []
            if unexpected:
                parts.append("unexpected " + ", ".join(unexpected))
            if misshaped:
                parts.append("wrong shape " + ", ".join(misshaped))
            raise ConfigError(f"{self.label}: the saved state does not fit these parameters: "
                              + "; ".join(parts))
        self.hyper = hyper
        self.state = new_state

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({cfg})"


def _is_array(v: Any) -> bool:
    return getattr(v, "ndim", 0) > 0


def lerp_(xp, start, end, weight: float, tmp) -> None:
    """``start += weight * (end - start)`` in place, rounded as torch's ``lerp_`` is
    (it switches to ``end - (1 - weight) * (end - start)`` for weights >= 0.5)."""
    xp.subtract(end, start, out=tmp)
    if weight < 0.5:
        tmp *= weight
        start += tmp
    else:
        tmp *= 1.0 - weight
        xp.subtract(end, tmp, out=start)


def lr_option(default: float) -> Hyper:
    return Hyper("lr", "float", default, doc=LR_DOC, low=0.0)


def weight_decay_option(default: float = 0.0, doc: str = WD_DOC) -> Hyper:
    return Hyper("weight_decay", "float", default, doc=doc, low=0.0)


def betas_option(default: tuple[float, float], doc: str) -> Hyper:
    return Hyper("betas", "float_pair", default, doc=doc, low=0.0, high=1.0, high_open=True)


def eps_option(default: float, doc: str = "added to the denominator for numerical stability"
               ) -> Hyper:
    return Hyper("eps", "float", default, doc=doc, low=0.0)


MAXIMIZE = Hyper("maximize", "bool", False, doc=MAX_DOC)
