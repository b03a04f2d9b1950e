"""Shared helpers for the hostile-input suite: run the installed CLI as a user would."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PICKLE_MARKER_ENV = "LIFTPOSE_PICKLE_MARKER"


def cli_env() -> dict[str, str]:
    """Environment for a CLI subprocess: one torch thread (2-core CI), no display."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("DISPLAY", None)
    return env


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 300):
    """Run ``python -m napari_liftpose ARGS``; returns the CompletedProcess (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "napari_liftpose", *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=cwd,
        timeout=timeout,
    )


def assert_one_line_error(result, *needles: str) -> None:
    """Exit 2, exactly one line on stderr starting with ``error:``, no traceback, needles in it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def leftover_temp_files(folder: Path) -> list[Path]:
    """Hidden temp files our atomic writes leave behind when something went wrong."""
    return sorted(p for p in Path(folder).rglob(".*") if p.is_file() and ".tmp" in p.name)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A path that a crafted pickle would create if it ever ran; tests assert it never exists."""
    return tmp_path / "PWNED"


@pytest.fixture(scope="session")
def fly_small(data_dir):
    """The first 200 frames of the DeepFly3D fly library (30 keypoints, mm) as Poses."""
    import numpy as np

    from napari_liftpose import Poses

    path = data_dir / "fly_df3d_210902" / "points3d.npz"
    with np.load(path) as z:
        return Poses(
            z["points3d"][:200, None],
            [str(k) for k in z["keypoints"]],
            edges=z["edges"],
            units="mm",
            source=str(path),
        )


def nobody_uid() -> int | None:
    """The uid of ``nobody`` when tests run as root (to see permissions bite), else None."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None



@contextlib.contextmanager
def effective_user(uid: int):
    """Run the block with ``uid`` as the effective user (root gets its powers back after)."""
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)


@contextlib.contextmanager
def small_disk(folder: Path, size_kb: int):
    """A real, small file system (a tmpfs of ``size_kb``) on ``folder``; unmounted afterwards.

    Mounting needs root on Linux; the test is skipped, saying why, where it cannot be done.
    """
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs Linux and mount(8)")
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (root needed): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: Path, leave: int) -> None:
    """Fill ``folder``'s file system until only about ``leave`` bytes are free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    (folder / "ballast").write_bytes(b"\0" * max(free - leave, 0))
