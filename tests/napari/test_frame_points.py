"""The 3D view's pose layers hold the current frame only: what they show as the slider moves."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.napari.view3d import get_view3d
from napari_liftpose.napari.writer import write_tracks

SESSION_3D = "sleap_anipose_minimal_session/points3d.h5"
MISSING_FRAME = 7


@pytest.fixture
def truth(data_dir):
    """Real 3D poses (sleap-anipose) with three points of one frame missing."""
    poses = read_poses(data_dir / SESSION_3D)
    poses.coords[MISSING_FRAME, 0, [0, 4, 9]] = np.nan
    return poses


@pytest.fixture
def shown_3d(make_napari_viewer, truth):
    viewer = make_napari_viewer()
    view = get_view3d(viewer)
    layer = view.add_poses(truth, name="truth")
    return viewer, view, layer


def _on_screen(layer) -> tuple[np.ndarray, list[str]]:
    shown = layer.shown
    return layer.data[shown], list(layer.features["keypoint"][shown].astype(str))


@pytest.mark.parametrize("frame", [0, MISSING_FRAME, 60, 119])
def test_each_frame_shows_its_finite_points_and_bones(shown_3d, truth, frame):
    viewer, view, layer = shown_3d
    view.model.dims.set_current_step(0, frame)
    rows, names = _on_screen(layer)
    finite = np.isfinite(truth.coords[frame, 0]).all(-1)
    assert sorted(names) == sorted(np.array(truth.keypoints)[finite])
    assert (rows[:, 0] == frame).all()
    order = [truth.keypoints.index(n) for n in names]
    np.testing.assert_allclose(rows[:, [3, 2, 1]], truth.coords[frame, 0, order])
    assert len(layer._view_data) == finite.sum()  # hidden rows are not drawn
    bones = view.model.layers["truth bones"]
    lengths = np.linalg.norm(bones.data[:, 1, 1:], axis=1)
    start, end = truth.edges[:, 0], truth.edges[:, 1]
    expected = np.linalg.norm(truth.coords[frame, 0, end] - truth.coords[frame, 0, start], axis=1)
    # a bone with a missing end has length zero (draws nothing); the others are the skeleton's
    np.testing.assert_allclose(lengths, np.nan_to_num(expected, nan=0.0), atol=1e-9)
    assert (bones.data[:, 0, 0] == frame).all()


def test_slider_covers_every_frame_and_reset_view_all_poses(shown_3d, truth):
    viewer, view, layer = shown_3d
    assert view.model.dims.range[0].stop == truth.n_frames - 1
    assert len(layer.data) == truth.n_keypoints + 2  # one frame, and two hidden anchors
    extent = layer.extent.data[:, 1:][:, ::-1]  # (x, y, z) min and max
    flat = truth.coords.reshape(-1, 3)
    np.testing.assert_allclose(extent, [np.nanmin(flat, 0), np.nanmax(flat, 0)])


def test_saving_the_3d_layer_writes_every_frame(shown_3d, truth, tmp_path, qtbot):
    viewer, view, layer = shown_3d
    data, attributes, _ = layer.as_layer_data_tuple()
    written = write_tracks(str(tmp_path / "saved3d.h5"), data, attributes)
    back = read_poses(written[0])
    np.testing.assert_array_equal(back.coords, truth.coords)


def test_a_frame_with_no_points_draws_nothing(make_napari_viewer, truth, qtbot):
    truth.coords[8] = np.nan
    viewer = make_napari_viewer(show=True)
    view = get_view3d(viewer)
    view.add_poses(truth, name="truth")
    qtbot.wait(200)
    lit = view.qt_viewer.screenshot(flash=False)[..., :3].max(-1)
    view.model.dims.set_current_step(0, 8)  # every bone is zero-length, every point hidden
    qtbot.wait(200)
    dark = view.qt_viewer.screenshot(flash=False)[..., :3].max(-1)
    assert (lit > 100).sum() > 200
    assert (dark > 30).sum() == 0


def test_deleting_3d_points_does_not_break_the_next_frame(shown_3d, truth):
    viewer, view, layer = shown_3d
    layer.selected_data = {0, 1, 2}
    layer.remove_selected()
    view.model.dims.set_current_step(0, 30)
    rows, names = _on_screen(layer)
    assert sorted(names) == sorted(truth.keypoints)
    order = [truth.keypoints.index(n) for n in names]
    np.testing.assert_allclose(rows[:, [3, 2, 1]], truth.coords[30, 0, order])


def test_frames_stay_frames_when_tracking_starts_late(make_napari_viewer, data_dir, truth, tmp_path):
    """No data before frame 10: napari's slider steps then start at 10; the views must not shift."""
    tracks = read_poses(data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp")
    tracks.coords[:10] = np.nan
    write_poses(tracks, tmp_path / "late.npz")
    viewer = make_napari_viewer()
    viewer.open(tmp_path / "late.npz", plugin="napari-liftpose")
    view = get_view3d(viewer)
    layer = view.add_poses(truth, name="truth")
    viewer.dims.set_point(0, 30)
    rows, _ = _on_screen(layer)
    assert (rows[:, 0] == 30).all() and len(rows) == truth.n_keypoints
    bones2d = viewer.layers["late.npz bones"]
    assert (bones2d.data[:, 0, 0] == 30).all() and len(bones2d._view_data) == len(tracks.edges)
    view.model.dims.set_point(0, 60)
    assert viewer.dims.point[0] == 60
    assert (_on_screen(layer)[0][:, 0] == 60).all()
