"""Write poses back to SLEAP ``.slp`` through sleap-io.

Poses read from a ``.slp`` are written onto a copy of the original labels, changing only what
moved: a moved point of a *user* instance gets its new value (float64, ``visible`` and
``complete`` set) and every other point keeps its exact value and flags; a predicted instance
with a moved point gets a user instance beside it (linked through ``from_predicted``, SLEAP's
own convention for a corrected prediction) holding the prediction's untouched points exactly.
Frames embedded in a ``.pkg.slp`` stay embedded. Poses from anywhere else become a new labels
file of predicted instances.

sleap-io writes through h5py, which can crash the process on a full disk (HDF5 fails inside
``__dealloc__`` and later segfaults). The labels are therefore built and saved by a child
Python process (:func:`_child_main`): a crash there becomes a :class:`PoseFileError`, the
temporary file is removed and the old file kept. The parent then re-opens the temporary file
and checks its frames, instances and embedded images before renaming it into place.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from napari_liftpose.io.atomic import atomic_path
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

__all__ = ["write_sleap", "changed_mask"]

_CHILD_CODE = "from napari_liftpose.io.sleap_writer import _child_main; _child_main()"
_ERRNO = re.compile(r"errno\W+(\d+)", re.IGNORECASE)
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def changed_mask(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Boolean ``(frames, individuals, keypoints)``: True where a point moved, appeared or vanished."""
    same = (new == old) | (np.isnan(new) & np.isnan(old))
    return ~same.all(axis=-1)


def write_sleap(poses: Poses, path: str | Path) -> Path:
    """Write 2D ``poses`` to a SLEAP labels file atomically; returns the path written.

    Raises
    ------
    PoseFileError
        If the poses are 3D, no longer match their SLEAP source, or the file could not be
        written (full disk, unwritable folder): the old file is kept.
    """
    path = Path(path)
    if poses.n_space != 2:
        raise PoseFileError(path, "SLEAP files hold 2D poses; these poses are 3D")
    source = _sleap_source(poses)
    expected: dict = {}
    with atomic_path(path, verify=lambda tmp: _verify(tmp, expected, source)) as tmp:
        expected.update(_save_in_child(poses, tmp))
    return path


def _sleap_source(poses: Poses) -> Path | None:
    """The ``.slp`` the poses were read from, if it is still there."""
    source = Path(poses.source) if poses.source else None
    if poses.source_format == "sleap" and source is not None and source.is_file():
        return source
    return None


# --- the parent: run the child, turn its failures into errors, check what it wrote -------------


def _save_in_child(poses: Poses, tmp: Path) -> dict:
    """Have a child process build the labels and save them to ``tmp``; returns its summary.

    Raises ``OSError`` (turned into "could not write: ..." by :func:`atomic_path`) when the
    child fails or crashes, or the child's :class:`PoseFileError` (a source that no longer
    matches the poses).
    """
    import napari_liftpose

    package_root = str(Path(napari_liftpose.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD_CODE, str(tmp)],
        input=_payload(poses),
        capture_output=True,
        env=env,
        creationflags=flags,
        check=False,
    )
    result = _child_result(proc.stdout)
    if proc.returncode == 0 and "frames" in result:
        return result
    if "path" in result:  # the child refused the poses themselves
        raise PoseFileError(result["path"], result["problem"])
    detail = result.get("problem") or _last_line(proc.stderr)
    raise _child_error(detail, proc.stderr.decode(errors="replace"), proc.returncode, tmp)


def _child_error(detail: str, stderr: str, returncode: int, tmp: Path) -> OSError:
    """The ``OSError`` that says why the child failed: the storage error if there was one."""
    number = _storage_errno(f"{detail} {stderr}", tmp)
    if number is not None:  # HDF5's long message ends in a crash; the errno says it all
        return OSError(number, os.strerror(number))
    if returncode < 0:
        crashed = f"sleap-io crashed ({_signal_name(-returncode)})"
        detail = f"{crashed}: {detail}" if detail else crashed
    return OSError(errno.EIO, detail[:500] or f"sleap-io failed (exit code {returncode})")


def _child_result(stdout: bytes) -> dict:
    """The child's JSON summary (its last line of output), or an empty dict."""
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return result if isinstance(result, dict) else {}


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _storage_errno(text: str, tmp: Path) -> int | None:
    """The errno of a full disk, quota or file-size limit, else None.

    Read from the child's messages (HDF5 writes ``errno = 28``, Python ``[Errno 28]``), or a
    full disk seen from here.
    """
    for match in _ERRNO.finditer(text):
        if int(match.group(1)) in _STORAGE_ERRNOS:
            return int(match.group(1))
    with contextlib.suppress(OSError):
        if shutil.disk_usage(tmp.parent).free == 0:
            return errno.ENOSPC
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _verify(tmp: Path, expected: dict, source: Path | None) -> None:
    """Re-open the written file: same frames and instances as saved, embedded images kept."""
    import sleap_io as sio

    labels = sio.load_slp(str(tmp), open_videos=False)
    found = {
        "frames": len(labels.labeled_frames),
        "instances": sum(len(frame.instances) for frame in labels.labeled_frames),
    }
    wanted = {key: expected.get(key) for key in found}
    if found != wanted:
        raise ValueError(f"expected {wanted}, found {found}")
    if source is not None:
        embedded, kept = _embedded_frames(source), _embedded_frames(tmp)
        if kept != embedded:
            raise ValueError(f"{embedded} embedded images expected, found {kept}")


def _embedded_frames(path: Path) -> int:
    """How many video frames a labels file holds itself (a ``.pkg.slp``)."""
    import h5py

    with h5py.File(path, "r") as f:
        return sum(
            len(group["frame_numbers"])
            for name, group in f.items()
            if name.startswith("video")
            and isinstance(group, h5py.Group)
            and "frame_numbers" in group
        )


# --- the payload: the poses as an in-memory .npz (arrays and a JSON header, no pickles) --------


def _payload(poses: Poses) -> bytes:
    header = {
        "keypoints": list(poses.keypoints),
        "individuals": list(poses.individuals),
        "source": poses.source,
        "source_format": poses.source_format,
        "video": poses.video,
        "video_index": int(poses.metadata.get("video_index", 0)),
        "untracked": bool(poses.metadata.get("untracked", False)),
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        coords=poses.coords,
        confidence=poses.confidence,
        edges=np.asarray(poses.edges, dtype=np.int64).reshape(-1, 2),
        header=np.array(json.dumps(header)),
    )
    return buffer.getvalue()


def _poses_from_payload(data: bytes) -> Poses:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        header = json.loads(str(arrays["header"]))
        return Poses(
            coords=arrays["coords"],
            confidence=arrays["confidence"],
            keypoints=header["keypoints"],
            edges=arrays["edges"],
            individuals=header["individuals"],
            units="px",
            source=header["source"],
            source_format=header["source_format"],
            video=header["video"],
            metadata={"video_index": header["video_index"], "untracked": header["untracked"]},
        )


# --- the child: build the labels and save them -------------------------------------------------


def _child_main() -> None:
    """Entry point of the child process: payload on stdin, temporary path in ``argv[1]``.

    Prints one JSON line: ``{"frames", "instances"}`` on success, ``{"path", "problem"}`` for a
    :class:`PoseFileError`, ``{"problem"}`` for any other failure (exit code 1).
    """
    import sleap_io as sio

    tmp = Path(sys.argv[1])
    try:
        poses = _poses_from_payload(sys.stdin.buffer.read())
        source = _sleap_source(poses)
        labels = _apply_edits(poses, source) if source is not None else _new_labels(poses)
        # embed=None: frames embedded in the source (.pkg.slp) are embedded again, others
        # stay references to their video
        sio.save_slp(labels, str(tmp), embed=None, verbose=False)
        result = {
            "frames": len(labels.labeled_frames),
            "instances": sum(len(frame.instances) for frame in labels.labeled_frames),
        }
    except PoseFileError as err:
        result = {"path": str(err.path), "problem": err.problem}
    except Exception as err:  # reported to the parent, which names the target file
        result = {"problem": f"{type(err).__name__}: {err}".replace("\n", " ")}
    print(json.dumps(result), flush=True)
    sys.exit(0 if "frames" in result else 1)


def _apply_edits(poses: Poses, source: Path):
    """The source's labels with the moved points of ``poses`` applied (see the module doc)."""
    import sleap_io as sio
    from sleap_io.codecs.numpy import _untracked_frame_instances

    from napari_liftpose.io.sleap import read_sleap

    video_index = poses.metadata.get("video_index", 0)
    # videos open: frames embedded in a .pkg.slp are only carried over when they can be read
    labels = sio.load_slp(str(source), open_videos=True)
    original = read_sleap(source, video=video_index)
    if original.coords.shape != poses.coords.shape or original.keypoints != poses.keypoints:
        raise PoseFileError(
            source, "the poses no longer match their SLEAP source (shape or keypoints changed)"
        )
    video = labels.videos[video_index]
    skeleton = labels.skeletons[-1]
    untracked = original.metadata["untracked"]
    moved = changed_mask(poses.coords, original.coords)
    for frame_idx in np.flatnonzero(moved.any(axis=(1, 2))):
        frame = labels.find(video, int(frame_idx), return_new=True)[0]
        if frame not in labels.labeled_frames:
            labels.append(frame)
        if untracked:  # instance slots as read_sleap saw them, before this frame changes
            slots = _untracked_frame_instances(
                frame,
                is_single_instance=original.n_individuals == 1,
                user_instances=True,
                predicted_instances=True,
            )
        for individual in np.flatnonzero(moved[frame_idx].any(axis=-1)):
            if untracked:
                current = slots[individual] if individual < len(slots) else None
                track = current.track if current is not None else None
            else:
                track = labels.tracks[individual]
                candidates = [i for i in frame.instances if i.track == track]
                users = [i for i in candidates if type(i) is sio.Instance]
                current = (users or candidates or [None])[0]
            if current is None or type(current) is not sio.Instance:
                current = _user_instance(current, skeleton, track)
                frame.instances.append(current)
            _move_points(
                current.points, moved[frame_idx, individual], poses.coords[frame_idx, individual]
            )
    return labels


def _user_instance(predicted, skeleton, track):
    """A user instance holding ``predicted``'s points exactly (or no point when it is None)."""
    import sleap_io as sio
    from sleap_io.model.instance import PointsArray

    if predicted is not None:
        skeleton = predicted.skeleton
    points = PointsArray.empty(len(skeleton))  # uninitialised memory: set every field
    points["xy"] = np.nan if predicted is None else predicted.points["xy"]
    points["visible"] = False if predicted is None else predicted.points["visible"]
    points["complete"] = False if predicted is None else predicted.points["complete"]
    points["name"] = skeleton.node_names if predicted is None else predicted.points["name"]
    return sio.Instance(points=points, skeleton=skeleton, track=track, from_predicted=predicted)


def _move_points(points, nodes: np.ndarray, xy: np.ndarray) -> None:
    """Set the ``nodes`` of a user instance's points to ``xy`` (NaN: the point was deleted).

    Moved points become visible, deleted ones invisible; both are marked ``complete`` (placed
    by a human). Other points are not touched.
    """
    placed = np.isfinite(xy).all(axis=-1)
    for node in np.flatnonzero(nodes):
        points["xy"][node] = xy[node] if placed[node] else np.nan
        points["visible"][node] = placed[node]
        points["complete"][node] = True


def _new_labels(poses: Poses):
    """Labels of predicted instances (float64 points, scores from ``poses.confidence``)."""
    import sleap_io as sio

    skeleton = sio.Skeleton(nodes=list(poses.keypoints), edges=[tuple(e) for e in poses.edges])
    tracks = [sio.Track(name) for name in poses.individuals]
    video = sio.Video(filename=poses.video or "unknown.mp4", open_backend=False)
    frames = []
    for t in range(poses.n_frames):
        instances = []
        for i, track in enumerate(tracks):
            points = poses.coords[t, i]
            if not np.isfinite(points).any():
                continue
            scores = np.nan_to_num(poses.confidence[t, i], nan=1.0)
            data = np.column_stack([points, scores]).astype(np.float64)
            instances.append(
                sio.PredictedInstance.from_numpy(data, skeleton=skeleton, track=track, score=1.0)
            )
        if instances:
            frames.append(sio.LabeledFrame(video=video, frame_idx=t, instances=instances))
    return sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=tracks)
