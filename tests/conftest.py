"""Shared fixtures: backends to parameterise over, offscreen Qt, torch availability."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from bplab.backend import cupy_status


def _backends():
    params = [pytest.param("numpy", id="numpy")]
    cupy_backend, reason = cupy_status()
    params.append(
        pytest.param(
            "cupy",
            id="cupy",
            marks=[pytest.mark.gpu, pytest.mark.skipif(cupy_backend is None, reason=str(reason))],
        )
    )
    return params


@pytest.fixture(params=_backends())
def backend_name(request) -> str:
    """'numpy', and 'cupy' where CuPy and a CUDA device are present (skipped otherwise)."""
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("BPLAB_TEST_BACKEND") == "cupy":
        # On a GPU machine run the engine suite with CuPy only: keep the cupy-parameterised cases.
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and callspec.params.get("backend_name") == "numpy":
                item.add_marker(pytest.mark.skip(reason="BPLAB_TEST_BACKEND=cupy"))
