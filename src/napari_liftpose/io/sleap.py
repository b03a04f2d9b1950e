"""SLEAP files: labels (``.slp``, through sleap-io) and analysis HDF5 (``.analysis.h5``)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from napari_liftpose.io._hdf5 import (
    decode,
    hdf5_keys,
    is_hdf5,
    open_hdf5,
    read_dataset,
    refuse_external_storage,
)
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

__all__ = [
    "is_sleap_file",
    "is_sleap_analysis_file",
    "read_sleap",
    "read_sleap_analysis",
    "write_sleap_analysis",
]


def is_sleap_file(path: str | Path) -> bool:
    """True for a SLEAP labels file: ``.slp`` suffix and HDF5 contents."""
    path = Path(path)
    return path.suffix.lower() == ".slp" and is_hdf5(path)


def is_sleap_analysis_file(path: str | Path) -> bool:
    """True for a SLEAP analysis HDF5: datasets ``tracks`` and ``node_names``."""
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5") or not is_hdf5(path):
        return False
    return {"tracks", "node_names"} <= hdf5_keys(path)


#: Most values the ``(frames, instances, nodes, 3)`` array of a SLEAP file may hold (8 GiB).
_MAX_VALUES = 2**31


def _check_video_length(path: Path, labels, video: int) -> None:
    """Refuse a video length from the file's JSON that is no count or too big to allocate.

    sleap-io's ``numpy()`` allocates one row per frame of the video as the file *claims* it,
    so a crafted ``videos_json`` shape would raise a TypeError or allocate terabytes.
    """
    try:
        shape = labels.videos[video].shape
        n_frames = None if shape is None else shape[0]
    except Exception:  # a shape that is not a sequence
        n_frames = "?"
    if n_frames is None:
        return
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise PoseFileError(
            path, f"video {video} claims {n_frames!r} frames in its metadata: not a count"
        )
    slots = max(
        [len(labels.tracks), 1] + [len(lf.instances) for lf in labels.labeled_frames]
    )
    values = int(n_frames) * slots * max(len(labels.skeletons[-1].nodes), 1) * 3
    if values > _MAX_VALUES:
        raise PoseFileError(
            path,
            f"video {video} claims {int(n_frames):,} frames in its metadata: "
            f"{values:,} values, more than {_MAX_VALUES:,} would be allocated",
        )


def read_sleap(path: str | Path, video: int = 0) -> Poses:
    """Read a SLEAP ``.slp`` file with sleap-io.

    Tracks become individuals; files without tracks give one individual per instance slot.
    User instances are preferred over predicted ones in the same frame (SLEAP's own rule).
    Frame ``t`` of the result is frame ``t`` of the video.

    Parameters
    ----------
    path : str or Path
        The ``.slp`` file.
    video : int
        Which of the file's videos to read (default: the first).
    """
    import sleap_io as sio

    path = Path(path)
    refuse_external_storage(path)  # before sleap-io reads a dataset stored in another file
    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as err:  # sleap-io raises many types for corrupt files
        raise PoseFileError(path, f"not a readable SLEAP file: {err}") from None
    if not labels.skeletons:
        raise PoseFileError(path, "the SLEAP file has no skeleton")
    if video >= len(labels.videos):
        raise PoseFileError(path, f"video {video} requested, the file has {len(labels.videos)}")
    skeleton = labels.skeletons[-1]  # sleap-io's numpy() uses the last skeleton
    _check_video_length(path, labels, video)
    array = labels.numpy(video=video, untracked=False, return_confidence=True)
    untracked = not labels.tracks or array.shape[1] != len(labels.tracks)
    if untracked:  # no tracks, or a single-instance project: instance slots in frame order
        array = labels.numpy(video=video, untracked=True, return_confidence=True)
        individuals = [f"instance_{i}" for i in range(array.shape[1])]
    else:
        individuals = [t.name for t in labels.tracks]
    if array.shape[1] == 0:
        raise PoseFileError(path, "the SLEAP file has no instances")
    return Poses(
        coords=_exact_coords(labels, video, untracked, array[..., :2]),
        confidence=array[..., 2],
        keypoints=skeleton.node_names,
        edges=skeleton.edge_inds,
        individuals=individuals,
        units="px",
        source=str(path),
        source_format="sleap",
        video=_existing_video(labels.videos[video].filename, path),
        metadata={"video_index": video, "untracked": untracked},
    )


def _exact_coords(labels, video: int, untracked: bool, coords: np.ndarray) -> np.ndarray:
    """``coords`` from sleap-io's ``numpy()`` (float32) with each point's stored float64 value.

    The instances are put in the slots ``numpy()`` used (the same sleap-io helpers), so a
    user-placed point reads back exactly as the file holds it.
    """
    from sleap_io.codecs.numpy import (
        _max_instances_per_frame,
        _tracked_frame_instances,
        _untracked_frame_instances,
    )

    exact = coords.astype(np.float64)
    frames = [lf for lf in labels.labeled_frames if lf.video == labels.videos[video]]
    options = {"user_instances": True, "predicted_instances": True}
    single = _max_instances_per_frame(frames, **options) == 1
    for frame in frames:
        if untracked or single:
            slots = enumerate(
                _untracked_frame_instances(frame, is_single_instance=single, **options)
            )
        else:
            chosen = _tracked_frame_instances(frame, **options)
            slots = ((labels.tracks.index(track), inst) for track, inst in chosen.items())
        for slot, instance in slots:
            if slot < exact.shape[1] and frame.frame_idx < exact.shape[0]:
                exact[frame.frame_idx, slot] = instance.numpy()
    return exact


def _existing_video(filename, labels_path: Path) -> str | None:
    """The video's path if it exists as stored, or beside the labels file; else None."""
    if isinstance(filename, (list, tuple)) or not filename:
        return None
    stored = Path(str(filename).replace("\\", "/"))
    for candidate in (stored, labels_path.parent / stored.name):
        if candidate.is_file() and candidate.resolve() != labels_path.resolve():
            return str(candidate)
    return None


def read_sleap_analysis(path: str | Path) -> Poses:
    """Read a SLEAP analysis HDF5 (``sleap-convert --format analysis``).

    ``tracks`` is stored as ``(tracks, 2, nodes, frames)``; it is read directly with h5py
    (one array, no per-frame objects), which is what makes 100k-frame files open in a second.
    """
    path = Path(path)
    with open_hdf5(path) as f:
        missing = {"tracks", "node_names"} - set(f.keys())
        if missing:
            raise PoseFileError(path, f"not a SLEAP analysis file: missing {sorted(missing)}")
        tracks = read_dataset(f, "tracks")
        if tracks.ndim != 4 or tracks.shape[1] != 2:
            raise PoseFileError(
                path, f"tracks: expected shape (tracks, 2, nodes, frames), got {tracks.shape}"
            )
        coords = tracks.transpose(3, 0, 2, 1)
        confidence = (
            read_dataset(f, "point_scores").transpose(2, 0, 1)
            if "point_scores" in f
            else np.full(coords.shape[:3], np.nan)
        )
        nodes = decode(f["node_names"][:])
        edges = f["edge_inds"][:] if "edge_inds" in f else None
        names = decode(f["track_names"][:]) if "track_names" in f else []
        video_path = f["video_path"][()] if "video_path" in f else None
    if len(names) != coords.shape[1]:
        names = [f"track_{i}" for i in range(coords.shape[1])]
    if isinstance(video_path, bytes):
        video_path = video_path.decode()
    return Poses(
        coords=coords,
        confidence=confidence,
        keypoints=nodes,
        edges=edges,
        individuals=names,
        units="px",
        source=str(path),
        source_format="sleap_analysis",
        video=_existing_video(video_path, path),
    )


def write_sleap_analysis(poses: Poses, path: str | Path) -> Path:
    """Write 2D ``poses`` as a SLEAP analysis HDF5 (the layout ``sleap-convert`` writes).

    Poses read from a SLEAP analysis file are written onto a copy of that file: every dataset
    and attribute is kept as it is (dtype, shape, compression) and only the cells of ``tracks``,
    ``point_scores`` and ``track_occupancy`` that changed are replaced. Poses from anywhere else
    get the full layout of ``sleap-convert --format analysis`` (``tracks (tracks, 2, nodes,
    frames)``, ``track_occupancy``, ``point_scores``, ``instance_scores``, ``tracking_scores``,
    names, edges, ``labels_path``, ``video_path``, ``video_ind``, ``provenance``), which
    ``sleap_io.load_file`` opens.

    The file is built in memory (h5py never writes to the disk, so a full disk cannot crash
    the process), written atomically and read back before it replaces ``path``.

    Raises
    ------
    PoseFileError
        If the poses are 3D or the file could not be written (the old file is kept).
    """
    from napari_liftpose.io.atomic import atomic_write_bytes, hdf5_image

    path = Path(path)
    if poses.n_space != 2:
        raise PoseFileError(path, "SLEAP analysis files hold 2D poses; these poses are 3D")
    source = Path(poses.source) if poses.source else None
    if poses.source_format == "sleap_analysis" and source is not None and source.is_file():
        image = _patched_analysis_image(poses, source)
    else:
        image = None
    if image is None:
        image = hdf5_image(lambda f: _fill_analysis(f, poses))
    return atomic_write_bytes(path, image, verify=lambda tmp: _same_hdf5_layout(tmp, image))


def _patched_analysis_image(poses: Poses, source: Path) -> bytes | None:
    """The bytes of ``source`` with the changed cells of ``poses`` written into them.

    None if the source's ``tracks`` no longer has the poses' shape (a fresh layout is written).
    """
    import io

    import h5py

    from napari_liftpose.io.sleap_writer import changed_mask

    buffer = io.BytesIO(source.read_bytes())
    with h5py.File(buffer, "r+") as f:  # h5py writes into the in-memory copy, never to disk
        tracks = f["tracks"]
        if tracks.shape != poses.coords.transpose(1, 3, 2, 0).shape:
            return None
        old = tracks[()].transpose(3, 0, 2, 1)
        moved = changed_mask(poses.coords, old)
        if moved.any():
            new = np.where(moved[..., None], poses.coords, old)
            tracks[...] = new.transpose(1, 3, 2, 0).astype(tracks.dtype)
            if "track_occupancy" in f:
                _patch_occupancy(f["track_occupancy"], poses, moved.any(axis=2))
        scores = f.get("point_scores")
        if scores is not None and scores.shape == poses.confidence.transpose(1, 2, 0).shape:
            old_scores = scores[()].transpose(2, 0, 1)
            same = (old_scores == poses.confidence) | (
                np.isnan(old_scores) & np.isnan(poses.confidence)
            )
            if not same.all():
                new_scores = np.where(same, old_scores, poses.confidence)
                scores[...] = new_scores.transpose(1, 2, 0).astype(scores.dtype)
    return buffer.getvalue()


def _patch_occupancy(dataset, poses: Poses, touched: np.ndarray) -> None:
    """``track_occupancy (frames, tracks)``: re-computed only where a point changed."""
    if dataset.shape != touched.shape:
        return
    occupancy = dataset[()]
    occupied = np.isfinite(poses.coords).all(axis=-1).any(axis=-1)
    new = np.where(touched, occupied.astype(occupancy.dtype), occupancy)
    if not np.array_equal(new, occupancy):
        dataset[...] = new


def _fill_analysis(f, poses: Poses) -> None:
    """The datasets and attributes ``sleap-io``'s analysis writer (preset ``matlab``) makes."""
    occupied = poses.finite_mask().any(axis=2)  # (frames, tracks)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN, as SLEAP writes
        instance_scores = np.where(occupied, np.nanmean(poses.confidence, axis=2), np.nan)
    node_names = [n.encode() for n in poses.keypoints]
    edges = np.asarray(poses.edges, dtype=np.int64).reshape(-1, 2)
    arrays = {
        "tracks": (poses.coords.transpose(1, 3, 2, 0), ["track", "xy", "node", "frame"]),
        "track_occupancy": (occupied.astype(np.uint8), ["frame", "track"]),
        "point_scores": (poses.confidence.transpose(1, 2, 0), ["track", "node", "frame"]),
        "instance_scores": (instance_scores.T, ["track", "frame"]),
        "tracking_scores": (np.full(occupied.T.shape, np.nan), ["track", "frame"]),
    }
    for name, (data, dims) in arrays.items():
        dataset = f.create_dataset(name, data=data, compression="gzip", compression_opts=9)
        dataset.attrs["dims"] = json.dumps(dims)
    f.create_dataset("track_names", data=np.array([n.encode() for n in poses.individuals]))
    f.create_dataset("node_names", data=np.array(node_names))
    f.create_dataset(
        "edge_names",
        data=np.array([(node_names[a], node_names[b]) for a, b in edges], dtype="S").reshape(-1, 2),
    )
    f.create_dataset("edge_inds", data=edges)
    f.create_dataset("labels_path", data="")
    f.create_dataset("video_path", data=poses.video or "")
    f.create_dataset("video_ind", data=0)
    f.create_dataset("provenance", data=json.dumps({}))
    f.attrs["preset"] = "matlab"
    f.attrs["format"] = "analysis"


def _same_hdf5_layout(tmp: Path, image: bytes) -> None:
    """Re-open the written file: the datasets of ``image`` (shapes, dtypes) and its ``tracks``."""
    import io

    import h5py

    with h5py.File(io.BytesIO(image), "r") as meant, h5py.File(tmp, "r") as written:
        expected, found = _dataset_layout(meant), _dataset_layout(written)
        if found != expected:
            missing = sorted(set(expected) - set(found)) or sorted(set(found) - set(expected))
            raise ValueError(f"datasets differ from what was written: {missing or 'shapes'}")
        if not np.array_equal(meant["tracks"][()], written["tracks"][()], equal_nan=True):
            raise ValueError("tracks differ from what was written")


def _dataset_layout(f) -> dict[str, tuple]:
    import h5py

    layout = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            layout[name] = (obj.shape, obj.dtype.str)

    f.visititems(visit)
    return layout
