"""Attacks on what landed: odd things where a pose file should be, crafted SLEAP video metadata.

A folder, a FIFO or a device named like a pose file is said to be what it is (never "file not
found", and a FIFO is never opened, so nothing hangs). A ``.slp`` whose ``videos_json`` claims a
video length that is no count, or so big that sleap-io would allocate terabytes for it, is one
error naming the file, not an unexpected TypeError or MemoryError.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_liftpose.cli.app import main
from napari_liftpose.io import PoseFileError, read_poses


def odd_path(kind: str, folder: Path) -> Path:
    """A path named like a pose file that is a folder, a FIFO or a link to a device."""
    path = folder / f"{kind}.h5"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    return path


ODD = {"folder": "is a folder", "fifo": "not a regular file", "device": "not a regular file"}


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX")
@pytest.mark.parametrize("kind", sorted(ODD))
def test_read_poses_says_what_an_odd_path_is(kind, tmp_path):
    path = odd_path(kind, tmp_path)
    with pytest.raises(PoseFileError) as caught:
        read_poses(path)
    assert ODD[kind] in str(caught.value) and "not found" not in str(caught.value)


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX")
@pytest.mark.parametrize("kind", sorted(ODD))
def test_cli_says_what_an_odd_path_is(kind, tmp_path, capsys):
    path = odd_path(kind, tmp_path)
    code = main(["lift", str(path), str(path), "-o", str(tmp_path / "out.npz"), "-q"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}: {ODD[kind]}"), lines
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("n_frames", [1e300, -5, "x", 10**12, None])
def test_crafted_video_length_is_one_error_naming_the_file(n_frames, data_dir, tmp_path):
    path = tmp_path / "crafted.slp"
    shutil.copyfile(data_dir / "sleap_small" / "small_robot_minimal.slp", path)
    with h5py.File(path, "r+") as f:
        videos = [json.loads(v) for v in f["videos_json"][:]]
        for video in videos:
            video["backend"]["shape"] = None if n_frames is None else [n_frames, 10, 10, 1]
        del f["videos_json"]
        f.create_dataset("videos_json", data=np.array([json.dumps(v).encode() for v in videos]))
    if n_frames is None:  # no shape at all: the labelled frames decide, as before
        assert read_poses(path).n_frames >= 1
        return
    with pytest.raises(PoseFileError, match="claims .* frames") as caught:
        read_poses(path)
    assert caught.value.path == path


@pytest.mark.skipif(os.name != "posix", reason="FIFOs are POSIX")
def test_a_fifo_named_like_the_video_is_not_the_video(data_dir, tmp_path):
    table = tmp_path / "openfield.csv"
    shutil.copyfile(data_dir / "dlc_openfield_csv" / "openfield_dlc_inference_example.csv", table)
    os.mkfifo(tmp_path / "openfield.mp4")  # opening it would wait for a writer forever
    assert read_poses(table).video is None


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_open_video_refuses_what_is_not_a_regular_file(kind, tmp_path):
    from napari_liftpose.napari.video import open_video

    path = tmp_path / "video.mp4"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(OSError, match="not a regular file"):
        open_video(path)


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_load_lifter_refuses_what_is_not_a_regular_file(kind, tmp_path):
    from napari_liftpose.lifting import load_lifter
    from napari_liftpose.lifting.checkpoint import ModelFileError

    path = tmp_path / "model.safetensors"
    if kind == "fifo":
        os.mkfifo(path)  # the napari widget loads models through the library, not the CLI
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="not a regular file") as caught:
        load_lifter(path)
    assert str(path) in str(caught.value)


@pytest.mark.skipif(os.name != "posix", reason="FIFOs are POSIX")
def test_calibration_and_dlc_config_that_are_fifos_are_refused(data_dir, tmp_path):
    from napari_liftpose.io import read_calibration

    calibration, config = tmp_path / "calibration.toml", tmp_path / "config.yaml"
    os.mkfifo(calibration)
    os.mkfifo(config)
    with pytest.raises(PoseFileError, match="not a regular file"):
        read_calibration(calibration)
    table = data_dir / "dlc_openfield_csv" / "openfield_dlc_inference_example.csv"
    with pytest.raises(PoseFileError, match="not a regular file") as caught:
        read_poses(table, config=config)
    assert caught.value.path == config


def _store_externally(path: Path, name: str, target: Path) -> None:
    """Replace dataset ``name`` by one whose values are the bytes of ``target``."""
    with h5py.File(path, "r+") as f:
        shape, dtype = f[name].shape, f[name].dtype
        del f[name]
        f.create_dataset(name, shape=shape, dtype=dtype, external=[(str(target), 0, h5py.h5f.UNLIMITED)])


@pytest.mark.parametrize(
    ("source", "dataset"),
    [
        ("sleap_anipose_minimal_session/top/minimal_top_proofread.analysis.h5", "tracks"),
        ("sleap_anipose_minimal_session/points3d.h5", "tracks"),
        ("sleap_small/small_robot_minimal.slp", "points"),
    ],
)
def test_datasets_stored_in_other_files_are_refused(source, dataset, data_dir, tmp_path):
    secret = tmp_path / "secret"  # any local file (or a FIFO, which would block forever)
    secret.write_bytes(os.urandom(1 << 16))
    path = tmp_path / Path(source).name
    shutil.copyfile(data_dir / source, path)
    _store_externally(path, dataset, secret)
    with pytest.raises(PoseFileError, match="keeps its data in other files") as caught:
        read_poses(path)
    assert caught.value.path == path


def test_a_liftpose_h5_with_external_storage_is_refused(fly_small, tmp_path):
    from napari_liftpose.io import write_poses

    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(1 << 20))
    path = write_poses(fly_small.copy(source=None), tmp_path / "fly.h5")
    with h5py.File(path, "r") as f:
        name = next(k for k in f if isinstance(f[k], h5py.Dataset) and f[k].ndim >= 3)
    _store_externally(path, name, secret)
    with pytest.raises(PoseFileError, match="keeps its data in other files"):
        read_poses(path)


def test_dlc_csv_saved_with_a_bom_reads_like_the_original(data_dir, tmp_path):
    original = data_dir / "dlc_openfield_csv" / "openfield_dlc_inference_example.csv"
    bom = tmp_path / "openfield.csv"  # as Excel's "CSV UTF-8" saves it
    bom.write_bytes(b"\xef\xbb\xbf" + original.read_bytes())
    a, b = read_poses(bom), read_poses(original)
    assert a.keypoints == b.keypoints
    np.testing.assert_array_equal(a.coords, b.coords)
