"""Inference-only network rewrites: BatchNorm and target de-normalisation folded into layers.

Folding makes the forward pass cheaper (no separate BatchNorm or de-normalisation passes) and
leaves the result equal up to float rounding. The trained weights are never changed: the
rewrite works on a copy.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from napari_liftpose.lifting.models import ResidualMLP, TemporalConvNet

__all__ = ["fold_for_inference"]


def _fold_bn(layer: nn.Linear | nn.Conv1d, bn: nn.BatchNorm1d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    layer.weight.data = layer.weight.data * scale.reshape(shape)
    layer.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def _fold_output(layer: nn.Linear | nn.Conv1d, std: np.ndarray, mean: np.ndarray) -> None:
    std_t = torch.as_tensor(std.reshape(-1), dtype=layer.weight.dtype)
    mean_t = torch.as_tensor(mean.reshape(-1), dtype=layer.weight.dtype)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    layer.weight.data = layer.weight.data * std_t.reshape(shape)
    layer.bias = nn.Parameter(layer.bias.data * std_t + mean_t)


@torch.no_grad()
def fold_for_inference(
    model: nn.Module, target_mean: np.ndarray, target_std: np.ndarray
) -> nn.Module:
    """Return an eval-mode copy of ``model`` whose output is de-normalised offsets.

    Parameters
    ----------
    model : ResidualMLP or TemporalConvNet
        A trained network (z-scored outputs).
    target_mean, target_std : np.ndarray
        ``(keypoints - 1, 3)`` target statistics.

    Returns
    -------
    torch.nn.Module
        Same input as ``model``; output in target units.
    """
    fast = copy.deepcopy(model).eval()
    if isinstance(fast, ResidualMLP):
        pairs = [(fast.inp, 0)] + [(blk.layers, i) for blk in fast.blocks for i in (0, 4)]
        for seq, i in pairs:
            _fold_bn(seq[i], seq[i + 1])
            seq[i + 1] = nn.Identity()
        _fold_output(fast.out, target_std, target_mean)
    elif isinstance(fast, TemporalConvNet):
        _fold_bn(fast.expand, fast.expand_bn)
        fast.expand_bn = nn.Identity()
        for i in range(len(fast.convs)):
            _fold_bn(fast.convs[i], fast.bns[i])
            fast.bns[i] = nn.Identity()
        _fold_output(fast.head, target_std, target_mean)
    else:  # pragma: no cover - only the two model types exist
        raise TypeError(f"cannot fold {type(model).__name__}")
    return fast.eval()
