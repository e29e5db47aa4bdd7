"""All layer types. Importing this package registers every layer in ``LAYERS``."""

from bplab.layers.base import BuildContext, Layer, Option, Parameter
from bplab.layers.registry import CATEGORIES, LAYERS, by_category, layer_class, register
from bplab.layers import (  # noqa: F401,E402  (registration side effects)
    activations, conv, core, merge, normalization, pooling, regularization,
)

__all__ = [
    "BuildContext", "CATEGORIES", "LAYERS", "Layer", "Option", "Parameter",
    "by_category", "layer_class", "register",
]
