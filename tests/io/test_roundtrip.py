"""Write-then-read round trips for every writable format, on real data."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import sleap_io as sio

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.io._csv import EXACT_FLOATS

FLY = "fly_df3d_210902/points3d.npz"
TOP_SLP = "sleap_anipose_minimal_session/top/minimal_top_proofread.slp"


def _equal(a, b):
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.keypoints == b.keypoints
    assert a.individuals == b.individuals


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".csv"])
def test_3d_roundtrip(tmp_path, data_dir, suffix):
    poses = read_poses(data_dir / FLY)
    path = write_poses(poses, tmp_path / f"fly{suffix}")
    again = read_poses(path)
    _equal(poses, again)
    if suffix != ".csv":
        assert again.edges.tolist() == poses.edges.tolist()
        assert again.fps == poses.fps


def test_3d_roundtrip_several_individuals(tmp_path, data_dir):
    fly = read_poses(data_dir / FLY)
    two = fly.copy(
        coords=np.concatenate([fly.coords, fly.coords + 1], axis=1),
        confidence=np.concatenate([fly.confidence] * 2, axis=1),
        individuals=["a", "b"],
    )
    for suffix in (".npz", ".h5", ".csv"):
        _equal(two, read_poses(write_poses(two, tmp_path / f"two{suffix}")))


@pytest.mark.parametrize(
    "name",
    ["dlc_reaching_2d/reachingDEMO_2D.h5", "dlc_openfield_csv/openfield_dlc_inference_example.csv"],
)
def test_dlc_roundtrip_is_bit_exact(tmp_path, data_dir, name):
    source = data_dir / name
    poses = read_poses(source)
    out = write_poses(poses, tmp_path / f"refined{source.suffix}")
    if source.suffix == ".h5":
        before, after = pd.read_hdf(source), pd.read_hdf(out)
    else:
        before = pd.read_csv(source, header=[0, 1, 2], index_col=0, **EXACT_FLOATS)
        after = pd.read_csv(out, header=[0, 1, 2], index_col=0, **EXACT_FLOATS)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_slp_roundtrip_with_an_edit(tmp_path, data_dir):
    source = data_dir / TOP_SLP
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    poses = read_poses(source)
    edited = poses.copy()
    edited.coords[10, 0, 3] += [5.0, -7.0]
    out = write_poses(edited, tmp_path / "top.refined.slp")
    again = read_poses(out)
    np.testing.assert_array_equal(
        again.coords[10, 0, 3], edited.coords[10, 0, 3].astype(np.float32)
    )
    untouched = np.ones(poses.coords.shape[:3], bool)
    untouched[10, 0] = False
    np.testing.assert_array_equal(again.coords[untouched], poses.coords[untouched])
    labels = sio.load_slp(str(out))
    frame = labels.find(labels.videos[0], 10)[0]
    assert len(frame.user_instances) == 1  # the edit became a user instance
    assert frame.user_instances[0].from_predicted is not None
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest  # source untouched


def test_new_slp_from_other_format(tmp_path, data_dir):
    poses = read_poses(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5")
    again = read_poses(write_poses(poses, tmp_path / "reaching.slp"))
    np.testing.assert_allclose(again.coords, poses.coords, rtol=1e-6)
    assert again.keypoints == poses.keypoints
    assert again.edges.tolist() == poses.edges.tolist()


def test_sleap_analysis_roundtrip_stays_sleap(tmp_path, data_dir):
    source = data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.analysis.h5"
    poses = read_poses(source)
    out = write_poses(poses, tmp_path / "top.refined.analysis.h5")
    again = read_poses(out)
    assert again.source_format == "sleap_analysis"  # SLEAP can read it back
    _equal(poses, again)
    np.testing.assert_array_equal(again.confidence, poses.confidence)
    assert again.edges.tolist() == poses.edges.tolist()


def test_refined_pkg_slp_keeps_its_embedded_images(tmp_path, data_dir):
    source = data_dir / "sleap_small" / "minimal_instance.pkg.slp"
    poses = read_poses(source)
    edited = poses.copy()
    edited.coords[0, 0, 0] += 3.0
    out = write_poses(edited, tmp_path / "minimal_instance.refined.pkg.slp")
    labels = sio.load_slp(str(out))
    image = labels.videos[0][0]
    assert image is not None and image.size > 0
    original = sio.load_slp(str(source)).videos[0][0]
    np.testing.assert_array_equal(image, original)


def _collected_data(tmp_path):
    """A DeepLabCut >= 2.3 labelled-data table: 3-level row index (folder, video, image)."""
    index = pd.MultiIndex.from_tuples(
        [("labeled-data", "vid1", f"img{i:03d}.png") for i in range(4)]
    )
    columns = pd.MultiIndex.from_product(
        [["annotator"], ["nose", "tail"], ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    values = np.arange(16, dtype=float).reshape(4, 4) + 0.125
    values[2, 0:2] = np.nan
    return pd.DataFrame(values, index=index, columns=columns)


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_dlc_labelled_data_roundtrip(tmp_path, suffix):
    frame = _collected_data(tmp_path)
    source = tmp_path / f"CollectedData_annotator{suffix}"
    if suffix == ".h5":
        frame.to_hdf(source, key="df_with_missing")
    else:
        frame.to_csv(source)
    poses = read_poses(source)
    assert poses.keypoints == ["nose", "tail"]
    assert poses.finite_mask().sum() == 7
    out = write_poses(poses, tmp_path / f"refined{suffix}")
    if suffix == ".h5":
        after = pd.read_hdf(out)
    else:
        after = pd.read_csv(out, header=[0, 1, 2], index_col=[0, 1, 2], **EXACT_FLOATS)
    np.testing.assert_array_equal(after.to_numpy(), frame.to_numpy())
    assert list(after.index) == list(frame.index)
