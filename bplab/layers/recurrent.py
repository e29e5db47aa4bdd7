"""Recurrent layers: RNN, LSTM and GRU with torch.nn's equations, gate order and parameters.

Input is batch-first ``(batch, time, features)``; the initial states are zeros. The output is
the last hidden state ``(batch, hidden_size)``, or every hidden state ``(batch, time,
hidden_size)`` with ``return_sequences``. Parameters are torch's single-layer ones,
``weight_ih_l0`` ``(gates*hidden, features)``, ``weight_hh_l0`` ``(gates*hidden, hidden)``,
``bias_ih_l0`` and ``bias_hh_l0`` ``(gates*hidden,)``, with the gates stacked in torch's order
(LSTM ``i, f, g, o``; GRU ``r, z, n``), so exported weights load into ``nn.LSTM(...,
batch_first=True)`` with ``strict=True``.

Layout of the work, chosen so that only the recurrence runs step by step:

* the input projection ``x W_ih^T + b_ih`` of every time step is one GEMM before the loop;
* each step adds ``h_{t-1} W_hh^T + b_hh`` (one small GEMM) and applies the gates;
* backward runs the loop in reverse to get the pre-activation gradients of every step, then
  ``dW_ih``, ``dW_hh`` and ``dx`` are one GEMM each over all steps at once.

Caches (time-major, so one step is a contiguous slab): the input, the hidden states, and per
step only what the gate derivatives need (the gate outputs; the cell states for the LSTM;
``h W_hn^T + b_hn`` for the GRU).

Truncated backpropagation through time (``bptt_steps = k``, set by the trainer): the forward
pass is unchanged, the backward pass cuts the recurrent gradient every k steps counted from
the last one, exactly as ``h = h.detach()`` before steps T - k, T - 2k, ... in a torch loop.
A gradient flows back at most k steps, and the last step's exactly k.

When ``record_time_grads`` is set, backward keeps ``time_grad_norms``: the norm over the batch
of dL/dh_t for each step t (a host float64 array of shape (time,)), the signal in which
vanishing and exploding gradients through time show.
"""

from __future__ import annotations

import math

import numpy as np

from bplab.backend import to_host
from bplab.errors import ShapeError
from bplab.initializers import initialize
from bplab.layers.activations import sigmoid
from bplab.layers.base import BuildContext, Layer, Option
from bplab.layers.core import fmt_shape
from bplab.layers.registry import register

__all__ = ["GRU", "LSTM", "RNN", "RecurrentLayer"]


_OPTIONS = (
    Option("hidden_size", "int", doc="number of features in the hidden state", low=1,
           main=True),
    Option("bias", "bool", True, doc="learn the biases bias_ih_l0 and bias_hh_l0"),
    Option("return_sequences", "bool", False,
           doc="output every step (batch, time, hidden_size) instead of the last one"),
    Option("init", "init", "default",
           doc="initializer of the input weights weight_ih_l0 (default: torch's "
               "U(+-1/sqrt(hidden_size)))"),
    Option("recurrent_init", "init", "default",
           doc="initializer of the recurrent weights weight_hh_l0, drawn gate by gate "
               "(orthogonal keeps the gradient's norm through time)"),
)


def _draw(spec, shape, hidden: int, rng) -> np.ndarray:
    # torch initialises every recurrent parameter with U(+-1/sqrt(hidden_size)): the "fan in"
    # of the default is the hidden size, whatever the matrix's shape.
    if spec == "default":
        return initialize(spec, shape, rng, fan_in=hidden)
    return initialize(spec, shape, rng)


class RecurrentLayer(Layer):
    """What RNN, LSTM and GRU share: options, shapes, parameters, the truncation schedule."""

    category = "Recurrent"
    has_weights = True
    takes_sequence = True
    overflows = True  # the gates' sigmoid
    gates: int = 1
    options = _OPTIONS
    # Set by the trainer, not by the project's network: truncated BPTT and the record of
    # dL/dh_t per step (see the module docstring).
    bptt_steps: int | None = None
    record_time_grads: bool = False

    def __init__(self, name: str = "", **config):
        super().__init__(name, **config)
        self.time_grad_norms: np.ndarray | None = None

    def output_shape(self, input_shapes):
        (shape,) = input_shapes
        if len(shape) != 2:
            remedy = ("use Reshape to give it (time, features), e.g. "
                      f"[{shape[0]}, 1] for one feature per step" if len(shape) == 1 else
                      "use Reshape to give it (time, features)")
            raise ShapeError(
                f"{self.label(self.name)} expects (time, features), received "
                f"{fmt_shape(shape)}: {remedy}"
            )
        if self.return_sequences:
            return (shape[0], self.hidden_size)
        return (self.hidden_size,)

    @classmethod
    def count_params(cls, config, input_shapes):
        h, n_in = config["hidden_size"], input_shapes[0][-1]
        g = cls.gates * h
        return g * n_in + g * h + (2 * g if config.get("bias", True) else 0)

    def build(self, input_shapes, ctx: BuildContext):
        n_in = input_shapes[0][-1]
        h, g = self.hidden_size, self.gates
        self.add_param("weight_ih_l0", _draw(self.init, (g * h, n_in), h, ctx.rng), ctx)
        w_hh = np.concatenate(
            [_draw(self.recurrent_init, (h, h), h, ctx.rng) for _ in range(g)], axis=0)
        self.add_param("weight_hh_l0", w_hh, ctx)
        if self.bias:
            bound = 1.0 / math.sqrt(h)
            self.add_param("bias_ih_l0", ctx.rng.uniform(-bound, bound, g * h), ctx)
            self.add_param("bias_hh_l0", ctx.rng.uniform(-bound, bound, g * h), ctx)
        self._x = None

    # -- pieces every cell uses ------------------------------------------------------------
    def _time_major(self, x):
        """The input as (time, batch, features): every later array is time-major too, so a
        step is a contiguous slab and no large array is ever transposed."""
        return self.xp.ascontiguousarray(x.transpose(1, 0, 2))

    def _input_projection(self, xt):
        """x W_ih^T (+ b_ih + b_hh) for every step of the time-major input ``xt``:
        (time, batch, gates*hidden).

        Both biases are added here once: every step adds them to its pre-activations anyway
        (the GRU adds b_hn inside the reset product and overrides this, see GRU)."""
        xw = self.xp.matmul(xt, self.params["weight_ih_l0"].data.T)
        if self.bias:
            xw += self.params["bias_ih_l0"].data
            xw += self.params["bias_hh_l0"].data
        return xw

    def _w_hh_t(self):
        # a contiguous copy: BLAS multiplies a transposed view of a small matrix ~10x slower,
        # and this one is used once per step
        return self.xp.ascontiguousarray(self.params["weight_hh_l0"].data.T)

    def _cut(self, t: int, t_len: int) -> bool:
        """True where truncated BPTT stops the recurrent gradient: from step t to t - 1.

        The chunks of k steps are counted from the end, so the last step's gradient (all a
        many-to-one network has) flows back exactly k steps."""
        k = self.bptt_steps
        return t == 0 or (k is not None and k > 0 and (t_len - t) % k == 0)

    def _grad_at_steps(self, grad):
        """The output gradient as time-major per-step contributions (time, batch, hidden), or
        None when only the last state is returned (its gradient seeds dL/dh_T alone)."""
        if self.return_sequences:
            return grad.transpose(1, 0, 2)
        return None

    def _finish_backward(self, dax, x, hprev, dhs, dah=None):
        """Parameter and input gradients from the pre-activation gradients of every step.

        ``dax`` (time, batch, gates*hidden) feeds W_ih and b_ih, ``dah`` W_hh and b_hh (the
        same array except in the GRU); ``x`` is the time-major input, ``hprev`` (time, batch,
        hidden) the states each step read; ``dhs`` the recorded dL/dh_t, or None."""
        self._accumulate(dax, dax if dah is None else dah, x, hprev)
        if dhs is not None:
            if dhs.dtype.itemsize < 4:  # float16 (mixed precision): squares would overflow
                dhs = dhs.astype(np.float32)
            self.time_grad_norms = to_host(
                self.xp.sqrt((dhs * dhs).sum(axis=(1, 2)))).astype(np.float64)
        if not self.need_input_grad:
            return None
        dx = self.xp.matmul(dax, self.params["weight_ih_l0"].data)  # (time, batch, features)
        return self.xp.ascontiguousarray(dx.transpose(1, 0, 2))

    def _accumulate(self, dax, dah, x, hprev):
        t, n, g = dax.shape
        xt = x.reshape(t * n, -1)  # time-major rows, as dax
        dax2 = dax.reshape(t * n, g)
        dah2 = dah.reshape(t * n, g)
        self.params["weight_ih_l0"].add_matmul(dax2.T, xt)  # dW_ih = sum_t da_t^T x_t
        self.params["weight_hh_l0"].add_matmul(dah2.T, hprev.reshape(t * n, -1))
        if self.bias:
            self.params["bias_ih_l0"].add_sum(dax2, 0)
            self.params["bias_hh_l0"].add_sum(dah2, 0)

    def _time_grads(self, shape):
        return self.xp.empty(shape, self.dtype) if self.record_time_grads else None

    def _output(self, hs):
        """hs (time+1, batch, hidden) with h_0 first -> the layer's output."""
        if self.return_sequences:
            return self.xp.ascontiguousarray(hs[1:].transpose(1, 0, 2))
        return hs[-1].copy()

    def clear_cache(self):
        for key in ("_x", "_hs", "_gates", "_cs", "_hn"):
            setattr(self, key, None)


@register
class RNN(RecurrentLayer):
    """Elman RNN, torch.nn.RNN: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    >>> layer = RNN("rnn1", hidden_size=16)   # input (batch, time, features)
    """

    type_name = "RNN"
    id_prefix = "rnn"
    gates = 1
    options = (
        *_OPTIONS[:1],
        Option("nonlinearity", "choice", "tanh", doc="tanh or relu", choices=("tanh", "relu")),
        *_OPTIONS[1:],
    )
    summary = "A simple recurrent layer: each step mixes the input with the previous state."
    math = ("h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh);  "
            "dL/da_t = dL/dh_t * (1 - h_t^2),  dL/dh_(t-1) += dL/da_t W_hh")

    def forward(self, x, training=True):
        xp = self.xp
        n, t_len, _ = x.shape
        x = self._time_major(x)
        a = self._input_projection(x)  # becomes the states in place, step by step
        w_hh_t = self._w_hh_t()
        hs = xp.zeros((t_len + 1, n, self.hidden_size), self.dtype)
        relu = self.nonlinearity == "relu"
        for t in range(t_len):
            at = a[t]
            at += hs[t] @ w_hh_t
            if relu:
                xp.maximum(at, 0, out=hs[t + 1])
            else:
                xp.tanh(at, out=hs[t + 1])
        self._x, self._hs = x, hs
        return self._output(hs)

    def backward(self, grad):
        xp = self.xp
        x, hs = self._x, self._hs
        self._x = self._hs = None
        t_len, n, h = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        g_steps = self._grad_at_steps(grad)
        w_hh = self.params["weight_hh_l0"].data
        da = xp.empty((t_len, n, h), self.dtype)
        dhs = self._time_grads((t_len, n, h))
        dh = xp.zeros((n, h), self.dtype) if g_steps is not None else grad.copy()
        # the activation's derivative at every step at once, from its output:
        # relu' = [h > 0], tanh' = 1 - h^2; only dh is carried step by step
        if self.nonlinearity == "relu":
            slope = (hs[1:] > 0).astype(self.dtype)
        else:
            slope = 1 - hs[1:] * hs[1:]
        for t in range(t_len - 1, -1, -1):
            if g_steps is not None:
                dh += g_steps[t]
            if dhs is not None:
                dhs[t] = dh
            xp.multiply(dh, slope[t], out=da[t])
            dh = xp.zeros_like(dh) if self._cut(t, t_len) else da[t] @ w_hh
        return self._finish_backward(da, x, hs[:-1], dhs)


@register
class LSTM(RecurrentLayer):
    """Long short-term memory, torch.nn.LSTM (gates i, f, g, o)::

        i, f, o = sigmoid(.), g = tanh(.)   of   x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh
        c_t = f * c_(t-1) + i * g,   h_t = o * tanh(c_t)

    >>> layer = LSTM("lstm1", hidden_size=32, return_sequences=True)
    """

    type_name = "LSTM"
    id_prefix = "lstm"
    gates = 4
    summary = "A recurrent layer with a gated memory cell that carries information far in time."
    math = ("c_t = f*c_(t-1) + i*g,  h_t = o*tanh(c_t);  "
            "dL/dc_(t-1) = dL/dc_t * f,  dL/dh_(t-1) = [dL/da_i..o] W_hh")

    def forward(self, x, training=True):
        xp = self.xp
        n, t_len, _ = x.shape
        h = self.hidden_size
        x = self._time_major(x)
        gates = self._input_projection(x)  # pre-activations, then the gates, in place
        w_hh_t = self._w_hh_t()
        hs = xp.zeros((t_len + 1, n, h), self.dtype)
        cs = xp.zeros((t_len + 1, n, h), self.dtype)
        for t in range(t_len):
            a = gates[t]
            a += hs[t] @ w_hh_t
            # all four gates through one sigmoid: tanh(x) = 2 sigmoid(2x) - 1 for g
            g = a[:, 2 * h:3 * h]
            g *= 2
            sigmoid(a, xp, out=a)
            g *= 2
            g -= 1
            i, f, o = a[:, :h], a[:, h:2 * h], a[:, 3 * h:]
            c = cs[t + 1]
            xp.multiply(f, cs[t], out=c)
            c += i * g
            xp.multiply(o, xp.tanh(c), out=hs[t + 1])
        self._x, self._hs, self._cs, self._gates = x, hs, cs, gates
        return self._output(hs)

    def backward(self, grad):
        xp = self.xp
        x, hs, cs, gates = self._x, self._hs, self._cs, self._gates
        self.clear_cache()
        t_len, n, h = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        g_steps = self._grad_at_steps(grad)
        w_hh = self.params["weight_hh_l0"].data
        da = xp.empty((t_len, n, 4 * h), self.dtype)
        dhs = self._time_grads((t_len, n, h))
        dh = xp.zeros((n, h), self.dtype) if g_steps is not None else grad.copy()
        dc = xp.zeros((n, h), self.dtype)
        # Every factor that does not depend on the gradient, for all steps at once; the loop
        # then carries only dh and dc:
        #   dc_t += dh_t * o (1 - tanh(c)^2),      da_o = dh_t * tanh(c) o (1 - o),
        #   [da_i, da_f, da_g] = dc_t * [g i (1 - i), c_(t-1) f (1 - f), i (1 - g^2)]
        i, f, g, o = (gates[..., k * h:(k + 1) * h] for k in range(4))
        tc = xp.tanh(cs[1:])
        dc_from_h = o * (1 - tc * tc)
        do_from_h = tc * o * (1 - o)
        from_c = xp.empty((t_len, n, 3, h), self.dtype)
        xp.multiply(g, i * (1 - i), out=from_c[:, :, 0])
        xp.multiply(cs[:-1], f * (1 - f), out=from_c[:, :, 1])
        xp.multiply(i, 1 - g * g, out=from_c[:, :, 2])
        da4 = da.reshape(t_len, n, 4, h)
        for t in range(t_len - 1, -1, -1):
            if g_steps is not None:
                dh += g_steps[t]
            if dhs is not None:
                dhs[t] = dh
            dc += dh * dc_from_h[t]
            xp.multiply(dc[:, None, :], from_c[t], out=da4[t, :, :3])
            xp.multiply(dh, do_from_h[t], out=da4[t, :, 3])
            if self._cut(t, t_len):
                dh = xp.zeros_like(dh)
                dc = xp.zeros_like(dc)
            else:
                dh = da[t] @ w_hh
                dc *= f[t]
        return self._finish_backward(da, x, hs[:-1], dhs)


@register
class GRU(RecurrentLayer):
    """Gated recurrent unit, torch.nn.GRU (gates r, z, n)::

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr),  z likewise
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),  h_t = (1 - z) * n + z * h_(t-1)

    >>> layer = GRU("gru1", hidden_size=32)
    """

    type_name = "GRU"
    id_prefix = "gru"
    gates = 3
    summary = "A gated recurrent layer: an update gate decides how much of the state to keep."
    math = ("h_t = (1-z)*n + z*h_(t-1);  dL/dh_(t-1) = dL/dh_t * z + [dL/da_r, dL/da_z, "
            "dL/dhn * r] W_hh")

    def _input_projection(self, xt):
        # b_hn sits inside r * (h W_hn^T + b_hn): only the r and z parts of b_hh add here.
        xw = self.xp.matmul(xt, self.params["weight_ih_l0"].data.T)
        if self.bias:
            h = self.hidden_size
            xw += self.params["bias_ih_l0"].data
            xw[..., :2 * h] += self.params["bias_hh_l0"].data[:2 * h]
        return xw

    def forward(self, x, training=True):
        xp = self.xp
        n, t_len, _ = x.shape
        h = self.hidden_size
        x = self._time_major(x)
        gates = self._input_projection(x)  # becomes r, z, n in place
        w_hh_t = self._w_hh_t()
        b_hn = self.params["bias_hh_l0"].data[2 * h:] if self.bias else None
        hs = xp.zeros((t_len + 1, n, h), self.dtype)
        hns = xp.empty((t_len, n, h), self.dtype)  # h W_hn^T + b_hn, read by backward
        for t in range(t_len):
            a = gates[t]
            hw = hs[t] @ w_hh_t
            a[:, :2 * h] += hw[:, :2 * h]
            a[:, :2 * h] = sigmoid(a[:, :2 * h])
            hn = hns[t]
            hn[...] = hw[:, 2 * h:]
            if b_hn is not None:
                hn += b_hn
            r, z, nn = a[:, :h], a[:, h:2 * h], a[:, 2 * h:]
            nn += r * hn
            xp.tanh(nn, out=nn)
            # h_t = n + z * (h_(t-1) - n)
            xp.subtract(hs[t], nn, out=hs[t + 1])
            hs[t + 1] *= z
            hs[t + 1] += nn
        self._x, self._hs, self._gates, self._hn = x, hs, gates, hns
        return self._output(hs)

    def backward(self, grad):
        xp = self.xp
        x, hs, gates, hns = self._x, self._hs, self._gates, self._hn
        self.clear_cache()
        t_len, n, h = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        g_steps = self._grad_at_steps(grad)
        w_hh = self.params["weight_hh_l0"].data
        dax = xp.empty((t_len, n, 3 * h), self.dtype)  # input-side pre-activations
        dah = xp.empty((t_len, n, 3 * h), self.dtype)  # hidden-side (r, z, and h W_hn + b_hn)
        dhs = self._time_grads((t_len, n, h))
        dh = xp.zeros((n, h), self.dtype) if g_steps is not None else grad.copy()
        # The factors that do not depend on the gradient, for all steps at once:
        #   da_n = dh (1 - z)(1 - n^2),   da_r = da_n (h W_hn + b_hn) r (1 - r),
        #   da_z = dh (h_(t-1) - n) z (1 - z),   and h W_hn + b_hn gets da_n r
        r, z, nn = (gates[..., k * h:(k + 1) * h] for k in range(3))
        n_from_h = (1 - z) * (1 - nn * nn)
        r_from_n = hns * r * (1 - r)
        z_from_h = (hs[:-1] - nn) * z * (1 - z)
        for t in range(t_len - 1, -1, -1):
            if g_steps is not None:
                dh += g_steps[t]
            if dhs is not None:
                dhs[t] = dh
            dan = dax[t, :, 2 * h:]
            xp.multiply(dh, n_from_h[t], out=dan)
            xp.multiply(dan, r_from_n[t], out=dah[t, :, :h])
            xp.multiply(dh, z_from_h[t], out=dah[t, :, h:2 * h])
            xp.multiply(dan, r[t], out=dah[t, :, 2 * h:])
            dh = xp.zeros_like(dh) if self._cut(t, t_len) else dh * z[t] + dah[t] @ w_hh
        dax[..., :2 * h] = dah[..., :2 * h]  # r and z: the same pre-activation on both sides
        return self._finish_backward(dax, x, hs[:-1], dhs, dah)
