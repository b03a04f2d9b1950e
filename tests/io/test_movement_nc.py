"""movement's poses dataset (netCDF, ``.nc``): written here, read by movement; written by
movement, read here; value by value, 2D tracks and lifted 3D alike."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.io import (
    LIFTED_SUFFIXES,
    PoseFileError,
    detect_format,
    read_poses,
    write_poses,
)
from tests.io.movement_versions import PLURAL_MOVEMENT, plural_dims

FLY = "fly_df3d_210902/points3d.npz"
TOP_SLP = "sleap_anipose_minimal_session/top/minimal_top_proofread.slp"
OPENFIELD = "dlc_openfield_csv/openfield_dlc_inference_example.csv"


def _lifted_like(data_dir, n_individuals=1):
    """The fly library as a lift would hand it over: uncertainty, suspicion, edits, NaN holes."""
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 200))
    coords = np.concatenate([fly.coords + 3.0 * i for i in range(n_individuals)], axis=1)
    rng = np.random.default_rng(0)
    coords[5, 0, 3] = np.nan
    shape = coords.shape[:3]
    confidence = rng.uniform(0.2, 1.0, shape)
    radius = rng.uniform(0.0, 0.5, shape)
    radius[5, 0, 3] = np.nan
    edited = np.zeros(shape, dtype=bool)
    edited[7, 0, [1, 4]] = True
    return fly.copy(
        coords=coords,
        confidence=confidence,
        individuals=[f"fly{i}" for i in range(n_individuals)],
        uncertainty=radius,
        suspicion=rng.uniform(0.0, 1.0, shape[:2]),
        frame="world",
        source="/data/session1/fly.h5",
        source_format="lifted",
        metadata={"edited": edited, "lifter": "/models/fly.safetensors"},
    )


@pytest.mark.parametrize("n_individuals", [1, 2])
def test_round_trip_keeps_every_field(tmp_path, data_dir, n_individuals):
    poses = _lifted_like(data_dir, n_individuals)
    path = write_poses(poses, tmp_path / "lifted.nc")
    assert detect_format(path) == "movement_nc"
    back = read_poses(path)
    np.testing.assert_array_equal(back.coords, poses.coords)
    np.testing.assert_array_equal(back.confidence, poses.confidence)
    np.testing.assert_array_equal(back.uncertainty, poses.uncertainty)
    np.testing.assert_array_equal(back.suspicion, poses.suspicion)
    np.testing.assert_array_equal(back.metadata["edited"], poses.metadata["edited"])
    np.testing.assert_array_equal(back.edges, poses.edges)
    assert back.keypoints == poses.keypoints and back.individuals == poses.individuals
    assert (back.fps, back.units, back.frame) == (100.0, "mm", "world")
    assert back.metadata["lifter"] == "/models/fly.safetensors"
    assert back.source_format == "movement_nc"


def test_lifted_suffixes_all_have_a_writer():
    from napari_liftpose.io import FORMATS

    writable = {s for f in FORMATS.values() if f.write for s in f.suffixes}
    assert set(LIFTED_SUFFIXES) <= writable
    assert ".nc" in LIFTED_SUFFIXES and ".nwb" in LIFTED_SUFFIXES


@PLURAL_MOVEMENT
def test_movement_opens_our_3d_file_value_by_value(tmp_path, data_dir):
    xr = pytest.importorskip("xarray")
    datasets = pytest.importorskip("movement.validators.datasets")
    poses = _lifted_like(data_dir, 2)
    path = write_poses(poses, tmp_path / "lifted.nc")
    ds = xr.open_dataset(path)  # what movement's napari widget does with a .nc...
    datasets.ValidPosesInputs.validate(ds)  # ...then this
    assert ds.position.dims == ("time", "space", "keypoint", "individual")
    assert ds.confidence.dims == ("time", "keypoint", "individual")
    assert list(ds.space.values) == ["x", "y", "z"]
    assert list(ds.keypoint.values) == poses.keypoints
    assert list(ds.individual.values) == poses.individuals
    np.testing.assert_array_equal(ds.position.values, poses.coords.transpose(0, 3, 2, 1))
    np.testing.assert_array_equal(ds.confidence.values, poses.confidence.transpose(0, 2, 1))
    np.testing.assert_array_equal(ds.uncertainty.values, poses.uncertainty.transpose(0, 2, 1))
    np.testing.assert_array_equal(ds.suspicion.values, poses.suspicion)
    np.testing.assert_array_equal(ds.edited.values, poses.metadata["edited"].transpose(0, 2, 1))
    np.testing.assert_allclose(ds.time.values, np.arange(poses.n_frames) / 100.0)
    assert ds.attrs["ds_type"] == "poses"
    assert ds.attrs["fps"] == 100.0 and ds.attrs["time_unit"] == "seconds"
    assert ds.attrs["source_software"] == "napari-liftpose"
    assert ds.attrs["source_file"] == "/data/session1/fly.h5"


@PLURAL_MOVEMENT
def test_movement_napari_layers_from_our_2d_file(tmp_path, data_dir):
    xr = pytest.importorskip("xarray")
    convert = pytest.importorskip("movement.napari.convert")
    tracks = read_poses(data_dir / TOP_SLP)
    path = write_poses(tracks, tmp_path / "top.nc")
    ds = xr.open_dataset(path)
    assert ds.attrs["source_software"] == "SLEAP" and ds.attrs["time_unit"] == "frames"
    assert "fps" not in ds.attrs  # the .slp holds no frame rate
    points, _, properties = convert.ds_to_napari_layers(ds)  # movement's widget's conversion
    # rows: individual, keypoint, frame; columns: track, t, y, x
    expected = tracks.coords.transpose(1, 2, 0, 3).reshape(-1, 2)[:, ::-1]
    np.testing.assert_array_equal(points[:, 2:], expected)
    assert list(properties["keypoint"].unique()) == tracks.keypoints


def test_files_movement_writes_open_here(tmp_path, data_dir):
    load = pytest.importorskip("movement.io")
    for source, software, fps in ((TOP_SLP, "SLEAP", 25.0), (OPENFIELD, "DeepLabCut", None)):
        ds = load.load_dataset(data_dir / source, software, fps=fps)
        path = tmp_path / f"{software}.nc"
        ds.to_netcdf(path)
        poses = read_poses(path)
        np.testing.assert_array_equal(poses.coords, ds.position.values.transpose(0, 3, 2, 1))
        np.testing.assert_array_equal(poses.confidence, ds.confidence.values.transpose(0, 2, 1))
        named = plural_dims(ds)
        assert poses.keypoints == list(named.keypoints.values)
        assert poses.individuals == list(named.individuals.values)
        assert poses.fps == fps and poses.units == "px"
        assert poses.uncertainty is None and poses.suspicion is None


def test_transposed_and_h5netcdf_written_datasets_read_the_same(tmp_path, data_dir):
    xr = pytest.importorskip("xarray")
    poses = _lifted_like(data_dir, 2)
    ds = xr.open_dataset(write_poses(poses, tmp_path / "a.nc")).load()
    ds.transpose("individual", "keypoint", "space", "time", ...).to_netcdf(
        tmp_path / "b.nc", engine="h5netcdf"
    )
    back = read_poses(tmp_path / "b.nc")
    np.testing.assert_array_equal(back.coords, poses.coords)
    np.testing.assert_array_equal(back.uncertainty, poses.uncertainty)
    plain = ds.sel(space=["z", "x", "y"]).copy()  # drop_attrs() needs xarray >= 2024.10
    plain.attrs = {}
    for variable in plain.variables.values():
        variable.attrs = {}
    plain.to_netcdf(tmp_path / "c.nc", engine="h5netcdf")
    back = read_poses(tmp_path / "c.nc")
    np.testing.assert_array_equal(back.coords, poses.coords)  # space reordered to x, y, z
    assert back.fps is None and back.units == "mm"  # no attributes: 3D taken as mm


def test_files_in_movement_016s_layout_read_the_same(tmp_path, data_dir):
    xr = pytest.importorskip("xarray")
    poses = _lifted_like(data_dir, 2)
    ds = xr.open_dataset(write_poses(poses, tmp_path / "a.nc")).load()
    old = ds.rename(keypoint="keypoints", individual="individuals")  # movement <= 0.16
    old.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    back = read_poses(tmp_path / "old.nc")
    assert back.keypoints == poses.keypoints and back.individuals == poses.individuals
    np.testing.assert_array_equal(back.coords, poses.coords)
    np.testing.assert_array_equal(back.suspicion, poses.suspicion)


def test_fps_from_the_time_coordinate_when_the_attribute_is_gone(tmp_path, data_dir):
    xr = pytest.importorskip("xarray")
    ds = xr.open_dataset(write_poses(_lifted_like(data_dir), tmp_path / "a.nc")).load()
    del ds.attrs["fps"]
    ds.to_netcdf(tmp_path / "b.nc", engine="h5netcdf")
    assert read_poses(tmp_path / "b.nc").fps == pytest.approx(100.0)


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".nc"])
def test_fps_is_carried(tmp_path, data_dir, suffix):
    poses = _lifted_like(data_dir).copy(fps=59.94)
    assert read_poses(write_poses(poses, tmp_path / f"a{suffix}")).fps == 59.94
    assert read_poses(write_poses(poses.copy(fps=None), tmp_path / f"b{suffix}")).fps is None


def test_bboxes_and_netcdf3_are_refused_by_name(tmp_path, data_dir):
    xr = pytest.importorskip("xarray")
    ds = xr.open_dataset(write_poses(_lifted_like(data_dir), tmp_path / "a.nc")).load()
    ds.attrs["ds_type"] = "bboxes"
    ds.to_netcdf(tmp_path / "boxes.nc", engine="h5netcdf")
    with pytest.raises(PoseFileError, match="expected a movement 'poses' dataset, got 'bboxes'"):
        read_poses(tmp_path / "boxes.nc")
    classic = tmp_path / "classic.nc"
    classic.write_bytes(b"CDF\x01" + bytes(60))
    with pytest.raises(PoseFileError, match="netCDF3 files are not read") as caught:
        read_poses(classic)
    assert caught.value.path == classic
    text = tmp_path / "notes.nc"
    text.write_text("not netcdf")
    with pytest.raises(PoseFileError, match="not recognised as any of: movement poses netCDF"):
        read_poses(text)
