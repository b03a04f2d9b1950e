"""``napari-liftpose train``: train a lifter on 3D libraries and write one ``.safetensors`` file.

With ``--body mouse|fly|PATH`` the library is sampled from a body model instead
(:mod:`napari_liftpose.bodies`): ``--keypoints-from TRACKS`` trains on the keypoints of the lab's
tracks that map onto the model (named as the lab names them), ``LIBRARY_3D`` files are a lab's
few real 3D frames, mixed in (:func:`~napari_liftpose.bodies.library.training_library`), and
rodents get top-view cameras unless ``--elevation`` says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from napari_liftpose.cli._arguments import (
    OrderedPair,
    at_least,
    finite_float,
    fraction,
    non_negative_float,
    odd_width,
    positive_float,
)
from napari_liftpose.cli._common import (
    DEVICES,
    PROG,
    CliError,
    CommandInterrupted,
    ProgressBar,
    add_threads_option,
    check_readable,
    check_writable,
    log_progress,
    number,
    read_camera,
    refuse_overwriting_inputs,
    split_camera_spec,
)

__all__ = ["add_parser", "run", "state_file"]

log = logging.getLogger(__name__)

#: Poses sampled from a body model by default (``--body-poses``).
BODY_POSES = 50_000
#: Random-camera elevation without ``--elevation``: level cameras, or a rodent seen from above.
ELEVATION = (-30.0, 30.0)
TOP_VIEW = (50.0, 88.0)
#: Subset dropout of a whole-body-model lifter (lifts any subset a lab tracks).
BODY_SUBSET_DROPOUT = 0.8

#: Architecture options that only one model type uses.
_ONLY_FOR = {"width": "mlp", "blocks": "mlp", "channels": "temporal", "filter_widths": "temporal"}


def add_parser(subparsers) -> None:
    """Register ``train`` and its options."""
    p = subparsers.add_parser(
        "train",
        help="train a lifter on 3D pose libraries",
        description=(
            "Train a 2D->3D lifter on one or more 3D libraries and write one .safetensors "
            "file. With --body, on poses sampled from a body model (no 3D library needed; "
            "LIBRARY_3D files are then a lab's real 3D frames, mixed in)."
        ),
    )
    p.add_argument(
        "libraries",
        nargs="*",
        metavar="LIBRARY_3D",
        help="3D pose files (with --body: optional real 3D frames to mix in)",
    )
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    p.add_argument(
        "--units",
        metavar="UNITS",
        help="the library's units (e.g. mm), where its file does not say; printed errors and "
        'lifted files use them (default: the file\'s, else "units")',
    )
    body = p.add_argument_group(
        "body model",
        "train on poses sampled from a body model (docs/body-models.md, docs/builtin-lifters.md)",
    )
    body.add_argument(
        "--body",
        metavar="MODEL",
        help="a shipped body model (mouse, fly) or a body-model TOML file (a lab's own, e.g. a rat)",
    )
    body.add_argument(
        "--keypoints-from",
        metavar="TRACKS",
        help="train on the keypoints of these 2D tracks that map onto the body model, named as "
        "they are there (default: all of the body model's)",
    )
    body.add_argument(
        "--mapping",
        metavar="FILE",
        help="a TOML [mapping] file overriding the automatic keypoint mapping (docs/mapping.md)",
    )
    body.add_argument(
        "--body-poses",
        type=at_least(64),
        default=BODY_POSES,
        metavar="N",
        help=f"poses to sample (default: {BODY_POSES})",
    )
    body.add_argument(
        "--real-share",
        type=fraction(low_open=True, high_open=True),
        default=None,
        metavar="FRACTION",
        help="share of the training frames the real 3D frames (LIBRARY_3D) make up after "
        "repetition (default: 0.25)",
    )
    body.add_argument(
        "--subset-dropout",
        type=fraction(low_open=False, high_open=True),
        default=None,
        metavar="FRACTION",
        help="largest share of keypoints a training sample hides (default: 0.8 when training on "
        "the whole body model, so it lifts any subset; 0 with --keypoints-from)",
    )
    src = p.add_mutually_exclusive_group(required=False)
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
    pair = {"nargs": 2, "action": OrderedPair, "metavar": ("MIN", "MAX")}
    rc.add_argument("--azimuth", type=finite_float, default=(-180.0, 180.0), **pair)
    rc.add_argument(
        "--elevation",
        type=finite_float,
        default=None,
        help="degrees (default: -30 30; with --body of a mouse or rat 50 88, a camera above)",
        **pair,
    )
    rc.add_argument("--roll", type=finite_float, default=(0.0, 0.0), **pair)
    rc.add_argument(
        "--distance",
        type=positive_float,
        default=None,
        help="library units (default: 5 to 10 times the animal's size)",
        **pair,
    )
    rc.add_argument("--projection", choices=["pinhole", "weak"], default="pinhole")
    rc.add_argument(
        "--up",
        choices=["x", "y", "z", "-x", "-y", "-z"],
        default="z",
        help="the library's up axis",
    )
    p.add_argument(
        "--root", nargs="+", metavar="NAME", help="root keypoint(s) (default: the first)"
    )
    p.add_argument("--model", choices=["mlp", "temporal"], default="mlp")
    # Unset options take TrainConfig's defaults (the help says them; a test checks it).
    p.add_argument("--epochs", type=at_least(1), help="training epochs (default: 60)")
    p.add_argument(
        "--batch-size", type=at_least(1), help="output frames per optimisation step (default: 64)"
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        help="initial learning rate (default: 0.001 for mlp, 0.002 for temporal)",
    )
    p.add_argument(
        "--patience",
        type=at_least(0),
        help="early stopping: epochs without a better validation error (0: off) (default: 20)",
    )
    p.add_argument(
        "--val-fraction",
        type=fraction(low_open=True, high_open=True),
        help="share of the library kept for validation (default: 0.1)",
    )
    p.add_argument(
        "--width", type=at_least(1), help="MLP hidden width (default: 256; LiftPose3D: 1024)"
    )
    p.add_argument("--blocks", type=at_least(1), help="MLP residual blocks (default: 1)")
    p.add_argument("--channels", type=at_least(1), help="temporal model channels (default: 256)")
    p.add_argument(
        "--filter-widths",
        type=odd_width,
        nargs="+",
        metavar="W",
        help="temporal model filter widths, odd (default: 3)",
    )
    p.add_argument(
        "--dropout",
        type=fraction(low_open=False, high_open=True),
        help="network dropout, in [0, 1) (default: 0.1)",
    )
    aug = p.add_argument_group(
        "2D noise and camera jitter",
        "training 2D noise as real detections have it; validation is scored with the same 2D "
        "noise, so its printed error predicts the error on new recordings (0 turns one off)",
    )
    aug.add_argument(
        "--noise-px",
        type=non_negative_float,
        metavar="PX",
        help="2D noise in pixels, standard deviation per coordinate (default: known camera 1.5, "
        "otherwise 0)",
    )
    aug.add_argument(
        "--noise-2d",
        type=non_negative_float,
        metavar="FRACTION",
        help="2D noise as a fraction of the pose's 2D size (default: random cameras 0.03, "
        "real pairs 0.02, known camera 0)",
    )
    aug.add_argument(
        "--camera-jitter-deg",
        type=non_negative_float,
        metavar="DEG",
        help="known camera: random turn of the camera about the animal, degrees (default: 1)",
    )
    aug.add_argument(
        "--camera-jitter-distance",
        type=fraction(low_open=False, high_open=False),
        metavar="FRACTION",
        help="known camera: random shift of the camera, fraction of its distance (default: 0.02)",
    )
    p.add_argument(
        "--bone-jitter",
        type=non_negative_float,
        help="relative bone-length noise, standard deviation (default: 0)",
    )
    p.add_argument(
        "--keypoint-dropout",
        type=fraction(low_open=False, high_open=True),
        help="probability that a keypoint is hidden in training (default: 0.1 for temporal "
        "models and real pairs, else 0)",
    )
    p.add_argument(
        "--frame-dropout",
        type=fraction(low_open=False, high_open=True),
        help="probability that a frame is hidden in training (default: 0.05 for temporal "
        "models, else 0)",
    )
    p.add_argument("--device", choices=DEVICES, default="auto")
    add_threads_option(p)
    p.add_argument("--seed", type=at_least(0), default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _architecture(args: argparse.Namespace) -> dict | None:
    arch = {
        name: getattr(args, name)
        for name in ("width", "blocks", "channels", "filter_widths", "dropout")
        if getattr(args, name) is not None
    }
    for name in arch:
        kind = _ONLY_FOR.get(name)
        if kind is not None and kind != args.model:
            flag = "--" + name.replace("_", "-")
            raise CliError(f"{PROG} train: {flag} applies to --model {kind}, not {args.model}")
    return arch or None


def _config(args: argparse.Namespace):
    from napari_liftpose.lifting import TrainConfig

    names = (
        "epochs",
        "batch_size",
        "lr",
        "patience",
        "val_fraction",
        "noise_2d",
        "noise_px",
        "camera_jitter_deg",
        "camera_jitter_distance",
        "bone_jitter",
        "keypoint_dropout",
        "frame_dropout",
    )
    overrides = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    subset = getattr(args, "subset_dropout", None)
    if subset is None and args.body is not None and not args.keypoints_from:
        subset = BODY_SUBSET_DROPOUT
    if subset:
        overrides["subset_dropout"] = subset
    return TrainConfig(
        model=args.model,
        architecture=_architecture(args),
        seed=args.seed,
        device=args.device,
        **overrides,
    )


def _elevation(args: argparse.Namespace, body=None) -> tuple[float, float]:
    """``--elevation``, else a camera above a rodent body model, else level cameras."""
    if args.elevation is not None:
        return args.elevation
    if body is not None:
        from napari_liftpose.bodies.library import is_rodent

        if is_rodent(body):
            return TOP_VIEW
    return ELEVATION


def _camera(args: argparse.Namespace, libraries: list, body=None):
    from napari_liftpose.io import read_poses
    from napari_liftpose.lifting import KnownCamera, PairedTracks, RandomCameras
    from napari_liftpose.lifting.camera_defaults import up_vector
    from napari_liftpose.lifting.matching import require_keypoints, require_space

    if args.camera:
        return KnownCamera(read_camera(args.camera))
    if args.random_camera:
        try:
            return RandomCameras(
                azimuth=args.azimuth,
                elevation=_elevation(args, body),
                roll=args.roll,
                distance=args.distance,  # None: train() uses default_distance(libraries)
                projection=args.projection,
                up=up_vector(args.up),
            )
        except ValueError as err:
            raise CliError(f"{PROG} train: {err}") from None
    tracks = [read_poses(p) for p in args.tracks_2d]
    for path, trk, lib_path, lib in zip(
        args.tracks_2d, tracks, args.libraries, libraries, strict=True
    ):
        require_space(trk, 2, path, "paired with a library")
        require_keypoints(trk, lib.keypoints, f"the library {lib_path}", path)
    return PairedTracks(tracks)


def state_file(output: Path) -> Path:
    """Where ``train`` keeps its state for ``--resume``: ``<output>.resume.safetensors``.

    The same rule as :func:`napari_liftpose.lifting.training.resume_path` (a test checks it),
    spelled here so that outputs are checked against inputs before torch is even imported.
    """
    return output.with_name(output.name + ".resume.safetensors")


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _interrupted_message(output: Path, before: tuple | None, result=None) -> str:
    """What an interrupted run left: a new best model, the old file, or nothing.

    ``result`` is the :class:`~napari_liftpose.lifting.TrainResult` that ``train`` attaches to
    the interrupt when it got that far; otherwise the file itself is looked at.
    """
    if result is not None:
        from napari_liftpose.lifting.training import epochs

        written = bool(getattr(result, "written", False))
        after = f" after {epochs(result.epochs_run)}"
    else:
        now = _file_state(output)
        written, after = now is not None and now != before, ""
    if written:
        kept = f"the best model so far is in {output}"
    elif output.exists():
        kept = f"{output} was not changed (no model written)"
    else:
        kept = "no model was written"
    more = " (continue with --resume)" if state_file(output).is_file() else ""
    return f"{output}: training interrupted{after}; {kept}{more}"


def run(args: argparse.Namespace) -> int:
    """Train and print where the model went; see :func:`napari_liftpose.lifting.train`."""
    output = Path(args.output)
    calibration = split_camera_spec(args.camera)[0] if args.camera else None
    body_inputs = [args.keypoints_from, args.mapping] if args.body is not None else []
    inputs = [*args.libraries, *(args.tracks_2d or []), calibration, *body_inputs]
    refuse_overwriting_inputs([output, state_file(output)], inputs)  # before importing torch
    _check_sources(args)
    from napari_liftpose.io import read_poses
    from napari_liftpose.lifting import train
    from napari_liftpose.lifting.matching import require_space
    from napari_liftpose.lifting.training import epochs, library_units

    if args.tracks_2d and len(args.tracks_2d) != len(args.libraries):
        raise CliError(
            f"{PROG} train: expected one --tracks-2d file per library ({len(args.libraries)}), "
            f"got {len(args.tracks_2d)}"
        )
    config = _config(args)
    check_writable(output)
    check_readable(inputs)
    libraries = [read_poses(p) for p in args.libraries]
    for path, lib in zip(args.libraries, libraries, strict=True):
        require_space(lib, 3, path, "for a library")
    built = None
    if args.body is not None:
        built = _body_library(args, libraries)
        libraries, args.root = built.libraries, args.root or built.roots
        print(built.describe(), flush=True)
    camera = _camera(args, libraries, built and built.model)
    bar = ProgressBar(not args.quiet and not log.isEnabledFor(logging.INFO))  # -v: a line per epoch
    if args.units:
        libraries = [lib.copy(units=args.units) for lib in libraries]
    units = library_units(libraries[0])

    def progress(p) -> None:
        log_progress(log, p, units)
        bar.update(
            p.epoch,
            p.n_epochs,
            f"epoch {p.epoch}/{p.n_epochs} loss {number(p.train_loss)} val MPJPE "
            f"{number(p.val_mpjpe)} {units} (best {number(p.best_val_mpjpe)} @ {p.best_epoch})",
        )

    before = _file_state(output)
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
    except KeyboardInterrupt as err:
        bar.close()
        message = _interrupted_message(output, before, getattr(err, "train_result", None))
        raise CommandInterrupted(message) from None
    finally:
        bar.close()
    if result.path is None:  # e.g. no epoch gave a finite validation error
        raise CliError(result.summary())
    if built is not None:
        _record_body_model(result.path, built)
    print(
        f"wrote {result.path}: {result.status} after {epochs(result.epochs_run)}, best epoch "
        f"{result.best_epoch}, validation MPJPE {number(result.val_mpjpe)} {units}, "
        f"{result.elapsed_s:.1f} s"
    )
    return 0


# -- --body: a library sampled from a body model ----------------------------------------------
def _check_sources(args: argparse.Namespace) -> None:
    """One source of 2D (or --body); body-model options only with --body."""
    if args.body is None:
        for flag, given in (
            ("--keypoints-from", args.keypoints_from),
            ("--mapping", args.mapping),
            ("--real-share", args.real_share is not None),
            ("--body-poses", args.body_poses != BODY_POSES),
        ):
            if given:
                raise CliError(f"{PROG} train: {flag} needs --body")
        if not args.libraries:
            raise CliError(f"{PROG} train: expected LIBRARY_3D files, or --body MODEL")
        if not (args.camera or args.random_camera or args.tracks_2d):
            raise CliError(f"{PROG} train: expected one of --camera, --random-camera, --tracks-2d")
        return
    if args.tracks_2d:
        raise CliError(
            f"{PROG} train: --tracks-2d pairs real 2D with real 3D; a body model has no 2D "
            "(use --random-camera or --camera)"
        )
    if args.real_share is not None and not args.libraries:
        raise CliError(f"{PROG} train: --real-share needs real 3D frames (LIBRARY_3D files)")
    if not args.camera:
        args.random_camera = True  # a body model: random cameras unless a known one is given


def _body_library(args: argparse.Namespace, real: list):
    """The sampled (and mapped, and mixed) library; every problem one line naming its file."""
    from napari_liftpose.bodies import load_body_model
    from napari_liftpose.bodies.library import REAL_SHARE, training_library
    from napari_liftpose.bodies.mapping import read_mapping_file
    from napari_liftpose.io import read_poses

    body = load_body_model(args.body)  # a bad file: one line naming it (BodyModelError)
    user = edges = None
    if args.keypoints_from:
        tracks = read_poses(args.keypoints_from)
        user, edges = list(tracks.keypoints), tracks.edges if len(tracks.edges) else None
    overrides = read_mapping_file(args.mapping, body.keypoints) if args.mapping else None
    try:
        built = training_library(
            body,
            args.body_poses,
            user_keypoints=user,
            overrides=overrides,
            user_edges=edges,
            real=real,
            real_share=args.real_share or REAL_SHARE,
            seed=args.seed,
        )
    except ValueError as err:
        where = args.keypoints_from or args.body
        raise CliError(f"{where}: {err}") from None
    return built


def _record_body_model(path: Path, built) -> None:
    """Record the body model (and the mapping) in the written model file."""
    from napari_liftpose.bodies.adapt import record_body_model
    from napari_liftpose.bodies.library import body_model_meta

    extra = {}
    if built.mapping is not None:
        extra["mapping"] = dict(built.mapping.pairs)
    record_body_model(path, body_model_meta(built.model), **extra)
