"""SIGINT, SIGTERM and SIGKILL during a write: never a partial file, no temp file left behind.

A subprocess writes a large napari-liftpose ``.h5`` (or DeepLabCut ``.h5``) over a good one
inside :func:`interrupt_guard` and is signalled at several moments: while HDF5 builds the file,
while its bytes are written and checked, after the rename. The target must then hold either the
old bytes or the complete new file; SIGINT/SIGTERM leave no temp file and exit 130/143; the temp
file a SIGKILL leaves is removed by the next write. A swallowed ``KeyboardInterrupt`` (as h5py
and PyTables do inside callbacks) still stops the rename.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from napari_liftpose.io import interrupts
from napari_liftpose.io.atomic import atomic_write
from napari_liftpose.io.dlc import write_dlc
from napari_liftpose.io.liftpose_h5 import read_liftpose_h5, write_liftpose_h5
from napari_liftpose.io.numpy_format import write_npz
from napari_liftpose.poses import Poses
from tests.safety.conftest import cli_env, leftover_temp_files

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

FRAMES = 20_000  # about half a second to build, write and check the file

DRIVER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from napari_liftpose.io.dlc import write_dlc
    from napari_liftpose.io.interrupts import exit_code, interrupt_guard
    from napari_liftpose.io.liftpose_h5 import write_liftpose_h5
    from napari_liftpose.poses import Poses

    target, frames, writer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = np.random.default_rng(1)
    poses = Poses(coords=rng.normal(0, 100, (frames, 1, 20, 3)), keypoints=[f"k{i}" for i in range(20)])
    write = write_dlc if writer == "dlc" else write_liftpose_h5
    with interrupt_guard():
        try:
            print("writing", flush=True)
            write(poses, target)
            print("written", flush=True)
            time.sleep(10)  # the signal must arrive: exit 0 means it was swallowed
        except KeyboardInterrupt:
            sys.exit(exit_code())
    """
)


def _poses(frames: int, seed: int = 0) -> Poses:
    rng = np.random.default_rng(seed)
    return Poses(coords=rng.normal(0, 100, (frames, 1, 20, 3)), keypoints=[f"k{i}" for i in range(20)])


def _signal_during_write(tmp_path: Path, target: Path, signum: int, moment, writer: str):
    """Run the driver and send ``signum`` at ``moment``; returns (rc, stdout, stderr).

    ``moment``: seconds after the write starts (HDF5 still building the file in memory),
    ``"temp"`` (as soon as the temp file exists: its bytes are being written and checked) or
    ``"written"`` (after the rename).
    """
    driver = tmp_path / "signal_driver.py"
    driver.write_text(DRIVER)
    process = subprocess.Popen(
        [sys.executable, str(driver), str(target), str(FRAMES), writer],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert process.stdout.readline().strip() == "writing"
    if moment == "written":
        assert process.stdout.readline().strip() == "written"
    elif moment == "temp":
        deadline = time.monotonic() + 30
        while not leftover_temp_files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.001)
    else:
        time.sleep(moment)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


def _old_or_complete(target: Path, old: bytes, writer: str) -> str:
    """'old' if ``target`` still holds ``old``, 'new' if it holds the complete new file."""
    if target.read_bytes() == old:
        return "old"
    if writer == "dlc":
        import pandas as pd

        assert pd.read_hdf(target).shape == (FRAMES, 20 * 4)
    else:
        assert read_liftpose_h5(target).coords.shape == (FRAMES, 1, 20, 3)
    return "new"


MOMENTS = (0.0, 0.2, "temp", "written")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_sigterm_leave_old_or_complete_file_and_no_temp(tmp_path, signum):
    target = tmp_path / "lifted.h5"
    seen = set()
    for delay in MOMENTS:
        write_liftpose_h5(_poses(10), target)
        old = target.read_bytes()
        rc, stdout, stderr = _signal_during_write(tmp_path, target, signum, delay, "h5")
        assert rc == 128 + signum, (delay, rc, stdout, stderr)
        seen.add(_old_or_complete(target, old, "h5"))
        assert leftover_temp_files(tmp_path) == [], delay
    assert seen == {"old", "new"}  # interrupted before the rename: old; after it: new


def test_sigint_during_a_dlc_write(tmp_path):
    target = tmp_path / "tracksDLC_resnet50.h5"
    for delay in (0.05, "temp"):
        write_dlc(_poses(10), target)
        old = target.read_bytes()
        rc, stdout, stderr = _signal_during_write(tmp_path, target, signal.SIGINT, delay, "dlc")
        assert rc == 130, (delay, rc, stdout, stderr)
        _old_or_complete(target, old, "dlc")
        assert leftover_temp_files(tmp_path) == []


def test_sigkill_leaves_old_or_complete_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "lifted.h5"
    left = []
    for delay in (0.0, "temp", "temp"):
        write_liftpose_h5(_poses(10), target)  # also removes what an earlier kill left
        old = target.read_bytes()
        rc, _, _ = _signal_during_write(tmp_path, target, signal.SIGKILL, delay, "h5")
        assert rc == -signal.SIGKILL
        _old_or_complete(target, old, "h5")
        left += leftover_temp_files(tmp_path)
    assert left  # killed while the temp file existed: it stays...
    write_liftpose_h5(_poses(10), target)  # ...until the next write
    assert leftover_temp_files(tmp_path) == []


def test_a_swallowed_interrupt_stops_the_rename(tmp_path):
    """h5py and PyTables swallow a KeyboardInterrupt raised in a callback; it still counts."""
    target = tmp_path / "poses.npz"
    write_npz(_poses(5), target)
    old = target.read_bytes()

    def write_and_swallow(tmp: Path) -> None:
        tmp.write_bytes(b"new content")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises here
        except KeyboardInterrupt:
            pass  # what "Exception ignored in ..." amounts to

    try:
        with interrupts.interrupt_guard(), pytest.raises(KeyboardInterrupt):
            atomic_write(target, write_and_swallow)
        assert interrupts.pending() == signal.SIGINT
        assert interrupts.exit_code() == 130
    finally:
        interrupts.clear()
    assert target.read_bytes() == old
    assert leftover_temp_files(tmp_path) == []


def test_guard_restores_handlers_and_maps_sigterm(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    try:
        with interrupts.interrupt_guard(), pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert interrupts.pending() == signal.SIGTERM
        assert interrupts.exit_code() == 143
    finally:
        interrupts.clear()
    assert signal.getsignal(signal.SIGTERM) is before
    assert interrupts.pending() is None


def test_guard_does_nothing_outside_the_main_thread():
    before = signal.getsignal(signal.SIGINT)
    errors = []

    def worker() -> None:
        try:
            with interrupts.interrupt_guard():
                errors.append(signal.getsignal(signal.SIGINT) is not before)
        except Exception as err:  # signal.signal would raise ValueError here
            errors.append(err)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert errors == [False]


def test_a_save_the_interrupt_asks_for_may_publish(tmp_path):
    """The best model after Ctrl+C: ``set_aside`` lets that one write through."""
    target = tmp_path / "best.npz"
    try:
        with interrupts.interrupt_guard():
            interrupts.record(signal.SIGINT)
            with pytest.raises(KeyboardInterrupt):
                write_npz(_poses(5), target)
            assert not target.exists()
            with interrupts.set_aside() as signum:
                assert signum == signal.SIGINT and interrupts.pending() is None
                write_npz(_poses(5), target)
            assert interrupts.pending() == signal.SIGINT
        write_npz(_poses(6), tmp_path / "later.npz")  # outside a guard: no longer blocks
        assert interrupts.pending() == signal.SIGINT  # still readable for the exit code
    finally:
        interrupts.clear()
    assert target.exists() and leftover_temp_files(tmp_path) == []


@pytest.mark.parametrize("stage", ["build", "verify"])
def test_an_error_that_hides_an_interrupt_surfaces_as_the_interrupt(tmp_path, stage):
    """h5py turns a KeyboardInterrupt raised in its Cython code into a TypeError (seen in CI)."""
    from napari_liftpose.io.atomic import atomic_write_bytes, hdf5_image

    def fill(_file) -> None:
        interrupts.record(signal.SIGTERM)  # the handler ran; its exception came back mangled
        raise TypeError("Operation not defined for data type class")

    def verify(_tmp) -> None:
        interrupts.record(signal.SIGTERM)
        raise TypeError("Operation not defined for data type class")

    target = tmp_path / "lifted.h5"
    target.write_bytes(b"old")
    try:
        with interrupts.interrupt_guard(), pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            if stage == "build":
                hdf5_image(fill)
            else:
                atomic_write_bytes(target, b"new", verify=verify)
    finally:
        interrupts.clear()
    assert target.read_bytes() == b"old"
    assert leftover_temp_files(tmp_path) == []


def test_an_error_with_nothing_pending_stays_what_it_is():
    from napari_liftpose.io.atomic import hdf5_image

    def fill(_file) -> None:
        raise TypeError("a real bug")

    with interrupts.interrupt_guard(), pytest.raises(TypeError, match="a real bug"):
        hdf5_image(fill)
