"""The hostile review's reader and batch attacks (1-4, 9, 10): CF-encoded netCDF values, NWB
rates, pynwb's error dumps, PoseEstimation with no series, and ``**`` through symlink loops."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_liftpose.batch.plan import _glob
from napari_liftpose.io import PoseFileError, read_poses, write_poses

SESSION = "sleap_anipose_minimal_session"
TOP = f"{SESSION}/top/minimal_top_proofread.analysis.h5"
SERIES = "processing/behavior/track_0"


@pytest.fixture
def top(data_dir):
    return read_poses(data_dir / TOP)


@pytest.fixture
def nc_file(tmp_path, top) -> Path:
    return write_poses(top.copy(source=None), tmp_path / "top.nc")


@pytest.fixture
def nwb_file(tmp_path, top) -> Path:
    return write_poses(top.copy(source=None), tmp_path / "top.nwb")


def _xarray_position(path: Path) -> np.ndarray:
    """``position`` as xarray decodes it, in Poses order (time, individual, keypoint, space)."""
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.position.transpose("time", "individual", "keypoint", "space").values


def _recreate(path: Path, name: str, data: np.ndarray, **attrs) -> None:
    """Replace ``name`` by ``data``, keeping its attributes (dimension scales included)."""
    with h5py.File(path, "r+") as f:
        old = f[name]
        dims = [old.dims[i][0] for i in range(old.ndim)]
        kept = {k: v for k, v in old.attrs.items() if k not in ("DIMENSION_LIST", "_FillValue")}
        del f[name]
        new = f.create_dataset(name, data=data)
        for i, scale in enumerate(dims):
            new.dims[i].attach_scale(scale)
        for key, value in {**kept, **attrs}.items():
            new.attrs[key] = value


def test_fill_value_reads_as_missing_as_in_xarray(nc_file):
    with h5py.File(nc_file, "r+") as f:
        data = f["position"][...]
        data[:10, :, 0, 0] = -9999.0
        f["position"][...] = data
        f["position"].attrs["_FillValue"] = np.array([-9999.0])
    poses = read_poses(nc_file)
    assert np.isnan(poses.coords[:10, 0, 0]).all()
    np.testing.assert_array_equal(poses.coords, _xarray_position(nc_file))


def test_missing_value_reads_as_missing_as_in_xarray(nc_file):
    with h5py.File(nc_file, "r+") as f:
        data = f["position"][...]
        data[5:8, :, 1, 0] = 1e20
        f["position"][...] = data
        f["position"].attrs["missing_value"] = np.array([1e20])
    poses = read_poses(nc_file)
    assert np.isnan(poses.coords[5:8, 0, 1]).all()
    np.testing.assert_array_equal(poses.coords, _xarray_position(nc_file))


def test_packed_integers_are_unpacked_as_in_xarray(tmp_path, data_dir):
    points = read_poses(data_dir / SESSION / "points3d.h5")
    path = write_poses(points.copy(source=None), tmp_path / "points.nc")
    with h5py.File(path, "r") as f:
        data = f["position"][...]
    packed = np.where(np.isnan(data), -32768, np.round((data - 3.0) / 0.01)).astype(np.int32)
    fill = np.int32(-32768)
    _recreate(path, "position", packed, scale_factor=0.01, add_offset=3.0, _FillValue=fill)
    poses = read_poses(path)
    expected = _xarray_position(path)
    np.testing.assert_allclose(poses.coords, expected, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(poses.coords, points.coords, atol=0.006, equal_nan=True)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"scale_factor": np.array([0.1, 0.2])}, "position: scale_factor: expected one real"),
        ({"scale_factor": np.inf}, "position: scale_factor: expected a finite number"),
        ({"add_offset": "3"}, "position: add_offset: expected one real number"),
        ({"_Unsigned": "true"}, "position: _Unsigned integers are not read"),
    ],
)
def test_packing_that_cannot_be_undone_is_one_error(nc_file, attrs, message):
    with h5py.File(nc_file, "r+") as f:
        for key, value in attrs.items():
            f["position"].attrs[key] = value
    with pytest.raises(PoseFileError, match=message) as caught:
        read_poses(nc_file)
    assert caught.value.path == nc_file


def _set_rate(path: Path, rate: float) -> None:
    with h5py.File(path, "r+") as f:
        f[f"{SERIES}/Nose/starting_time"].attrs["rate"] = rate


@pytest.mark.parametrize("rate", [-5.0, np.inf, 0.0, np.nan])
def test_nwb_rate_must_be_positive_and_finite(nwb_file, rate):
    _set_rate(nwb_file, rate)
    with pytest.raises(PoseFileError, match="'Nose': rate: expected a positive finite rate"):
        read_poses(nwb_file)


def test_nwb_starting_time_must_be_finite(nwb_file):
    with h5py.File(nwb_file, "r+") as f:
        f[f"{SERIES}/Nose/starting_time"][()] = np.inf
    with pytest.raises(PoseFileError, match="'Nose': starting_time: expected a finite time"):
        read_poses(nwb_file)


def test_nwb_construct_errors_are_one_short_sentence(nwb_file):
    with h5py.File(nwb_file, "r+") as f:
        del f[f"{SERIES}/Nose"]
        f[f"{SERIES}/Nose"] = h5py.SoftLink(f"/{SERIES}/Neck")
    with pytest.raises(PoseFileError, match="not a readable NWB file") as caught:
        read_poses(nwb_file)
    message = str(caught.value)
    assert len(message) < 500
    assert "GroupBuilder" not in message and " at 0x" not in message
    assert "\n" not in message


def test_nwb_pose_estimation_without_series_says_so(nwb_file):
    with h5py.File(nwb_file, "r+") as f:
        group = f[SERIES]
        for name in list(group):
            kind = group[name].attrs.get("neurodata_type")
            if kind in ("PoseEstimationSeries", b"PoseEstimationSeries"):
                del group[name]
    with pytest.raises(PoseFileError, match="PoseEstimation holds no PoseEstimationSeries"):
        read_poses(nwb_file)


def test_double_star_does_not_follow_symlink_loops(tmp_path, monkeypatch):
    root = tmp_path / "in"
    for name in ("top", "mid"):
        (root / name).mkdir(parents=True)
        (root / name / f"{name}.slp").write_bytes(b"x")
    (root / "top" / "loop").symlink_to("..")
    (root / "mid" / "loop2").symlink_to(root)
    monkeypatch.chdir(tmp_path)
    # glob.glob(recursive=True) follows both links and never returns here
    assert sorted(_glob("in/**/*.slp")) == ["in/mid/mid.slp", "in/top/top.slp"]
    assert sorted(_glob("in/*/*.slp")) == ["in/mid/mid.slp", "in/top/top.slp"]
    assert _glob("in/**/nothing*") == []


def test_double_star_matches_as_glob_without_links(tmp_path, monkeypatch):
    import glob

    for rel in ("a/x.slp", "a/b/y.slp", "a/b/c/z.slp", "a/.hidden/h.slp", "a/b/.h.slp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    for pattern in ("a/**/*.slp", "**/*.slp", "a/**", "a/*/*.slp", "a/b/.*.slp", "a/?/*"):
        assert sorted(_glob(pattern)) == sorted(glob.glob(pattern, recursive=True)), pattern
    assert os.path.isdir("a")
    shutil.rmtree(tmp_path / "a")


def test_poses_with_no_size_are_not_blamed_on_the_root(tmp_path, data_dir):
    from tests.safety.conftest import run_cli

    tracks = read_poses(data_dir / "dlc_openfield_csv/openfield_dlc_inference_example.csv")
    tracks = tracks.select_frames(slice(0, 20))
    tracks.coords[...] = 5.0  # every keypoint tracked, all at one point: no size to normalise
    source = write_poses(tracks.copy(source=None), tmp_path / "same.npz")
    out = tmp_path / "out.npz"
    result = run_cli("lift", "--builtin", "mouse-top", source, "-o", out)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{source}: nothing liftable: no pose has a size" in result.stderr
    assert "never tracked" not in result.stderr
    assert not out.exists()
