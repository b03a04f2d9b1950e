"""Train a lifter: validation-based model selection, early stopping, seeds, progress, cancel.

:func:`train` is safe to call from a worker thread: it keeps no global state (its random numbers
come from its own generators, torch's global seed and thread count are left alone), reports
through a ``progress`` callback and ``logging``, and stops within one batch when ``cancel`` is
set. The best model so far is kept in memory; ``output`` is written (atomically, verified) only
when training ends, so an existing model file is never replaced mid-run and a killed run leaves
it untouched. The optimiser state and the best weights are kept in
``<output>.resume.safetensors`` during the run so that ``resume=True`` continues it.

The pieces live in their own modules: the settings in :mod:`.train_config`, the device in
:mod:`.devices`, one epoch and one validation pass in :mod:`.epoch_loop`, the resume file in
:mod:`.resume`; this module ties them into a run.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
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
from napari_liftpose.lifting.checkpoint import ModelFileError, save_checkpoint
from napari_liftpose.lifting.data import PairedTracks, PoseSamples
from napari_liftpose.lifting.devices import resolve_device
from napari_liftpose.lifting.epoch_loop import (
    BestModel,
    Cancel,
    DeviceSamples,
    cosine_lr,
    is_cancelled,
    run_epoch,
    validate,
    validation_mpjpe,
)
from napari_liftpose.lifting.lifter_meta import MAX_PARAMETERS
from napari_liftpose.lifting.models import build_model, init_weights, set_generator
from napari_liftpose.lifting.normalization import Normalization
from napari_liftpose.lifting.resume import jsonable, read_resume, resume_path, write_resume
from napari_liftpose.lifting.skeleton import RootLayout
from napari_liftpose.lifting.train_config import TrainConfig
from napari_liftpose.poses import Poses

__all__ = [
    "TrainConfig",
    "Progress",
    "TrainResult",
    "train",
    "resolve_device",
    "resume_path",
    "validation_mpjpe",
    "Source2D",
    "library_units",
]

log = logging.getLogger(__name__)

#: How often a lifted point's uncertainty radius should hold the true point.
COVERAGE = 0.8

#: Where training 2D comes from: a camera (projected library), random cameras, or real pairs.
Source2D = Camera | KnownCamera | RandomCameras | PairedTracks


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
    units: str = ""

    def summary(self) -> str:
        """One line for a user: what happened and where the model is (or that none was written)."""
        if self.written:
            return (
                f"{self.path}: training {self.status.replace('_', ' ')} after "
                f"{epochs(self.epochs_run)}; wrote the best model (epoch {self.best_epoch}, validation MPJPE "
                f"{self.val_mpjpe:.4g}{' ' + self.units if self.units else ''})"
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


def train(
    library: Poses | Sequence[Poses],
    source_2d: Source2D,
    output: str | Path,
    config: TrainConfig | None = None,
    roots: Sequence[str] | None = None,
    target_sets: Sequence[Sequence[str]] | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Cancel = None,
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
    source_2d : Camera, KnownCamera, RandomCameras or PairedTracks
        Where the training 2D comes from: the library projected by one camera
        (:class:`~napari_liftpose.io.calibration.Camera` or :class:`KnownCamera`) or by random
        virtual cameras (:class:`RandomCameras`), or real 2D tracks paired frame by frame with
        the library (:class:`PairedTracks`). See :mod:`napari_liftpose.lifting.cameras`. With a
        camera the network predicts in the camera's axes (a known camera's lifter returns world
        axes); with pairs in the library's axes. A known camera must see the library (most
        points in front of it). :class:`RandomCameras` without a ``distance`` get 5 to 10 times
        the animal's size (:func:`~napari_liftpose.lifting.camera_defaults.default_distance`, as
        the CLI and widget).
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
    start_time = time.perf_counter()
    run = _Run.prepare(
        library, source_2d, Path(output), config or TrainConfig(), roots, target_sets
    )
    if resume and run.resume_file.is_file():
        run.restore()
    try:
        status = run.loop(progress, cancel, start_time)
    except BaseException as err:
        how = "interrupted" if isinstance(err, KeyboardInterrupt | SystemExit) else "failed"
        err.train_result = run.save_after_error(how, start_time)  # type: ignore[attr-defined]
        raise
    if status == "cancelled":
        run.write_resume()
    result = run.finish(status, start_time)
    if status != "cancelled" and run.resume_file.exists():
        run.resume_file.unlink()
    log.info(result.summary())
    return result


@dataclass
class _Run:
    """One training run: its network, data, optimiser, generators and best model so far."""

    config: TrainConfig
    output: Path
    layout: RootLayout
    samples: PoseSamples
    train_idx: np.ndarray
    val_idx: np.ndarray
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    norm: Normalization
    val: DeviceSamples
    val_draw: tuple[np.ndarray, np.ndarray, np.ndarray]
    meta: dict
    device: torch.device
    rng: np.random.Generator
    shuffle_gen: torch.Generator
    drop_gen: torch.Generator
    history: list[dict] = field(default_factory=list)
    best: BestModel = field(default_factory=BestModel)
    first_epoch: int = 0

    @property
    def resume_file(self) -> Path:
        return resume_path(self.output)

    @property
    def temporal(self) -> bool:
        return self.config.model == "temporal"

    @property
    def n_out(self) -> int:
        """Output frames per training sample (temporal chunks)."""
        return _outputs_per_sample(self.config)

    @classmethod
    def prepare(cls, library, source_2d, output, config, roots, target_sets) -> _Run:
        """Check everything and build the run; raises ValueError before any training."""
        libraries = [library] if isinstance(library, Poses) else list(library)
        if not libraries:
            raise ValueError("library: expected at least one 3D pose file")
        few = min(len(p.keypoints) for p in libraries)
        if few < 2:
            raise ValueError(
                f"library: expected at least two keypoints (a root and one to lift), got {few}"
            )
        config.validate()
        source_2d = _as_source_2d(source_2d)
        _check_output(output, libraries, source_2d)
        libraries = [_without_infinite(p, "library") for p in libraries]
        if isinstance(source_2d, PairedTracks):
            source_2d = PairedTracks([_without_infinite(p, "2D tracks") for p in source_2d.tracks])
        if isinstance(source_2d, RandomCameras) and source_2d.distance is None:
            source_2d = dataclasses.replace(source_2d, distance=default_distance(libraries))
        keypoints = list(libraries[0].keypoints)
        layout = RootLayout.from_names(keypoints, roots, target_sets)
        device = resolve_device(config.device)
        arch = config.resolved_architecture()
        n_outputs = 3 * (len(keypoints) - 1)
        _check_size(arch, len(keypoints), n_outputs)

        model = build_model(arch, len(keypoints), n_outputs)
        init_weights(model, torch.Generator().manual_seed(config.seed))
        model.to(device)
        samples = PoseSamples(libraries, layout, source_2d, window=model.receptive_field)
        if isinstance(source_2d, KnownCamera):
            for lib in libraries:
                source_2d.check_sees(lib.select_keypoints(keypoints).coords, lib.source or lib.name)
        train_idx, val_idx = samples.split(config.val_fraction)
        if len(train_idx) < 2 or len(val_idx) < 1:
            raise ValueError(
                f"library: too few usable frames to train ({len(train_idx)} training, "
                f"{len(val_idx)} validation); frames need a finite root keypoint "
                f"{keypoints[layout.roots[0]]!r}"
            )
        drop_gen = torch.Generator(device=device).manual_seed(config.seed + 2)
        set_generator(model, drop_gen)
        # statistics from one clean draw of the training set; a fixed, noisy validation draw
        sx, _, soff = samples.draw(train_idx, np.random.default_rng([config.seed, 1]))
        norm = Normalization.fit(sx[:, sx.shape[1] // 2], soff[:, 0])
        n_out = _outputs_per_sample(config)
        val_draw = samples.draw(
            val_idx[::n_out],
            np.random.default_rng([config.seed, 2]),
            config.validation_augmentation(source=source_2d),
            n_out=n_out,
        )
        meta = {
            "architecture": arch,
            "keypoints": keypoints,
            "edges": np.asarray(libraries[0].edges).tolist(),
            **layout.to_dict(keypoints),
            "input_norm": "root_scale" if samples.scale_inputs else "root",
            "camera": source_2d.to_dict(),
            "frame": _network_frame(source_2d),
            "units": library_units(libraries[0]),
            "training": asdict(config),
            "augmentation": asdict(samples.resolve(config.augmentation(source=source_2d))),
            "library": [p.source for p in libraries],
            "n_train": int(len(train_idx)),
            "n_val": int(len(val_idx)),
            "bone_stats": _bone_stats(libraries),
        }
        return cls(
            config=config,
            output=output,
            layout=layout,
            samples=samples,
            train_idx=train_idx,
            val_idx=val_idx,
            model=model,
            optimizer=torch.optim.Adam(
                model.parameters(),
                lr=config.learning_rate,
                weight_decay=config.resolved_weight_decay(source_2d),
                foreach=True,
            ),
            norm=norm,
            val=DeviceSamples(*val_draw, norm, config.model == "temporal", device),
            val_draw=val_draw,
            meta=meta,
            device=device,
            rng=np.random.default_rng(config.seed),
            shuffle_gen=torch.Generator().manual_seed(config.seed + 1),
            drop_gen=drop_gen,
        )

    def restore(self) -> None:
        """Continue from the resume file (its normalisation replaces the fitted one)."""
        state = read_resume(self.resume_file, self.meta)
        state.apply(self.model, self.optimizer, self.rng, self.shuffle_gen, self.drop_gen)
        self.norm, self.history, self.best = state.norm, state.history, state.best
        self.first_epoch = state.completed
        self.val = DeviceSamples(*self.val_draw, self.norm, self.temporal, self.device)
        log.info("resuming %s at epoch %d", self.output, self.first_epoch + 1)

    def loop(self, progress, cancel: Cancel, start_time: float) -> str:
        """Train until the last epoch, early stopping or ``cancel``; returns the status."""
        config = self.config
        n_out = self.n_out
        augment = config.augmentation(source=self.samples.camera)
        stale = 0 if self.best.epoch is None else self.first_epoch - self.best.epoch
        last_resume_write = -np.inf
        for epoch in range(self.first_epoch, config.epochs):
            if is_cancelled(cancel):
                return "cancelled"
            lr = cosine_lr(config.learning_rate, config.lr_final, epoch, config.epochs)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            offset = int(self.rng.integers(n_out)) if n_out > 1 else 0
            centers = self.train_idx[offset::n_out]
            repeats = config.epoch_repeats(len(centers) * n_out)
            x, conf, off = self.samples.draw(
                np.tile(centers, repeats), self.rng, augment, n_out=n_out
            )
            data = DeviceSamples(x, conf, off, self.norm, self.temporal, self.device)
            order = torch.randperm(len(data), generator=self.shuffle_gen).to(self.device)
            per_step = max(2, config.step_size // n_out)
            train_loss = run_epoch(
                self.model, self.optimizer, data, order, per_step, config.max_grad_norm, cancel
            )
            if train_loss is None:
                return "cancelled"
            val_loss, val_mpjpe = validate(self.model, self.val, self.norm, self.layout)
            self.history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_mpjpe": val_mpjpe,
                    "lr": lr,
                }
            )
            stale = 0 if self.best.offer(epoch + 1, val_mpjpe, self.model) else stale + 1
            log.debug(
                "epoch %d/%d train %.4f val %.4f mpjpe %.4f",
                epoch + 1,
                config.epochs,
                train_loss,
                val_loss,
                val_mpjpe,
            )
            # the resume state first: a kill after the progress report loses no epoch
            if epoch + 1 < config.epochs and time.perf_counter() - last_resume_write > 5.0:
                self.write_resume()
                last_resume_write = time.perf_counter()
            if progress is not None:
                progress(
                    Progress(
                        epoch + 1,
                        config.epochs,
                        train_loss,
                        val_loss,
                        val_mpjpe,
                        self.best.epoch,
                        self.best.val_mpjpe,
                        time.perf_counter() - start_time,
                    )
                )
            if config.patience and stale >= config.patience:
                return "early_stopped"
        return "finished"

    def write_resume(self) -> None:
        """Write the resume file with the state after the epochs run so far."""
        write_resume(
            self.resume_file,
            self.model,
            self.optimizer,
            self.norm,
            (self.rng, self.shuffle_gen, self.drop_gen),
            self.meta,
            self.history,
            self.best,
            len(self.history),
        )

    def finish(self, how: str, start_time: float) -> TrainResult:
        """Write the best model (if any epoch improved) and describe the run."""
        written = False
        if self.best.state is not None:
            meta = {
                **self.meta,
                "status": how,
                "metrics": {"val_mpjpe": self.best.val_mpjpe, "best_epoch": self.best.epoch},
                "history": self.history,
                "uncertainty": self.calibration(),
            }
            save_checkpoint(
                self.output, {**self.best.state, **self.norm.to_tensors()}, jsonable(meta)
            )
            written = True
        elif how in ("finished", "early_stopped"):
            how = "no_improvement"
        return TrainResult(
            path=self.output if written else None,
            status=how,
            best_epoch=self.best.epoch,
            val_mpjpe=None if self.best.epoch is None else self.best.val_mpjpe,
            epochs_run=len(self.history),
            elapsed_s=time.perf_counter() - start_time,
            history=self.history,
            written=written,
            output=self.output,
            units=self.meta["units"],
        )

    def calibration(self) -> dict | None:
        """Per-joint uncertainty radii of the best model, calibrated on the validation draw.

        None (and a logged warning) when it cannot be calibrated: the model is still written,
        and lifts with it carry no uncertainty.
        """
        from napari_liftpose.lifting.inference import Lifter
        from napari_liftpose.lifting.uncertainty import calibrate

        model = copy.deepcopy(self.model)
        model.load_state_dict({k[6:]: v for k, v in self.best.state.items()})
        try:
            lifter = Lifter(model, self.meta, self.norm, self.device)
            return calibrate(lifter, *self.val_draw, coverage=COVERAGE)
        except ValueError as err:
            log.warning("%s: no uncertainty calibration: %s", self.output, err)
            return None

    def save_after_error(self, how: str, start_time: float) -> TrainResult | None:
        """Write the best model and the resume state after an exception; never raise an error."""
        result = None
        try:
            with interrupts.set_aside():  # the save the interrupt asks for may publish
                result = self.finish(how, start_time)
                self.write_resume()
        except Exception as err:  # the original exception matters more; say what was lost
            log.error("%s: could not save after training %s: %s", self.output, how, err)
        if result is not None:  # the caller gets it as ``err.train_result``: no second warning
            log.info(result.summary())
        return result


def _outputs_per_sample(config: TrainConfig) -> int:
    """Output frames per training sample: the temporal model's chunk, 1 for the MLP."""
    return max(1, int(config.chunk)) if config.model == "temporal" else 1


def _network_frame(source_2d: KnownCamera | RandomCameras | PairedTracks) -> str:
    """The axes the network learns to predict in (see :class:`~.inference.Lifter`)."""
    if isinstance(source_2d, PairedTracks):
        return "world"
    return "upright" if isinstance(source_2d, RandomCameras) else "camera"


def _bone_stats(libraries: Sequence[Poses]) -> dict | None:
    """The library's bone-length distribution (for the suspicion score); None without bones."""
    from napari_liftpose.lifting.suspicion import library_bone_stats

    edges = np.asarray(libraries[0].edges).reshape(-1, 2)
    return library_bone_stats(libraries, edges) if len(edges) else None


def _as_source_2d(source_2d: Source2D) -> KnownCamera | RandomCameras | PairedTracks:
    if isinstance(source_2d, Camera):
        return KnownCamera(source_2d)
    if isinstance(source_2d, KnownCamera | RandomCameras | PairedTracks):
        return source_2d
    raise TypeError(
        "source_2d: expected Camera, KnownCamera, RandomCameras or PairedTracks, "
        f"got {type(source_2d).__name__}"
    )


def library_units(library: Poses) -> str:
    """The library's units; "units" where the file does not say (never a guessed "px")."""
    units = str(library.units or "").strip()
    return units if units and units != "px" else "units"


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


def _check_output(output: Path, libraries: Sequence[Poses], source_2d) -> None:
    """Refuse an output that is a folder, in a missing folder, or one of the input files."""
    if output.is_dir():
        raise ModelFileError(output, "cannot write: is a folder; expected a .safetensors file name")
    if not output.parent.is_dir():
        raise ModelFileError(output, f"cannot write: folder {output.parent} does not exist")
    sources = [p.source for p in libraries]
    if isinstance(source_2d, PairedTracks):
        sources += [p.source for p in source_2d.tracks]
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
