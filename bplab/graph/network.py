"""The executor: a validated plan turned into layers, run forward and backward.

>>> net = Network({"nodes": [{"id": "in", "type": "Input", "shape": [2]},
...                          {"id": "fc", "type": "Dense", "units": 3}]})
>>> [name for name, _ in net.named_parameters()]
['fc.weight', 'fc.bias']
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from bplab.backend import Backend, get_backend, to_host
from bplab.errors import ConfigError, NetworkError
from bplab.graph.plan import Plan, analyze
from bplab.layers import LAYERS
from bplab.layers.base import OVERFLOW_IGNORED, BuildContext, Layer, Parameter

__all__ = ["DTYPES", "FlatParameters", "Network", "resolve_dtype"]

DTYPES = ("float32", "float64")
# float16 is a compute type of mixed-precision training only (bplab.amp): master weights,
# optimiser state and the loss stay float32.
COMPUTE_DTYPES = (*DTYPES, "float16")
EVAL_CHUNK_BYTES = 64 * 2**20  # see eval_rows


def resolve_dtype(dtype: Any, allowed: tuple[str, ...] = DTYPES) -> np.dtype:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in allowed:
        raise ConfigError(f"dtype must be {' or '.join(allowed)}, received {dtype!r}")
    return np.dtype(name)


def eval_rows(plan: Plan, itemsize: int) -> int:
    """Rows an evaluation-mode forward takes at once: up to 4096, fewer where one sample's
    activations are large, so a chunk's arrays stay near :data:`EVAL_CHUNK_BYTES` (4096
    MNIST images through a small CNN made a 460 MB im2col buffer, and most of an
    evaluation's time went to the page faults of allocating it)."""
    # every node's output, twice (im2col columns, masks and the like are of the same
    # order): an estimate, not a bound
    values = 2 * sum(math.prod(shape) for shape in plan.shapes.values())
    return int(min(4096, max(64, EVAL_CHUNK_BYTES // max(values * itemsize, 1))))


def commute_relu_maxpool(layers: list[Layer]) -> list[Layer]:
    """``layers`` (a chain) with every ReLU that feeds a MaxPool2D moved after it.

    ReLU and max pooling commute: ReLU is monotone, so max(relu(x)) == relu(max(x)), value
    for value. So do their gradients: where a window's maximum is positive, both orders route
    the gradient to the window's first maximum, through a ReLU slope of 1; where it is not,
    the ReLU's slope 0 stops it in both (pooling first sends it to one entry, ReLU's mask
    then zeroes it; ReLU first zeroes it at once). Run after the pool, the ReLU works on
    the pool's output, a quarter of the values under a 2x2 pool (workload E: the ReLUs'
    1.6 ms of a 9.3 ms step became 0.3 ms). Only a chain pass uses this order: one that
    captures the ReLU's output (diagnostics, the step-through view) runs in the graph's
    order.
    """
    out = list(layers)
    for i in range(len(out) - 1):
        if type(out[i]).type_name == "ReLU" and type(out[i + 1]).type_name == "MaxPool2D":
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


class FlatParameters:
    """All parameters of a network in one buffer, all gradients in another.

    ``slices[name]`` locates a parameter in both; ``all_have_grad()`` tells whether every
    parameter received a gradient this step (only then may the whole buffer be updated).
    """

    __slots__ = ("_views", "data", "grad", "params", "slices")

    def __init__(self, data, grad, slices: dict[str, slice], params: list[Parameter]):
        self.data = data
        self.grad = grad
        self.slices = slices
        self.params = params
        self._views = [(p.data, p.grad) for p in params]

    def all_have_grad(self) -> bool:
        for p in self.params:
            if not p.has_grad:
                return False
        return True

    def owns(self, params: list[Parameter]) -> bool:
        """True if ``params`` are exactly these, in order, still viewing the buffers."""
        return (
            len(params) == len(self.params)
            and all(a is b for a, b in zip(params, self.params))
            and all(p.data is d and p.grad is g for p, (d, g) in zip(params, self._views))
        )


class Network:
    """A directed acyclic graph of named layers.

    ``forward`` runs the plan in topological order; ``backward`` runs it in reverse and
    sums the gradients flowing into a node that feeds several others (residual
    connections). Parameters are named ``<node id>.<param>`` with torch's names.
    """

    def __init__(
        self,
        spec: Any,
        *,
        dtype: Any = "float32",
        backend: str | Backend = "numpy",
        seed: int | None = 0,
        rng: np.random.Generator | None = None,
    ):
        plan = spec if isinstance(spec, Plan) else analyze(spec)
        if plan.problems:
            raise NetworkError(plan.problems)
        self.plan = plan
        self.spec = spec if not isinstance(spec, Plan) else None
        self.backend = get_backend(backend)
        self.xp = self.backend.xp
        self.dtype = resolve_dtype(dtype, COMPUTE_DTYPES)
        ctx = BuildContext(
            self.xp, self.dtype, rng if rng is not None else np.random.default_rng(seed)
        )

        self.order = list(plan.order)
        pos = {nid: i for i, nid in enumerate(self.order)}
        self.layers: dict[str, Layer] = {}
        self._layers: list[Layer] = []
        self._srcs: list[tuple[int, ...]] = []
        for nid in self.order:
            node = plan.nodes[nid]
            layer = LAYERS[node.type](nid, **plan.configs[nid])
            layer.bind(ctx)
            layer.build([plan.shapes[s] for s in node.inputs], ctx)
            self.layers[nid] = layer
            self._layers.append(layer)
            self._srcs.append(tuple(pos[s] for s in node.inputs))
        self.input_id = plan.input_id
        self.eval_rows = eval_rows(plan, self.dtype.itemsize)
        self._overflows = any(type(layer).overflows for layer in self._layers)
        self.output_id = plan.output_id
        self.input_shape = plan.shapes[self.input_id]
        self.output_shape = plan.shapes[self.output_id]
        # A plain chain (every node fed by the one before) runs without index bookkeeping,
        # in the order of commute_relu_maxpool (the order a chain pass ran: _ran).
        self._chain = all(srcs == (i - 1,) for i, srcs in enumerate(self._srcs) if i > 0)
        self._chain_order = commute_relu_maxpool(self._layers[1:]) if self._chain else []
        self._ran = self._layers[1:]
        self._fanout = [0] * len(self.order)
        for srcs in self._srcs:
            for s in srcs:
                self._fanout[s] += 1
        self.training = True
        self.capture: set[str] | None = None  # node ids whose outputs forward keeps
        self.captured: dict[str, Any] = {}
        self.require_input_grad = False
        self._reuse_buffers = False
        self._checkpoint_segments = 0  # gradient checkpointing (chain networks): see forward
        self.flat: FlatParameters | None = None  # see flatten_parameters
        self.jit: Any = None  # see use_kernels
        self._segments: list[tuple[int, int, Any, dict]] | None = None
        self._named = [
            (f"{nid}.{pname}", p)
            for nid, layer in self.layers.items()
            for pname, p in layer.params.items()
        ]

    # -- structure -------------------------------------------------------------------------
    @property
    def require_input_grad(self) -> bool:
        return self._require_input_grad

    @require_input_grad.setter
    def require_input_grad(self, value: bool) -> None:
        """Layers fed by the Input skip computing dL/dx unless this is True (saves a matmul)."""
        self._require_input_grad = bool(value)
        for layer, srcs in zip(self._layers, self._srcs):
            layer.need_input_grad = value or any(s != 0 for s in srcs)

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return list(self._named)

    @property
    def checkpoint_segments(self) -> int:
        return self._checkpoint_segments

    @checkpoint_segments.setter
    def checkpoint_segments(self, value: int) -> None:
        self._checkpoint_segments = int(value or 0)
        self.reuse_buffers = self._reuse_buffers  # checkpointing turns buffer reuse off

    @property
    def reuse_buffers(self) -> bool:
        return self._reuse_buffers

    @reuse_buffers.setter
    def reuse_buffers(self, value: bool) -> None:
        """Let layers keep their training outputs and gradients in arrays reused from step to
        step (the Trainer turns this on). Off under gradient checkpointing, whose point is to
        *not* keep every layer's output."""
        self._reuse_buffers = bool(value)
        for layer in self._layers:
            layer.reuse_buffers = self._reuse_buffers and not self.checkpoint_segments
            if not layer.reuse_buffers:
                layer._scratch.clear()

    def flatten_parameters(self) -> FlatParameters | None:
        """Store every parameter and gradient in one contiguous buffer each.

        Each ``Parameter.data``/``.grad`` becomes a view into the flat buffers, so layers see
        no difference, while an optimiser can update all weights with a handful of array
        operations instead of a handful *per parameter*, and the training loop can test all
        gradients for NaN/Inf with one dot product. On a Playground-size network that is most
        of the per-step cost. Returns the flat storage (None for a network without weights).
        """
        if not self._named:
            self.flat = None
            return None
        xp = self.xp
        total = sum(p.size for _, p in self._named)
        data = xp.empty(total, dtype=self.dtype)
        grad = xp.zeros(total, dtype=self.dtype)
        slices: dict[str, slice] = {}
        start = 0
        for name, p in self._named:
            stop = start + p.size
            data[start:stop] = p.data.ravel()
            p.data = data[start:stop].reshape(p.shape)
            p.grad = grad[start:stop].reshape(p.data.shape)
            slices[name] = slice(start, stop)
            start = stop
        self.flat = FlatParameters(data, grad, slices, [p for _, p in self._named])
        return self.flat

    def use_kernels(self, kernels: Any) -> None:
        """Hand every layer the compiled kernels of :mod:`bplab.jit` (None: numpy's code)."""
        self.jit = kernels
        for layer in self._layers:
            if layer.jit is not kernels:
                layer.jit = kernels
                layer._scratch.clear()  # plans made with (or without) them

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self._named]

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        for nid, layer in self.layers.items():
            for bname, b in layer.buffers.items():
                yield f"{nid}.{bname}", b

    def param_count(self) -> int:
        return sum(p.size for _, p in self._named)

    def parameterized_layers(self) -> list[tuple[str, Layer]]:
        return [(nid, layer) for nid, layer in self.layers.items() if layer.params]

    def train(self, mode: bool = True) -> Network:
        self.training = mode
        return self

    def eval(self) -> Network:
        return self.train(False)

    # -- computation -----------------------------------------------------------------------
    def forward(self, x, training: bool | None = None):
        """Output of the network for batch ``x`` (cast to the network's dtype and device)."""
        training = self.training if training is None else training
        if type(x) is not self.xp.ndarray or x.dtype != self.dtype:
            x = self.xp.asarray(x, dtype=self.dtype)
        if self.checkpoint_segments and training:
            return self._forward_checkpointed(x)
        self._segments = None
        if not self._overflows:
            return self._forward(x, training)
        # one errstate for the whole pass instead of one per overflowing call (see
        # bplab.layers.base.OVERFLOW_IGNORED)
        with np.errstate(over="ignore"), OVERFLOW_IGNORED:
            return self._forward(x, training)

    __call__ = forward

    def _forward(self, x, training: bool):
        layers = self._layers
        if self._chain and not self.capture:
            self._ran = self._chain_order
            for layer in self._chain_order:
                x = layer.forward(x, training)
            return x
        self._ran = layers[1:]  # a chain captured node by node: in the graph's order
        outs: list[Any] = [None] * len(layers)
        outs[0] = x
        capture = self.capture or ()
        for i in range(1, len(layers)):
            layer, srcs = layers[i], self._srcs[i]
            if len(srcs) == 1:
                outs[i] = layer.forward(outs[srcs[0]], training)
            else:
                outs[i] = layer.forward([outs[s] for s in srcs], training)
            if layer.name in capture:
                self.captured[layer.name] = outs[i]
        return outs[-1]

    def backward(self, grad):
        """Backpropagate ``grad`` (dL/doutput); accumulate parameter gradients.

        Returns dL/dinput when ``require_input_grad`` is set, else None.
        """
        layers = self._layers
        if self._segments is not None:
            return self._backward_checkpointed(grad)
        if self._chain:
            for layer in reversed(self._ran):
                grad = layer.backward(grad)
            return grad
        grads: list[Any] = [None] * len(layers)
        grads[-1] = grad
        for i in range(len(layers) - 1, 0, -1):
            g = grads[i]
            grads[i] = None
            layer, srcs = layers[i], self._srcs[i]
            gin = layer.backward(g)
            if len(srcs) == 1:
                gin = (gin,)
            for s, gs in zip(srcs, gin):
                if gs is None:
                    continue
                # adjoint of fan-out is a sum over the consumers
                grads[s] = gs if grads[s] is None else grads[s] + gs
        return grads[0]

    # -- one node at a time (bplab.stepthrough shows a step this way) ------------------------
    def forward_nodes(self, x, training: bool | None = None) -> Iterator[tuple[str, Any]]:
        """:meth:`forward`, yielding ``(node id, output)`` after each node, the Input first.

        The same layers, in the same order, on the same inputs: the last output is what
        :meth:`forward` returns. Exhaust it before :meth:`backward_nodes`.
        """
        training = self.training if training is None else training
        x = self.xp.asarray(x, dtype=self.dtype)
        outs: list[Any] = [x]
        yield self.order[0], x
        for i in range(1, len(self._layers)):
            layer, srcs = self._layers[i], self._srcs[i]
            ins = outs[srcs[0]] if len(srcs) == 1 else [outs[s] for s in srcs]
            outs.append(layer.forward(ins, training))
            yield self.order[i], outs[i]

    def backward_nodes(self, grad) -> Iterator[tuple[str, Any, list, list]]:
        """:meth:`backward` from ``grad`` (dL/doutput), one node at a time, the output first.

        Yields ``(node id, dL/d its output, parts, sent)``: ``parts`` lists the
        ``(consumer id, gradient)`` that were summed, in the order :meth:`backward` adds
        them (empty for the output node); ``sent`` the ``(source id, gradient)`` its backward
        returned for each input (None where the layer skipped it).
        """
        parts: list[list[tuple[str, Any]]] = [[] for _ in self._layers]
        for i in range(len(self._layers) - 1, -1, -1):
            nid = self.order[i]
            if i == len(self._layers) - 1:
                g = grad
            else:
                g = None
                for _, gs in parts[i]:
                    # adjoint of fan-out is a sum over the consumers
                    g = gs if g is None else g + gs
            srcs = self._srcs[i]
            sent: list[tuple[str, Any]] = []
            if i > 0 and g is not None:
                gin = self._layers[i].backward(g)
                gin = (gin,) if len(srcs) == 1 else gin
                for s, gs in zip(srcs, gin):
                    sent.append((self.order[s], gs))
                    if gs is not None:
                        parts[s].append((nid, gs))
            yield nid, g, parts[i], sent
            parts[i] = []

    # -- gradient checkpointing ---------------------------------------------------------------
    # The chain is cut into ``checkpoint_segments`` segments. Forward keeps only each
    # segment's input and drops the layers' caches; backward recomputes one segment at a
    # time and backpropagates through it. Peak activation memory falls from all layers to
    # about one segment plus the segment inputs, for roughly one extra forward pass.
    def _segment_bounds(self) -> list[tuple[int, int]]:
        n = len(self._layers) - 1  # layers after the Input
        k = max(1, min(int(self.checkpoint_segments), n))
        edges = [1 + round(i * n / k) for i in range(k + 1)]
        return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]

    def _forward_checkpointed(self, x):
        if not self._chain:
            raise ConfigError(
                "gradient checkpointing needs a chain network (no branches); "
                "set checkpoint_segments to 0 for this network"
            )
        self._segments = []
        bounds = self._segment_bounds()
        for si, (a, b) in enumerate(bounds):
            last = si == len(bounds) - 1
            # What a recomputation must replay identically: random streams and running stats.
            rng_states = {
                i: {
                    k: g.bit_generator.state
                    for k, g in self._layers[i].random_generators().items()
                }
                for i in range(a, b)
            }
            buffers = {
                i: {k: v.copy() for k, v in self._layers[i].buffers.items()}
                for i in range(a, b)
                if self._layers[i].buffers
            }
            self._segments.append((a, b, x, (rng_states, buffers)))
            for i in range(a, b):
                x = self._layers[i].forward(x, True)
                if not last:
                    self._layers[i].clear_cache()
        return x

    def _backward_checkpointed(self, grad):
        segments, self._segments = self._segments, None
        for si in range(len(segments) - 1, -1, -1):
            a, b, x, (rng_states, buffers) = segments[si]
            if si != len(segments) - 1:
                after = {
                    i: {k: v.copy() for k, v in self._layers[i].buffers.items()} for i in buffers
                }
                for i, states in rng_states.items():
                    for k, st in states.items():
                        getattr(self._layers[i], k).bit_generator.state = st
                for i, bufs in buffers.items():
                    for k, v in bufs.items():
                        self._layers[i].buffers[k][...] = v
                for i in range(a, b):
                    x = self._layers[i].forward(x, True)
                for i, bufs in after.items():  # running statistics advance once per step
                    for k, v in bufs.items():
                        self._layers[i].buffers[k][...] = v
            for i in range(b - 1, a - 1, -1):
                grad = self._layers[i].backward(grad)
            segments[si] = None  # free the segment input as soon as it is used
        return grad

    def zero_grad(self) -> None:
        for _, p in self._named:
            p.has_grad = False

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        """Evaluation-mode output on the host, in chunks (``eval_rows``, see
        :func:`eval_rows`) so large inputs fit."""
        batch_size = batch_size or self.eval_rows
        outs = []
        for start in range(0, len(x), batch_size):
            y = self.forward(x[start : start + batch_size], training=False)
            outs.append(to_host(y))
        for layer in self._layers:
            layer.clear_cache()
        return np.concatenate(outs) if outs else np.zeros((0, *self.output_shape), self.dtype)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers as host numpy copies, keyed ``<node id>.<name>``."""
        out = {name: to_host(p.data).copy() for name, p in self._named}
        for name, b in self.named_buffers():
            out[name] = to_host(b).copy()
        return out

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Load arrays by name; reports every missing, unexpected and mis-shaped name at once."""
        targets: dict[str, tuple[Layer, str, str]] = {}
        for nid, layer in self.layers.items():
            for pname in layer.params:
                targets[f"{nid}.{pname}"] = (layer, "param", pname)
            for bname in layer.buffers:
                targets[f"{nid}.{bname}"] = (layer, "buffer", bname)
        missing = [n for n in targets if n not in state]
        unexpected = [n for n in state if n not in targets]
        mis_shaped = []
        for name, value in state.items():
            if name in targets:
                layer, kind, key = targets[name]
                current = layer.params[key].data if kind == "param" else layer.buffers[key]
                if tuple(np.shape(value)) != tuple(current.shape):
                    mis_shaped.append(
                        f"{name}: expected {tuple(current.shape)}, "
                        f"received {tuple(np.shape(value))}"
                    )
        errors = []
        if mis_shaped:
            errors.append("mis-shaped: " + "; ".join(mis_shaped))
        if strict and missing:
            errors.append("missing: " + ", ".join(missing))
        if strict and unexpected:
            errors.append("unexpected: " + ", ".join(unexpected))
        if errors:
            raise ConfigError("The weights do not fit this network. " + ". ".join(errors) + ".")
        for name, value in state.items():
            if name not in targets:
                continue
            layer, kind, key = targets[name]
            target = layer.params[key].data if kind == "param" else layer.buffers[key]
            # buffers keep their own dtype (BatchNorm's num_batches_tracked is an integer)
            target[...] = self.xp.asarray(to_host(value), dtype=target.dtype)

    def to(self, backend: str | Backend) -> Network:
        """Move parameters, gradients and buffers to another backend, in place."""
        be = get_backend(backend)
        if be.name == self.backend.name:
            return self
        for layer in self._layers:
            for p in layer.params.values():
                p.data = be.xp.asarray(to_host(p.data))
                p.grad = be.xp.asarray(to_host(p.grad))
            for k, b in list(layer.buffers.items()):
                layer.buffers[k] = be.xp.asarray(to_host(b))
            layer.xp = be.xp
            layer.clear_cache()
            layer._scratch.clear()
        self.backend, self.xp = be, be.xp
        if self.flat is not None:
            self.flatten_parameters()
        return self

    def summary(self) -> str:
        rows = [f"{'node':<14}{'type':<14}{'output shape':<22}{'params':>10}"]
        for nid in self.order:
            shape = "(" + ", ".join(["batch", *map(str, self.plan.shapes[nid])]) + ")"
            rows.append(
                f"{nid:<14}{self.layers[nid].type_name:<14}{shape:<22}{self.layers[nid].param_count():>10,}"
            )
        rows.append(f"total parameters: {self.param_count():,}")
        return "\n".join(rows)
