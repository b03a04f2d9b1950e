"""Cameras: anipose ``calibration.toml`` files and pinhole projection with distortion."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_liftpose.io.errors import PoseFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Camera", "read_calibration", "write_calibration", "rodrigues", "is_calibration_file"]


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` of a Rodrigues (axis * angle) vector, as OpenCV's ``Rodrigues``."""
    rvec = np.asarray(rvec, dtype=np.float64).reshape(3)
    theta = np.linalg.norm(rvec)
    if theta < 1e-12:
        return np.eye(3)
    k = rvec / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


@dataclass
class Camera:
    """A pinhole camera with OpenCV distortion ``(k1, k2, p1, p2, k3)``.

    ``rotation`` is a Rodrigues vector and ``translation`` a vector such that a world point
    ``X`` is at ``R @ X + t`` in camera coordinates (anipose / OpenCV convention).
    """

    name: str
    matrix: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    distortions: np.ndarray | None = None
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        dist = np.zeros(5) if self.distortions is None else np.asarray(self.distortions, float)
        self.distortions = np.pad(dist.ravel(), (0, max(0, 5 - dist.size)))[:5]

    @property
    def rotation_matrix(self) -> np.ndarray:
        """Rotation matrix ``(3, 3)``."""
        return rodrigues(self.rotation)

    def to_camera_frame(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> camera coordinates ``(..., 3)``."""
        return np.asarray(points, float) @ self.rotation_matrix.T + self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project world points ``(..., 3)`` to pixel coordinates ``(..., 2)`` (``x, y``).

        NaN points stay NaN; points behind the camera come back NaN.
        """
        cam = self.to_camera_frame(points)
        z = cam[..., 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            x = cam[..., 0] / z
            y = cam[..., 1] / z
        k1, k2, p1, p2, k3 = self.distortions
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        fx, fy = self.matrix[0, 0], self.matrix[1, 1]
        cx, cy, skew = self.matrix[0, 2], self.matrix[1, 2], self.matrix[0, 1]
        out = np.stack([fx * xd + skew * yd + cx, fy * yd + cy], axis=-1)
        out[~(z > 0)] = np.nan
        return out


def is_calibration_file(path: str | Path) -> bool:
    """True if ``path`` looks like an anipose calibration (a ``.toml`` with ``[cam_*]`` tables)."""
    path = Path(path)
    if path.suffix.lower() != ".toml" or not path.is_file():
        return False
    try:
        return any(k.startswith("cam_") for k in tomllib.loads(path.read_text()).keys())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def read_calibration(path: str | Path) -> dict[str, Camera]:
    """Read an anipose ``calibration.toml`` into ``{camera name: Camera}``.

    Raises
    ------
    PoseFileError
        If the file is missing, is not TOML, or a camera table lacks a field.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseFileError(path, "file not found")
    try:
        table = tomllib.loads(path.read_text())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise PoseFileError(path, f"not a TOML calibration file ({err})") from None
    cameras: dict[str, Camera] = {}
    for key, cam in table.items():
        if not key.startswith("cam_"):
            continue
        try:
            camera = Camera(
                name=str(cam.get("name", key)),
                matrix=cam["matrix"],
                rotation=cam["rotation"],
                translation=cam["translation"],
                distortions=cam.get("distortions"),
                size=tuple(cam["size"]) if "size" in cam else None,
            )
        except (KeyError, ValueError) as err:
            raise PoseFileError(path, f"camera table [{key}] is incomplete: {err}") from None
        cameras[camera.name] = camera
    if not cameras:
        raise PoseFileError(path, "no [cam_*] tables: not an anipose calibration file")
    return cameras


def write_calibration(cameras: dict[str, Camera] | list[Camera], path: str | Path) -> Path:
    """Write cameras as an anipose ``calibration.toml``; returns the path written."""
    from napari_liftpose.io.atomic import atomic_write_text

    cams = list(cameras.values()) if isinstance(cameras, dict) else list(cameras)
    lines: list[str] = []
    for i, cam in enumerate(cams):
        lines.append(f"[cam_{i}]")
        lines.append(f'name = "{cam.name}"')
        if cam.size is not None:
            lines.append(f"size = [{int(cam.size[0])}, {int(cam.size[1])}]")
        rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in cam.matrix)
        lines.append(f"matrix = [{rows}]")
        for key in ("distortions", "rotation", "translation"):
            values = ", ".join(repr(float(v)) for v in getattr(cam, key))
            lines.append(f"{key} = [{values}]")
        lines.append("")
    return atomic_write_text(path, "\n".join(lines))
