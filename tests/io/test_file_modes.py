"""Files we write get the mode of any new file (0666 less the umask), whatever the writer did.

Temporary files made with ``mkstemp`` (and by some libraries) are 0600; a model or a lifted file
shared on a lab's server must be readable by the group like any other file the user writes.
"""

from __future__ import annotations

import os

import pytest

from napari_liftpose.io import write_poses
from napari_liftpose.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from napari_liftpose.synthetic import walking_insect

UMASKS = [0o022, 0o027, 0o077, 0o002]


@pytest.fixture(params=UMASKS, ids=[f"umask{m:03o}" for m in UMASKS])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_a_temp_file_made_0600_lands_with_the_usual_mode(tmp_path, umask):
    target = tmp_path / "model.safetensors"
    with atomic_path(target) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # as mkstemp does
        os.write(fd, b"weights")
        os.close(fd)
    assert target.read_bytes() == b"weights"
    assert mode(target) == 0o666 & ~umask


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".csv"])
def test_pose_files_get_the_usual_mode(tmp_path, umask, suffix):
    target = write_poses(walking_insect(10, seed=0), tmp_path / f"walk{suffix}")
    assert mode(target) == 0o666 & ~umask


def test_text_and_bytes_get_the_usual_mode(tmp_path, umask):
    assert mode(atomic_write_text(tmp_path / "metrics.json", "{}")) == 0o666 & ~umask
    assert mode(atomic_write_bytes(tmp_path / "blob.bin", b"x")) == 0o666 & ~umask


def test_a_model_file_gets_the_usual_mode(tmp_path, umask):
    torch = pytest.importorskip("torch")
    from napari_liftpose.lifting.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(3)}, {"k": 1})
    assert mode(path) == 0o666 & ~umask
    tensors, meta = load_checkpoint(path)
    assert tensors["w"].tolist() == [1.0, 1.0, 1.0] and meta["k"] == 1


def test_a_replaced_file_keeps_its_own_mode_under_any_umask(tmp_path, umask):
    target = atomic_write_text(tmp_path / "shared.txt", "one")
    target.chmod(0o664)
    atomic_write_text(target, "two")
    assert mode(target) == 0o664 and target.read_text() == "two"
