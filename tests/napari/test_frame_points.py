"""The 3D view's pose layers hold the current frame only: what they show as the slider moves."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.napari.view3d import get_view3d
from napari_liftpose.napari.writer import write_tracks
from tests.napari.drag import drag_point

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


def test_frames_stay_frames_when_tracking_starts_late(
    make_napari_viewer, data_dir, truth, tmp_path
):
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


def test_points_moved_or_deleted_in_3d_are_kept(shown_3d, truth):
    viewer, view, layer = shown_3d
    view.model.dims.set_point(0, 20)
    names = list(layer.features["keypoint"].astype(str))
    nose, tail = names.index(truth.keypoints[0]), names.index(truth.keypoints[-1])
    drag_point(layer, nose, [0, 5.0, -4.0, 3.0])
    moved = truth.coords[20, 0, 0].copy()
    np.testing.assert_allclose(moved, layer.data[nose, [3, 2, 1]])
    bones = view.model.layers["truth bones"]
    ends = np.concatenate([bones.data[:, 0, 1:], bones.data[:, 0, 1:] + bones.data[:, 1, 1:]])
    assert np.min(np.linalg.norm(ends - layer.data[nose, 1:], axis=1)) < 1e-9  # bones follow
    layer.selected_data = {tail}
    layer.remove_selected()
    assert np.isnan(truth.coords[20, 0, -1]).all() and np.isfinite(truth.coords[21]).all()
    view.model.dims.set_point(0, 21)
    view.model.dims.set_point(0, 20)  # away and back: the edits stay
    rows, shown_names = _on_screen(layer)
    assert truth.keypoints[-1] not in shown_names
    np.testing.assert_allclose(rows[shown_names.index(truth.keypoints[0]), [3, 2, 1]], moved)


def test_lifting_while_the_slider_is_past_the_poses(make_napari_viewer, truth):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((truth.n_frames + 80, 8, 8), np.uint8), name="longer video")
    viewer.dims.set_point(0, truth.n_frames + 50)
    view = get_view3d(viewer)
    layer = view.add_poses(truth, name="truth")
    assert view.model.dims.range[0].stop == truth.n_frames - 1
    assert layer.extent.data[1, 0] == truth.n_frames - 1
    bones = view.model.layers["truth bones"]
    flat = truth.coords.reshape(-1, 3)
    low, high = np.nanmin(flat, 0)[::-1], np.nanmax(flat, 0)[::-1]
    starts = bones.data[:, 0, 1:]
    assert ((starts >= low - 1e-9) & (starts <= high + 1e-9)).all()  # parked inside the data


def test_widening_keeps_relifted_poses_inside_the_extent(shown_3d, truth):
    from napari_liftpose.napari.frame_points import widen_to

    viewer, view, layer = shown_3d
    far = truth.coords[5].copy() + 1000.0  # (individuals, keypoints, x y z)
    widen_to(layer, far)
    assert (layer.extent.data[1, 1:][::-1] >= far.reshape(-1, 3).max(0)).all()


def test_two_animals_each_with_their_points_and_bones(make_napari_viewer, truth):
    from napari_liftpose.napari.skeleton import bone_colors

    coords = np.concatenate([truth.coords, truth.coords + [50.0, 0.0, 0.0]], axis=1)
    coords[MISSING_FRAME + 1, 1, 2] = np.nan  # one point of the second animal missing
    pair = truth.copy(
        coords=coords,
        confidence=np.concatenate([truth.confidence] * 2, axis=1),
        individuals=["mouse_a", "mouse_b"],
    )
    viewer = make_napari_viewer()
    view = get_view3d(viewer)
    layer = view.add_poses(pair, name="pair")
    bones = view.model.layers["pair bones"]
    np.testing.assert_allclose(bones.edge_color, bone_colors(pair), atol=1e-6)  # by animal
    view.model.dims.set_point(0, MISSING_FRAME + 1)
    shown = layer.shown
    animals = layer.features["individual"].astype(str)[shown]
    assert list(animals).count("mouse_a") == truth.n_keypoints
    assert list(animals).count("mouse_b") == truth.n_keypoints - 1
    lengths = np.linalg.norm(bones.data[:, 1, 1:], axis=1).reshape(2, -1)
    touching = (pair.edges == 2).any(axis=1)
    assert (lengths[1, touching] == 0).all() and (lengths[1, ~touching] > 0).all()
    assert (lengths[0] > 0).all()
