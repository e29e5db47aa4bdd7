"""bplab: a lab for training neural networks by backpropagation and seeing it happen.

The engine is Qt-free: importing ``bplab`` never imports PySide6, pyqtgraph or ``ui``.
"""

__version__ = "0.1.0"

from bplab.backend import get_backend, to_host  # noqa: E402
from bplab.errors import BplabError, ConfigError, NetworkError, ShapeError  # noqa: E402
from bplab.graph import Network, analyze  # noqa: E402

__all__ = [
    "BplabError", "ConfigError", "Network", "NetworkError", "ShapeError",
    "__version__", "analyze", "get_backend", "to_host",
]
