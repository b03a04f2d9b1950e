"""NWB export with ndx-pose: read back with pynwb, movement and our reader, value by value."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import sleap_io as sio

from napari_liftpose.io import PoseFileError, read_poses
from napari_liftpose.io.nwb import REFERENCE_FRAMES, is_nwb_file, read_nwb, write_nwb
from tests.io.movement_versions import plural_dims

FLY = "fly_df3d_210902/points3d.npz"
TOP_SLP = "sleap_anipose_minimal_session/top/minimal_top_proofread.slp"


@pytest.fixture
def lifted(data_dir):
    """Real 3D poses (two flies: the recording and a shifted copy) dressed as a lift."""
    fly = read_poses(data_dir / FLY)
    coords = np.concatenate([fly.coords, fly.coords + 1.5], axis=1)
    coords[5, 1, 3] = np.nan
    spread = np.abs(coords - np.nanmean(coords, axis=0)).sum(-1)  # any non-negative radius
    return fly.copy(
        coords=coords,
        confidence=np.linspace(0, 1, coords[..., 0].size).reshape(coords.shape[:3]),
        individuals=["fly_b", "fly_a"],  # not in name order: the order must survive
        fps=100.0,
        frame="world",
        source_format="lifted",
        metadata={"lifter": "/models/fly.safetensors"},
        uncertainty=np.where(np.isnan(coords[..., 0]), np.nan, spread),
        suspicion=np.linspace(0, 1, coords.shape[0] * 2).reshape(coords.shape[0], 2),
        video="/videos/fly.mp4",
    )


def _same(a, b):
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    assert a.keypoints == b.keypoints
    assert a.individuals == b.individuals
    assert a.edges.tolist() == b.edges.tolist()
    assert (a.fps, a.units, a.frame, a.video) == (b.fps, b.units, b.frame, b.video)


def test_3d_export_opens_in_pynwb_value_by_value(tmp_path, lifted):
    from pynwb import NWBHDF5IO

    path = write_nwb(lifted, tmp_path / "fly.nwb")
    assert is_nwb_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        io = NWBHDF5IO(str(path), mode="r")
        nwbfile = io.read()
    with io:
        module = nwbfile.processing["behavior"]
        skeleton = module["Skeletons"].skeletons["skeleton"]
        assert list(skeleton.nodes[:]) == lifted.keypoints
        assert skeleton.edges[:].tolist() == lifted.edges.tolist()
        assert nwbfile.identifier and nwbfile.session_start_time.tzinfo is not None
        for i, individual in enumerate(lifted.individuals):
            estimate = module[individual]
            assert estimate.skeleton.object_id == skeleton.object_id
            assert estimate.source_software == "napari-liftpose"
            assert "/models/fly.safetensors" in estimate.description
            assert list(estimate.pose_estimation_series) == sorted(lifted.keypoints)
            for k, keypoint in enumerate(lifted.keypoints):
                series = estimate.pose_estimation_series[keypoint]
                np.testing.assert_array_equal(series.data[:], lifted.coords[:, i, k])
                np.testing.assert_array_equal(series.confidence[:], lifted.confidence[:, i, k])
                assert series.unit == lifted.units
                assert series.reference_frame == REFERENCE_FRAMES["world"]
                assert (series.rate, series.starting_time) == (100.0, 0.0)
            np.testing.assert_array_equal(
                module[f"{individual}_uncertainty"].data[:], lifted.uncertainty[:, i]
            )
            np.testing.assert_array_equal(
                module[f"{individual}_suspicion"].data[:], lifted.suspicion[:, i]
            )


def test_3d_roundtrip(tmp_path, lifted):
    again = read_poses(write_nwb(lifted, tmp_path / "fly.nwb"))
    _same(lifted, again)
    np.testing.assert_array_equal(again.uncertainty, lifted.uncertainty)
    np.testing.assert_array_equal(again.suspicion, lifted.suspicion)
    assert again.source_format == "nwb"
    # a re-export keeps the session's start time
    twice = read_nwb(write_nwb(again, tmp_path / "again.nwb"))
    assert twice.metadata["session_start_time"] == again.metadata["session_start_time"]
    assert twice.metadata["identifier"] != again.metadata["identifier"]


def test_2d_roundtrip_and_unknown_fps(tmp_path, data_dir):
    tracks = read_poses(data_dir / TOP_SLP)
    tracks.fps = None
    path = write_nwb(tracks, tmp_path / "top.nwb")
    again = read_nwb(path)
    _same(tracks, again)
    assert again.units == "px" and again.uncertainty is None and again.suspicion is None
    with h5py.File(path, "r") as f:  # unknown fps: a 1 Hz placeholder that says so
        series = f["processing/behavior/track_0/Nose"]
        assert series["starting_time"].attrs["rate"] == 1.0
        assert "frame rate unknown" in series.attrs["comments"]
        assert series["data"].attrs["unit"] == "pixels"


def test_movement_loads_export_value_by_value(tmp_path, lifted):
    load_poses = pytest.importorskip("movement.io.load_poses")
    path = write_nwb(lifted, tmp_path / "fly.nwb")
    for i, individual in enumerate(lifted.individuals):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = plural_dims(load_poses.from_nwb_file(path, pose_estimation_key=individual))
        assert ds.attrs["fps"] == 100.0 and ds.attrs["source_software"] == "napari-liftpose"
        assert list(ds.space.values) == ["x", "y", "z"]
        np.testing.assert_allclose(ds.time.values, np.arange(lifted.n_frames) / 100.0)
        for k, keypoint in enumerate(lifted.keypoints):
            position = ds.position.sel(keypoints=keypoint).values[:, :, 0]  # (time, space)
            np.testing.assert_array_equal(position, lifted.coords[:, i, k])
            confidence = ds.confidence.sel(keypoints=keypoint).values[:, 0]
            np.testing.assert_array_equal(confidence, lifted.confidence[:, i, k])


def test_reads_sleap_io_nwb(tmp_path, data_dir):
    labels = sio.load_slp(str(data_dir / TOP_SLP))
    path = tmp_path / "sleap.nwb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sio.save_nwb(labels, str(path))
    poses = read_poses(path)
    assert poses.source_format == "nwb"
    skeleton = labels.skeletons[0]
    assert poses.keypoints == skeleton.node_names
    assert poses.edges.tolist() == [list(e) for e in skeleton.edge_inds]
    assert poses.individuals == [track.name for track in labels.tracks]
    expected = labels.numpy(return_confidence=True)  # (frames, tracks, nodes, 3)
    np.testing.assert_array_equal(poses.coords, expected[..., :2])
    np.testing.assert_array_equal(poses.confidence, expected[..., 2])


def test_reads_movement_nwb(tmp_path, data_dir):
    load_poses = pytest.importorskip("movement.io.load_poses")
    save_poses = pytest.importorskip("movement.io.save_poses")
    fly = read_poses(data_dir / FLY)
    position = np.moveaxis(fly.coords[:, 0], -1, 1)[..., None]  # (time, space, keypoints, 1)
    ds = load_poses.from_numpy(
        position, fly.confidence[:, 0, :, None], individual_names=["fly"],
        keypoint_names=fly.keypoints, fps=100, source_software="DeepFly3D",
    )  # fmt: skip
    from pynwb import NWBHDF5IO

    path = tmp_path / "movement.nwb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nwbfile = save_poses.to_nwb_file(ds)  # an NWBFile per individual, not yet on disk
        with NWBHDF5IO(str(path), mode="w") as io:
            io.write(nwbfile)
    poses = read_nwb(path)
    assert poses.individuals == ["fly"] and poses.fps == pytest.approx(100.0)
    assert sorted(poses.keypoints) == sorted(fly.keypoints)
    order = [poses.keypoints.index(k) for k in fly.keypoints]
    np.testing.assert_allclose(poses.coords[:, :, order], fly.coords)


def test_several_processing_modules_need_a_choice(tmp_path, lifted):
    path = write_nwb(lifted.select_frames(slice(0, 10)), tmp_path / "fly.nwb")
    with h5py.File(path, "r+") as f:
        f.copy("processing/behavior", f["processing"], name="other")
    with pytest.raises(PoseFileError, match="several processing modules.*processing_module="):
        read_nwb(path)
    assert read_nwb(path, processing_module="other").n_frames == 10


def _written(tmp_path, lifted):
    return write_nwb(lifted.select_frames(slice(0, 10)), tmp_path / "bad.nwb")


def test_external_link_is_refused(tmp_path, lifted):
    path = _written(tmp_path, lifted)
    with h5py.File(path, "r+") as f:
        f["processing/behavior/fly_a/elsewhere"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(PoseFileError, match=r"bad\.nwb: .*external link"):
        read_nwb(path)


def test_external_storage_is_refused(tmp_path, lifted):
    path = _written(tmp_path, lifted)
    with h5py.File(path, "r+") as f:
        f.create_dataset(
            "acquisition/raw", shape=(10,), dtype="f8", external=[("/dev/zero", 0, 80)]
        )
    with pytest.raises(PoseFileError, match=r"bad\.nwb: .*other files"):
        read_nwb(path)


def test_huge_declared_dataset_is_refused(tmp_path, lifted):
    path = _written(tmp_path, lifted)
    with h5py.File(path, "r+") as f:
        series = f["processing/behavior/fly_a"]
        name = next(iter(series))
        del series[f"{name}/data"]
        series.create_dataset(f"{name}/data", shape=(10**9, 3), dtype="f8", chunks=(1024, 3))
    with pytest.raises(PoseFileError, match=r"bad\.nwb: .*refusing to allocate"):
        read_nwb(path)


def test_truncated_and_foreign_files(tmp_path, lifted):
    path = _written(tmp_path, lifted)
    cut = tmp_path / "cut.nwb"
    cut.write_bytes(path.read_bytes()[:4000])
    with pytest.raises(PoseFileError, match=r"cut\.nwb: .*truncated or corrupt"):
        read_nwb(cut)
    plain = tmp_path / "plain.nwb"
    with h5py.File(plain, "w") as f:
        f["points"] = np.zeros((3, 2))
    assert not is_nwb_file(plain)
    with pytest.raises(PoseFileError, match=r"plain\.nwb: not a readable NWB file"):
        read_nwb(plain)
    with h5py.File(path, "r+") as f:
        del f["processing/behavior"]
    with pytest.raises(PoseFileError, match=r"bad\.nwb: no ndx-pose PoseEstimation"):
        read_nwb(path)


def test_names_that_collide_write_nothing(tmp_path, lifted):
    clash = lifted.copy(individuals=["a/b", "a_b"])
    target = tmp_path / "clash.nwb"
    with pytest.raises(PoseFileError, match=r"clash\.nwb: .*'a_b' is used twice"):
        write_nwb(clash, target)
    assert list(tmp_path.iterdir()) == []
