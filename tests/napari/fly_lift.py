"""A real lift for viewer tests: a tiny lifter trained on the DeepFly3D fly, lifting damaged 2D.

Training takes seconds; tests that call :func:`fly_lift` must be marked ``slow``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from napari_liftpose import Poses
from napari_liftpose.lifting import TrainConfig, camera_from_angles, load_lifter, train
from napari_liftpose.lifting.corruptions import corrupt_frames
from napari_liftpose.lifting.suspicion import SuspicionReport, suspicion_report

N_LIBRARY = 700  # frames 0..699 train the lifter, the rest are lifted


@dataclass
class FlyLift:
    """A lifter, the damaged 2D it lifted, the lift, its suspicion report and the 3D truth."""

    lifter: object
    poses_2d: Poses
    damaged: np.ndarray  # (frames, individuals) bool: the frames corrupt_frames damaged
    lifted: Poses
    report: SuspicionReport
    truth: Poses


def read_fly(data_dir: Path) -> Poses:
    """DeepFly3D fly: 1000 frames x 30 keypoints, mm, body frame (z up)."""
    path = Path(data_dir) / "fly_df3d_210902" / "points3d.npz"
    with np.load(path) as z:
        return Poses(
            z["points3d"][:, None],
            [str(k) for k in z["keypoints"]],
            edges=z["edges"],
            fps=float(z["fps"]),
            units="mm",
            source=str(path),
            frame="world",
        )


@lru_cache(maxsize=1)
def fly_lift(data_dir: Path, work: Path) -> FlyLift:
    """Train (seconds) on the first frames, lift the rest projected and 8% damaged."""
    import torch

    torch.set_num_threads(1)
    fly = read_fly(data_dir)
    camera = camera_from_angles(azimuth=90, elevation=20, distance=20)
    model = Path(work) / "fly.safetensors"
    library = fly.copy(coords=fly.coords[:N_LIBRARY].copy(), confidence=None)
    train(library, camera, model, TrainConfig(model="mlp", epochs=3, device="cpu", seed=0))
    lifter = load_lifter(model, device="cpu")
    truth = fly.copy(coords=fly.coords[N_LIBRARY:].copy(), confidence=None)
    image = Poses(camera.project(truth.coords), fly.keypoints, edges=fly.edges, units="px")
    damaged_2d, damaged, _ = corrupt_frames(image, fraction=0.08, rng=0)
    lifted = lifter.lift(damaged_2d)
    report = suspicion_report(lifter, damaged_2d, lifted)
    return FlyLift(lifter, damaged_2d, damaged, lifted, report, lifter.truth_in_output_frame(truth))
