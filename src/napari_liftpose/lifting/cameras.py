"""Cameras for making 2D training inputs from a 3D library.

Three ways to say what a "camera" is while training a lifter:

* :class:`KnownCamera` wraps one calibrated :class:`~napari_liftpose.io.calibration.Camera`
  (pinhole + OpenCV distortion, e.g. from an anipose ``calibration.toml``).
* :class:`RandomCameras` draws a new virtual camera for every training sample, orbiting the
  animal within azimuth / elevation / roll / distance ranges (LiftPose3D's "camera-agnostic"
  training), with pinhole or weak-perspective projection.
* no camera at all, when real 2D tracks are paired frame by frame with the 3D library
  (see :class:`napari_liftpose.lifting.data.PairedTracks`).

Camera frames follow OpenCV: ``x`` right, ``y`` down, ``z`` forward (along the optical axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from napari_liftpose.io.calibration import Camera

__all__ = [
    "KnownCamera",
    "RandomCameras",
    "look_at_rotation",
    "rotation_to_rodrigues",
    "camera_from_angles",
    "camera_to_dict",
    "camera_from_dict",
    "upright_rotation",
    "body_headings",
    "heading_spread",
    "turn_about_up",
]


def look_at_rotation(
    azimuth: np.ndarray | float,
    elevation: np.ndarray | float,
    roll: np.ndarray | float = 0.0,
    up: Sequence[float] = (0.0, 0.0, 1.0),
) -> np.ndarray:
    """World-to-camera rotations of cameras looking at the origin from given angles.

    Parameters
    ----------
    azimuth, elevation, roll : float or np.ndarray
        Angles in degrees, broadcast together to shape ``(n,)``. The camera sits in direction
        ``(cos el cos az, cos el sin az, sin el)`` (in a frame whose third axis is ``up``),
        looks at the origin, and is then rolled about its optical axis.
        ``|elevation|`` must stay below 90.
    up : sequence of 3 floats
        The library's "up" direction.

    Returns
    -------
    np.ndarray
        Rotation matrices ``(n, 3, 3)``; rows are the camera's right, down and forward axes.
    """
    az, el, ro = np.broadcast_arrays(
        *(
            np.radians(np.atleast_1d(np.asarray(v, dtype=np.float64)))
            for v in (azimuth, elevation, roll)
        )
    )
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    # an orthonormal frame (e1, e2, up) of the world
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = helper - up * (helper @ up)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    direction = (
        (np.cos(el) * np.cos(az))[:, None] * e1
        + (np.cos(el) * np.sin(az))[:, None] * e2
        + np.sin(el)[:, None] * up
    )
    forward = -direction
    right = np.cross(forward, up)
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward], axis=1)  # (n, 3, 3)
    c, s = np.cos(ro), np.sin(ro)
    zeros, ones = np.zeros_like(c), np.ones_like(c)
    roll_m = np.stack(
        [
            np.stack([c, -s, zeros], -1),
            np.stack([s, c, zeros], -1),
            np.stack([zeros, zeros, ones], -1),
        ],
        axis=1,
    )
    return roll_m @ rot


def upright_rotation(rotation: np.ndarray, up: Sequence[float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-"upright" rotations: the camera's heading, the world's up as z.

    The upright axes of a camera are ``x`` its horizontal right, ``y`` its horizontal viewing
    direction (away from the camera, along the ground) and ``z`` the world's ``up``: the
    camera's axes with its elevation and roll undone, so a lifter whose heading must stay the
    unknown filming camera's still returns 3D with "z up".

    Parameters
    ----------
    rotation : np.ndarray
        World-to-camera rotations ``(..., 3, 3)`` (rows: right, down, forward; OpenCV).
    up : sequence of 3 floats
        The world's up direction.

    Returns
    -------
    np.ndarray
        Rotations ``(..., 3, 3)`` with rows ``x, y, z`` as above (right-handed). A camera looking
        straight up or down has no heading: its ``up`` vector's horizontal part is used instead.
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    forward = rotation[..., 2, :]
    ahead = forward - (forward @ up)[..., None] * up
    length = np.linalg.norm(ahead, axis=-1, keepdims=True)
    # looking straight down (or up): the camera's "up" in the image (-down) gives the heading
    fallback = -rotation[..., 1, :] - (-rotation[..., 1, :] @ up)[..., None] * up
    ahead = np.where(length > 1e-9, ahead, fallback)
    ahead = ahead / np.linalg.norm(ahead, axis=-1, keepdims=True)
    right = np.cross(ahead, up)
    return np.stack([right, ahead, np.broadcast_to(up, ahead.shape)], axis=-2)


def rotation_to_rodrigues(rotation: np.ndarray) -> np.ndarray:
    """Rodrigues vector ``(3,)`` (axis * angle) of a rotation matrix ``(3, 3)``."""
    rot = np.asarray(rotation, dtype=np.float64)
    cos = np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)
    theta = np.arccos(cos)
    if theta < 1e-9:
        return np.zeros(3)
    if np.pi - theta < 1e-3:
        # near a half turn: (R + I) / 2 ~ k k^T; the sign comes from the antisymmetric part
        kk = (rot + np.eye(3)) / 2
        i = int(np.argmax(np.diag(kk)))
        axis = kk[:, i] / np.sqrt(kk[i, i])
        anti = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
        if anti @ axis < 0:
            axis = -axis
        return axis / np.linalg.norm(axis) * theta
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    return axis / (2 * np.sin(theta)) * theta


def _small_rotations(vectors: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(n, 3, 3)`` of Rodrigues vectors ``(n, 3)`` (radians)."""
    theta = np.linalg.norm(vectors, axis=-1)[:, None, None]
    k = np.zeros((len(vectors), 3, 3))
    x, y, z = vectors.T
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -z, y, -x
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = z, -y, x
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(theta > 1e-12, np.sin(theta) / theta, 1.0)
        b = np.where(theta > 1e-12, (1 - np.cos(theta)) / theta**2, 0.5)
    return np.eye(3) + a * k + b * (k @ k)


def camera_from_angles(
    azimuth: float,
    elevation: float,
    distance: float,
    roll: float = 0.0,
    target: Sequence[float] = (0.0, 0.0, 0.0),
    focal: float = 1000.0,
    up: Sequence[float] = (0.0, 0.0, 1.0),
    name: str = "virtual",
) -> Camera:
    """A pinhole :class:`Camera` at ``distance`` from ``target``, looking at it from given angles.

    Angles are in degrees (see :func:`look_at_rotation`); the principal point is the origin.
    """
    rot = look_at_rotation(azimuth, elevation, roll, up)[0]
    t = np.array([0.0, 0.0, distance]) - rot @ np.asarray(target, dtype=np.float64)
    matrix = np.array([[focal, 0.0, 0.0], [0.0, focal, 0.0], [0.0, 0.0, 1.0]])
    return Camera(name=name, matrix=matrix, rotation=rotation_to_rodrigues(rot), translation=t)


def camera_to_dict(camera: Camera) -> dict:
    """A JSON-able dict of a :class:`Camera` (for checkpoints)."""
    return {
        "name": camera.name,
        "matrix": camera.matrix.tolist(),
        "rotation": camera.rotation.tolist(),
        "translation": camera.translation.tolist(),
        "distortions": np.asarray(camera.distortions).tolist(),
        "size": list(camera.size) if camera.size is not None else None,
    }


def camera_from_dict(data: dict) -> Camera:
    """Inverse of :func:`camera_to_dict`."""
    size = data.get("size")
    return Camera(
        name=data["name"],
        matrix=data["matrix"],
        rotation=data["rotation"],
        translation=data["translation"],
        distortions=data.get("distortions"),
        size=tuple(size) if size else None,
    )


@dataclass
class KnownCamera:
    """Train for one calibrated camera: 2D = its projection, 3D targets in its frame."""

    camera: Camera

    def to_dict(self) -> dict:
        """JSON-able description, stored in checkpoints."""
        return {"kind": "known", "camera": camera_to_dict(self.camera)}

    def project(
        self,
        points: np.ndarray,
        rng: np.random.Generator | None = None,
        jitter_deg: float = 0.0,
        jitter_distance: float = 0.0,
        centers: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(n, frames, keypoints, 3)`` -> (2D pixels, camera-frame 3D).

        Parameters
        ----------
        points : np.ndarray
            ``(n, frames, keypoints, 3)`` world coordinates.
        rng : np.random.Generator, optional
            Randomness for the jitter (needed when a jitter is set).
        jitter_deg : float
            Standard deviation (degrees, about each camera axis) of a random rotation of the
            camera about ``centers``, one per window: a slightly-off calibration.
        jitter_distance : float
            Standard deviation of a random shift of the camera (each axis), as a fraction of its
            distance from ``centers``, one per window.
        centers : np.ndarray, optional
            ``(n, 3)`` world point each window's jitter turns about (default: the window's mean).

        Returns
        -------
        tuple of np.ndarray
            ``(n, frames, keypoints, 2)`` pixel coordinates and ``(n, frames, keypoints, 3)``
            coordinates in the (jittered) camera's frame.
        """
        if not (jitter_deg > 0 or jitter_distance > 0):
            return self.camera.project(points), self.camera.to_camera_frame(points)
        if rng is None:
            raise ValueError("rng: expected a random generator for the camera jitter")
        points = np.asarray(points, dtype=np.float64)
        if centers is None:
            centers = np.nanmean(points.reshape(len(points), -1, 3), axis=1)
        cam = self.camera.to_camera_frame(points)
        pivot = self.camera.to_camera_frame(np.asarray(centers, dtype=np.float64))  # (n, 3)
        n = len(points)
        turn = _small_rotations(np.radians(jitter_deg) * rng.standard_normal((n, 3)))
        dist = np.linalg.norm(pivot, axis=-1, keepdims=True)
        shift = jitter_distance * dist * rng.standard_normal((n, 3))
        rel = cam - pivot[:, None, None, :]
        cam = np.einsum("nij,nfkj->nfki", turn, rel) + (pivot + shift)[:, None, None, :]
        at_origin = replace(self.camera, rotation=np.zeros(3), translation=np.zeros(3))
        return at_origin.project(cam), cam

    def check_sees(self, points: np.ndarray, where: str = "the library") -> None:
        """Refuse a camera that does not see the 3D ``points`` (world coordinates, ``(..., 3)``).

        Most finite points must be in front of the camera (``z > 0`` in its coordinates) and
        project to finite pixels; a calibration whose rotation or translation puts the animal
        behind the camera would otherwise train on nothing but missing inputs.

        Raises
        ------
        ValueError
            Naming the camera, the fraction of points behind it, and ``where``.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        points = points[np.isfinite(points).all(axis=1)]
        if len(points) == 0:
            return
        z = self.camera.to_camera_frame(points)[:, 2]
        behind = float(np.mean(~(z > 0)))
        if behind > 0.5:
            raise ValueError(
                f"camera {self.camera.name!r}: {behind:.0%} of the points of {where} are behind "
                "it (z <= 0 in camera coordinates); check the calibration's rotation and "
                "translation (anipose convention: camera point = R @ world point + t)"
            )
        with np.errstate(all="ignore"):
            uv = self.camera.project(points[z > 0])
        bad = float(np.mean(~np.isfinite(uv).all(axis=1)))
        if bad > 0.5:
            raise ValueError(
                f"camera {self.camera.name!r}: {bad:.0%} of the points of {where} in front of "
                "it project to non-finite pixels; check the calibration's matrix and distortions"
            )


@dataclass
class RandomCameras:
    """Random virtual cameras orbiting the animal (camera-agnostic training).

    Parameters
    ----------
    azimuth, elevation, roll : (float, float)
        Ranges in degrees, sampled uniformly (see :func:`look_at_rotation`).
    distance : (float, float), optional
        Range of the camera's distance from the animal, in library units. Default (None): 5 to
        10 times the animal's size (:func:`~napari_liftpose.lifting.camera_defaults.default_distance`),
        filled in from the library by ``train``, as the CLI and the widget do.
    projection : {"pinhole", "weak"}
        Pinhole (perspective) or weak-perspective (scaled orthographic) projection.
    focal : float
        Focal length in pixels (only sets the scale of the 2D; inputs are scale-normalised).
    up : (float, float, float)
        The library's "up" direction.
    azimuth_exclude : (float, float), optional
        A band of azimuths never used (to test generalisation to an unseen viewpoint).
    """

    azimuth: tuple[float, float] = (-180.0, 180.0)
    elevation: tuple[float, float] = (-30.0, 30.0)
    roll: tuple[float, float] = (0.0, 0.0)
    distance: tuple[float, float] | None = None
    projection: str = "pinhole"
    focal: float = 1000.0
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    azimuth_exclude: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.projection not in ("pinhole", "weak"):
            raise ValueError(f"projection: expected 'pinhole' or 'weak', got {self.projection!r}")
        for name in ("azimuth", "elevation", "roll", "distance"):
            if getattr(self, name) is None and name == "distance":
                continue  # resolved from the library (default_distance)
            lo, hi = (float(v) for v in getattr(self, name))
            if not lo <= hi:
                raise ValueError(f"{name}: expected MIN <= MAX, got {lo} {hi}")
            setattr(self, name, (lo, hi))
        if max(abs(v) for v in self.elevation) >= 90:
            raise ValueError(
                f"elevation: expected values strictly between -90 and 90, got {self.elevation}"
            )
        if self.distance is not None and self.distance[0] <= 0:
            raise ValueError(f"distance: expected positive values, got {self.distance}")
        self.up = tuple(float(v) for v in self.up)
        if self.azimuth_exclude is not None:
            lo, hi = (float(v) for v in self.azimuth_exclude)
            if not self.azimuth[0] <= lo <= hi <= self.azimuth[1] or hi - lo >= np.ptp(
                self.azimuth
            ):
                raise ValueError(
                    f"azimuth_exclude: expected a band inside {self.azimuth}, got {lo} {hi}"
                )
            self.azimuth_exclude = (lo, hi)

    def to_dict(self) -> dict:
        """JSON-able description, stored in checkpoints."""
        return {"kind": "random", **asdict(self)}

    def sample_rotations(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` cameras: rotations ``(n, 3, 3)`` and distances ``(n,)``."""
        if self.azimuth_exclude is None:
            az = rng.uniform(*self.azimuth, size=n)
        else:
            lo, hi = self.azimuth_exclude
            az = rng.uniform(self.azimuth[0], self.azimuth[1] - (hi - lo), size=n)
            az = np.where(az >= lo, az + (hi - lo), az)
        el = rng.uniform(*self.elevation, size=n)
        ro = rng.uniform(*self.roll, size=n)
        if self.distance is None:
            raise ValueError("distance: not set; train() fills it in from the library")
        dist = rng.uniform(*self.distance, size=n)
        return look_at_rotation(az, el, ro, self.up), dist

    def project(
        self,
        points: np.ndarray,
        centers: np.ndarray,
        rng: np.random.Generator,
        frame: str = "camera",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Project windows of world points through one random camera per window.

        Parameters
        ----------
        points : np.ndarray
            ``(n, frames, keypoints, 3)`` world coordinates.
        centers : np.ndarray
            ``(n, 3)`` point each window's camera looks at.
        rng : np.random.Generator
            Source of randomness.
        frame : {"camera", "upright"}
            Axes of the returned 3D: each camera's, or its upright axes
            (:func:`upright_rotation`: its heading, the library's up as z; relative to
            ``centers``).

        Returns
        -------
        tuple of np.ndarray
            2D ``(n, frames, keypoints, 2)`` and 3D ``(n, frames, keypoints, 3)`` in ``frame``.
        """
        rot, dist = self.sample_rotations(rng, points.shape[0])
        rel = points - centers[:, None, None, :]
        cam = np.einsum("nij,nfkj->nfki", rot, rel)
        cam[..., 2] += dist[:, None, None]
        if self.projection == "pinhole":
            with np.errstate(invalid="ignore", divide="ignore"):
                uv = self.focal * cam[..., :2] / cam[..., 2:3]
            uv[~(cam[..., 2] > 0)] = np.nan
        else:
            uv = self.focal * cam[..., :2] / dist[:, None, None, None]
        if frame == "upright":
            return uv, np.einsum("nij,nfkj->nfki", upright_rotation(rot, self.up), rel)
        return uv, cam


def body_headings(
    points: np.ndarray, root: int, up: Sequence[float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """The body heading of every pose about the ``up`` axis, in radians.

    Each pose's root-relative keypoints, projected onto the plane normal to ``up``, are turned
    about ``up`` onto a reference pose (least squares; the reference is the mean of the poses
    so turned, refined three times): the heading is minus that turn, relative to the
    reference. It needs no body axes or left/right names.

    Parameters
    ----------
    points : np.ndarray
        ``(frames, keypoints, 3)`` 3D poses; NaN where missing.
    root : int
        Root keypoint index.
    up : sequence of 3 floats
        The library's up direction.

    Returns
    -------
    np.ndarray
        ``(frames,)`` headings in (-pi, pi]; NaN for poses with no finite non-root keypoint.
    """
    points = np.asarray(points, dtype=np.float64)
    up_v = np.asarray(up, dtype=np.float64)
    up_v = up_v / np.linalg.norm(up_v)
    helper = np.eye(3)[int(np.argmin(np.abs(up_v)))]
    e1 = np.cross(up_v, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up_v, e1)
    rel = points - points[:, root : root + 1]
    flat = np.stack([rel @ e1, rel @ e2], axis=-1)  # (frames, keypoints, 2)
    ok = np.isfinite(flat).all(-1)
    flat = np.where(ok[..., None], flat, 0.0)
    with np.errstate(invalid="ignore"):
        ref = np.nanmedian(np.where(ok[..., None], flat, np.nan), axis=0)
    ref = np.nan_to_num(ref)
    turn = np.zeros(len(points))
    for _ in range(3):
        s = np.sum(flat[..., 0] * ref[:, 1] - flat[..., 1] * ref[:, 0], axis=-1)
        c = np.sum(flat[..., 0] * ref[:, 0] + flat[..., 1] * ref[:, 1], axis=-1)
        turn = np.arctan2(s, c)
        cos, sin = np.cos(turn), np.sin(turn)
        aligned = np.stack(
            [cos[:, None] * flat[..., 0] - sin[:, None] * flat[..., 1],
             sin[:, None] * flat[..., 0] + cos[:, None] * flat[..., 1]],
            axis=-1,
        )  # fmt: skip
        with np.errstate(invalid="ignore"):
            ref = np.nan_to_num(np.nanmean(np.where(ok[..., None], aligned, np.nan), axis=0))
    heading = -turn
    heading[~ok.any(-1)] = np.nan
    return heading


def heading_spread(
    points: np.ndarray, root: int, up: Sequence[float] = (0.0, 0.0, 1.0)
) -> float:
    """Circular standard deviation (degrees) of the library's body headings about ``up``.

    A tethered animal's heading hardly changes (the shared fly: about 2 degrees); a free-moving
    one turns (the synthetic insect: over 100). NaN when no pose has a heading.
    """
    heading = body_headings(points, root, up)
    heading = heading[np.isfinite(heading)]
    if len(heading) == 0:
        return float("nan")
    r = float(np.abs(np.mean(np.exp(1j * heading))))
    return float(np.degrees(np.sqrt(-2.0 * np.log(max(r, 1e-12)))))


def turn_about_up(
    points: np.ndarray,
    centers: np.ndarray,
    angles_deg: np.ndarray,
    up: Sequence[float] = (0.0, 0.0, 1.0),
) -> np.ndarray:
    """Turn windows of world points about the vertical line through each window's centre.

    Parameters
    ----------
    points : np.ndarray
        ``(n, frames, keypoints, 3)`` world coordinates.
    centers : np.ndarray
        ``(n, 3)`` a point on each window's axis of turn.
    angles_deg : np.ndarray
        ``(n,)`` turn of each window, degrees (right-handed about ``up``).
    up : sequence of 3 floats
        The axis direction.

    Returns
    -------
    np.ndarray
        The turned points, same shape.
    """
    k = np.asarray(up, dtype=np.float64)
    k = k / np.linalg.norm(k)
    theta = np.radians(np.asarray(angles_deg, dtype=np.float64))
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    rot = (
        np.eye(3)
        + np.sin(theta)[:, None, None] * cross
        + (1 - np.cos(theta))[:, None, None] * (cross @ cross)
    )
    rel = points - centers[:, None, None, :]
    return np.einsum("nij,nfkj->nfki", rot, rel) + centers[:, None, None, :]
