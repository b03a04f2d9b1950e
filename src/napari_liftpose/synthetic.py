"""A procedurally animated insect: 3D pose library, camera, 2D tracks and rendered video.

Everything the demo and the sample data show is generated here, by the package's own code, so a
fresh install needs no download. The insect has the 30 leg keypoints of the DeepFly3D fly
(6 legs x Coxa/Femur/Tibia/Tarsus/Claw) plus Head, Thorax and Abdomen, walks with a tripod gait
of varying speed and turns, in millimetres.
"""

from __future__ import annotations

import numpy as np

from napari_liftpose.io.calibration import Camera
from napari_liftpose.poses import Poses

__all__ = [
    "LEGS",
    "insect_keypoints",
    "insect_edges",
    "walking_insect",
    "demo_camera",
    "project_poses",
    "render_video",
]

LEGS = ("LF", "LM", "LH", "RF", "RM", "RH")
SEGMENTS = ("Coxa", "Femur", "Tibia", "Tarsus", "Claw")
BODY = ("Head", "Thorax", "Abdomen")
_TRIPOD_A = {"LF", "RM", "LH"}
_LEG_X = {"F": 0.35, "M": 0.0, "H": -0.35}  # coxa position along the body (mm)
_FOOT_X = {"F": 1.1, "M": 0.1, "H": -1.0}  # neutral foot position along the body


def insect_keypoints() -> list[str]:
    """Keypoint names: Head, Thorax, Abdomen, then ``<leg>_<segment>`` for 6 legs x 5 segments."""
    return [*BODY, *(f"{leg}_{seg}" for leg in LEGS for seg in SEGMENTS)]


def insect_edges() -> list[tuple[int, int]]:
    """Skeleton: head-thorax-abdomen, thorax to each coxa, and the 4 segments of every leg."""
    names = insect_keypoints()
    edges = [(0, 1), (1, 2)]
    for leg in LEGS:
        chain = [names.index(f"{leg}_{seg}") for seg in SEGMENTS]
        edges.append((1, chain[0]))
        edges.extend(zip(chain[:-1], chain[1:], strict=True))
    return edges


def _rotation_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    zeros, ones = np.zeros_like(c), np.ones_like(c)
    return np.stack(
        [
            np.stack([c, -s, zeros], -1),
            np.stack([s, c, zeros], -1),
            np.stack([zeros, zeros, ones], -1),
        ],
        axis=-2,
    )


def _knee(hip: np.ndarray, foot: np.ndarray, upper: float, lower: float) -> np.ndarray:
    """Joint of a two-segment chain from ``hip`` to ``foot``, bent upwards (vectorised)."""
    span = foot - hip
    dist = np.clip(np.linalg.norm(span, axis=-1, keepdims=True), 1e-6, 0.999 * (upper + lower))
    along = span / dist
    a = (upper**2 - lower**2 + dist**2) / (2 * dist)
    h = np.sqrt(np.clip(upper**2 - a**2, 0, None))
    up = np.array([0.0, 0.0, 1.0])
    normal = up - (along @ up)[..., None] * along
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    return hip + a * along + h * normal


def walking_insect(n_frames: int = 600, seed: int = 0, fps: float = 100.0) -> Poses:
    """Simulate a walking insect; returns 3D :class:`Poses` ``(n_frames, 1, 33, 3)`` in mm.

    Different seeds give different body sizes, gait phases, speeds and turning patterns.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames, dtype=np.float64)
    scale = rng.uniform(0.9, 1.1)
    height = 0.9 * scale
    # gait frequency (cycles per frame) and turning vary smoothly over time
    freq = 0.04 + 0.015 * np.sin(2 * np.pi * t / rng.uniform(300, 600) + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(freq) + rng.uniform(0, 2 * np.pi)
    stride = 0.45 * scale
    turn = 0.012 * np.sin(2 * np.pi * t / rng.uniform(200, 500) + rng.uniform(0, 6.3))
    heading = np.cumsum(turn) + rng.uniform(0, 2 * np.pi)
    speed = 2 * stride * freq
    # keep the walk inside a small arena: steer back towards the centre
    position = np.zeros((n_frames, 3))
    for i in range(1, n_frames):
        step = speed[i] * np.array([np.cos(heading[i]), np.sin(heading[i]), 0.0])
        position[i] = position[i - 1] + step
        back = -position[i, :2]
        if np.linalg.norm(back) > 1.0:
            wanted = np.arctan2(back[1], back[0])
            heading[i:] += 0.15 * np.sin(wanted - heading[i])
    pitch = 0.05 * np.sin(phase * 2)
    names = insect_keypoints()
    body = np.zeros((n_frames, len(names), 3))
    body[:, names.index("Head")] = [0.9 * scale, 0, height + 0.1]
    body[:, names.index("Thorax")] = [0, 0, height]
    body[:, names.index("Abdomen")] = np.stack(
        [np.full(n_frames, -1.3 * scale), np.zeros(n_frames), height - 0.15 + pitch], -1
    )
    for leg in LEGS:
        side = 1.0 if leg[0] == "L" else -1.0
        offset = 0.0 if leg in _TRIPOD_A else np.pi
        leg_phase = np.mod(phase + offset, 2 * np.pi)
        stance = leg_phase < np.pi
        progress = np.where(stance, 1 - 2 * leg_phase / np.pi, -1 + 2 * (leg_phase - np.pi) / np.pi)
        lift = np.where(stance, 0.0, 0.35 * scale * np.sin(leg_phase - np.pi))
        coxa = np.array([_LEG_X[leg[1]] * scale, side * 0.22 * scale, height - 0.05])
        femur = coxa + np.array([0.0, side * 0.2 * scale, -0.05])
        foot = np.stack(
            [
                _FOOT_X[leg[1]] * scale + stride * progress,
                np.full(n_frames, side * 1.5 * scale),
                lift,
            ],
            -1,
        )
        tarsus = foot + np.array([0.0, -side * 0.05, 0.25 * scale])
        tibia = _knee(femur, tarsus, 0.95 * scale, 1.0 * scale)
        for seg, point in zip(SEGMENTS, (coxa, femur, tibia, tarsus, foot), strict=True):
            body[:, names.index(f"{leg}_{seg}")] = point
    world = body @ _rotation_z(heading).transpose(0, 2, 1) + position[:, None]
    return Poses(
        coords=world[:, None],
        keypoints=names,
        edges=insect_edges(),
        individuals=["insect"],
        fps=fps,
        units="mm",
        source_format="synthetic",
    )


def demo_camera(width: int = 640, height: int = 480) -> Camera:
    """The demo's pinhole camera: 12 mm from the arena centre, 40 degrees above it."""
    from napari_liftpose.lifting.cameras import camera_from_angles

    camera = camera_from_angles(
        azimuth=-60.0, elevation=40.0, distance=12.0, focal=700.0, name="demo"
    )
    camera.matrix[0, 2], camera.matrix[1, 2] = width / 2, height / 2
    camera.size = (width, height)
    return camera


def project_poses(poses: Poses, camera: Camera, noise_px: float = 0.0, seed: int = 0) -> Poses:
    """2D tracks of 3D ``poses`` seen by ``camera`` (pixels), with optional Gaussian noise."""
    coords = camera.project(poses.coords)
    if noise_px:
        coords = coords + np.random.default_rng(seed).normal(0, noise_px, coords.shape)
    return poses.copy(
        coords=coords, confidence=np.ones(coords.shape[:3]), units="px", source_format="synthetic"
    )


def render_video(tracks: Poses, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Draw 2D tracks as a grayscale video ``(frames, height, width)`` uint8: legs on a floor."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    floor = (60 + 40 * (yy / height) + 8 * ((xx // 40 + yy // 40) % 2)).astype(np.uint8)
    frames = np.repeat(floor[None], tracks.n_frames, axis=0)
    samples = np.linspace(0, 1, 24)
    body = {0, 1}  # head-thorax and thorax-abdomen are drawn thick
    for t in range(tracks.n_frames):
        pose = tracks.coords[t, 0]
        for e, (a, b) in enumerate(tracks.edges):
            if not (np.isfinite(pose[a]).all() and np.isfinite(pose[b]).all()):
                continue
            line = pose[a] + samples[:, None] * (pose[b] - pose[a])
            radius = 7 if e in body else 2
            for x, y in line:
                x0, y0 = int(round(x)), int(round(y))
                ys = slice(max(0, y0 - radius), min(height, y0 + radius + 1))
                xs = slice(max(0, x0 - radius), min(width, x0 + radius + 1))
                frames[t, ys, xs] = 230 if e in body else 200
    return frames
