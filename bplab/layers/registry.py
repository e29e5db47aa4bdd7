"""Layer types by the name used in project files (``"Dense"``, ``"ReLU"``, ...)."""

from __future__ import annotations

from bplab.layers.base import Layer

LAYERS: dict[str, type[Layer]] = {}

CATEGORIES = ("Core", "Activations", "Convolution", "Normalization", "Regularization", "Merge")


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make ``cls`` buildable from a spec by its ``type_name``."""
    if not cls.type_name:
        raise TypeError(f"{cls.__name__} has no type_name")
    if cls.category not in CATEGORIES:
        raise TypeError(f"{cls.__name__}.category {cls.category!r} is not one of {CATEGORIES}")
    LAYERS[cls.type_name] = cls
    return cls


def layer_class(type_name: str) -> type[Layer] | None:
    return LAYERS.get(type_name)


def by_category() -> dict[str, list[type[Layer]]]:
    out: dict[str, list[type[Layer]]] = {c: [] for c in CATEGORIES}
    for cls in LAYERS.values():
        out[cls.category].append(cls)
    return out
