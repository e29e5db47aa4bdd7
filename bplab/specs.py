"""Specs in project files: a name, or an object with a ``type`` and its parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from bplab.errors import ConfigError

T = TypeVar("T")


def resolve_spec(spec: Any, registry: Mapping[str, T], what: str) -> tuple[T, dict[str, Any]]:
    """``"adam"`` or ``{"type": "adam", "lr": 0.01}`` -> (registry entry, parameters).

    >>> resolve_spec({"type": "a", "x": 1}, {"a": int}, "thing")
    (<class 'int'>, {'x': 1})
    """
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"a {what} is a name or {{'type': name, ...}}, received {spec!r}")
    config = dict(spec)
    name = config.pop("type")
    entry = registry.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ConfigError(f"unknown {what} {name!r}: choose one of {', '.join(registry)}")
    return entry, config
