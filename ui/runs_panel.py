"""The Runs panel: every training run, recorded, to compare with the others.

:class:`RunRecording` watches the training session: from Run until the run ends, is stopped
or diverges it feeds the reports to a :class:`bplab.runs.RunRecorder`, then adds the
:func:`bplab.runs.record_run` record to the document (which saves it with the project
under ``"runs"``). :class:`RunsPanel` lists the records: tick runs to overlay them on the
loss, accuracy and gradient-norm plots (one colour per run, named in the legends), rename
(double-click or F2), delete, read what each run changed since the one before and how it
ended, and restore a run's settings as one undoable edit.
"""

from __future__ import annotations

import html
from datetime import datetime

from bplab.ui.models.document import ProjectDocument
from bplab.ui.plots.base import RunOverlay, run_color
from bplab.ui.run_commands import RemoveRun, RenameRun, restore_run_settings
from bplab.ui.training.update import TrainingUpdate
from bplab.ui.training.worker import IDLE, RUNNING, TrainingSession
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from bplab.errors import ConfigError
from bplab.runs import (
    COMPARED,
    OUTCOME_WORDS,
    OUTCOMES,
    RunRecord,
    RunRecorder,
    best_of_runs,
    figure_text,
    next_run_name,
    record_run,
    run_settings,
)

__all__ = ["RunRecording", "RunsPanel"]


class RunRecording(QObject):
    """Records every run of ``session`` into ``doc`` (see the module).

    A run starts when training starts with no run being recorded, and ends when the worker
    finishes with ``done``, ``early_stop``, ``stopped`` or ``diverged``, or when a paused
    run is stopped or made stale (the session goes idle). Pausing and resuming is one run.
    """

    recorded = Signal(object)  # the RunRecord just added

    def __init__(self, session: TrainingSession, doc: ProjectDocument,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.doc = session, doc
        self.recorder: RunRecorder | None = None
        self.settings: dict = {}  # what the run being recorded trains with
        session.state_changed.connect(self._on_session_state_changed)
        session.updated.connect(self._on_session_updated)
        session.finished.connect(self._on_session_finished)

    def _on_session_state_changed(self, state: str) -> None:
        if state == RUNNING and self.recorder is None:
            self.recorder = RunRecorder()
            self.settings = run_settings(self.doc.project)
        elif state == IDLE and self.recorder is not None:
            # Stop on a paused run emits no "finished": if none follows now, it ended here.
            QTimer.singleShot(0, self._on_idle_timeout)

    def _on_session_updated(self, update: TrainingUpdate) -> None:
        rec = self.recorder
        if rec is None:
            return
        for report in (*update.samples, *update.epoch_reports, update.latest):
            rec.add(report)
        if update.diagnostics is not None:
            rec.add(update.diagnostics)

    def _on_session_finished(self, reason: str) -> None:
        if reason in OUTCOMES:
            self.finish(reason)
        elif reason == "error":
            self.recorder = None

    def _on_idle_timeout(self) -> None:
        if self.recorder is not None and self.session.state == IDLE:
            self.finish("stopped")

    def finish(self, outcome: str) -> RunRecord | None:
        """End the run being recorded: its record, added to the document (None if no step
        was trained)."""
        rec, self.recorder = self.recorder, None
        if rec is None or rec.empty:
            return None
        runs = self.doc.runs
        record = record_run(rec, self.settings, name=next_run_name(runs), outcome=outcome,
                            previous=runs[-1] if runs else None)
        self.doc.add_run(record.to_json())
        self.recorded.emit(record)
        return record


class RunsPanel(QWidget):
    """The recorded runs of the document's project (see the module)."""

    overlays_changed = Signal(list)  # [RunOverlay] of the ticked runs, in list order
    message = Signal(str)  # for the status bar

    def __init__(self, doc: ProjectDocument, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = doc
        self.records: list[RunRecord] = []
        self.ticked: set[str] = set()  # ids of the runs drawn over the plots
        self.list = QListWidget(self)
        self.list.setToolTip("Every training run. Tick runs to draw them over the loss, "
                             "accuracy and gradient-norm plots; double-click to rename")
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.details = QTextBrowser(self)
        self.details.setToolTip("The ticked runs side by side (the best of each figure in "
                                "bold), then the selected run: how it ended, what changed "
                                "since the run before, its final metrics and diagnosis")
        self.details.setOpenLinks(False)
        self.restore_button = self._button(
            "Restore settings", "Make the project train as the selected run did (network, "
            "data, loss, optimiser, run settings): one edit, Undo reverts it",
            self._on_restore_clicked)
        self.rename_button = self._button("Rename", "Rename the selected run",
                                          self._on_rename_clicked)
        self.delete_button = self._button("Delete", "Delete the selected run (Undo brings it "
                                          "back)", self._on_delete_clicked)
        buttons = QHBoxLayout()
        for b in (self.restore_button, self.rename_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.list)
        split.addWidget(self.details)
        # the list needs a row a run; the details (the side-by-side table) more room
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setSizes([80, 240])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(split, 1)
        self.list.itemChanged.connect(self._on_list_item_changed)
        self.list.currentRowChanged.connect(self._on_list_current_row_changed)
        doc.runs_changed.connect(self._on_doc_runs_changed)
        self._on_doc_runs_changed()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        b = QPushButton(text, self)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    # -- reading -----------------------------------------------------------------------------
    def record(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.records if r.id == run_id), None)

    @property
    def current(self) -> RunRecord | None:
        row = self.list.currentRow()
        return self.records[row] if 0 <= row < len(self.records) else None

    def overlays(self) -> list[RunOverlay]:
        """The ticked runs with their colours (a run's colour is its place in the list)."""
        return [RunOverlay(r, run_color(i)) for i, r in enumerate(self.records)
                if r.id in self.ticked]

    # -- acting ------------------------------------------------------------------------------
    def set_ticked(self, run_id: str, on: bool = True) -> None:
        """Draw the run ``run_id`` over the plots, or stop drawing it."""
        for row, record in enumerate(self.records):
            if record.id == run_id:
                state = Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
                self.list.item(row).setCheckState(state)  # -> _on_list_item_changed

    def restore(self, run_id: str) -> list[str]:
        """Restore the run's settings (one undoable edit); what changed, in words."""
        record = self.record(run_id)
        if record is None:
            return []
        changes = restore_run_settings(self.doc, record.settings, record.name)
        self.message.emit(f"Restored the settings of {record.name}: " + "; ".join(changes)
                          if changes else f"The project already has the settings of "
                          f"{record.name}.")
        return changes

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        record = self.record(run_id)
        if record is not None and name and name != record.name:
            self.doc.push(RenameRun(self.doc, run_id, name))

    def delete(self, run_id: str) -> None:
        if self.record(run_id) is not None:
            self.doc.push(RemoveRun(self.doc, run_id))

    # -- slots -------------------------------------------------------------------------------
    def _on_doc_runs_changed(self) -> None:
        current = self.current.id if self.current is not None else None
        records = []
        for i, data in enumerate(self.doc.runs):
            try:
                records.append(RunRecord.from_json(data, f"runs[{i}]"))
            except ConfigError:  # the loader checked them: only a bug gets here
                continue
        added = len(records) > len(self.records)
        self.records = records
        self.ticked &= {r.id for r in records}
        self.list.blockSignals(True)
        self.list.clear()
        for i, r in enumerate(records):
            item = QListWidgetItem(self._icon(i), r.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable
                          | Qt.ItemFlag.ItemIsEditable)
            item.setCheckState(Qt.CheckState.Checked if r.id in self.ticked
                               else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, r.id)
            item.setToolTip(_summary(r))
            self.list.addItem(item)
        rows = [i for i, r in enumerate(records) if r.id == current]
        row = len(records) - 1 if added or not rows else rows[0]
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        self._show_details()
        self.overlays_changed.emit(self.overlays())

    def _icon(self, index: int) -> QIcon:
        pix = QPixmap(12, 12)
        pix.fill(run_color(index))
        return QIcon(pix)

    def _on_list_item_changed(self, item: QListWidgetItem) -> None:
        run_id = item.data(Qt.ItemDataRole.UserRole)
        record = self.record(run_id)
        if record is None:
            return
        on = item.checkState() == Qt.CheckState.Checked
        if on != (run_id in self.ticked):
            (self.ticked.add if on else self.ticked.discard)(run_id)
            self.overlays_changed.emit(self.overlays())
            self._show_details()  # the side-by-side table follows the ticks
        if item.text() != record.name:
            name = item.text()
            if name.strip():  # after this signal: renaming rebuilds the list and its items
                QTimer.singleShot(0, lambda: self.rename(run_id, name))
            else:
                item.setText(record.name)

    def _on_list_current_row_changed(self, _row: int) -> None:
        self._show_details()

    def _show_details(self) -> None:
        record = self.current
        for b in (self.restore_button, self.rename_button, self.delete_button):
            b.setEnabled(record is not None)
        if record is None:
            self.details.setHtml("<p>No run recorded yet. Every Run, until it ends, is "
                                 "stopped or diverges, is kept here to compare with the "
                                 "next.</p>")
            return
        compared = [(r, run_color(i)) for i, r in enumerate(self.records) if r.id in self.ticked]
        self.details.setHtml((_comparison_html(compared) + "<hr>" if len(compared) > 1 else "")
                             + _details_html(record))

    def _on_restore_clicked(self) -> None:
        if self.current is not None:
            self.restore(self.current.id)

    def _on_rename_clicked(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def _on_delete_clicked(self) -> None:
        if self.current is not None:
            self.delete(self.current.id)


def _when(record: RunRecord) -> str:
    try:
        return datetime.fromisoformat(record.created).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return record.created


def _metrics_text(record: RunRecord) -> str:
    parts = []
    for key in COMPARED:
        v = record.metrics.get(key)
        if v is not None:
            parts.append(f"{key} {figure_text(key, v)}")
    return ", ".join(parts)


def _summary(record: RunRecord) -> str:
    """One paragraph: the list item's tooltip."""
    text = (f"{record.name}: {OUTCOME_WORDS.get(record.outcome, record.outcome)} after "
            f"{record.epochs} epochs ({record.steps} steps), {_when(record)}")
    metrics = _metrics_text(record)
    return text + (f"\n{metrics}" if metrics else "")


def _comparison_html(runs: list[tuple[RunRecord, object]]) -> str:
    """The ticked runs side by side: one column a run (named in its plot colour), one row
    a final figure, the best of each row in bold."""
    e = html.escape
    head = "".join(f"<th align='left' style='color:{c.name()}'>■ {e(r.name)}</th>"
                   for r, c in runs)
    rows = [("how it ended", [OUTCOME_WORDS.get(r.outcome, r.outcome) for r, _ in runs]),
            ("epochs (steps)", [f"{r.epochs} ({r.steps:,})" for r, _ in runs]),
            ("training time", [f"{r.elapsed:.1f} s" for r, _ in runs])]
    body = [f"<tr><td>{name}</td>" + "".join(f"<td>{e(v)}</td>" for v in values) + "</tr>"
            for name, values in rows]
    best = best_of_runs([r for r, _ in runs])
    for key in COMPARED:
        values = [r.metrics.get(key) for r, _ in runs]
        if all(v is None for v in values):
            continue
        cells = "".join(
            "<td>–</td>" if v is None else
            f"<td><b>{figure_text(key, v)}</b></td>" if i in best.get(key, ()) else
            f"<td>{figure_text(key, v)}</td>" for i, v in enumerate(values))
        body.append(f"<tr><td>{key.replace('_', ' ')}</td>{cells}</tr>")
    problems = ["<br>".join(e(d.get("title", d.get("code", ""))) for d in r.diagnosis) or "none"
                for r, _ in runs]
    body.append("<tr><td valign='top'>diagnosis</td>"
                + "".join(f"<td valign='top'>{p}</td>" for p in problems) + "</tr>")
    return ("<b>Ticked runs side by side</b> (best in bold)"
            "<table cellspacing='0' cellpadding='3'><tr><th></th>" + head + "</tr>"
            + "".join(body) + "</table>")


def _details_html(record: RunRecord) -> str:
    e = html.escape
    rows = [f"<b>{e(record.name)}</b>: {OUTCOME_WORDS.get(record.outcome, record.outcome)} "
            f"after {record.epochs} epochs ({record.steps:,} steps, {record.elapsed:.1f} s), "
            f"{e(_when(record))}" + (" (command line)" if record.source == "cli" else "")]
    metrics = _metrics_text(record)
    if metrics:
        rows.append(f"<b>Final</b>: {e(metrics)}")
    if record.changes:
        items = "".join(f"<li>{e(c)}</li>" for c in record.changes)
        rows.append(f"<b>Changed since the run before</b>:<ul style='margin:0'>{items}</ul>")
    else:
        rows.append("<b>Changed since the run before</b>: nothing (or the first run)")
    if record.diagnosis:
        items = "".join(
            f"<li>{e(d.get('title', d.get('code', '')))}"
            + (f" ({e(', '.join(d.get('layers', [])))})" if d.get("layers") else "") + "</li>"
            for d in record.diagnosis)
        rows.append(f"<b>Diagnosis</b>:<ul style='margin:0'>{items}</ul>")
    else:
        rows.append("<b>Diagnosis</b>: no problems found in the gradients")
    return "<br>".join(rows)
