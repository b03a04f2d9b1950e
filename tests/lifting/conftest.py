"""Fixtures for the lifting tests: real 3D libraries and 2D tracks from the shared data."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.io import read_poses
from napari_liftpose.lifting import camera_from_angles


@pytest.fixture(scope="session")
def fly(data_dir) -> Poses:
    """DeepFly3D fly: 1000 frames x 30 keypoints, mm."""
    path = data_dir / "fly_df3d_210902" / "points3d.npz"
    z = np.load(path)
    return Poses(
        z["points3d"][:, None],
        [str(k) for k in z["keypoints"]],
        edges=z["edges"],
        fps=float(z["fps"]),
        units="mm",
        source=str(path),
    )


@pytest.fixture(scope="session")
def fly_camera():
    """A pinhole camera looking at the fly from its side, slightly from above."""
    return camera_from_angles(azimuth=90, elevation=20, distance=20, focal=1000, name="side")


def split_frames(poses: Poses, fraction: float) -> tuple[Poses, Poses]:
    """First ``1 - fraction`` of the frames, and the rest (split by time)."""
    cut = int(round(poses.n_frames * (1 - fraction)))

    def part(sl):
        return poses.copy(coords=poses.coords[sl].copy(), confidence=poses.confidence[sl].copy())

    return part(slice(0, cut)), part(slice(cut, None))


@pytest.fixture(scope="session")
def mouse_pair(data_dir) -> tuple[Poses, Poses]:
    """sleap-anipose session: top-camera 2D tracks and triangulated 3D (120 frames x 15 nodes)."""
    session = data_dir / "sleap_anipose_minimal_session"
    two_d = read_poses(session / "top" / "minimal_top_proofread.analysis.h5")
    three_d = read_poses(session / "points3d.h5").select_keypoints(two_d.keypoints)
    return two_d, three_d
