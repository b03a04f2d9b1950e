import numpy as np
import pytest

from napari_liftpose.io.calibration import rodrigues
from napari_liftpose.lifting.cameras import (
    RandomCameras,
    camera_from_angles,
    look_at_rotation,
    rotation_to_rodrigues,
)


def test_look_at_rotations_are_proper():
    rot = look_at_rotation([0, 45, 170], [10, -30, 80], [0, 5, -20])
    assert rot.shape == (3, 3, 3)
    assert np.allclose(rot @ np.swapaxes(rot, 1, 2), np.eye(3))
    assert np.allclose(np.linalg.det(rot), 1)


def test_camera_from_angles_looks_at_target():
    target = np.array([1.0, 2.0, 3.0])
    cam = camera_from_angles(azimuth=30, elevation=20, distance=15, target=target)
    assert np.allclose(cam.to_camera_frame(target), [0, 0, 15])
    assert np.allclose(cam.project(target), [0, 0])
    up = cam.project(target + [0, 0, 1.0])
    assert up[1] < 0  # world up is image up (y down)


@pytest.mark.parametrize("angle", [0.3, 2.0, np.pi - 1e-3, np.pi])
def test_rodrigues_round_trip(angle):
    axis = np.array([0.2, -0.5, 0.8])
    rvec = axis / np.linalg.norm(axis) * angle
    rot = rodrigues(rvec)
    assert np.allclose(rodrigues(rotation_to_rodrigues(rot)), rot, atol=1e-6)


def test_random_cameras_project_within_ranges():
    rc = RandomCameras(azimuth=(10, 20), elevation=(0, 5), distance=(30, 40))
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(50, 1, 6, 3))
    uv, cam = rc.project(pts, np.zeros((50, 3)), rng)
    assert uv.shape == (50, 1, 6, 2) and cam.shape == (50, 1, 6, 3)
    centre_depth = np.linalg.norm(cam - cam.mean(axis=2, keepdims=True), axis=-1)
    assert np.allclose(np.linalg.norm(cam, axis=-1).mean(), 35, atol=3)
    assert np.isfinite(centre_depth).all()
    weak = RandomCameras(projection="weak", distance=(30, 40))
    uvw, _ = weak.project(pts, np.zeros((50, 3)), rng)
    assert np.isfinite(uvw).all()
    with pytest.raises(ValueError, match="distance: not set"):  # train() fills the default in
        RandomCameras().project(pts, np.zeros((50, 3)), rng)
    with pytest.raises(ValueError, match="projection"):
        RandomCameras(projection="fisheye")
    with pytest.raises(ValueError, match="elevation"):
        RandomCameras(elevation=(-90, 10))
