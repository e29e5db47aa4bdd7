"""Export from the window: the weights (safetensors, npz, ONNX, PyTorch code), the run as a
PyTorch folder (model, training script, data), every plot's data and the per-epoch metrics
as CSV, and every plot as a PNG.

:class:`ExportActions` holds the window: it exports the trained network (pausing training
for it) or, before any training, one built from the project, and reports on the status bar.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from bplab.ui.errors import ErrorInfo
from bplab.ui.file_dialogs import EXPORT_FILTERS, slug
from bplab.ui.training.worker import RUNNING
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow

from bplab.io.project import atomic_write_bytes

__all__ = ["ExportActions"]


class ExportActions(QObject):
    """File > Export weights, CSV and images, with their dialogs."""

    def __init__(self, window: QMainWindow):
        """``window`` is the :class:`~bplab.ui.main_window.MainWindow` (not imported here:
        it imports this module)."""
        super().__init__(window)
        self.window = window

    def _network_for_export(self):
        """The trained network, or one built from the project (and a sentence saying so)."""
        s = self.window.session
        if s.trainer is not None and not s.stale:
            if s.state == RUNNING:
                s.pause()
            s.wait_idle(30.0)
            if s.trainer is not None:
                return s.trainer.network, None
        from bplab.graph import Network

        project, _ = self.window.training_project()
        cfg = project.get("training") or {}
        net = Network(project["network"], dtype=cfg.get("dtype", "float32"), backend="numpy",
                      seed=cfg.get("seed", 0))
        return net, ("The network has not been trained yet: its freshly initialised weights "
                     "were exported.")

    def export_weights_dialog(self) -> None:
        w = self.window
        filters = ";;".join(EXPORT_FILTERS.values())
        stem = w.path.name.split(".")[0] if w.path else slug(
            str(w.doc.get("name") or "weights"))
        path = w.get_save_path("Export weights", f"{stem}.safetensors", filters)
        if path:
            self.export_weights(path)

    def export_weights(self, path: str | Path) -> bool:
        from bplab.io.export import export_weights

        w = self.window
        path = Path(path)
        if path.suffix.lower() not in EXPORT_FILTERS:
            w.show_error(ErrorInfo(
                f"Cannot export weights to '{path.name}': unknown format.",
                "Use one of the extensions " + ", ".join(EXPORT_FILTERS) + "."))
            return False
        try:
            net, note = self._network_for_export()
            project, _ = w.training_project()
            export_weights(net, path, project=project)
        except ImportError as exc:
            w.show_error(ErrorInfo(
                f"Cannot export to {path.suffix}: {exc}.",
                "Install the missing package (for ONNX: pip install onnx), or choose "
                "safetensors or npz.", ErrorInfo.from_exception(exc).details))
            return False
        except Exception as exc:  # noqa: BLE001 - any exporter failure becomes a message box
            w.show_error(ErrorInfo.from_exception(exc, f"Cannot export the weights to "
                                                       f"{path.name}"))
            return False
        msg = f"Exported the weights to {path.name}."
        if note:
            msg = f"{msg} {note}"
        w.statusBar().showMessage(msg, 8000)
        return True

    def export_best_weights_dialog(self) -> None:
        w = self.window
        filters = ";;".join(EXPORT_FILTERS.values())
        stem = w.path.name.split(".")[0] if w.path else slug(
            str(w.doc.get("name") or "weights"))
        path = w.get_save_path("Export the best epoch's weights", f"{stem}_best.safetensors",
                               filters)
        if path:
            self.export_best_weights(path)

    def export_best_weights(self, path: str | Path) -> bool:
        """Export the weights of the epoch with the lowest validation loss (the trainer keeps
        them at every epoch end that improved it); say so when there are none yet."""
        from bplab.graph import Network
        from bplab.io.export import export_weights

        w = self.window
        path = Path(path)
        s = w.session
        if s.state == RUNNING:
            s.pause()
        s.wait_idle(30.0)
        trainer = s.trainer
        if trainer is None or trainer.best_state is None:
            w.statusBar().showMessage("No best epoch yet: the best weights are kept at epoch "
                                      "ends with a validation set.", 8000)
            return False
        try:
            project, _ = w.training_project()
            net = Network(project["network"], dtype=trainer.dtype, backend="numpy",
                          seed=trainer.config["seed"])
            net.load_state_dict(trainer.best_state)
            export_weights(net, path, project=project)
        except Exception as exc:  # noqa: BLE001 - any exporter failure becomes a message box
            w.show_error(ErrorInfo.from_exception(exc, f"Cannot export the best weights to "
                                                       f"{path.name}"))
            return False
        w.statusBar().showMessage(f"Exported the weights of epoch {trainer.best_epoch} "
                                  f"(validation loss {trainer.best_val_loss:.4g}) to "
                                  f"{path.name}.", 8000)
        return True

    def export_csv_dialog(self) -> None:
        folder = self.window.get_directory("Export plots and metrics as CSV into a folder")
        if folder:
            self.export_csv(folder)

    def export_csv(self, folder: str | Path) -> list[Path]:
        w = self.window
        folder = Path(folder)
        written = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, plot in w.plots.items():
                p = folder / f"{name}.csv"
                plot.export_csv(p)
                written.append(p)
            p = folder / "metrics.csv"
            history = w.run_view.epoch_history
            keys = sorted({k for _, _, m in history for k in m})
            buf = io.StringIO(newline="")  # written whole, atomically: a full disk keeps
            out = csv.writer(buf)          # the previous file
            out.writerow(["epoch", "step", *keys])
            for epoch, step, m in history:
                out.writerow([epoch, step, *(repr(m.get(k, math.nan)) for k in keys)])
            atomic_write_bytes(p, buf.getvalue().encode("utf-8"))
            written.append(p)
        except Exception as exc:  # noqa: BLE001
            w.show_error(ErrorInfo.from_exception(exc, "Cannot export the CSV files"))
            return written
        w.statusBar().showMessage(f"Wrote {len(written)} CSV files to {folder}", 6000)
        return written

    def export_images_dialog(self) -> None:
        w = self.window
        folder = w.get_directory("Export every plot as a PNG into a folder")
        if not folder:
            return
        try:
            for name, plot in w.plots.items():
                plot.refresh()
                plot.export_image(Path(folder) / f"{name}.png")
        except Exception as exc:  # noqa: BLE001
            w.show_error(ErrorInfo.from_exception(exc, "Cannot export the plot images"))
            return
        w.statusBar().showMessage(f"Wrote {len(w.plots)} images to {folder}", 6000)

    def export_bundle_dialog(self) -> None:
        folder = self.window.get_directory(
            "Export the run for PyTorch (model.py, train.py, data, initial weights) "
            "into a folder")
        if folder:
            self.export_bundle(folder)

    def export_bundle(self, folder: str | Path) -> bool:
        """Write the project's run as a PyTorch folder (:mod:`bplab.io.bundle`): it starts
        from the project's initial weights, as `bplab train` does."""
        from bplab.io.bundle import export_bundle

        w = self.window
        try:
            project, base_dir = w.training_project()
            export_bundle(project, folder, base_dir=base_dir)
        except Exception as exc:  # noqa: BLE001 - any exporter failure becomes a message box
            w.show_error(ErrorInfo.from_exception(exc, "Cannot export the run for PyTorch"))
            return False
        w.statusBar().showMessage(
            f"Wrote the run for PyTorch to {folder}: `python train.py` there trains it as "
            "bplab does, `torchrun --nproc_per_node=N train.py` on N processes.", 10000)
        return True
