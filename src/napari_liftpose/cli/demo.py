"""``napari-liftpose demo``: the whole pipeline on a generated walking insect, then napari."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from napari_liftpose.cli._arguments import at_least
from napari_liftpose.cli._common import (
    DEVICES,
    PROG,
    CliError,
    MissingDependency,
    ProgressBar,
    add_threads_option,
    log_progress,
)

__all__ = ["add_parser", "require_qt", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    """Register ``demo`` and its options."""
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a generated walking insect",
        description=(
            "Generate a walking insect (3D library, camera, video, 2D tracks), train a lifter for "
            "its camera, lift the tracks and evaluate them; then open napari with the video, the "
            "tracks and the synchronized 3D view. Nothing is downloaded."
        ),
    )
    p.add_argument("-o", "--output", help="folder for the demo's files (default: a temporary one)")
    p.add_argument(
        "--headless", action="store_true", help="no window: write the files and print the metrics"
    )
    p.add_argument("--epochs", type=at_least(1), default=15, help="training epochs")
    p.add_argument("--device", default="auto", choices=DEVICES)
    add_threads_option(p)
    p.set_defaults(run=run)


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def require_qt() -> None:
    """Refuse to go on without a Qt binding for napari's window, saying what to install.

    Raises
    ------
    MissingDependency
        If qtpy finds no binding (``pip install napari-liftpose`` brings none).
    """
    try:
        import qtpy  # noqa: F401  (raises QtBindingsNotFoundError when no binding imports)
    except ImportError as err:  # QtBindingsNotFoundError is an ImportError
        raise MissingDependency(
            f"{PROG} demo: napari needs a Qt binding to open its window and none is installed "
            f"({type(err).__name__}); install one with: pip install "
            "'napari-liftpose[all]' (or pyqt6), or run without a window: "
            f"{PROG} demo --headless"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Build the demo's files, print the metrics, open napari unless headless."""
    from napari_liftpose.demo import DemoFiles, run_demo

    headless = args.headless or not _has_display()
    if not headless:
        require_qt()  # before any work, not after the training
    folder = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="liftpose-demo-"))
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{folder}: is a file; expected a folder for the demo's files")
    if not args.headless and headless:
        print("No display found: running the demo without a window.", file=sys.stderr)
    bar = ProgressBar(enabled=not log.isEnabledFor(logging.INFO))  # -v: a line per epoch

    def progress(p) -> None:
        log_progress(log, p, "mm")
        bar.update(p.epoch, p.n_epochs, f"epoch {p.epoch}/{p.n_epochs}")

    print(f"Building the demo in {folder} ...", file=sys.stderr)
    try:
        metrics = run_demo(folder, epochs=args.epochs, device=args.device, progress=progress)
    finally:
        bar.close()
    print(f"demo files in {folder}:")
    for name, path in metrics["files"].items():
        print(f"  {name:<12} {path}")
    units = metrics["units"]
    print(
        f"lifted {metrics['n_frames']} frames: MPJPE {metrics['mpjpe']:.3f} {units}, "
        f"PA-MPJPE {metrics['pa_mpjpe']:.3f} {units} (metrics.json)"
    )
    if headless:
        return 0
    import napari

    from napari_liftpose.napari.demo_viewer import show_demo

    show_demo(DemoFiles(folder))
    napari.run()
    return 0
