"""The one per-file lift: :func:`lift_file`, called in-process, by a process pool and by Dask.

A task is ``lift_file(model, source, target, options)``: read one 2D track file, lift it with
the model (loaded once per process and kept, see :func:`lifter_for`), write the 3D atomically
(:func:`napari_liftpose.io.write_poses`), and return a :class:`FileResult`. A file that cannot be
lifted never raises: its result says ``"failed"`` with one line naming the file and the problem,
so one bad file in an archive never stops the others. Only an interrupt (``KeyboardInterrupt``)
goes through.

Everything here is picklable and needs no server: the arguments are paths, a frozen
:class:`LiftOptions` and either a model path or a :class:`ModelBlob` (the model's bytes, for
workers that cannot see the client's files).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napari_liftpose.lifting import Lifter
    from napari_liftpose.poses import Poses

__all__ = [
    "FileResult",
    "LiftOptions",
    "ModelBlob",
    "lift_file",
    "lifter_for",
    "require_a_tracked_root",
]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LiftOptions:
    """How every file of a run is lifted (the same for every file and every worker).

    Attributes
    ----------
    frame : str or None
        Axes of the 3D (``"world"``, ``"camera"``, ``"upright"``); None: the lifter's default.
    batch_size : int or None
        Poses (MLP) or frames (temporal) per forward pass; None: the lifter's default.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    threads : int or None
        PyTorch CPU threads to use in the process running the task; None: leave as is.
    """

    frame: str | None = None
    batch_size: int | None = None
    device: str = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class ModelBlob:
    """A model file's bytes, sent to workers that may not see the client's file system.

    Build it with :meth:`from_file`. A worker writes the bytes once into a private temporary
    folder (named by their SHA-256) and loads that file; messages still name :attr:`name`.
    """

    name: str
    sha256: str
    data: bytes = field(repr=False)

    @classmethod
    def from_file(cls, path: str | Path) -> ModelBlob:
        """Read the model at ``path`` (it is checked when loaded, not here)."""
        data = Path(path).read_bytes()
        return cls(str(path), hashlib.sha256(data).hexdigest(), data)


@dataclass(frozen=True)
class FileResult:
    """What became of one input file.

    Attributes
    ----------
    source, target : str
        The 2D input and the 3D output it was (or would have been) written to.
    status : {"lifted", "skipped", "failed"}
        ``"skipped"``: a complete output already existed (decided by the planner, never here).
    message : str
        For ``"failed"``: one line, ``"PATH: problem"``; for ``"skipped"``: why; else ``""``.
    n_frames, n_individuals : int
        Size of the input (0 when it could not be read).
    seconds : float
        Wall time of the task (reading, lifting, writing).
    frame : str
        The axes of the 3D written (``""`` when nothing was).
    warnings : tuple of str
        Warnings raised while lifting this file, one line each.
    """

    source: str
    target: str
    status: str
    message: str = ""
    n_frames: int = 0
    n_individuals: int = 0
    seconds: float = 0.0
    frame: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def poses(self) -> int:
        """Poses lifted (frames x individuals); 0 unless ``status == "lifted"``."""
        return self.n_frames * self.n_individuals if self.status == "lifted" else 0

    @property
    def failed(self) -> bool:
        """True if the file could not be lifted."""
        return self.status == "failed"


# -- one lifter per process ---------------------------------------------------------------------
_LOCK = threading.Lock()
_LIFTERS: dict[tuple, Lifter] = {}


def _model_key(model: str | Path | ModelBlob, device: str) -> tuple:
    if isinstance(model, ModelBlob):
        return ("blob", model.sha256, device)
    path = Path(model)
    st = path.stat()
    return ("path", str(path.resolve()), st.st_mtime_ns, st.st_size, device)


def _materialise(blob: ModelBlob) -> Path:
    """The blob as a file in this machine's temporary folder (written once, atomically)."""
    from napari_liftpose.io.atomic import atomic_write_bytes

    folder = Path(tempfile.gettempdir()) / f"napari-liftpose-models-{os.getuid()}"
    path = folder / f"{blob.sha256}.safetensors"
    if not path.is_file() or path.stat().st_size != len(blob.data):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write_bytes(path, blob.data)
    return path


def lifter_for(model: str | Path | ModelBlob, device: str = "auto") -> Lifter:
    """The lifter for ``model``, loaded once per process (and reloaded if the file changed).

    Parameters
    ----------
    model : str, Path or ModelBlob
        A model file, or its bytes.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.

    Raises
    ------
    ModelFileError
        If the model cannot be loaded (see :func:`~napari_liftpose.lifting.load_lifter`).
    """
    from napari_liftpose.io.errors import not_a_file_error
    from napari_liftpose.lifting import load_lifter

    try:
        key = _model_key(model, device)
    except OSError:
        raise not_a_file_error(model) from None
    with _LOCK:
        lifter = _LIFTERS.get(key)
        if lifter is None:
            if isinstance(model, ModelBlob):
                lifter = load_lifter(_materialise(model), device=device)
                lifter.path = Path(model.name)  # messages name the user's file
            else:
                lifter = load_lifter(model, device=device)
            _LIFTERS.clear()  # one model per process: a run uses one
            _LIFTERS[key] = lifter
            log.info("loaded the model %s in process %d", lifter.path, os.getpid())
    return lifter


# -- checks ---------------------------------------------------------------------------------------
def require_a_tracked_root(poses: Poses, lifter: Lifter, source: str | Path) -> None:
    """Refuse input whose root keypoint is never tracked, or where no pose has a size.

    The lifter estimates the root of a frame that misses it from the other keypoints; a file
    where it is never there at all more likely belongs to another model (or names its root
    differently), so it is an error rather than a whole file of estimates.

    Raises
    ------
    PoseFileError
        ``"SOURCE: nothing liftable: its root keypoint 'X' is never tracked (...)"``, or
        ``"SOURCE: nothing liftable: no pose has a size (...)"`` where in every frame the
        tracked keypoints coincide (a pose with no extent cannot be normalised).
    """
    import numpy as np

    from napari_liftpose.io.errors import PoseFileError

    root = lifter.keypoints[lifter.layout.roots[0]]
    if not np.isfinite(poses.coords[:, :, poses.keypoints.index(root)]).all(-1).any():
        raise PoseFileError(
            source,
            f"nothing liftable: its root keypoint {root!r} is never tracked (a root is estimated "
            "for the frames that miss it, not for a whole file)",
        )
    if not _any_pose_with_size(poses.coords):
        raise PoseFileError(
            source,
            "nothing liftable: no pose has a size (in every frame its tracked keypoints all lie "
            "at one point, or fewer than two are tracked)",
        )


def _any_pose_with_size(coords) -> bool:
    """True if some pose (frame, individual) has two tracked keypoints at different places."""
    import numpy as np

    finite = np.isfinite(coords).all(-1)  # (frames, individuals, keypoints)
    low = np.where(finite[..., None], coords, np.inf).min(axis=2)
    high = np.where(finite[..., None], coords, -np.inf).max(axis=2)
    sized = (finite.sum(-1) >= 2) & (high - low > 0).any(-1)
    return bool(sized.any())


def _describe(err: BaseException, source: str) -> str:
    """One line naming the file and the problem (the traceback of a bug goes to the log)."""
    from napari_liftpose.io.errors import PoseFileError

    if isinstance(err, PoseFileError):  # includes ModelFileError: "PATH: problem" already
        return str(err)
    if isinstance(err, OSError):
        return f"{err.filename or source}: {err.strerror or err}"
    if isinstance(err, ValueError):
        return f"{source}: {err}"
    if isinstance(err, MemoryError):
        return f"{source}: out of memory (try a smaller --batch-size)"
    log.error("%s: traceback of the unexpected error", source, exc_info=err)
    return f"{source}: unexpected {type(err).__name__}: {err}"


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


# -- the task -------------------------------------------------------------------------------------
def lift_file(
    model: str | Path | ModelBlob,
    source: str | Path,
    target: str | Path,
    options: LiftOptions | None = None,
    progress: Progress | None = None,
) -> FileResult:
    """Lift one 2D track file to 3D and write it atomically to ``target``.

    Parameters
    ----------
    model : str, Path or ModelBlob
        The lifter (loaded once per process, see :func:`lifter_for`).
    source : str or Path
        A 2D track file of any format :func:`~napari_liftpose.io.read_poses` reads.
    target : str or Path
        The output (its suffix picks the format, see :func:`~napari_liftpose.io.write_poses`);
        its folder is created if needed. It is replaced only by a complete, verified file.
    options : LiftOptions, optional
        Axes, batch size, device and threads.
    progress : callable, optional
        ``progress(done, total)`` in poses, after each batch.

    Returns
    -------
    FileResult
        ``"lifted"``, or ``"failed"`` with one line naming the file and the problem (an
        unreadable or corrupt file, keypoints that do not fit the model, nothing liftable, a
        write error). Only ``KeyboardInterrupt`` (and ``SystemExit``) propagate.
    """
    from napari_liftpose.io import read_poses, write_poses
    from napari_liftpose.lifting.matching import (
        require_keypoints,
        require_liftable,
        require_space,
    )

    options = options or LiftOptions()
    source, target = str(source), str(target)
    start = time.perf_counter()
    shape = (0, 0)
    caught: list[warnings.WarningMessage] = []
    try:
        _set_threads(options.threads)
        lifter = lifter_for(model, options.device)
        frame = lifter.output_frame(options.frame)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's empty-slice noise
            poses = read_poses(source)
            shape = (poses.n_frames, poses.n_individuals)
            require_space(poses, 2, source, "to lift")
            require_keypoints(poses, lifter.keypoints, f"the model {lifter.path}", source)
            require_a_tracked_root(poses, lifter, source)
            lifted = lifter.lift(
                poses, batch_size=options.batch_size, progress=progress, frame=frame
            )
            require_liftable(lifted, source, lifter.keypoints[lifter.layout.roots[0]])
            written = write_poses(lifted, target)
    except Exception as err:  # a bad file is a result, never the end of the run
        return FileResult(
            source,
            target,
            "failed",
            _describe(err, source),
            *shape,
            seconds=time.perf_counter() - start,
            warnings=_lines(caught),
        )
    seconds = time.perf_counter() - start
    log.info("%s -> %s: %d x %d poses in %.2f s", source, written, *shape, seconds)
    return FileResult(
        source, str(written), "lifted", "", *shape, seconds, frame, warnings=_lines(caught)
    )


def _lines(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
