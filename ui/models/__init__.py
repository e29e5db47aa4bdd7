"""QObject adapters over bplab data, emitting domain signals."""

from bplab.ui.models.document import MISSING, ProjectDocument
from bplab.ui.models.layout import layered_layout

__all__ = ["MISSING", "ProjectDocument", "layered_layout"]
