"""The anipose CSV as anipose's ``triangulate`` writes it: every column, read by movement's
anipose loader and by pandas value by value; old files without the full layout still read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.io._csv import EXACT_FLOATS
from tests.io.movement_versions import plural_dims

FLY = "fly_df3d_210902/points3d.npz"


def _lifted(data_dir, n_individuals=1):
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 120))
    coords = np.concatenate([fly.coords + 2.0 * i for i in range(n_individuals)], axis=1)
    coords[4, 0, 2] = np.nan
    rng = np.random.default_rng(1)
    radius = rng.uniform(0.0, 0.4, coords.shape[:3])
    radius[4, 0, 2] = np.nan
    return fly.copy(
        coords=coords,
        confidence=rng.uniform(0.3, 1.0, coords.shape[:3]),
        individuals=[f"fly{i}" for i in range(n_individuals)],
        uncertainty=radius,
        source_format="lifted",
    )


def _anipose_columns(keypoints):
    per_keypoint = [f"{kp}_{s}" for kp in keypoints for s in "x y z error ncams score".split()]
    matrix = [f"M_{r}{c}" for r in range(3) for c in range(3)]
    return per_keypoint + matrix + ["center_0", "center_1", "center_2", "fnum"]


def test_columns_and_values_are_anipose_s(tmp_path, data_dir):
    poses = _lifted(data_dir)
    table = pd.read_csv(write_poses(poses, tmp_path / "pose-3d.csv"), **EXACT_FLOATS)
    assert list(table.columns) == _anipose_columns(poses.keypoints)
    for k, kp in enumerate(poses.keypoints):
        for a, axis in enumerate("xyz"):
            np.testing.assert_array_equal(table[f"{kp}_{axis}"], poses.coords[:, 0, k, a])
        np.testing.assert_array_equal(table[f"{kp}_error"], poses.uncertainty[:, 0, k])
        np.testing.assert_array_equal(table[f"{kp}_score"], poses.confidence[:, 0, k])
        known = np.isfinite(poses.coords[:, 0, k]).all(-1)
        np.testing.assert_array_equal(table[f"{kp}_ncams"], np.where(known, 1.0, np.nan))
    matrix = table[[f"M_{r}{c}" for r in range(3) for c in range(3)]].to_numpy()
    np.testing.assert_array_equal(matrix, np.tile(np.eye(3).ravel(), (poses.n_frames, 1)))
    np.testing.assert_array_equal(table[["center_0", "center_1", "center_2"]], 0.0)
    np.testing.assert_array_equal(table["fnum"], np.arange(poses.n_frames))


def test_without_uncertainty_error_is_nan(tmp_path, data_dir):
    poses = _lifted(data_dir).copy(uncertainty=None)
    table = pd.read_csv(write_poses(poses, tmp_path / "plain.csv"), **EXACT_FLOATS)
    assert table[[f"{kp}_error" for kp in poses.keypoints]].isna().all().all()
    assert read_poses(tmp_path / "plain.csv").uncertainty is None


def test_movement_anipose_loader_reads_it_value_by_value(tmp_path, data_dir):
    load_poses = pytest.importorskip("movement.io.load_poses")
    poses = _lifted(data_dir)
    path = write_poses(poses, tmp_path / "pose-3d.csv")
    ds = plural_dims(load_poses.from_anipose_file(path, fps=100.0))
    assert set(ds.keypoints.values) == set(poses.keypoints)  # movement sorts them by name
    for kp in poses.keypoints:
        k = poses.keypoints.index(kp)
        position = ds.position.sel(keypoints=kp, individuals="id_0").values  # (time, space)
        np.testing.assert_array_equal(position, poses.coords[:, 0, k])
        np.testing.assert_array_equal(
            ds.confidence.sel(keypoints=kp, individuals="id_0").values, poses.confidence[:, 0, k]
        )
    assert ds.attrs["fps"] == 100.0 and ds.attrs["source_software"] == "Anipose"


def test_round_trip_here_keeps_the_radius(tmp_path, data_dir):
    poses = _lifted(data_dir, 2)
    back = read_poses(write_poses(poses, tmp_path / "two.csv"))
    assert back.individuals == poses.individuals
    np.testing.assert_array_equal(back.coords, poses.coords)
    np.testing.assert_array_equal(back.confidence, poses.confidence)
    np.testing.assert_array_equal(back.uncertainty, poses.uncertainty)
    header = pd.read_csv(tmp_path / "two.csv", nrows=0).columns
    assert header[0] == "individual"  # anipose is single-animal: our extension, said in docs


def test_anipose_triangulated_error_is_not_a_radius(tmp_path, data_dir):
    """anipose triangulates from 2+ cameras: its ``_error`` is a reprojection error in px."""
    poses = _lifted(data_dir)
    path = write_poses(poses, tmp_path / "tri.csv")
    table = pd.read_csv(path, **EXACT_FLOATS)
    table[f"{poses.keypoints[0]}_ncams"] = 3.0
    table.to_csv(path, index=False)
    back = read_poses(path)
    assert back.uncertainty is None
    np.testing.assert_array_equal(back.coords, poses.coords)


def test_old_files_without_the_full_layout_still_read(tmp_path, data_dir):
    poses = _lifted(data_dir)
    path = write_poses(poses, tmp_path / "full.csv")
    table = pd.read_csv(path, **EXACT_FLOATS)
    old = [
        c for c in table.columns if not c.endswith("_ncams") and not c.startswith(("M_", "center_"))
    ]
    table[old].to_csv(tmp_path / "old.csv", index=False)
    back = read_poses(tmp_path / "old.csv")
    np.testing.assert_array_equal(back.coords, poses.coords)
    np.testing.assert_array_equal(back.uncertainty, poses.uncertainty)
