"""What the model gets wrong, and probing a point, in the real window: the confusion
matrix's counts equal the engine's predictions, the gallery shows the misclassified
samples with the highest confidence, and a click probes the engine's forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bplab.ui.plots.confusion import ConfusionView
from bplab.ui.plots.gallery import MistakeGallery, amount, as_image
from bplab.ui.probe import activation_image
from bplab.ui.training.update import TrainingContext, TrainingUpdate
from PySide6.QtCore import QPointF, Qt

from bplab.datasets import load_dataset
from bplab.evaluation import (
    Evaluation,
    confusion_matrix,
    largest_errors,
    probe,
    worst_mistakes,
)
from bplab.training import Report

CNN = {
    "format": "bplab-project", "version": 1, "name": "Digits, small CNN",
    "dataset": {"name": "digits_images", "val_fraction": 0.2, "seed": 0},
    "network": {"nodes": [
        {"id": "in", "type": "Input", "shape": [1, 8, 8]},
        {"id": "conv", "type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": 1},
        {"id": "relu", "type": "ReLU"},
        {"id": "flat", "type": "Flatten"},
        {"id": "out", "type": "Dense", "units": 10},
    ]},
    "loss": {"type": "cross_entropy"}, "optimizer": {"type": "adam", "lr": 0.003},
    "training": {"epochs": None, "steps": 12, "batch_size": 32, "seed": 0,
                 "dtype": "float64"},
}


def _train(open_window, qtbot, tmp_path, project):
    path = tmp_path / "p.bplab.json"
    path.write_text(json.dumps(project))
    w = open_window(path, as_copy=False)
    with qtbot.waitSignal(w.session.finished, timeout=60_000):
        w.session.run()
    assert w.session.wait_idle()
    return w, w.session.trainer


def _bring_up(w, qtbot, name: str):
    """Bring plot ``name`` to the front and wait until the frame timer has drawn it."""
    assert w.dock_layout.show_tab(name)
    plot = w.plots[name]
    qtbot.waitUntil(lambda: plot.graphics.isVisible() and not plot._dirty, timeout=10_000)
    return plot


def _click(qtbot, panel, scene_point: QPointF) -> None:
    view = panel.graphics
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.mapFromScene(scene_point))


def test_confusion_gallery_and_probe_follow_the_engine(open_window, qtbot, tmp_path):
    w, trainer = _train(open_window, qtbot, tmp_path, CNN)
    ds = trainer.dataset
    proba = trainer.predict(ds.x_val)
    pred, truth = proba.argmax(axis=1), ds.y_val

    # the confusion matrix's counts equal the engine's predictions, and so does what is drawn
    conf = _bring_up(w, qtbot, "confusion").data()
    assert conf["step"] == trainer.step_count  # the end of the run was evaluated
    for i in range(10):
        for j in range(10):
            assert conf["confusion"][i, j] == np.sum((truth == i) & (pred == j))
    cells = {(round(x), round(y)): int(text) for x, y, text in conf["cells"]}
    assert cells == {(j, i): int(conf["confusion"][i, j]) for i in range(10) for j in range(10)}

    # the gallery's samples are the misclassified ones with the highest confidence
    gallery = _bring_up(w, qtbot, "mistakes")
    shown = gallery.data()
    conf_pred = proba[np.arange(len(pred)), pred]
    wrong = np.flatnonzero(pred != truth)
    assert len(wrong) > 0
    expected = sorted(wrong, key=lambda i: (-conf_pred[i], i))[:16]
    assert [m[0] for m in shown["mistakes"]] == expected
    for (i, t, p, c), x in zip(shown["mistakes"], shown["samples"]):
        assert (t, p) == (truth[i], pred[i]) and c == pytest.approx(conf_pred[i])
        np.testing.assert_array_equal(x, ds.x_val[i])
    assert all(as_image(x) is not None for x in shown["samples"])  # drawn as images

    # a click on the third sample probes it: probabilities and every layer's activations
    item, index = gallery.cells[2]
    _click(qtbot, gallery, item.sceneBoundingRect().center())
    panel = w._probe_controller.panel
    qtbot.waitUntil(lambda: panel.result is not None, timeout=5000)
    got = panel.data()
    np.testing.assert_array_equal(got["x"], ds.x_val[index])
    ref = probe(trainer, ds.x_val[index])
    np.testing.assert_allclose(got["probabilities"], proba[index], atol=1e-12)
    forward = dict(trainer.network.forward_nodes(ds.x_val[index][None], training=False))
    assert list(got["activations"]) == list(trainer.network.order)
    for nid, act in got["activations"].items():
        np.testing.assert_allclose(act, forward[nid][0], atol=1e-12)
        np.testing.assert_allclose(act, ref.activations[nid], atol=1e-12)


def test_flat_rows_of_pixels_are_drawn_as_pictures(open_window, qtbot, tmp_path):
    """The flat 8x8 digits (an MLP's data): the preview and the gallery draw each row of 64
    pixels as the 8x8 digit it is, not as a row of numbers."""
    mlp = json.loads(json.dumps(CNN))
    mlp["dataset"]["name"] = "digits"
    mlp["network"]["nodes"] = [{"id": "in", "type": "Input", "shape": [64]},
                               {"id": "fc", "type": "Dense", "units": 16},
                               {"id": "relu", "type": "ReLU"},
                               {"id": "out", "type": "Dense", "units": 10}]
    w, trainer = _train(open_window, qtbot, tmp_path, mlp)
    ds = trainer.dataset
    assert ds.input_shape == (64,)
    qtbot.waitUntil(lambda: w.panel.preview.kind == "images", timeout=5000)
    assert "drawn 8×8" in w.panel.preview.images.toolTip()
    gallery = _bring_up(w, qtbot, "mistakes")
    assert gallery._grid[2] == "images" and gallery.cells
    for (_label, _box, item), (_, i) in zip(gallery._slots, gallery.cells):
        np.testing.assert_array_equal(item.image, ds.x_val[i].reshape(8, 8))
    np.testing.assert_array_equal(gallery.data()["samples"][0], ds.x_val[gallery.cells[0][1]])


def test_clicking_the_decision_boundary_probes_that_point(open_window, qtbot, tmp_path,
                                                          spiral):
    spiral["training"].update(epochs=None, steps=20, dtype="float64")
    w, trainer = _train(open_window, qtbot, tmp_path, spiral)
    view = _bring_up(w, qtbot, "boundary")
    vb = view.plot.getViewBox()
    target = vb.mapViewToScene(QPointF(0.5, -0.25))
    _click(qtbot, view, target)
    panel = w._probe_controller.panel
    qtbot.waitUntil(lambda: panel.result is not None, timeout=5000)
    got = panel.data()
    clicked = view.graphics.mapToScene(view.graphics.mapFromScene(target))  # whole pixels
    x = view.point_at(clicked)
    np.testing.assert_allclose(got["x"], x)
    np.testing.assert_allclose(got["x"], [0.5, -0.25], atol=0.05)  # a pixel's worth
    np.testing.assert_allclose(got["probabilities"], trainer.predict(x[None])[0], atol=1e-12)
    assert set(got["activations"]) == set(trainer.network.order)


def _one_input(spiral, dataset: dict, outputs: int, loss: str) -> dict:
    spiral["dataset"] = dataset
    spiral["network"]["nodes"][0]["shape"] = [1]
    spiral["network"]["nodes"][-1]["units"] = outputs
    spiral["loss"] = {"type": loss}
    spiral["training"].update(epochs=None, steps=40, dtype="float64")
    return spiral


def test_one_input_draws_the_fitted_function_over_the_data(open_window, qtbot, tmp_path,
                                                             spiral):
    """The sine: the network's output as a curve of x (the engine's own values), the data
    as (x, target) points, the tab named for what it shows; a click probes that x."""
    project = _one_input(spiral, {"name": "sine", "samples": 120, "seed": 0}, 1, "mse")
    w, trainer = _train(open_window, qtbot, tmp_path, project)
    ds = trainer.dataset
    qtbot.waitUntil(lambda: w.panel.preview.kind == "scatter", timeout=5000)
    px, py = w.panel.preview.scatter.getData()
    np.testing.assert_allclose(px, ds.x_train[:, 0])
    np.testing.assert_allclose(py, ds.y_train[:, 0])  # x along, the target up
    assert w.docks["boundary"].windowTitle() == "Fitted function"
    view = _bring_up(w, qtbot, "boundary")
    assert view.graphics.isVisible() and not view.message.isVisible()
    got = view.data()
    x, y = got["curve"]
    values, bounds = trainer.decision_grid(w.session.worker.boundary_resolution)
    assert bounds == ds.bounds and x[0] == bounds[0][0] and x[-1] == bounds[0][1]
    np.testing.assert_allclose(y, values)  # the trained network's output
    np.testing.assert_allclose(y, trainer.predict(x[:, None])[:, 0])
    tx, ty = got["train_points"]
    np.testing.assert_allclose(tx, ds.x_train[:, 0])
    np.testing.assert_allclose(ty, ds.y_train[:, 0])
    assert view.plot.getAxis("bottom").labelText == "x"
    view.export_csv(tmp_path / "fit.csv")
    rows = (tmp_path / "fit.csv").read_text().splitlines()
    assert rows[0] == "x,value" and len(rows) == 1 + len(x)
    assert [float(v) for v in rows[1].split(",")] == pytest.approx([x[0], y[0]])
    lo, hi = view.plot.getViewBox().viewRange()[1]
    assert lo <= float(ds.y_train.min()) and float(ds.y_train.max()) <= hi  # all in view
    target = view.plot.getViewBox().mapViewToScene(QPointF(1.5, 0.0))
    _click(qtbot, view, target)
    panel = w._probe_controller.panel
    qtbot.waitUntil(lambda: panel.result is not None, timeout=5000)
    probed = panel.data()["x"]
    assert probed.shape == (1,) and abs(float(probed[0]) - 1.5) < 0.05
    np.testing.assert_allclose(panel.data()["output"], trainer.predict(probed[None])[0],
                               atol=1e-12)


def test_a_point_of_the_predicted_against_true_scatter_probes_its_sample(
        open_window, qtbot, tmp_path, spiral):
    """Regression: every validation sample is a point (predicted, true); a click on one
    probes that sample's input, as a click on a mistake does for classes."""
    spiral["dataset"] = {"name": "plane", "samples": 200, "seed": 0}
    spiral["network"]["nodes"][-1]["units"] = 1
    spiral["loss"] = {"type": "mse"}
    spiral["training"].update(epochs=None, steps=30, dtype="float64")
    w, trainer = _train(open_window, qtbot, tmp_path, spiral)
    ds = trainer.dataset
    view = _bring_up(w, qtbot, "confusion")
    qtbot.wait(100)  # its range set as it is painted
    assert w.docks["confusion"].windowTitle() == "Predicted vs true"
    true, pred = view.data()["pairs"]
    i = int(np.argmax(np.abs(true - np.median(true))))  # a point apart from the crowd
    vb = view.plot.getViewBox()
    at = vb.mapViewToScene(QPointF(float(pred[i]), float(true[i])))
    assert view.sample_at(at) == i
    _click(qtbot, view, at)
    panel = w._probe_controller.panel
    qtbot.waitUntil(lambda: panel.result is not None, timeout=5000)
    np.testing.assert_array_equal(panel.data()["x"], ds.x_val[i])
    np.testing.assert_allclose(panel.data()["output"], trainer.predict(ds.x_val[i][None])[0],
                               atol=1e-12)
    far = vb.mapViewToScene(QPointF(float(pred.max()) + 10.0, float(true.min()) - 10.0))
    assert view.sample_at(far) is None  # nowhere near a point


def test_one_input_classes_draw_the_probability_of_class_1(open_window, qtbot, tmp_path,
                                                           spiral):
    rows = "\n".join(f"{v:.3f},{int(v > 0.5)}" for v in np.linspace(-3, 3, 80))
    (tmp_path / "one.csv").write_text("x,label\n" + rows + "\n")
    project = _one_input(spiral, {"name": "file", "path": str(tmp_path / "one.csv")}, 2,
                         "cross_entropy")
    w, trainer = _train(open_window, qtbot, tmp_path, project)
    assert w.docks["boundary"].windowTitle() == "Decision boundary"
    view = _bring_up(w, qtbot, "boundary")
    x, y = view.data()["curve"]
    np.testing.assert_allclose(y, trainer.predict(x[:, None])[:, 1])  # P(class 1)
    assert view.plot.getAxis("left").labelText == "P(class 1)"
    tx, ty = view.data()["train_points"]
    np.testing.assert_array_equal(ty, trainer.dataset.y_train)  # at their class's height
    lo, hi = view.plot.getViewBox().viewRange()[1]
    assert lo < 0 and hi > 1


def _report(step: int) -> Report:
    return Report("epoch", step, 1, 1.0, 0.5, 0.1, 0.0, 0.0)


def test_regression_draws_predicted_against_true(qtbot, tmp_path):
    ctx = TrainingContext("regression", ("fc",), ("Dense",), (), "sine", False)
    view, gallery = ConfusionView(), MistakeGallery()
    qtbot.addWidget(view)
    qtbot.addWidget(gallery)
    view.set_context(ctx)
    gallery.set_context(ctx)
    ev = Evaluation("regression", 7, np.array([0.0, 1.0, 2.0]), np.array([0.1, 0.8, 2.5]))
    upd = TrainingUpdate(np.array([7]), np.array([0.5]), (), _report(7), evaluation=ev)
    view.add_update(upd)
    gallery.add_update(upd)
    view.refresh()
    gallery.refresh()
    x, y = view.scatter.getData()
    np.testing.assert_array_equal(x, ev.y_pred)  # predicted along x, true along y
    np.testing.assert_array_equal(y, ev.y_true)
    assert gallery.data()["mistakes"] == []
    view.export_csv(tmp_path / "pairs.csv")
    assert (tmp_path / "pairs.csv").read_text().splitlines()[1] == "0.0,0.1"


def test_tabular_mistakes_are_rows_and_export(qtbot, tmp_path):
    ctx = TrainingContext("classification", ("fc",), ("Dense",), (), "iris", False,
                          n_classes=3, class_names=("setosa", "versicolor", "virginica"))
    gallery, view = MistakeGallery(), ConfusionView()
    for v in (gallery, view):
        qtbot.addWidget(v)
        v.set_context(ctx)
    yt, yp = np.array([0, 1, 2, 2]), np.array([0, 2, 1, 2])
    conf = np.array([0.9, 0.7, 0.8, 0.6])
    ms = worst_mistakes(yt, yp, conf)
    ev = Evaluation("classification", 3, yt, yp, None, confusion_matrix(yt, yp, 3), ms,
                    {m.index: np.arange(4.0) + m.index for m in ms})
    upd = TrainingUpdate(np.array([3]), np.array([0.5]), (), _report(3), evaluation=ev)
    for v in (gallery, view):
        v.add_update(upd)
        v.refresh()
    assert [m[0] for m in gallery.data()["mistakes"]] == [2, 1]
    assert all(as_image(x) is None for x in gallery.data()["samples"])
    # a list, one line a sample: side by side, rows of numbers were cut off
    assert gallery._grid[1:] == (1, "rows")
    texts = [cell.text for cell in gallery._slots[:2]]
    assert all("<br>" not in t for t in texts)
    # the classes by their names, in the gallery and on the matrix' axes
    assert texts[0].startswith("<b>virginica → versicolor (80%)</b>") and "2  3  4  5" in texts[0]
    ticks = [(0, "setosa"), (1, "versicolor"), (2, "virginica")]
    assert view.plot.getAxis("bottom")._tickLevels == [ticks]
    assert view.plot.getAxis("left")._tickLevels == [ticks]
    assert ctx.class_label(1, 5) == "vers…" and ctx.class_label(7) == "7"
    gallery.export_csv(tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text().splitlines()[1:] == ["2,2,1,0.8", "1,1,2,0.7"]
    view.export_csv(tmp_path / "c.csv")
    assert "2,1,1" in (tmp_path / "c.csv").read_text().splitlines()
    for suffix in ("png", "svg"):
        view.export_image(tmp_path / f"c.{suffix}")
        gallery.export_image(tmp_path / f"m.{suffix}")
        assert (tmp_path / f"m.{suffix}").stat().st_size > 0


def test_a_regressions_mistakes_are_the_samples_predicted_worst(qtbot, tmp_path):
    """A house-price model gets some houses badly wrong: the Mistakes tab lists the
    validation rows with the largest errors, largest first, titled true → predicted (the
    error), in the data's own units; they export, and a click probes the row."""
    ctx = TrainingContext("regression", ("fc",), ("Dense",), (), "houses", False,
                          sample_shape=(3,), input_mean=np.array([100.0, 0.0, 0.0]),
                          input_scale=np.array([10.0, 1.0, 1.0]),
                          feature_names=("area", "rooms", "age"))
    gallery = MistakeGallery()
    qtbot.addWidget(gallery)
    gallery.set_context(ctx)
    assert "predicted worst" in gallery.caption.text()
    yt = np.array([10.0, 20.0, 30.0, 40.0])
    yp = np.array([11.0, 26.0, 29.5, 37.0])
    misses = largest_errors(yt, yp)
    x = np.arange(12.0).reshape(4, 3)
    ev = Evaluation("regression", 5, yt, yp, mistakes=misses,
                    samples={m.index: x[m.index] for m in misses})
    gallery.add_update(TrainingUpdate(np.array([5]), np.array([0.5]), (), _report(5),
                                      evaluation=ev))
    gallery.refresh()
    assert [m[0] for m in gallery.data()["mistakes"]] == [1, 3, 0, 2]
    assert gallery.data()["mistakes"][0] == (1, 20.0, 26.0, 6.0)
    assert gallery.caption.text().startswith("Step 5: the 4 of 4 validation samples")
    first = gallery._slots[0].text
    assert first.startswith("<b>20 → 26 (off by 6)</b>")
    # row 1 unstandardized (3 * 10 + 100, 4, 5), each value after its feature's name
    grey = "<span style='color:gray'>{}</span> {}"
    assert first.endswith("&nbsp;&nbsp; ".join(grey.format(n, v) for n, v in
                                    (("area", 130), ("rooms", 4), ("age", 5))))
    # prices read as prices, not in e-notation
    assert [amount(v) for v in (189_700.4, 85_400.0, 999.5, 2.5e9)] == [
        "189,700", "85,400", "999.5", "2.5e+09"]
    gallery.export_csv(tmp_path / "worst.csv")
    assert (tmp_path / "worst.csv").read_text().splitlines()[:2] == [
        "index,true,predicted,error", "1,20.0,26.0,6.0"]
    probed = []
    gallery.probe_requested.connect(probed.append)
    gallery.probe_sample(3)  # the probe gets the network's own input
    np.testing.assert_array_equal(probed[0], x[3])


def test_the_confusion_matrix_can_give_each_class_its_share(qtbot, tmp_path):
    """With a rare class the counts hide how often it is missed: '% of each class' writes
    each cell as the share of its true class's samples (its row; a row without samples is
    a dash), the shading stays the share, and the CSV keeps the counts."""
    ctx = TrainingContext("classification", ("fc",), ("Dense",), (), "t", False, n_classes=3)
    view = ConfusionView()
    qtbot.addWidget(view)
    view.set_context(ctx)
    assert view.percent_check.isVisibleTo(view)
    yt = np.array([0, 0, 0, 1, 1, 1, 1] + [0] * 300)
    yp = np.array([0, 0, 1, 1, 1, 1, 0] + [0] * 299 + [2])
    ev = Evaluation("classification", 2, yt, yp, None, confusion_matrix(yt, yp, 3))
    view.add_update(TrainingUpdate(np.array([2]), np.array([0.5]), (), _report(2),
                                   evaluation=ev))
    view.refresh()
    texts = [text for _, _, text in view.data()["cells"]]
    assert texts == ["301", "1", "1", "1", "3", "0", "0", "0", "0"]
    view.percent_check.setChecked(True)
    texts = [text for _, _, text in view.data()["cells"]]
    assert texts == ["99", "<1", "<1", "25", "75", "0", "–", "–", "–"]
    assert "share of its row" in view.caption.toolTip()
    np.testing.assert_allclose(view.data()["shown"][1], [0.25, 0.75, 0.0])
    view.export_csv(tmp_path / "c.csv")
    assert "1,1,3" in (tmp_path / "c.csv").read_text().splitlines()  # counts
    view.set_context(TrainingContext("regression", ("fc",), ("Dense",), (), "s", False))
    assert not view.percent_check.isVisibleTo(view)


def test_standardized_mistakes_are_drawn_in_the_datas_own_units(qtbot):
    """Standardized inputs are what the network sees, not what people know: a standardized
    digit drawn as it is looked like noise. The gallery undoes the standardization for what
    it draws (pictures and rows); what it hands to the probe stays the network's input."""
    ds = load_dataset({"name": "digits", "samples": 300, "standardize": True})
    ctx = TrainingContext("classification", ("fc",), ("Dense",), (), "digits", False,
                          n_classes=10, sample_shape=(64,), picture_shape=(8, 8),
                          input_mean=ds.mean, input_scale=ds.scale)
    gallery = MistakeGallery()
    qtbot.addWidget(gallery)
    gallery.set_context(ctx)
    yt, yp = ds.y_val[:3], (ds.y_val[:3] + 1) % 10
    ms = worst_mistakes(yt, yp, np.array([0.9, 0.8, 0.7]))
    ev = Evaluation("classification", 3, yt, yp, None, confusion_matrix(yt, yp, 10), ms,
                    {m.index: ds.x_val[m.index] for m in ms})
    gallery.add_update(TrainingUpdate(np.array([3]), np.array([0.5]), (), _report(3),
                                      evaluation=ev))
    gallery.refresh()
    raw = load_dataset({"name": "digits", "samples": 300})  # the same rows, unstandardized
    for (_label, _box, item), (_, i) in zip(gallery._slots, gallery.cells):
        np.testing.assert_allclose(item.image, raw.x_val[i].reshape(8, 8), atol=1e-4)
        assert 0.0 <= raw.x_val[i].min() and raw.x_val[i].max() <= 1.0  # ink from 0 to 1
    np.testing.assert_array_equal(gallery.data()["samples"][0], ds.x_val[gallery.cells[0][1]])

    rows = TrainingContext("classification", ("fc",), ("Dense",), (), "t", False, n_classes=10,
                           sample_shape=(3,), input_mean=np.array([10.0, 0.0, 5.0]),
                           input_scale=np.array([2.0, 1.0, 0.5]))
    np.testing.assert_array_equal(rows.raw(np.array([1.0, 2.0, -2.0])), [12.0, 2.0, 4.0])


def test_feature_maps_are_drawn_side_by_side():
    a = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    img = activation_image(a)
    assert img.shape == (3, 9)
    np.testing.assert_array_equal(img[:, :4], a[0])
    assert np.isnan(img[:, 4]).all()
    assert activation_image(np.arange(5.0)).shape == (1, 5)


def test_a_new_evaluation_redraws_into_the_same_cells(qtbot):
    """While training, the gallery and the confusion matrix are redrawn at every evaluation:
    the cells and count labels are made once and then only refilled (making them cost
    ~100 ms a redraw, a visible stall), and what they show is the new evaluation's."""
    ctx = TrainingContext("classification", ("fc",), ("Dense",), (), "images", False,
                          n_classes=3, sample_shape=(1, 5, 5))
    gallery, view = MistakeGallery(), ConfusionView()
    for v in (gallery, view):
        qtbot.addWidget(v)
        v.set_context(ctx)
    rng = np.random.default_rng(0)

    def evaluation(step: int) -> Evaluation:
        yt = rng.integers(0, 3, 40)
        yp = (yt + rng.integers(0, 2, 40)) % 3
        ms = worst_mistakes(yt, yp, rng.uniform(0.4, 1.0, 40))
        return Evaluation("classification", step, yt, yp, None, confusion_matrix(yt, yp, 3),
                          ms, {m.index: rng.standard_normal((1, 5, 5)) for m in ms})

    def show(ev: Evaluation) -> None:
        upd = TrainingUpdate(np.array([ev.step]), np.array([0.5]), (), _report(ev.step),
                             evaluation=ev)
        for v in (gallery, view):
            v.add_update(upd)
            v.refresh()

    made = [cell[1] for cell in gallery._slots]  # made with the context, before any run
    assert len(made) == 16
    texts = list(view.texts)  # the count labels too (100 of them took ~100 ms mid-run)
    assert len(texts) == 9 and all(t.textItem.toPlainText() == "" for t in texts)
    show(evaluation(1))
    boxes = [vb for vb, _ in gallery.cells]
    assert boxes == made
    assert len(boxes) == 16 and view.texts == texts
    ev = evaluation(2)
    show(ev)
    assert [vb for vb, _ in gallery.cells] == boxes  # the same view boxes, refilled
    assert view.texts == texts
    assert [i for _, i in gallery.cells] == [m.index for m in ev.mistakes[:16]]
    for (_label, _box, item), (_, i) in zip(gallery._slots, gallery.cells):
        np.testing.assert_array_equal(item.image, as_image(ev.sample(i)))
    assert [t.textItem.toPlainText() for t in view.texts] == [
        str(int(c)) for c in ev.confusion.reshape(-1)]
    share = ev.confusion / np.maximum(ev.confusion.sum(axis=1, keepdims=True), 1)
    assert [t.textItem.defaultTextColor().red() == 255 for t in view.texts] == [
        bool(v > 0.55) for v in share.reshape(-1)]  # light text on the dark cells
    view.set_context(ctx)  # a new run: the same labels, blanked until its first matrix
    assert view.texts == texts and all(t.textItem.toPlainText() == "" for t in texts)
    regression = TrainingContext("regression", ("fc",), ("Dense",), (), "sine", False)
    view.set_context(regression)  # no class labels or class ticks on a scatter
    assert view.texts == [] and view.plot.getAxis("bottom")._tickLevels is None


def test_a_new_run_blanks_the_gallerys_cells_instead_of_making_them_again(qtbot):
    """The cells are made before Run (prepare); the run's own context, arriving once training
    has started, must not make them again (~65 ms of stalled window on the demo)."""
    ctx = TrainingContext("classification", ("fc",), ("Dense",), (), "digits", False,
                          n_classes=3, sample_shape=(1, 8, 8))
    gallery = MistakeGallery()
    qtbot.addWidget(gallery)
    gallery.set_context(ctx)
    made = list(gallery._slots)
    assert len(made) == 16
    yt, yp = np.array([0, 1]), np.array([1, 1])
    ms = worst_mistakes(yt, yp, np.array([0.9, 0.8]))
    ev = Evaluation("classification", 3, yt, yp, None, confusion_matrix(yt, yp, 3), ms,
                    {m.index: np.ones((1, 8, 8)) for m in ms})
    gallery.add_update(TrainingUpdate(np.array([3]), np.array([0.5]), (), _report(3),
                                      evaluation=ev))
    gallery.refresh()
    assert gallery.data()["mistakes"] and made[0][2].image is not None
    gallery.set_context(ctx)
    assert gallery._slots == made  # the same cells, blanked
    assert gallery.data()["mistakes"] == [] and made[0][2].image is None
    assert made[0][0].text == ""
