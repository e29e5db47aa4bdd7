"""QObject adapters over bplab data, emitting domain signals."""

from ui.models.document import MISSING, ProjectDocument
from ui.models.layout import layered_layout

__all__ = ["MISSING", "ProjectDocument", "layered_layout"]
