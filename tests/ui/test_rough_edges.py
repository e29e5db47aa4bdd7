"""The rough edges a newcomer met in the first hour (issue 14), each driven as a user would."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from bplab.ui.main_window import demo_path
from bplab.ui.training.update import TrainingUpdate
from bplab.ui.training.worker import make_context
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from bplab.layers import LAYERS


@pytest.fixture
def window(shared_window, qtbot):
    """The shared window with the demo freshly opened, unmodified, at 1400x900."""
    w = shared_window
    w.doc.mark_saved()
    assert w.open_path(demo_path(), as_copy=True)
    w.doc.mark_saved()
    w.resize(1400, 900)
    QApplication.processEvents()
    return w


def _view_point(w, node_id):
    item = w.scene.node_item(node_id)
    w.view.centerOn(item)
    QApplication.processEvents()
    return w.view.mapFromScene(item.sceneBoundingRect().center())


def test_a_click_without_a_drag_records_nothing(window, qtbot):
    w = window
    vp = w.view.viewport()
    at = _view_point(w, "fc1")
    before = w.doc.position("fc1")
    qtbot.mousePress(vp, Qt.LeftButton, pos=at)
    qtbot.mouseMove(vp, at + QPoint(1, 1))  # a real hand jitters
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=at + QPoint(1, 1))
    assert w.scene.selected_ids() == ["fc1"]
    assert w.doc.undo_stack.count() == 0 and not w.doc.is_dirty
    assert w.doc.position("fc1") == before
    assert w.scene.node_item("fc1").pos().toTuple() == before


def test_a_real_drag_is_still_one_move(window, qtbot):
    w = window
    vp = w.view.viewport()
    at = _view_point(w, "fc1")
    qtbot.mousePress(vp, Qt.LeftButton, pos=at)
    for dx in (10, 30, 60):
        qtbot.mouseMove(vp, at + QPoint(dx, 0))
    qtbot.mouseRelease(vp, Qt.LeftButton, pos=at + QPoint(60, 0))
    assert w.doc.undo_stack.count() == 1 and w.doc.is_dirty


def _unconnected_dense_with_normal_init(w):
    nid = w.scene.drop_layer("Dense", w.view.mapToScene(20, 20))
    w.scene.select_nodes([nid])
    host = w.inspector.editors["init"]
    i = host.combo.findData("normal")
    host.combo.setCurrentIndex(i)
    host.combo.activated.emit(i)
    QApplication.processEvents()
    return host


def test_the_window_keeps_its_size_when_the_inspector_grows(window):
    w = window
    w.resize(1400, 900)
    QApplication.processEvents()
    _unconnected_dense_with_normal_init(w)
    assert w.size().toTuple() == (1400, 900)


def test_inspector_fields_keep_at_least_their_minimum_height(window):
    w = window
    w.resize(1400, 900)
    host = _unconnected_dense_with_normal_init(w)
    fields = list(w.inspector.editors.values()) + [f for f, _ in host.fields.values()]
    assert {"mean", "std"} <= set(host.fields)
    for f in fields:
        assert f.height() >= f.minimumSizeHint().height(), f


def test_reset_layout_gives_a_window_that_fits_the_screen(window):
    w = window
    w.resize(1500, 2000)
    w.menus.act_reset_layout.trigger()
    avail = w.screen().availableGeometry()
    assert w.height() <= avail.height() and w.width() <= avail.width()
    assert not w.docks["step_through"].isVisible() and w.docks["inspector"].isVisible()


def test_the_empty_canvas_says_how_to_start_and_ports_say_they_can_be_dragged(window, qtbot):
    w = window
    assert w.view.empty_hint() == ""
    w.menus.act_select_all.trigger()
    w.scene.delete_selection()
    assert "Drag a layer" in w.view.empty_hint() and "port" in w.view.empty_hint()
    assert w.view.grab().toImage().width() > 0  # the hint paints
    w.doc.mark_saved()
    w.open_path(demo_path(), as_copy=True)
    item = w.scene.node_item("fc1")
    w.view.centerOn(item)
    QApplication.processEvents()
    port = w.view.mapFromScene(item.output_port_pos())  # (already in scene coordinates)
    event = QHelpEvent(QEvent.Type.ToolTip, port, w.view.viewport().mapToGlobal(port))
    QApplication.sendEvent(w.view.viewport(), event)
    assert "drag from here" in QToolTip.text()
    QToolTip.hideText()


def test_undo_and_redo_buttons_show_short_text(window):
    w = window
    w.doc.set_value("training.epochs", 7)
    w.doc.undo_stack.undo()
    for act, word in ((w.menus.act_undo, "Undo"), (w.menus.act_redo, "Redo")):
        assert w.menus.toolbar.widgetForAction(act).text() == word
    assert w.menus.act_redo.text().replace("&", "").startswith("Redo Set")  # the menu: all
    assert "training.epochs" in w.menus.act_redo.toolTip()


def test_an_output_that_does_not_fit_the_data_is_a_problem_on_the_node(window, qtbot):
    w = window
    qtbot.waitUntil(lambda: w.data_checks.dataset is not None)
    item = w.scene.node_item("out")
    assert item.problems == []
    w.inspector.set_node("out")
    units = next(o for o in LAYERS["Dense"].options if o.name == "units")
    assert w.inspector._commit(units, 16)  # what the spin box does
    assert item.problems == ["Dense 'out' has 16 units but the data set 'spiral' has 2 "
                             "classes: set the last layer's units to 2"]
    assert "set the last layer's units to 2" in item.toolTip()
    assert w.inspector.problem_label.text() == item.problems[0]
    rows = [w.problems.item(i).text() for i in range(w.problems.count())]
    assert f"out: {item.problems[0]}" in rows  # the Problems list names it too
    w.doc.undo_stack.undo()
    assert item.problems == []
    assert not any(r.startswith("out: ") for r in
                   (w.problems.item(i).text() for i in range(w.problems.count())))


# -- plots -----------------------------------------------------------------------------------
def _spiral_run(hidden="Tanh", epochs=2):
    from bplab.io.project import new_project
    from bplab.training import Trainer

    p = new_project()
    p["dataset"]["samples"] = 200
    for node in p["network"]["nodes"]:
        if node["type"] == "Tanh":
            node["type"] = hidden
    p["training"].update(epochs=epochs, diagnostics_every=2)
    t = Trainer(p)
    ctx = make_context(t)
    updates = []
    batch = []
    for r in t.run():
        batch.append(r)
        if len(batch) == 5 or t.done:
            grid, bounds = t.decision_grid(16)
            diag = next((b for b in reversed(batch) if b.layers is not None), None)
            updates.append(TrainingUpdate(
                steps=np.array([b.step for b in batch], np.int64),
                losses=np.array([b.train_loss for b in batch], np.float64),
                epoch_reports=tuple(b for b in batch if b.metrics is not None),
                latest=batch[-1], diagnostics=diag, boundary=grid, boundary_bounds=bounds))
            batch = []
    return ctx, updates


@pytest.fixture(scope="module")
def spiral_run():
    return _spiral_run()


def _feed(widget, ctx, updates):
    widget.resize(700, 320)
    widget.show()
    widget.set_context(ctx)
    for u in updates:
        widget.add_update(u)
    widget.refresh()
    QApplication.processEvents()


@pytest.mark.parametrize("cls", ["LossPlot", "MetricPlot", "ActivationPlot", "UpdateRatioPlot"])
def test_legends_sit_beside_the_data_never_on_it(qtbot, spiral_run, cls, tmp_path):
    import bplab.ui.plots as plots

    w = getattr(plots, cls)()
    qtbot.addWidget(w)
    _feed(w, *spiral_run)
    legend = getattr(w, "legend", None) or w.plot.legend
    assert legend.items, "the legend lists the curves"
    data_area = w.plot.getViewBox().sceneBoundingRect()
    assert not legend.sceneBoundingRect().intersects(data_area)
    w.export_image(tmp_path / "plot.png")  # the exported image is the same scene
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_the_decision_boundary_fills_its_axes(qtbot, spiral_run):
    from bplab.ui.plots import DecisionBoundaryView

    ctx, updates = spiral_run
    w = DecisionBoundaryView()
    qtbot.addWidget(w)
    w.resize(900, 300)  # much wider than tall: an aspect lock would widen x
    _feed(w, ctx, updates)
    (x0, x1), (y0, y1) = updates[-1].boundary_bounds
    (vx0, vx1), (vy0, vy1) = w.plot.getViewBox().viewRange()
    span = x1 - x0
    assert (vx0, vx1) == (pytest.approx(x0, abs=0.02 * span), pytest.approx(x1, abs=0.02 * span))
    span = y1 - y0
    assert (vy0, vy1) == (pytest.approx(y0, abs=0.02 * span), pytest.approx(y1, abs=0.02 * span))


def test_a_dead_layer_stays_on_the_log_plot_at_a_marked_floor(qtbot, spiral_run):
    from bplab.ui.plots import GradientNormPlot

    ctx, updates = spiral_run
    dead = ctx.layer_names[0]
    killed = []
    for u in updates:
        d = u.diagnostics
        if d is not None:
            layers = tuple(dataclasses.replace(s, grad_norm=0.0) if s.layer == dead else s
                           for s in d.layers)
            d = dataclasses.replace(d, layers=layers)
        killed.append(dataclasses.replace(u, diagnostics=d, samples=()))
    w = GradientNormPlot()
    qtbot.addWidget(w)
    _feed(w, ctx, killed)
    floor = w.zero_floor()
    assert floor is not None and w.zero_line.isVisible()
    _, y = w.curves[0].getOriginalDataset()
    assert len(y) and np.all(np.asarray(y) == floor)  # drawn, at the floor
    others = [v for _, (x, ys) in w.data().items() for v in ys if v > 0]
    assert floor < min(others)
    np.testing.assert_array_equal(w.data()[dead][1], 0.0)  # the data stay the truth
    lo, _ = w.plot.getViewBox().viewRange()[1]
    assert lo <= math.log10(floor)  # and in view


def test_one_loss_spike_does_not_flatten_a_linear_loss_plot(qtbot, spiral_run):
    from bplab.ui.plots import LossPlot

    ctx, updates = spiral_run
    spiked = list(updates)
    u = spiked[len(spiked) // 2]
    losses = u.losses.copy()
    losses[0] = 1000.0
    spiked[len(spiked) // 2] = dataclasses.replace(u, losses=losses)
    w = LossPlot()
    qtbot.addWidget(w)
    _feed(w, ctx, spiked)
    typical = max(float(np.nanmax(x.losses)) for x in updates)
    _, top = w.plot.getViewBox().viewRange()[1]
    assert top < 3 * typical  # the curve keeps the height of the plot
    assert 1000.0 in w.data()["train_loss_step"][1]  # the spike is in the data


def test_the_wheel_over_the_data_preview_scrolls_the_training_panel(window, qtbot):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent

    w = window
    w.resize(1400, 600)  # a panel taller than its dock: it scrolls
    w.docks["training"].show()
    w.docks["training"].raise_()
    preview = w.panel.preview
    qtbot.waitUntil(lambda: preview.kind == "scatter")
    QApplication.processEvents()
    bar = preview._scroll_area().verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(0)
    view_range = preview.plot.getViewBox().viewRange()
    vp = preview.plot.viewport()
    at = QPointF(vp.width() / 2, vp.height() / 2)
    event = QWheelEvent(at, vp.mapToGlobal(at), QPoint(0, 0), QPoint(0, -120), Qt.NoButton,
                        Qt.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, event)
    assert bar.value() > 0
    assert preview.plot.getViewBox().viewRange() == view_range


def test_status_texts_do_not_overlap_at_800x800(window):
    w = window
    w.resize(800, 800)
    QApplication.processEvents()
    labels = [lab for lab in (w.status_state, w.status_epoch, w.status_step, w.status_speed,
                              w.status_elapsed, w.status_progress) if lab.isVisible()]
    rects = [lab.geometry().translated(lab.parentWidget().mapTo(w, QPoint(0, 0)))
             for lab in labels]
    for i, a in enumerate(rects):
        assert w.rect().contains(a), labels[i]
        for b in rects[i + 1:]:
            assert not a.intersects(b)
    for lab in labels:
        if hasattr(lab, "text") and lab.text():
            assert lab.fontMetrics().horizontalAdvance(lab.text()) <= lab.width() + 1, lab.text()


def test_no_doubled_tab_bars_in_the_bottom_docks_at_1400x900(window, qtbot):
    from PySide6.QtWidgets import QTabBar

    w = window

    def shown_tabs():
        bars = [b for b in w.findChildren(QTabBar) if b.isVisible() and b.parent() is w]
        return [b.tabText(i) for b in bars for i in range(b.count())]

    w.resize(1400, 900)
    w.menus.act_reset_layout.trigger()
    w.resize(1400, 900)
    qtbot.waitUntil(lambda: len(shown_tabs()) == len(set(shown_tabs())))  # no tab twice
    assert {"Loss", "Decision boundary", "Inspector"} <= set(shown_tabs())


@pytest.mark.parametrize("example", ["vanishing_gradients", "exploding_gradients"])
def test_the_deep_examples_open_at_a_readable_zoom(window, qtbot, example):
    from bplab.ui.examples import resources_dir

    w = window
    w.resize(1600, 1000)
    assert w.open_path(resources_dir() / "examples" / f"{example}.bplab.json", as_copy=True)
    qtbot.waitUntil(lambda: w.view.zoom() >= w.view.READABLE_ZOOM)
    title_px = 10.0 * w.view.logicalDpiY() / 72.0 * w.view.zoom()  # titles are 10 pt
    assert title_px >= 9.9
    first = w.scene.node_item(w.doc.nodes()[0]["id"])  # where the network starts is shown
    shown = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    assert shown.contains(first.sceneBoundingRect())
    w.view.actions_["fit"].trigger()  # Ctrl+0 still shows the whole network
    shown = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    assert all(shown.contains(i.sceneBoundingRect()) for i in w.scene.node_items())


@pytest.mark.parametrize("size", [(1600, 1000), (1280, 800)])
def test_the_mnist_example_opens_whole_with_its_mistakes_in_front(window, qtbot, size):
    """Nine layers in three bands of three fit the canvas at a readable zoom (in two bands
    of five the last conv was cut off); image data has no decision boundary, so the panel
    of mistakes is in front of the one that would only say so."""
    from bplab.ui.examples import resources_dir

    w = window
    w.resize(*size)
    qtbot.wait(100)  # the docks take their sizes for this window size, then it opens
    assert w.open_path(resources_dir() / "examples" / "mnist_cnn.bplab.json", as_copy=True)

    def whole() -> bool:
        shown = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
        return all(shown.contains(i.sceneBoundingRect()) for i in w.scene.node_items())

    qtbot.waitUntil(whole)
    assert w.view.zoom() >= w.view.READABLE_ZOOM
    qtbot.waitUntil(lambda: not w.docks["mistakes"].visibleRegion().isEmpty())
    assert w.docks["boundary"].visibleRegion().isEmpty()


SHALLOW_EXAMPLES = ["spiral", "xor", "digits_mlp", "adding_rnn", "adding_lstm", "mnist_cnn"]


@pytest.mark.parametrize("size", [(1600, 1000), (1280, 800)])
@pytest.mark.parametrize("example", SHALLOW_EXAMPLES)
def test_the_examples_open_whole_at_a_readable_zoom(window, qtbot, example, size):
    """Every layer, wire and shape label of the examples up to nine layers deep is on the
    canvas when they open, at a readable zoom (the demo's six layers in one column showed
    their first three at 1280 x 800, its output layer off the canvas at 1600 x 1000)."""
    from bplab.ui.examples import resources_dir

    w = window
    w.resize(*size)
    qtbot.wait(100)
    assert w.open_path(resources_dir() / "examples" / f"{example}.bplab.json", as_copy=True)
    items = w.scene.node_items() + w.scene.edge_items()

    def whole() -> bool:
        shown = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
        return all(shown.contains(i.sceneBoundingRect()) for i in items)

    qtbot.waitUntil(whole)
    assert w.view.zoom() >= w.view.READABLE_ZOOM
    assert all(e.label_rect().width() > 0 for e in w.scene.edge_items())  # every shape shown


def test_the_wire_between_bands_climbs_beside_them(window, qtbot):
    """The demo wraps into two bands: the wire from the foot of the first to the head of the
    second crosses no layer's card, and its shape sits under its source, not on another
    wire's label."""
    w = window
    assert w.open_path(demo_path(), as_copy=True)
    wire = next(e for e in w.scene.edge_items() if e.key == ("act1", "fc2"))
    src, dst = w.scene.node_item("act1"), w.scene.node_item("fc2")
    assert dst.pos().x() > src.pos().x() and dst.pos().y() < src.pos().y()
    points = [wire.path().pointAtPercent(t / 200) for t in range(201)]
    for item in w.scene.node_items():
        card = item.sceneBoundingRect().adjusted(4, 4, -4, -4)  # inside its shadow
        if item in (src, dst):  # only the ends touch them, at their ports
            card.adjust(0, 12, 0, -12)
        assert not any(card.contains(p) for p in points), item.node_id
    label = wire.label_rect()
    assert label.top() > src.sceneBoundingRect().center().y() and abs(
        label.center().x() - src.output_port_pos().x()) < 1
    others = [e.label_rect() for e in w.scene.edge_items() if e is not wire]
    assert not any(label.intersects(r) for r in others)


def test_a_layer_with_two_wires_out_shows_its_shape_once(window, qtbot):
    """A skip connection carries the same tensor as the wire straight down: its shape is
    shown on that wire only (two stacked copies of it sat under every residual block)."""
    from bplab.ui.examples import resources_dir

    w = window
    assert w.open_path(resources_dir() / "examples" / "residual_mlp.bplab.json", as_copy=True)
    forks = [i for i in w.scene.node_items() if len(i.edges_out) > 1]
    assert forks
    for item in forks:
        shown = [e for e in item.edges_out if e.shown_label()]
        assert len(shown) == 1 and shown[0] is shown[0].main_wire()
        start, end = shown[0].path().pointAtPercent(0), shown[0].path().pointAtPercent(1)
        assert end.y() > start.y()  # the one going down
    labels = [e.label_rect() for e in w.scene.edge_items() if e.shown_label()]
    assert not any(a.intersects(b) for i, a in enumerate(labels) for b in labels[i + 1:])
    # the wire that showed it goes: another takes the label
    from bplab.ui.commands import Disconnect

    fork = forks[0].node_id
    main = forks[0].edges_out[0].main_wire()
    w.doc.push(Disconnect(w.doc, fork, main.dst.node_id))
    outs = w.scene.node_item(fork).edges_out
    assert main not in outs and outs and all(e.shown_label() for e in outs)


def test_the_boundary_comes_back_when_the_data_becomes_2d_again(window, qtbot):
    """Image data put the mistakes in front of the decision boundary; switching the data set
    to a 2-D one brings the boundary back (it has something to draw again)."""
    from bplab.ui.examples import resources_dir

    w = window
    assert w.open_path(resources_dir() / "examples" / "mnist_cnn.bplab.json", as_copy=True)
    qtbot.waitUntil(lambda: not w.docks["mistakes"].visibleRegion().isEmpty())
    i = w.panel.dataset_combo.findData("spiral")
    w.panel.dataset_combo.setCurrentIndex(i)
    w.panel.dataset_combo.activated.emit(i)
    qtbot.waitUntil(lambda: not w.docks["boundary"].visibleRegion().isEmpty())
    assert w.docks["mistakes"].visibleRegion().isEmpty()


def test_a_run_too_short_for_a_rate_shows_its_average_speed(qtbot):
    """The trainer measures steps per second over a quarter of a second; a run that ends
    sooner (600 steps of a small network) used to leave "– steps/s" in the status bar."""
    from bplab.ui.run_status import RunStatus
    from PySide6.QtWidgets import QStatusBar

    from bplab.training import Report

    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = RunStatus(bar)
    status.show_report(Report("done", 600, 40, 40.0, 0.1, 0.1, 0.0, 0.12))
    assert status.speed.text() == "5,000 steps/s"
    status.show_report(Report("step", 601, 40, 40.0, 0.1, 0.1, 7000.0, 0.12))
    assert status.speed.text() == "7,000 steps/s"  # the measured rate, once there is one


def test_a_regression_names_its_tabs_for_what_they_show(qtbot, open_window):
    """On a regression the confusion tab is a predicted-against-true plot and the accuracy
    tab an R² curve: their tabs say so (and the old names still find them for --tab)."""
    w = open_window()
    docks, panel = w.docks, w.panel

    def choose(name: str) -> None:
        i = panel.dataset_combo.findData(name)
        panel.dataset_combo.setCurrentIndex(i)
        panel.dataset_combo.activated.emit(i)

    assert (docks["confusion"].windowTitle(), docks["metrics"].windowTitle()) == (
        "Confusion", "Accuracy")
    choose("sine")
    qtbot.waitUntil(lambda: docks["metrics"].windowTitle() == "R²", timeout=5000)
    assert docks["confusion"].windowTitle() == "Predicted vs true"
    assert w.show_tab("accuracy") and w.show_tab("confusion") and w.show_tab("R²")
    assert not docks["metrics"].visibleRegion().isEmpty()
    choose("spiral")
    qtbot.waitUntil(lambda: docks["metrics"].windowTitle() == "Accuracy", timeout=5000)
    assert docks["confusion"].windowTitle() == "Confusion"


def test_sequence_data_is_previewed_as_lines_over_time_with_targets(qtbot):
    """The adding problem's 50x2 samples were a 100-column table; they are drawn as the
    sequences they are: value and marker over the steps, each with its target."""
    from bplab.ui.dataset_preview import SEQUENCES, DatasetPreview

    from bplab.datasets import load_dataset

    ds = load_dataset({"name": "adding", "samples": 200, "seed": 0})
    w = DatasetPreview()
    qtbot.addWidget(w)
    w.set_dataset(ds)
    assert w.kind == "sequences"
    plot = w.lines.getPlotItem()
    curves = plot.listDataItems()
    assert len(curves) == SEQUENCES * 2  # value and marker of each sequence
    x = ds.x_train[:SEQUENCES].astype(np.float64)
    lo, span = x.min(), x.max() - x.min()
    t, y = curves[1].getData()  # the first sequence's marker
    np.testing.assert_array_equal(t, np.arange(ds.input_shape[0]))
    np.testing.assert_allclose(y, x[0, :, 1] - lo + (SEQUENCES - 1) * 1.3 * span)
    labels = [i.textItem.toPlainText() for i in plot.items if hasattr(i, "textItem")]
    assert labels == [f"y = {float(v):.3g}" for v in ds.y_train[:SEQUENCES, 0]]
    label = w.lines.getPlotItem().getAxis("bottom").labelText
    assert "value" in label and "marker" in label
    parity = load_dataset({"name": "sequence_parity", "samples": 100, "seed": 0})
    w.set_dataset(parity)  # classes by name, one feature, every step marked
    labels = [i.textItem.toPlainText() for i in plot.items if hasattr(i, "textItem")]
    assert labels == [f"class {parity.class_names[int(c)]}" for c in parity.y_train[:SEQUENCES]]
    assert len(plot.listDataItems()) == SEQUENCES


def test_the_preview_shows_standardized_data_in_its_own_units(qtbot):
    """Standardize features is how the network sees the data, not how it looks: the
    preview's rows read as the data set's values (wine's proline in the hundreds, not near
    0) and its images keep their ink; a standardized digit drawn as it is was noise."""
    from bplab.ui.dataset_preview import DatasetPreview

    from bplab.datasets import load_dataset

    w = DatasetPreview()
    qtbot.addWidget(w)
    raw = load_dataset({"name": "wine", "seed": 0})
    scaled = load_dataset({"name": "wine", "seed": 0, "standardize": True})
    tables = []
    for ds in (raw, scaled):
        w.set_dataset(ds)
        assert w.kind == "table"
        tables.append([[w.model.item(r, c).text() for c in range(w.model.columnCount())]
                       for r in range(w.model.rowCount())])
    assert tables[0] == tables[1]
    column = 1 + raw.feature_names.index("proline")
    assert float(tables[1][0][column]) > 100
    np.testing.assert_allclose(scaled.untransform(scaled.x_train), raw.x_train, rtol=1e-5,
                               atol=1e-3)

    images = [load_dataset({"name": "digits_images", "samples": 300, "standardize": s})
              for s in (False, True)]
    shown = []
    for ds in images:
        w.set_dataset(ds)
        assert w.kind == "images"
        shown.append(w.images.pixmap().toImage())
    assert shown[0] == shown[1]
