"""Soak: the app training the demo with every plot live for 10 minutes; memory flat.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/soak_app.py [--seconds 600]

Opens the demo project in the real window, sets epochs enough to outlast the soak, presses
Run and every 10 s: samples resident memory, counts the graphics items of every plot's
scene (they must stay constant: items are created once and fed with setData) and brings
the next plot panel to the front, so every plot is drawn live in turn. At the end it stops
training, closes the window and prints one JSON line: the memory slope after the warm-up
in MB/min (the issue asks for under 1), the item counts and the steps trained.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_common import rss_mb, slope_per_min  # noqa: E402


def plot_items(window) -> dict[str, int]:
    """Graphics items in each plot panel's scenes (pyqtgraph views)."""
    import pyqtgraph as pg

    counts = {}
    for name, plot in window.plots.items():
        views = plot.findChildren(pg.GraphicsView)
        counts[name] = sum(len(v.scene().items()) for v in views if v.scene() is not None)
    return counts


def history_mb() -> float:
    """MB of the plots' history buffers filled so far. Each :class:`History` preallocates
    its capacity with np.empty, whose pages become resident only as rows are written: until
    a buffer is full (then thinned in place) the RSS grows by the rows it holds. Bounded
    growth, not a leak; the soak reports the RSS slope with and without it."""
    import gc

    from bplab.ui.plots.history import History

    return sum(len(h) * h.ncols * 8 for h in gc.get_objects()
               if isinstance(h, History)) / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--warmup", type=float, default=120.0)
    p.add_argument("--every", type=float, default=10.0)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    from bplab.ui.app import app_settings, install_excepthooks
    from bplab.ui.examples import demo_path
    from bplab.ui.main_window import MainWindow
    from bplab.ui.theme import ThemeManager
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["bplab-soak"])
    install_excepthooks()
    window = MainWindow(app_settings(), ThemeManager(app))
    window.open_path(demo_path(), as_copy=True)
    window.doc.set_value("training.epochs", 10_000_000)
    window.resize(1600, 1000)
    window.show()
    names = list(window.plots)
    t0 = time.monotonic()
    samples: list[tuple[float, float]] = []
    beyond: list[tuple[float, float]] = []  # RSS less the filled history buffers
    items: list[dict[str, int]] = []
    state = {"tab": 0}

    def sample() -> None:
        t = time.monotonic() - t0
        rss = rss_mb()
        samples.append((round(t, 1), round(rss, 2)))
        beyond.append((round(t, 1), round(rss - history_mb(), 2)))
        items.append(plot_items(window))
        window.show_tab(names[state["tab"] % len(names)])
        state["tab"] += 1
        if t >= args.seconds:
            timer.stop()
            window.session.stop()
            QTimer.singleShot(2000, finish)

    def finish() -> None:
        latest = window.session.latest
        after = [c for (t, _), c in zip(samples, items) if t >= args.warmup]
        result = {
            "soak": "app training the demo, every plot live in turn",
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "steps": latest.latest.step if latest is not None else 0,
            "rss_first_mb": samples[0][1],
            "rss_after_warmup_mb": next((v for t, v in samples if t >= args.warmup), None),
            "rss_last_mb": samples[-1][1],
            "slope_mb_per_min": round(slope_per_min(samples, args.warmup), 3),
            "history_buffers_mb": round(samples[-1][1] - beyond[-1][1], 2),
            "slope_less_history_buffers_mb_per_min": round(
                slope_per_min(beyond, args.warmup), 3),
            "plot_items_after_warmup": {
                n: sorted({c[n] for c in after}) for n in names} if after else None,
            "samples": samples,
        }
        line = json.dumps(result)
        print(line, flush=True)
        if args.out:
            Path(args.out).write_text(line + "\n", encoding="utf-8")
        window.close()
        app.exit(0)

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(int(args.every * 1000))
    QTimer.singleShot(500, window.session.run)
    QTimer.singleShot(0, sample)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
