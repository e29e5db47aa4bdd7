"""The network against its data set, shown on the nodes (issue 14's output checks).

:class:`DataChecks` asks :func:`bplab.checks.output_problems` whenever the network, the loss
or the previewed data set changes, and hands the problems to the scene, which shows them on
their nodes like the network's own (red outline, tooltip, the inspector's problem line):
"Dense 'out' has 16 units but the data set 'spiral' has 2 classes: set the last layer's
units to 2".
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from bplab.checks import output_problems

__all__ = ["DataChecks"]


class DataChecks(QObject):
    """Keeps ``window.scene``'s data problems up to date (see the module)."""

    def __init__(self, window):
        """``window`` is the :class:`~bplab.ui.main_window.MainWindow` (its ``doc``,
        ``scene`` and training ``panel`` made)."""
        super().__init__(window)
        self.window = window
        self.dataset = None
        window.panel.dataset_loaded.connect(self._on_panel_dataset_loaded)
        window.doc.plan_changed.connect(self._on_doc_plan_changed)
        window.doc.settings_changed.connect(self._on_doc_settings_changed)
        window.doc.project_replaced.connect(self._on_doc_project_replaced)

    def problems(self) -> dict[str, list[str]]:
        """Node id -> messages, for the current plan, loss and previewed data set."""
        if self.dataset is None:
            return {}
        doc = self.window.doc
        found: dict[str, list[str]] = {}
        for p in output_problems(doc.plan, self.dataset, str(doc.get("loss.type", ""))):
            found.setdefault(p.node, []).append(p.message)
        return found

    def refresh(self) -> None:
        found = self.problems()
        self.window.scene.set_data_problems(found)
        self.window.inspector.set_data_problems(found)
        self.window.problems.set_data_problems(found)

    def _on_panel_dataset_loaded(self, ds) -> None:
        self.dataset = ds
        self.refresh()

    def _on_doc_plan_changed(self, _plan) -> None:
        self.refresh()

    def _on_doc_settings_changed(self, path: str) -> None:
        if path.split(".")[0] == "loss":
            self.refresh()

    def _on_doc_project_replaced(self) -> None:
        self.refresh()  # the panel loads the new project's data and says so
