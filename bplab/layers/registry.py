"""Layer types by the name used in project files (``"Dense"``, ``"ReLU"``, ...)."""

from __future__ import annotations

from typing import Any

from bplab.layers.base import Layer

LAYERS: dict[str, type[Layer]] = {}

CATEGORIES = (
    "Core", "Activations", "Convolution", "Recurrent", "Normalization", "Regularization", "Merge",
)


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


def has_trait(type_name: Any, trait: str) -> bool:
    """Whether the layer type named ``type_name`` declares ``trait`` (False for unknown types).

    ``has_trait("Dense", "has_weights")`` is True; ``has_trait("Nope", "is_activation")`` is
    False, so callers can ask about nodes whose type is still wrong.
    """
    cls = LAYERS.get(type_name) if isinstance(type_name, str) else None
    return bool(getattr(cls, trait)) if cls is not None else False


def type_names(trait: str) -> tuple[str, ...]:
    """Type names of every registered layer that declares ``trait``, in registration order."""
    return tuple(name for name, cls in LAYERS.items() if getattr(cls, trait))
