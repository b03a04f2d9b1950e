"""``napari-liftpose lift``: lift 2D track files to 3D with a trained model.

Several inputs are lifted one after the other, each written as soon as it is done. Before any
work, every output is checked against every input (no input is ever overwritten) and every input
must exist and be readable. If a later input still fails (a file that does not parse, keypoints
that do not fit, nothing liftable), the error line says which outputs were already written.

The 3D is in the calibration's / library's axes (``--frame world``) by default for known-camera
and real-pair models, in the camera's axes (``--frame camera``) for random-camera models; the
output file records which (``frame``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from napari_liftpose.cli._arguments import at_least
from napari_liftpose.cli._common import (
    DEVICES,
    PROG,
    CliError,
    CommandInterrupted,
    ProgressBar,
    check_readable,
    check_writable,
    describe_error,
    refuse_overwriting_inputs,
)
from napari_liftpose.poses import FRAMES

__all__ = ["OUT_SUFFIXES", "add_parser", "run", "output_paths"]

OUT_SUFFIXES = (".npz", ".h5", ".csv")
_AXES = {
    "world": "in the calibration's / library's axes",
    "camera": "in the camera's axes",
    "upright": "in upright axes (z up, heading the filming camera's)",
}


def add_parser(subparsers) -> None:
    """Register ``lift`` and its options."""
    p = subparsers.add_parser(
        "lift",
        help="lift 2D tracks to 3D with a trained model",
        description=(
            "Lift 2D tracks to 3D. With one input, OUT is the output file (.npz, .h5 or .csv). "
            "With several inputs, OUT is a folder (created if needed) receiving "
            "<input name>.lifted<--ext> for each input. No output may be one of the inputs."
        ),
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("tracks", nargs="+", metavar="TRACKS_2D")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument(
        "--ext",
        choices=list(OUT_SUFFIXES),
        default=".npz",
        help="output type when OUT is a folder (default .npz)",
    )
    p.add_argument(
        "--frame",
        choices=list(FRAMES),
        default=None,
        help=(
            "axes of the 3D: 'world' (the calibration's / 3D library's; the default for "
            "known-camera and real-pair models), 'camera' (a known camera's: x right, y down, "
            "z forward) or 'upright' (the filming camera's heading with the library's up as z; "
            "the only choice for random-camera models)"
        ),
    )
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument(
        "--batch-size",
        type=at_least(1),
        default=None,
        help="poses (MLP, default 8192) or frames (temporal, default 65536) per pass",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def output_paths(tracks: Sequence[str], output: Path, ext: str) -> list[Path]:
    """The file each input is written to (nothing is created here).

    One input and an ``OUT`` that is not an existing folder: ``OUT`` itself. Otherwise
    ``OUT/<input name>.lifted<ext>``, numbered when two inputs share a name.
    """
    if len(tracks) == 1 and not output.is_dir():
        return [output]
    names = [Path(t).name.split(".")[0] for t in tracks]
    if len(set(names)) != len(names):
        names = [f"{i:03d}_{n}" for i, n in enumerate(names)]
    return [output / f"{n}.lifted{ext}" for n in names]


def _check_output(tracks: Sequence[str], output: Path) -> None:
    """Refuse an OUT that cannot take the inputs; create the folder for several inputs."""
    if len(tracks) == 1 and not output.is_dir():
        if output.suffix.lower() not in OUT_SUFFIXES:
            raise CliError(
                f"{output}: expected an output file ending in .npz, .h5 or .csv, or an existing "
                "folder"
            )
        return
    if output.suffix.lower() in OUT_SUFFIXES:
        raise CliError(
            f"{output}: several inputs need a folder as output, not a {output.suffix} file"
        )
    if output.exists() and not output.is_dir():
        raise CliError(f"{output}: exists and is not a folder")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(
            f"{output}: cannot create the output folder: {err.strerror or err}"
        ) from None


def _with_written(message: str, written: list[Path], total: int) -> str:
    if not written:
        return message
    names = ", ".join(str(p) for p in written[:3]) + (", ..." if len(written) > 3 else "")
    return f"{message} (already written: {len(written)} of {total} outputs: {names})"


def run(args: argparse.Namespace) -> int:
    """Lift every input and print what was written."""
    output = Path(args.output)
    targets = output_paths(args.tracks, output, args.ext)
    refuse_overwriting_inputs([output, *targets], [args.model, *args.tracks])
    _check_output(args.tracks, output)
    for target in targets:
        check_writable(target)
    check_readable([args.model, *args.tracks])
    from napari_liftpose.lifting import load_lifter

    lifter = load_lifter(args.model, device=args.device)
    try:
        frame = lifter.output_frame(args.frame)
    except ValueError as err:
        raise CliError(f"{args.model}: {err} (--frame)") from None
    bar = ProgressBar(not args.quiet)
    written: list[Path] = []
    try:
        for source, target in zip(args.tracks, targets, strict=True):
            written.append(_lift_one(lifter, source, target, args.batch_size, bar, frame))
    except KeyboardInterrupt:
        bar.close()
        message = _with_written(f"{PROG} lift: interrupted", written, len(targets))
        raise CommandInterrupted(message) from None
    except Exception as err:
        bar.close()
        message = describe_error(err, "lift")
        if not written or message is None:
            raise
        raise CliError(_with_written(message, written, len(targets))) from None
    return 0


def require_a_tracked_root(poses, lifter, source: str) -> None:
    """Refuse input whose root keypoint is never tracked.

    The lifter estimates the root of a frame that misses it from the other keypoints; a file
    where it is never there at all more likely belongs to another model (or names its root
    differently), so it is an error, as before, rather than a whole file of estimates.
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


def _lift_one(
    lifter, source: str, target: Path, batch_size: int | None, bar: ProgressBar, frame: str
) -> Path:
    from napari_liftpose.io import read_poses, write_poses
    from napari_liftpose.lifting.matching import require_keypoints, require_liftable, require_space

    poses = read_poses(source)
    require_space(poses, 2, source, "to lift")
    require_keypoints(poses, lifter.keypoints, f"the model {lifter.path}", source)
    require_a_tracked_root(poses, lifter, source)
    start = time.perf_counter()
    lifted = lifter.lift(
        poses,
        batch_size=batch_size,
        progress=lambda done, total: bar.update(done, total, Path(source).name),
        frame=frame,
    )
    bar.close()
    require_liftable(lifted, source, lifter.keypoints[lifter.layout.roots[0]])
    written = write_poses(lifted, target)
    n = poses.n_frames * poses.n_individuals
    print(
        f"wrote {written}: {poses.n_frames} frames x {poses.n_individuals} individuals "
        f"({n / max(time.perf_counter() - start, 1e-9):,.0f} poses/s), {_AXES[frame]}"
    )
    return written
