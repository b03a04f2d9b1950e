"""Atomic means verified: a failed write never replaces a good file nor leaves a temp file.

Three ways to make a write fail, for every pose writer:

- a real, nearly full file system (a small tmpfs; needs root, skipped otherwise), in a
  subprocess so that a crash of the HDF5 library (a segmentation fault) is seen as one;
- a file-size limit (``RLIMIT_FSIZE``: the write fails with EFBIG, no root needed);
- errors injected at each later stage: fsync fails, the storage loses the file's second half
  (the re-read check must see it), the rename fails.

And stale temp files: one left by a killed process is removed by the next write; one of a
process that still runs (a concurrent write) is not.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from napari_liftpose.io.anipose import write_anipose_csv
from napari_liftpose.io.dlc import write_dlc
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.io.liftpose_h5 import write_liftpose_h5
from napari_liftpose.io.numpy_format import write_npz
from napari_liftpose.poses import Poses

from .conftest import cli_env, fill_disk, leftover_temp_files, small_disk

# name: (module, function, suffix, space)
WRITERS = {
    "npz": ("napari_liftpose.io.numpy_format", "write_npz", ".npz", 3),
    "liftpose_h5": ("napari_liftpose.io.liftpose_h5", "write_liftpose_h5", ".h5", 3),
    "dlc_h5": ("napari_liftpose.io.dlc", "write_dlc", ".h5", 2),
    "dlc_csv": ("napari_liftpose.io.dlc", "write_dlc", ".csv", 2),
    "anipose_csv": ("napari_liftpose.io.anipose", "write_anipose_csv", ".csv", 3),
}
WRITE = {
    "npz": write_npz,
    "liftpose_h5": write_liftpose_h5,
    "dlc_h5": write_dlc,
    "dlc_csv": write_dlc,
    "anipose_csv": write_anipose_csv,
}
SEGFAULT = (-11, 139)

DRIVER = textwrap.dedent(
    """
    import importlib, resource, signal, sys
    import numpy as np
    from napari_liftpose.io.errors import PoseFileError
    from napari_liftpose.poses import Poses

    module, function, space, frames, target, limit = sys.argv[1:]
    write = getattr(importlib.import_module(module), function)
    rng = np.random.default_rng(int(frames))
    poses = Poses(
        coords=rng.normal(0, 100, (int(frames), 1, 20, int(space))),
        confidence=rng.random((int(frames), 1, 20)),
        keypoints=[f"kp{i}" for i in range(20)],
    )
    if int(limit):  # files may not grow beyond `limit` bytes: writes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
    try:
        write(poses, target)
    except PoseFileError as err:
        print(err)
        sys.exit(2)
    print("written")
    """
)


def poses_for(writer: str, frames: int, seed: int = 0) -> Poses:
    """Random poses of the writer's space: ``frames`` x 1 individual x 20 keypoints."""
    space = WRITERS[writer][3]
    rng = np.random.default_rng(seed)
    return Poses(
        coords=rng.normal(0, 100, (frames, 1, 20, space)),
        confidence=rng.random((frames, 1, 20)),
        keypoints=[f"kp{i}" for i in range(20)],
    )


def run_writer(tmp_path: Path, writer: str, frames: int, target: Path, limit: int = 0):
    """Write ``frames`` random frames to ``target`` with ``writer`` in a subprocess."""
    driver = tmp_path / "write_driver.py"
    driver.write_text(DRIVER)
    module, function, _, space = WRITERS[writer]
    args = [module, function, str(space), str(frames), str(target), str(limit)]
    return subprocess.run(
        [sys.executable, str(driver), *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )


def assert_refused_and_kept(result, target: Path, old: bytes) -> None:
    """No crash, a PoseFileError naming the target, the old bytes in place, no temp file."""
    assert result.returncode not in SEGFAULT, "the writer crashed (segmentation fault)"
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    message = result.stdout.strip()
    assert message.startswith(f"{target}: could not write:"), message
    assert message.endswith("the old file is kept"), message
    assert target.read_bytes() == old
    assert leftover_temp_files(target.parent) == []


# --- (a) a real, nearly full file system -------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 4 MiB tmpfs mounted for the test (root only); unmounted afterwards."""
    with small_disk(tmp_path / "small_fs", 4096) as folder:
        yield folder


@pytest.mark.parametrize("writer", WRITERS)
def test_full_disk_keeps_the_old_file(small_fs, tmp_path, writer):
    target = small_fs / f"poses{WRITERS[writer][2]}"
    assert run_writer(tmp_path, writer, 20, target).returncode == 0
    old = target.read_bytes()
    fill_disk(small_fs, leave=64 * 1024)
    result = run_writer(tmp_path, writer, 2000, target)
    assert_refused_and_kept(result, target, old)
    assert "No space left on device" in result.stdout


# --- (b) injected write errors -------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("writer", WRITERS)
def test_write_error_keeps_the_old_file(tmp_path, writer):
    target = tmp_path / "out" / f"poses{WRITERS[writer][2]}"
    assert run_writer(tmp_path, writer, 20, target).returncode == 0
    old = target.read_bytes()
    result = run_writer(tmp_path, writer, 2000, target, limit=64 * 1024)
    assert_refused_and_kept(result, target, old)
    assert "File too large" in result.stdout


def _fsync_fails(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    return os.strerror(errno.ENOSPC)


def _second_half_lost(monkeypatch):
    """The storage silently drops the second half of the file when it is flushed."""
    fsync = os.fsync

    def lossy_fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".tmp" in Path(name).name:
            os.truncate(name, os.stat(name).st_size // 2)
        fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(os, "fsync", lossy_fsync)
    return "does not read back as written"


def _rename_fails(monkeypatch):
    def replace(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", replace)
    return os.strerror(errno.EROFS)


STAGES = {"fsync": _fsync_fails, "data lost": _second_half_lost, "rename": _rename_fails}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("writer", WRITERS)
def test_failure_at_each_stage_keeps_the_old_file(tmp_path, monkeypatch, writer, stage):
    target = tmp_path / f"poses{WRITERS[writer][2]}"
    WRITE[writer](poses_for(writer, 20), target)
    old = target.read_bytes()
    reason = STAGES[stage](monkeypatch)
    with pytest.raises(PoseFileError) as caught:
        WRITE[writer](poses_for(writer, 300, seed=1), target)
    monkeypatch.undo()
    assert caught.value.path == target
    assert str(caught.value).startswith(f"{target}: could not write: ")
    assert reason in str(caught.value)
    assert str(caught.value).endswith("the old file is kept")
    assert target.read_bytes() == old
    assert leftover_temp_files(tmp_path) == []


def test_failed_first_write_says_nothing_was_written(tmp_path, monkeypatch):
    _rename_fails(monkeypatch)
    target = tmp_path / "new.npz"
    with pytest.raises(PoseFileError, match="nothing was written$"):
        write_npz(poses_for("npz", 10), target)
    assert not target.exists() and leftover_temp_files(tmp_path) == []


def test_read_only_folder_is_a_pose_file_error(tmp_path):
    if os.geteuid() == 0:  # root writes anyway; a read-only bind is what we have then
        pytest.skip("root ignores folder permissions")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PoseFileError, match="Permission denied; nothing was written"):
            write_liftpose_h5(poses_for("liftpose_h5", 10), folder / "x.h5")
    finally:
        folder.chmod(0o700)


def test_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "poses.npz"
    write_npz(poses_for("npz", 5), target)
    target.chmod(0o640)
    write_npz(poses_for("npz", 6), target)
    assert target.stat().st_mode & 0o777 == 0o640


# --- (c) stale temp files ----------------------------------------------------------------

_LEAVE_TEMP = textwrap.dedent(
    """
    import os, signal, sys
    from napari_liftpose.io.atomic import atomic_path
    context = atomic_path(sys.argv[1])
    tmp = context.__enter__()
    tmp.write_bytes(b"half a file" * 1000)
    print(tmp.name, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.readline()  # stay alive until told
    """
)


def _start_writer_that_stops(tmp_path: Path, target: Path, how: str) -> subprocess.Popen:
    script = tmp_path / "leave_temp.py"
    script.write_text(_LEAVE_TEMP)
    return subprocess.Popen(
        [sys.executable, str(script), str(target), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def test_temp_file_of_a_killed_process_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "poses.npz"
    killed = _start_writer_that_stops(tmp_path, target, "kill")
    name = killed.stdout.readline().strip()
    assert killed.wait(timeout=60) == -9
    assert [p.name for p in leftover_temp_files(tmp_path)] == [name]
    assert f".{target.name}." in name and str(killed.pid) in name  # traceable to its process
    write_npz(poses_for("npz", 10), target)
    assert leftover_temp_files(tmp_path) == []


def test_temp_file_of_a_running_process_is_kept(tmp_path):
    target = tmp_path / "poses.npz"
    running = _start_writer_that_stops(tmp_path, target, "wait")
    try:
        name = running.stdout.readline().strip()
        write_npz(poses_for("npz", 10), target)
        assert [p.name for p in leftover_temp_files(tmp_path)] == [name]
    finally:
        running.kill()
        running.wait(timeout=60)
    write_npz(poses_for("npz", 10), target)  # now its writer is gone: cleaned up
    assert leftover_temp_files(tmp_path) == []
