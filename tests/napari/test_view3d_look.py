"""The 3D view as a person reads it: oblique and fitted, labelled, legends, uncertainty, truth."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.napari.layers import TRUTH_COLOR, fit_camera, oblique_view
from napari_liftpose.napari.view3d import View3DPanel, _hex, get_view3d, show_truth
from tests.napari.fly_lift import fly_lift, read_fly


def _drawn(view, qtbot, hide) -> np.ndarray:
    """Pixels that change when the layers ``hide`` are hidden: (h, w) bool."""
    qtbot.wait(200)
    shot = view.qt_viewer.screenshot(flash=False)[..., :3].astype(int)
    visible = [layer.visible for layer in hide]
    for layer in hide:
        layer.visible = False
    qtbot.wait(200)
    blank = view.qt_viewer.screenshot(flash=False)[..., :3].astype(int)
    for layer, was in zip(hide, visible, strict=True):
        layer.visible = was
    return np.abs(shot - blank).max(-1) > 40


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max(), cols.min(), cols.max()


@pytest.fixture
def fly_view(make_napari_viewer, data_dir, qtbot):
    """A viewer whose 3D view shows the real fly (1000 frames, mm, z up)."""
    viewer = make_napari_viewer(show=True)
    view = get_view3d(viewer)
    layer = view.add_poses(read_fly(data_dir), "fly 3D")
    qtbot.wait(200)
    return viewer, view, layer


def test_fit_camera_puts_the_box_inside_the_canvas():
    low, high = np.array([0.0, -1.0, -2.0]), np.array([1.0, 3.0, 2.0])
    direction, up = oblique_view("world")
    center, zoom = fit_camera(low, high, direction, up, (300, 500), fill=0.8)
    np.testing.assert_allclose(center, [0.5, 1.0, 0.0])
    view = np.asarray(direction) / np.linalg.norm(direction)
    up = np.asarray(up) - view * (np.asarray(up) @ view)
    up /= np.linalg.norm(up)
    corners = np.array(np.meshgrid(*zip(low, high, strict=True), indexing="ij")).reshape(3, -1).T
    width = np.ptp(corners @ np.cross(view, up)) * zoom
    height = np.ptp(corners @ up) * zoom
    assert max(width / 500, height / 300) == pytest.approx(0.8)


def test_the_view_starts_oblique_labelled_and_fitted(fly_view, qtbot):
    viewer, view, layer = fly_view
    camera = view.model.camera
    # not down an axis: every axis shows some depth
    assert np.max(np.abs(camera.view_direction)) < 0.9
    # z (the fly's up, scene axis 0) points up the canvas
    assert camera.up_direction[0] > 0.8
    assert view.model.dims.axis_labels == ("frame", "z (mm)", "y (mm)", "x (mm)")
    assert view.model.axes.visible and view.model.axes.labels
    bones = view.model.layers["fly 3D bones"]
    height, width = view.qt_viewer.canvas.size
    for frame in (0, 500, 999):
        view.model.dims.set_point(0, frame)
        assert layer.data[0, 0] == frame
        drawn = _drawn(view, qtbot, [layer, bones])
        assert drawn.sum() > 200, frame
        top, bottom, left, right = _box(drawn)
        # inside the canvas, not touching an edge (nothing clipped)
        assert top > 2 and left > 2 and bottom < height - 3 and right < width - 3, frame
        # spread in both axes: an oblique look at a 3D body, not a line or a dot
        assert min(bottom - top, right - left) > 0.15 * min(height, width), frame


def test_slider_reads_frame(fly_view):
    viewer, view, layer = fly_view
    slider = view.qt_viewer.dims.slider_widgets[0]
    assert slider.axis_label.text() == "frame"


def test_panel_lists_layers_and_keypoints_with_their_colors(fly_view, qtbot):
    viewer, view, layer = fly_view
    panel = View3DPanel(view)
    viewer.window.add_dock_widget(panel, name="3D layers")
    assert set(panel.checks) == {"fly 3D", "fly 3D bones"}
    text = panel.legend.text()
    for name, color in zip(layer.features["keypoint"].astype(str), layer.face_color, strict=True):
        assert f'color:{_hex(color)}">&#9679;</span>&nbsp;{name}' in text
    assert panel.uncertainty.text() == ""  # the truth has no uncertainty to show
    # visibility from the panel: the points vanish from the canvas
    bones = view.model.layers["fly 3D bones"]
    bones.visible = False
    qtbot.wait(200)
    before = view.qt_viewer.screenshot(flash=False)
    panel.checks["fly 3D"].setChecked(False)
    assert not layer.visible
    qtbot.wait(200)
    after = view.qt_viewer.screenshot(flash=False)
    assert (np.abs(before.astype(int) - after.astype(int)).max(-1) > 40).sum() > 200
    panel.checks["fly 3D"].setChecked(True)
    # point size from the panel
    start = float(np.median(layer.size))
    panel.sizes["fly 3D"].setValue(200)
    assert float(np.median(layer.size)) == pytest.approx(2 * start)


@pytest.mark.slow
def test_uncertainty_sets_point_sizes_with_a_legend(
    make_napari_viewer, data_dir, tmp_path_factory, qtbot
):
    lift = fly_lift(data_dir, tmp_path_factory.mktemp("fly"))
    viewer = make_napari_viewer(show=True)
    view = get_view3d(viewer)
    layer = view.add_poses(lift.lifted, "fly 3D")
    panel = View3DPanel(view)
    viewer.window.add_dock_widget(panel, name="3D layers")
    base = layer.metadata["liftpose_base_size"]
    n_rows = lift.lifted.n_keypoints
    for frame in (10, 150):
        view.model.dims.set_point(0, frame)
        assert layer.data[0, 0] == frame
        radius = lift.lifted.uncertainty[frame, 0]
        expected = np.clip(2 * radius, 0.5 * base, 4 * base)
        np.testing.assert_allclose(layer.size[:n_rows], expected)
    # the sizes differ from joint to joint (the engine's per-joint radii)
    assert np.ptp(layer.size[:n_rows]) > 0.5 * base
    text = panel.uncertainty.text()
    assert text.startswith("fly 3D: point size") and "80%" in text and " mm" in text
    # the size control scales the uncertainty sizes
    panel.sizes["fly 3D"].setValue(50)
    expected = np.clip(2 * radius, 0.25 * base, 2 * base)
    np.testing.assert_allclose(layer.size[:n_rows], expected)


@pytest.mark.slow
def test_ground_truth_is_overlaid_in_grey_on_the_same_frames(
    make_napari_viewer, data_dir, tmp_path_factory, qtbot
):
    lift = fly_lift(data_dir, tmp_path_factory.mktemp("fly"))
    viewer = make_napari_viewer(show=True)
    view = get_view3d(viewer)
    lifted = view.add_poses(lift.lifted, "fly 3D")
    truth = show_truth(viewer, lift.truth)
    assert view.model.layers.index(truth) < view.model.layers.index(lifted)  # drawn under
    assert not truth.editable
    np.testing.assert_allclose(truth.face_color[0], TRUTH_COLOR)
    truth_bones = view.model.layers["ground truth bones"]
    np.testing.assert_allclose(
        truth_bones.edge_color, np.tile(TRUTH_COLOR, (len(truth_bones.data), 1))
    )
    view.model.dims.set_point(0, 123)
    shown = truth.data[truth.shown]
    assert (shown[:, 0] == 123).all()
    np.testing.assert_allclose(shown[:, [3, 2, 1]], lift.truth.coords[123, 0], atol=1e-6)
    # on the canvas: grey pixels where the truth is, no bright colour of its own
    lifted.visible = False
    view.model.layers["fly 3D bones"].visible = False
    qtbot.wait(200)
    truth_only = _drawn(view, qtbot, [truth, truth_bones])
    shot = view.qt_viewer.screenshot(flash=False)[..., :3].astype(int)
    assert truth_only.sum() > 100
    saturation = shot.max(-1) - shot.min(-1)
    assert np.percentile(saturation[truth_only], 95) < 30
    # the legend names it
    panel = View3DPanel(view)
    assert "ground truth" in panel.legend.text()
