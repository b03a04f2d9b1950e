"""Lifting networks, built from a small JSON-able config.

* ``{"type": "mlp", ...}``: the residual MLP of Martinez et al. (2017) used by LiftPose3D.
  Input: ``(batch, keypoints * 3)`` of z-scored ``(x, y)`` and the confidence per keypoint
  (:func:`~napari_liftpose.lifting.normalization.model_inputs`); ``"inputs": "xyc"`` uses all
  three, ``"xy"`` (every model file written before the key existed) only ``x, y``, so a hidden
  keypoint is then indistinguishable from one at its mean position. Output: z-scored offsets
  ``(batch, outputs)``.
* ``{"type": "temporal", ...}``: VideoPose3D-style dilated 1D convolutions over a window of
  frames. Input ``(batch, keypoints * 3, frames)`` with ``(x, y, confidence)`` per keypoint;
  output ``(batch, outputs, frames - receptive_field + 1)``. One list of filter widths defines
  the architecture; the receptive field is their product.

Dropout draws from a ``torch.Generator`` the trainer hands over (:func:`set_generator`), so a
seed makes training repeatable without touching torch's global random state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "MLP_INPUTS",
    "ResidualMLP",
    "TemporalConvNet",
    "build_model",
    "default_architecture",
    "init_weights",
    "set_generator",
]


#: Input layouts of the MLP: "xy" (2D only; model files without the key) or "xyc" (2D and
#: confidence per keypoint, the default since the key exists).
MLP_INPUTS = ("xy", "xyc")


class SeededDropout(nn.Module):
    """Dropout that draws its mask from an explicit generator (or torch's default one)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero each element with probability ``p`` in training mode, rescaling the rest."""
        if not self.training or self.p == 0:
            return x
        keep = (
            torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype) >= self.p
        )
        return x * keep / (1.0 - self.p)


class _Block(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            SeededDropout(dropout),
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            SeededDropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class ResidualMLP(nn.Module):
    """Martinez et al.'s residual MLP (LiftPose3D's lifter).

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input features (``keypoints * 2``) and outputs (``targets * 3``).
    width : int
        Hidden width (LiftPose3D: 1024).
    blocks : int
        Residual blocks, each two Linear + BatchNorm + ReLU + Dropout (LiftPose3D: 2).
    dropout : float
        Dropout probability (LiftPose3D: 0.5).
    inputs : {"xy", "xyc"}
        Per keypoint: the 2D alone (LiftPose3D, older model files) or the 2D and its confidence
        (0 for a hidden keypoint), so the network knows which keypoints it does not see.
    """

    receptive_field = 1

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        width: int = 256,
        blocks: int = 2,
        dropout: float = 0.1,
        inputs: str = "xy",
    ):
        super().__init__()
        if inputs not in MLP_INPUTS:
            raise ValueError(f"inputs: expected one of {list(MLP_INPUTS)}, got {inputs!r}")
        self.inputs = inputs
        self.n_keypoints = int(n_inputs) // 2
        features = self.n_keypoints * len(inputs)
        self.inp = nn.Sequential(
            nn.Linear(features, width), nn.BatchNorm1d(width), nn.ReLU(), SeededDropout(dropout)
        )
        self.blocks = nn.Sequential(*[_Block(width, dropout) for _ in range(blocks)])
        self.out = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, keypoints * 3)`` (or ``keypoints * 2`` of x, y) -> ``(batch, n_outputs)``."""
        if self.inputs == "xy" and x.shape[1] == 3 * self.n_keypoints:
            x = x.reshape(len(x), self.n_keypoints, 3)[..., :2].reshape(len(x), -1)
        return self.out(self.blocks(self.inp(x)))


class TemporalConvNet(nn.Module):
    """VideoPose3D's temporal model: dilated 1D convolutions with residual connections.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input channels (``keypoints * 3``: x, y, confidence) and outputs (``targets * 3``).
    filter_widths : list of int
        Kernel width of each layer; layer ``i`` is dilated by the product of the earlier widths.
        The receptive field is the product of all widths (``[3, 3, 3]``: 27 frames).
    channels : int
        Convolution channels.
    dropout : float
        Dropout probability.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        filter_widths: list[int] | tuple[int, ...] = (3, 3, 3),
        channels: int = 256,
        dropout: float = 0.25,
    ):
        super().__init__()
        widths = [int(w) for w in filter_widths]
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise ValueError(
                f"filter_widths: expected odd positive integers, got {list(filter_widths)}"
            )
        self.filter_widths = widths
        self.expand = nn.Conv1d(n_inputs, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels)
        self.drop = SeededDropout(dropout)
        self.pads: list[int] = []
        convs, bns = [], []
        dilation = widths[0]
        for w in widths[1:]:
            self.pads.append((w - 1) * dilation // 2)
            convs += [
                nn.Conv1d(channels, channels, w, dilation=dilation, bias=False),
                nn.Conv1d(channels, channels, 1, bias=False),
            ]
            bns += [nn.BatchNorm1d(channels), nn.BatchNorm1d(channels)]
            dilation *= w
        self.convs = nn.ModuleList(convs)
        self.bns = nn.ModuleList(bns)
        self.head = nn.Conv1d(channels, n_outputs, 1)

    @property
    def receptive_field(self) -> int:
        """Frames of input needed for one output frame: the product of the filter widths."""
        return math.prod(self.filter_widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_inputs, frames)`` -> ``(batch, n_outputs, frames - receptive_field + 1)``."""
        x = self.drop(torch.relu(self.expand_bn(self.expand(x))))
        for i, pad in enumerate(self.pads):
            res = x[:, :, pad : x.shape[2] - pad]
            x = self.drop(torch.relu(self.bns[2 * i](self.convs[2 * i](x))))
            x = res + self.drop(torch.relu(self.bns[2 * i + 1](self.convs[2 * i + 1](x))))
        return self.head(x)


def default_architecture(kind: str) -> dict:
    """The default architecture config of a model type (``"mlp"`` or ``"temporal"``)."""
    if kind == "mlp":
        return {"type": "mlp", "width": 256, "blocks": 1, "dropout": 0.1, "inputs": "xyc"}
    if kind == "temporal":
        return {"type": "temporal", "filter_widths": [3], "channels": 256, "dropout": 0.1}
    raise ValueError(f"model: expected 'mlp' or 'temporal', got {kind!r}")


def build_model(architecture: dict, n_keypoints: int, n_outputs: int) -> nn.Module:
    """Build a network from its config.

    Parameters
    ----------
    architecture : dict
        ``{"type": "mlp", "width", "blocks", "dropout", "inputs"}`` or
        ``{"type": "temporal", "filter_widths", "channels", "dropout"}``; missing keys take
        the defaults of :func:`default_architecture`, except the MLP's ``inputs``: a config
        without it is a model file's from before it existed, "xy".
    n_keypoints : int
        Input keypoints.
    n_outputs : int
        Output values (``3 * (keypoints - 1)``).

    Returns
    -------
    torch.nn.Module
        The untrained network, with a ``receptive_field`` attribute.
    """
    kind = architecture.get("type", "mlp")
    cfg = {**default_architecture(kind), **architecture}
    if kind == "mlp":
        return ResidualMLP(
            n_keypoints * 2,
            n_outputs,
            int(cfg["width"]),
            int(cfg["blocks"]),
            float(cfg["dropout"]),
            str(architecture.get("inputs", "xy")),
        )
    return TemporalConvNet(
        n_keypoints * 3,
        n_outputs,
        list(cfg["filter_widths"]),
        int(cfg["channels"]),
        float(cfg["dropout"]),
    )


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise linear and convolution layers as torch does, drawing from ``generator``."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Conv1d):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)


def set_generator(model: nn.Module, generator: torch.Generator | None) -> None:
    """Make every dropout layer of ``model`` draw from ``generator``."""
    for module in model.modules():
        if isinstance(module, SeededDropout):
            module.generator = generator
