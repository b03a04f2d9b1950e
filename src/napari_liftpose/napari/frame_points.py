"""A Points layer that shows one frame of its poses, rewritten in place as the time slider moves.

The 3D view's pose layers are made this way. napari slices a Points layer, redraws its thumbnail
and measures its extent over *all* its rows at every time step: ~15 ms per step for a layer of
100k frames x 2 animals x 20 keypoints, for a view that only ever shows one frame. So the layer
holds one row per (individual, keypoint), hidden (``shown=False``) where the point is missing, and
two hidden *anchor* rows at the first and last frame, spanning every frame's extent, so that the
3D view's time slider covers the whole recording and "reset view" frames all of it.

All frames live in ``metadata["poses"]`` (live re-lifting writes there, then redraws the frame;
:func:`keep_edits` writes points the user moves or deletes in the 3D view there too); this
plugin's writer and *Export 3D* write those poses, not the rows on screen. The layer has no Qt
dependency; the 3D view calls :func:`show_frame` when its time slider moves. (With napari's
experimental asynchronous slicing a draw could mix two frames' rows; it is off by default.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_liftpose.napari.convert import ONE_FRAME_KEY, POSES_KEY, napari_order, pose_at
from napari_liftpose.napari.layers import pose_points_kwargs
from napari_liftpose.poses import Poses

__all__ = [
    "one_frame_points_tuple",
    "show_frame",
    "shown_frame",
    "widen_to",
    "keep_edits",
]

N_ANCHORS = 2


def _pose_rows(poses: Poses) -> tuple[np.ndarray, np.ndarray]:
    """Individual and keypoint index of each pose row (rows come individual by individual)."""
    return np.divmod(np.arange(poses.n_individuals * poses.n_keypoints), poses.n_keypoints)


def _laid_out(layer, poses: Poses) -> bool:
    """True while the layer has its pose rows and anchors (the user may add or delete points)."""
    return len(layer.data) == poses.n_individuals * poses.n_keypoints + N_ANCHORS


def one_frame_points_tuple(poses: Poses, name: str, frame: int = 0) -> tuple:
    """The Points layer-data tuple of a layer showing ``frame`` of ``poses`` (all frames kept)."""
    n_space = poses.n_space
    individual, keypoint = _pose_rows(poses)
    n_rows = len(individual)
    # anchors: hidden rows at the first and last frame, at the corners of every frame's extent
    anchor = np.zeros(N_ANCHORS, dtype=np.int64)
    flat = poses.coords.reshape(-1, n_space)
    finite = flat[np.isfinite(flat).all(-1)]
    low = finite.min(0) if len(finite) else np.zeros(n_space)
    high = finite.max(0) if len(finite) else np.zeros(n_space)
    data = np.zeros((n_rows + N_ANCHORS, 1 + n_space))
    data[:n_rows, 1:] = napari_order(low)
    data[n_rows:, 0] = [0, max(0, poses.n_frames - 1)]
    data[n_rows:, 1:] = napari_order(np.stack([low, high]))
    features = pd.DataFrame(
        {
            "individual": pd.Categorical.from_codes(
                np.concatenate([individual, anchor]), categories=poses.individuals
            ),
            "keypoint": pd.Categorical.from_codes(
                np.concatenate([keypoint, anchor]), categories=poses.keypoints
            ),
        }
    )
    shown = np.zeros(len(data), dtype=bool)
    _write_frame(data, shown, poses, frame)
    layer_kwargs = pose_points_kwargs(poses, features, name)  # looks like the 2D layer
    layer_kwargs["shown"] = shown
    layer_kwargs["metadata"][ONE_FRAME_KEY] = True
    return data, layer_kwargs, "points"


def _write_frame(data: np.ndarray, shown: np.ndarray, poses: Poses, frame: int) -> None:
    """Put ``frame`` of ``poses`` into the layer rows ``data`` and their ``shown`` mask, in place."""
    pose = pose_at(poses, frame).reshape(-1, poses.n_space)
    finite = np.isfinite(pose).all(-1)
    n_rows = len(pose)
    data[:n_rows, 0] = min(max(frame, 0), max(poses.n_frames - 1, 0))  # inside the anchors
    rows = np.nonzero(finite)[0]
    data[rows, 1:] = pose[rows]  # a hidden point keeps its last position (inside the extent)
    shown[:n_rows] = finite
    shown[n_rows:] = False


def shown_frame(layer) -> int:
    """The frame a one-frame layer shows now."""
    return int(round(float(layer.data[0, 0]))) if len(layer.data) else 0


def show_frame(layer, frame: int) -> None:
    """Show ``frame`` of the layer's poses: rows and visibility rewritten in place, then redrawn.

    The extent pass is skipped: every frame lies inside the anchors' extent. If the user added or
    deleted rows (the layer is editable like any Points layer), its rows are laid out again.
    """
    poses: Poses = layer.metadata[POSES_KEY]
    if not _laid_out(layer, poses):
        data, kwargs, _ = one_frame_points_tuple(poses, layer.name, int(frame))
        layer.data = data
        layer.features = kwargs["features"]
        layer.face_color = kwargs["face_color"]
        layer.shown = kwargs["shown"]
        return
    _write_frame(layer.data, layer.shown, poses, int(frame))
    layer.refresh(extent=False)


def widen_to(layer, coords: np.ndarray) -> None:
    """Grow the anchors so that ``coords`` (pose order ``x, y[, z]``, any leading shape) lie inside.

    Live re-lifting can move a frame beyond the extent the layer was made with; *reset view* and
    the 3D camera use that extent.
    """
    poses: Poses = layer.metadata[POSES_KEY]
    n_rows = poses.n_individuals * poses.n_keypoints
    points = napari_order(np.asarray(coords, dtype=float).reshape(-1, poses.n_space))
    points = points[np.isfinite(points).all(-1)]
    if len(points) == 0 or not _laid_out(layer, poses):
        return  # nothing to include, or the rows are laid out again at the next frame anyway
    low, high = layer.data[n_rows, 1:], layer.data[n_rows + 1, 1:]
    new_low, new_high = np.minimum(low, points.min(0)), np.maximum(high, points.max(0))
    if (new_low < low).any() or (new_high > high).any():
        layer.data[n_rows, 1:], layer.data[n_rows + 1, 1:] = new_low, new_high
        layer.refresh()  # with the extent this time


def keep_edits(layer) -> None:
    """Write 3D points the user moves or deletes in the view into the layer's poses.

    A moved point takes its new position in that frame, a deleted one becomes missing (NaN).
    Hidden rows cannot be moved (they are not drawn), so only points present in the poses are
    written back. Adding a point is refused with a warning (a 3D point has no keypoint to be;
    points are placed in 2D, with the keypoint chooser of :mod:`.keypoints`).
    """

    def refuse_add(coords) -> None:
        from napari.utils.notifications import show_warning

        show_warning(
            f"{layer.name}: points are not added in the 3D view; place them on the 2D tracks "
            "with the keypoint chooser (moving and deleting 3D points works)"
        )

    layer.add = refuse_add  # napari's add mode calls layer.add(coords)

    def on_data(event) -> None:
        poses: Poses = layer.metadata[POSES_KEY]
        individual, keypoint = _pose_rows(poses)
        n_rows = len(individual)
        frame = shown_frame(layer)
        action = str(getattr(event, "action", ""))
        if not 0 <= frame < poses.n_frames or len(layer.data) < n_rows:
            return
        if action == "removing":
            rows = np.array([r for r in (event.data_indices or ()) if 0 <= r < n_rows], dtype=int)
            poses.coords[frame, individual[rows], keypoint[rows]] = np.nan
        elif action == "changed" and _laid_out(layer, poses):
            present = np.isfinite(poses.coords[frame].reshape(n_rows, -1)).all(-1)
            rows = np.nonzero(present)[0]
            moved = napari_order(layer.data[rows, 1:])  # the reordering is its own inverse
            poses.coords[frame, individual[rows], keypoint[rows]] = moved

    layer.events.data.connect(on_data)
