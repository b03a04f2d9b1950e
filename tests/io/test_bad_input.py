"""Bad input gets an error that names the file and the problem."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from napari_liftpose.io import PoseFileError, read_poses, write_poses
from napari_liftpose.io.errors import PoseFileNotFoundError


def _raises(path, *words, **kwargs):
    with pytest.raises(PoseFileError) as info:
        read_poses(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path))
    for word in words:
        assert word in message
    return info.value


def test_missing_file(tmp_path):
    error = _raises(tmp_path / "gone.slp", "file not found")
    assert isinstance(error, FileNotFoundError) and isinstance(error, PoseFileNotFoundError)


def test_wrong_extension(tmp_path):
    path = tmp_path / "tracks.txt"
    path.write_text("hello")
    _raises(path, "unsupported file type '.txt'")


def test_truncated_hdf5(tmp_path, data_dir):
    source = data_dir / "dlc_reaching_2d" / "reachingDEMO_2D.h5"
    path = tmp_path / "truncated.h5"
    path.write_bytes(source.read_bytes()[:5000])
    _raises(path, "truncated or corrupt")


def test_truncated_slp(tmp_path, data_dir):
    source = data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp"
    path = tmp_path / "truncated.slp"
    path.write_bytes(source.read_bytes()[:3000])
    _raises(path, "not a readable SLEAP file")


def test_csv_that_is_not_a_dlc_table(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n")
    _raises(path, "DeepLabCut table", "scorer")


def test_explicit_format_wins_and_explains(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n")
    _raises(path, "not a DeepLabCut table", format="dlc")
    _raises(path, "unknown format 'excel'", format="excel")


def test_nan_only_tracks(tmp_path):
    path = tmp_path / "empty.npz"
    np.savez(path, points=np.full((5, 3, 2), np.nan), keypoints=np.array(["a", "b", "c"]))
    _raises(path, "no finite points")


def test_skeleton_naming_unknown_keypoints(tmp_path, data_dir):
    shutil.copy(data_dir / "dlc_reaching_2d" / "reachingDEMO_2D.h5", tmp_path / "video1DLC.h5")
    (tmp_path / "config.yaml").write_text("skeleton:\n- [nose, wing]\n- [nose, antenna]\n")
    with pytest.raises(PoseFileError) as info:
        read_poses(tmp_path / "video1DLC.h5")
    assert str(info.value).startswith(str(tmp_path / "config.yaml"))
    assert "['antenna', 'wing']" in str(info.value)


def test_npz_without_names(tmp_path):
    path = tmp_path / "nonames.npz"
    np.savez(path, points=np.zeros((5, 3, 2)))
    _raises(path, "no 'keypoints'")


def test_npz_with_duplicate_names(tmp_path):
    path = tmp_path / "dupes.npz"
    np.savez(path, points=np.zeros((5, 3, 2)), keypoints=np.array(["a", "b", "a"]))
    _raises(path, "duplicates ['a']")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_destination_leaves_nothing(tmp_path, data_dir):
    poses = read_poses(data_dir / "fly_df3d_210902/points3d.npz")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(OSError):
        write_poses(poses, folder / "out.npz")
    assert list(folder.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path, data_dir):
    poses = read_poses(data_dir / "fly_df3d_210902/points3d.npz")
    with pytest.raises(PoseFileError, match="SLEAP files hold 2D poses"):
        write_poses(poses, tmp_path / "out.slp")
    assert list(tmp_path.iterdir()) == []


def test_write_error_keeps_existing_file(tmp_path, data_dir):
    poses = read_poses(data_dir / "fly_df3d_210902/points3d.npz")
    target = tmp_path / "out.slp"
    target.write_bytes(b"precious")
    with pytest.raises(PoseFileError):
        write_poses(poses, target)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.slp"]


def test_config_that_is_not_a_mapping(tmp_path, data_dir):
    shutil.copy(data_dir / "dlc_reaching_2d" / "reachingDEMO_2D.h5", tmp_path / "v1DLC.h5")
    (tmp_path / "config.yaml").write_text("- just\n- a list\n")
    with pytest.raises(PoseFileError, match="expected a YAML mapping"):
        read_poses(tmp_path / "v1DLC.h5")
