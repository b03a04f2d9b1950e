"""Train a lifter: validation-based model selection, early stopping, seeds, progress, cancel.

:func:`train` is safe to call from a worker thread: it keeps no global state (its random numbers
come from its own generators, torch's global seed and thread count are left alone), reports
through a ``progress`` callback and ``logging``, and stops within one batch when ``cancel`` is
set. The best model so far is written atomically to ``output`` whenever the validation error
improves, so a cancelled or failed run leaves the last good model behind; the optimiser state is
kept beside it in ``<output>.resume.safetensors`` so that ``resume=True`` continues the run.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from napari_liftpose.io.calibration import Camera
from napari_liftpose.lifting.cameras import KnownCamera, RandomCameras
from napari_liftpose.lifting.checkpoint import load_checkpoint, save_checkpoint
from napari_liftpose.lifting.data import Augmentation, PairedTracks, PoseSamples
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

    ``status`` is ``"finished"`` (all epochs), ``"early_stopped"`` or ``"cancelled"``; ``path`` is
    the model file (holding the best epoch's weights), or None if no epoch finished.
    """

    path: Path | None
    status: str
    best_epoch: int | None
    val_mpjpe: float | None
    epochs_run: int
    elapsed_s: float
    history: list[dict] = field(default_factory=list)


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


def _mpjpe_offsets(
    pred_z: np.ndarray, truth_offsets: np.ndarray, norm: Normalization, layout: RootLayout
) -> float:
    truth_offsets = truth_offsets.reshape(-1, *truth_offsets.shape[-2:])
    pred = layout.from_offsets(norm.denormalize_targets(pred_z.reshape(truth_offsets.shape)))
    truth = layout.from_offsets(truth_offsets)
    err = np.linalg.norm(pred - truth, axis=-1)[:, layout.targets]
    return float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")


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
    """Train a lifter on a 3D library and write it to ``output``.

    Parameters
    ----------
    library : Poses or sequence of Poses
        3D poses ``(frames, individuals, keypoints, 3)``; several files must share keypoint names
        (they are reordered to the first file's order). Every individual is one sequence.
    camera : Camera, KnownCamera, RandomCameras or PairedTracks
        How 2D inputs are made (see :mod:`napari_liftpose.lifting.cameras`). With a camera the
        3D targets are in the camera frame; with :class:`PairedTracks` in the library's frame.
    output : str or Path
        The model file (``.safetensors``) to write.
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
        model so far is kept.
    resume : bool
        Continue from ``<output>.resume.safetensors`` if it exists.

    Returns
    -------
    TrainResult
        Where the model is, why training stopped, and the validation history.
    """
    config = config or TrainConfig()
    if config.model not in ("mlp", "temporal"):
        raise ValueError(f"model: expected 'mlp' or 'temporal', got {config.model!r}")
    if config.epochs < 1 or config.step_size < 2:
        raise ValueError("epochs must be >= 1 and batch_size >= 2")
    start_time = time.perf_counter()
    output = Path(output)
    libraries = [library] if isinstance(library, Poses) else list(library)
    if not libraries:
        raise ValueError("library: expected at least one 3D pose file")
    camera = _as_camera(camera)
    keypoints = list(libraries[0].keypoints)
    layout = RootLayout.from_names(keypoints, roots, target_sets)
    device = resolve_device(config.device)
    arch = config.resolved_architecture()
    temporal = config.model == "temporal"
    n_outputs = 3 * (len(keypoints) - 1)

    init_gen = torch.Generator().manual_seed(config.seed)
    model = build_model(arch, len(keypoints), n_outputs)
    init_weights(model, init_gen)
    model.to(device)
    samples = PoseSamples(libraries, layout, camera, window=model.receptive_field)
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
        first_epoch = _restore(
            resume_file, model, optimizer, rng, shuffle_gen, drop_gen, meta, history, best
        )
        norm = Normalization.from_tensors(load_checkpoint(resume_file)[0])
        val = _Tensors(vx, vconf, voff, norm, temporal, device)
        log.info("resuming %s at epoch %d", output, first_epoch + 1)

    status = "finished"
    last_resume_write = time.perf_counter()
    epoch = first_epoch
    stale = 0 if best["epoch"] is None else first_epoch - best["epoch"]

    def write_best() -> None:
        meta_now = {
            **meta,
            "metrics": {"val_mpjpe": best["val_mpjpe"], "best_epoch": best["epoch"]},
            "history": history,
        }
        save_checkpoint(output, {**best["state"], **norm.to_tensors()}, meta_now)

    def write_resume(completed: int) -> None:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(norm.to_tensors())
        tensors.update(_optimizer_tensors(optimizer))
        tensors["resume.shuffle_gen"] = shuffle_gen.get_state()
        tensors["resume.drop_gen"] = drop_gen.get_state()
        state = {
            **meta,
            "history": history,
            "epoch": completed,
            "best_epoch": best["epoch"],
            "best_val_mpjpe": best["val_mpjpe"],
            "rng": rng.bit_generator.state,
        }
        save_checkpoint(resume_file, tensors, _jsonable(state))

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
            val_mpjpe = _mpjpe_offsets(
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
            if val_mpjpe < best["val_mpjpe"]:
                best.update(
                    epoch=epoch + 1,
                    val_mpjpe=val_mpjpe,
                    state={f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()},
                )
                write_best()
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
            if time.perf_counter() - last_resume_write > 5.0:
                write_resume(len(history))
                last_resume_write = time.perf_counter()
            if config.patience and stale >= config.patience:
                status = "early_stopped"
                break
    except BaseException:
        if best["state"] is not None:
            log.warning(
                "training failed at epoch %d; keeping the best model (epoch %s) in %s",
                epoch + 1,
                best["epoch"],
                output,
            )
        raise
    epochs_run = len(history)
    if status == "cancelled":
        write_resume(epochs_run)
    elif resume_file.exists():
        resume_file.unlink()
    if best["state"] is not None:
        meta["status"] = status
        write_best()
    elapsed = time.perf_counter() - start_time
    log.info(
        "training %s after %d epochs (best %s, val MPJPE %.4g) in %.1f s",
        status,
        epochs_run,
        best["epoch"],
        best["val_mpjpe"],
        elapsed,
    )
    return TrainResult(
        path=output if best["state"] is not None else None,
        status=status,
        best_epoch=best["epoch"],
        val_mpjpe=None if best["epoch"] is None else best["val_mpjpe"],
        epochs_run=epochs_run,
        elapsed_s=elapsed,
        history=history,
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


def _restore(path, model, optimizer, rng, shuffle_gen, drop_gen, meta, history, best) -> int:
    tensors, saved = load_checkpoint(path)
    for key in ("architecture", "keypoints", "roots", "target_sets", "camera"):
        if saved.get(key) != _jsonable(meta[key]):
            raise ValueError(f"{path}: cannot resume: {key} differs from this run's")
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
    history[:] = saved.get("history", [])
    if saved.get("best_epoch") is not None and Path(path).exists():
        best_file = Path(str(path)[: -len(".resume.safetensors")])
        if best_file.is_file():
            best_tensors, _ = load_checkpoint(best_file)
            best.update(
                epoch=saved["best_epoch"],
                val_mpjpe=saved["best_val_mpjpe"],
                state={k: v for k, v in best_tensors.items() if k.startswith("model.")},
            )
    return int(saved["epoch"])
