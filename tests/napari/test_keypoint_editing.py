"""Keypoint-safe editing on real SLEAP and DeepLabCut files: the chooser decides what a new point
is, a keypoint is never placed twice, delete / re-add / undo round-trip, and the saved files
differ from their source in the edited point only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sleap_io as sio
from napari.utils.key_bindings import KeyBinding

from napari_liftpose.io import read_poses
from napari_liftpose.napari.convert import USER_CONFIDENCE, poses_from_layer_data
from napari_liftpose.napari.keypoints import KEYS, keypoint_chooser
from napari_liftpose.napari.writer import write_tracks
from tests.napari.drag import drag_point

SLEAP = "sleap_anipose_minimal_session/top/minimal_top_proofread.slp"
DLC = "dlc_reaching_2d/reachingDEMO_2D.h5"
FRAME = 10


def _open(make_napari_viewer, path):
    viewer = make_napari_viewer(show=True)
    viewer.open(path, plugin="napari-liftpose")
    layer = next(lay for lay in viewer.layers if "poses" in lay.metadata)
    chooser = keypoint_chooser(viewer, layer)
    viewer.window.add_dock_widget(chooser, name="Keypoints")
    viewer.dims.set_current_step(0, FRAME)
    return viewer, layer, chooser


def _row(layer, frame: int, keypoint: str) -> int:
    frames = np.rint(layer.data[:, 0]).astype(int)
    rows = np.flatnonzero((frames == frame) & (layer.features["keypoint"].astype(str) == keypoint))
    assert len(rows) == 1, f"{keypoint} in frame {frame}: {len(rows)} rows"
    return int(rows[0])


def _layer_poses(layer):
    return poses_from_layer_data(layer.data, layer.features, layer.metadata)


def _delete(layer, row: int) -> None:
    layer.selected_data = {row}
    layer.remove_selected()  # what the Delete key does


def _replace_nose(layer, chooser, nose: str, last_selected: str, where) -> None:
    """The issue's steps: delete the nose, select another point, re-place the nose."""
    _delete(layer, _row(layer, FRAME, nose))
    layer.selected_data = {_row(layer, FRAME, last_selected)}  # napari copies its features
    layer.mode = "add"
    chooser[0].value = nose  # the "new point is" dropdown
    layer.add(where)  # what napari's add mode calls on a click


@pytest.mark.parametrize(
    "name, nose, other", [(SLEAP, "Nose", "TailTip"), (DLC, "nose", "joystick")]
)
def test_chooser_not_the_selection_decides_what_a_new_point_is(
    make_napari_viewer, data_dir, notifications, name, nose, other
):
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / name)
    source = read_poses(data_dir / name)
    n_rows = len(layer.data)
    where = np.array([FRAME, 40.0, 60.0])
    _replace_nose(layer, chooser, nose, other, where)
    assert len(layer.data) == n_rows
    new = _row(layer, FRAME, nose)  # exactly one nose, and one of the other keypoint
    np.testing.assert_allclose(layer.data[new], where)
    _row(layer, FRAME, other)
    assert layer.features["edited"][new] and layer.features["confidence"][new] == USER_CONFIDENCE
    k = source.keypoints.index(nose)
    np.testing.assert_allclose(
        layer.face_color[new, :3], layer.face_color[_row(layer, 0, nose), :3]
    )
    # placing the other keypoint again is refused, with a notification; nothing changes
    before = layer.data.copy()
    chooser[0].value = other
    layer.add([FRAME, 5.0, 5.0])
    np.testing.assert_array_equal(layer.data, before)
    assert any(other in message and "already placed" in message for message in notifications)
    assert layer.selected_data == {_row(layer, FRAME, other)}
    # the layer's poses: only the nose of that frame moved, marked edited, confidence 1
    poses = _layer_poses(layer)
    changed = ~((poses.coords == source.coords) | np.isnan(source.coords)).all(-1)
    assert list(zip(*np.nonzero(changed), strict=True)) == [(FRAME, 0, k)]
    np.testing.assert_allclose(poses.coords[FRAME, 0, k], where[[2, 1]])
    assert np.flatnonzero(poses.metadata["edited"].ravel()).tolist() == [
        np.ravel_multi_index((FRAME, 0, k), poses.coords.shape[:3])
    ]
    assert poses.confidence[FRAME, 0, k] == USER_CONFIDENCE
    others = np.ones(source.confidence.shape, bool)
    others[FRAME, 0, k] = False
    np.testing.assert_array_equal(poses.confidence[others], source.confidence[others])


def test_sleap_file_saved_after_delete_and_re_add_differs_in_the_nose_only(
    make_napari_viewer, data_dir, tmp_path
):
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / SLEAP)
    where = np.array([FRAME, 123.25, 234.5])
    _replace_nose(layer, chooser, "Nose", "TailTip", where)
    data, attributes, _ = layer.as_layer_data_tuple()
    written = write_tracks(str(tmp_path / "edited.slp"), data, attributes)
    source, saved = sio.load_slp(str(data_dir / SLEAP)), sio.load_slp(written[0])
    before = source.numpy(return_confidence=False)
    after = saved.numpy(return_confidence=False)
    assert before.shape == after.shape  # nothing lost: every frame, track and node is there
    nose = source.skeletons[-1].node_names.index("Nose")
    expected = before.copy()
    expected[FRAME, 0, nose] = where[[2, 1]]
    np.testing.assert_array_equal(after, expected)  # point by point, bit for bit
    # the edited frame holds a user instance (SLEAP's mark of a human label), the rest as before
    frame = next(f for f in saved.labeled_frames if f.frame_idx == FRAME)
    assert any(type(inst) is sio.Instance for inst in frame.instances)
    untouched = [f.frame_idx for f in saved.labeled_frames if f.frame_idx != FRAME]
    assert len(untouched) == len(source.labeled_frames) - 1
    back = read_poses(written[0])
    np.testing.assert_array_equal(
        back.confidence[FRAME + 1 :], read_poses(data_dir / SLEAP).confidence[FRAME + 1 :]
    )


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_dlc_file_saved_after_delete_and_re_add_differs_in_the_nose_only(
    make_napari_viewer, data_dir, tmp_path, suffix
):
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / DLC)
    where = np.array([FRAME, 77.5, 88.25])
    _replace_nose(layer, chooser, "nose", "joystick", where)
    data, attributes, _ = layer.as_layer_data_tuple()
    written = write_tracks(str(tmp_path / f"edited{suffix}"), data, attributes)
    source = pd.read_hdf(data_dir / DLC)
    if suffix == ".h5":
        saved = pd.read_hdf(written[0])
    else:
        saved = pd.read_csv(written[0], header=[0, 1, 2], index_col=0)
        saved.index = source.index
    assert saved.shape == source.shape and list(saved.columns) == list(source.columns)
    expected = source.copy()
    scorer = source.columns.get_level_values(0)[0]
    expected.loc[expected.index[FRAME], (scorer, "nose", "x")] = where[2]
    expected.loc[expected.index[FRAME], (scorer, "nose", "y")] = where[1]
    expected.loc[expected.index[FRAME], (scorer, "nose", "likelihood")] = USER_CONFIDENCE
    differs = saved.to_numpy() != expected.to_numpy()
    assert not differs.any(), f"{differs.sum()} values differ, first at {np.argwhere(differs)[:3]}"


def test_undo_and_redo_of_add_move_and_delete(make_napari_viewer, data_dir):
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / DLC)
    editor = chooser.editor
    original = _layer_poses(layer)
    original_rows = len(layer.data)
    nose = _row(layer, FRAME, "nose")
    original_nose = layer.data[nose].astype(float)
    _delete(layer, nose)
    assert len(layer.data) == original_rows - 1
    chooser[0].value = "nose"
    # inside the layer's extent: removing an extreme point trips the bones (see the report)
    layer.add(original_nose + [0, 2.0, 3.0])
    drag_point(layer, _row(layer, FRAME, "joystick"), [0, 3.0, -2.0])
    edited = _layer_poses(layer)
    assert edited.metadata["edited"].sum() == 2  # the nose and the joystick
    joystick = original.keypoints.index("joystick")
    assert edited.confidence[FRAME, 0, joystick] == USER_CONFIDENCE
    for _ in range(3):  # move, add, delete
        assert editor.undo()
    assert not editor.undo()
    restored = _layer_poses(layer)
    np.testing.assert_array_equal(restored.coords, original.coords)
    np.testing.assert_array_equal(restored.confidence, original.confidence)
    assert not restored.metadata["edited"].any()
    assert len(layer.data) == original_rows
    for _ in range(3):
        assert editor.redo()
    redone = _layer_poses(layer)
    np.testing.assert_array_equal(redone.coords, edited.coords)
    np.testing.assert_array_equal(redone.confidence, edited.confidence)


def test_keys_on_the_layer_walk_the_keypoints(make_napari_viewer, data_dir):
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / SLEAP)
    editor = chooser.editor
    keypoints = editor.poses.keypoints
    assert set(KEYS) <= {str(k) for k in map(str, layer.keymap)} or all(
        KeyBinding.from_str(key) in layer.keymap for key in KEYS
    )
    layer.keymap[KeyBinding.from_str("Down")](layer)
    assert editor.keypoint == keypoints[1] and chooser[0].value == keypoints[1]
    layer.keymap[KeyBinding.from_str("Up")](layer)
    layer.keymap[KeyBinding.from_str("Up")](layer)
    assert chooser[0].value == keypoints[-1]


def test_placing_advances_to_the_next_missing_keypoint_and_says_so(make_napari_viewer, data_dir):
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / SLEAP)
    for name in ("Ear_R", "Head"):
        _delete(layer, _row(layer, FRAME, name))
    chooser[0].value = "Ear_R"
    assert "Ear_R is missing" in chooser[-1].value and "2 of 15" in chooser[-1].value
    layer.add([FRAME, 10.0, 10.0])
    assert chooser[0].value == "Head"  # the next keypoint this frame lacks
    assert "1 of 15" in chooser[-1].value


def test_the_3d_view_refuses_new_points_instead_of_dropping_them(
    make_napari_viewer, data_dir, notifications
):
    from napari_liftpose.napari.view3d import get_view3d

    viewer = make_napari_viewer()
    truth = read_poses(data_dir / "sleap_anipose_minimal_session/points3d.h5")
    layer = get_view3d(viewer).add_poses(truth, name="truth")
    before = layer.data.copy()
    layer.mode = "add"
    layer.add([FRAME, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(layer.data, before)
    assert any("not added in the 3D view" in message for message in notifications)


def test_removing_a_point_outside_the_others_keeps_the_bones_right(make_napari_viewer, data_dir):
    """Removing the point that sets the layer's extent moves the slider before the data event."""
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / DLC)
    last = int(layer.data[:, 0].max())
    chooser[0].value = "nose"
    layer.add(np.array([last + 5.0, 100.0, 100.0]))  # a new last frame: the slider grows
    viewer.dims.set_current_step(0, last + 5)
    assert chooser.editor.undo()  # the slider shrinks back: no IndexError from the skeleton
    bones = next(lay for lay in viewer.layers if lay._type_string == "vectors")
    assert np.isfinite(bones.data).all()
    assert len(layer.data) == np.isfinite(_layer_poses(layer).coords).all(-1).sum()


def test_saving_a_layer_with_a_keypoint_placed_twice_writes_nothing_and_says_why(
    make_napari_viewer, data_dir, tmp_path, notifications
):
    viewer, layer, chooser = _open(make_napari_viewer, data_dir / DLC)
    chooser.editor.detach()  # a script adding points behind the chooser's back
    row = _row(layer, FRAME, "nose")
    layer.selected_data = {row}
    layer.add(layer.data[row] + [0, 1.0, 1.0])  # napari copies the selected point's features
    target = tmp_path / "out.h5"
    assert write_tracks(str(target), layer.data, layer.as_layer_data_tuple()[1]) == []
    assert not target.exists()
    assert any("nothing written" in m and "nose" in m for m in notifications), notifications
