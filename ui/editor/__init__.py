"""The network editor: canvas scene and view, layer palette, inspector, problems list."""

from bplab.ui.editor.inspector import Inspector
from bplab.ui.editor.palette import LayerPalette
from bplab.ui.editor.problems import ProblemsList
from bplab.ui.editor.scene import LAYER_MIME, NODES_MIME, NetworkScene
from bplab.ui.editor.view import NetworkView

__all__ = [
           "LAYER_MIME",
           "NODES_MIME",
           "Inspector",
           "LayerPalette",
           "NetworkScene",
           "NetworkView",
           "ProblemsList",
]
