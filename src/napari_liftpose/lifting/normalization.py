"""Z-score statistics and the network input layout, shared by training and inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Normalization", "model_inputs"]


def _mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
    mean = np.nan_to_num(mean)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    return mean, std


@dataclass
class Normalization:
    """Per-coordinate z-score statistics.

    Attributes
    ----------
    input_mean, input_std : np.ndarray
        ``(keypoints, 2)`` of the normalised 2D inputs.
    target_mean, target_std : np.ndarray
        ``(keypoints - 1, 3)`` of the root-relative 3D targets.
    """

    input_mean: np.ndarray
    input_std: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray

    @classmethod
    def fit(cls, inputs: np.ndarray, targets: np.ndarray) -> Normalization:
        """Statistics of inputs ``(n, keypoints, 2)`` and targets ``(n, keypoints - 1, 3)``, NaN ignored."""
        im, isd = _mean_std(inputs)
        tm, tsd = _mean_std(targets)
        return cls(im, isd, tm, tsd)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """``{"norm.<name>": float64 tensor}`` for checkpoints."""
        return {
            f"norm.{k}": torch.from_numpy(np.ascontiguousarray(getattr(self, k), dtype=np.float64))
            for k in ("input_mean", "input_std", "target_mean", "target_std")
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Normalization:
        """Inverse of :meth:`to_tensors` (raises ``KeyError`` if one is missing)."""
        return cls(
            *(
                tensors[f"norm.{k}"].numpy().astype(np.float64)
                for k in ("input_mean", "input_std", "target_mean", "target_std")
            )
        )

    def normalize_targets(self, offsets: np.ndarray) -> np.ndarray:
        """Offsets ``(..., keypoints - 1, 3)`` -> z-scores (NaN kept)."""
        return (offsets - self.target_mean) / self.target_std

    def denormalize_targets(self, z: np.ndarray) -> np.ndarray:
        """Z-scores ``(..., keypoints - 1, 3)`` -> offsets."""
        return z * self.target_std + self.target_mean


def model_inputs(
    x: np.ndarray, conf: np.ndarray, norm: Normalization, temporal: bool
) -> np.ndarray:
    """Network input from normalised 2D windows.

    Parameters
    ----------
    x : np.ndarray
        ``(n, frames, keypoints, 2)`` root-relative (scale-normalised) 2D, NaN where missing.
    conf : np.ndarray
        ``(n, frames, keypoints)`` confidence in [0, 1], 0 where missing.
    norm : Normalization
        Input statistics.
    temporal : bool
        False: MLP input ``(n, keypoints * 3)`` of ``(x, y, confidence)`` of the centre frame
        (an MLP with ``"inputs": "xy"`` uses only ``x, y``);
        True: temporal input ``(n, keypoints * 3, frames)`` of ``(x, y, confidence)``.

    Returns
    -------
    np.ndarray
        float32 array; missing keypoints are 0 (the mean) with confidence 0.
    """
    z = (x - norm.input_mean) / norm.input_std
    z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
    feats = np.concatenate([z, conf[..., None]], axis=-1)  # (n, frames, k, 3)
    if not temporal:
        centre = feats[:, feats.shape[1] // 2]
        return np.ascontiguousarray(centre.reshape(len(z), -1), dtype=np.float32)
    n, frames = feats.shape[:2]
    return np.ascontiguousarray(feats.reshape(n, frames, -1).transpose(0, 2, 1), dtype=np.float32)
