"""The tasks of the napari-liftpose vs LiftPose3D suite (``bench_vs_liftpose.py``).

Every 3D library in ``LIFTPOSE_TEST_DATA`` and the package's own insect, each split in time
(first 80% of the frames train, last 20% test), with detector-like noise on the test 2D:

* ``fly-known``: DeepFly3D fly seen by one known pinhole camera; 3D in the library's axes.
* ``fly-random``: the same fly, random virtual cameras (``RandomCameras`` defaults) for
  training; tested from one pinhole camera 50 degrees above the animal, outside the training
  elevations (+-30).
* ``mouse-top``, ``mouse-back``, ``mouse-mid``: sleap-anipose mouse, real SLEAP 2D of one camera
  paired with the triangulated 3D (120 frames: 96 train, 24 test).
* ``insect-known``: ``napari_liftpose.synthetic.walking_insect`` seen by ``demo_camera()``.

Test noise: Gaussian, :data:`TEST_NOISE_PX` pixels per coordinate on every task (all test 2D is in
pixels of a pinhole camera; the mouse's real detections get it on top of their own error).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_liftpose import Poses
from napari_liftpose.io.calibration import Camera
from napari_liftpose.lifting import KnownCamera, PairedTracks, RandomCameras, camera_from_angles
from napari_liftpose.lifting.camera_defaults import default_distance

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIFTPOSE_TEST_DATA", REPO.parent / "shared" / "data"))

#: Standard deviation (pixels) of the Gaussian noise added to every test 2D coordinate.
TEST_NOISE_PX = 1.5
#: Fraction of every sequence's frames (its first ones) used for training.
TRAIN_FRACTION = 0.8
#: Test camera of the random-camera task: outside RandomCameras' default elevations (+-30).
RANDOM_TEST_VIEW = {"azimuth": 30.0, "elevation": 50.0}
#: LiftPose3D's random projections for our RandomCameras defaults (azimuth -180..180, elevation
#: -30..30, no roll): scipy Euler 'zyx' extrinsic = heading about z, none about y, 90 +- 30 about x
#: (orthographic; the camera's optical axis is then horizontal +- 30 degrees).
LP3D_EANGLES = "-180,180,0,0,60,120"


@dataclass
class Task:
    """One benchmark task: identical arrays for both lifters, and how ours is trained.

    Arrays are ``(frames, keypoints, 2 or 3)`` for one individual; ``test2d`` carries the test
    noise already. ``truth`` is the 3D the outputs are compared with, in the library's axes.
    """

    key: str
    title: str
    names: list[str]
    edges: np.ndarray
    root: int
    units: str
    train3d: np.ndarray
    train2d: np.ndarray
    test2d: np.ndarray
    test_conf: np.ndarray
    truth: np.ndarray
    source: Callable[[], object]  # the 2nd argument of train(): camera or PairedTracks
    kind: str  # "known", "random" or "pairs"
    test_camera: Camera | None = None
    lp3d: dict = field(default_factory=dict)  # LiftPose3D's arrays and flags (see lp3d_inputs)
    note: str = ""

    def library(self) -> Poses:
        """The training 3D as a library ``Poses``."""
        return Poses(self.train3d[:, None], self.names, edges=self.edges, units=self.units)

    def test_poses(self) -> Poses:
        """The (noisy) test 2D as ``Poses`` with its confidence."""
        return Poses(
            self.test2d[:, None], self.names, confidence=self.test_conf[:, None], edges=self.edges
        )


def _split(n: int) -> int:
    return int(round(n * TRAIN_FRACTION))


def _noisy(points: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return points + rng.normal(0.0, TEST_NOISE_PX, points.shape)


def _fly() -> tuple[np.ndarray, list[str], np.ndarray]:
    z = np.load(DATA / "fly_df3d_210902" / "points3d.npz")
    return z["points3d"].astype(np.float64), [str(k) for k in z["keypoints"]], z["edges"]


def _known(key, title, pts, names, edges, root, units, camera: Camera, seed: int) -> Task:
    cut = _split(len(pts))
    p2 = camera.project(pts)
    return Task(
        key=key,
        title=title,
        names=names,
        edges=np.asarray(edges),
        root=root,
        units=units,
        train3d=pts[:cut],
        train2d=p2[:cut],
        test2d=_noisy(p2[cut:], seed),
        test_conf=np.ones(p2[cut:].shape[:2]),
        truth=pts[cut:],
        source=lambda: KnownCamera(camera),
        kind="known",
        lp3d={},
        note=f"camera {camera.name!r}, 3D in the library's axes",
    )


def fly_known() -> Task:
    """The fly, one known side camera (azimuth 90, elevation 20, 20 mm, focal 1000 px)."""
    pts, names, edges = _fly()
    cam = camera_from_angles(azimuth=90, elevation=20, distance=20, focal=1000, name="side")
    return _known("fly-known", "fly, known camera", pts, names, edges, 0, "mm", cam, seed=1)


def fly_random() -> Task:
    """The fly, random virtual cameras; tested from elevation 50 (trained within +-30)."""
    pts, names, edges = _fly()
    cut = _split(len(pts))
    lib = Poses(pts[:cut, None], names, edges=edges, units="mm")
    distance = float(np.mean(default_distance([lib])))
    # the test camera looks at the animal (RandomCameras aims at the root)
    centre = np.nanmean(pts[cut:, 0], axis=0)
    cam = camera_from_angles(
        **RANDOM_TEST_VIEW, distance=distance, focal=1000, target=tuple(centre), name="test"
    )
    p2 = cam.project(pts)
    test2d = _noisy(p2[cut:], seed=2)
    # LiftPose3D's random projections are orthographic in library units: give it the test 2D at
    # that scale (pixels * distance / focal, the weak-perspective equivalent), noise included
    to_mm = distance / 1000.0
    return Task(
        key="fly-random",
        title="fly, random cameras",
        names=names,
        edges=np.asarray(edges),
        root=0,
        units="mm",
        train3d=pts[:cut],
        train2d=p2[:cut],
        test2d=test2d,
        test_conf=np.ones(test2d.shape[:2]),
        truth=pts[cut:],
        source=lambda: RandomCameras(),
        kind="random",
        test_camera=cam,
        lp3d={"test2d": test2d * to_mm, "eangles": LP3D_EANGLES, "px_to_input": to_mm},
        note=(
            f"test camera azimuth {RANDOM_TEST_VIEW['azimuth']:g}, elevation "
            f"{RANDOM_TEST_VIEW['elevation']:g}, {distance:.1f} mm; LP3D: orthographic random "
            f"projections (--eangles {LP3D_EANGLES}), test 2D scaled to mm"
        ),
    )


def mouse(camera: str) -> Task:
    """The sleap-anipose mouse: real SLEAP 2D of ``camera`` paired with the triangulated 3D."""
    from napari_liftpose.io import read_poses

    session = DATA / "sleap_anipose_minimal_session"
    two = read_poses(session / camera / f"minimal_{camera}_proofread.analysis.h5")
    three = read_poses(session / "points3d.h5").select_keypoints(two.keypoints)
    p2, p3 = two.coords[:, 0].astype(np.float64), three.coords[:, 0].astype(np.float64)
    conf = np.nan_to_num(two.confidence[:, 0].astype(np.float64), nan=1.0)
    cut = _split(len(p2))
    names = list(two.keypoints)
    tracks = Poses(
        p2[:cut, None], names, confidence=conf[:cut, None], edges=two.edges, units=two.units
    )
    return Task(
        key=f"mouse-{camera}",
        title=f"mouse, {camera} camera (real 2D)",
        names=names,
        edges=np.asarray(two.edges),
        root=names.index("Trunk"),
        units=three.units or "units",
        train3d=p3[:cut],
        train2d=p2[:cut],
        test2d=_noisy(p2[cut:], seed=3),
        test_conf=conf[cut:],
        truth=p3[cut:],
        source=lambda: PairedTracks([tracks]),
        kind="pairs",
        note="real SLEAP 2D paired with points3d.h5; test 2D + 1.5 px",
    )


def insect_known() -> Task:
    """The package's synthetic insect (1000 frames) seen by ``demo_camera()``."""
    from napari_liftpose.synthetic import demo_camera, walking_insect

    lib = walking_insect(n_frames=1000, seed=0)
    pts = lib.coords[:, 0].astype(np.float64)
    names = list(lib.keypoints)
    return _known(
        "insect-known",
        "insect, known camera",
        pts,
        names,
        lib.edges,
        names.index("Thorax"),
        "mm",
        demo_camera(),
        seed=4,
    )


#: Every task, in the order the table prints them.
TASKS: dict[str, Callable[[], Task]] = {
    "fly-known": fly_known,
    "fly-random": fly_random,
    "mouse-top": lambda: mouse("top"),
    "mouse-back": lambda: mouse("back"),
    "mouse-mid": lambda: mouse("mid"),
    "insect-known": insect_known,
}


def lp3d_inputs(task: Task) -> dict:
    """LiftPose3D's arrays and extra flags for ``task`` (identical arrays unless noted).

    Returns
    -------
    dict
        ``tr2, tr3, te2, te3`` arrays, ``eangles`` (or None) and ``px_to_input``: the factor that
        turns pixels into LiftPose3D's 2D input units (1 except for orthographic projections).
    """
    return {
        "tr2": task.train2d,
        "tr3": task.train3d,
        "te2": task.lp3d.get("test2d", task.test2d),
        "te3": task.truth,
        "eangles": task.lp3d.get("eangles"),
        "px_to_input": task.lp3d.get("px_to_input", 1.0),
    }
