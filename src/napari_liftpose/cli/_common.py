"""What every subcommand shares: its error type, the parser, the progress bar, output checks."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "PROG",
    "CliError",
    "CommandInterrupted",
    "DefaultsHelpFormatter",
    "MissingDependency",
    "Parser",
    "ProgressBar",
    "add_threads_option",
    "add_verbose_option",
    "apply_common_options",
    "available_cores",
    "check_readable",
    "check_writable",
    "default_threads",
    "describe_error",
    "describe_missing_module",
    "log_progress",
    "number",
    "read_camera",
    "refuse_overwriting_inputs",
    "split_camera_spec",
]

PROG = "napari-liftpose"
DEVICES = ["auto", "cpu", "cuda", "mps"]


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""

    exit_code = 2


class MissingDependency(CliError):
    """An optional package the command needs is not installed: one line saying what to install, exit 1."""

    exit_code = 1


class CommandInterrupted(Exception):
    """A subcommand stopped by SIGINT/SIGTERM; the message says what was kept (exit 130/143)."""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with ``(default: X)``, options without text included.

    Not for options without a real default (None, False, suppressed), nor where the text already
    says its default. Pairs and lists show as ``A B``, as they are typed.
    """

    @staticmethod
    def default_text(action: argparse.Action) -> str | None:
        """``(default: X)`` for ``action``, or None where nothing is to be added."""
        default = action.default
        if (
            default is None
            or default is False
            or default is argparse.SUPPRESS
            or not action.option_strings
            or isinstance(action, (argparse._HelpAction, argparse._VersionAction))
            or "default" in (action.help or "").lower()
        ):
            return None
        if isinstance(default, (list, tuple)):
            shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
        elif isinstance(default, float):
            shown = f"{default:g}"
        else:
            shown = str(default)
        return f"(default: {shown})".replace("%", "%%")  # argparse %-formats help texts

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        extra = self.default_text(action)
        return text if extra is None else f"{text} {extra}".strip()

    def _format_action(self, action: argparse.Action) -> str:
        extra = None if action.help else self.default_text(action)
        if extra is not None:  # argparse shows no help line for an option without text
            action = copy.copy(action)
            action.help = extra
        return super()._format_action(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (a :class:`CliError`), not the usage block.

    Its help shows every option's default (:class:`DefaultsHelpFormatter`).
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # noqa: D102
        raise CliError(f"{self.prog}: {message} (see --help)")


class ProgressBar:
    """A minimal progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, enabled: bool, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self.last = -1.0
        self.dirty = False

    def update(self, done: float, total: float, text: str = "") -> None:
        """Show ``done`` of ``total`` with ``text`` after the bar."""
        if not self.enabled or total <= 0:
            return
        frac = min(max(done / total, 0.0), 1.0)
        if not self.tty and frac < 1.0 and frac - self.last < 0.1:
            return
        self.last = frac
        filled = int(round(frac * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {100 * frac:3.0f}% {text}"
        sys.stderr.write(("\r" + line) if self.tty else (line + "\n"))
        sys.stderr.flush()
        self.dirty = self.tty

    def close(self) -> None:
        """End the bar's line (call before printing anything else)."""
        if self.dirty:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.dirty = False


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int | None = None) -> int:
    """PyTorch threads for a machine with ``cores`` cores: 1 up to 2 cores, else min(4, cores // 2).

    PyTorch's own default (one thread per core) oversubscribes a small or busy machine: on a
    2-core machine shared with other work, training the demo took 41-100 s with it against 9 s
    with one thread. Small networks gain little beyond 4 threads.
    """
    cores = available_cores() if cores is None else cores
    return 1 if cores <= 2 else min(4, cores // 2)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N``: PyTorch's CPU threads (default :func:`default_threads`)."""
    from napari_liftpose.cli._arguments import at_least

    parser.add_argument(
        "--threads",
        type=at_least(1),
        default=default_threads(),
        metavar="N",
        help=f"CPU threads for PyTorch; chosen for this machine's {available_cores()} cores: 1 up "
        "to 2 cores, else half of them, at most 4",
    )


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` (a count): ``-v`` logs progress detail, ``-vv`` debug detail too."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log progress detail (and tracebacks) on stderr; -vv for debug detail",
    )


def apply_common_options(args: argparse.Namespace) -> None:
    """Apply ``--threads`` and ``-v`` (either may be absent from ``args``); safe to call twice.

    ``-v`` sets this package's loggers to INFO (``-vv``: DEBUG) with a handler on stderr;
    without it only warnings show. ``--threads`` sets PyTorch's intra-op threads, and its
    inter-op threads where that is still allowed (before any parallel work in this process).
    """
    verbose = int(getattr(args, "verbose", 0) or 0)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.getLogger("napari_liftpose").setLevel(level)
    threads = getattr(args, "threads", None)
    if threads is None or importlib.util.find_spec("torch") is None:
        return  # without torch, the command says so itself where it needs it
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:
        if torch.get_num_interop_threads() != threads:
            torch.set_num_interop_threads(threads)
    except RuntimeError:  # only once per process, and before any inter-op parallel work
        pass
    logging.getLogger(__name__).info("PyTorch threads: %d", torch.get_num_threads())


def log_progress(logger: logging.Logger, p, units: str = "") -> None:
    """Log one epoch of training (a :class:`napari_liftpose.lifting.training.Progress`) at INFO.

    Shown with ``-v``: every epoch on its own line, where the progress bar shows only the last.
    """
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "epoch %d/%d: loss %s, val MPJPE %s %s (best %s at epoch %s), %.1f s",
            p.epoch,
            p.n_epochs,
            number(p.train_loss),
            number(p.val_mpjpe),
            units,
            number(p.best_val_mpjpe),
            p.best_epoch,
            p.elapsed_s,
        )


#: What to install for a module the package needs but pip may not have brought.
_INSTALL_HINTS = {
    "torch": "install PyTorch (bash scripts/install.sh does; or pip install torch "
    "--index-url https://download.pytorch.org/whl/cpu for the CPU build)",
    "dask": "pip install 'napari-liftpose[dask]'",
    "distributed": "pip install 'napari-liftpose[dask]'",
    "yaml": "pip install pyyaml",
    "sleap_io": "pip install sleap-io",
}


def describe_missing_module(err: ModuleNotFoundError, command: str | None) -> str:
    """The one line for a module that is not installed: what is missing and how to install it.

    ``"napari-liftpose train: needs torch, which is not installed; install PyTorch (...)"``.
    """
    prefix = f"{PROG} {command}" if command else PROG
    name = (err.name or str(err)).split(".")[0]
    hint = _INSTALL_HINTS.get(name, f"pip install {name}")
    return f"{prefix}: needs {name}, which is not installed; {hint}"


def describe_error(err: BaseException, command: str | None) -> str | None:
    """The one-line message for an expected error, or None for an unexpected one (a bug).

    Expected: :class:`CliError`, file errors (``"PATH: problem"``), OS errors (named by their
    file) and ``ValueError`` (the library's "expected X, got Y").
    """
    from napari_liftpose.io.errors import PoseFileError

    prefix = f"{PROG} {command}" if command else PROG
    if isinstance(err, (CliError, PoseFileError)):  # PoseFileError includes ModelFileError
        return str(err)
    if isinstance(err, OSError):
        what = err.strerror or str(err)  # "Permission denied", "No space left on device", ...
        return f"{err.filename}: {what}" if err.filename else f"{prefix}: {what}"
    if isinstance(err, ValueError):
        return f"{prefix}: {err}"
    return None


def number(value: float | None, spec: str = ".4g") -> str:
    """Format a metric; ``n/a`` for None, NaN or infinity (a run where nothing improved)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return format(value, spec)


def check_readable(paths: Iterable[str | Path | None]) -> None:
    """Every input exists and opens, before any work ("permission denied", not "not HDF5").

    Raises
    ------
    PoseFileError
        ``"PATH: file not found"`` or ``"PATH: cannot be read: permission denied"``.
    """
    from napari_liftpose.io.paths import require_readable_file

    for path in paths:
        if path is not None:
            require_readable_file(path)


def check_writable(path: Path) -> None:
    """Fail early (before long work) if ``path`` cannot be created.

    Raises
    ------
    CliError
        If ``path`` is a folder, its folder is missing, or no file can be created there.
    """
    parent = path.parent
    if path.is_dir():
        raise CliError(f"{path}: is a folder; expected a file name")
    if not parent.is_dir():
        raise CliError(f"{path}: cannot write: folder {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise CliError(f"{path}: cannot write: {err.strerror or err}") from None


def refuse_overwriting_inputs(
    outputs: Iterable[str | Path], inputs: Iterable[str | Path | None]
) -> None:
    """Refuse any output that is one of the command's inputs, however it is spelled.

    Symlinks, hard links, ``..`` and relative/absolute spellings all count (see
    :func:`napari_liftpose.io.paths.same_file`). Call it before any work.

    Raises
    ------
    CliError
        ``"OUT: would overwrite the input IN; choose another output"``.
    """
    from napari_liftpose.io.paths import colliding_input

    inputs = [Path(p) for p in inputs if p is not None]
    for output in outputs:
        hit = colliding_input(output, inputs)
        if hit is not None:
            raise CliError(f"{output}: would overwrite the input {hit}; choose another output")


def split_camera_spec(spec: str) -> tuple[Path, str | None]:
    """``CALIBRATION.toml[:CAMERA_NAME]`` -> (calibration path, camera name or None)."""
    if not Path(spec).is_file() and ":" in spec:
        head, tail = spec.rsplit(":", 1)
        if tail and "/" not in tail and "\\" not in tail:
            return Path(head), tail
    return Path(spec), None


def read_camera(spec: str):
    """The camera named by ``CALIBRATION.toml[:CAMERA_NAME]`` (the only one when unnamed).

    Raises
    ------
    CliError
        If the file holds several cameras and none is named, or the named one is absent.
    PoseFileError
        If the calibration file cannot be read.
    """
    from napari_liftpose.io.calibration import read_calibration

    path, name = split_camera_spec(spec)
    cameras = read_calibration(path)
    if name is None:
        if len(cameras) != 1:
            raise CliError(
                f"{path}: holds {len(cameras)} cameras {sorted(cameras)}; choose one with "
                f"{path}:CAMERA_NAME"
            )
        return next(iter(cameras.values()))
    if name not in cameras:
        raise CliError(f"{path}: no camera named {name!r} (cameras: {sorted(cameras)})")
    return cameras[name]
