"""Command line: ``napari-liftpose train | lift | evaluate | demo`` (headless, for batch and HPC).

Thin by design: each subcommand parses its arguments and calls library functions. Every
subcommand is registered by a small ``_add_<name>_parser(subparsers)`` function (listed in
:data:`SUBCOMMANDS`), so new ones can be added without touching the others.

Errors (bad input, a model that does not fit the data, a failed write) print one line on stderr
naming the file and the problem, exit with code 2 and leave no partial output file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

PROG = "napari-liftpose"
BROKEN_PIPE = 141  # 128 + SIGPIPE: what a Unix tool reports when its reader goes away
OUT_SUFFIXES = (".npz", ".h5", ".csv")


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        raise CliError(f"{self.prog}: {message} (see --help)")


# -- helpers ---------------------------------------------------------------------------------
def _read(path: str, **kwargs):
    from napari_liftpose.io import read_poses

    return read_poses(path, **kwargs)


def _parse_camera(spec: str):
    """``CALIBRATION.toml[:CAMERA_NAME]`` -> Camera."""
    from napari_liftpose.io.calibration import read_calibration

    path, name = spec, None
    if not Path(spec).is_file() and ":" in spec:
        head, tail = spec.rsplit(":", 1)
        if tail and "/" not in tail and "\\" not in tail:
            path, name = head, tail
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


def _check_writable(path: Path) -> None:
    """Fail early (before long work) if ``path`` cannot be created."""
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


class _Bar:
    """A minimal progress bar on stderr."""

    def __init__(self, enabled: bool, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self.last = -1.0
        self.dirty = False

    def update(self, done: float, total: float, text: str = "") -> None:
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
        if self.dirty:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.dirty = False


# -- train -----------------------------------------------------------------------------------
def _add_train_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a lifter on 3D pose libraries",
        description="Train a 2D->3D lifter on one or more 3D libraries and write one .safetensors file.",
    )
    p.add_argument("libraries", nargs="+", metavar="LIBRARY_3D", help="3D pose files")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--camera",
        metavar="CALIBRATION.toml[:CAMERA]",
        help="a known camera: 2D inputs are the library projected through it",
    )
    src.add_argument(
        "--random-camera",
        action="store_true",
        help="random virtual cameras (camera-agnostic lifter)",
    )
    src.add_argument(
        "--tracks-2d",
        nargs="+",
        metavar="FILE",
        help="real 2D tracks, one per library file, paired frame by frame",
    )
    rc = p.add_argument_group("random cameras")
    rc.add_argument(
        "--azimuth", nargs=2, type=float, default=(-180.0, 180.0), metavar=("MIN", "MAX")
    )
    rc.add_argument(
        "--elevation", nargs=2, type=float, default=(-30.0, 30.0), metavar=("MIN", "MAX")
    )
    rc.add_argument("--roll", nargs=2, type=float, default=(0.0, 0.0), metavar=("MIN", "MAX"))
    rc.add_argument(
        "--distance",
        nargs=2,
        type=float,
        default=None,
        metavar=("MIN", "MAX"),
        help="library units (default: 5 to 10 times the animal's size)",
    )
    rc.add_argument("--projection", choices=["pinhole", "weak"], default="pinhole")
    rc.add_argument(
        "--up",
        choices=["x", "y", "z", "-x", "-y", "-z"],
        default="z",
        help="the library's up axis (default z)",
    )
    p.add_argument(
        "--root", nargs="+", metavar="NAME", help="root keypoint(s) (default: the first)"
    )
    p.add_argument("--model", choices=["mlp", "temporal"], default="mlp")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--patience", type=int, default=None, help="early stopping (0: off)")
    p.add_argument("--val-fraction", type=float, default=None)
    p.add_argument("--width", type=int, help="MLP hidden width (LiftPose3D: 1024)")
    p.add_argument("--blocks", type=int, help="MLP residual blocks")
    p.add_argument("--channels", type=int, help="temporal model channels")
    p.add_argument("--filter-widths", type=int, nargs="+", metavar="W", help="temporal model")
    p.add_argument("--dropout", type=float)
    p.add_argument("--noise-2d", type=float, help="2D noise, fraction of the pose's 2D size")
    p.add_argument("--bone-jitter", type=float, help="relative bone-length noise")
    p.add_argument("--keypoint-dropout", type=float)
    p.add_argument("--frame-dropout", type=float)
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


def _random_cameras(args, libraries):
    import numpy as np

    from napari_liftpose.lifting import RandomCameras

    axis = {"x": 0, "y": 1, "z": 2}[args.up[-1]]
    up = [0.0, 0.0, 0.0]
    up[axis] = -1.0 if args.up.startswith("-") else 1.0
    distance = args.distance
    if distance is None:
        rel = np.concatenate([lib.coords.reshape(-1, lib.n_keypoints, 3) for lib in libraries])
        size = np.nanmedian(
            np.nanmax(np.linalg.norm(rel - np.nanmean(rel, 1, keepdims=True), axis=-1), 1)
        )
        size = float(size) if np.isfinite(size) and size > 0 else 1.0
        distance = (5 * size, 10 * size)
    try:
        return RandomCameras(
            azimuth=tuple(args.azimuth),
            elevation=tuple(args.elevation),
            roll=tuple(args.roll),
            distance=tuple(distance),
            projection=args.projection,
            up=tuple(up),
        )
    except ValueError as err:
        raise CliError(f"{PROG} train: {err}") from None


def _run_train(args) -> int:
    from napari_liftpose.lifting import KnownCamera, PairedTracks, TrainConfig, train

    output = Path(args.output)
    _check_writable(output)
    libraries = [_read(p) for p in args.libraries]
    for path, lib in zip(args.libraries, libraries, strict=True):
        if lib.n_space != 3:
            raise CliError(f"{path}: expected 3D poses for a library, got 2D tracks")
    if args.camera:
        camera = KnownCamera(_parse_camera(args.camera))
    elif args.random_camera:
        camera = _random_cameras(args, libraries)
    else:
        if len(args.tracks_2d) != len(libraries):
            raise CliError(
                f"{PROG} train: expected one --tracks-2d file per library ({len(libraries)}), "
                f"got {len(args.tracks_2d)}"
            )
        tracks = [_read(p) for p in args.tracks_2d]
        for path, trk, lib in zip(args.tracks_2d, tracks, libraries, strict=True):
            if trk.n_space != 2:
                raise CliError(f"{path}: expected 2D tracks, got 3D")
            missing = [k for k in lib.keypoints if k not in trk.keypoints]
            if missing:
                extra = [k for k in trk.keypoints if k not in lib.keypoints]
                raise CliError(
                    f"{path}: keypoints do not match the library: missing: {missing}; extra: {extra}"
                )
        camera = PairedTracks(tracks)
    arch = {
        k: v
        for k, v in {
            "width": args.width,
            "blocks": args.blocks,
            "channels": args.channels,
            "filter_widths": args.filter_widths,
            "dropout": args.dropout,
        }.items()
        if v is not None
    }
    overrides = {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "patience": args.patience,
            "val_fraction": args.val_fraction,
            "noise_2d": args.noise_2d,
            "bone_jitter": args.bone_jitter,
            "keypoint_dropout": args.keypoint_dropout,
            "frame_dropout": args.frame_dropout,
        }.items()
        if v is not None
    }
    config = TrainConfig(
        model=args.model, architecture=arch or None, seed=args.seed, device=args.device, **overrides
    )
    bar = _Bar(not args.quiet)
    units = libraries[0].units

    def progress(p) -> None:
        bar.update(
            p.epoch,
            p.n_epochs,
            f"epoch {p.epoch}/{p.n_epochs} loss {p.train_loss:.4f} "
            f"val MPJPE {p.val_mpjpe:.4g} {units} (best {p.best_val_mpjpe:.4g} @ {p.best_epoch})",
        )

    try:
        result = train(
            libraries,
            camera,
            output,
            config,
            roots=args.root,
            progress=progress,
            resume=args.resume,
        )
    except KeyboardInterrupt:
        bar.close()
        raise CliError(
            f"{output}: training interrupted; the best model so far is kept there "
            f"(continue with --resume)"
        ) from None
    finally:
        bar.close()
    print(
        f"wrote {result.path}: {result.status} after {result.epochs_run} epochs, best epoch "
        f"{result.best_epoch}, validation MPJPE {result.val_mpjpe:.4g} {units}, "
        f"{result.elapsed_s:.1f} s"
    )
    return 0


# -- lift ------------------------------------------------------------------------------------
def _add_lift_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "lift",
        help="lift 2D tracks to 3D with a trained model",
        description=(
            "Lift 2D tracks to 3D. With one input, OUT is the output file (.npz, .h5 or .csv). "
            "With several inputs, OUT is a folder (created if needed) receiving "
            "<input name>.lifted<--ext> for each input."
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
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="poses (MLP, default 8192) or frames (temporal, default 65536) per pass",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_lift)


def _lift_targets(tracks: Sequence[str], output: Path, ext: str) -> list[Path]:
    if len(tracks) == 1 and output.suffix.lower() in OUT_SUFFIXES:
        return [output]
    if output.suffix.lower() in OUT_SUFFIXES:
        raise CliError(
            f"{output}: several inputs need a folder as output, not a {output.suffix} file"
        )
    if len(tracks) == 1 and not output.is_dir():
        raise CliError(
            f"{output}: expected an output file ending in .npz, .h5 or .csv, or an existing folder"
        )
    if output.exists() and not output.is_dir():
        raise CliError(f"{output}: exists and is not a folder")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(
            f"{output}: cannot create the output folder: {err.strerror or err}"
        ) from None
    names = [Path(t).name.split(".")[0] for t in tracks]
    if len(set(names)) != len(names):
        names = [f"{i:03d}_{n}" for i, n in enumerate(names)]
    return [output / f"{n}.lifted{ext}" for n in names]


def _run_lift(args) -> int:
    from napari_liftpose.io import write_poses
    from napari_liftpose.lifting import load_lifter

    targets = _lift_targets(args.tracks, Path(args.output), args.ext)
    for target in targets:
        _check_writable(target)
    lifter = load_lifter(args.model, device=args.device)
    bar = _Bar(not args.quiet)
    for source, target in zip(args.tracks, targets, strict=True):
        poses = _read(source)
        if poses.n_space != 2:
            raise CliError(f"{source}: expected 2D tracks to lift, got 3D poses")
        _match(lifter, poses, source)
        start = time.perf_counter()
        lifted = lifter.lift(
            poses,
            batch_size=args.batch_size,
            progress=lambda d, t, s=source: bar.update(d, t, Path(s).name),
        )
        bar.close()
        written = write_poses(lifted, target)
        n = poses.n_frames * poses.n_individuals
        print(
            f"wrote {written}: {poses.n_frames} frames x {poses.n_individuals} individuals "
            f"({n / max(time.perf_counter() - start, 1e-9):,.0f} poses/s)"
        )
    return 0


def _match(lifter, poses, source) -> None:
    missing = [k for k in lifter.keypoints if k not in poses.keypoints]
    if missing:
        extra = [k for k in poses.keypoints if k not in lifter.keypoints]
        raise CliError(
            f"{source}: keypoints do not match the model {lifter.path}: "
            f"missing: {missing}; extra: {extra}"
        )


# -- evaluate --------------------------------------------------------------------------------
def _add_evaluate_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="lift 2D tracks and compare with 3D truth",
        description=(
            "Lift TRACKS_2D and print MPJPE, PA-MPJPE, N-MPJPE, MPJVE and bone-length std against "
            "TRUTH_3D (root-relative, valid joints only, Euclidean, in the truth's units). The "
            "truth is put in the model's frame: the model's own camera, or --camera."
        ),
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("tracks", metavar="TRACKS_2D")
    p.add_argument("truth", metavar="TRUTH_3D")
    p.add_argument(
        "--camera",
        metavar="CALIBRATION.toml[:CAMERA]",
        help="camera of TRACKS_2D (needed for random-camera models)",
    )
    p.add_argument(
        "--root", nargs="+", metavar="NAME", help="root(s) for the metrics (default: the model's)"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from napari_liftpose.lifting import evaluate, load_lifter

    lifter = load_lifter(args.model, device=args.device)
    tracks = _read(args.tracks)
    if tracks.n_space != 2:
        raise CliError(f"{args.tracks}: expected 2D tracks, got 3D poses")
    truth = _read(args.truth)
    if truth.n_space != 3:
        raise CliError(f"{args.truth}: expected 3D poses as truth, got 2D tracks")
    _match(lifter, tracks, args.tracks)
    missing = [k for k in lifter.keypoints if k not in truth.keypoints]
    if missing:
        raise CliError(
            f"{args.truth}: keypoints do not match the model {lifter.path}: missing: {missing}; "
            f"extra: {[k for k in truth.keypoints if k not in lifter.keypoints]}"
        )
    if truth.coords.shape[:2] != tracks.coords.shape[:2]:
        raise CliError(
            f"{args.truth}: expected {tracks.n_frames} frames x {tracks.n_individuals} "
            f"individuals like {args.tracks}, got {truth.n_frames} x {truth.n_individuals}"
        )
    camera = _parse_camera(args.camera) if args.camera else None
    try:
        truth = lifter.truth_in_output_frame(truth, camera)
    except ValueError as err:
        raise CliError(f"{args.model}: {err} (--camera)") from None
    pred = lifter.lift(tracks)
    roots = args.root or lifter.meta["roots"]
    targets = None if args.root else lifter.meta.get("target_sets")
    metrics = evaluate(pred, truth, roots=roots, target_sets=targets)
    if args.json:
        print(json.dumps(metrics, indent=1))
        return 0
    units = metrics["units"]
    print(
        f"{Path(args.tracks).name}: {metrics['n_frames']} frames, {metrics['n_valid_joints']} valid "
        f"joints, root {', '.join(metrics['roots'])}"
    )
    for key, label in (
        ("mpjpe", "MPJPE"),
        ("pa_mpjpe", "PA-MPJPE"),
        ("n_mpjpe", "N-MPJPE"),
        ("mpjve", "MPJVE (per frame)"),
        ("bone_length_std", "bone length std"),
        ("bone_length_std_truth", "bone length std (truth)"),
    ):
        print(f"  {label:<24} {metrics[key]:.4f} {units}")
    worst = sorted(
        ((v, k) for k, v in metrics["per_joint_mpjpe"].items() if v is not None), reverse=True
    )[:3]
    print("  worst joints             " + ", ".join(f"{k} {v:.3f}" for v, k in worst))
    return 0


# -- demo ------------------------------------------------------------------------------------
def _add_demo_parser(subparsers) -> None:
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
    p.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.set_defaults(run=_run_demo)


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _run_demo(args) -> int:
    from napari_liftpose.demo import DemoFiles, run_demo

    folder = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="liftpose-demo-"))
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{folder}: is a file; expected a folder for the demo's files")
    headless = args.headless or not _has_display()
    if not args.headless and headless:
        print("No display found: running the demo without a window.", file=sys.stderr)
    bar = _Bar(enabled=True)

    def progress(p) -> None:
        bar.update(p.epoch, p.n_epochs, f"epoch {p.epoch}/{p.n_epochs}")

    print(f"Building the demo in {folder} ...", file=sys.stderr)
    metrics = run_demo(folder, epochs=args.epochs, device=args.device, progress=progress)
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


# -- main ------------------------------------------------------------------------------------
#: ``name -> function adding its parser``; add a subcommand by adding an entry.
SUBCOMMANDS: dict[str, Callable] = {
    "train": _add_train_parser,
    "lift": _add_lift_parser,
    "evaluate": _add_evaluate_parser,
    "demo": _add_demo_parser,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    from napari_liftpose import __version__

    parser = _Parser(prog=PROG, description="Lift single-camera 2D animal pose tracks to 3D.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for add in SUBCOMMANDS.values():
        add(subparsers)
    return parser


def _stdout_is_closed() -> bool:
    """True if standard output's reader is gone; it is then pointed at /dev/null (no error at exit)."""
    try:
        sys.stdout.flush()
        return False
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code: 0, 2 on any error, 141 if stdout closed."""
    from napari_liftpose.io.errors import PoseFileError

    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return code
    except BrokenPipeError as err:
        if not _stdout_is_closed():
            message = f"{PROG}: {err}"  # some other pipe (an output FIFO, say): a real error
        else:  # the reader went away (`... | head`): stop quietly, as Unix tools do
            return BROKEN_PIPE
    except CliError as err:
        message = str(err)
    except PoseFileError as err:  # includes ModelFileError: "PATH: problem"
        message = str(err)
    except (ValueError, OSError, KeyError) as err:
        message = f"{PROG}: {err}"
    except KeyboardInterrupt:
        message = f"{PROG}: interrupted"
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
