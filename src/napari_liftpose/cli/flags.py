"""``napari-liftpose flags``: lift 2D tracks and list the poses that look most wrong.

Every (frame, individual) gets the suspicion score of
:func:`napari_liftpose.lifting.suspicion.suspicion_report` (0 to 1, higher = more suspicious)
and the feature that drove it; the ``-n`` highest are printed, most suspicious first. Frames are
numbered from 0, as in the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_liftpose.cli._arguments import at_least
from napari_liftpose.cli._common import DEVICES, CliError, add_threads_option, check_readable

__all__ = ["REASONS", "add_parser", "run"]

#: What each feature means, for the text after the table.
REASONS = {
    "confidence": "low or missing 2D confidence",
    "jump_2d": "a 2D keypoint far from where it is in both neighbouring frames",
    "jump_3d": "a lifted keypoint far from where it is in both neighbouring frames",
    "left_right": "left and right look exchanged (the swapped pose fits the neighbours better)",
    "reprojection": "the lifted 3D does not project onto the 2D",
    "bones": "a lifted bone length unlike the training library's",
    "keypoint": "one keypoint both jumps in 2D and misses the reprojection",
    "uncertainty": "a large lifted uncertainty",
    "-": "no feature above the file's typical value",
}


def add_parser(subparsers) -> None:
    """Register ``flags`` and its options."""
    p = subparsers.add_parser(
        "flags",
        help="list the frames whose lifted pose looks most wrong",
        description=(
            "Lift TRACKS_2D with MODEL and print the most suspicious (frame, individual) poses "
            "first: rank, frame (from 0), individual, score (0 to 1; 0.5 = features together 5 "
            "robust deviations above the file's typical value, which about 5% of clean frames "
            "reach) and the main reason."
        ),
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("tracks", metavar="TRACKS_2D")
    p.add_argument("-n", "--number", type=at_least(1), default=20, help="how many to list")
    p.add_argument("--individual", metavar="NAME", help="only this individual (track)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    add_threads_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Lift, score, print the most suspicious poses."""
    from napari_liftpose.cli.lift import require_a_tracked_root
    from napari_liftpose.io import read_poses
    from napari_liftpose.lifting import load_lifter
    from napari_liftpose.lifting.matching import require_keypoints, require_space
    from napari_liftpose.lifting.suspicion import suspicion_report

    check_readable([args.model, args.tracks])
    lifter = load_lifter(args.model, device=args.device)
    poses = read_poses(args.tracks)
    require_space(poses, 2, args.tracks, "to lift")
    require_keypoints(poses, lifter.keypoints, f"the model {lifter.path}", args.tracks)
    if args.individual is not None:
        if args.individual not in poses.individuals:
            raise CliError(
                f"{args.tracks}: no individual named {args.individual!r} "
                f"(individuals: {list(poses.individuals)[:10]})"
            )
        i = list(poses.individuals).index(args.individual)
        poses = poses.copy(
            coords=poses.coords[:, i : i + 1].copy(),
            confidence=poses.confidence[:, i : i + 1].copy(),
            individuals=[args.individual],
        )
    require_a_tracked_root(poses, lifter, args.tracks)
    lifted = lifter.lift(poses, suspicion=False)
    report = suspicion_report(lifter, poses, lifted)
    scores = report.scores
    ranked = [(f, i) for f, i in np.argwhere(np.isfinite(scores))]
    ranked.sort(key=lambda fi: (-scores[fi], fi[0], fi[1]))
    shown = ranked[: args.number]
    print(
        f"{Path(args.tracks).name}: {poses.n_frames} frames x {poses.n_individuals} "
        f"individuals, {len(ranked)} poses scored; the {len(shown)} most suspicious:"
    )
    width = max([len("individual")] + [len(poses.individuals[i]) for _, i in shown])
    print(f"{'rank':>4}  {'frame':>6}  {'individual':<{width}}  {'score':>5}  reason")
    # a pose with no evidence has no reason (the argmax of zeros would name the first feature)
    reasons = np.where(scores >= 0.0005, report.reasons, "-")  # printed as 0.000: none
    for rank, (f, i) in enumerate(shown, 1):
        print(
            f"{rank:>4}  {f:>6}  {poses.individuals[i]:<{width}}  {scores[f, i]:5.3f}  "
            f"{reasons[f, i]}"
        )
    used = sorted({reasons[f, i] for f, i in shown})
    for reason in used:
        print(f"  {reason}: {REASONS.get(reason, reason)}")
    return 0
