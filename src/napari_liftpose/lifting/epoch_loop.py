"""One training epoch and one validation pass: the inner loops of :func:`~.training.train`."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from napari_liftpose.lifting.metrics import mpjpe
from napari_liftpose.lifting.normalization import Normalization, model_inputs
from napari_liftpose.lifting.skeleton import RootLayout

__all__ = [
    "BestModel",
    "DeviceSamples",
    "cosine_lr",
    "is_cancelled",
    "run_epoch",
    "validate",
    "validation_mpjpe",
]

Cancel = threading.Event | Callable[[], bool] | None


@dataclass
class BestModel:
    """The best epoch so far: its number, validation MPJPE and weights (on the CPU)."""

    epoch: int | None = None
    val_mpjpe: float = math.inf
    state: dict[str, torch.Tensor] | None = None

    def offer(self, epoch: int, val_mpjpe: float, model: torch.nn.Module) -> bool:
        """Keep ``model``'s weights if ``val_mpjpe`` beats the best; True if it did (never NaN)."""
        if not val_mpjpe < self.val_mpjpe:
            return False
        self.epoch, self.val_mpjpe = epoch, val_mpjpe
        self.state = {
            f"model.{k}": v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
        }
        return True


class DeviceSamples:
    """Samples as device tensors: inputs, z-scored targets (NaN -> 0) and their mask."""

    def __init__(self, x, conf, offsets, norm: Normalization, temporal: bool, device: torch.device):
        z = norm.normalize_targets(offsets).reshape(len(offsets), -1)
        self.mask = torch.from_numpy(np.isfinite(z).astype(np.float32)).to(device)
        self.y = torch.from_numpy(np.nan_to_num(z).astype(np.float32)).to(device)
        self.x = torch.from_numpy(model_inputs(x, conf, norm, temporal)).to(device)
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.y)


def is_cancelled(cancel: Cancel) -> bool:
    """True once ``cancel`` (an Event or a callable) says stop."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def cosine_lr(lr: float, lr_final: float, epoch: int, n_epochs: int) -> float:
    """The learning rate of ``epoch`` (from 0): ``lr`` decaying to ``lr * lr_final`` on a cosine."""
    return lr * (lr_final + (1 - lr_final) * 0.5 * (1 + math.cos(math.pi * epoch / n_epochs)))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is 1."""
    diff = (pred - target) * mask
    return (diff * diff).sum() / mask.sum().clamp_min(1.0)


def _flat_outputs(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    out = model(inputs)
    if out.ndim == 3:  # temporal: (batch, outputs, frames) -> (batch, frames * outputs)
        out = out.transpose(1, 2)
    return out.reshape(len(out), -1)


def run_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DeviceSamples,
    order: torch.Tensor,
    per_step: int,
    max_grad_norm: float,
    cancel: Cancel = None,
) -> float | None:
    """One pass over ``data`` in ``order``, ``per_step`` samples a step; the mean loss.

    The ragged last batch is dropped (BatchNorm). Returns None when ``cancel`` was set
    (checked before every batch).
    """
    model.train()
    n_batches = max(len(data) // per_step, 1)
    total = 0.0
    for b in range(n_batches):
        if is_cancelled(cancel):
            return None
        sel = order[b * per_step : (b + 1) * per_step]
        loss = masked_mse(_flat_outputs(model, data.x[sel]), data.y[sel], data.mask[sel])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        total += float(loss.detach())
    return total / n_batches


def predict(model: torch.nn.Module, inputs: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """Network outputs ``(samples, outputs)`` for ``inputs``, in batches (no gradients kept)."""
    with torch.inference_mode():
        return torch.cat(
            [_flat_outputs(model, inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
        )


def validate(
    model: torch.nn.Module, val: DeviceSamples, norm: Normalization, layout: RootLayout
) -> tuple[float, float]:
    """``(validation loss, validation MPJPE)`` of ``model`` on ``val`` (eval mode)."""
    model.eval()
    pred = predict(model, val.x)
    loss = float(masked_mse(pred, val.y, val.mask))
    return loss, validation_mpjpe(pred.cpu().numpy().astype(np.float64), val.offsets, norm, layout)


def validation_mpjpe(
    pred_z: np.ndarray, truth_offsets: np.ndarray, norm: Normalization, layout: RootLayout
) -> float:
    """The validation MPJPE: :func:`~napari_liftpose.lifting.metrics.mpjpe` of the predictions.

    Parameters
    ----------
    pred_z : np.ndarray
        Normalised network outputs, ``(samples, (keypoints - 1) * 3)`` or any shape with as
        many values as ``truth_offsets``.
    truth_offsets : np.ndarray
        ``(..., keypoints - 1, 3)`` true offsets from each keypoint's root; NaN where missing.
    norm : Normalization
        Turns ``pred_z`` back into offsets.
    layout : RootLayout
        The model's roots and target sets (the same ones ``evaluate`` and the CLI use).

    Returns
    -------
    float
        In the library's units; NaN when no joint is valid.
    """
    truth_offsets = truth_offsets.reshape(-1, *truth_offsets.shape[-2:])
    pred = layout.from_offsets(norm.denormalize_targets(pred_z.reshape(truth_offsets.shape)))
    truth = layout.from_offsets(truth_offsets)
    return mpjpe(pred, truth, layout.roots, layout.target_sets)
