"""The settings of a training run (:class:`TrainConfig`) and their validation."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from napari_liftpose.lifting.cameras import KnownCamera, RandomCameras
from napari_liftpose.lifting.data import Augmentation, PairedTracks
from napari_liftpose.lifting.lifter_meta import (
    MAX_BLOCKS,
    MAX_LAYERS,
    MAX_RECEPTIVE_FIELD,
    MAX_WIDTH,
)
from napari_liftpose.lifting.models import MLP_INPUTS, default_architecture

__all__ = ["TrainConfig"]

#: Default Adam weight decay of real-pair training (see :meth:`TrainConfig.resolved_weight_decay`).
WEIGHT_DECAY_PAIRS = 0.01

#: Output frames per epoch up to which :attr:`TrainConfig.library_passes` multiplies a library.
PASSES_CAP_FRAMES = 8192

#: A source of training 2D (what the noise defaults depend on).
Source = KnownCamera | RandomCameras | PairedTracks


@dataclass
class TrainConfig:
    """Everything that controls a training run (stored in the model file).

    Parameters
    ----------
    model : {"mlp", "temporal"}
        Network type.
    architecture : dict, optional
        Overrides of :func:`~napari_liftpose.lifting.models.default_architecture`, e.g.
        ``{"width": 1024}`` for LiftPose3D's MLP or ``{"filter_widths": [3, 3, 3, 3]}``.
    epochs : int
        Maximum number of epochs.
    batch_size : int, optional
        Output frames per optimisation step (default 64).
    lr : float, optional
        Initial Adam learning rate (default: MLP 1e-3, temporal 2e-3); decays to
        ``lr * lr_final`` on a cosine schedule.
    lr_final : float
        Final learning rate as a fraction of ``lr``.
    weight_decay : float, optional
        Adam weight decay (L2). None picks the source's default
        (:meth:`resolved_weight_decay`): 0.01 for real pairs, whose 2D is the same every epoch
        (a hundred frames overfit without it), 0 for projected libraries, which get new
        cameras and noise every epoch.
    val_fraction : float
        Fraction of every sequence (its last frames) held out for model selection.
    patience : int
        Stop after this many epochs without a better validation MPJPE (0: never).
    seed : int
        Seed of every random choice; the same seed gives bit-identical weights on a CPU.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"mps"``.
    noise_2d, noise_px, camera_jitter_deg, camera_jitter_distance : float, optional
        2D noise (fraction of the pose's size; pixels) and known-camera jitter (degrees; fraction
        of the distance), see :class:`~napari_liftpose.lifting.data.Augmentation`. None picks the
        default of the source of 2D (:data:`~napari_liftpose.lifting.data.NOISE_DEFAULTS`):
        known camera 1.5 px and 1 degree / 2 %, random cameras 0.03 of the pose's size, real
        pairs 0.02. Validation is scored with the same 2D noise (no jitter).
    heading_deg : float, optional
        Known camera: turn each training window about the world's z axis by up to this many
        degrees (see :class:`~napari_liftpose.lifting.data.Augmentation`). None decides from the
        library: 180 for a free-moving animal (headings spread over
        :data:`~napari_liftpose.lifting.data.HEADING_SPREAD_FREE` degrees), 0 for a tethered one.
    bone_jitter, keypoint_dropout, frame_dropout : float, optional
        Augmentations; None picks the default (see :meth:`augmentation`).
    dropout_samples : float
        Fraction of training samples that get keypoint/frame dropout (the rest stay complete).
    subset_dropout : float
        Largest fraction of the keypoints a training sample hides in all its frames (drawn per
        sample, see :class:`~napari_liftpose.lifting.data.Augmentation`); 0 (default) for a
        lifter trained on the user's own skeleton, about 0.8 for lifters meant to lift whatever
        subset of their keypoints a lab tracks (built-in lifters).
    max_grad_norm : float
        Gradient clipping (0: none).
    min_epoch_frames : int
        Output frames every epoch trains on at least: a small library (a hundred frames of
        real pairs) is drawn several times per epoch, each time with new noise and cameras, so
        ``epochs`` and ``patience`` mean the same amount of training whatever its size.
    library_passes : int
        Every epoch also trains on at least this many draws of each training frame, up to
        :data:`PASSES_CAP_FRAMES` output frames in all: a library of a few hundred frames seen
        through new cameras, headings and noise every draw holds more than one pass teaches
        (insect, 800 frames: temporal 0.144 -> 0.077 mm, MLP 0.068 -> 0.044; see
        docs/lifting.md), while a hundred frames of real pairs (``min_epoch_frames`` rules)
        keep their time. 1: the epoch is ``min_epoch_frames`` or one pass (before this field).
    chunk : int
        Temporal model: output frames per training sample (a sample is a clip of
        ``receptive_field + chunk - 1`` frames seen by one camera); ``batch_size`` then counts
        output frames, i.e. ``batch_size // chunk`` clips per step.
    """

    model: str = "mlp"
    architecture: dict | None = None
    epochs: int = 60
    batch_size: int | None = None
    lr: float | None = None
    lr_final: float = 0.01
    weight_decay: float | None = None
    val_fraction: float = 0.1
    patience: int = 20
    seed: int = 0
    device: str = "auto"
    noise_2d: float | None = None
    bone_jitter: float | None = None
    keypoint_dropout: float | None = None
    frame_dropout: float | None = None
    dropout_samples: float = 0.5
    subset_dropout: float = 0.0
    max_grad_norm: float = 1.0
    chunk: int = 8
    min_epoch_frames: int = 1024
    library_passes: int = 6
    noise_px: float | None = None
    camera_jitter_deg: float | None = None
    camera_jitter_distance: float | None = None
    heading_deg: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (also called by :func:`train`, in case fields were changed later).

        Raises
        ------
        ValueError
            ``"<field>: expected X, got Y"`` for the first bad field.
        """
        if self.model not in ("mlp", "temporal"):
            raise ValueError(f"model: expected 'mlp' or 'temporal', got {self.model!r}")
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1, optional=True)
        _check_number("lr", self.lr, low=0.0, low_open=True, optional=True)
        _check_number("lr_final", self.lr_final, low=0.0, high=1.0)
        _check_number("weight_decay", self.weight_decay, low=0.0, optional=True)
        _check_number("val_fraction", self.val_fraction, low=0.0, high=1.0, open_=True)
        _check_int("patience", self.patience, 0)
        _check_int("seed", self.seed, 0)
        _check_int("chunk", self.chunk, 1)
        _check_int("min_epoch_frames", self.min_epoch_frames, 1, 10_000_000)
        _check_int("library_passes", self.library_passes, 1, 1000)
        if not isinstance(self.device, str):
            raise ValueError(f"device: expected a device name, got {self.device!r}")
        _check_number("heading_deg", self.heading_deg, 0.0, 180.0, optional=True)
        for name in ("noise_2d", "bone_jitter", "noise_px", "camera_jitter_deg"):
            _check_number(name, getattr(self, name), low=0.0, optional=True)
        for name in ("keypoint_dropout", "frame_dropout"):
            _check_number(name, getattr(self, name), 0.0, 1.0, high_open=True, optional=True)
        _check_number(
            "camera_jitter_distance", self.camera_jitter_distance, 0.0, 1.0, optional=True
        )
        _check_number("dropout_samples", self.dropout_samples, low=0.0, high=1.0)
        _check_number("subset_dropout", self.subset_dropout, 0.0, 1.0, high_open=True)
        _check_number("max_grad_norm", self.max_grad_norm, low=0.0)
        _check_architecture(self.model, self.architecture)

    @property
    def step_size(self) -> int:
        """Output frames per optimisation step, with the model type's default."""
        if self.batch_size is not None:
            return int(self.batch_size)
        return 64

    @property
    def learning_rate(self) -> float:
        """Initial learning rate, with the model type's default."""
        if self.lr is not None:
            return float(self.lr)
        return 2e-3 if self.model == "temporal" else 1e-3

    def epoch_repeats(self, frames: int) -> int:
        """How many times an epoch draws each of ``frames`` training output frames (>= 1).

        Enough for ``min_epoch_frames`` output frames, and for ``library_passes`` passes as long
        as they stay under :data:`PASSES_CAP_FRAMES` frames (a large library is one pass).
        """
        frames = max(int(frames), 1)
        passes = min(self.library_passes * frames, max(PASSES_CAP_FRAMES, frames))
        return max(1, -(-max(self.min_epoch_frames, passes) // frames))  # ceil

    def resolved_weight_decay(self, source: Source | None = None) -> float:
        """The Adam weight decay for training from ``source``: the field, or its default.

        Default: :data:`WEIGHT_DECAY_PAIRS` for real pairs (fixed 2D), 0 otherwise. Measured on
        the sleap-anipose mouse (96 frames of real pairs), MLP test MPJPE with 0 / 0.01: back
        camera 0.515 / 0.172, top 0.122 / 0.103; temporal back 0.298 / 0.130. On the
        projected fly it costs accuracy (0.0675 / 0.0760), so projected libraries get none.
        """
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return WEIGHT_DECAY_PAIRS if isinstance(source, PairedTracks) else 0.0

    def resolved_architecture(self) -> dict:
        """The full architecture config (defaults + overrides)."""
        return {**default_architecture(self.model), **(self.architecture or {}), "type": self.model}

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The config stored in a model file's ``training`` metadata (``asdict`` of one).

        Fields missing from ``data`` (a file written before they existed) take their defaults.

        Raises
        ------
        ValueError
            For a key that is no field, or a bad value.
        """
        if not isinstance(data, dict):
            raise ValueError(f"training: expected a dict of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ValueError(f"training: expected settings among {sorted(known)}, got {unknown}")
        return cls(**data)

    def validation_augmentation(
        self, real_pairs: bool = False, source: Source | None = None
    ) -> Augmentation:
        """The 2D noise validation is scored with: the training noise, and nothing else.

        Validation then meets 2D as noisy as training's (and, by the noise defaults, as real
        detections), so the printed validation error predicts the error on new recordings.
        The camera jitter is left out: validation sees the calibrated camera.
        """
        return self.augmentation(real_pairs, source).noise_only()

    def augmentation(self, real_pairs: bool = False, source: Source | None = None) -> Augmentation:
        """Return the augmentations to use, with the defaults filled in.

        Defaults: keypoint dropout 0.1 for the temporal model, and for the MLP trained on real
        pairs (whose tracks miss keypoints: mouse back camera 0.188 -> 0.174 mm); temporal frame
        dropout 0.05; 2D noise and
        camera jitter by the source of 2D (:data:`~napari_liftpose.lifting.data.NOISE_DEFAULTS`):
        ``source`` (or ``real_pairs=True``) picks them; without either they stay None and
        :meth:`~napari_liftpose.lifting.data.PoseSamples.draw` fills them in from its source.
        """
        temporal = self.model == "temporal"
        pairs = isinstance(source, PairedTracks) or (source is None and real_pairs)
        pick = lambda v, d: d if v is None else float(v)  # noqa: E731
        augment = Augmentation(
            noise_2d=_optional(self.noise_2d),
            noise_px=_optional(self.noise_px),
            camera_jitter_deg=_optional(self.camera_jitter_deg),
            camera_jitter_distance=_optional(self.camera_jitter_distance),
            heading_deg=_optional(self.heading_deg),
            bone_jitter=pick(self.bone_jitter, 0.0),
            keypoint_dropout=pick(self.keypoint_dropout, 0.1 if temporal or pairs else 0.0),
            frame_dropout=pick(self.frame_dropout, 0.05 if temporal else 0.0),
            dropout_samples=float(self.dropout_samples),
            subset_dropout=float(self.subset_dropout),
        )
        if source is None and real_pairs:
            source = PairedTracks([])
        return augment if source is None else augment.for_source(source)


def _optional(value: float | None) -> float | None:
    return None if value is None else float(value)


_ARCH_KEYS = {
    "mlp": ("width", "blocks", "dropout", "inputs"),
    "temporal": ("filter_widths", "channels", "dropout"),
}


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_int(name: str, value: object, low: int, high: int | None = None, optional=False) -> None:
    if value is None and optional:
        return
    ok = _is_int(value) and value >= low and (high is None or value <= high)
    if not ok:
        bound = f">= {low}" if high is None else f"{low}..{high}"
        raise ValueError(f"{name}: expected an integer {bound}, got {value!r}")


def _check_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    open_: bool = False,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> None:
    if value is None and optional:
        return
    low_open, high_open = low_open or open_, high_open or open_
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    ok = number and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bound = f"{'>' if low_open else '>='} {low:g}"
        else:
            bound = f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")


def _check_architecture(model: str, architecture: object) -> None:
    if architecture is None:
        return
    if not isinstance(architecture, dict):
        raise ValueError(f"architecture: expected a dict, got {architecture!r}")
    allowed = _ARCH_KEYS[model]
    unknown = [k for k in architecture if k not in allowed and k != "type"]
    if unknown:
        raise ValueError(
            f"architecture: expected keys among {list(allowed)} for {model}, got {unknown}"
        )
    if architecture.get("type", model) != model:
        raise ValueError(f"architecture type: expected {model!r}, got {architecture['type']!r}")
    if "inputs" in architecture and architecture["inputs"] not in MLP_INPUTS:
        raise ValueError(
            f"inputs: expected one of {list(MLP_INPUTS)}, got {architecture['inputs']!r}"
        )
    if "width" in architecture:
        _check_int("width", architecture["width"], 1, MAX_WIDTH)
    if "channels" in architecture:
        _check_int("channels", architecture["channels"], 1, MAX_WIDTH)
    if "blocks" in architecture:
        _check_int("blocks", architecture["blocks"], 1, MAX_BLOCKS)
    if "dropout" in architecture:
        _check_number("dropout", architecture["dropout"], 0.0, 1.0, high_open=True)
    if "filter_widths" in architecture:
        widths = architecture["filter_widths"]
        if (
            not isinstance(widths, list | tuple)
            or not 1 <= len(widths) <= MAX_LAYERS
            or not all(_is_int(w) and w >= 1 and w % 2 == 1 for w in widths)
        ):
            raise ValueError(
                f"filter_widths: expected 1..{MAX_LAYERS} odd integers >= 1, got {widths!r}"
            )
        if math.prod(widths) > MAX_RECEPTIVE_FIELD:
            raise ValueError(
                f"filter_widths: expected a receptive field (their product) of at most "
                f"{MAX_RECEPTIVE_FIELD} frames, got {math.prod(widths)}"
            )
