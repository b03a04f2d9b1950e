"""One lifting session: the state the LiftPose dock shows, and the work on it. No napari, no Qt.

:class:`LiftSession` is the one owner of pose state. It holds the lifter, and for every lifted
2D source (by name: the 2D layer's name in the viewer) the 2D tracks the model sees, the lifted 3D
poses (with their uncertainty and suspicion) and which points the user edited in 2D and in 3D.
Everything that changes them goes through its methods: widgets read their controls and call it,
the live re-lift hands it the edited 2D frame, 3D edits hand it the edited 3D frame. It hands out
copies, so no view can change its poses behind its back; export and evaluation read its poses.

Scripts and notebooks can use it without a viewer::

    session = LiftSession()
    session.load_model("lifter.safetensors")
    lifted = session.lift("walk", read_poses("walk.slp"))
    session.export("walk3d.npz")
    metrics = session.evaluate("walk3d_truth.npz")
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_liftpose.io import read_calibration, read_poses, write_poses
from napari_liftpose.io.calibration import Camera
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.lifting import Lifter, evaluate, load_lifter
from napari_liftpose.lifting.matching import require_same_frames, require_space
from napari_liftpose.lifting.metrics import model_roots
from napari_liftpose.poses import Poses

__all__ = ["LiftSession", "Lifted", "read_camera"]


def read_camera(calibration: str | Path, name: str | None = None) -> Camera:
    """The camera ``name`` of an anipose calibration file (the only one when ``name`` is None).

    Raises
    ------
    PoseFileError
        If the file cannot be read, holds several cameras and none is named, or lacks ``name``.
    """
    cameras = read_calibration(calibration)
    if not name:
        if len(cameras) != 1:
            raise PoseFileError(
                calibration, f"holds {len(cameras)} cameras {sorted(cameras)}; choose one by name"
            )
        return next(iter(cameras.values()))
    if name not in cameras:
        raise PoseFileError(calibration, f"no camera named {name!r} (cameras: {sorted(cameras)})")
    return cameras[name]


@dataclass
class Lifted:
    """What the session keeps for one lifted 2D source.

    Attributes
    ----------
    tracks : Poses
        The 2D tracks as last lifted (the source's keypoints, the user's edits applied).
    model_2d : np.ndarray
        ``(frames, individuals, model keypoints, 2)``: the 2D the model sees.
    confidence : np.ndarray
        ``(frames, individuals, model keypoints)``: the confidence the model sees (1 where the
        user placed a point).
    poses : Poses
        The lifted 3D poses (with ``uncertainty`` and ``suspicion`` when the lifter gives them).
    edited_2d : np.ndarray
        ``(frames, individuals, source keypoints)`` bool: 2D points the user moved, added or deleted.
    edited_3d : np.ndarray
        ``(frames, individuals, model keypoints)`` bool: 3D points the user moved or deleted.
    lifter : Lifter
        The lifter that made ``poses`` (live re-lifts use it, even after another model is loaded).
    """

    tracks: Poses
    model_2d: np.ndarray
    confidence: np.ndarray
    poses: Poses
    edited_2d: np.ndarray
    edited_3d: np.ndarray
    lifter: Lifter


class LiftSession:
    """The lifter, the lifted poses and the edits of one viewer (or one script).

    Methods that change state run on one thread at a time (a lock); :meth:`compute_lift` may run
    in a worker thread (it changes nothing) and :meth:`keep_lift` stores its result.
    """

    def __init__(self) -> None:
        self.lifter: Lifter | None = None
        self.model_path: Path | None = None
        #: what the last adaptation of a body-model lifter to a skeleton said ("" if none)
        self.mapping_note: str = ""
        self._adapted: dict[tuple[str, ...], Lifter] = {}
        self.current: str | None = None  # the source lifted last: the default of export/evaluate
        self._lifted: dict[str, Lifted] = {}
        self._lock = threading.RLock()

    # -- the model -----------------------------------------------------------------------
    def load_model(self, path: str | Path, device: str = "auto") -> Lifter:
        """Load a lifter file and make it the session's lifter.

        A file that fails to load changes nothing: the previous lifter stays.

        Raises
        ------
        PoseFileError
            (a ``ModelFileError``) for a file that is not a valid lifter.
        OSError
            If the file cannot be read.
        """
        lifter = load_lifter(path, device=device)
        with self._lock:
            self.lifter, self.model_path = lifter, Path(path)
            self._adapted.clear()
        return lifter

    def load_builtin(self, name: str, device: str = "cpu") -> Lifter:
        """Make the built-in lifter ``name`` the session's lifter (see ``docs/builtin-lifters.md``).

        Its keypoints are a body model's; each 2D source is lifted by the lifter adapted to its
        own keypoints (:meth:`lifter_for`).

        Raises
        ------
        ValueError
            For an unknown name.
        PoseFileError
            (a ``ModelFileError``) if the shipped file is missing or damaged.
        """
        from napari_liftpose.bodies.builtin import load_builtin

        lifter = load_builtin(name, device)
        with self._lock:
            self.lifter, self.model_path = lifter, lifter.path
            self._adapted.clear()
        return lifter

    def lifter_for(self, tracks: Poses) -> Lifter:
        """The lifter for ``tracks``: the session's, or adapted to their keypoints.

        A body-model lifter (a built-in, or one trained with ``--body`` on a body model's whole
        skeleton) whose keypoints ``tracks`` does not have is adapted to ``tracks``'s keypoints
        by name (``docs/mapping.md``); :attr:`mapping_note` then says what was not mapped.

        Raises
        ------
        ValueError
            Without a lifter, or keypoints that do not fit (and cannot be mapped).
        """
        lifter = self._require_lifter()
        names = tuple(tracks.keypoints)
        if "body_model" not in lifter.meta or set(lifter.keypoints) <= set(names):
            return lifter
        with self._lock:
            adapted = self._adapted.get(names)
        if adapted is None:
            from napari_liftpose.bodies.builtin import lifter_for_tracks

            adapted, mapping = lifter_for_tracks(lifter, tracks)
            note = mapping.describe()
            with self._lock:
                self._adapted[names] = adapted
                self.mapping_note = note
        return adapted

    def model_summary(self) -> str:
        """One line about the loaded lifter ("" when none)."""
        if self.lifter is None:
            return ""
        meta = self.lifter.meta
        name = self.model_path.name if self.model_path else "lifter"
        return (
            f"{name}: {meta['architecture']['type']} on {len(self.lifter.keypoints)} keypoints, "
            f"camera: {meta.get('camera', {}).get('kind', '?')}, output axes: {self.lifter.frame}, "
            f"device: {self.lifter.device.type}"
        )

    def needs_camera(self) -> bool:
        """True when evaluating needs the filming camera (random-camera lifters)."""
        return (
            self.lifter is not None and self.lifter.frame != "world" and self.lifter.camera is None
        )

    def _require_lifter(self) -> Lifter:
        if self.lifter is None:
            raise ValueError("No lifter: train one or load a model file first")
        return self.lifter

    def check_fits(self, tracks: Poses) -> Poses:
        """``tracks`` in the lifter's keypoint order.

        Raises
        ------
        ValueError
            Without a lifter, for 3D tracks, or keypoints the lifter needs and ``tracks`` lacks
            (the message names them).
        """
        require_space(tracks, 2, tracks.source, "to lift")
        return self.lifter_for(tracks).match(tracks)

    # -- lifting -------------------------------------------------------------------------
    def compute_lift(self, tracks: Poses) -> tuple[Lifter, Poses]:
        """Lift ``tracks`` with the current lifter; changes nothing (safe in a worker thread).

        Returns the lifter used and the lifted poses, for :meth:`keep_lift`.
        """
        require_space(tracks, 2, tracks.source, "to lift")
        lifter = self.lifter_for(tracks)
        return lifter, lifter.lift(tracks)

    def keep_lift(self, name: str, tracks: Poses, lifter: Lifter, lifted: Poses) -> Poses:
        """Store ``lifted`` (made by ``lifter`` from ``tracks``) as the 3D of source ``name``.

        Returns a copy of the stored 3D poses. Earlier 3D edits of ``name`` are dropped.
        """
        matched = lifter.match(tracks)
        edited = tracks.metadata.get("edited")
        if not isinstance(edited, np.ndarray) or edited.shape != tracks.coords.shape[:3]:
            edited = np.zeros(tracks.coords.shape[:3], dtype=bool)
        confidence = matched.confidence.copy()
        model_edited = self._in_model_order(lifter, tracks, edited)
        confidence[model_edited] = 1.0  # a point the user placed is as sure as can be
        entry = Lifted(
            tracks=tracks.copy(),
            model_2d=matched.coords.copy(),
            confidence=confidence,
            poses=lifted.copy(),
            edited_2d=edited.copy(),
            edited_3d=np.zeros(lifted.coords.shape[:3], dtype=bool),
            lifter=lifter,
        )
        with self._lock:
            self._lifted[name] = entry
            self.current = name
        return entry.poses.copy()

    def lift(self, name: str, tracks: Poses) -> Poses:
        """Lift ``tracks`` and keep the result as the 3D of source ``name`` (see :meth:`keep_lift`).

        Returns a copy of the lifted 3D poses.
        """
        lifter, lifted = self.compute_lift(tracks)
        return self.keep_lift(name, tracks, lifter, lifted)

    @staticmethod
    def _in_model_order(lifter: Lifter, tracks: Poses, values: np.ndarray) -> np.ndarray:
        index = [list(tracks.keypoints).index(k) for k in lifter.keypoints]
        return values[:, :, index]

    # -- reading -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The lifted sources, in the order they were lifted."""
        return list(self._lifted)

    def _entry(self, name: str | None) -> Lifted:
        name = self.current if name is None else name
        if name is None or name not in self._lifted:
            raise ValueError(
                "Nothing lifted yet" if name is None else f"{name}: not lifted in this session"
            )
        return self._lifted[name]

    def has_lifted(self, name: str | None = None) -> bool:
        """True when source ``name`` (default: the last lifted) has 3D poses."""
        name = self.current if name is None else name
        return name is not None and name in self._lifted

    def lifted(self, name: str | None = None) -> Poses:
        """A copy of the 3D poses of ``name`` (default: the last lifted), with the edits."""
        with self._lock:
            entry = self._entry(name)
            poses = entry.poses.copy()
            poses.metadata = dict(poses.metadata, edited=entry.edited_3d.copy())
            return poses

    def lifted_frames(self, frames: np.ndarray, name: str | None = None) -> np.ndarray:
        """3D coordinates of ``frames`` of ``name``: ``(len(frames), individuals, keypoints, 3)``."""
        with self._lock:
            return self._entry(name).poses.coords[np.asarray(frames, dtype=np.int64)].copy()

    def lifter_of(self, name: str | None = None) -> Lifter:
        """The lifter that made the 3D of ``name``."""
        return self._entry(name).lifter

    def edited_2d(self, name: str | None = None) -> np.ndarray:
        """``(frames, individuals, source keypoints)`` bool: the 2D points the user edited."""
        return self._entry(name).edited_2d.copy()

    def edited_frames(self, name: str | None = None) -> np.ndarray:
        """Frames with any 2D or 3D edit, sorted."""
        entry = self._entry(name)
        return np.nonzero(entry.edited_2d.any(axis=(1, 2)) | entry.edited_3d.any(axis=(1, 2)))[0]

    # -- edits ---------------------------------------------------------------------------
    def edit_2d(
        self, name: str, frame: int, pose: np.ndarray, edited: np.ndarray | None = None
    ) -> np.ndarray:
        """Take frame ``frame`` of source ``name`` as the user left it and lift it again.

        Parameters
        ----------
        name : str
            A lifted source.
        frame : int
            The edited frame.
        pose : np.ndarray
            ``(individuals, source keypoints, 2)``: the frame's 2D points (x, y), NaN where missing.
        edited : np.ndarray, optional
            ``(individuals, source keypoints)`` bool: points to mark edited (default: every point
            whose position differs from before, deleted ones included).

        Returns
        -------
        np.ndarray
            The frames whose 3D changed (one for the MLP, the receptive window for the temporal
            model); read them with :meth:`lifted_frames`.
        """
        with self._lock:
            entry = self._entry(name)
            n_frames = entry.tracks.n_frames
            if not 0 <= frame < n_frames:
                return np.zeros(0, dtype=np.int64)
            pose = np.asarray(pose, dtype=np.float64)
            before = entry.tracks.coords[frame]
            # layers hold float32: a point equal at that precision did not move
            pose = np.where(pose.astype(np.float32) == before.astype(np.float32), before, pose)
            if edited is None:
                same = (pose == before) | (np.isnan(pose) & np.isnan(before))
                edited = ~same.all(-1)
            entry.tracks.coords[frame] = pose
            entry.edited_2d[frame] |= edited
            lifter = entry.lifter
            model_pose = self._in_model_order(lifter, entry.tracks, entry.tracks.coords[[frame]])
            entry.model_2d[frame] = model_pose[0]
            model_edited = self._in_model_order(lifter, entry.tracks, entry.edited_2d[[frame]])[0]
            entry.confidence[frame][model_edited] = 1.0
            half = lifter.receptive_field // 2
            lo, hi = max(0, frame - 2 * half), min(n_frames, frame + 2 * half + 1)
            out = lifter.lift_arrays(
                entry.model_2d[lo:hi], entry.confidence[lo:hi], frame=entry.poses.frame
            )
            changed = np.arange(max(0, frame - half), min(n_frames, frame + half + 1))
            entry.poses.coords[changed] = out[changed - lo]
            return changed

    def edit_3d(self, name: str, frame: int, coords: np.ndarray) -> bool:
        """Take frame ``frame`` of the 3D of ``name`` as the user left it (moved/deleted points).

        ``coords`` is ``(individuals, model keypoints, 3)`` (x, y, z; NaN for a deleted point).
        Returns True when anything changed (those points are marked edited).
        """
        with self._lock:
            entry = self._entry(name)
            if not 0 <= frame < entry.poses.n_frames:
                return False
            coords = np.asarray(coords, dtype=np.float64)
            before = entry.poses.coords[frame]
            same = ((coords == before) | (np.isnan(coords) & np.isnan(before))).all(-1)
            if same.all():
                return False
            entry.poses.coords[frame] = coords
            entry.edited_3d[frame] |= ~same
            return True

    # -- results -------------------------------------------------------------------------
    def export(self, path: str | Path, name: str | None = None) -> Path:
        """Write the 3D of ``name`` (default: the last lifted), with all edits; returns the path.

        Raises
        ------
        ValueError
            When nothing was lifted; PoseFileError / OSError when the file cannot be written.
        """
        return write_poses(self.lifted(name), path)

    def evaluate(
        self,
        truth: Poses | str | Path,
        camera: Camera | None = None,
        name: str | None = None,
    ) -> dict:
        """Metrics of the 3D of ``name`` (default: the last lifted) against 3D ``truth``.

        Parameters
        ----------
        truth : Poses or path
            3D ground truth of the same frames, in the library's (world) axes.
        camera : Camera, optional
            The camera the 2D tracks were filmed with: needed for random-camera lifters, whose
            3D is in that camera's upright axes (the truth is rotated into them).

        Returns
        -------
        dict
            :func:`napari_liftpose.lifting.evaluate`'s metrics, plus ``"frame"`` (the axes).

        Raises
        ------
        ValueError
            Nothing lifted, 2D truth, other frames, or a random-camera lifter without ``camera``
            (PoseFileError, naming the file, where a file is at fault).
        """
        poses, lifter, truth = self._truth_beside(truth, camera, name)
        metrics = evaluate(poses, truth, *model_roots(lifter.meta))
        metrics["frame"] = poses.frame
        return metrics

    def truth_overlay(
        self, truth: Poses | str | Path, camera: Camera | None = None, name: str | None = None
    ) -> Poses:
        """3D ``truth`` placed over the 3D of ``name``: the lift's axes, keypoints and root.

        The lifted poses are relative to the lifter's first root; so is the returned truth
        (same checks and ``camera`` as :meth:`evaluate`).
        """
        _, lifter, truth = self._truth_beside(truth, camera, name)
        root = lifter.layout.roots[0]
        coords = truth.coords - truth.coords[:, :, root : root + 1]
        return truth.copy(coords=coords, uncertainty=None, suspicion=None)

    def _truth_beside(self, truth, camera, name) -> tuple[Poses, Lifter, Poses]:
        path = None
        if not isinstance(truth, Poses):
            path = truth
            truth = read_poses(truth)
        require_space(truth, 3, path, "as truth")
        with self._lock:
            entry = self._entry(name)
            poses = entry.poses.copy()
            lifter = entry.lifter
        require_same_frames(truth, poses, path, "the lifted poses")
        truth = lifter.match(truth)
        return poses, lifter, lifter.truth_in_output_frame(truth, camera, poses.frame)
