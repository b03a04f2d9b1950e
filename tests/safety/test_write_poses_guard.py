"""The Python API never overwrites the file poses were read from, however the path is spelled."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_liftpose.io import read_poses, refined_path, write_poses

from .conftest import effective_user, nobody_uid

SOURCES = [
    "sleap_small/small_robot_minimal.slp",
    "sleap_small/minimal_instance.pkg.slp",
    "sleap_anipose_minimal_session/top/minimal_top_proofread.analysis.h5",
    "dlc_reaching_2d/reachingDEMO_2D.h5",
    "dlc_openfield_csv/openfield_dlc_inference_example.csv",
    "fly_df3d_210902/points3d.npz",
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spellings(source: Path) -> dict[str, Path]:
    """The same file named five ways."""
    folder = source.parent
    link_dir = folder.parent / "linked"
    link_dir.symlink_to(folder, target_is_directory=True)
    (folder / "sub").mkdir()
    symlink = folder.parent / f"symlink{source.suffix}"
    symlink.symlink_to(source)
    hardlink = folder.parent / f"hardlink{source.suffix}"
    os.link(source, hardlink)
    return {
        "same": source,
        "dotdot": folder / "sub" / ".." / source.name,
        "symlink": symlink,
        "symlinked folder": link_dir / source.name,
        "hard link": hardlink,
    }


@pytest.mark.parametrize("relative", SOURCES, ids=lambda r: Path(r).name)
def test_write_onto_the_source_goes_beside_it(tmp_path, data_dir, relative):
    original = data_dir / relative
    folder = tmp_path / "data"
    folder.mkdir()
    source = folder / original.name
    shutil.copyfile(original, source)
    before = _digest(source)
    poses = read_poses(source)
    expected = refined_path(source)
    for how, target in _spellings(source).items():
        with pytest.warns(UserWarning, match="kept as it is"):
            written = write_poses(poses, target)
        assert _digest(source) == before, how
        assert Path(written) == expected, how
        again = read_poses(written)
        np.testing.assert_array_equal(again.coords, poses.coords)
        expected.unlink()


def test_refined_names_keep_compound_suffixes():
    assert refined_path("a/x.pkg.slp").name == "x.refined.pkg.slp"
    assert refined_path("x.analysis.h5").name == "x.refined.analysis.h5"
    assert refined_path("x.h5").name == "x.refined.h5"
    assert refined_path("noext").name == "noext.refined"



@pytest.mark.skipif(
    os.name != "posix" or (os.geteuid() == 0 and nobody_uid() is None),
    reason="needs POSIX permissions (as root: a 'nobody' user to drop to)",
)
def test_an_unreadable_file_says_permission_denied(data_dir):
    import tempfile

    from napari_liftpose.io import PoseFileError

    folder = Path(tempfile.mkdtemp(prefix="liftpose-perm-"))
    try:
        source = folder / "top.analysis.h5"
        shutil.copyfile(
            data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.analysis.h5",
            source,
        )
        source.chmod(0)
        folder.chmod(0o755)
        user = effective_user(nobody_uid()) if os.geteuid() == 0 else contextlib.nullcontext()
        with user, pytest.raises(PoseFileError, match="permission denied"):
            read_poses(source)
    finally:
        shutil.rmtree(folder)
