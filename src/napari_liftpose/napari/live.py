"""Live re-lifting: 2D edits go to the session, which lifts the touched frames again.

:class:`LiveRelift` ties a 2D tracks layer to the 3D layer lifted from it. It owns no pose data:
a 2D edit (drag, add, delete, new layer data) hands the edited frame to the
:class:`~napari_liftpose.napari.session.LiftSession`, which re-lifts it (the whole receptive
window for the temporal model); the 3D layer's copy of the poses is then refreshed from the
session and the frame on screen redrawn. Points moved or deleted in the 3D view are handed to the
session too, so export and evaluation see them.
"""

from __future__ import annotations

import numpy as np

from napari_liftpose.napari.convert import (
    ONE_FRAME_KEY,
    POSES_KEY,
    FrameIndex,
    category_codes,
    napari_order,
)
from napari_liftpose.napari.frame_points import show_frame, shown_frame, widen_to
from napari_liftpose.napari.session import LiftSession
from napari_liftpose.poses import Poses

__all__ = ["LiveRelift"]


class LiveRelift:
    """Tie a 2D Points layer to the 3D Points layer lifted from it, through the session.

    Parameters
    ----------
    session : LiftSession
        Holds the lifted poses of ``name``.
    name : str
        The source's name in the session (the 2D layer's name).
    points2d, points3d : napari.layers.Points
        The 2D tracks layer and its lifted 3D layer (both made by this plugin).
    """

    def __init__(self, session: LiftSession, name: str, points2d, points3d):
        if not points3d.metadata.get(ONE_FRAME_KEY):
            raise ValueError(f"{points3d.name}: not a 3D view layer made by napari-liftpose")
        self.session = session
        self.name = name
        self.points2d = points2d
        self.points3d = points3d
        self.template: Poses = points2d.metadata[POSES_KEY]
        self.n_frames = self.template.n_frames
        self._index2d = FrameIndex(points2d.data)
        self._last2d = points2d.data.copy()  # to find what changed when napari does not say
        self._redrawing = False
        points2d.events.data.connect(self._on_2d_data)
        points2d.mouse_drag_callbacks.append(self._on_drag)
        points3d.events.data.connect(self._on_3d_data)  # after the layer wrote its own copy

    def disconnect(self) -> None:
        """Stop following the layers."""
        self.points2d.events.data.disconnect(self._on_2d_data)
        self.points3d.events.data.disconnect(self._on_3d_data)
        if self._on_drag in self.points2d.mouse_drag_callbacks:
            self.points2d.mouse_drag_callbacks.remove(self._on_drag)

    def _on_drag(self, layer, event):
        """While points are dragged napari emits no data event: re-lift at every mouse move."""
        yield
        while event.type == "mouse_move":
            self._relift_frames(self._changed_frames(layer.data, list(layer.selected_data)))
            yield

    # -- events --------------------------------------------------------------------------
    def _on_2d_data(self, event) -> None:
        if "changing" in str(getattr(event, "action", "")):
            return  # napari announces a change before making it
        self._relift_frames(
            self._changed_frames(self.points2d.data, getattr(event, "data_indices", None))
        )

    def _on_3d_data(self, event) -> None:
        """A point moved or deleted in the 3D view: the session takes the frame as it is now."""
        if self._redrawing or "changing" in str(getattr(event, "action", "")):
            return
        shown: Poses = self.points3d.metadata[POSES_KEY]
        frame = shown_frame(self.points3d)
        if 0 <= frame < shown.n_frames:
            self.session.edit_3d(self.name, frame, shown.coords[frame])

    def _relift_frames(self, frames: np.ndarray) -> None:
        for frame in frames[(frames >= 0) & (frames < self.n_frames)]:
            self.relift(int(frame))

    def _changed_frames(self, data: np.ndarray, indices) -> np.ndarray:
        """Frames a data change touched; moved points get ``edited = True``."""
        if len(data) != len(self._last2d):  # points added or deleted: frames whose count changed
            self._index2d.rebuild(data)
            before = np.bincount(self._frames_of(self._last2d), minlength=self.n_frames)
            after = np.bincount(self._frames_of(data), minlength=self.n_frames)
            self._last2d = data.copy()
            return np.nonzero(before != after)[0]
        rows = np.asarray(indices, dtype=np.int64) if indices else np.arange(len(data))
        rows = rows[(data[rows] != self._last2d[rows]).any(axis=1)]  # what really moved
        if len(rows) == 0:
            return np.zeros(0, dtype=np.int64)
        self.points2d.features.loc[rows, "edited"] = True
        frames = np.union1d(self._frames_of(data[rows]), self._frames_of(self._last2d[rows]))
        self._last2d[rows] = data[rows]
        return frames

    def _frames_of(self, data: np.ndarray) -> np.ndarray:
        frames = np.rint(data[:, 0]).astype(np.int64)
        return np.clip(frames, 0, self.n_frames - 1)

    # -- lifting -------------------------------------------------------------------------
    def frame_2d(self, frame: int) -> np.ndarray:
        """The 2D pose of ``frame`` as the layer shows it: ``(individuals, keypoints, 2)``, x y.

        Keypoints in the order of the layer's source file; NaN where the layer has no point.
        """
        pose = np.full(self.template.coords.shape[1:], np.nan)
        rows = self._index2d.rows(frame)
        features = self.points2d.features.iloc[rows]
        ind = category_codes(features, "individual", self.template.individuals)
        kp = category_codes(features, "keypoint", self.template.keypoints)
        keep = (kp >= 0) & (ind >= 0)
        pose[ind[keep], kp[keep]] = napari_order(self.points2d.data[rows[keep], 1:])
        return pose

    def relift(self, frame: int) -> np.ndarray:
        """Hand ``frame`` of the 2D layer to the session, then show the re-lifted 3D.

        Returns the frames whose 3D changed (one for the MLP, the window for the temporal model).
        """
        changed = self.session.edit_2d(self.name, frame, self.frame_2d(frame))
        if len(changed) == 0:
            return changed
        coords = self.session.lifted_frames(changed, self.name)
        shown_poses: Poses = self.points3d.metadata[POSES_KEY]  # the 3D layer's copy
        shown_poses.coords[changed] = coords
        widen_to(self.points3d, coords)
        shown = shown_frame(self.points3d)
        if changed[0] <= shown <= changed[-1]:
            self._redrawing = True
            try:
                show_frame(self.points3d, shown)
                # and say so, as napari does after moving points in place (the 3D bones follow)
                self.points3d.events.data(
                    value=self.points3d.data,
                    action="changed",
                    data_indices=tuple(range(len(self.points3d.data))),
                    vertex_indices=((),),
                )
            finally:
                self._redrawing = False
        return changed
