"""Opening pose files in a real napari viewer: what a user sees."""

from __future__ import annotations

import numpy as np
import pytest
import sleap_io as sio

from napari_liftpose.io import read_poses, write_poses

TWO_D_FILES = [
    "sleap_anipose_minimal_session/top/minimal_top_proofread.slp",
    "sleap_anipose_minimal_session/back/minimal_back_proofread.analysis.h5",
    "sleap_anipose_minimal_session/side/minimal_side_proofread.slp",
    "sleap_small/minimal_instance.pkg.slp",
    "sleap_small/small_robot_minimal.slp",
    "dlc_reaching_2d/reachingDEMO_2D.h5",
    "dlc_openfield_csv/openfield_dlc_inference_example.csv",
]


def _points_layer(viewer):
    return next(layer for layer in viewer.layers if layer._type_string == "points")


@pytest.mark.parametrize("name", TWO_D_FILES)
def test_open_shows_every_finite_point(make_napari_viewer, data_dir, name):
    viewer = make_napari_viewer()
    viewer.open(data_dir / name, plugin="napari-liftpose")
    layer = _points_layer(viewer)
    poses = read_poses(data_dir / name)
    finite = poses.finite_mask()
    assert len(layer.data) == finite.sum()
    # per frame and individual, read back from the layer itself
    t = layer.data[:, 0].astype(int)
    ind = layer.features["individual"].cat.codes.to_numpy()
    counts = np.zeros(finite.shape[:2], int)
    np.add.at(counts, (t, ind), 1)
    np.testing.assert_array_equal(counts, finite.sum(axis=2))
    assert list(layer.features["keypoint"].cat.categories) == poses.keypoints
    assert list(layer.features["individual"].cat.categories) == poses.individuals
    assert layer.data.shape[1] == 3  # (t, y, x)


def test_layer_rows_are_the_file_points(make_napari_viewer, data_dir):
    name = "sleap_anipose_minimal_session/top/minimal_top_proofread.slp"
    labels = sio.load_slp(str(data_dir / name))
    viewer = make_napari_viewer()
    viewer.open(data_dir / name, plugin="napari-liftpose")
    layer = _points_layer(viewer)
    frame = labels.labeled_frames[7]
    expected = frame.instances[0].numpy()
    rows = layer.data[layer.data[:, 0] == frame.frame_idx]
    keypoints = layer.features["keypoint"][layer.data[:, 0] == frame.frame_idx].astype(str)
    order = [labels.skeletons[-1].node_names.index(k) for k in keypoints]
    np.testing.assert_allclose(rows[:, [2, 1]], expected[order], atol=1e-4)


def test_skeleton_follows_the_time_slider(make_napari_viewer, data_dir):
    name = "dlc_reaching_2d/reachingDEMO_2D.h5"
    viewer = make_napari_viewer()
    viewer.open(data_dir / name, plugin="napari-liftpose")
    bones = next(layer for layer in viewer.layers if layer._type_string == "vectors")
    poses = read_poses(data_dir / name)
    assert viewer.layers.index(bones) < viewer.layers.index(_points_layer(viewer))
    for frame in (0, 400, 799):
        viewer.dims.set_current_step(0, frame)
        assert bones.data.shape == (9, 2, 3)  # the 9 bones of config.yaml, all finite here
        assert len(bones._view_data) == 9  # and all on screen
        assert (bones.data[:, 0, 0] == frame).all()
        start = poses.coords[frame, 0, poses.edges[:, 0]]  # (x, y)
        end = poses.coords[frame, 0, poses.edges[:, 1]]
        np.testing.assert_allclose(bones.data[:, 0, 2], start[:, 0])
        np.testing.assert_allclose(bones.data[:, 0, 1] + bones.data[:, 1, 1], end[:, 1])


def test_skeleton_follows_a_dragged_point(make_napari_viewer, data_dir):
    viewer = make_napari_viewer()
    viewer.open(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5", plugin="napari-liftpose")
    points = _points_layer(viewer)
    bones = viewer.layers[f"{points.name} bones"]
    viewer.dims.set_current_step(0, 3)
    row = np.nonzero((points.data[:, 0] == 3) & (points.features["keypoint"] == "R_shoulder"))[0]
    data = points.data.copy()
    data[row, 1:] += [10.0, -20.0]
    points.data = data
    first = bones.data[0]  # R_shoulder -> Right_elbow
    np.testing.assert_allclose(first[0, 1:], data[row[0], 1:])


def test_removing_points_removes_bones(make_napari_viewer, data_dir, qtbot):
    viewer = make_napari_viewer()
    viewer.open(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5", plugin="napari-liftpose")
    viewer.layers.remove(_points_layer(viewer))
    qtbot.waitUntil(lambda: len(viewer.layers) == 0, timeout=5_000)  # the bones go a moment later


def test_colored_by_keypoint_or_individual(make_napari_viewer, data_dir):
    viewer = make_napari_viewer()
    viewer.open(data_dir / "sleap_small/minimal_instance.pkg.slp", plugin="napari-liftpose")
    layer = _points_layer(viewer)
    by_individual = layer.features["individual"].cat.codes.to_numpy()
    colors = layer.face_color
    assert len({tuple(c) for c in colors[by_individual == 0]}) == 1
    assert not np.allclose(colors[by_individual == 0][0], colors[by_individual == 1][0])


def test_points_are_really_drawn(make_napari_viewer, data_dir, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open(
        data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp",
        plugin="napari-liftpose",
    )
    viewer.layers[0].visible = False  # bones off: only points remain
    viewer.dims.set_current_step(0, 5)
    qtbot.wait(100)
    image = viewer.screenshot(canvas_only=True, flash=False)
    layer = _points_layer(viewer)
    # every keypoint has its own hue: count distinct saturated colors on the canvas
    rgb = image[..., :3].reshape(-1, 3).astype(int)
    saturated = rgb[(rgb.max(1) - rgb.min(1)) > 100]
    assert len(saturated) > 50
    layer.visible = False
    qtbot.wait(50)
    blank = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    assert ((blank.max(-1).astype(int) - blank.min(-1)) > 100).sum() == 0


def test_nan_points_are_hidden_but_kept(make_napari_viewer, data_dir):
    name = "sleap_anipose_minimal_session/back/minimal_back_proofread.slp"
    viewer = make_napari_viewer()
    viewer.open(data_dir / name, plugin="napari-liftpose")
    layer = _points_layer(viewer)
    kept = layer.metadata["poses"]
    assert np.isnan(kept.coords).any()
    assert len(layer.data) == kept.finite_mask().sum() < kept.coords[..., 0].size


def test_bad_file_gives_a_notification_not_a_traceback(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    path = tmp_path / "notdlc.csv"
    path.write_text("a,b\n1,2\n")
    viewer = make_napari_viewer()
    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(n))
    layers = viewer.open(path, plugin="napari-liftpose")
    assert layers == []
    assert len(viewer.layers) == 0
    assert any(str(path) in n.message and "DeepLabCut" in n.message for n in seen)


def test_video_beside_dlc_file_opens_lazily(make_napari_viewer, data_dir, tmp_path):
    poses = read_poses(data_dir / "dlc_openfield_csv/openfield_dlc_inference_example.csv")
    short = poses.copy(coords=poses.coords[:20], confidence=poses.confidence[:20], metadata={})
    write_poses(short, tmp_path / "mouseDLC_resnet50_openfield.h5")
    frames = np.zeros((20, 48, 64, 3), np.uint8)
    frames[:, :, :, 0] = 200  # a color video (sleap-io tells color from gray on frame 0)
    frames[:, :, :, 1] = np.arange(20)[:, None, None] * 10
    sio.save_video(frames, str(tmp_path / "mouse.mp4"))
    viewer = make_napari_viewer()
    viewer.open(tmp_path / "mouseDLC_resnet50_openfield.h5", plugin="napari-liftpose")
    image = viewer.layers["mouseDLC_resnet50_openfield.h5 video"]
    assert image.data.shape[:3] == (20, 48, 64)
    assert type(image.data).__name__ == "LazyVideo"
    viewer.dims.set_current_step(0, 12)
    assert image.rgb
    assert abs(int(np.asarray(image._slice.image.view)[..., 1].mean()) - 120) < 8
    assert len(image.data._cache) <= 3  # only what was shown got decoded


def test_adding_a_point_after_a_selection_keeps_bones_working(make_napari_viewer, data_dir):
    viewer = make_napari_viewer()
    viewer.open(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5", plugin="napari-liftpose")
    points = _points_layer(viewer)
    bones = viewer.layers[f"{points.name} bones"]
    points.selected_data = {4}
    points.selected_data = set()
    points.add([2, 50, 60])  # napari may turn the categorical features into strings here
    viewer.dims.set_current_step(0, 3)
    assert len(bones.data) == 9 and (bones.data[:, 0, 0] == 3).all()


def test_bones_keep_their_shader_program_while_the_slider_moves(
    make_napari_viewer, data_dir, monkeypatch
):
    """vispy rebuilds a mesh's shader at every data update (vispy#2568) unless the plugin steps in."""
    from vispy.visuals.shaders.program import ModularProgram

    viewer = make_napari_viewer(show=True)
    viewer.open(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5", plugin="napari-liftpose")
    points = _points_layer(viewer)
    points.visible = False  # only the bones are drawn
    viewer.screenshot(canvas_only=True, flash=False)  # first draw: the one build
    builds = []
    build = ModularProgram._build
    monkeypatch.setattr(ModularProgram, "_build", lambda self: (builds.append(1), build(self))[1])
    shots = []
    for frame in (100, 300, 500):
        viewer.dims.set_current_step(0, frame)
        shots.append(viewer.screenshot(canvas_only=True, flash=False)[..., :3].max(-1) > 100)
    assert builds == []
    assert all(shot.sum() > 50 for shot in shots)  # bones drawn at each frame...
    assert (shots[0] != shots[2]).sum() > 50  # ...where that frame has them


@pytest.mark.parametrize("plugin", ["napari-liftpose", None])
def test_file_open_of_a_crafted_pickle_runs_nothing(make_napari_viewer, data_dir, tmp_path, plugin):
    """File > Open, with our plugin named or chosen by napari: a refusal, and no code run."""
    import pickle

    import h5py
    import pandas as pd
    from napari.utils.notifications import notification_manager

    marker = tmp_path / "PWNED"
    crafted = tmp_path / "crafted.h5"
    pd.read_hdf(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5").iloc[:20].to_hdf(
        crafted, key="df_with_missing", format="table", mode="w"
    )
    payload = pickle.dumps(_Touch(marker), 0)
    with h5py.File(crafted, "a") as f:
        f["df_with_missing"].attrs["info"] = np.bytes_(payload)
    viewer = make_napari_viewer()
    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(n))
    try:
        viewer.open(crafted, plugin=plugin)
    except Exception as err:  # napari raises when no reader takes the file
        seen.append(err)
    assert not marker.exists()
    assert len(viewer.layers) == 0
    messages = [str(getattr(n, "message", n)) for n in seen]
    if plugin is None:  # napari asks which reader to use (a dialog in the GUI); nothing is read
        assert any("Multiple plugins" in m or "pickled" in m for m in messages), messages
    else:
        assert any(str(crafted) in m and "pickled" in m for m in messages), messages


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (self.marker,))
