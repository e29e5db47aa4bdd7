"""The status bar's account of a run: state, epoch, step, speed, elapsed time, progress."""

from __future__ import annotations

from bplab.ui.plots.base import fix_label_size
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

__all__ = ["RunStatus"]

STATE_TEXT = {"idle": "Ready", "running": "Training", "paused": "Paused"}


class RunStatus:
    """Labels and a progress bar added to ``bar`` as permanent widgets."""

    def __init__(self, bar: QStatusBar):
        self.state = QLabel("Ready")
        self.state.setToolTip("What training is doing")
        self.epoch = QLabel("epoch –")
        self.epoch.setToolTip("Completed epochs (passes over the training data)")
        self.step = QLabel("step –")
        self.step.setToolTip("Optimiser steps taken")
        self.speed = QLabel("– steps/s")
        self.speed.setToolTip("Training speed")
        self.elapsed = QLabel("0:00")
        self.elapsed.setToolTip("Training time so far")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setToolTip("Progress of this run")
        # Fixed sizes: text that changes width would re-lay out the whole window each time.
        fix_label_size(self.state, "Training", "Paused", "Ready")
        fix_label_size(self.epoch, "epoch 888,888")
        fix_label_size(self.step, "step 88,888,888")
        fix_label_size(self.speed, "888,888 steps/s")
        fix_label_size(self.elapsed, "888:88:88")
        self.progress.setFixedWidth(160)
        for w in (self.state, self.epoch, self.step, self.speed, self.elapsed, self.progress):
            bar.addPermanentWidget(w)

    def set_state(self, state: str) -> None:
        self.state.setText(STATE_TEXT.get(state, state))

    def show_report(self, r) -> None:
        """The numbers of a training report (epoch, step, speed, elapsed)."""
        self.epoch.setText(f"epoch {r.epoch}")
        self.step.setText(f"step {r.step:,}")
        rate = r.steps_per_second
        if rate <= 0 and r.elapsed > 0:
            # a run shorter than the trainer's quarter-second rate window: its average
            rate = r.step / r.elapsed
        if rate > 0:
            self.speed.setText(f"{rate:,.0f} steps/s")
        self.elapsed.setText(clock(r.elapsed))

    def set_progress(self, step: int, total: int) -> None:
        total = max(int(total), 1)
        self.progress.setRange(0, total)
        self.progress.setValue(min(int(step), total))

    def clear(self) -> None:
        self.epoch.setText("epoch –")
        self.step.setText("step –")
        self.speed.setText("– steps/s")
        self.elapsed.setText("0:00")
        self.set_progress(0, 1)


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
