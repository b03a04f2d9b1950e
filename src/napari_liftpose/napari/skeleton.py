"""Skeleton bones that follow the time slider: a small Vectors layer holding the current frame only.

A Vectors layer with every bone of every frame is slow to add for long recordings (100k frames x
2 animals x 19 bones = 3.8M vectors: ~2.5 s to add, and Shapes lines are far slower still; see
docs/benchmarks.md). Only one frame is ever on screen, so the bones layer holds that frame's bones
and :class:`SkeletonFollower` rewrites them when the time slider moves or a point is dragged.

The layer always holds one vector per (individual, edge); a bone with a missing end is a
zero-length vector, which draws nothing. With a constant count the bones are rewritten in place:
napari's data setter (dimension checks, extent, thumbnail) and a shader rebuild on every step
cost ~10 ms per layer per time step at 100k frames, the in-place update well under 1 ms.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from napari_liftpose.napari.convert import (
    ONE_FRAME_KEY,
    POSES_KEY,
    FrameIndex,
    category_codes,
    palette,
    pose_at,
    time_point,
)
from napari_liftpose.napari.steady_shaders import keep_shader_program, window_canvas
from napari_liftpose.poses import Poses

__all__ = ["SkeletonFollower", "frame_bones", "bone_colors", "follow_skeletons", "COLOR_KEY"]

#: Layer metadata key: one RGBA for all of a pose layer's points and bones (e.g. ground truth).
COLOR_KEY = "liftpose_color"

_FOLLOWERS: dict[int, list] = {}  # id(viewer) -> its followers


def frame_bones(
    pose: np.ndarray, edges: np.ndarray, frame: int, park: np.ndarray | None = None
) -> np.ndarray:
    """Bones of one frame as Vectors data ``(n_individuals * n_edges, 2, 1 + space)``.

    ``pose`` is ``(n_individuals, n_keypoints, space)`` in napari order (``[z,] y, x``), NaN where
    a point is missing. Bones are ordered individual by individual, edge by edge; one with a
    missing end is a zero-length vector parked on a point of the frame (``park`` when the frame
    has none), so it draws nothing and stays inside the data's extent.
    """
    n_individuals, _, n_space = pose.shape
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    start, end = pose[:, edges[:, 0]], pose[:, edges[:, 1]]
    valid = (np.isfinite(start).all(-1) & np.isfinite(end).all(-1))[..., None]
    finite = pose[np.isfinite(pose).all(-1)]
    if len(finite):
        park = finite[0]
    elif park is None:
        park = np.zeros(n_space)
    vectors = np.zeros((n_individuals * len(edges), 2, 1 + n_space))
    vectors[:, 0, 0] = frame
    vectors[:, 0, 1:] = np.where(valid, start, park).reshape(-1, n_space)
    vectors[:, 1, 1:] = np.where(valid, end - start, 0.0).reshape(-1, n_space)
    return vectors


def bone_colors(poses: Poses) -> np.ndarray:
    """RGBA per bone of :func:`frame_bones`: by individual when there are several, else grey."""
    n_edges = len(poses.edges)
    if poses.n_individuals > 1:
        return np.repeat(palette(poses.n_individuals), n_edges, axis=0)
    return np.tile([0.85, 0.85, 0.85, 1.0], (n_edges, 1))


def pose_from_rows(points, index: FrameIndex, poses: Poses, frame: int) -> np.ndarray:
    """The pose of ``frame`` as a pose Points layer shows it: ``(I, K, space)``, napari order."""
    rows = index.rows(frame)
    features = points.features.iloc[rows]
    individual = category_codes(features, "individual", poses.individuals)
    keypoint = category_codes(features, "keypoint", poses.keypoints)
    known = (individual >= 0) & (keypoint >= 0)
    pose = np.full((poses.n_individuals, poses.n_keypoints, poses.n_space), np.nan)
    pose[individual[known], keypoint[known]] = points.data[rows[known], 1:]
    return pose


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
    pose_of : callable, optional
        ``frame -> (I, K, space)`` pose in napari order. By default the pose is read from the
        Points rows of that frame, so the bones follow the user's edits.
    """

    def __init__(self, viewer, points, bones, pose_of: Callable[[int], np.ndarray] | None = None):
        self._viewer = weakref.ref(viewer)
        self.points = points
        self.bones = bones
        self.poses: Poses = points.metadata[POSES_KEY]
        # rows per frame, only when the pose is read from the rows
        self._index = FrameIndex(points.data) if pose_of is None else None
        self._pose_of = pose_of or (
            lambda frame: pose_from_rows(self.points, self._index, self.poses, frame)
        )
        viewer.dims.events.current_step.connect(self.update)
        points.events.data.connect(self._on_data)
        points.mouse_drag_callbacks.append(self._on_drag)
        self.update()
        color = points.metadata.get(COLOR_KEY)
        if color is not None:
            bones.edge_color = np.tile(color, (len(bones.data), 1))
        else:
            bones.edge_color = bone_colors(self.poses)

    def _on_drag(self, layer, event):
        """While points are dragged napari emits no data event: follow every mouse move."""
        yield
        while event.type == "mouse_move":
            self.update()
            yield

    def _on_data(self, event=None) -> None:
        action = str(getattr(event, "action", ""))
        index = self._index
        if index is not None and (
            len(self.points.data) != index.n_rows or "added" in action or "removed" in action
        ):
            index.rebuild(self.points.data)
        self.update()

    def current_frame(self) -> int:
        """The time-slider position of the followed viewer."""
        viewer = self._viewer()
        return time_point(viewer.dims) if viewer is not None else 0

    def update(self, event=None) -> None:
        """Rewrite the bones of the current frame (in place once the layer has its size)."""
        viewer = self._viewer()
        if viewer is None or self.points not in viewer.layers or self.bones not in viewer.layers:
            self.disconnect()
            return
        index = self._index
        if index is not None and len(self.points.data) != index.n_rows:
            # a removal can move the slider (the layer's extent) before its data event: the
            # row index must follow the rows before the bones read them
            index.rebuild(self.points.data)
        frame = self.current_frame()
        park = self.points.data[0, 1:] if len(self.points.data) else None  # a point of the data
        vectors = frame_bones(self._pose_of(frame), self.poses.edges, frame, park)
        if self.bones.data.shape != vectors.shape:
            self.bones.data = vectors
            return
        self.bones.data[:] = vectors
        # the bones stay inside the pose layer's extent: skip the extent and thumbnail passes
        self.bones.refresh(thumbnail=False, extent=False)

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
    )
    viewer.layers.insert(viewer.layers.index(points), bones)
    return bones


def follow_skeletons(viewer, canvas=None) -> None:
    """Give every pose Points layer of ``viewer`` a following bones layer, now and when added.

    ``canvas`` is the vispy canvas drawing ``viewer`` (found by itself for a ``napari.Viewer``);
    the bones' shader program is kept there across updates (:mod:`.steady_shaders`).
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
        pose_of = (
            (lambda frame: pose_at(poses, frame)) if points.metadata.get(ONE_FRAME_KEY) else None
        )
        bones = _bones_layer_for(viewer, points)
        keep_shader_program(canvas or window_canvas(viewer), bones)
        followers.append(SkeletonFollower(viewer, points, bones, pose_of))

    def on_inserted(event) -> None:
        attach(event.value)

    def on_removed(event) -> None:
        from qtpy.QtCore import QTimer

        for follower in [f for f in followers if f.points is event.value]:
            follower.disconnect()
            followers.remove(follower)
            # Removed once the canvas has drawn without the points: removing the bones inside
            # that removal (or right after it) crashed the canvas in glDrawArrays when a video
            # layer was open (software OpenGL, napari 0.9); 300 ms later it never did.
            bones = follower.bones
            QTimer.singleShot(300, lambda bones=bones: _remove_layer(viewer, bones))

    viewer.layers.events.inserted.connect(on_inserted)
    viewer.layers.events.removed.connect(on_removed)
    for layer in list(viewer.layers):
        attach(layer)


def _remove_layer(viewer, layer) -> None:
    """Remove ``layer`` from ``viewer`` if it is still there."""
    if layer in viewer.layers:
        viewer.layers.remove(layer)
