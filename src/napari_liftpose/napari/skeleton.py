"""Skeleton bones that follow the time slider: a small Vectors layer holding the current frame only.

A Vectors layer with every bone of every frame is slow to add for long recordings (100k frames x
2 animals x 19 bones = 3.8M vectors: ~2.5 s to add, and Shapes lines are far slower still; see
docs/benchmarks.md). Only one frame is ever on screen, so the bones layer holds that frame's bones
and :class:`SkeletonFollower` rebuilds them from the Points layer when the time slider moves or a
point is dragged. Reading positions from the Points layer (not from the file) makes the skeleton
follow edits live.
"""

from __future__ import annotations

import weakref

import numpy as np

from napari_liftpose.napari.convert import POSES_KEY, FrameIndex, category_codes, palette
from napari_liftpose.poses import Poses

__all__ = ["SkeletonFollower", "frame_bones", "follow_skeletons"]

BONES_ROLE = "bones"
_FOLLOWERS: dict[int, list] = {}  # id(viewer) -> its followers


def frame_bones(
    data: np.ndarray, individual: np.ndarray, keypoint: np.ndarray, poses: Poses, frame: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bones of one frame as Vectors data ``(n, 2, 1 + space)`` and each bone's individual.

    ``data`` holds the Points rows of that frame (``(t, [z,] y, x)``), ``individual`` and
    ``keypoint`` their integer codes.
    """
    n_dims = data.shape[1] if len(data) else 1 + poses.n_space
    if len(poses.edges) == 0 or len(data) == 0:
        return np.zeros((0, 2, n_dims)), np.zeros(0, dtype=int)
    pose = np.full((poses.n_individuals, poses.n_keypoints, n_dims - 1), np.nan)
    pose[individual, keypoint] = data[:, 1:]
    start, end = pose[:, poses.edges[:, 0]], pose[:, poses.edges[:, 1]]
    valid = np.isfinite(start).all(-1) & np.isfinite(end).all(-1)
    ind, edge = np.nonzero(valid)
    vectors = np.zeros((ind.size, 2, n_dims))
    vectors[:, 0, 0] = frame
    vectors[:, 0, 1:] = start[ind, edge]
    vectors[:, 1, 1:] = end[ind, edge] - start[ind, edge]
    return vectors, ind


class SkeletonFollower:
    """Keep a bones Vectors layer in step with a Points layer and a viewer's time slider.

    Parameters
    ----------
    viewer : napari.components.ViewerModel
        The viewer (or the 3D view's model) whose ``dims`` hold the time axis (axis 0).
    points : napari.layers.Points
        A pose layer made by this plugin (``metadata["poses"]`` set).
    bones : napari.layers.Vectors
        The layer to fill.
    """

    def __init__(self, viewer, points, bones):
        self._viewer = weakref.ref(viewer)
        self.points = points
        self.bones = bones
        self.poses: Poses = points.metadata[POSES_KEY]
        self._colors = palette(max(1, self.poses.n_individuals))
        self._index = FrameIndex(points.data)
        viewer.dims.events.current_step.connect(self.update)
        points.events.data.connect(self._on_data)
        points.mouse_drag_callbacks.append(self._on_drag)
        self.update()

    def _on_drag(self, layer, event):
        """While points are dragged napari emits no data event: follow every mouse move."""
        yield
        while event.type == "mouse_move":
            self.update()
            yield

    def _on_data(self, event=None) -> None:
        action = str(getattr(event, "action", ""))
        if len(self.points.data) != self._index.n_rows or "added" in action or "removed" in action:
            self._index.rebuild(self.points.data)
        self.update()

    def current_frame(self) -> int:
        """The time-slider position of the followed viewer."""
        viewer = self._viewer()
        return int(viewer.dims.current_step[0]) if viewer is not None else 0

    def update(self, event=None) -> None:
        """Rebuild the bones of the current frame."""
        viewer = self._viewer()
        if viewer is None or self.points not in viewer.layers or self.bones not in viewer.layers:
            self.disconnect()
            return
        frame = self.current_frame()
        rows = self._index.rows(frame)
        features = self.points.features.iloc[rows]
        individual = category_codes(features, "individual", self.poses.individuals)
        keypoint = category_codes(features, "keypoint", self.poses.keypoints)
        known = (individual >= 0) & (keypoint >= 0)
        vectors, individual = frame_bones(
            self.points.data[rows[known]], individual[known], keypoint[known], self.poses, frame
        )
        colors = (
            self._colors[individual]
            if self.poses.n_individuals > 1
            else np.tile([0.85, 0.85, 0.85, 1.0], (len(vectors), 1))
        )
        self.bones.data = vectors
        if len(vectors):
            self.bones.edge_color = colors

    def disconnect(self) -> None:
        """Stop following (the layers or viewer are gone)."""
        viewer = self._viewer()
        if viewer is not None:
            viewer.dims.events.current_step.disconnect(self.update)
        self.points.events.data.disconnect(self._on_data)
        if self._on_drag in self.points.mouse_drag_callbacks:
            self.points.mouse_drag_callbacks.remove(self._on_drag)


def _bones_layer_for(viewer, points):
    from napari.layers import Vectors

    from napari_liftpose.napari.layers import point_size

    poses: Poses = points.metadata[POSES_KEY]
    bones = Vectors(
        np.zeros((0, 2, points.data.shape[1])),
        name=f"{points.name} bones",
        edge_width=point_size(poses) / 3,
        vector_style="line",
        opacity=0.8,
        metadata={"liftpose_role": BONES_ROLE},
    )
    viewer.layers.insert(viewer.layers.index(points), bones)
    return bones


def follow_skeletons(viewer) -> None:
    """Give every pose Points layer of ``viewer`` a following bones layer, now and when added.

    Idempotent: calling it again on the same viewer does nothing more.
    """
    if viewer is None or id(viewer) in _FOLLOWERS:
        return
    followers: list[SkeletonFollower] = []
    _FOLLOWERS[id(viewer)] = followers
    weakref.finalize(viewer, _FOLLOWERS.pop, id(viewer), None)

    def attach(points) -> None:
        poses = points.metadata.get(POSES_KEY) if hasattr(points, "metadata") else None
        if (
            points._type_string != "points"
            or not isinstance(poses, Poses)
            or len(poses.edges) == 0
            or any(f.points is points for f in followers)
        ):
            return
        followers.append(SkeletonFollower(viewer, points, _bones_layer_for(viewer, points)))

    def on_inserted(event) -> None:
        attach(event.value)

    def on_removed(event) -> None:
        for follower in [f for f in followers if f.points is event.value]:
            follower.disconnect()
            followers.remove(follower)
            if follower.bones in viewer.layers:
                viewer.layers.remove(follower.bones)

    viewer.layers.events.inserted.connect(on_inserted)
    viewer.layers.events.removed.connect(on_removed)
    for layer in list(viewer.layers):
        attach(layer)
