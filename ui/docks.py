"""The window's dockable panels: where they start, and the layout kept between sessions.

:class:`DockLayout` wraps the editor panels, the training panel, every plot, the
diagnosis and the recorded runs (``runs_panel``, a :class:`~bplab.ui.runs_panel.RunsPanel`
it makes) in docks (``docks``, by object name), arranges them (editor left, training
right, two tab groups of plots under the canvas), and saves, restores and resets the
window's geometry and dock state in the app's settings.
"""

from __future__ import annotations

from bplab.ui.plots import PLOTS
from bplab.ui.runs_panel import RunsPanel
from bplab.ui.stepthrough.panel import StepPanel
from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QTabBar,
    QWidget,
)

__all__ = ["LEFT_TABS", "REGRESSION_TITLES", "STATE_VERSION", "DockLayout", "fit_to_screen",
           "scrolled"]

STATE_VERSION = 6  # bump when the set of docks changes: old saved layouts are then ignored
# Pictures of the data and the weights on the left, curves on the right; the diagnosis and
# the recorded runs sit on the left too, so their findings and the curves they cite (or
# overlay) can be seen together.
LEFT_TABS = (
    "boundary", "mistakes", "confusion", "histograms", "activations", "diagnosis", "runs",
)

# What a tab shows on a regression (targets, not classes): its title then
REGRESSION_TITLES = {"confusion": "Predicted vs true", "metrics": "R²",
                     "boundary": "Fitted function"}


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area: its fields keep at least their minimum height
    (a short dock scrolls instead of squashing them), and a taller panel never asks the
    window to grow."""
    area = QScrollArea()
    area.setObjectName(f"scroll_{widget.objectName() or type(widget).__name__}")
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    return area


def fit_to_screen(window: QWidget, width: int = 1500, height: int = 950) -> None:
    """Resize ``window`` to ``width`` x ``height``, or less where the screen is smaller,
    and move it onto the screen."""
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        window.resize(width, height)
        return
    avail = screen.availableGeometry()
    window.resize(min(width, avail.width()), min(height, avail.height()))
    frame = window.frameGeometry()
    if not avail.contains(frame):
        window.move(max(avail.left(), min(frame.left(), avail.right() - frame.width())),
                    max(avail.top(), min(frame.top(), avail.bottom() - frame.height())))


class DockLayout(QObject):
    """Builds the window's docks and keeps their layout (see the module)."""

    def __init__(self, window: QMainWindow):
        """``window`` is the :class:`~bplab.ui.main_window.MainWindow`, its panels and plots
        already made (not imported here: it imports this module)."""
        super().__init__(window)
        self.window = window
        self.docks: dict[str, QDockWidget] = {}
        self._titles: dict[str, str] = {}  # each dock's first title (see title_for_task)
        self._default_state = QByteArray()
        self.runs_panel = RunsPanel(window.doc, window)
        self._build_editor_docks()
        self._build_plot_docks()
        self._build_step_dock()
        self._tab_timer = QTimer(self)  # hide_stale_tab_bars once the layout has settled
        self._tab_timer.setSingleShot(True)
        self._tab_timer.setInterval(0)
        self._tab_timer.timeout.connect(self.hide_stale_tab_bars)
        window.installEventFilter(self)

    def _dock(self, name: str, title: str, widget: QWidget, tip: str) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        self._titles[name] = title
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setToolTip(tip)
        dock.toggleViewAction().setToolTip(f"Show or hide the {title} panel")
        self.docks[name] = dock
        return dock

    def _build_editor_docks(self) -> None:
        w = self.window
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        w.addDockWidget(left, self._dock("palette", "Layers", w.palette,
                                         "Layers: drag one onto the canvas"))
        w.addDockWidget(left, self._dock("inspector", "Inspector", scrolled(w.inspector),
                                         "The selected layer's settings"))
        w.tabifyDockWidget(self.docks["inspector"],
                           self._dock("problems", "Problems", w.problems,
                                      "What stops the network from training"))
        self.docks["inspector"].raise_()
        w.addDockWidget(right, self._dock("training", "Training", w.panel,
                                          "Data, loss, optimiser and run settings"))

    def _build_plot_docks(self) -> None:
        w = self.window
        # Two tab groups under the canvas: pictures of the data and weights on the left,
        # curves and the diagnosis on the right. Split first, then tabify into each group.
        left_group = [n for n, *_ in PLOTS if n in w.plots and n in LEFT_TABS]
        right_group = [n for n, *_ in PLOTS if n in w.plots and n not in LEFT_TABS]
        for name, title, _, tip in PLOTS:
            if name in w.plots:
                self._dock(name, title, w.plots[name], tip)
        if w.diagnosis is not None:
            self._dock("diagnosis", "Diagnosis", w.diagnosis,
                       "What the gradients say about training, with one-click fixes")
            (left_group if "diagnosis" in LEFT_TABS else right_group).append("diagnosis")
        self._dock("runs", "Runs", self.runs_panel,
                   "Every training run: compare them on the plots, restore their settings")
        left_group.append("runs")
        groups = [g for g in (left_group, right_group) if g]
        heads = []
        for i, group in enumerate(groups):
            head = self.docks[group[0]]
            if i == 0:
                w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, head)
            else:
                w.splitDockWidget(self.docks[groups[0][0]], head, Qt.Orientation.Horizontal)
            heads.append(head)
        for group in groups:
            for name in group[1:]:
                w.tabifyDockWidget(self.docks[group[0]], self.docks[name])
        for head in heads:
            head.raise_()
        if len(heads) == 2:
            w.resizeDocks(heads, [500, 700], Qt.Orientation.Horizontal)
        w.resizeDocks([self.docks["palette"], self.docks["inspector"]], [320, 420],
                      Qt.Orientation.Vertical)
        w.resizeDocks([self.docks["palette"], self.docks["training"]], [230, 330],
                      Qt.Orientation.Horizontal)
        if heads:
            w.resizeDocks([heads[0]], [340], Qt.Orientation.Vertical)

    def _build_step_dock(self) -> None:
        """Train > Step through…'s panel: beside the training panel, hidden until used."""
        self.step_panel = StepPanel(self.window)
        dock = self._dock("step_through", "Step through", self.step_panel,
                          "One training step, node by node: forward, loss, backward, update")
        self.window.tabifyDockWidget(self.docks["training"], dock)
        self.docks["training"].raise_()
        dock.hide()

    def hide_stale_tab_bars(self) -> int:
        """Hide the dock tab bars Qt left visible from an earlier layout (after a
        restoreState or a resize it makes new ones and sometimes leaves the old ones
        showing: doubled tab bars over the plots). A bar in use touches the dock of its
        current tab; Qt shows a bar again whenever it uses it. Returns how many it hid."""
        w, hidden = self.window, 0
        by_title = {d.windowTitle(): d for d in self.docks.values()}
        for bar in w.findChildren(QTabBar):
            if bar.parent() is not w:
                continue
            # Whole titles, scrolled when the group is narrow, never "Lo…", "Accu…".
            bar.setElideMode(Qt.TextElideMode.ElideNone)
            bar.setUsesScrollButtons(True)
            if not bar.isVisible():
                continue
            dock = by_title.get(bar.tabText(bar.currentIndex()))
            g, b = dock.geometry() if dock is not None else None, bar.geometry()
            touching = (g is not None and dock.isVisible()
                        and abs(b.left() - g.left()) <= 4
                        and (abs(b.top() - g.bottom()) <= 6 or abs(b.bottom() - g.top()) <= 6))
            if not touching:
                bar.hide()
                hidden += 1
        return hidden

    def eventFilter(self, obj, event) -> bool:
        # Resize only: a LayoutRequest comes many times a second while training (status
        # texts, plots), and the check would cost the GUI thread a third of a short run.
        if obj is self.window and event.type() == QEvent.Type.Resize:
            self._tab_timer.start()
        return False

    def remember_default(self) -> None:
        """Take the layout as it is now (every dock and toolbar in place) as the one
        :meth:`reset` goes back to."""
        self._default_state = self.window.saveState(STATE_VERSION)

    def restore(self) -> None:
        """The saved geometry and dock layout, or a window that fits the screen."""
        w, settings = self.window, self.window.settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            w.restoreGeometry(geometry)
        else:
            fit_to_screen(w)
        state = settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            w.restoreState(state, STATE_VERSION)
        self._tab_timer.start()

    def save(self) -> None:
        w, settings = self.window, self.window.settings
        settings.setValue("window/geometry", w.saveGeometry())
        settings.setValue("window/state", w.saveState(STATE_VERSION))
        settings.sync()

    def reset(self) -> None:
        """View > Reset layout: every panel where it started (Step through hidden again),
        and a window that fits the screen."""
        self.window.restoreState(self._default_state, STATE_VERSION)
        for name, dock in self.docks.items():
            dock.setFloating(False)
            dock.setVisible(name != "step_through")
        if not self.window.isMaximized() and not self.window.isFullScreen():
            fit_to_screen(self.window)
        self._tab_timer.start()

    def title_for_task(self, task: str) -> None:
        """Name the tabs for what they show: on a regression, the confusion tab is the
        predicted-against-true plot, the accuracy tab the R² and the decision boundary the
        function fitted to the targets (:data:`REGRESSION_TITLES`)."""
        for name, title in REGRESSION_TITLES.items():
            dock = self.docks.get(name)
            if dock is not None:
                dock.setWindowTitle(title if task == "regression" else self._titles[name])

    def show_tab(self, name: str) -> bool:
        """Bring a plot (or any dock) to the front by object name or title, e.g. ``"loss"``
        (a tab renamed for a regression answers to its first title too)."""
        key = name.lower().replace(" ", "_").replace("-", "_")
        for n, dock in self.docks.items():
            titles = (dock.windowTitle(), self._titles.get(n, ""))
            if key in (n, *(t.lower().replace(" ", "_") for t in titles)):
                dock.show()
                dock.raise_()
                return True
        return False
