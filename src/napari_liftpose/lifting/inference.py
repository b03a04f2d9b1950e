"""Apply a trained lifter: whole files (batched) and single frames (live re-lifting)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from napari_liftpose.io.calibration import Camera
from napari_liftpose.lifting.cameras import camera_from_dict
from napari_liftpose.lifting.checkpoint import (
    ModelFileError,
    load_checkpoint,
    read_checkpoint_header,
)
from napari_liftpose.lifting.data import normalize_2d
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
from napari_liftpose.lifting.training import resolve_device
from napari_liftpose.poses import Poses

__all__ = ["Lifter", "load_lifter"]


class Lifter:
    """A trained network with everything needed to use it.

    Build one with :func:`load_lifter`. Attributes: ``keypoints``, ``edges``, ``layout``
    (roots), ``meta`` (the checkpoint's metadata), ``receptive_field`` (1 for the MLP),
    ``camera`` (the training camera, if it was a known one), ``frame`` (``"camera"`` or
    ``"world"``: the frame of the 3D it predicts), ``units``.
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
        self.frame: str = meta.get("frame", "camera")
        self.units: str = meta.get("units", "")

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

        Returns
        -------
        Poses
            3D ``(frames, individuals, keypoints, 3)`` relative to the first root, in the camera
            frame (or the library's frame for real-pair models); NaN where the input pose has no
            root keypoint. Confidence, individuals and fps are carried over.
        """
        if poses_2d.n_space != 2:
            raise ValueError(f"{poses_2d.name}: expected 2D tracks to lift, got 3D")
        poses = self.match(poses_2d)
        coords = self.lift_arrays(poses.coords, poses.confidence, batch_size, progress)
        return Poses(
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
            metadata={"lifter": str(self.path) if self.path else None, "frame": self.frame},
        )

    def lift_arrays(
        self,
        coords: np.ndarray,
        confidence: np.ndarray | None = None,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Lift ``(frames, individuals, keypoints, 2)`` in the model's keypoint order to ``(..., 3)``."""
        coords = np.asarray(coords, dtype=np.float64)
        n_frames, n_ind, n_kp = coords.shape[:3]
        if n_kp != len(self.keypoints):
            raise ValueError(f"expected {len(self.keypoints)} keypoints, got {n_kp}")
        if batch_size is None:
            batch_size = 65536 if self.temporal else 8192
        if confidence is None:
            confidence = np.ones(coords.shape[:3])
        conf = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=1.0), 0.0, 1.0)
        root = self.layout.roots[0]
        x = normalize_2d(coords, root, self.scale_inputs)
        missing = ~np.isfinite(x).all(-1)
        missing |= missing[..., root : root + 1]
        conf = np.where(missing, 0.0, conf)
        usable = ~missing[..., root]  # (frames, individuals)
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

    # -- one frame -----------------------------------------------------------------------
    def lift_frame(
        self,
        coords_2d: np.ndarray,
        confidence: np.ndarray | None = None,
        context: np.ndarray | None = None,
        frame: int | None = None,
        context_confidence: np.ndarray | None = None,
    ) -> np.ndarray:
        """Lift one frame (fast path for live re-lifting after a 2D edit).

        Parameters
        ----------
        coords_2d : np.ndarray
            ``(individuals, keypoints, 2)`` in the model's keypoint order; NaN where missing.
        confidence : np.ndarray, optional
            ``(individuals, keypoints)``.
        context : np.ndarray, optional
            Temporal model only: the surrounding tracks ``(frames, individuals, keypoints, 2)``
            and ``frame``, the index of this frame in them. The window of ``receptive_field``
            frames around ``frame`` is lifted with ``coords_2d`` in place of that frame. Without
            context the frame is repeated over the window (a static pose).
        frame : int, optional
            Index of this frame in ``context``.
        context_confidence : np.ndarray, optional
            ``(frames, individuals, keypoints)`` confidence of ``context``.

        Returns
        -------
        np.ndarray
            ``(individuals, keypoints, 3)``; NaN for an individual without its root keypoint.
        """
        coords_2d = np.asarray(coords_2d, dtype=np.float64)
        if coords_2d.ndim != 3 or coords_2d.shape[1:] != (len(self.keypoints), 2):
            raise ValueError(
                f"coords_2d: expected shape (individuals, {len(self.keypoints)}, 2), got {coords_2d.shape}"
            )
        conf = None if confidence is None else np.asarray(confidence, dtype=np.float64)[None]
        if not self.temporal:
            return self.lift_arrays(coords_2d[None], conf)[0]
        half = self.receptive_field // 2
        if context is None or frame is None:
            window = np.repeat(coords_2d[None], self.receptive_field, axis=0)
            wconf = None if conf is None else np.repeat(conf, self.receptive_field, axis=0)
        else:
            context = np.asarray(context, dtype=np.float64)
            idx = np.clip(np.arange(frame - half, frame + half + 1), 0, len(context) - 1)
            window = context[idx].copy()
            window[half] = coords_2d
            if context_confidence is None and conf is None:
                wconf = None
            else:
                cc = (
                    np.ones(context.shape[:3])
                    if context_confidence is None
                    else np.asarray(context_confidence, dtype=np.float64)
                )
                wconf = cc[idx].copy()
                wconf[half] = 1.0 if conf is None else conf[0]
        x = normalize_2d(window, self.layout.roots[0], self.scale_inputs)
        c = (
            np.ones(window.shape[:3])
            if wconf is None
            else np.clip(np.nan_to_num(wconf, nan=1.0), 0, 1)
        )
        missing = ~np.isfinite(x).all(-1)
        missing |= missing[..., self.layout.roots[0] : self.layout.roots[0] + 1]
        c = np.where(missing, 0.0, c)
        feats = torch.from_numpy(
            model_inputs(np.swapaxes(x, 0, 1), np.swapaxes(c, 0, 1), self.norm, True)
        )
        with torch.inference_mode():
            z = self._fast(feats.to(self.device)).cpu().numpy()[:, :, 0]  # (individuals, outputs)
        out = self.layout.from_offsets(z.reshape(len(z), -1, 3)).astype(np.float64)
        out[missing[half, :, self.layout.roots[0]]] = np.nan
        return out

    # -- evaluation helpers ---------------------------------------------------------------
    def truth_in_output_frame(self, truth: Poses, camera: Camera | None = None) -> Poses:
        """Express 3D ground truth in the frame this lifter predicts in.

        Models trained with a known camera rotate world truth into that camera's frame;
        real-pair models predict in the library's frame already; random-camera models need
        the ``camera`` the 2D tracks were filmed with.

        Raises
        ------
        ValueError
            For a random-camera model when no ``camera`` is given.
        """
        camera = camera or self.camera
        if self.frame == "world" and camera is None:
            return truth
        if camera is None:
            raise ValueError(
                "this lifter was trained with random virtual cameras: give the camera the 2D tracks "
                "were filmed with so the 3D truth can be put in its frame"
            )
        return truth.copy(coords=camera.to_camera_frame(truth.coords))


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


def lift_files(
    lifter: Lifter, poses: Sequence[Poses], batch_size: int | None = None
) -> list[Poses]:
    """Lift several 2D track files with one lifter."""
    return [lifter.lift(p, batch_size) for p in poses]
