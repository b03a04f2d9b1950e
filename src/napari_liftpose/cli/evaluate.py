"""``napari-liftpose evaluate``: lift 2D tracks and compare with 3D truth (text or strict JSON)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from napari_liftpose.cli._common import (
    DEVICES,
    CliError,
    add_threads_option,
    check_readable,
    number,
    read_camera,
    split_camera_spec,
)
from napari_liftpose.poses import FRAMES

__all__ = ["add_parser", "run", "strict_json"]

_LINES = (
    ("mpjpe", "MPJPE"),
    ("pa_mpjpe", "PA-MPJPE"),
    ("n_mpjpe", "N-MPJPE"),
    ("mpjve", "MPJVE (per frame)"),
    ("bone_length_std", "bone length std"),
    ("bone_length_std_truth", "bone length std (truth)"),
)


def add_parser(subparsers) -> None:
    """Register ``evaluate`` and its options."""
    p = subparsers.add_parser(
        "evaluate",
        help="lift 2D tracks and compare with 3D truth",
        description=(
            "Lift TRACKS_2D and print MPJPE, PA-MPJPE, N-MPJPE, MPJVE and bone-length std against "
            "TRUTH_3D (root-relative, valid joints only, Euclidean, in the truth's units). The "
            "comparison is in the axes `lift` outputs (--frame): the library's (world) axes by "
            "default where the model knows them; in camera axes the truth is rotated into the "
            "model's own camera, or --camera."
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
        "--frame",
        choices=list(FRAMES),
        default=None,
        help="axes to compare in, as `lift --frame` (default: the model's output axes)",
    )
    p.add_argument(
        "--root", nargs="+", metavar="NAME", help="root(s) for the metrics (default: the model's)"
    )
    p.add_argument(
        "--json", action="store_true", help="print the metrics as JSON (undefined values: null)"
    )
    p.add_argument("--device", choices=DEVICES, default="auto")
    add_threads_option(p)
    p.set_defaults(run=run)


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return _finite_or_none(value.item())
    return value


def strict_json(metrics: dict) -> str:
    """``metrics`` as standard JSON: NaN and infinities become ``null`` (never ``NaN``)."""
    return json.dumps(_finite_or_none(metrics), indent=1, allow_nan=False)


def run(args: argparse.Namespace) -> int:
    """Lift, evaluate, print the metrics."""
    from napari_liftpose.io import read_poses
    from napari_liftpose.lifting import evaluate, load_lifter
    from napari_liftpose.lifting.matching import (
        require_keypoints,
        require_same_frames,
        require_space,
    )
    from napari_liftpose.lifting.metrics import model_roots

    calibration = split_camera_spec(args.camera)[0] if args.camera else None
    check_readable([args.model, args.tracks, args.truth, calibration])
    lifter = load_lifter(args.model, device=args.device)
    against = f"the model {lifter.path}"
    tracks = read_poses(args.tracks)
    require_space(tracks, 2, args.tracks, "to lift")
    truth = read_poses(args.truth)
    require_space(truth, 3, args.truth, "as truth")
    require_keypoints(tracks, lifter.keypoints, against, args.tracks)
    require_keypoints(truth, lifter.keypoints, against, args.truth)
    require_same_frames(truth, tracks, args.truth, args.tracks)
    camera = read_camera(args.camera) if args.camera else None
    try:
        frame = lifter.output_frame(args.frame)
    except ValueError as err:
        raise CliError(f"{args.model}: {err} (--frame)") from None
    try:
        truth = lifter.truth_in_output_frame(truth, camera, frame)
    except ValueError as err:
        raise CliError(f"{args.model}: {err} (--camera)") from None
    pred = lifter.lift(tracks, frame=frame, suspicion=False)
    metrics = evaluate(pred, truth, *model_roots(lifter.meta, args.root))
    metrics["frame"] = frame
    if args.json:
        print(strict_json(metrics))
        return 0
    units = metrics["units"]
    print(
        f"{Path(args.tracks).name}: {metrics['n_frames']} frames, {metrics['n_valid_joints']} valid "
        f"joints, root {', '.join(metrics['roots'])}, {frame} axes"
    )
    for key, label in _LINES:
        print(f"  {label:<24} {number(metrics[key], '.4f')} {units}")
    per_joint = [
        (v, k) for k, v in metrics["per_joint_mpjpe"].items() if v is not None and math.isfinite(v)
    ]
    worst = sorted(per_joint, reverse=True)[:3]
    print("  worst joints             " + ", ".join(f"{k} {v:.3f}" for v, k in worst))
    if metrics["uncertainty_coverage"] is not None:
        print(
            f"  uncertainty coverage     {metrics['uncertainty_coverage']:.3f} "
            "(true points within their 80% radius)"
        )
    return 0
