"""The same files, bit for bit, whichever pandas / xarray is installed (pandas >= 2.0, any xarray
the package allows): the differences between library versions that once changed what was read
or written, pinned down on real data.

On a recent pandas and xarray some of these run the path older versions take on purpose
(``to_netcdf`` refusing bytes); ``scripts/test_python.sh 3.10`` runs them on the old libraries.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import xarray as xr

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.io.atomic import hdf5_store_image

REACHING = "dlc_reaching_2d/reachingDEMO_2D.h5"
OPENFIELD = "dlc_openfield_csv/openfield_dlc_inference_example.csv"
FLY = "fly_df3d_210902/points3d.npz"


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty working directory, to see any file a writer leaves there."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_dlc_h5_is_built_in_memory_and_nothing_lands_in_the_cwd(tmp_path, data_dir, empty_cwd):
    """pandas 2's ``frame.to_hdf(store)`` wrote to a file named after the in-memory store."""
    poses = read_poses(data_dir / REACHING)
    out = write_poses(poses, tmp_path / "out" / "refined.h5")
    assert os.listdir(empty_cwd) == []
    np.testing.assert_array_equal(read_poses(out).coords, poses.coords)
    np.testing.assert_array_equal(read_poses(out).confidence, poses.confidence)


def test_a_store_fill_that_writes_to_disk_is_refused_and_cleaned_up(empty_cwd):
    def stray(store):
        with open(store.filename, "wb") as f:
            f.write(b"not in memory")

    with pytest.raises(RuntimeError, match="wrote a file on disk"):
        hdf5_store_image(stray)
    assert os.listdir(empty_cwd) == []


def test_dlc_csv_values_are_the_doubles_the_cells_spell(data_dir):
    """Every coordinate equals Python's ``float`` of its cell (pandas 2's default parser is
    1 ulp off for about one cell in five of this file)."""
    path = data_dir / OPENFIELD
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[3:]
    cells = np.array([[float(cell) for cell in row[1:]] for row in rows])  # x, y, likelihood
    poses = read_poses(path)
    n = len(poses.keypoints)
    np.testing.assert_array_equal(poses.coords[:, 0, :, 0], cells[:, 0 : 3 * n : 3])
    np.testing.assert_array_equal(poses.coords[:, 0, :, 1], cells[:, 1 : 3 * n : 3])
    np.testing.assert_array_equal(poses.confidence[:, 0, :], cells[:, 2 : 3 * n : 3])


def test_anipose_csv_round_trip_is_bit_exact(tmp_path, data_dir):
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 100))
    back = read_poses(write_poses(fly, tmp_path / "pose-3d.csv"))
    np.testing.assert_array_equal(back.coords, fly.coords)


def _refuse_bytes(self, path=None, *args, **kwargs):
    """``Dataset.to_netcdf`` as xarray before 2025.7: bytes only from the scipy engine."""
    if path is None and kwargs.get("engine") == "h5netcdf":
        raise ValueError(
            "invalid engine for creating bytes with to_netcdf: 'h5netcdf'. Only the default "
            "engine or engine='scipy' is supported"
        )
    return _TO_NETCDF(self, path, *args, **kwargs)


_TO_NETCDF = xr.Dataset.to_netcdf


def test_netcdf_without_in_memory_h5netcdf_is_the_same_file(tmp_path, data_dir, monkeypatch):
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 60))
    rng = np.random.default_rng(0)
    fly = fly.copy(
        uncertainty=rng.uniform(0.0, 0.5, fly.coords.shape[:3]),
        suspicion=rng.uniform(0.0, 1.0, fly.coords.shape[:2]),
    )
    recent = write_poses(fly, tmp_path / "recent.nc")
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _refuse_bytes)
    old = write_poses(fly, tmp_path / "old.nc")
    monkeypatch.undo()
    assert old.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # netCDF4, not scipy's netCDF3
    back = read_poses(old)
    for name in ("coords", "confidence", "uncertainty", "suspicion"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fly, name))
    assert (back.keypoints, back.fps, back.units) == (fly.keypoints, fly.fps, fly.units)
    with (
        xr.open_dataset(recent, engine="h5netcdf") as a,
        xr.open_dataset(old, engine="h5netcdf") as b,
    ):
        xr.testing.assert_identical(a.load(), b.load())
