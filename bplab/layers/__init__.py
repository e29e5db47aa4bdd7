"""All layer types. Importing this package registers every layer in ``LAYERS``."""

from bplab.layers import (  # noqa: F401  (registration side effects)
    activations,
    conv,
    core,
    merge,
    normalization,
    pooling,
    recurrent,
    regularization,
)
from bplab.layers.base import BuildContext, Layer, Option, Parameter
from bplab.layers.registry import (
    CATEGORIES,
    LAYERS,
    by_category,
    has_trait,
    layer_class,
    register,
    type_names,
)

__all__ = [
    "BuildContext", "CATEGORIES", "LAYERS", "Layer", "Option", "Parameter",
    "by_category", "has_trait", "layer_class", "register", "type_names",
]
