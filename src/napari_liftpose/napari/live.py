"""Live re-lifting of the frames whose 2D keypoints were dragged or edited.

For the temporal model every frame whose window holds the edit is lifted again. The 3D poses
are updated in ``metadata["poses"]`` of the 3D layer, and the frame on screen is redrawn in place.
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
from napari_liftpose.poses import Poses

__all__ = ["LiveRelift"]


class LiveRelift:
    """Tie a 2D Points layer to the 3D Points layer lifted from it.

    Parameters
    ----------
    lifter : napari_liftpose.lifting.Lifter
        The model that produced the 3D layer.
    points2d, points3d : napari.layers.Points
        The 2D tracks layer and its lifted 3D layer (both made by this plugin).
    """

    def __init__(self, lifter, points2d, points3d):
        if not points3d.metadata.get(ONE_FRAME_KEY):
            raise ValueError(f"{points3d.name}: not a 3D view layer made by napari-liftpose")
        self.lifter = lifter
        self.points2d = points2d
        self.points3d = points3d
        template: Poses = points2d.metadata[POSES_KEY]
        self.template = template
        matched = lifter.match(template)
        self.tracks = matched.coords.copy()  # (F, I, K_model, 2): the 2D the model sees
        self.confidence = matched.confidence.copy()
        self.poses3d: Poses = points3d.metadata[POSES_KEY]
        names = list(template.keypoints)
        self._model_index = np.array(
            [lifter.keypoints.index(n) if n in lifter.keypoints else -1 for n in names]
        )
        self._index2d = FrameIndex(points2d.data)
        self._last2d = points2d.data.copy()  # to find what changed when napari does not say
        self.half = lifter.receptive_field // 2
        points2d.events.data.connect(self._on_2d_data)
        points2d.mouse_drag_callbacks.append(self._on_drag)

    def disconnect(self) -> None:
        """Stop following the 2D layer."""
        self.points2d.events.data.disconnect(self._on_2d_data)
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

    def _relift_frames(self, frames: np.ndarray) -> None:
        for frame in frames[(frames >= 0) & (frames < len(self.tracks))]:
            self.relift(int(frame))

    def _changed_frames(self, data: np.ndarray, indices) -> np.ndarray:
        """Frames a data change touched; moved points get ``edited = True``."""
        n_frames = len(self.tracks)
        if len(data) != len(self._last2d):  # points added or deleted: frames whose count changed
            self._index2d.rebuild(data)
            before = np.bincount(self._frames_of(self._last2d), minlength=n_frames)
            after = np.bincount(self._frames_of(data), minlength=n_frames)
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
        return np.clip(frames, 0, len(self.tracks) - 1)

    # -- lifting -------------------------------------------------------------------------
    def frame_2d(self, frame: int) -> np.ndarray:
        """The 2D pose of ``frame`` as the layer shows it, in the model's keypoint order."""
        pose = np.full(self.tracks.shape[1:], np.nan)
        rows = self._index2d.rows(frame)
        features = self.points2d.features.iloc[rows]
        ind = category_codes(features, "individual", self.template.individuals)
        kp = category_codes(features, "keypoint", self.template.keypoints)
        kp = np.where(kp >= 0, self._model_index[kp], -1)
        keep = (kp >= 0) & (ind >= 0)
        pose[ind[keep], kp[keep]] = napari_order(self.points2d.data[rows[keep], 1:])
        return pose

    def relift(self, frame: int) -> np.ndarray:
        """Lift ``frame`` again from the layer's 2D points and update the 3D layer.

        Returns the frames whose 3D changed (one for the MLP, the window for the temporal model).
        """
        self.tracks[frame] = self.frame_2d(frame)
        n_frames = len(self.tracks)
        lo, hi = max(0, frame - 2 * self.half), min(n_frames, frame + 2 * self.half + 1)
        lifted = self.lifter.lift_arrays(self.tracks[lo:hi], self.confidence[lo:hi])
        changed = np.arange(max(0, frame - self.half), min(n_frames, frame + self.half + 1))
        self.poses3d.coords[changed] = lifted[changed - lo]
        widen_to(self.points3d, lifted[changed - lo])
        shown = shown_frame(self.points3d)
        if changed[0] <= shown <= changed[-1]:
            show_frame(self.points3d, shown)
            # and say so, as napari does after moving points in place (the 3D bones follow)
            self.points3d.events.data(
                value=self.points3d.data,
                action="changed",
                data_indices=tuple(range(len(self.points3d.data))),
                vertex_indices=((),),
            )
        return changed
