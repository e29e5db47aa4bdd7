"""The machine header of a report: Python, numpy and its BLAS, torch, CPUs, the GPU."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

from bplab import jit
from bplab.backend import cupy_status


def load_torch():
    """The torch package, or None where it does not import."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "no torch here"
        return None
    return torch


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "numpy": np.__version__,
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
    }
    try:

        info["cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:

        info["cpus"] = os.cpu_count()
    blas = []
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                blas.append({k: lib.get(k) for k in (
                    "internal_api", "version", "architecture", "num_threads", "threading_layer",
                    "filepath")})
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass
    if not blas:
        try:
            cfg = np.show_config(mode="dicts")
            dep = cfg["Build Dependencies"]["blas"]
            blas.append({"internal_api": dep.get("name"), "version": dep.get("version")})
        except Exception:  # noqa: BLE001
            pass
    info["blas"] = blas

    info["env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                              "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                   if k in os.environ}
    torch = load_torch()
    info["torch"] = None if torch is None else torch.__version__
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cuda"] = bool(torch.cuda.is_available())
    info["jit"] = jit.status()  # what bplab's own process uses on small networks
    cupy_backend, reason = cupy_status()
    info["cupy"] = cupy_backend.describe() if cupy_backend else None
    info["cupy_reason"] = reason
    return info


def blas_line(info: dict[str, Any]) -> str:
    if not info["blas"]:
        return "numpy BLAS: unknown"
    parts = []
    for b in info["blas"]:
        s = f"{b.get('internal_api')} {b.get('version')}"
        if b.get("architecture"):
            s += f" ({b['architecture']} kernel"
            s += f", {b['num_threads']} threads)" if b.get("num_threads") else ")"
        parts.append(s)
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items()) or "no OPENBLAS_* overrides"
    return f"numpy BLAS: {'; '.join(parts)}; {env}"
