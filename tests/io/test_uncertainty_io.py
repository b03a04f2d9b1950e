"""Lifted poses' ``uncertainty`` and ``suspicion`` through every 3D writer and reader, on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.io._csv import EXACT_FLOATS
from napari_liftpose.poses import Poses

FLY = "fly_df3d_210902/points3d.npz"


def _lifted_like(data_dir, individuals: int = 1) -> Poses:
    """The fly library, as two individuals if asked, with radii and scores as a lifter gives."""
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 120))
    rng = np.random.default_rng(0)
    coords = np.concatenate([fly.coords + i for i in range(individuals)], axis=1)
    radius = rng.uniform(0.01, 0.2, coords.shape[:3])
    radius[3, 0, 5] = np.nan  # a point that could not be lifted
    score = rng.uniform(0, 1, coords.shape[:2])
    return fly.copy(
        coords=coords,
        confidence=np.concatenate([fly.confidence] * individuals, axis=1),
        individuals=[f"fly{i}" for i in range(individuals)],
        uncertainty=radius,
        suspicion=score,
        frame="world",
    )


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
@pytest.mark.parametrize("individuals", [1, 2])
def test_uncertainty_and_suspicion_round_trip(tmp_path, data_dir, suffix, individuals):
    poses = _lifted_like(data_dir, individuals)
    again = read_poses(write_poses(poses, tmp_path / f"lifted{suffix}"))
    np.testing.assert_array_equal(again.uncertainty, poses.uncertainty)
    np.testing.assert_array_equal(again.suspicion, poses.suspicion)
    np.testing.assert_array_equal(again.coords, poses.coords)


@pytest.mark.parametrize("individuals", [1, 2])
def test_anipose_csv_error_column_is_the_uncertainty(tmp_path, data_dir, individuals):
    poses = _lifted_like(data_dir, individuals)
    path = write_poses(poses, tmp_path / "lifted.csv")
    table = pd.read_csv(path, **EXACT_FLOATS)
    kp = poses.keypoints[5]
    rows = table if individuals == 1 else table[table["individual"] == "fly1"]
    np.testing.assert_allclose(rows[f"{kp}_error"].to_numpy(), poses.uncertainty[:, -1, 5])
    again = read_poses(path)
    np.testing.assert_allclose(again.uncertainty, poses.uncertainty, rtol=0, atol=0)
    assert again.suspicion is None  # the CSV has no column for it


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".csv"])
def test_files_without_them_read_as_none(tmp_path, data_dir, suffix):
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 50))
    assert fly.uncertainty is None and fly.suspicion is None
    again = read_poses(write_poses(fly, tmp_path / f"plain{suffix}"))
    assert again.uncertainty is None and again.suspicion is None
    if suffix == ".csv":  # the column is there (anipose's layout) but all NaN
        assert pd.read_csv(tmp_path / "plain.csv")[f"{fly.keypoints[1]}_error"].isna().all()


def test_anipose_reprojection_error_is_not_read_as_a_radius(tmp_path, data_dir):
    """anipose's own files have ``_ncams``: their ``_error`` is a reprojection error in pixels."""
    poses = _lifted_like(data_dir)
    path = write_poses(poses, tmp_path / "lifted.csv")
    table = pd.read_csv(path, **EXACT_FLOATS)
    for kp in poses.keypoints:
        table[f"{kp}_ncams"] = 3
    table.to_csv(path, index=False)
    again = read_poses(path)
    assert again.uncertainty is None
    np.testing.assert_array_equal(again.coords, poses.coords)


def test_slicing_and_reordering_carry_both(data_dir):
    poses = _lifted_like(data_dir, 2)
    names = poses.keypoints[::-1][:7]
    sub = poses.select_keypoints(names)
    index = [poses.keypoints.index(n) for n in names]
    np.testing.assert_array_equal(sub.uncertainty, poses.uncertainty[:, :, index])
    np.testing.assert_array_equal(sub.suspicion, poses.suspicion)
    part = poses.select_frames(slice(10, 20))
    np.testing.assert_array_equal(part.uncertainty, poses.uncertainty[10:20])
    np.testing.assert_array_equal(part.suspicion, poses.suspicion[10:20])
    copy = poses.copy()
    copy.uncertainty[0, 0, 0] = 99.0
    assert poses.uncertainty[0, 0, 0] != 99.0  # a deep copy


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uncertainty", np.zeros((3, 1, 2)), "uncertainty: expected shape"),
        ("uncertainty", -np.ones((120, 1, 30)), "uncertainty: expected values"),
        ("suspicion", np.zeros((120, 2)), "suspicion: expected shape"),
        ("suspicion", np.full((120, 1), 1.5), r"suspicion: expected values in \[0, 1\]"),
        ("suspicion", np.full((120, 1), "a"), "suspicion: expected numbers"),
    ],
)
def test_bad_fields_are_refused(data_dir, field, value, message):
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 120))
    with pytest.raises(ValueError, match=message):
        fly.copy(**{field: value})


def test_bad_uncertainty_in_a_file_is_a_pose_file_error(tmp_path, data_dir):
    from napari_liftpose.io.errors import PoseFileError

    poses = _lifted_like(data_dir)
    path = write_poses(poses, tmp_path / "lifted.npz")
    arrays = dict(np.load(path))
    arrays["uncertainty"] = arrays["uncertainty"][:, :, :3]
    np.savez(path, **arrays)
    with pytest.raises(PoseFileError, match="uncertainty: expected shape"):
        read_poses(path)
