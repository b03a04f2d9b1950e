"""Train a lifter: validation-based model selection, early stopping, seeds, progress, cancel.

:func:`train` is safe to call from a worker thread: it keeps no global state (its random numbers
come from its own generators, torch's global seed and thread count are left alone), reports
through a ``progress`` callback and ``logging``, and stops within one batch when ``cancel`` is
set. The best model so far is kept in memory; ``output`` is written (atomically, verified) only
when training ends, so an existing model file is never replaced mid-run and a killed run leaves
it untouched. The optimiser state and the best weights are kept in
``<output>.resume.safetensors`` during the run so that ``resume=True`` continues it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from napari_liftpose.io import interrupts
from napari_liftpose.io.calibration import Camera
from napari_liftpose.io.paths import colliding_input
from napari_liftpose.lifting.camera_defaults import default_distance
from napari_liftpose.lifting.cameras import KnownCamera, RandomCameras
from napari_liftpose.lifting.checkpoint import ModelFileError, load_checkpoint, save_checkpoint
from napari_liftpose.lifting.data import Augmentation, PairedTracks, PoseSamples
from napari_liftpose.lifting.lifter_meta import (
    MAX_BLOCKS,
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_RECEPTIVE_FIELD,
    MAX_WIDTH,
)
from napari_liftpose.lifting.metrics import mpjpe
from napari_liftpose.lifting.models import (
    build_model,
    default_architecture,
    init_weights,
    set_generator,
)
from napari_liftpose.lifting.normalization import Normalization, model_inputs
from napari_liftpose.lifting.skeleton import RootLayout
from napari_liftpose.poses import Poses

__all__ = ["TrainConfig", "Progress", "TrainResult", "train", "resolve_device", "resume_path"]

log = logging.getLogger(__name__)


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
    weight_decay : float
        Adam weight decay.
    val_fraction : float
        Fraction of every sequence (its last frames) held out for model selection.
    patience : int
        Stop after this many epochs without a better validation MPJPE (0: never).
    seed : int
        Seed of every random choice; the same seed gives bit-identical weights on a CPU.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"mps"``.
    noise_2d, bone_jitter, keypoint_dropout, frame_dropout : float, optional
        Augmentations (see :class:`~napari_liftpose.lifting.data.Augmentation`); None picks the
        default (see :meth:`augmentation`).
    dropout_samples : float
        Fraction of training samples that get keypoint/frame dropout (the rest stay complete).
    max_grad_norm : float
        Gradient clipping (0: none).
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
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 20
    seed: int = 0
    device: str = "auto"
    noise_2d: float | None = None
    bone_jitter: float | None = None
    keypoint_dropout: float | None = None
    frame_dropout: float | None = None
    dropout_samples: float = 0.5
    max_grad_norm: float = 1.0
    chunk: int = 8

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
        _check_number("weight_decay", self.weight_decay, low=0.0)
        _check_number("val_fraction", self.val_fraction, low=0.0, high=1.0, open_=True)
        _check_int("patience", self.patience, 0)
        _check_int("seed", self.seed, 0)
        _check_int("chunk", self.chunk, 1)
        if not isinstance(self.device, str):
            raise ValueError(f"device: expected a device name, got {self.device!r}")
        for name in ("noise_2d", "bone_jitter"):
            _check_number(name, getattr(self, name), low=0.0, optional=True)
        for name in ("keypoint_dropout", "frame_dropout"):
            _check_number(name, getattr(self, name), 0.0, 1.0, high_open=True, optional=True)
        _check_number("dropout_samples", self.dropout_samples, low=0.0, high=1.0)
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

    def resolved_architecture(self) -> dict:
        """The full architecture config (defaults + overrides)."""
        return {**default_architecture(self.model), **(self.architecture or {}), "type": self.model}

    def augmentation(self, real_pairs: bool = False) -> Augmentation:
        """Return the augmentations to use, with the defaults filled in.

        Defaults: temporal model keypoint dropout 0.1 and frame dropout 0.05; real 2D/3D
        pairs 2D noise 0.02 (exact real pairs are few and a network memorises them).
        """
        temporal = self.model == "temporal"
        pick = lambda v, d: d if v is None else float(v)  # noqa: E731
        return Augmentation(
            noise_2d=pick(self.noise_2d, 0.02 if real_pairs else 0.0),
            bone_jitter=pick(self.bone_jitter, 0.0),
            keypoint_dropout=pick(self.keypoint_dropout, 0.1 if temporal else 0.0),
            frame_dropout=pick(self.frame_dropout, 0.05 if temporal else 0.0),
            dropout_samples=float(self.dropout_samples),
        )


_ARCH_KEYS = {
    "mlp": ("width", "blocks", "dropout"),
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


@dataclass
class Progress:
    """What the ``progress`` callback receives after every epoch."""

    epoch: int
    n_epochs: int
    train_loss: float
    val_loss: float | None = None
    val_mpjpe: float | None = None
    best_epoch: int | None = None
    best_val_mpjpe: float | None = None
    elapsed_s: float = 0.0


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    ``status`` says why training stopped: ``"finished"`` (all epochs), ``"early_stopped"``,
    ``"cancelled"``, ``"interrupted"`` (``KeyboardInterrupt``/``SystemExit``), ``"failed"``
    (another exception), or ``"no_improvement"`` (it ran, but no epoch gave a finite validation
    error, so there was no model to write). ``written`` says whether the model file was written;
    ``path`` is that file (holding the best epoch's weights), or None if nothing was written
    (an existing file at ``output`` is then unchanged).
    """

    path: Path | None
    status: str
    best_epoch: int | None
    val_mpjpe: float | None
    epochs_run: int
    elapsed_s: float
    history: list[dict] = field(default_factory=list)
    written: bool = False
    output: Path | None = None

    def summary(self) -> str:
        """One line for a user: what happened and where the model is (or that none was written)."""
        if self.written:
            return (
                f"{self.path}: training {self.status.replace('_', ' ')} after "
                f"{epochs(self.epochs_run)}; wrote the best model (epoch {self.best_epoch}, validation MPJPE "
                f"{self.val_mpjpe:.4g})"
            )
        target = self.output or "the model file"
        kept = "any existing file there is unchanged"
        if self.status == "no_improvement":
            return (
                f"{target}: no model written: no epoch of {self.epochs_run} gave a finite "
                f"validation error (check the library and the camera); {kept}"
            )
        return (
            f"{target}: training {self.status.replace('_', ' ')} after {epochs(self.epochs_run)} "
            f"before any epoch finished with a finite validation error; no model written; {kept}"
        )


def epochs(n: int) -> str:
    """``"1 epoch"``, ``"3 epochs"``."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else MPS, else CPU; other names are checked."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"device: expected auto, cpu, cuda or mps, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device: CUDA was requested but is not available")
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError("device: MPS was requested but is not available")
    return torch.device(device)


def resume_path(output: str | Path) -> Path:
    """Where the resumable state of a run writing ``output`` is kept."""
    output = Path(output)
    return output.with_name(output.name + ".resume.safetensors")


def _is_cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _as_camera(camera: Camera | KnownCamera | RandomCameras | PairedTracks):
    if isinstance(camera, Camera):
        return KnownCamera(camera)
    if isinstance(camera, KnownCamera | RandomCameras | PairedTracks):
        return camera
    raise TypeError(
        f"camera: expected Camera, KnownCamera, RandomCameras or PairedTracks, got {type(camera)}"
    )


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    diff = (pred - target) * mask
    return (diff * diff).sum() / mask.sum().clamp_min(1.0)


class _Tensors:
    """Samples as device tensors: inputs, z-scored targets (NaN -> 0) and their mask."""

    def __init__(self, x, conf, offsets, norm: Normalization, temporal: bool, device: torch.device):
        z = norm.normalize_targets(offsets).reshape(len(offsets), -1)
        self.mask = torch.from_numpy(np.isfinite(z).astype(np.float32)).to(device)
        self.y = torch.from_numpy(np.nan_to_num(z).astype(np.float32)).to(device)
        self.x = torch.from_numpy(model_inputs(x, conf, norm, temporal)).to(device)
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.y)


def _predict(model: torch.nn.Module, inputs: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    outs = []
    for i in range(0, len(inputs), batch):
        out = model(inputs[i : i + batch])
        if out.ndim == 3:  # temporal: (batch, outputs, frames) -> (batch, frames * outputs)
            out = out.transpose(1, 2)
        outs.append(out.reshape(len(out), -1))
    return torch.cat(outs)


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


def train(
    library: Poses | Sequence[Poses],
    camera: Camera | KnownCamera | RandomCameras | PairedTracks,
    output: str | Path,
    config: TrainConfig | None = None,
    roots: Sequence[str] | None = None,
    target_sets: Sequence[Sequence[str]] | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a lifter on a 3D library and write it to ``output`` when training ends.

    The best model is kept in memory while training runs; ``output`` is written (atomically)
    only once training ends: all epochs done, stopped early, cancelled, interrupted
    (``KeyboardInterrupt``, ``SystemExit``) or failed, and only if some epoch gave a finite
    validation error. An existing ``output`` is therefore never replaced mid-run, and a run killed
    outright leaves it untouched. The state needed to continue (including the best weights) is
    kept in ``<output>.resume.safetensors`` during the run.

    Parameters
    ----------
    library : Poses or sequence of Poses
        3D poses ``(frames, individuals, keypoints, 3)``; several files must share keypoint names
        (they are reordered to the first file's order). Every individual is one sequence.
        Points with an infinite coordinate are treated as missing (with a logged warning).
    camera : Camera, KnownCamera, RandomCameras or PairedTracks
        How 2D inputs are made (see :mod:`napari_liftpose.lifting.cameras`). With a camera the
        3D targets are in the camera frame; with :class:`PairedTracks` in the library's frame.
        A known camera must see the library (most points in front of it).
        :class:`RandomCameras` without a ``distance`` get 5 to 10 times the animal's size
        (:func:`~napari_liftpose.lifting.camera_defaults.default_distance`, as the CLI and widget).
    output : str or Path
        The model file (``.safetensors``) to write; it may not be one of the input files.
    config : TrainConfig, optional
        Hyper-parameters; defaults if omitted.
    roots : sequence of str, optional
        Root keypoint names (default: the first keypoint).
    target_sets : sequence of sequence of str, optional
        One set of keypoint names per root (default: everything relative to the first root).
    progress : callable, optional
        Called with a :class:`Progress` after every epoch.
    cancel : threading.Event or callable, optional
        Checked before every batch; when set (or returning True) training stops and the best
        model so far is written.
    resume : bool
        Continue from ``<output>.resume.safetensors`` if it exists.

    Returns
    -------
    TrainResult
        Where the model is (``path`` None and ``written`` False if nothing was written), why
        training stopped, and the validation history.

    Raises
    ------
    ValueError
        For a bad config, library, camera or output (before any training).
    ModelFileError
        If ``output`` or the resume file cannot be written or read.

    Notes
    -----
    An exception raised while training (``KeyboardInterrupt`` included) propagates after the
    best model so far was written; it carries the :class:`TrainResult` as ``train_result``.
    """
    config = config or TrainConfig()
    config.validate()
    start_time = time.perf_counter()
    output = Path(output)
    libraries = [library] if isinstance(library, Poses) else list(library)
    if not libraries:
        raise ValueError("library: expected at least one 3D pose file")
    camera = _as_camera(camera)
    _check_output(output, libraries, camera)
    libraries = [_without_infinite(p, "library") for p in libraries]
    if isinstance(camera, PairedTracks):
        camera = PairedTracks([_without_infinite(p, "2D tracks") for p in camera.tracks])
    if isinstance(camera, RandomCameras) and camera.distance is None:
        camera = dataclasses.replace(camera, distance=default_distance(libraries))
    keypoints = list(libraries[0].keypoints)
    layout = RootLayout.from_names(keypoints, roots, target_sets)
    device = resolve_device(config.device)
    arch = config.resolved_architecture()
    temporal = config.model == "temporal"
    n_outputs = 3 * (len(keypoints) - 1)
    _check_size(arch, len(keypoints), n_outputs)

    init_gen = torch.Generator().manual_seed(config.seed)
    model = build_model(arch, len(keypoints), n_outputs)
    init_weights(model, init_gen)
    model.to(device)
    samples = PoseSamples(libraries, layout, camera, window=model.receptive_field)
    if isinstance(camera, KnownCamera):
        for lib in libraries:
            camera.check_sees(lib.select_keypoints(keypoints).coords, lib.source or lib.name)
    train_idx, val_idx = samples.split(config.val_fraction)
    if len(train_idx) < 2 or len(val_idx) < 1:
        raise ValueError(
            f"library: too few usable frames to train ({len(train_idx)} training, {len(val_idx)} "
            f"validation); frames need a finite root keypoint {keypoints[layout.roots[0]]!r}"
        )
    rng = np.random.default_rng(config.seed)
    shuffle_gen = torch.Generator().manual_seed(config.seed + 1)
    drop_gen = torch.Generator(device=device).manual_seed(config.seed + 2)
    set_generator(model, drop_gen)

    # statistics from one clean draw of the training set; a fixed validation draw
    stat_rng = np.random.default_rng([config.seed, 1])
    sx, _, soff = samples.draw(train_idx, stat_rng)
    norm = Normalization.fit(sx[:, sx.shape[1] // 2], soff[:, 0])
    n_out = max(1, int(config.chunk)) if temporal else 1  # output frames per sample
    vx, vconf, voff = samples.draw(
        val_idx[::n_out], np.random.default_rng([config.seed, 2]), n_out=n_out
    )
    val = _Tensors(vx, vconf, voff, norm, temporal, device)

    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
    )
    augment = config.augmentation(real_pairs=isinstance(camera, PairedTracks))
    meta = {
        "architecture": arch,
        "keypoints": keypoints,
        "edges": np.asarray(libraries[0].edges).tolist(),
        **layout.to_dict(keypoints),
        "input_norm": "root_scale" if samples.scale_inputs else "root",
        "camera": camera.to_dict(),
        "frame": "world" if isinstance(camera, PairedTracks) else "camera",
        "units": libraries[0].units,
        "training": asdict(config),
        "library": [p.source for p in libraries],
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
    }
    history: list[dict] = []
    best = {"epoch": None, "val_mpjpe": math.inf, "state": None}
    first_epoch = 0
    resume_file = resume_path(output)
    if resume and resume_file.is_file():
        first_epoch, norm = _restore(
            resume_file, model, optimizer, rng, shuffle_gen, drop_gen, meta, history, best
        )
        val = _Tensors(vx, vconf, voff, norm, temporal, device)
        log.info("resuming %s at epoch %d", output, first_epoch + 1)

    status = "finished"
    last_resume_write = -math.inf
    epoch = first_epoch
    stale = 0 if best["epoch"] is None else first_epoch - best["epoch"]

    def write_resume(completed: int) -> None:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(norm.to_tensors())
        tensors.update(_optimizer_tensors(optimizer))
        tensors["resume.shuffle_gen"] = shuffle_gen.get_state()
        tensors["resume.drop_gen"] = drop_gen.get_state()
        if best["state"] is not None:
            tensors.update({f"resume.best.{k}": v for k, v in best["state"].items()})
        state = {
            **meta,
            "history": history,
            "epoch": completed,
            "best_epoch": best["epoch"],
            "best_val_mpjpe": best["val_mpjpe"] if best["epoch"] is not None else None,
            "rng": rng.bit_generator.state,
        }
        save_checkpoint(resume_file, tensors, _jsonable(state))

    def finish(how: str) -> TrainResult:
        """Write the best model (if any epoch improved) and describe the run."""
        written = False
        if best["state"] is not None:
            meta_now = {
                **meta,
                "status": how,
                "metrics": {"val_mpjpe": best["val_mpjpe"], "best_epoch": best["epoch"]},
                "history": history,
            }
            save_checkpoint(output, {**best["state"], **norm.to_tensors()}, _jsonable(meta_now))
            written = True
        elif how in ("finished", "early_stopped"):
            how = "no_improvement"
        return TrainResult(
            path=output if written else None,
            status=how,
            best_epoch=best["epoch"],
            val_mpjpe=None if best["epoch"] is None else best["val_mpjpe"],
            epochs_run=len(history),
            elapsed_s=time.perf_counter() - start_time,
            history=history,
            written=written,
            output=output,
        )

    try:
        for epoch in range(first_epoch, config.epochs):
            if _is_cancelled(cancel):
                status = "cancelled"
                break
            lr = config.learning_rate * (
                config.lr_final
                + (1 - config.lr_final) * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            centers = train_idx[int(rng.integers(n_out)) :: n_out] if n_out > 1 else train_idx
            x, conf, off = samples.draw(centers, rng, augment, n_out=n_out)
            data = _Tensors(x, conf, off, norm, temporal, device)
            order = torch.randperm(len(data), generator=shuffle_gen).to(device)
            per_step = max(2, config.step_size // n_out)
            n_batches = max(len(data) // per_step, 1)  # drop the ragged tail (BatchNorm)
            model.train()
            total = 0.0
            for b in range(n_batches):
                if _is_cancelled(cancel):
                    status = "cancelled"
                    break
                sel = order[b * per_step : (b + 1) * per_step]
                pred = model(data.x[sel])
                if temporal:
                    pred = pred.transpose(1, 2)
                pred = pred.reshape(len(sel), -1)
                loss = _masked_mse(pred, data.y[sel], data.mask[sel])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                total += float(loss.detach())
            if status == "cancelled":
                break
            model.eval()
            with torch.inference_mode():
                vpred = _predict(model, val.x)
                val_loss = float(_masked_mse(vpred, val.y, val.mask))
            val_mpjpe = validation_mpjpe(
                vpred.cpu().numpy().astype(np.float64), val.offsets, norm, layout
            )
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": total / n_batches,
                    "val_loss": val_loss,
                    "val_mpjpe": val_mpjpe,
                    "lr": lr,
                }
            )
            if val_mpjpe < best["val_mpjpe"]:  # False for NaN: a diverged epoch never wins
                best.update(
                    epoch=epoch + 1,
                    val_mpjpe=val_mpjpe,
                    state={
                        f"model.{k}": v.detach().to("cpu", copy=True)
                        for k, v in model.state_dict().items()
                    },
                )
                stale = 0
            else:
                stale += 1
            log.debug(
                "epoch %d/%d train %.4f val %.4f mpjpe %.4f",
                epoch + 1,
                config.epochs,
                total / n_batches,
                val_loss,
                val_mpjpe,
            )
            # the resume state first: a kill after the progress report loses no epoch
            if epoch + 1 < config.epochs and time.perf_counter() - last_resume_write > 5.0:
                write_resume(len(history))
                last_resume_write = time.perf_counter()
            if progress is not None:
                progress(
                    Progress(
                        epoch + 1,
                        config.epochs,
                        total / n_batches,
                        val_loss,
                        val_mpjpe,
                        best["epoch"],
                        best["val_mpjpe"],
                        time.perf_counter() - start_time,
                    )
                )
            if config.patience and stale >= config.patience:
                status = "early_stopped"
                break
    except BaseException as err:
        how = "interrupted" if isinstance(err, KeyboardInterrupt | SystemExit) else "failed"
        err.train_result = _save_after_error(finish, write_resume, how, history, output)  # type: ignore[attr-defined]
        raise
    if status == "cancelled":
        write_resume(len(history))
    result = finish(status)
    if status != "cancelled" and resume_file.exists():
        resume_file.unlink()
    log.info(result.summary())
    return result


def _save_after_error(finish, write_resume, how, history, output) -> TrainResult | None:
    """Write the best model and the resume state after an exception; never raise an error."""
    result = None
    try:
        with interrupts.set_aside():  # the save the interrupt asks for may publish
            result = finish(how)
            write_resume(len(history))
    except Exception as err:  # the original exception matters more; say what was lost
        log.error("%s: could not save after training %s: %s", output, how, err)
    if result is not None:  # the caller gets it as ``err.train_result``: no second warning line
        log.info(result.summary())
    return result


def _without_infinite(poses: Poses, what: str) -> Poses:
    poses, n = poses.without_infinite()
    if n:
        log.warning(
            "%s: %d point(s) of the %s have an infinite coordinate; treating them as missing",
            poses.source or poses.name,
            n,
            what,
        )
    return poses


def _check_output(output: Path, libraries: Sequence[Poses], camera) -> None:
    """Refuse an output that is a folder, in a missing folder, or one of the input files."""
    if output.is_dir():
        raise ModelFileError(output, "cannot write: is a folder; expected a .safetensors file name")
    if not output.parent.is_dir():
        raise ModelFileError(output, f"cannot write: folder {output.parent} does not exist")
    sources = [p.source for p in libraries]
    if isinstance(camera, PairedTracks):
        sources += [p.source for p in camera.tracks]
    if colliding_input(output, sources) is not None:
        raise ValueError(f"{output}: is an input file; refusing to overwrite it with a model")


def _check_size(arch: dict, n_keypoints: int, n_outputs: int) -> None:
    with torch.device("meta"):
        n_params = sum(p.numel() for p in build_model(arch, n_keypoints, n_outputs).parameters())
    if n_params > MAX_PARAMETERS:
        raise ValueError(
            f"architecture: expected at most {MAX_PARAMETERS:,} parameters, got {n_params:,} "
            f"({arch})"
        )


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for i, state in optimizer.state_dict()["state"].items():
        for k, v in state.items():
            out[f"resume.opt.{i}.{k}"] = torch.as_tensor(v).detach().cpu()
    return out


def _restore(
    path, model, optimizer, rng, shuffle_gen, drop_gen, meta, history, best
) -> tuple[int, Normalization]:
    """Load a resume file into the run's objects; returns (completed epochs, normalisation).

    Raises
    ------
    ModelFileError
        Naming the resume file, if it belongs to another run or cannot be used.
    """
    tensors, saved = load_checkpoint(path)
    for key in ("architecture", "keypoints", "roots", "target_sets", "camera"):
        if saved.get(key) != _jsonable(meta[key]):
            raise ModelFileError(
                path, f"cannot resume: {key} differs from this run's (delete it to start over)"
            )
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        device = next(model.parameters()).device
        model.to(device)
        opt_state = copy.deepcopy(optimizer.state_dict())
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("resume.opt."):
                _, _, i, name = k.split(".", 3)
                state.setdefault(int(i), {})[name] = v if name == "step" else v.to(device)
        opt_state["state"] = state
        optimizer.load_state_dict(opt_state)
        shuffle_gen.set_state(tensors["resume.shuffle_gen"])
        drop_gen.set_state(tensors["resume.drop_gen"])
        rng.bit_generator.state = saved["rng"]
        norm = Normalization.from_tensors(tensors)
        history[:] = list(saved.get("history", []))
        completed = int(saved["epoch"])
        if saved.get("best_epoch") is not None:
            state_best = {k[12:]: v for k, v in tensors.items() if k.startswith("resume.best.")}
            if not state_best:
                raise KeyError("resume.best.* (the best weights)")
            best.update(
                epoch=int(saved["best_epoch"]),
                val_mpjpe=float(saved["best_val_mpjpe"]),
                state=state_best,
            )
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(
            path,
            f"cannot resume: incomplete or inconsistent resume file ({err}); delete it to "
            "start over",
        ) from None
    return completed, norm
