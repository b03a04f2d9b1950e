"""Write poses back to SLEAP ``.slp`` through sleap-io.

Poses read from a ``.slp`` are written onto a copy of the original labels: every instance whose
points changed becomes a *user* instance (linked to the predicted one it came from, SLEAP's own
convention for a corrected prediction); everything else is written as sleap-io read it.
Poses from anywhere else become a new labels file of predicted instances.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_liftpose.io.atomic import atomic_path
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

__all__ = ["write_sleap", "changed_mask"]


def changed_mask(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Boolean ``(frames, individuals, keypoints)``: True where a point moved, appeared or vanished."""
    same = (new == old) | (np.isnan(new) & np.isnan(old))
    return ~same.all(axis=-1)


def write_sleap(poses: Poses, path: str | Path) -> Path:
    """Write 2D ``poses`` to a SLEAP labels file atomically; returns the path written."""
    import sleap_io as sio

    path = Path(path)
    if poses.n_space != 2:
        raise PoseFileError(path, "SLEAP files hold 2D poses; these poses are 3D")
    source = Path(poses.source) if poses.source else None
    if poses.source_format == "sleap" and source is not None and source.is_file():
        labels = _apply_edits(poses, source)
    else:
        labels = _new_labels(poses)
    with atomic_path(path) as tmp:
        # keep frames embedded in a .pkg.slp embedded (not a link to a video that may be gone)
        sio.save_slp(labels, str(tmp), verbose=False, restore_original_videos=False)
    return path


def _apply_edits(poses: Poses, source: Path):
    import sleap_io as sio
    from sleap_io.codecs.numpy import _untracked_frame_instances

    from napari_liftpose.io.sleap import read_sleap

    # videos open: frames embedded in a .pkg.slp are only carried over when they can be read
    labels = sio.load_slp(str(source), open_videos=True)
    original = read_sleap(source, video=poses.metadata.get("video_index", 0))
    if original.coords.shape != poses.coords.shape or original.keypoints != poses.keypoints:
        raise PoseFileError(
            source, "the poses no longer match their SLEAP source (shape or keypoints changed)"
        )
    video = labels.videos[poses.metadata.get("video_index", 0)]
    skeleton = labels.skeletons[-1]
    untracked = original.metadata["untracked"]
    changed = changed_mask(poses.coords, original.coords).any(axis=-1)
    for frame_idx, individual in zip(*np.nonzero(changed), strict=True):
        frame = labels.find(video, int(frame_idx), return_new=True)[0]
        if frame not in labels.labeled_frames:
            labels.append(frame)
        if untracked:
            slots = _untracked_frame_instances(
                frame,
                is_single_instance=original.n_individuals == 1,
                user_instances=True,
                predicted_instances=True,
            )
            current = slots[individual] if individual < len(slots) else None
            track = current.track if current is not None else None
        else:
            track = labels.tracks[individual]
            candidates = [i for i in frame.instances if i.track == track]
            users = [i for i in candidates if type(i) is sio.Instance]
            current = (users or candidates or [None])[0]
        points = poses.coords[frame_idx, individual].astype(np.float32)
        if current is not None and type(current) is sio.Instance:
            replacement = sio.Instance.from_numpy(
                points, skeleton=skeleton, track=track, from_predicted=current.from_predicted
            )
            frame.instances[frame.instances.index(current)] = replacement
        else:
            frame.instances.append(
                sio.Instance.from_numpy(
                    points, skeleton=skeleton, track=track, from_predicted=current
                )
            )
    return labels


def _new_labels(poses: Poses):
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
            data = np.column_stack([points, scores]).astype(np.float32)
            instances.append(
                sio.PredictedInstance.from_numpy(data, skeleton=skeleton, track=track, score=1.0)
            )
        if instances:
            frames.append(sio.LabeledFrame(video=video, frame_idx=t, instances=instances))
    return sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=tracks)
