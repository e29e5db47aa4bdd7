"""Array backends: numpy everywhere, CuPy where a CUDA device answers.

Every op in bplab is written once against an array module ``xp`` (Chainer's
``get_array_module`` idiom). This module decides which ``xp`` a network uses and
is the single place where arrays move back to the host (:func:`to_host`).

>>> be = get_backend("numpy")
>>> be.xp is numpy
True
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy

__all__ = [
    "BACKEND_CHOICES",
    "Backend",
    "BackendUnavailable",
    "cupy_status",
    "get_array_module",
    "get_backend",
    "summer",
    "to_host",
]

BACKEND_CHOICES = ("auto", "numpy", "cupy")


class BackendUnavailable(RuntimeError):
    """Raised when a backend was asked for explicitly but cannot run here."""


@dataclass(frozen=True)
class Backend:
    """An array module plus what a user needs to know about the device behind it."""

    name: str  # "numpy" or "cupy"
    xp: ModuleType
    device_name: str
    memory_bytes: int | None = None

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def asarray(self, a: Any, dtype: Any = None):
        """Move ``a`` onto this backend's device (a no-op for numpy arrays on numpy)."""
        return self.xp.asarray(a, dtype=dtype)

    def describe(self) -> str:
        if self.memory_bytes:
            return f"{self.device_name} ({self.memory_bytes / 2**30:.1f} GiB)"
        return self.device_name

    def synchronize(self) -> None:
        """Wait for queued device work (timing needs it on a GPU; free on numpy)."""
        if self.is_gpu:
            self.xp.cuda.get_current_stream().synchronize()


NUMPY = Backend("numpy", numpy, "CPU (numpy)")

# The CuPy probe runs once; its result, including the reason it failed, is kept so the
# UI and the CLI can tell the user *why* the GPU is not used.
_cupy_probe: tuple[Backend | None, str | None] | None = None


def cupy_status() -> tuple[Backend | None, str | None]:
    """Return ``(backend, None)`` if CuPy can run, else ``(None, reason)``."""
    global _cupy_probe
    if _cupy_probe is None:
        _cupy_probe = _probe_cupy()
    return _cupy_probe


def _probe_cupy() -> tuple[Backend | None, str | None]:
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        return None, f"CuPy is not importable: {type(exc).__name__}: {exc}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return None, "CuPy imported, but no CUDA device is present"
        dev = cupy.cuda.Device(0)
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        total = int(props.get("totalGlobalMem", 0)) or None
        # One tiny kernel proves the driver, runtime and compiler all work.
        (cupy.arange(4, dtype=cupy.float32) * 2).sum().item()
    except Exception as exc:
        return None, f"CuPy imported, but CUDA failed: {type(exc).__name__}: {exc}"
    return Backend("cupy", cupy, f"GPU {name}", total), None


def get_backend(choice: str | Backend = "auto") -> Backend:
    """Resolve ``"auto" | "numpy" | "cupy"`` to a :class:`Backend`.

    ``auto`` picks CuPy when it imports and a CUDA device answers, else numpy.
    ``cupy`` where CuPy cannot run raises :class:`BackendUnavailable` with the reason.
    """
    if isinstance(choice, Backend):
        return choice
    if choice not in BACKEND_CHOICES:
        raise ValueError(
            f"backend must be one of {', '.join(BACKEND_CHOICES)}, received {choice!r}"
        )
    if choice == "numpy":
        return NUMPY
    backend, reason = cupy_status()
    if backend is not None:
        return backend
    if choice == "cupy":
        raise BackendUnavailable(f"the cupy backend cannot run here: {reason}")
    return NUMPY


def get_array_module(a: Any) -> ModuleType:
    """The array module that owns ``a`` (numpy for anything that is not a CuPy array)."""
    mod = type(a).__module__
    if mod.startswith("cupy"):
        import cupy

        return cupy
    return numpy


def to_host(a: Any) -> numpy.ndarray:
    """Return ``a`` as a numpy array. The one place device data comes back to the host."""
    if isinstance(a, numpy.ndarray):
        return a
    get = getattr(a, "get", None)
    if get is not None and type(a).__module__.startswith("cupy"):
        return get()
    return numpy.asarray(a)


def _method_sum(a: Any, axis: Any = None) -> Any:
    return a.sum(axis=axis)


def summer(xp: ModuleType):
    """``f(a, axis)``: the sum over ``axis`` (None: all), as ``a.sum(axis=axis)`` computes it.

    On numpy, the ufunc's own reduce, skipping ndarray.sum's Python wrapper, which costs
    more than the arithmetic on a Playground-size batch; on CuPy, the method (not every
    CuPy has ``ufunc.reduce``)."""
    return numpy.add.reduce if xp is numpy else _method_sum
