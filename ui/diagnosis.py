"""The diagnosis panel: what is wrong with the gradients, in plain words, with one-click fixes.

:class:`DiagnosisPanel` lists the latest :class:`bplab.diagnostics.Finding` objects. A fix
with an ``action`` gets an "Apply" button that hands the :class:`~bplab.diagnostics.Fix` to
the ``apply_fix`` callback. What a fix changes is the engine's answer
(:func:`bplab.fixes.edits_for`); :func:`bplab.ui.fix_controller.apply_fix` pushes it as one
undoable macro. How many samples the diagnosis looks at is the engine's
:data:`bplab.diagnostics.DIAGNOSIS_WINDOW`, read when shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from bplab import diagnostics
from bplab.diagnostics import Finding, Fix

__all__ = ["DiagnosisPanel", "FindingCard"]


# -- the panel ---------------------------------------------------------------------------------
_SEVERITY = {
    "error": (QStyle.StandardPixmap.SP_MessageBoxCritical, "#d62728", "#ff6b6b", "Error"),
    "warning": (QStyle.StandardPixmap.SP_MessageBoxWarning, "#b8860b", "#ffc34d", "Warning"),
    "info": (QStyle.StandardPixmap.SP_MessageBoxInformation, "#1f66b3", "#5aa9ff", "Note"),
}


def _is_dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Base).lightnessF() < 0.5


def _severity_color(severity: str, dark: bool) -> QColor:
    spec = _SEVERITY.get(severity, _SEVERITY["info"])
    return QColor(spec[2] if dark else spec[1])


def _format_evidence(evidence: dict[str, float]) -> str:
    parts = []
    for key, v in evidence.items():
        name = key.replace("_", " ")
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            text = str(v)
        elif key.startswith(("dead.", "saturated.")):
            text = f"{v:.0%}"
        elif key.startswith("steps."):  # through time: how many steps back the ratio spans
            text = f"{v:.0f}"
        else:
            text = f"{v:.3g}"
        parts.append(f"{name} = {text}")
    return " · ".join(parts)


class FindingCard(QFrame):
    """One finding: severity icon, title, message, evidence, and its fixes."""

    hovered = Signal(object)  # this card, or None when the pointer left
    clicked = Signal(object)
    apply_requested = Signal(object)  # the Fix

    def __init__(self, finding: Finding, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("findingCard")
        self.finding = finding
        self.selected = False
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to highlight the layers concerned on the canvas")
        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.setSpacing(8)
        self.icon = QLabel()
        icon_kind = _SEVERITY.get(finding.severity, _SEVERITY["info"])
        self.icon.setPixmap(self.style().standardIcon(icon_kind[0]).pixmap(QSize(22, 22)))
        self.icon.setToolTip(icon_kind[3])
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        outer.addWidget(self.icon)
        body = QVBoxLayout()
        body.setSpacing(3)
        outer.addLayout(body, 1)
        self.title = QLabel()
        self.title.setWordWrap(True)
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.evidence = QLabel()
        self.evidence.setWordWrap(True)
        self.evidence.setToolTip("The numbers behind this finding")
        self.layers = QLabel()
        self.layers.setWordWrap(True)
        for w in (self.title, self.message, self.evidence, self.layers):
            w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
            body.addWidget(w)
        small = self.evidence.font()
        small.setPointSizeF(max(small.pointSizeF() * 0.9, 7.0))
        self.evidence.setFont(small)
        self.layers.setFont(small)
        self.fix_rows: list[tuple[QLabel, QPushButton | None, QLabel]] = []
        for fix in finding.fixes:
            row = QHBoxLayout()
            row.setSpacing(6)
            label = QLabel()
            label.setWordWrap(True)
            row.addWidget(label, 1)
            status = QLabel()
            status.setToolTip("Undo it with Edit ▸ Undo (Ctrl+Z)")
            row.addWidget(status)
            button = None
            if fix.action:
                button = QPushButton("Apply")
                button.setToolTip("Apply this fix to the network as an undoable edit")
                button.setCursor(Qt.CursorShape.ArrowCursor)
                button.clicked.connect(self._on_apply_clicked)
                row.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
            body.addLayout(row)
            self.fix_rows.append((label, button, status))
        self.update_finding(finding)
        self.apply_style()

    def update_finding(self, finding: Finding) -> None:
        """New numbers for the same problem: update the texts in place (buttons survive)."""
        self.finding = finding
        self.title.setText(finding.title)
        self.message.setText(finding.message)
        self.evidence.setText(_format_evidence(finding.evidence))
        self.evidence.setVisible(bool(finding.evidence))
        self.layers.setText("Layers: " + ", ".join(finding.layers))
        self.layers.setVisible(bool(finding.layers))
        for (label, _button, _status), fix in zip(self.fix_rows, finding.fixes):
            label.setText(f"•  {fix.description}")

    def apply_style(self) -> None:
        dark = _is_dark(self)
        accent = _severity_color(self.finding.severity, dark)
        tint = QColor(accent)
        tint.setAlpha(60 if self.selected else 28)
        border = 2 if self.selected else 1
        rgba = f"rgba({tint.red()},{tint.green()},{tint.blue()},{tint.alpha()})"
        self.setStyleSheet(
            f"QFrame#findingCard {{ background: {rgba}; border: {border}px solid {accent.name()};"
            f" border-left: 4px solid {accent.name()}; border-radius: 4px; }}"
            f" QFrame#findingCard QLabel {{ background: transparent; border: none; }}")
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        self.evidence.setStyleSheet(f"color: {muted}")
        self.layers.setStyleSheet(f"color: {muted}")

    def set_selected(self, on: bool) -> None:
        self.selected = on
        self.apply_style()

    def fixes_with_buttons(self) -> list[tuple[Fix, QPushButton]]:
        return [(fix, row[1]) for fix, row in zip(self.finding.fixes, self.fix_rows) if row[1]]

    def mark_applied(self, fix: Fix) -> None:
        for f, (_label, _button, status) in zip(self.finding.fixes, self.fix_rows):
            if f is fix:
                status.setText("applied ✓")

    def _on_apply_clicked(self) -> None:
        button = self.sender()
        for fix, (_label, b, _status) in zip(self.finding.fixes, self.fix_rows):
            if b is button:
                self.apply_requested.emit(fix)
                return

    def enterEvent(self, event) -> None:
        self.hovered.emit(self)
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:
        self.hovered.emit(None)
        super().leaveEvent(event)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self)
        super().mousePressEvent(event)


class DiagnosisPanel(QWidget):
    """The latest findings of the gradient diagnosis, each with its fixes.

    ``apply_fix(fix)`` is called when an Apply button is pressed; it should apply the fix
    as one undoable edit (:func:`bplab.ui.fix_controller.apply_fix`) and may return False
    when it could not. Signals: ``layers_highlighted(list[str])`` when a finding is hovered
    or selected (an empty list when nothing is), and ``fix_applied(Fix)`` after ``apply_fix``
    applied it.

    Fed like the plots: ``set_context``, ``add_update``, ``refresh``; or directly with
    :meth:`set_findings`.
    """

    layers_highlighted = Signal(list)
    fix_applied = Signal(object)

    def __init__(self, apply_fix: Callable[[Fix], bool | None] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.apply_fix = apply_fix
        self.findings: tuple[Finding, ...] = ()
        self.samples = 0  # diagnostic samples seen since the context was set
        self.cards: list[FindingCard] = []
        self._key: tuple | None = None
        self._last_step = -1
        self._findings_step = -1
        self._selected: FindingCard | None = None
        self._dirty = True

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        f = self.summary.font()
        f.setBold(True)
        self.summary.setFont(f)
        layout.addWidget(self.summary)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.inner = QWidget()
        self.list_layout = QVBoxLayout(self.inner)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(6)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setMargin(16)
        self.list_layout.addWidget(self.empty)
        self.list_layout.addStretch(1)
        self.scroll.setWidget(self.inner)
        layout.addWidget(self.scroll, 1)
        self.setMinimumSize(QSize(280, 180))
        self.refresh()

    # -- feeding -----------------------------------------------------------------------------
    def set_context(self, ctx: TrainingContext | None = None) -> None:
        self.samples = 0
        self._last_step = -1
        self._findings_step = -1
        self._set(())

    def reset(self) -> None:
        self.set_context(None)

    def add_update(self, upd: TrainingUpdate) -> None:
        d = upd.diagnostics
        # every layer sample of the update counts (the last report may be an epoch end's)
        fresh = [r.step for r in (*upd.samples, d)
                 if r is not None and r.layers and r.step > self._last_step]
        if fresh:
            self._last_step = max(fresh)
            self.samples += len(set(fresh))
        # Findings ride on diagnostic and epoch reports: take the most recent.
        newest = None
        for r in (d, *upd.epoch_reports, upd.latest):
            if (r is not None and r.findings is not None
                    and (newest is None or r.step >= newest.step)):
                newest = r
        if newest is not None and newest.step > self._findings_step:
            self._findings_step = newest.step
            self._set(tuple(newest.findings))
        elif d is not None:
            self._dirty = True  # the sample count in the summary changed

    def set_findings(self, findings: Sequence[Finding], samples: int | None = None) -> None:
        """Show ``findings`` now (``samples``: diagnostic samples they are based on)."""
        if samples is not None:
            self.samples = samples
        self._set(tuple(findings))
        self.refresh()

    def _set(self, findings: tuple[Finding, ...]) -> None:
        self.findings = findings
        self._dirty = True

    # -- drawing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        key = tuple((f.code, f.severity, f.layers,
                     tuple((x.description, x.action, x.layers) for x in f.fixes))
                    for f in self.findings)
        if key != self._key:
            self._rebuild()
            self._key = key
        else:
            for card, finding in zip(self.cards, self.findings):
                card.update_finding(finding)
        self._update_summary()

    def _rebuild(self) -> None:
        selected_code = self._selected.finding.code if self._selected is not None else None
        self._selected = None
        for card in self.cards:
            self.list_layout.removeWidget(card)
            card.hide()
            card.deleteLater()
        self.cards = []
        for i, finding in enumerate(self.findings):
            card = FindingCard(finding)
            card.hovered.connect(self._on_card_hovered)
            card.clicked.connect(self._on_card_clicked)
            card.apply_requested.connect(self._on_card_apply_requested)
            self.list_layout.insertWidget(i, card)
            self.cards.append(card)
            if finding.code == selected_code:
                self._selected = card
                card.set_selected(True)
        self.empty.setVisible(not self.findings)

    def _update_summary(self) -> None:
        window = diagnostics.DIAGNOSIS_WINDOW  # the engine's, read now: never a copy
        self.summary.setToolTip(f"The gradient diagnosis looks at the last {window} "
                                "diagnostic samples and the epoch losses")
        n = len(self.findings)
        if n:
            counts = {}
            for f in self.findings:
                counts[f.severity] = counts.get(f.severity, 0) + 1
            parts = [f"{counts[s]} {word}{'s' if counts[s] > 1 else ''}"
                     for s, word in (("error", "error"), ("warning", "warning"), ("info", "note"))
                     if s in counts]
            self.summary.setText(f"{n} problem{'s' if n > 1 else ''} found: {', '.join(parts)}")
            return
        if self.samples:
            k = min(self.samples, window)
            sample = "sample" if k == 1 else "samples"
            self.summary.setText(f"No problems found in the last {k} diagnostic {sample}")
            self.empty.setText("Gradients flow, no units are dead or saturated, and the "
                               "learning rate looks sensible. ✓")
        else:
            self.summary.setText("No problems found yet")
            self.empty.setText("No diagnostic samples yet. Start training: gradients are "
                               "checked every few steps and problems show up here with fixes.")

    # -- interaction -------------------------------------------------------------------------
    def _on_card_hovered(self, card: FindingCard | None) -> None:
        if card is not None:
            self.layers_highlighted.emit(list(card.finding.layers))
        else:
            sel = self._selected
            self.layers_highlighted.emit(list(sel.finding.layers) if sel is not None else [])

    def _on_card_clicked(self, card: FindingCard) -> None:
        if self._selected is not None:
            self._selected.set_selected(False)
        if self._selected is card:  # a second click deselects
            self._selected = None
            self.layers_highlighted.emit([])
            return
        self._selected = card
        card.set_selected(True)
        self.layers_highlighted.emit(list(card.finding.layers))

    def _on_card_apply_requested(self, fix: Fix) -> None:
        if self.apply_fix is not None and self.apply_fix(fix) is False:
            return  # not applied: the callback said why
        card = self.sender()
        if isinstance(card, FindingCard):
            card.mark_applied(fix)
        self.fix_applied.emit(fix)

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            for card in self.cards:
                card.apply_style()
        super().changeEvent(event)
