"""SLEAP round trips keep everything the format holds, and survive a full disk.

- ``.pkg.slp``: the embedded images stay in the saved file (byte for byte), also once the
  source is gone.
- ``.slp``: only the moved points change; every other point keeps its exact float64 value and
  its ``visible``/``complete`` flags (user instances, and predictions turned user instances).
- SLEAP analysis ``.h5``: every dataset and attribute of the source is kept; the result opens
  in ``sleap_io.load_file``; poses from elsewhere get SLEAP's full analysis layout.
- A full disk (a real small tmpfs where the machine allows mounting one, and a file-size limit
  everywhere on POSIX) gives a clean error: no crash, the old file intact, no temp file left.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import sleap_io as sio

from napari_liftpose.io import PoseFileError, read_poses, write_poses

from .conftest import cli_env, fill_disk, leftover_temp_files, small_disk

PKG = "sleap_small/minimal_instance.pkg.slp"
ROBOT = "sleap_small/small_robot_minimal.slp"  # user instances, no tracks
TOP = "sleap_anipose_minimal_session/top/minimal_top_proofread"  # predicted instances, a track


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _moved(poses, frame: int, individual: int, node: int, shift=(5.0, -7.0)):
    """A copy of ``poses`` with one point moved by a shift that float32 cannot hold exactly."""
    edited = poses.copy()
    edited.coords[frame, individual, node] += np.asarray(shift) + 1e-9
    return edited


# --- .pkg.slp: embedded images -------------------------------------------------------------


def _embedded(path: Path) -> dict[str, np.ndarray]:
    """Each embedded frame's encoded bytes (trailing padding of fixed-length rows removed)."""
    with h5py.File(path, "r") as f:
        frames = f["video0/frame_numbers"][()]
        rows = [np.asarray(row, dtype=np.uint8) for row in f["video0/video"]]
    return {int(n): np.trim_zeros(row, "b") for n, row in zip(frames, rows, strict=True)}


def _assert_keeps_embedded_images(out: Path, source: Path, copy: Path) -> None:
    before = _embedded(source)
    original_pixels = sio.load_slp(str(source)).videos[0][0]
    copy.unlink()  # the saved file must not need the file it came from
    after = _embedded(out)
    assert after.keys() == before.keys()
    for frame, data in before.items():
        np.testing.assert_array_equal(after[frame], data)
    labels = sio.load_slp(str(out))
    assert labels.videos[0].backend.has_embedded_images
    np.testing.assert_array_equal(labels.videos[0][0], original_pixels)


def test_pkg_slp_keeps_its_embedded_images_without_the_source(tmp_path, data_dir):
    copy = tmp_path / "src" / "minimal_instance.pkg.slp"
    copy.parent.mkdir()
    shutil.copy(data_dir / PKG, copy)
    poses = read_poses(copy)
    out = write_poses(_moved(poses, 0, 0, 0), tmp_path / "x.pkg.slp")
    _assert_keeps_embedded_images(out, data_dir / PKG, copy)


def test_napari_save_of_a_pkg_slp_keeps_its_embedded_images(tmp_path, data_dir):
    pytest.importorskip("napari")
    from napari_liftpose.napari.convert import POSES_KEY, points_layer_data
    from napari_liftpose.napari.writer import write_tracks

    copy = tmp_path / "src" / "minimal_instance.pkg.slp"
    copy.parent.mkdir()
    shutil.copy(data_dir / PKG, copy)
    poses = read_poses(copy)
    data, features = points_layer_data(poses)
    data[0, 1:] += 4.0  # the user drags the first point
    written = write_tracks(
        str(tmp_path / "x.pkg.slp"), data, {"metadata": {POSES_KEY: poses}, "features": features}
    )
    assert written == [str(tmp_path / "x.pkg.slp")]
    _assert_keeps_embedded_images(Path(written[0]), data_dir / PKG, copy)


# --- .slp: only the moved points change ----------------------------------------------------


def _points_by_frame(path: Path) -> dict[int, list]:
    labels = sio.load_slp(str(path), open_videos=False)
    return {lf.frame_idx: list(lf.instances) for lf in labels.labeled_frames}


def _assert_same_points(a, b, skip=()) -> None:
    """Same float64 bits of ``xy`` and same flags (scores too for predictions), but ``skip``."""
    keep = np.ones(len(a.points), bool)
    keep[list(skip)] = False
    np.testing.assert_array_equal(
        a.points["xy"][keep].view(np.uint64), b.points["xy"][keep].view(np.uint64)
    )
    for name in ("visible", "complete"):
        np.testing.assert_array_equal(a.points[name][keep], b.points[name][keep])
    if "score" in a.points.dtype.names and "score" in b.points.dtype.names:
        np.testing.assert_array_equal(a.points["score"][keep], b.points["score"][keep])


@pytest.mark.parametrize("name", [ROBOT, PKG])
def test_user_instance_keeps_untouched_points_and_flags_exactly(tmp_path, data_dir, name):
    source = data_dir / name
    edited = _moved(read_poses(source), 0, 0, 1)
    out = write_poses(edited, tmp_path / ("x" + "".join(Path(name).suffixes)))
    before, after = _points_by_frame(source), _points_by_frame(out)
    assert before.keys() == after.keys()
    first = sorted(before)[0]
    for frame, instances in before.items():
        assert [type(i) for i in after[frame]] == [type(i) for i in instances]
        for slot, (old, new) in enumerate(zip(instances, after[frame], strict=True)):
            moved = frame == first and slot == 0
            _assert_same_points(old, new, skip=[1] if moved else [])
    point = after[first][0].points[1]
    assert point["xy"].tolist() == edited.coords[0, 0, 1].tolist()  # float64, not float32
    assert point["visible"] and point["complete"]
    np.testing.assert_array_equal(read_poses(out).coords, edited.coords)  # read back exactly


def test_prediction_turned_user_instance_keeps_untouched_points(tmp_path, data_dir):
    source = data_dir / f"{TOP}.slp"
    digest = _digest(source)
    edited = _moved(read_poses(source), 10, 0, 3)
    out = write_poses(edited, tmp_path / "top.refined.slp")
    before, after = _points_by_frame(source), _points_by_frame(out)
    assert before.keys() == after.keys()
    for frame, instances in before.items():
        if frame != 10:
            assert len(after[frame]) == len(instances)
            for old, new in zip(instances, after[frame], strict=True):
                _assert_same_points(old, new)
    predicted, user = after[10]
    _assert_same_points(before[10][0], predicted)  # the prediction itself stays as it was
    assert type(user) is sio.Instance and user.from_predicted is predicted
    _assert_same_points(predicted, user, skip=[3])
    assert user.points["xy"][3].tolist() == edited.coords[10, 0, 3].tolist()
    assert user.points["visible"][3] and user.points["complete"][3]
    assert _digest(source) == digest


def test_deleted_point_of_a_user_instance_becomes_invisible(tmp_path, data_dir):
    poses = read_poses(data_dir / ROBOT)
    poses.coords[0, 0, 0] = np.nan
    out = write_poses(poses, tmp_path / "robot.slp")
    before, after = _points_by_frame(data_dir / ROBOT), _points_by_frame(out)
    frame = sorted(before)[0]
    point = after[frame][0].points[0]
    assert not point["visible"]
    _assert_same_points(before[frame][0], after[frame][0], skip=[0])
    assert np.isnan(read_poses(out).coords[0, 0, 0]).all()


def test_point_placed_in_an_empty_frame_is_a_new_user_instance(tmp_path, data_dir):
    poses = read_poses(data_dir / ROBOT)  # labelled frames 0 and 79 only
    poses.coords[5, 0, 0] = [123.456789012345, 98.7654321098765]
    out = write_poses(poses, tmp_path / "robot.slp")
    (instance,) = _points_by_frame(out)[5]
    assert type(instance) is sio.Instance and instance.from_predicted is None
    assert instance.points["xy"][0].tolist() == [123.456789012345, 98.7654321098765]
    assert instance.points["visible"].tolist() == [True, False]
    assert instance.points["complete"].tolist() == [True, False]
    assert np.isnan(instance.points["xy"][1]).all()
    again = read_poses(out)
    np.testing.assert_array_equal(again.coords, poses.coords)


def test_slp_verification_refuses_a_file_that_does_not_hold_what_was_saved(tmp_path, data_dir):
    from napari_liftpose.io.sleap_writer import _verify

    copy = tmp_path / "top.slp"
    shutil.copy(data_dir / f"{TOP}.slp", copy)
    _verify(copy, {"frames": 120, "instances": 120}, None)
    with pytest.raises(ValueError, match="expected"):
        _verify(copy, {"frames": 120, "instances": 121}, None)
    with pytest.raises(ValueError, match="embedded images"):
        _verify(copy, {"frames": 120, "instances": 120}, data_dir / PKG)


def test_a_source_that_no_longer_matches_is_named(tmp_path, data_dir):
    copy = tmp_path / "labels.slp"
    shutil.copy(data_dir / f"{TOP}.slp", copy)
    poses = read_poses(copy)
    shutil.copy(data_dir / ROBOT, copy)  # replaced behind our back by other labels
    with pytest.raises(PoseFileError, match="no longer match") as caught:
        write_poses(_moved(poses, 0, 0, 0), tmp_path / "out.slp")
    assert caught.value.path == copy
    assert not (tmp_path / "out.slp").exists()
    assert leftover_temp_files(tmp_path) == []


# --- SLEAP analysis .h5: every dataset kept --------------------------------------------------


def _datasets(path: Path) -> dict[str, tuple]:
    """Every dataset's value and layout (dtype, shape, compression, chunks, attrs), and the
    root attributes under ``/``."""
    with h5py.File(path, "r") as f:
        found = {"/": dict(f.attrs)}

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                layout = (obj.dtype, obj.shape, obj.compression, obj.chunks, dict(obj.attrs))
                found[name] = (obj[()], *layout)

        f.visititems(visit)
        return found


def _bits(value):
    value = np.asarray(value)
    return value.tobytes() if value.dtype.kind != "O" else repr(value.tolist())


def test_analysis_roundtrip_keeps_every_dataset_and_attribute(tmp_path, data_dir):
    source = data_dir / f"{TOP}.analysis.h5"
    edited = _moved(read_poses(source), 10, 0, 3)
    out = write_poses(edited, tmp_path / "top.refined.analysis.h5")
    before, after = _datasets(source), _datasets(out)
    assert before.keys() == after.keys()
    assert after["/"] == before["/"]
    for name in before.keys() - {"/", "tracks"}:
        value, *layout = before[name]
        assert after[name][1:] == tuple(layout), name  # dtype, shape, compression, chunks, attrs
        assert _bits(after[name][0]) == _bits(value), name
    tracks_before, tracks_after = before["tracks"][0].copy(), after["tracks"][0]
    assert after["tracks"][1:] == before["tracks"][1:]
    np.testing.assert_array_equal(tracks_after[0, :, 3, 10], edited.coords[10, 0, 3])
    tracks_before[0, :, 3, 10] = tracks_after[0, :, 3, 10]
    assert tracks_after.tobytes() == tracks_before.tobytes()  # only the moved cell changed
    labels, original = sio.load_file(str(out)), sio.load_file(str(source))
    assert [lf.frame_idx for lf in labels] == [lf.frame_idx for lf in original]
    assert [len(lf.instances) for lf in labels] == [len(lf.instances) for lf in original]
    assert labels.videos[0].filename == original.videos[0].filename


def test_analysis_from_another_format_has_sleap_layout(tmp_path, data_dir):
    poses = read_poses(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5")
    out = write_poses(poses, tmp_path / "reaching.analysis.h5", format="sleap_analysis")
    with h5py.File(out, "r") as f:
        for name in (
            "tracks", "track_occupancy", "point_scores", "instance_scores", "tracking_scores",
            "track_names", "node_names", "edge_names", "edge_inds",
            "labels_path", "video_path", "video_ind", "provenance",
        ):  # fmt: skip
            assert name in f, name
    labels = sio.load_file(str(out))
    assert labels.skeletons[0].node_names == list(poses.keypoints)
    assert len(labels.labeled_frames) == int(poses.finite_mask().any(axis=(1, 2)).sum())
    again = read_poses(out)
    assert again.source_format == "sleap_analysis"
    assert np.array_equal(again.coords, poses.coords, equal_nan=True)


def test_analysis_verification_refuses_a_different_file(tmp_path, data_dir):
    from napari_liftpose.io.sleap import _same_hdf5_layout

    source = data_dir / f"{TOP}.analysis.h5"
    _same_hdf5_layout(source, source.read_bytes())
    other = tmp_path / "other.analysis.h5"
    write_poses(_moved(read_poses(source), 0, 0, 0), other)
    with pytest.raises(ValueError, match="tracks differ"):
        _same_hdf5_layout(source, other.read_bytes())
    fresh = tmp_path / "fresh.analysis.h5"
    write_poses(
        read_poses(data_dir / "dlc_reaching_2d/reachingDEMO_2D.h5"), fresh, "sleap_analysis"
    )
    with pytest.raises(ValueError, match="datasets differ"):
        _same_hdf5_layout(source, fresh.read_bytes())


# --- full disk -----------------------------------------------------------------------------

_WRITE = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from napari_liftpose.io import PoseFileError, read_poses, write_poses
    source, target, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    poses = read_poses(source)
    poses.coords[3, 0, 1] += 2.5
    if limit:  # a file-size limit: writes past it fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        write_poses(poses, target)
    except PoseFileError as err:
        print(err, file=sys.stderr)
        sys.exit(3)
    """
)


@pytest.mark.parametrize("kind", ["slp", "analysis"])
@pytest.mark.parametrize("disk", ["tmpfs", "file size limit"])
def test_full_disk_is_a_clean_error_and_keeps_the_old_file(tmp_path, data_dir, kind, disk):
    if disk == "file size limit" and sys.platform == "win32":
        pytest.skip("POSIX resource limits")
    source = data_dir / (f"{TOP}.slp" if kind == "slp" else f"{TOP}.analysis.h5")
    name = "out.slp" if kind == "slp" else "out.analysis.h5"
    with contextlib.ExitStack() as stack:
        if disk == "tmpfs":
            folder = stack.enter_context(small_disk(tmp_path / "disk", 256))
            limit = 0
        else:
            folder = tmp_path / "disk"
            folder.mkdir()
            limit = 30_000  # smaller than either file
        old = folder / name
        old.write_bytes(b"the old file" * 100)
        digest = _digest(old)
        if disk == "tmpfs":
            fill_disk(folder, 20_000)
        result = subprocess.run(
            [sys.executable, "-c", _WRITE, str(source), str(old), str(limit)],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
        )
        assert result.returncode == 3, (result.returncode, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and "Segmentation" not in result.stderr
        reason = os.strerror(errno.ENOSPC if disk == "tmpfs" else errno.EFBIG)
        assert result.stderr.strip() == f"{old}: could not write: {reason}; the old file is kept"
        assert _digest(old) == digest
        assert leftover_temp_files(folder) == []
