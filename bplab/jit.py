"""Compiled kernels for small networks on the CPU (numba, the ``fast`` extra; optional).

On a Playground-size network numpy's arithmetic is cheap and its calls are not: every call
costs about a microsecond of dispatch however few numbers it touches, and a step of a
2-8-8-2 network is dozens of calls on arrays of a few hundred numbers. Where one step of
the maths takes several numpy calls, :mod:`bplab.jit_kernels` has it as one compiled
loop: the softmax cross-entropy with its gradient and hit count (eleven numpy calls: its
forward and backward at batch 32 take 15 us, 2.5 with the kernel) and the gradients of
Tanh and Sigmoid (three calls each). What numpy does in one call stays numpy: a product
(BLAS beats a compiled loop from 16 x 16 up), a tanh or an exp (numpy's are vectorised;
libm's, which a loop calls, are not).

The kernels are for networks whose step is call-bound, in runs long enough to repay their
loading: :func:`kernels_for` hands them to a numpy network whose largest layer output, over
a batch, has at most :data:`SMALL_ELEMENTS` numbers (the bench's A, B and D; not the
MNIST-size MLP, nor a CNN on images, which never import numba) when the run has at least
:data:`PAYBACK_STEPS` steps. Layers and losses hold the kernels in their ``jit`` attribute
(None: the numpy code). Set ``BPLAB_JIT=0`` to run without them; without numba installed
they are simply not used.
"""

from __future__ import annotations

import math
import os
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "DENSE_BACKWARD_MACS", "DENSE_FORWARD_MACS", "DTYPES", "PAYBACK_STEPS", "SMALL_ELEMENTS",
    "available", "kernels", "kernels_for", "status",
]

# Largest layer output (batch x features) of a network that takes the kernels. Measured on
# bplab bench's workloads: A (256 numbers), D (512) and B (8,192) gain 5-35 % a step, where
# the cross-entropy's and the activations' calls are a large share; C (32,768 at batch 128)
# would gain under 2 % (its cross-entropy's 19 us of a 1.3 ms step), E (800,000) less.
SMALL_ELEMENTS = 16_384

# Importing numba and loading the compiled kernels from its cache takes 0.25-0.35 s, once
# per process; a step of the bench's A or D saves 12-19 us with them. A run shorter than this
# (every example project: 650-3,900 steps) finishes sooner on numpy alone.
PAYBACK_STEPS = 25_000

# A Dense layer takes the compiled forward when batch x inputs x units is at most this many
# multiply-adds, and the compiled backward up to the second: below, numpy's calls (a product
# and a bias add; three products) cost more than the arithmetic; above, BLAS wins. Measured
# one core, batch 32: forward 0.8 us against 2.0 at 2 -> 8 units, 2.0 against 3.3 at 8 -> 8,
# about even at 16 -> 8 and 3.9 against 2.2 at 16 -> 16; backward 2.3 against 2.9 at
# 2 -> 8, even at 8 -> 8, 2.5 against 1.9 at 16 -> 16.
DENSE_FORWARD_MACS = 2_048
DENSE_BACKWARD_MACS = 1_024

# The dtypes the kernels are used for (numba compiles one version of each per dtype).
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_loaded: ModuleType | None = None
_failed: str | None = None


def _wanted() -> bool:
    return os.environ.get("BPLAB_JIT", "1").strip().lower() not in ("0", "off", "false", "no")


def kernels() -> ModuleType | None:
    """:mod:`bplab.jit_kernels`, imported on first call; None when numba is missing or
    ``BPLAB_JIT=0``."""
    global _loaded, _failed
    if not _wanted() or _failed is not None:
        return None
    if _loaded is None:
        try:
            from bplab import jit_kernels
        except ImportError as exc:  # numba not installed, or built for another numpy
            _failed = str(exc)
            return None
        _loaded = jit_kernels
    return _loaded


def available() -> bool:
    """True when the kernels can be used here (numba importable, not turned off)."""
    return kernels() is not None


def kernels_for(network: Any, batch_size: int, steps: int) -> ModuleType | None:
    """The kernels for a numpy ``network`` trained at ``batch_size`` for ``steps`` steps when
    its step is call-bound (see :data:`SMALL_ELEMENTS`) and the run is long enough to repay
    loading them (:data:`PAYBACK_STEPS`); None otherwise, or when unavailable. Decided from
    the project alone, never from what this process has loaded before: the same project
    trains to the same weights in the app, on the command line and after a resume."""
    if steps < PAYBACK_STEPS:
        return None
    if network.backend.is_gpu or network.dtype not in DTYPES:
        return None
    largest = max((math.prod(s) for s in network.plan.shapes.values()), default=0)
    if largest * batch_size > SMALL_ELEMENTS:
        return None
    return kernels()


def status() -> str:
    """One line for the bench's machine line: which code small networks run."""
    if not _wanted():
        return "numpy only (BPLAB_JIT=0)"
    if kernels() is None:
        return f"numpy only (numba unavailable: {_failed})"
    import numba

    return f"numba {numba.__version__} kernels on small networks (BPLAB_JIT=0: numpy only)"
