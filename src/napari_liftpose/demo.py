"""The demo pipeline on generated data: build files, train a lifter, lift, evaluate.

Used by ``napari-liftpose demo`` (with or without a window) and by the tests. Nothing is
downloaded: the insect, its video and its 2D tracks come from :mod:`napari_liftpose.synthetic`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from napari_liftpose.io import read_poses, write_calibration, write_poses
from napari_liftpose.io.atomic import atomic_write_text
from napari_liftpose.synthetic import demo_camera, project_poses, render_video, walking_insect

__all__ = ["DemoFiles", "build_demo_files", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoFiles:
    """Paths of everything the demo writes into its folder."""

    folder: Path

    @property
    def library(self) -> Path:
        """3D pose library the lifter is trained on (``.npz``)."""
        return self.folder / "library_3d.npz"

    @property
    def truth(self) -> Path:
        """3D ground truth of the filmed walk (``.npz``)."""
        return self.folder / "walk_3d_truth.npz"

    @property
    def calibration(self) -> Path:
        """The demo camera (anipose ``calibration.toml``)."""
        return self.folder / "calibration.toml"

    @property
    def video(self) -> Path:
        """Rendered video of the walk (``.mp4``)."""
        return self.folder / "walk.mp4"

    @property
    def tracks(self) -> Path:
        """2D tracks of the walk as SLEAP labels, referencing the video."""
        return self.folder / "walk.slp"

    @property
    def model(self) -> Path:
        """The trained lifter."""
        return self.folder / "insect_lifter.safetensors"

    @property
    def lifted(self) -> Path:
        """Lifted 3D poses of the walk."""
        return self.folder / "walk_3d_lifted.npz"

    @property
    def metrics(self) -> Path:
        """Metrics of the lifted walk against its ground truth (JSON)."""
        return self.folder / "metrics.json"


def build_demo_files(
    folder: str | Path, n_frames: int = 400, library_frames: int = 4000
) -> DemoFiles:
    """Write the demo's library, camera, video and 2D tracks into ``folder``."""
    import sleap_io as sio

    files = DemoFiles(Path(folder))
    files.folder.mkdir(parents=True, exist_ok=True)
    camera = demo_camera()
    library = walking_insect(library_frames, seed=1)
    walk = walking_insect(n_frames, seed=0)
    write_poses(library, files.library)
    write_poses(walk, files.truth)
    write_calibration({"demo": camera}, files.calibration)
    tracks = project_poses(walk, camera, noise_px=0.5, seed=0)
    sio.save_video(render_video(tracks, camera.size), str(files.video), fps=30)
    tracks.video = str(files.video)
    write_poses(tracks, files.tracks)
    return files


def run_demo(
    folder: str | Path,
    epochs: int = 15,
    device: str = "auto",
    progress: Callable | None = None,
) -> dict:
    """Build the demo files, train a lifter for the demo camera, lift the walk and evaluate it.

    Returns the metrics (also written to ``metrics.json``) with the paths written.
    """
    from napari_liftpose.io import read_calibration
    from napari_liftpose.lifting import KnownCamera, TrainConfig, evaluate, load_lifter, train

    files = build_demo_files(folder)
    camera = read_calibration(files.calibration)["demo"]
    config = TrainConfig(model="mlp", epochs=epochs, device=device, seed=0)
    result = train(
        read_poses(files.library),
        KnownCamera(camera),
        files.model,
        config,
        roots=["Thorax"],
        progress=progress,
    )
    lifter = load_lifter(files.model, device=device)
    lifted = lifter.lift(read_poses(files.tracks))
    write_poses(lifted, files.lifted)
    metrics = evaluate(
        lifted, lifter.truth_in_output_frame(read_poses(files.truth)), roots=["Thorax"]
    )
    metrics["training"] = {
        "status": result.status,
        "epochs": result.epochs_run,
        "val_mpjpe": result.val_mpjpe,
    }
    metrics["files"] = {
        name: str(getattr(files, name))
        for name in ("library", "truth", "calibration", "video", "tracks", "model", "lifted")
    }
    atomic_write_text(files.metrics, json.dumps(metrics, indent=2))
    return metrics
