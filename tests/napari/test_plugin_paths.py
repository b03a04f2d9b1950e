"""The LiftPose dock works however napari opens it (issue 11): add_plugin_dock_widget, the Plugins
menu, direct construction; public napari API only; one toast per failure; messages wrap."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from napari_liftpose.io import read_poses
from napari_liftpose.napari.view3d import get_view3d
from napari_liftpose.napari.widgets import LiftPoseWidget

pytestmark = pytest.mark.slow  # the demo lifter is trained for these tests


def _colored_pixels(image: np.ndarray) -> int:
    rgb = image[..., :3].astype(int)
    return int(((rgb.max(-1) - rgb.min(-1)) > 80).sum())


@pytest.fixture
def viewer_with_walk(make_napari_viewer, demo, tmp_path):
    for path in (demo.tracks, demo.video):
        shutil.copy(path, tmp_path / path.name)
    viewer = make_napari_viewer(show=True)
    viewer.open(tmp_path / demo.tracks.name, plugin="napari-liftpose")
    return viewer, tmp_path / demo.tracks.name


def _open_from_plugins_menu(viewer, qtbot):
    """Trigger the Plugins menu's LiftPose action, as a user does; return the docked widget."""
    menu = viewer.window.plugins_menu
    menu.aboutToShow.emit()  # napari fills the menu's state when it is about to show
    actions = [a for a in menu.actions() if "LiftPose" in a.text().replace("&", "")]
    assert len(actions) == 1, [a.text() for a in menu.actions()]
    actions[0].trigger()
    qtbot.waitUntil(
        lambda: any(isinstance(w, LiftPoseWidget) for w in viewer.window.dock_widgets.values()),
        timeout=5_000,
    )
    return next(w for w in viewer.window.dock_widgets.values() if isinstance(w, LiftPoseWidget))


def _lift(widget, layer_name, qtbot):
    widget.lift_layer.value = layer_name
    shown = []
    assert widget.lift_selected(then=shown.append) is not None
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=30_000)
    return shown[0]


@pytest.mark.parametrize("how", ["add_plugin_dock_widget", "plugins_menu"])
def test_every_tab_works_however_napari_opens_the_dock(
    viewer_with_walk, demo, qtbot, tmp_path, how
):
    viewer, source = viewer_with_walk
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if how == "add_plugin_dock_widget":
            _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
            assert type(widget.viewer).__name__ == "PublicOnlyProxy"  # the path that failed
        else:
            widget = _open_from_plugins_menu(viewer, qtbot)
        assert isinstance(widget, LiftPoseWidget)
        assert widget.lift_layer.choices == (source.name,)
        assert widget.load_model(demo.model)
        points3d = _lift(widget, source.name, qtbot)
        view = get_view3d(viewer)
        assert get_view3d(widget.viewer) is view  # one 3D view, whichever handle reaches it
        assert view.is_open and f"{source.name} 3D" in view.model.layers
        assert widget.status.value.startswith("Lifted")
        qtbot.wait(200)
        drawn = view.qt_viewer.screenshot(flash=False)
        # a 2D edit re-lifts through the session, and export writes it
        points2d = viewer.layers[source.name]
        frame = int(points3d.data[0, 0])
        before = widget.session.lifted().coords[frame].copy()
        rows = np.nonzero(points2d.data[:, 0] == frame)[0]
        data = points2d.data.copy()
        data[rows[4], 1:] += [12.0, -9.0]
        points2d.data = data
        assert not np.allclose(widget.session.lifted().coords[frame], before)
        exported = read_poses(widget.export_3d(tmp_path / "walk3d.h5"))
        np.testing.assert_allclose(exported.coords, widget.session.lifted().coords)
        metrics = widget.evaluate_against(demo.truth)
        assert 0 < metrics["mpjpe"] < 1.0
        assert "MPJPE" in widget.metrics_label.value
        truth = view.model.layers[f"{demo.truth.name} (truth)"]  # beside the lift, in 3D
        assert truth.data.shape[1] == 4 and view.model.layers.index(truth) == 0
        assert all(
            layer.data.shape[1] == 3 for layer in viewer.layers if "Points" in type(layer).__name__
        )
    private = [str(w.message) for w in caught if "Private attribute" in str(w.message)]
    assert private == []  # public napari API only
    assert _colored_pixels(drawn) > 100  # the 3D dock's canvas has the points drawn


def test_the_3d_dock_gets_room_in_naparis_window(viewer_with_walk, demo, qtbot):
    viewer, source = viewer_with_walk
    dock, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    widget.load_model(demo.model)
    _lift(widget, source.name, qtbot)
    view = get_view3d(viewer)
    qtbot.wait(100)
    window = view.dock.parentWidget()
    assert window is dock.parentWidget()  # docked in napari's own window
    assert view.dock.width() > dock.width() * 0.8  # given room beside the LiftPose dock
    viewer.window.remove_dock_widget(view.dock)
    qtbot.wait(50)
    assert not view.is_open


def test_a_failed_load_changes_nothing_and_toasts_once(
    viewer_with_walk, demo, tmp_path, notifications
):
    viewer, source = viewer_with_walk
    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    assert widget.load_model(demo.model)
    lifter, info = widget.lifter, widget.model_info.value
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 64)
    notifications.clear()
    assert not widget.load_model(bad)
    assert widget.lifter is lifter and widget.model_info.value == info
    assert len(notifications) == 1 and "broken.safetensors" in notifications[0]
    assert widget.status.value == notifications[0]


def test_a_failed_lift_toasts_once(viewer_with_walk, demo, qtbot, notifications, monkeypatch):
    viewer, source = viewer_with_walk
    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    widget.load_model(demo.model)

    def broken(poses, **kwargs):
        raise RuntimeError("out of memory on the device")

    monkeypatch.setattr(widget.session.lifter, "lift", broken)
    notifications.clear()
    widget.lift_layer.value = source.name
    worker = widget.lift_selected()
    qtbot.waitUntil(lambda: any("lifting failed" in m for m in notifications), timeout=30_000)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=5_000)
    qtbot.wait(200)
    assert len(notifications) == 1, notifications
    assert "out of memory" in notifications[0]
    assert not widget.session.has_lifted()


def test_a_long_message_wraps_instead_of_widening_the_dock(
    viewer_with_walk, data_dir, demo, qtbot, notifications
):
    viewer, _ = viewer_with_walk
    dock, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    qtbot.wait(100)
    window_width, dock_width = dock.parentWidget().width(), dock.width()
    viewer.open(
        data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp",
        plugin="napari-liftpose",
    )
    widget.lift_layer.value = "minimal_top_proofread.slp"
    widget.load_model(demo.model)  # loads, but does not fit the mouse: a long keypoint message
    message = next(m for m in notifications if "does not fit" in m)
    assert len(message) > 300 and widget.status.value == message
    qtbot.wait(200)
    assert dock.width() <= dock_width + 2
    assert dock.parentWidget().width() == window_width
    label = widget.status.native
    assert label.wordWrap() and label.height() > label.fontMetrics().height() * 2  # wrapped


def test_evaluate_tab_camera_field_serves_random_camera_lifters(
    viewer_with_walk, demo, qtbot, tmp_path
):
    from napari_liftpose.lifting import RandomCameras, TrainConfig, train

    viewer, source = viewer_with_walk
    model = tmp_path / "random.safetensors"
    train(
        read_poses(demo.library),
        RandomCameras(),
        model,
        TrainConfig(epochs=1, seed=0),
        roots=["Thorax"],
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    assert widget.load_model(model)
    assert "camera" in widget.model_info.value.lower() and "Evaluate" in widget.model_info.value
    _lift(widget, source.name, qtbot)
    assert widget.evaluate_against(demo.truth) is None
    assert "camera the 2D tracks" in widget.status.value
    widget.eval_calibration.value = demo.calibration  # the tab's camera field
    assert list(widget.eval_camera.choices) == ["demo"]
    widget.eval_camera.value = "demo"
    from_field = widget.evaluate_against(demo.truth)
    assert from_field["frame"] == "upright" and np.isfinite(from_field["mpjpe"])
    from_script = widget.evaluate_against(demo.truth, camera=(demo.calibration, "demo"))
    assert from_script["mpjpe"] == pytest.approx(from_field["mpjpe"])


def test_the_annotate_tab_after_a_lift_through_the_plugin_dock(viewer_with_walk, demo, qtbot):
    """The annotator's tools, opened the way napari opens plugins: chooser, queue, Save labels."""
    viewer, source = viewer_with_walk
    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    assert viewer.dims.axis_labels[0] == "frame"  # not "-3"
    assert widget.load_model(demo.model)
    _lift(widget, source.name, qtbot)
    widget.show_tab("Annotate")
    assert widget.annotate_layer.value == source.name
    assert widget._chooser.editor.layer.name == source.name  # the chooser edits that layer
    lifted = widget.session.lifted(source.name)
    ranked = widget.queue.ranked_frames()
    assert len(ranked) and ranked[0] == int(np.nanargmax(np.nanmax(lifted.suspicion, axis=1)))
    assert "3D layers" in viewer.window.dock_widgets  # the 3D view's panel
    widget.save_labels_button.changed.emit(True)  # the button a user clicks
    refined = source.with_name(source.stem + ".refined" + source.suffix)
    assert refined.is_file()
    np.testing.assert_array_equal(read_poses(refined).coords, read_poses(source).coords)
