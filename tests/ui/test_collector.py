"""Cyclic garbage is collected on the GUI thread only (a worker that destroyed a Qt widget
in a collection froze the app: ui/collector.py)."""

from __future__ import annotations

import gc
import threading

import pytest

pytest.importorskip("pytestqt")

from bplab.ui import collector  # noqa: E402


def test_cycles_made_by_a_worker_thread_are_collected_on_the_gui_thread(qtbot):
    col = collector.install()
    assert collector.install() is col  # once per process
    assert not gc.isenabled() and col.timer.isActive()
    on_main: list[bool] = []

    class Node:
        def __del__(self):
            on_main.append(threading.current_thread() is threading.main_thread())

    def work():
        for _ in range(20_000):
            node = Node()
            node.me = node  # a cycle: only the collector frees it
            del node
            _ = [[] for _ in range(50)]  # allocations, freed at once

    gc.collect()
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert on_main == []  # nothing was collected on the worker
    qtbot.waitUntil(lambda: len(on_main) == 20_000, timeout=5000)
    assert all(on_main)


def test_the_collector_refuses_to_start_off_the_gui_thread(qapp):
    errors = []

    def start():
        try:
            collector.install()
        except RuntimeError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=start)
    t.start()
    t.join()
    assert errors == ["the GUI-thread collector is installed from the GUI thread"]
