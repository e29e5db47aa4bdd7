"""The canvas layout is the engine's (:mod:`bplab.graph.layout`): a fix that adds nodes
places them the same way from the app and from ``bplab fix``. Re-exported here for the
editor, which lays out the networks it opens and offers Auto layout."""

from __future__ import annotations

from bplab.graph.layout import MAX_ROWS, X_SPACING, Y_SPACING, layered_layout, relayout

__all__ = ["MAX_ROWS", "X_SPACING", "Y_SPACING", "layered_layout", "relayout"]
