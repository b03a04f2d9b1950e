"""Hostile movement ``.nc`` files: one clear error naming the file, never a hang, a read of
another file, a huge allocation or a traceback from the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_liftpose.io import PoseFileError, read_poses, write_poses
from tests.safety.conftest import assert_one_line_error, run_cli

FLY = "fly_df3d_210902/points3d.npz"


@pytest.fixture
def nc_file(tmp_path, data_dir) -> Path:
    fly = read_poses(data_dir / FLY).select_frames(slice(0, 40))
    return write_poses(fly.copy(source=None), tmp_path / "fly.nc")


def _replace(path: Path, name: str, **create) -> None:
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, **create)


def test_position_stored_in_another_file_is_refused(nc_file, tmp_path):
    secret = tmp_path / "secret"  # any local file, or a FIFO that would block forever
    secret.write_bytes(os.urandom(1 << 16))
    with h5py.File(nc_file, "r") as f:
        shape, dtype = f["position"].shape, f["position"].dtype
    _replace(nc_file, "position", shape=shape, dtype=dtype, external=[(str(secret), 0, 1 << 16)])
    with pytest.raises(PoseFileError, match="keeps its data in other files") as caught:
        read_poses(nc_file)
    assert caught.value.path == nc_file


def test_a_few_bytes_claiming_a_huge_position_are_not_allocated(nc_file):
    _replace(nc_file, "position", shape=(10**7, 3, 30, 100), dtype="f8", chunks=(1, 3, 30, 100))
    with pytest.raises(PoseFileError, match="refusing to allocate"):
        read_poses(nc_file)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("position", np.array([b"x"] * 6).reshape(1, 3, 2, 1), "position: expected numbers"),
        ("confidence", np.ones((40, 30)), "confidence: expected dimensions"),
        ("keypoint", np.arange(30), "keypoint: expected a 1-D array of names"),
        ("space", np.array([b"x", b"y", b"w"]), r"space: expected coordinates \['x', 'y', 'z'\]"),
    ],
)
def test_malformed_variables_are_one_error(nc_file, name, data, message):
    _replace(nc_file, name, data=data)
    with pytest.raises(PoseFileError, match=message) as caught:
        read_poses(nc_file)
    assert caught.value.path == nc_file


def test_truncated_file_is_one_error(nc_file):
    data = nc_file.read_bytes()
    nc_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoseFileError, match="truncated or corrupt"):
        read_poses(nc_file)


def test_cli_says_it_in_one_line(nc_file, tmp_path):
    nc_file.write_bytes(nc_file.read_bytes()[:2000])
    model = tmp_path / "none.safetensors"
    model.write_bytes(b"\0" * 16)
    result = run_cli("lift", model, nc_file, tmp_path / "out.npz")
    assert_one_line_error(result)
    assert not (tmp_path / "out.npz").exists()
