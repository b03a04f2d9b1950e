"""The viewer workflow a lab uses: train, load, lift into the synced 3D view, edit, save, evaluate."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import sleap_io as sio
from napari.utils.events import Event

from napari_liftpose.io import read_poses
from napari_liftpose.napari.view3d import get_view3d
from napari_liftpose.napari.widgets import LiftPoseWidget, layer_poses
from tests.napari.drag import drag_point

pytestmark = pytest.mark.slow  # every test here trains a network (or uses one trained here)


def _coords3d(points3d) -> np.ndarray:
    """All frames of a 3D view layer (it shows one frame; ``metadata["poses"]`` holds them all)."""
    return points3d.metadata["poses"].coords


def _changed_frames(before: np.ndarray, after: np.ndarray) -> list[int]:
    differs = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    return list(np.nonzero(differs.any(axis=(1, 2, 3)))[0])


def _shown_3d(points3d) -> tuple[np.ndarray, list[str]]:
    """The 3D rows on screen, ``(t, z, y, x)``, and their keypoint names."""
    shown = points3d.shown
    return points3d.data[shown], list(points3d.features["keypoint"][shown].astype(str))


def _colors_by_keypoint(layer) -> dict[str, tuple]:
    names = layer.features["keypoint"].astype(str)
    return dict(zip(names, map(tuple, layer.face_color), strict=True))


def _colored_pixels(image: np.ndarray) -> int:
    rgb = image[..., :3].astype(int)
    return int(((rgb.max(-1) - rgb.min(-1)) > 80).sum())


@pytest.fixture
def opened(make_napari_viewer, demo, tmp_path):
    """A viewer with the demo walk open (copied to tmp) and the LiftPose widget docked."""
    for path in (demo.tracks, demo.video):
        shutil.copy(path, tmp_path / path.name)
    viewer = make_napari_viewer(show=True)
    viewer.open(tmp_path / demo.tracks.name, plugin="napari-liftpose")
    widget = LiftPoseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="LiftPose")
    return viewer, widget, tmp_path / demo.tracks.name


@pytest.fixture
def lifted(opened, demo, qtbot):
    viewer, widget, source = opened
    assert widget.load_model(demo.model)
    widget.lift_layer.value = source.name
    shown = []
    widget.lift_selected(then=shown.append)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=30_000)
    view = get_view3d(viewer)
    return viewer, widget, view, viewer.layers[source.name], view.model.layers[f"{source.name} 3D"]


def _train(widget, demo, qtbot, tmp_path, epochs):
    widget.library.value = [str(demo.library)]
    widget.camera_mode.value = "calibration file"
    widget.calibration.value = demo.calibration
    widget.camera_name.value = "demo"
    widget.roots.value = "Thorax"
    widget.epochs.value = epochs
    widget.output.value = tmp_path / "widget_model.safetensors"
    widget.train_button.clicked()


def test_training_from_the_widget_adds_a_model(opened, demo, qtbot, tmp_path):
    viewer, widget, _ = opened
    assert "CPU" in widget.device_label.value or "GPU" in widget.device_label.value
    _train(widget, demo, qtbot, tmp_path, epochs=2)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=120_000)
    assert widget.lifter is not None
    assert widget.last_result.status == "finished"
    assert widget.loss_curve.epochs == [1, 2]
    assert all(np.isfinite(widget.loss_curve.train))
    assert (tmp_path / "widget_model.safetensors").is_file()
    assert widget.train_button.enabled and not widget.cancel_button.enabled


def test_cancel_stops_training_and_the_viewer_still_answers(opened, demo, qtbot, tmp_path):
    viewer, widget, _ = opened
    _train(widget, demo, qtbot, tmp_path, epochs=500)
    qtbot.waitUntil(lambda: len(widget.loss_curve.epochs) >= 1, timeout=120_000)
    # the GUI thread is free while training runs: the slider moves and layers redraw
    viewer.dims.set_current_step(0, 7)
    qtbot.wait(50)
    assert viewer.dims.current_step[0] == 7
    widget.cancel_button.clicked()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=5_000)
    assert widget.last_result.status == "cancelled"
    assert widget.last_result.epochs_run < 500
    assert widget.lifter is not None  # the last good checkpoint is kept and loaded
    assert (tmp_path / "widget_model.safetensors").is_file()


def test_lifting_adds_a_3d_dock_whose_points_are_drawn(lifted, qtbot):
    viewer, widget, view, points2d, points3d = lifted
    assert points3d.data.shape[1] == 4  # (t, z, y, x) in the 3D view only
    assert all(
        layer.data.shape[1] == 3 for layer in viewer.layers if layer._type_string == "points"
    )
    assert view.model.dims.ndisplay == 3
    # colored alike: each keypoint has the same color in both views
    colors2d = _colors_by_keypoint(points2d)
    colors3d = _colors_by_keypoint(points3d)
    assert colors3d == {name: colors2d[name] for name in colors3d}
    qtbot.wait(200)
    drawn = view.qt_viewer.screenshot(flash=False)
    points3d.visible = False
    view.model.layers[f"{points2d.name} 3D bones"].visible = False
    view.model.axes.visible = False  # the view's labelled axes are drawn in colour too
    qtbot.wait(200)
    blank = view.qt_viewer.screenshot(flash=False)
    assert _colored_pixels(drawn) > 100
    assert _colored_pixels(blank) == 0


def test_time_sliders_follow_each_other(lifted):
    viewer, widget, view, _, _ = lifted
    viewer.dims.set_current_step(0, 33)
    assert view.model.dims.current_step[0] == 33
    view.model.dims.set_current_step(0, 71)
    assert viewer.dims.current_step[0] == 71


def test_moving_a_2d_point_changes_that_frame_in_3d_and_nothing_else(lifted, qtbot):
    viewer, widget, view, points2d, points3d = lifted
    frame = 40
    before = _coords3d(points3d).copy()
    rows = np.nonzero(points2d.data[:, 0] == frame)[0]
    claw = rows[list(points2d.features["keypoint"][rows]).index("LF_Claw")]
    viewer.dims.set_current_step(0, frame)
    # what a drag does: napari moves the selected point and emits a data event
    drag_point(points2d, claw, [0, 30, 40])
    assert _changed_frames(before, _coords3d(points3d)) == [frame]
    # the frame shows what the model makes of the edited 2D pose
    edited_2d = layer_poses(points2d).select_keypoints(widget.lifter.keypoints).coords[frame]
    expected = widget.lifter.lift_arrays(edited_2d[None])[0, 0]  # (keypoints, 3): x, y, z
    shown, names = _shown_3d(points3d)
    assert (shown[:, 0] == frame).all() and len(names) == len(widget.lifter.keypoints)
    order = [widget.lifter.keypoints.index(n) for n in names]
    np.testing.assert_allclose(shown[:, [3, 2, 1]], expected[order], atol=1e-4)
    # and the 3D bones follow the re-lifted points
    bones = view.model.layers[f"{points2d.name} 3D bones"]
    tips = bones.data[:, 0, 1:] + bones.data[:, 1, 1:]
    assert np.min(np.linalg.norm(tips[:, None] - shown[None, :, 1:], axis=-1), axis=1).max() < 1e-4
    assert bool(points2d.features["edited"][claw])
    assert points2d.features["edited"].sum() == 1
    # the lifted Poses (exported) follow too
    assert np.isfinite(widget.lifted.coords[frame]).all()


def test_replacing_layer_data_relifts_the_changed_frame(lifted):
    viewer, widget, view, points2d, points3d = lifted
    before = _coords3d(points3d).copy()
    data = points2d.data.copy()
    row = np.nonzero(data[:, 0] == 5)[0][0]
    data[row, 1:] += [15, -15]
    points2d.data = data
    assert _changed_frames(before, _coords3d(points3d)) == [5]


def test_save_after_edit_keeps_the_original(opened, qtbot):
    viewer, widget, source = opened
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    points = viewer.layers[source.name]
    original = read_poses(source)
    row = np.nonzero(points.data[:, 0] == 3)[0][2]
    drag_point(points, row, [0, 12, -9])
    written = viewer.layers.save(str(source), selected=True, plugin="napari-liftpose")
    refined = source.with_name("walk.refined.slp")
    assert written == [str(refined)]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    again = read_poses(refined)
    keypoint = original.keypoints.index(points.features["keypoint"][row])
    moved = np.zeros(original.coords.shape[:3], bool)
    moved[3, 0, keypoint] = True
    np.testing.assert_array_equal(again.coords[~moved], original.coords[~moved])
    np.testing.assert_allclose(again.coords[3, 0, keypoint], points.data[row, [2, 1]], atol=1e-4)
    assert not np.allclose(again.coords[3, 0, keypoint], original.coords[3, 0, keypoint])
    labels = sio.load_slp(str(refined))
    assert len(labels.find(labels.videos[0], 3)[0].user_instances) == 1


def test_save_dlc_after_edit_is_bit_exact_elsewhere(make_napari_viewer, data_dir, tmp_path):
    source = tmp_path / "reachingDEMO_2D.h5"
    shutil.copy(data_dir / "dlc_reaching_2d" / "reachingDEMO_2D.h5", source)
    shutil.copy(data_dir / "dlc_reaching_2d" / "config.yaml", tmp_path / "config.yaml")
    viewer = make_napari_viewer()
    viewer.open(source, plugin="napari-liftpose")
    points = viewer.layers[source.name]
    data = points.data.copy()
    data[10, 1:] += 4.0
    points.data = data
    target = tmp_path / "out" / "refined.h5"
    assert viewer.layers.save(str(target), selected=True, plugin="napari-liftpose") == [str(target)]
    before, after = read_poses(source), read_poses(target)
    same = np.ones(before.coords.shape[:3], bool)
    t = int(data[10, 0])
    same[t, 0, before.keypoints.index(points.features["keypoint"][10])] = False
    np.testing.assert_array_equal(after.coords[same], before.coords[same])
    assert np.isnan(after.coords).sum() == np.isnan(before.coords).sum()


def test_a_failing_write_leaves_no_partial_file(opened, notifications):
    viewer, widget, source = opened
    blocker = source.parent / "blocker"
    blocker.write_text("a file where a folder should be")
    written = viewer.layers.save(str(blocker / "x.slp"), selected=True, plugin="napari-liftpose")
    assert written == []
    assert sorted(p.name for p in source.parent.iterdir()) == ["blocker", "walk.mp4", "walk.slp"]
    assert any("blocker" in message for message in notifications)


def test_evaluate_panel_shows_metrics_and_per_joint_plot(lifted, demo, qtbot):
    viewer, widget, view, _, _ = lifted
    metrics = widget.evaluate_against(demo.truth)
    assert 0 < metrics["mpjpe"] < 1.0  # mm, on a ~3 mm insect
    assert "MPJPE" in widget.metrics_label.value and "PA-MPJPE" in widget.metrics_label.value
    bars = widget.joint_plot.axes.patches
    assert len(bars) == len(metrics["per_joint_mpjpe"])
    qtbot.waitUntil(widget.joint_plot.isVisible, timeout=2_000)  # shown in the Evaluate tab


def test_export_3d_writes_what_the_view_shows(lifted, tmp_path):
    viewer, widget, view, points2d, points3d = lifted
    path = widget.export_3d(tmp_path / "walk3d.npz")
    exported = read_poses(path)
    assert exported.coords.shape == widget.lifted.coords.shape
    viewer.dims.set_current_step(0, 12)
    shown, names = _shown_3d(points3d)
    order = [exported.keypoints.index(n) for n in names]
    np.testing.assert_allclose(shown[:, [3, 2, 1]], exported.coords[12, 0, order])


def test_model_with_other_keypoints_names_what_differs(opened, data_dir, demo, notifications):
    viewer, widget, _ = opened
    viewer.open(
        data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp",
        plugin="napari-liftpose",
    )
    widget.lift_layer.value = "minimal_top_proofread.slp"
    widget.load_model(demo.model)
    message = next(m for m in notifications if "does not fit" in m)
    assert "missing" in message and "LF_Claw" in message and "Nose" in message


def test_sample_data_opens_video_tracks_and_bones(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-liftpose", "walking_insect")
    kinds = sorted(layer._type_string for layer in viewer.layers)
    assert kinds == ["image", "points", "vectors"]
    assert viewer.layers["walking insect"].data.shape[1] == 3


def test_data_event_without_indices_marks_nothing_when_nothing_moved(lifted):
    viewer, widget, view, points2d, points3d = lifted
    before = _coords3d(points3d).copy()
    points2d.events.data(Event("data"))
    np.testing.assert_array_equal(_coords3d(points3d), before)


def test_lift_button_lifts_in_the_background(opened, demo, qtbot):
    viewer, widget, source = opened
    widget.load_model(demo.model)
    widget.lift_layer.value = source.name
    widget.lift_button.clicked()
    qtbot.waitUntil(lambda: widget.lifted is not None, timeout=30_000)
    assert f"{source.name} 3D" in get_view3d(viewer).model.layers


def test_lifting_without_a_model_says_so(opened, notifications):
    viewer, widget, source = opened
    widget.lift_layer.value = source.name
    assert widget.lift_selected() is None
    assert any("No lifter" in message for message in notifications)


def test_main_slider_is_not_held_back_by_a_shorter_3d_view(lifted):
    viewer, widget, view, points2d, points3d = lifted
    n_frames = widget.lifted.n_frames
    viewer.add_image(np.zeros((n_frames + 50, 8, 8), np.uint8), name="longer video")
    viewer.dims.set_current_step(0, n_frames + 20)
    assert viewer.dims.current_step[0] == n_frames + 20
    assert view.model.dims.current_step[0] == n_frames - 1


def test_closing_the_3d_dock_then_lifting_again_opens_a_new_one(lifted, qtbot):
    viewer, widget, view, points2d, points3d = lifted
    viewer.window.remove_dock_widget(view.dock)
    qtbot.wait(50)
    shown = []
    widget.lift_selected(then=shown.append)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=30_000)
    new_view = get_view3d(viewer)
    assert new_view is not view and new_view.is_open
    assert f"{points2d.name} 3D" in new_view.model.layers


def test_3d_and_bones_follow_while_a_point_is_being_dragged(lifted):
    """napari blocks data events during a drag: the plugin follows mouse moves instead."""
    from types import SimpleNamespace

    viewer, widget, view, points2d, points3d = lifted
    frame = 60
    viewer.dims.set_current_step(0, frame)
    row = int(np.nonzero(points2d.data[:, 0] == frame)[0][7])
    before = _coords3d(points3d).copy()
    shown_before = points3d.data.copy()
    event = SimpleNamespace(type="mouse_press")
    followers = [cb(points2d, event) for cb in points2d.mouse_drag_callbacks]
    for follower in followers:
        next(follower)  # press
    points2d.selected_data = {row}
    start = points2d.data[row].copy()
    points2d._set_drag_start({row}, start)
    event.type = "mouse_move"
    with points2d.events.data.blocker():  # what napari's select mode does on a move
        points2d._move({row}, start + [0, 20, 25])
    for follower in followers:
        next(follower)  # the move reaches the plugin's drag callbacks
    assert _changed_frames(before, _coords3d(points3d)) == [frame]
    assert (points3d.data != shown_before).any()  # the frame on screen was redrawn
    bones = viewer.layers[f"{points2d.name} bones"]
    moved = points2d.data[row, 1:]
    ends = np.concatenate([bones.data[:, 0, 1:], bones.data[:, 0, 1:] + bones.data[:, 1, 1:]])
    assert np.min(np.linalg.norm(ends - moved, axis=1)) < 1e-4


@pytest.mark.slow
def test_widget_and_cli_evaluate_a_several_roots_model_alike(opened, demo, qtbot, tmp_path, capsys):
    """The Evaluate tab and ``napari-liftpose evaluate`` use the model's roots and target sets."""
    from napari_liftpose.cli import main
    from napari_liftpose.io import read_calibration
    from napari_liftpose.lifting import KnownCamera, TrainConfig, train

    viewer, widget, source = opened
    model = tmp_path / "legs.safetensors"
    leg = ["LF_Femur", "LF_Tibia", "LF_Tarsus", "LF_Claw"]
    train(
        read_poses(demo.library),
        KnownCamera(read_calibration(demo.calibration)["demo"]),
        model,
        TrainConfig(epochs=1, seed=0),
        roots=["Thorax", "LF_Coxa"],
        target_sets=[["Head", "Abdomen"], leg],
    )
    assert widget.load_model(model)
    widget.lift_layer.value = source.name
    shown = []
    widget.lift_selected(then=shown.append)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=30_000)
    in_widget = widget.evaluate_against(demo.truth)
    capsys.readouterr()
    assert main(["evaluate", str(model), str(source), str(demo.truth), "--json"]) == 0
    on_cli = json.loads(capsys.readouterr().out)
    assert on_cli["roots"] == in_widget["roots"] == ["Thorax", "LF_Coxa"]
    for key in ("mpjpe", "pa_mpjpe", "n_mpjpe"):
        assert in_widget[key] == pytest.approx(on_cli[key], rel=1e-4), key
    assert in_widget["per_joint_mpjpe"]["LF_Coxa"] is None or np.isnan(
        in_widget["per_joint_mpjpe"]["LF_Coxa"]
    )  # a root: not an error of its own


@pytest.mark.slow
def test_widget_cli_and_api_default_to_one_camera_distance(opened, demo, tmp_path, capsys):
    """Random cameras default to 5-10x the animal's size in the widget, the CLI and ``train``."""
    from napari_liftpose.cli import main
    from napari_liftpose.lifting import RandomCameras, TrainConfig, load_lifter, train
    from napari_liftpose.lifting.camera_defaults import animal_size, default_distance

    _, widget, _ = opened
    library = read_poses(demo.library)
    expected = default_distance([library])
    assert expected == pytest.approx((5 * animal_size([library]), 10 * animal_size([library])))
    widget.library.value = [str(demo.library)]
    widget.camera_mode.value = "random cameras"
    in_widget = widget._camera_choice().distance
    assert in_widget == pytest.approx(expected, rel=1e-3)  # as the spin boxes show it
    on_cli = tmp_path / "cli.safetensors"
    args = ["train", str(demo.library), "-o", str(on_cli), "--random-camera", "--epochs", "1"]
    assert main(args) == 0
    in_api = tmp_path / "api.safetensors"
    train(library, RandomCameras(), in_api, TrainConfig(epochs=1))
    for model in (on_cli, in_api):
        assert load_lifter(model).meta["camera"]["distance"] == pytest.approx(expected, rel=1e-12)
