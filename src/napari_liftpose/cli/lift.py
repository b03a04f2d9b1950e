"""``napari-liftpose lift``: lift 2D track files to 3D with a trained model.

Two ways to name the output:

- ``-o OUT``: one input to the file ``OUT``, or several to the folder ``OUT``. Before any work,
  every output is checked against every input (no input is ever overwritten) and every input
  must exist and be readable; the first input that fails ends the run, and the error line says
  which outputs were already written.
- ``--out-dir DIR``: an archive. Inputs are files, folders (searched recursively) or glob
  patterns; each file's output mirrors the input tree under ``DIR``; complete outputs are
  skipped unless ``--overwrite`` (so an interrupted run resumes); a bad file is reported in one
  line and skipped; a summary ends the run (exit code 2 if any file failed). ``--workers N``
  lifts in N local processes, ``--scheduler ADDRESS`` on a Dask cluster. See docs/batch.md.

Every file goes through :func:`napari_liftpose.batch.lift_file`, whichever runs it.

The 3D is in the calibration's / library's axes (``--frame world``) by default for known-camera
and real-pair models, in upright axes for random-camera models; the output file records which
(``frame``).

``--builtin`` lists the built-in lifters; ``--builtin NAME INPUT... -o OUT`` lifts with one of
them, no model file needed: each file's keypoints are mapped onto the built-in's body model
(``--mapping FILE`` overrides), the lifter is adapted to them
(:func:`~napari_liftpose.bodies.builtin.lifter_for_tracks`), and the output has the file's
keypoints, NaN for those that map onto nothing (named on the way). See docs/builtin-lifters.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from napari_liftpose.batch.plan import lifted_suffixes
from napari_liftpose.batch.task import require_a_tracked_root
from napari_liftpose.cli._arguments import at_least
from napari_liftpose.cli._common import (
    DEVICES,
    PROG,
    CliError,
    CommandInterrupted,
    ProgressBar,
    add_threads_option,
    apply_common_options,
    check_readable,
    check_writable,
    default_threads,
    refuse_overwriting_inputs,
)
from napari_liftpose.poses import FRAMES

__all__ = ["OUT_SUFFIXES", "add_parser", "output_paths", "require_a_tracked_root", "run"]

OUT_SUFFIXES = lifted_suffixes()
_AXES = {
    "world": "in the calibration's / library's axes",
    "camera": "in the camera's axes",
    "upright": "in upright axes (z up, heading the filming camera's)",
}


def add_parser(subparsers) -> None:
    """Register ``lift`` and its options."""
    suffixes = ", ".join(OUT_SUFFIXES)
    p = subparsers.add_parser(
        "lift",
        help="lift 2D tracks to 3D with a trained model (one file or a whole archive)",
        description=(
            f"Lift 2D tracks to 3D. With -o and one input, OUT is the output file ({suffixes}); "
            "with several inputs, OUT is a folder receiving <input name>.lifted<--ext> for each. "
            "With --out-dir, each INPUT is a file, a folder (searched recursively for pose "
            "files) or a glob pattern (quote it; ** matches any depth), and every file is "
            "written to DIR/<same sub-folders>/<stem>.lifted<--ext>: complete outputs are "
            "skipped (rerun to resume), bad files are reported and skipped, exit code 2 if any "
            "failed. No output may be one of the inputs."
        ),
    )
    p.add_argument(
        "model", metavar="MODEL", nargs="?", help="a lifter file (with --builtin: the first INPUT)"
    )
    p.add_argument("tracks", nargs="*", metavar="INPUT")
    p.add_argument(
        "--builtin",
        nargs="?",
        const="",
        default=None,
        metavar="NAME",
        help="lift with a built-in lifter instead of a MODEL file (mouse-top, mouse-side, "
        "fly-side); alone, list them",
    )
    p.add_argument(
        "--mapping",
        metavar="FILE",
        help="--builtin: a TOML [mapping] file overriding the automatic keypoint mapping",
    )
    where = p.add_mutually_exclusive_group(required=False)
    where.add_argument("-o", "--output", metavar="OUT", help="output file, or folder")
    where.add_argument(
        "--out-dir", metavar="DIR", help="archive mode: output folder mirroring the inputs"
    )
    p.add_argument(
        "--ext",
        choices=list(OUT_SUFFIXES),
        default=".npz",
        help="output type when the output is a folder",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="--out-dir: lift every file again, even where a complete output exists",
    )
    p.add_argument(
        "--workers",
        type=at_least(1),
        default=1,
        metavar="N",
        help="--out-dir: lift in N local processes (1: in this process)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="--out-dir: run the files on a Dask cluster (tcp://host:8786); needs "
        "napari-liftpose[dask] and input/output folders shared with the workers",
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
    add_threads_option(p)
    threads = next(a for a in p._actions if a.dest == "threads")
    threads.default = None  # chosen in run(): per worker 1, in-process the machine's default
    threads.help = (
        f"CPU threads for PyTorch (default: {default_threads()} in this process, chosen for this "
        "machine; 1 per --workers process or Dask worker process)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def output_paths(tracks: Sequence[str], output: Path, ext: str) -> list[Path]:
    """The file each input is written to with ``-o`` (nothing is created here).

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
                f"{output}: expected an output file ending in {', '.join(OUT_SUFFIXES)}, or an "
                "existing folder"
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


def _options(args: argparse.Namespace, threads: int | None):
    from napari_liftpose.batch.task import LiftOptions

    return LiftOptions(args.frame, args.batch_size, args.device, threads)


def _load(args: argparse.Namespace):
    """The lifter (once per process) and the axes it will write; one line if either is wrong."""
    from napari_liftpose.batch.task import lifter_for

    lifter = lifter_for(args.model, device=args.device)
    try:
        return lifter, lifter.output_frame(args.frame)
    except ValueError as err:
        raise CliError(f"{args.model}: {err} (--frame)") from None


def run(args: argparse.Namespace) -> int:
    """Lift every input: ``-o`` (stop at the first error) or ``--out-dir`` (an archive)."""
    if args.builtin is not None:
        return _run_builtin(args)
    if args.mapping is not None:
        raise CliError(f"{PROG} lift: --mapping needs --builtin (see --help)")
    if args.model is None or not args.tracks:
        raise CliError(f"{PROG} lift: expected MODEL and at least one INPUT (or --builtin NAME)")
    if args.output is None and args.out_dir is None:
        raise CliError(f"{PROG} lift: one of the arguments -o/--output --out-dir is required")
    if args.out_dir is None:
        _refuse_archive_options(args)
        return _run_files(args)
    return _run_archive(args)


def _refuse_archive_options(args: argparse.Namespace) -> None:
    """Without ``--out-dir``: refuse the options that only an archive run takes."""
    for option, given in (
        ("--overwrite", args.overwrite),
        ("--workers", args.workers != 1),
        ("--scheduler", args.scheduler),
    ):
        if given:
            raise CliError(f"{PROG} lift: {option} needs --out-dir (see --help)")


# -- -o OUT: a few files, stop at the first error ---------------------------------------------
def _run_files(args: argparse.Namespace) -> int:
    from napari_liftpose.batch.task import lift_file

    output = Path(args.output)
    targets = output_paths(args.tracks, output, args.ext)
    refuse_overwriting_inputs([output, *targets], [args.model, *args.tracks])
    _check_output(args.tracks, output)
    for target in targets:
        check_writable(target)
    check_readable([args.model, *args.tracks])
    _use_threads(args, args.threads or default_threads())
    _load(args)
    options = _options(args, None)
    bar = ProgressBar(not args.quiet)
    written: list[Path] = []
    try:
        for source, target in zip(args.tracks, targets, strict=True):
            name = Path(source).name
            result = lift_file(
                args.model, source, target, options, lambda d, t, n=name: bar.update(d, t, n)
            )
            bar.close()
            _show_warnings(result)
            if result.failed:
                raise CliError(_with_written(result.message, written, len(targets)))
            written.append(Path(result.target))
            rate = result.poses / max(result.seconds, 1e-9)
            print(
                f"wrote {result.target}: {result.n_frames} frames x {result.n_individuals} "
                f"individuals ({rate:,.0f} poses/s), {_AXES[result.frame]}"
            )
    except KeyboardInterrupt:
        bar.close()
        message = _with_written(f"{PROG} lift: interrupted", written, len(targets))
        raise CommandInterrupted(message) from None
    return 0


def _use_threads(args: argparse.Namespace, threads: int) -> None:
    args.threads = threads
    apply_common_options(args)


def _show_warnings(result) -> None:
    for line in result.warnings:
        sys.stderr.write(f"warning: {result.source}: {line}\n")


# -- --out-dir DIR: an archive ----------------------------------------------------------------
class _Report:
    """Counts, the progress bar and one line per failed file, as results arrive."""

    def __init__(self, total: int, skipped: int, quiet: bool) -> None:
        self.total, self.skipped = total, skipped
        self.lifted = self.failed = self.poses = 0
        self.bar = ProgressBar(not quiet)
        self.start = time.perf_counter()

    @property
    def done(self) -> int:
        return self.skipped + self.lifted + self.failed

    def text(self) -> str:
        rate = self.poses / max(time.perf_counter() - self.start, 1e-9)
        return f"{self.done}/{self.total} files, {self.poses:,} poses ({rate:,.0f} poses/s)"

    def progress(self, done: int, total: int) -> None:
        """Progress inside the file being lifted (in-process runs)."""
        self.bar.update(self.done + done / max(total, 1), self.total, self.text())

    def result(self, result) -> None:
        if result.failed:
            self.failed += 1
            self.bar.close()
            sys.stderr.write(f"error: {' '.join(result.message.split())}\n")
        else:
            self.lifted += 1
            self.poses += result.poses
        if result.warnings:
            self.bar.close()
            _show_warnings(result)
        self.bar.update(self.done, self.total, self.text())

    def summary(self, out_dir: str) -> str:
        seconds = time.perf_counter() - self.start
        return (
            f"lifted {self.lifted}, skipped {self.skipped} (complete outputs exist), failed "
            f"{self.failed} of {self.total} files into {out_dir}: {self.poses:,} poses in "
            f"{seconds:.1f} s ({self.poses / max(seconds, 1e-9):,.0f} poses/s)"
        )


def _run_archive(args: argparse.Namespace) -> int:
    from napari_liftpose.batch import (
        BatchPlanError,
        SchedulerError,
        plan_batch,
        run_in_pool,
        run_in_process,
        run_on_dask,
    )

    if args.scheduler is not None and args.workers != 1:
        raise CliError(f"{PROG} lift: give --workers or --scheduler, not both")
    if args.scheduler is not None:  # without the [dask] extra: one line saying what to install
        import dask.distributed  # noqa: F401
    check_readable([args.model])
    try:
        plan = plan_batch(args.tracks, args.out_dir, args.ext, args.overwrite)
    except BatchPlanError as err:
        raise CliError(str(err)) from None
    local = args.scheduler is None and args.workers == 1
    _use_threads(args, args.threads or (default_threads() if local else 1))
    _load(args)  # a bad model or --frame: one line before any file
    options = _options(args, None if local else args.threads)
    for job in plan.redo:
        sys.stderr.write(f"warning: {job.target}: not a complete lifted file; lifting again\n")
    how = (
        f"on the Dask cluster at {args.scheduler}"
        if args.scheduler
        else f"in {args.workers} processes"
        if args.workers > 1
        else "in this process"
    )
    print(
        f"lifting {len(plan.todo)} of {plan.total} files {how} ({len(plan.skipped)} skipped: "
        "complete outputs exist)",
        flush=True,
    )
    report = _Report(plan.total, len(plan.skipped), args.quiet)
    try:
        if args.scheduler is not None:
            run_on_dask(args.model, plan.todo, options, args.scheduler, report.result)
        elif args.workers > 1:
            run_in_pool(args.model, plan.todo, options, args.workers, report.result)
        else:
            run_in_process(args.model, plan.todo, options, report.result, report.progress)
    except KeyboardInterrupt:
        report.bar.close()
        raise CommandInterrupted(
            f"{PROG} lift: interrupted after {report.lifted} of {len(plan.todo)} files (the "
            "written outputs are complete; run the same command again to resume)"
        ) from None
    except SchedulerError as err:
        report.bar.close()
        raise CliError(f"{PROG} lift: --scheduler: {err}") from None
    report.bar.close()
    print(report.summary(args.out_dir))
    return 2 if report.failed else 0


# -- --builtin NAME: a shipped lifter, adapted to each file's keypoints ----------------------
def _run_builtin(args: argparse.Namespace) -> int:
    """List the built-ins, or lift ``-o`` files with one (mapping each file's keypoints)."""
    from napari_liftpose.bodies.builtin import builtin_info, describe_builtins

    inputs = [t for t in [args.model, *args.tracks] if t is not None]
    if args.builtin == "":
        if inputs or args.output or args.out_dir:
            raise CliError(
                f"{PROG} lift: --builtin needs a NAME before the inputs; the built-ins:\n"
                + describe_builtins()
            )
        print(describe_builtins())
        return 0
    try:
        builtin_info(args.builtin)
    except ValueError as err:
        raise CliError(f"{PROG} lift: --builtin: {err}") from None
    if args.out_dir is not None:
        raise CliError(
            f"{PROG} lift: --builtin lifts with -o (each file is mapped on its own); "
            "--out-dir needs a MODEL file: train one with `train --body`"
        )
    _refuse_archive_options(args)
    if not inputs or args.output is None:
        raise CliError(f"{PROG} lift: --builtin {args.builtin}: expected INPUT files and -o OUT")
    output = Path(args.output)
    targets = output_paths(inputs, output, args.ext)
    refuse_overwriting_inputs([output, *targets], [*inputs, args.mapping])
    _check_output(inputs, output)
    for target in targets:
        check_writable(target)
    check_readable([*inputs, args.mapping])
    _use_threads(args, args.threads or default_threads())
    from napari_liftpose.bodies.builtin import load_builtin

    lifter = load_builtin(args.builtin, args.device)
    bar = ProgressBar(not args.quiet)
    written: list[Path] = []
    try:
        for source, target in zip(inputs, targets, strict=True):
            path = _lift_with_builtin(args, lifter, source, target, bar)
            written.append(path)
    except CliError as err:
        bar.close()
        raise CliError(_with_written(str(err), written, len(targets))) from None
    except KeyboardInterrupt:
        bar.close()
        message = _with_written(f"{PROG} lift: interrupted", written, len(targets))
        raise CommandInterrupted(message) from None
    return 0


def _lift_with_builtin(args: argparse.Namespace, lifter, source: str, target: Path, bar) -> Path:
    """Map, adapt, lift and write one file; print the mapping and where the 3D went."""
    from napari_liftpose.bodies.adapt import with_unmapped
    from napari_liftpose.bodies.builtin import lifter_for_tracks
    from napari_liftpose.io import read_poses, write_poses
    from napari_liftpose.lifting.matching import require_liftable, require_space

    poses = read_poses(source)
    require_space(poses, 2, source, "to lift")
    try:
        adapted, mapping = lifter_for_tracks(lifter, poses, args.mapping)
        frame = adapted.output_frame(args.frame)
    except ValueError as err:
        raise CliError(f"{source}: {err}") from None
    print(f"{Path(source).name}: {mapping.describe()}", flush=True)
    require_a_tracked_root(poses, adapted, source)
    name = Path(source).name
    start = time.perf_counter()
    lifted = adapted.lift(
        poses,
        batch_size=args.batch_size,
        progress=lambda d, t: bar.update(d, t, name),
        frame=frame,
    )
    bar.close()
    require_liftable(lifted, source, adapted.keypoints[adapted.layout.roots[0]])
    edges = poses.edges if len(poses.edges) else None
    out = with_unmapped(lifted, mapping, edges)
    out.metadata = {**out.metadata, "lifter": f"built-in {args.builtin}"}
    written = write_poses(out, target)
    seconds = time.perf_counter() - start
    rate = poses.n_frames * poses.n_individuals / max(seconds, 1e-9)
    unmapped = mapping.unmapped_user
    note = f"; not mapped, written as NaN: {', '.join(unmapped)}" if unmapped else ""
    print(
        f"wrote {written}: {poses.n_frames} frames x {poses.n_individuals} individuals "
        f"({rate:,.0f} poses/s), {_AXES[frame]}, built-in {args.builtin}{note}"
    )
    return Path(written)
