"""Every real recording reads into Poses with the points, names, edges and individuals it holds.

Expected values are read independently, with h5py / pandas / numpy, not through the package.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import sleap_io as sio

from napari_liftpose import Poses
from napari_liftpose.io import detect_format, read_poses
from napari_liftpose.io._csv import EXACT_FLOATS

SLEAP_SESSION = "sleap_anipose_minimal_session"
CAMERAS = ["back", "mid", "side", "top"]


def _analysis_truth(path):
    with h5py.File(path, "r") as f:
        tracks = f["tracks"][:]  # (tracks, 2, nodes, frames)
        nodes = [n.decode() for n in f["node_names"][:]]
        edges = f["edge_inds"][:].tolist()
    finite = np.isfinite(tracks).all(axis=1)  # (tracks, nodes, frames)
    return finite.sum(axis=1).T, nodes, edges  # per (frame, track)


@pytest.mark.parametrize("camera", CAMERAS)
def test_sleap_analysis_points_per_frame_and_individual(data_dir, camera):
    path = data_dir / SLEAP_SESSION / camera / f"minimal_{camera}_proofread.analysis.h5"
    per_frame, nodes, edges = _analysis_truth(path)
    poses = read_poses(path)
    assert detect_format(path) == "sleap_analysis"
    np.testing.assert_array_equal(poses.finite_mask().sum(axis=2), per_frame)
    assert poses.keypoints == nodes
    assert poses.edges.tolist() == edges
    assert poses.individuals == ["track_0"]


@pytest.mark.parametrize("camera", CAMERAS)
def test_slp_matches_its_analysis_export(data_dir, camera):
    folder = data_dir / SLEAP_SESSION / camera
    slp = read_poses(folder / f"minimal_{camera}_proofread.slp")
    analysis = read_poses(folder / f"minimal_{camera}_proofread.analysis.h5")
    labels = sio.load_slp(str(folder / f"minimal_{camera}_proofread.slp"))
    assert slp.source_format == "sleap"
    assert slp.keypoints == labels.skeletons[-1].node_names
    assert slp.edges.tolist() == [list(e) for e in labels.skeletons[-1].edge_inds]
    assert slp.individuals == [t.name for t in labels.tracks]
    n = min(slp.n_frames, analysis.n_frames)
    np.testing.assert_allclose(slp.coords[:n], analysis.coords[:n], rtol=0, atol=1e-3)
    # every finite point of every instance comes through
    expected = sum(np.isfinite(inst.numpy()).all(axis=1).sum() for inst in labels.instances)
    assert slp.finite_mask().sum() == expected


def test_slp_without_tracks_gives_one_individual_per_instance(data_dir):
    path = data_dir / "sleap_small" / "minimal_instance.pkg.slp"
    poses = read_poses(path)
    labels = sio.load_slp(str(path))
    assert poses.individuals == ["instance_0", "instance_1"]
    assert poses.keypoints == ["A", "B"]
    truth = np.stack([inst.numpy() for inst in labels[0].instances])
    np.testing.assert_allclose(poses.coords[0], truth, rtol=0, atol=1e-4)


def test_dlc_h5_counts_names_and_skeleton_from_config(data_dir):
    path = data_dir / "dlc_reaching_2d" / "reachingDEMO_2D.h5"
    frame = pd.read_hdf(path)
    bodyparts = list(dict.fromkeys(frame.columns.get_level_values("bodyparts")))
    x = frame.xs("x", axis=1, level="coords").to_numpy()
    y = frame.xs("y", axis=1, level="coords").to_numpy()
    poses = read_poses(path)
    assert poses.keypoints == bodyparts
    np.testing.assert_array_equal(
        poses.finite_mask()[:, 0].sum(axis=1), (np.isfinite(x) & np.isfinite(y)).sum(axis=1)
    )
    np.testing.assert_array_equal(poses.coords[:, 0, :, 0], x)
    np.testing.assert_array_equal(
        poses.confidence[:, 0], frame.xs("likelihood", axis=1, level="coords").to_numpy()
    )
    # config.yaml beside the file: 9 bones, first R_shoulder -> Right_elbow
    assert len(poses.edges) == 9
    assert poses.edge_names()[0] == ("R_shoulder", "Right_elbow")


def test_dlc_csv_single_animal(data_dir):
    path = data_dir / "dlc_openfield_csv" / "openfield_dlc_inference_example.csv"
    frame = pd.read_csv(path, header=[0, 1, 2], index_col=0, **EXACT_FLOATS)
    poses = read_poses(path)
    assert poses.keypoints == ["snout", "leftear", "rightear", "tailbase"]
    assert poses.coords.shape == (2330, 1, 4, 2)
    np.testing.assert_array_equal(
        poses.coords[:, 0, :, 1], frame.xs("y", axis=1, level=2).to_numpy()
    )
    assert poses.finite_mask().sum() == np.isfinite(frame.xs("x", axis=1, level=2)).sum().sum()
    assert len(poses.edges) == 0  # no config.yaml near it


def test_dlc_multi_animal_csv(tmp_path):
    """A maDLC table (4 header rows, with a 'single' unique-bodypart individual)."""
    columns = pd.MultiIndex.from_tuples(
        [
            ("s", ind, bp, c)
            for ind in ("mouse1", "mouse2")
            for bp in ("nose", "tail")
            for c in ("x", "y", "likelihood")
        ]
        + [("s", "single", "port", c) for c in ("x", "y", "likelihood")],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 100, (5, len(columns)))
    values[2, 0] = np.nan
    path = tmp_path / "madlc.csv"
    pd.DataFrame(values, columns=columns).to_csv(path)
    poses = read_poses(path)
    assert poses.individuals == ["mouse1", "mouse2", "single"]
    assert poses.keypoints == ["nose", "tail", "port"]
    assert poses.coords.shape == (5, 3, 3, 2)
    assert np.isnan(poses.coords[:, 0, 2]).all()  # mouse1 has no 'port'
    assert poses.finite_mask().sum() == 5 * 5 - 1
    np.testing.assert_array_equal(poses.coords[:, 2, 2, 0], values[:, 12])


def test_sleap_anipose_points3d_takes_names_from_session(data_dir):
    path = data_dir / SLEAP_SESSION / "points3d.h5"
    with h5py.File(path, "r") as f:
        tracks = f["tracks"][:]
    poses = read_poses(path)
    assert poses.n_space == 3
    np.testing.assert_array_equal(poses.coords, tracks)
    labels = sio.load_slp(str(data_dir / SLEAP_SESSION / "top" / "minimal_top_proofread.slp"))
    assert poses.keypoints == labels.skeletons[-1].node_names
    assert len(poses.edges) == 14


def test_fly_npz_library(data_dir):
    path = data_dir / "fly_df3d_210902" / "points3d.npz"
    archive = np.load(path)
    poses = read_poses(path)
    assert poses.coords.shape == (1000, 1, 30, 3)
    np.testing.assert_array_equal(poses.coords[:, 0], archive["points3d"])
    assert poses.keypoints == [str(k) for k in archive["keypoints"]]
    assert poses.edges.tolist() == archive["edges"].tolist()
    assert poses.fps == 100.0


def test_bare_npy_takes_names_from_caller(tmp_path, data_dir):
    points = np.load(data_dir / "fly_df3d_210902" / "points3d.npz")["points3d"][:10]
    np.save(tmp_path / "lib.npy", points)
    names = [f"k{i}" for i in range(30)]
    poses = read_poses(tmp_path / "lib.npy", keypoints=names)
    assert poses.keypoints == names
    np.testing.assert_array_equal(poses.coords[:, 0], points)
    assert read_poses(tmp_path / "lib.npy").keypoints[0] == "keypoint_0"


def test_anipose_csv_reads_scores_and_ignores_extras(tmp_path):
    header = [
        "nose_x",
        "nose_y",
        "nose_z",
        "nose_error",
        "nose_score",
        "tail_x",
        "tail_y",
        "tail_z",
        "tail_error",
        "tail_score",
        "M_00",
        "center_0",
        "fnum",
    ]
    rows = np.arange(3 * len(header), dtype=float).reshape(3, -1)
    path = tmp_path / "pose-3d.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False)
    poses = read_poses(path)
    assert detect_format(path) == "anipose_csv"
    assert poses.keypoints == ["nose", "tail"]
    np.testing.assert_array_equal(poses.coords[:, 0, 1], rows[:, 5:8])
    np.testing.assert_array_equal(poses.confidence[:, 0, 0], rows[:, 4])


def test_dlc_3d_h5(tmp_path):
    columns = pd.MultiIndex.from_product(
        [["DLC_3D"], ["nose", "tail"], ["x", "y", "z"]], names=["scorer", "bodyparts", "coords"]
    )
    values = np.arange(4 * 6, dtype=float).reshape(4, 6)
    path = tmp_path / "video_DLC_3D.h5"
    pd.DataFrame(values, columns=columns).to_hdf(path, key="df_with_missing")
    poses = read_poses(path)
    assert poses.n_space == 3
    np.testing.assert_array_equal(poses.coords[:, 0, 1], values[:, 3:])
    assert poses.units == "units"  # DLC 3D is in the calibration board's units, never said


def test_training_says_units_when_the_library_does_not():
    from napari_liftpose.lifting.training import library_units

    assert library_units(Poses(np.zeros((2, 1, 2, 3)), ["a", "b"], units="units")) == "units"
    assert library_units(Poses(np.zeros((2, 1, 2, 3)), ["a", "b"], units="px")) == "units"
    assert library_units(Poses(np.zeros((2, 1, 2, 3)), ["a", "b"], units="cm")) == "cm"


def test_dlc_video_is_the_one_the_table_names(tmp_path, data_dir):
    from napari_liftpose.io.dlc import find_dlc_video

    for name in ("video1.mp4", "video10.mp4", "video10_extra.mp4"):
        (tmp_path / name).write_bytes(b"")
    table = tmp_path / "video10DLC_resnet50_mouseOct30shuffle1_6000.h5"
    assert find_dlc_video(table) == str(tmp_path / "video10.mp4")
    assert find_dlc_video(tmp_path / "video2DLC_resnet50.h5") is None
