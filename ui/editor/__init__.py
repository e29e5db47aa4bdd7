"""The network editor: canvas scene and view, layer palette, inspector, problems list."""

from ui.editor.inspector import Inspector
from ui.editor.palette import LayerPalette
from ui.editor.problems import ProblemsList
from ui.editor.scene import LAYER_MIME, NODES_MIME, NetworkScene
from ui.editor.view import NetworkView

__all__ = [
           "LAYER_MIME",
           "NODES_MIME",
           "Inspector",
           "LayerPalette",
           "NetworkScene",
           "NetworkView",
           "ProblemsList",
]
