"""SLEAP files: labels (``.slp``, through sleap-io) and analysis HDF5 (``.analysis.h5``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_liftpose.io._hdf5 import decode, hdf5_keys, is_hdf5, open_hdf5
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
    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as err:  # sleap-io raises many types for corrupt files
        raise PoseFileError(path, f"not a readable SLEAP file: {err}") from None
    if not labels.skeletons:
        raise PoseFileError(path, "the SLEAP file has no skeleton")
    if video >= len(labels.videos):
        raise PoseFileError(path, f"video {video} requested, the file has {len(labels.videos)}")
    skeleton = labels.skeletons[-1]  # sleap-io's numpy() uses the last skeleton
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
        coords=array[..., :2],
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
        tracks = f["tracks"][:]
        if tracks.ndim != 4 or tracks.shape[1] != 2:
            raise PoseFileError(
                path, f"tracks: expected shape (tracks, 2, nodes, frames), got {tracks.shape}"
            )
        coords = tracks.transpose(3, 0, 2, 1)
        confidence = (
            f["point_scores"][:].transpose(2, 0, 1)
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

    Datasets ``tracks (tracks, 2, nodes, frames)``, ``point_scores``, ``track_occupancy``,
    ``node_names``, ``track_names``, ``edge_inds``, ``edge_names``, ``video_path``. The write is
    atomic; returns the path written.
    """
    import h5py

    from napari_liftpose.io.atomic import atomic_path

    path = Path(path)
    if poses.n_space != 2:
        raise PoseFileError(path, "SLEAP analysis files hold 2D poses; these poses are 3D")
    finite = poses.finite_mask()
    names = [n.encode() for n in poses.keypoints]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("tracks", data=poses.coords.transpose(1, 3, 2, 0), compression="gzip")
        f.create_dataset(
            "point_scores", data=poses.confidence.transpose(1, 2, 0), compression="gzip"
        )
        f.create_dataset("track_occupancy", data=finite.any(axis=2).astype(np.uint8))
        f.create_dataset("node_names", data=np.array(names, dtype="S"))
        f.create_dataset(
            "track_names", data=np.array([n.encode() for n in poses.individuals], dtype="S")
        )
        f.create_dataset("edge_inds", data=poses.edges.astype(np.int32))
        f.create_dataset(
            "edge_names",
            data=np.array([[names[a], names[b]] for a, b in poses.edges], dtype="S").reshape(-1, 2),
        )
        f.create_dataset("video_path", data=poses.video or "")
    return path
