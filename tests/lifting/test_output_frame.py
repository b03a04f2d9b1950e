"""The axes of lifted 3D: world (the calibration's / library's) or camera, and where it is recorded.

These tests build real lifters from untrained networks (no training, so they are fast): the
relation between the two output frames is a rotation whatever the weights are. The accuracy of
world output after training is pinned by tests/cli/test_lift_frame.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.io.calibration import rodrigues
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.lifting import load_lifter
from napari_liftpose.lifting.cameras import KnownCamera, RandomCameras, camera_from_angles
from napari_liftpose.lifting.checkpoint import save_checkpoint
from napari_liftpose.lifting.inference import Lifter
from napari_liftpose.lifting.models import build_model, default_architecture
from napari_liftpose.lifting.normalization import Normalization
from napari_liftpose.poses import Poses

KEYPOINTS = ["root", "a", "b", "c", "d"]
CAMERA = camera_from_angles(azimuth=60, elevation=25, distance=20, focal=1000, name="side")


def _parts(
    camera: dict, frame: str | None = "camera"
) -> tuple[torch.nn.Module, dict, Normalization]:
    arch = {**default_architecture("mlp"), "width": 32, "blocks": 1}
    torch.manual_seed(0)
    model = build_model(arch, len(KEYPOINTS), 3 * (len(KEYPOINTS) - 1))
    rng = np.random.default_rng(0)
    k = len(KEYPOINTS)
    norm = Normalization(
        rng.normal(size=(k, 2)), rng.uniform(0.5, 2, (k, 2)),
        rng.normal(size=(k - 1, 3)), rng.uniform(0.5, 2, (k - 1, 3)),
    )  # fmt: skip
    meta = {"architecture": arch, "keypoints": KEYPOINTS, "roots": ["root"], "camera": camera}
    if frame is not None:
        meta["frame"] = frame
    return model, meta, norm


def _lifter(camera: dict, frame: str | None = "camera") -> Lifter:
    model, meta, norm = _parts(camera, frame)
    return Lifter(model, meta, norm, torch.device("cpu"))


def _tracks(n_frames: int = 7) -> Poses:
    rng = np.random.default_rng(1)
    pts3d = rng.normal(scale=1.0, size=(n_frames, 2, len(KEYPOINTS), 3))
    return Poses(CAMERA.project(pts3d), KEYPOINTS, units="px")


KNOWN = KnownCamera(CAMERA).to_dict()
RANDOM = RandomCameras().to_dict()
PAIRS = {"kind": "pairs"}


def test_known_camera_lifts_into_world_axes_by_default_and_camera_axes_on_request():
    lifter = _lifter(KNOWN)
    assert lifter.frame == "world" and lifter.frames == ("world", "camera")
    tracks = _tracks()
    world = lifter.lift(tracks)
    camera = lifter.lift(tracks, frame="camera")
    assert world.frame == "world" and camera.frame == "camera"
    assert world.metadata["frame"] == "world"
    rot = rodrigues(CAMERA.rotation)
    # camera axes = R @ world axes, for root-relative offsets (no translation)
    assert np.allclose(camera.coords, np.einsum("ij,...j->...i", rot, world.coords))
    assert not np.allclose(camera.coords, world.coords)
    assert np.allclose(world.coords[..., 0, :], 0)  # still root-relative


def test_the_live_path_lifts_in_the_same_axes_as_lift():
    lifter = _lifter(KNOWN)
    tracks = _tracks()
    assert np.allclose(lifter.lift_arrays(tracks.coords), lifter.lift(tracks).coords)
    assert np.allclose(
        lifter.lift_arrays(tracks.coords, frame="camera"),
        lifter.lift(tracks, frame="camera").coords,
    )


def test_random_camera_lifters_output_camera_axes_and_refuse_world():
    lifter = _lifter(RANDOM)
    assert lifter.frame == "camera" and lifter.frames == ("camera",)
    assert lifter.lift(_tracks()).frame == "camera"
    with pytest.raises(ValueError, match="frame: expected one of \\['camera'\\].*random"):
        lifter.lift(_tracks(), frame="world")


def test_upright_lifters_put_truth_in_the_filming_camera_upright_axes():
    lifter = _lifter(RANDOM, frame="upright")
    assert lifter.frame == "upright" and lifter.frames == ("upright",)
    assert lifter.lift(_tracks()).frame == "upright"
    with pytest.raises(ValueError, match="random virtual cameras"):
        lifter.lift(_tracks(), frame="world")
    truth = Poses(np.random.default_rng(2).normal(size=(4, 1, 5, 3)), KEYPOINTS, units="mm")
    upright = lifter.truth_in_output_frame(truth, CAMERA)
    assert upright.frame == "upright"
    np.testing.assert_allclose(upright.coords[..., 2], truth.coords[..., 2])  # z stays up
    horizontal = lambda p: np.linalg.norm(p[..., :2], axis=-1)  # noqa: E731
    np.testing.assert_allclose(horizontal(upright.coords), horizontal(truth.coords))


@pytest.mark.parametrize("elevation", [-40.0, 0.0, 25.0, 70.0])
@pytest.mark.parametrize("roll", [0.0, 15.0])
def test_upright_axes_are_the_camera_heading_whatever_its_elevation_and_roll(elevation, roll):
    from napari_liftpose.lifting.cameras import look_at_rotation, upright_rotation

    tilted = look_at_rotation(35.0, elevation, roll)[0]
    level = look_at_rotation(35.0, 0.0)[0]  # rows: right, down, forward
    rot = upright_rotation(tilted)
    np.testing.assert_allclose(rot, np.stack([level[0], level[2], -level[1]]), atol=1e-12)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)


def test_a_camera_looking_straight_down_still_has_a_heading():
    from napari_liftpose.lifting.cameras import upright_rotation

    down = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])  # forward -z: looks down
    rot = upright_rotation(down)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rot[2], [0, 0, 1])


def test_real_pair_lifters_output_the_library_axes_and_refuse_camera():
    lifter = _lifter(PAIRS, frame="world")
    assert lifter.frame == "world" and lifter.frames == ("world",)
    assert lifter.lift(_tracks()).frame == "world"
    with pytest.raises(ValueError, match="knows no camera"):
        lifter.lift(_tracks(), frame="camera")


def test_truth_is_put_in_the_output_axes():
    truth = Poses(np.random.default_rng(2).normal(size=(4, 1, 5, 3)), KEYPOINTS, units="mm")
    known = _lifter(KNOWN)
    assert np.array_equal(known.truth_in_output_frame(truth).coords, truth.coords)
    in_camera = known.truth_in_output_frame(truth, frame="camera")
    assert np.allclose(in_camera.coords, CAMERA.to_camera_frame(truth.coords))
    assert in_camera.frame == "camera"
    random = _lifter(RANDOM)
    with pytest.raises(ValueError, match="random virtual cameras"):
        random.truth_in_output_frame(truth)
    assert np.allclose(
        random.truth_in_output_frame(truth, CAMERA).coords, CAMERA.to_camera_frame(truth.coords)
    )
    pairs = _lifter(PAIRS, frame="world")
    assert np.array_equal(pairs.truth_in_output_frame(truth).coords, truth.coords)


def test_a_checkpoint_without_a_frame_field_loads_and_outputs_world_axes(tmp_path):
    """Checkpoints written before the output frame existed hold the camera: world by default."""
    model, meta, norm = _parts(KNOWN, frame=None)  # the oldest files have no "frame" either
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()} | norm.to_tensors()
    path = save_checkpoint(tmp_path / "old.safetensors", tensors, meta)
    lifter = load_lifter(path, device="cpu")
    assert lifter.network_frame == "camera" and lifter.frame == "world"
    fresh = Lifter(model, {**meta, "frame": "camera"}, norm, torch.device("cpu"))
    tracks = _tracks()
    assert np.allclose(lifter.lift(tracks).coords, fresh.lift(tracks).coords, atol=1e-5)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
@pytest.mark.parametrize("frame", ["world", "camera"])
def test_the_frame_round_trips_through_files(tmp_path, suffix, frame):
    lifted = _lifter(KNOWN).lift(_tracks(), frame=frame)
    back = read_poses(write_poses(lifted, tmp_path / f"lifted{suffix}"))
    assert back.frame == frame
    assert np.allclose(back.coords, lifted.coords, equal_nan=True)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_files_without_a_frame_read_as_unknown(tmp_path, suffix):
    poses = Poses(np.zeros((2, 1, 5, 3)), KEYPOINTS, units="mm")
    back = read_poses(write_poses(poses, tmp_path / f"plain{suffix}"))
    assert back.frame is None


def test_a_file_with_an_unknown_frame_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, points=np.zeros((2, 1, 5, 3)), keypoints=np.array(KEYPOINTS), frame="sideways")
    with pytest.raises(PoseFileError, match="frame: expected one of"):
        read_poses(path)


def test_poses_refuse_an_unknown_frame():
    with pytest.raises(ValueError, match="frame"):
        Poses(np.zeros((1, 1, 2, 3)), ["a", "b"], frame="up")


@pytest.mark.parametrize("input_norm", ["root", "root_scale"])
def test_a_root_never_seen_is_estimated_from_the_mean_pose(input_norm):
    """A pose that is the model's mean 2D pose, moved (and scaled), gets its root back exactly."""
    model, meta, norm = _parts(KNOWN)
    lifter = Lifter(model, {**meta, "input_norm": input_norm}, norm, torch.device("cpu"))
    scale = 3.0 if input_norm == "root_scale" else 1.0
    shift = np.array([412.0, -37.5])
    pose = scale * norm.input_mean + shift  # root (keypoint 0) at scale * mean[0] + shift
    coords = np.stack([pose, pose])[:, None].copy()  # (2 frames, 1 individual, k, 2)
    coords[:, 0, 0] = np.nan  # the root is never seen
    coords[1, 0, 3] = np.nan  # and one more keypoint in frame 1
    filled, estimated = lifter._with_root(coords)
    assert estimated.all()
    assert np.allclose(filled[:, 0, 0], pose[0])
    lifted = lifter.lift_arrays(coords)
    assert np.isfinite(lifted[1, 0, [0, 1, 2, 4]]).all()


def test_a_lost_root_follows_the_nearest_frame_that_has_it():
    lifter = _lifter(RANDOM)
    rng = np.random.default_rng(3)
    first = rng.normal(scale=50, size=(len(KEYPOINTS), 2)) + 300
    moved = first + [7.0, -4.0]  # the animal moved; its root with it
    far = first + [100.0, 100.0]
    coords = np.stack([far, first, moved, moved])[:, None].copy()  # frames 0..3
    coords[2:, 0, 0] = np.nan  # frames 2 and 3 lost the root: frame 1 is the nearest with one
    coords[3, 0, 2] = np.nan
    filled, estimated = lifter._with_root(coords)
    assert estimated[:, 0].tolist() == [False, False, True, True]
    assert np.allclose(filled[2:, 0, 0], moved[0])
    assert np.isfinite(lifter.lift_arrays(coords)[2:, 0, [0, 1, 3, 4]]).all()


def test_a_pose_with_fewer_than_two_visible_keypoints_is_not_lifted():
    lifter = _lifter(KNOWN)
    coords = np.full((1, 1, len(KEYPOINTS), 2), np.nan)
    coords[0, 0, 2] = [10.0, 20.0]
    assert np.isnan(lifter.lift_arrays(coords)).all()


@pytest.mark.parametrize("kind", ["mlp", "temporal"])
def test_a_pose_showing_only_its_root_is_not_lifted(kind):
    model, meta, norm = _parts(KNOWN)
    if kind == "temporal":
        arch = {**default_architecture("temporal"), "channels": 16}
        model = build_model(arch, len(KEYPOINTS), 3 * (len(KEYPOINTS) - 1))
        meta = {**meta, "architecture": arch}
    lifter = Lifter(model, meta, norm, torch.device("cpu"))
    coords = _tracks(3).coords
    coords[1, 0, 1:] = np.nan  # frame 1, individual 0: only the root is left
    lifted = lifter.lift(Poses(coords, KEYPOINTS, units="px"))
    assert np.isnan(lifted.coords[1, 0]).all()
    assert np.isfinite(lifted.coords[0]).all() and np.isfinite(lifted.coords[1, 1]).all()
