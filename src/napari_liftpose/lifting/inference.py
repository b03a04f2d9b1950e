"""Apply a trained lifter to whole files (batched); the live re-lift lifts a window of frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from napari_liftpose.io.calibration import Camera, rodrigues
from napari_liftpose.lifting.cameras import camera_from_dict, upright_rotation
from napari_liftpose.lifting.checkpoint import (
    ModelFileError,
    load_checkpoint,
    read_checkpoint_header,
)
from napari_liftpose.lifting.data import normalize_2d
from napari_liftpose.lifting.devices import resolve_device
from napari_liftpose.lifting.fusion import fold_for_inference
from napari_liftpose.lifting.lifter_meta import (
    check_lifter_meta,
    check_tensor_shapes,
    check_tensor_values,
    expected_shapes,
)
from napari_liftpose.lifting.models import build_model
from napari_liftpose.lifting.normalization import Normalization, model_inputs
from napari_liftpose.lifting.skeleton import RootLayout, check_keypoints
from napari_liftpose.lifting.uncertainty import Calibration, ensemble_spread
from napari_liftpose.poses import Poses

__all__ = ["Lifter", "load_lifter"]


class Lifter:
    """A trained network with everything needed to use it.

    Build one with :func:`load_lifter`. Attributes: ``keypoints``, ``edges``, ``layout``
    (roots), ``meta`` (the checkpoint's metadata), ``receptive_field`` (1 for the MLP),
    ``camera`` (the training camera, if it was a known one), ``units``, and the axes of the 3D:

    - ``network_frame``: the axes the network predicts in (checkpoint metadata ``frame``):
      ``"camera"`` for known-camera models, ``"upright"`` for random-camera models, ``"world"``
      for real-pair models;
    - ``frame``: the axes :meth:`lift` returns by default: ``"world"`` (the calibration's / 3D
      library's axes) whenever the lifter knows them, i.e. for known-camera models (the network's
      camera-axes output is rotated back by the calibration's rotation) and real-pair models;
      ``"upright"`` for random-camera models (z is the library's up; the heading is the
      unknown filming camera's; older random-camera models: ``"camera"``);
    - ``frames``: every frame :meth:`lift` can return (``frame=`` argument).

    ``calibration`` is the per-joint uncertainty calibration (checkpoint metadata
    ``"uncertainty"``, see :mod:`napari_liftpose.lifting.uncertainty`), None for models
    without one (older files): their lifted poses have no ``uncertainty``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        meta: dict,
        norm: Normalization,
        device: torch.device,
        path: Path | None = None,
    ):
        self.model = model.to(device).eval()
        self._fast = fold_for_inference(model.cpu(), norm.target_mean, norm.target_std).to(device)
        self.model.to(device)
        self.meta = meta
        self.norm = norm
        self.device = device
        self.path = path
        self.keypoints: list[str] = list(meta["keypoints"])
        self.edges = np.asarray(meta.get("edges", []), dtype=np.int64).reshape(-1, 2)
        self.layout = RootLayout.from_names(self.keypoints, meta["roots"], meta.get("target_sets"))
        self.temporal = meta["architecture"]["type"] == "temporal"
        self.receptive_field = int(getattr(model, "receptive_field", 1))
        self.scale_inputs = meta.get("input_norm") == "root_scale"
        cam = meta.get("camera", {})
        self.camera: Camera | None = (
            camera_from_dict(cam["camera"]) if cam.get("kind") == "known" else None
        )
        self.network_frame: str = meta.get("frame", "camera")
        self.frames: tuple[str, ...] = (
            ("world", "camera") if self.camera is not None else (self.network_frame,)
        )
        self.frame: str = "world" if "world" in self.frames else self.network_frame
        self.units: str = meta.get("units", "")
        self.calibration: Calibration | None = None
        if meta.get("uncertainty") is not None:
            self.set_calibration(meta["uncertainty"])

    def set_calibration(self, calibration: dict | None) -> None:
        """Use ``calibration`` and record it in :attr:`meta` under ``"uncertainty"``.

        ``calibration`` is a dict from :func:`~napari_liftpose.lifting.uncertainty.calibrate`,
        or None: no uncertainty.

        Raises
        ------
        ValueError
            ``"uncertainty: expected ..."`` for a malformed calibration.
        """
        if calibration is None:
            self.calibration = None
            self.meta.pop("uncertainty", None)
            return
        self.calibration = Calibration.from_dict(calibration, len(self.keypoints))
        self.meta["uncertainty"] = calibration

    def output_frame(self, frame: str | None = None) -> str:
        """The axes a lift with ``frame`` returns: ``frame`` itself, or :attr:`frame` for None.

        Raises
        ------
        ValueError
            ``"frame: expected one of [...] for this lifter, got X"`` for axes this lifter cannot
            give (world axes from a random-camera model, camera axes from a real-pair model).
        """
        if frame is None:
            return self.frame
        if frame not in self.frames:
            why = {
                "world": "it was trained with random virtual cameras, so the heading of its 3D "
                "is the filming camera's",
                "upright": "only random-camera lifters return upright axes",
                "camera": "it was trained on real 2D/3D pairs and knows no camera",
            }.get(frame, "")
            raise ValueError(
                f"frame: expected one of {list(self.frames)} for this lifter, got {frame!r:.80}"
                + (f" ({why})" if why else "")
            )
        return frame

    def _to_frame(self, points: np.ndarray, frame: str) -> np.ndarray:
        """Root-relative 3D ``(..., 3)`` from :attr:`network_frame` into ``frame`` (rotation only)."""
        if frame == self.network_frame:
            return points
        rot = rodrigues(self.camera.rotation)  # camera point = R @ world point + t
        # row vectors: world = R^T cam -> cam_row @ R; camera = R world -> world_row @ R^T
        return points @ rot if frame == "world" else points @ rot.T

    # -- whole files -------------------------------------------------------------------
    def match(self, poses: Poses) -> Poses:
        """Reorder/subset ``poses`` to the model's keypoints.

        Raises
        ------
        ValueError
            ``"keypoints do not match the model: missing: [...]; extra: [...]"``.
        """
        check_keypoints(self.keypoints, poses.keypoints, poses.source or "")
        if list(poses.keypoints) == self.keypoints:
            return poses
        return poses.select_keypoints(self.keypoints)

    def lift(
        self,
        poses_2d: Poses,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        frame: str | None = None,
        uncertainty: bool = True,
        suspicion: bool = True,
    ) -> Poses:
        """Lift 2D tracks to 3D.

        Parameters
        ----------
        poses_2d : Poses
            2D tracks ``(frames, individuals, keypoints, 2)``; they must contain the model's
            keypoints (extra ones are dropped, order does not matter).
        batch_size : int, optional
            Poses (MLP, default 8192) or frames (temporal, default 65536) per forward pass.
        progress : callable, optional
            Called with ``(done, total)`` poses after each batch.
        frame : {"world", "camera", "upright"}, optional
            Axes of the 3D (default :attr:`frame`: ``"world"``, the calibration's / library's
            axes, for known-camera and real-pair models; ``"upright"`` for random-camera models).
        uncertainty : bool
            Also compute ``Poses.uncertainty`` (when the lifter has a :attr:`calibration`; it
            costs ``draws`` more forward passes, see :mod:`~napari_liftpose.lifting.uncertainty`).
        suspicion : bool
            Also score every (frame, individual) with
            :func:`~napari_liftpose.lifting.suspicion.frame_suspicion` (``Poses.suspicion``; about
            4x the time of the lift itself on the CPU).

        Returns
        -------
        Poses
            3D ``(frames, individuals, keypoints, 3)`` relative to the first root, in the axes
            ``frame`` (recorded in ``Poses.frame``). A pose whose root keypoint is missing is
            lifted around a root estimated from its visible keypoints (see :meth:`with_root`);
            NaN only where fewer than two keypoints are visible. Confidence, individuals and fps
            are carried over (a missing root keeps its input confidence). ``uncertainty``
            ``(frames, individuals, keypoints)``: per point a radius (in :attr:`units`) that
            holds the true root-relative point with the calibrated probability (0.8), larger for
            hidden keypoints and estimated roots; None without a calibration or when not asked.
            ``suspicion`` ``(frames, individuals)`` in [0, 1], higher = more likely wrong (None
            when not asked).

        Raises
        ------
        ValueError
            For 3D input, or a ``frame`` this lifter cannot give (see :meth:`output_frame`).
        """
        if poses_2d.n_space != 2:
            raise ValueError(f"{poses_2d.name}: expected 2D tracks to lift, got 3D")
        frame = self.output_frame(frame)
        poses = self.match(poses_2d)
        coords, radius = self.lift_with_uncertainty(
            poses.coords, poses.confidence, batch_size, progress, frame, uncertainty
        )
        lifted = Poses(
            coords=coords,
            keypoints=self.keypoints,
            confidence=poses.confidence.copy(),
            edges=self.edges,
            individuals=list(poses.individuals),
            fps=poses.fps,
            units=self.units,
            source=poses.source,
            source_format="lifted",
            video=poses.video,
            metadata={"lifter": str(self.path) if self.path else None, "frame": frame},
            frame=frame,
            uncertainty=radius,
        )
        if suspicion:
            from napari_liftpose.lifting.suspicion import frame_suspicion

            lifted.suspicion = frame_suspicion(self, poses, lifted)
        return lifted

    def lift_arrays(
        self,
        coords: np.ndarray,
        confidence: np.ndarray | None = None,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        frame: str | None = None,
    ) -> np.ndarray:
        """Lift ``(frames, individuals, keypoints, 2)`` in the model's keypoint order to ``(..., 3)``.

        The 3D is in the axes ``frame`` (default :attr:`frame`), as :meth:`lift`; no
        uncertainty (the live re-lift's path; see :meth:`lift_with_uncertainty`).
        """
        return self.lift_with_uncertainty(
            coords, confidence, batch_size, progress, frame, uncertainty=False
        )[0]

    def lift_with_uncertainty(
        self,
        coords: np.ndarray,
        confidence: np.ndarray | None = None,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        frame: str | None = None,
        uncertainty: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`lift_arrays` and the radii ``(frames, individuals, keypoints)`` (see :meth:`lift`).

        The radii are None without a :attr:`calibration` or with ``uncertainty=False``; NaN
        where the point could not be lifted.
        """
        frame = self.output_frame(frame)
        coords = np.asarray(coords, dtype=np.float64)
        n_kp = coords.shape[2]
        if n_kp != len(self.keypoints):
            raise ValueError(f"expected {len(self.keypoints)} keypoints, got {n_kp}")
        if batch_size is None:
            batch_size = 65536 if self.temporal else 8192
        if confidence is None:
            confidence = np.ones(coords.shape[:3])
        conf = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=1.0), 0.0, 1.0)
        root = self.layout.roots[0]
        hidden = ~np.isfinite(coords).all(-1)
        coords, estimated = self.with_root(coords)
        conf[estimated, root] = 1.0  # as in training, where the root is never hidden
        out = self._network(coords, conf, batch_size, progress)
        radius = None
        cal = self.calibration
        if uncertainty and cal is not None:
            spread = None
            if cal.draws > 0:
                run = lambda c, k: self._network(c, k, batch_size, None)  # noqa: E731
                spread = ensemble_spread(run, coords, conf, root, cal.noise, cal.draws)
            radius = cal.radii(spread, hidden, estimated)
            radius[~np.isfinite(out).all(-1)] = np.nan
        return self._to_frame(out, frame), radius

    def network_3d(self, coords: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """The network's 3D ``(frames, individuals, keypoints, 3)`` in :attr:`network_frame`.

        ``coords`` ``(frames, individuals, keypoints, 2)`` (model keypoint order) are used as
        they are: no root estimation, no rotation (what calibration measures).
        """
        conf = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=1.0), 0, 1)
        batch_size = 65536 if self.temporal else 8192
        return self._network(np.asarray(coords, dtype=np.float64), conf, batch_size, None)

    def _network(
        self,
        coords: np.ndarray,
        conf: np.ndarray,
        batch_size: int,
        progress: Callable[[int, int], None] | None,
    ) -> np.ndarray:
        """The network's 3D ``(frames, individuals, keypoints, 3)`` in :attr:`network_frame`."""
        n_frames, n_ind, n_kp = coords.shape[:3]
        root = self.layout.roots[0]
        x = normalize_2d(coords, root, self.scale_inputs)
        missing = ~np.isfinite(x).all(-1)
        missing |= missing[..., root : root + 1]
        conf = np.where(missing, 0.0, conf)
        # a pose needs its root and one more keypoint: from the root alone nothing is known
        usable = ~missing[..., root] & ((~missing).sum(-1) >= 2)  # (frames, individuals)
        if self.temporal:
            z = self._run_temporal(x, conf, batch_size, progress)
        else:
            z = self._run_mlp(
                x.reshape(-1, 1, n_kp, 2), conf.reshape(-1, 1, n_kp), batch_size, progress
            )
            z = z.reshape(n_frames, n_ind, -1)
        out = self.layout.from_offsets(z.reshape(n_frames, n_ind, n_kp - 1, 3)).astype(np.float64)
        out[~usable] = np.nan
        return out

    def _with_root(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alias of :meth:`with_root`."""
        return self.with_root(coords)

    def with_root(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fill in the 2D root of poses that lost it, from their visible keypoints.

        The network's inputs are relative to the root's 2D position, so a pose without it could
        not be lifted. Where the same individual's root is seen in another frame, the nearest
        such frame's root is moved by the mean displacement of the keypoints seen in both
        frames. Otherwise the model's mean 2D pose (``norm.input_mean``) is fitted to the visible
        keypoints: a translation, plus a positive scale when inputs are scale-normalised. Poses
        with fewer than two visible keypoints stay unliftable.

        Returns
        -------
        tuple of np.ndarray
            The coordinates (a copy when any root was filled in) and a boolean
            ``(frames, individuals)`` mask of the poses whose root was estimated.
        """
        root = self.layout.roots[0]
        seen = np.isfinite(coords).all(-1)
        estimated = ~seen[..., root] & (seen.sum(-1) >= 2)
        if not estimated.any():
            return coords, estimated
        template = np.asarray(self.norm.input_mean, dtype=np.float64)[None]  # (1, k, 2)
        coords = coords.copy()
        coords[estimated, root] = _fit_root(
            coords[estimated], root, template, fixed_scale=not self.scale_inputs
        )
        for ind in range(coords.shape[1]):
            _root_from_nearest_frame(coords[:, ind], seen[:, ind], estimated[:, ind], root)
        return coords, estimated

    def _run_mlp(self, x, conf, batch_size, progress) -> np.ndarray:
        feats = torch.from_numpy(model_inputs(x, conf, self.norm, temporal=False))
        outs = []
        total = len(feats)
        with torch.inference_mode():
            for i in range(0, total, batch_size):
                outs.append(self._fast(feats[i : i + batch_size].to(self.device)).cpu())
                if progress is not None:
                    progress(min(i + batch_size, total), total)
        return (
            torch.cat(outs).numpy()
            if outs
            else np.zeros((0, 3 * (len(self.keypoints) - 1)), np.float32)
        )

    def _run_temporal(self, x, conf, batch_size, progress) -> np.ndarray:
        # x (frames, individuals, k, 2) -> per individual a sequence
        n_frames, n_ind = x.shape[:2]
        seq_x = np.swapaxes(x, 0, 1)  # (individuals, frames, k, 2)
        seq_c = np.swapaxes(conf, 0, 1)
        feats = model_inputs(seq_x, seq_c, self.norm, temporal=True)  # (individuals, k*3, frames)
        half = self.receptive_field // 2
        feats = np.pad(feats, ((0, 0), (0, 0), (half, half)), mode="edge")
        feats_t = torch.from_numpy(feats)
        chunk = max(1, batch_size // max(n_ind, 1))
        outs = []
        with torch.inference_mode():
            for s in range(0, n_frames, chunk):
                e = min(s + chunk, n_frames)
                piece = feats_t[:, :, s : e + 2 * half].to(self.device)
                outs.append(self._fast(piece).cpu())
                if progress is not None:
                    progress(e * n_ind, n_frames * n_ind)
        if not outs:
            return np.zeros((0, n_ind, 3 * (len(self.keypoints) - 1)), np.float32)
        out = torch.cat(outs, dim=2).numpy()  # (individuals, outputs, frames)
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    # -- evaluation helpers ---------------------------------------------------------------
    def truth_in_output_frame(
        self, truth: Poses, camera: Camera | None = None, frame: str | None = None
    ) -> Poses:
        """Express 3D ground truth (world axes) in the axes :meth:`lift` returns for ``frame``.

        The truth is in the library's / calibration's world axes. World output (the default of
        known-camera and real-pair models) needs no change. Camera output is compared in a
        camera's axes: the lifter's own known camera, or ``camera`` (the camera the 2D tracks were
        filmed with). Upright output (random-camera models) is compared in that camera's upright
        axes (:func:`~napari_liftpose.lifting.cameras.upright_rotation`: its heading, the
        library's up as z), so ``camera`` is required. Metrics are root-relative, so only the
        rotation matters.

        Raises
        ------
        ValueError
            For camera or upright output when neither the lifter nor the caller gives a camera,
            or a ``frame`` this lifter cannot give.
        """
        frame = self.output_frame(frame)
        if frame == "world":
            return truth.copy(frame="world")
        camera = camera or self.camera
        if camera is None:
            raise ValueError(
                "this lifter was trained with random virtual cameras: give the camera the 2D tracks "
                "were filmed with so the 3D truth can be put in its frame"
            )
        if frame == "upright":
            up = self.meta.get("camera", {}).get("up", (0.0, 0.0, 1.0))
            rot = upright_rotation(rodrigues(camera.rotation), up)
            return truth.copy(coords=truth.coords @ rot.T, frame="upright")
        return truth.copy(coords=camera.to_camera_frame(truth.coords), frame="camera")


def _root_from_nearest_frame(
    track: np.ndarray, seen: np.ndarray, estimated: np.ndarray, root: int
) -> None:
    """Set the root of the ``estimated`` frames of one ``track`` from the nearest frame with one.

    ``track`` ``(frames, keypoints, 2)`` is changed in place: root = that frame's root + the mean
    displacement of the non-root keypoints seen in both frames (frames sharing none are left).
    """
    with_root = np.flatnonzero(seen[:, root])
    frames = np.flatnonzero(estimated)
    if len(with_root) == 0 or len(frames) == 0:
        return
    right = np.clip(np.searchsorted(with_root, frames), 0, len(with_root) - 1)
    left = np.clip(right - 1, 0, len(with_root) - 1)
    closer_left = np.abs(with_root[left] - frames) <= np.abs(with_root[right] - frames)
    near = np.where(closer_left, with_root[left], with_root[right])
    both = seen[frames] & seen[near]
    both[:, root] = False
    shift = np.where(both[..., None], track[frames] - track[near], 0.0).sum(1)
    count = both.sum(1)
    ok = count > 0
    track[frames[ok], root] = track[near[ok], root] + shift[ok] / count[ok, None]


def _fit_root(points: np.ndarray, root: int, template: np.ndarray, fixed_scale: bool) -> np.ndarray:
    """The 2D root ``(n, 2)`` that best places ``template`` on the visible ``points``.

    Fits ``points[k] ~ t + s * template[k]`` over the finite non-root keypoints (least squares)
    and returns ``t + s * template[root]``. ``fixed_scale``: ``s = 1`` (inputs in pixels).
    Otherwise ``s`` is the least-squares scale when it is positive, else the ratio of spreads
    (never a mirrored pose); a template without spread gives the visible keypoints' centroid.

    Parameters
    ----------
    points : np.ndarray
        ``(n, keypoints, 2)``; NaN where missing (the root is ignored).
    root : int
        Root keypoint index.
    template : np.ndarray
        ``(n or 1, keypoints, 2)``.
    fixed_scale : bool
        Fit a translation only.
    """
    seen = np.isfinite(points).all(-1)
    seen[:, root] = False
    weight = seen[..., None].astype(np.float64)
    count = np.maximum(weight.sum(1), 1.0)  # (n, 1)
    points = np.where(seen[..., None], points, 0.0)
    template = np.nan_to_num(np.broadcast_to(template, points.shape))
    p_mean = (weight * points).sum(1) / count
    m_mean = (weight * template).sum(1) / count
    if fixed_scale:
        scale = np.ones(len(points))
    else:
        dp, dm = points - p_mean[:, None], template - m_mean[:, None]
        m_spread = (weight * dm**2).sum((1, 2))
        safe = np.maximum(m_spread, 1e-12)
        scale = (weight * dp * dm).sum((1, 2)) / safe
        ratio = np.sqrt((weight * dp**2).sum((1, 2)) / safe)
        scale = np.where(scale > 0, scale, ratio)
        scale[m_spread < 1e-12] = 0.0
    return p_mean - scale[:, None] * (m_mean - template[:, root])


def load_lifter(path: str | Path, device: str = "auto") -> Lifter:
    """Load a lifter file written by :func:`~napari_liftpose.lifting.train`.

    Parameters
    ----------
    path : str or Path
        A napari-liftpose ``.safetensors`` model.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.

    Returns
    -------
    Lifter

    Raises
    ------
    ModelFileError
        If the file is missing, a pickle, not a lifter, or its contents do not fit together.
    """
    path = Path(path)
    meta, shapes = read_checkpoint_header(path)
    spec = check_lifter_meta(path, meta)
    expected = expected_shapes(path, spec)  # sizes checked before anything is allocated
    check_tensor_shapes(path, expected, shapes)
    tensors, _ = load_checkpoint(path, names=expected)
    check_tensor_values(path, tensors)
    meta = {**meta, "architecture": spec.architecture}
    try:
        model = build_model(spec.architecture, len(spec.keypoints), spec.n_outputs)
        state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        model.load_state_dict(state, strict=True)
        norm = Normalization.from_tensors(tensors)
        lifter = Lifter(model, meta, norm, resolve_device(device), path)
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ModelFileError(path, f"incomplete or inconsistent lifter file ({err})") from None
    return lifter
