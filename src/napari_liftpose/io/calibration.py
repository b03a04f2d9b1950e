"""Cameras: anipose ``calibration.toml`` files and pinhole projection with distortion."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_liftpose.io.errors import PoseFileError, not_a_file_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Camera", "read_calibration", "write_calibration", "rodrigues"]


def _floats(what: str, value, shape: tuple | None, kind: str = "") -> np.ndarray:
    """``value`` as a float array of ``shape``, all finite, or a ValueError saying what is wrong."""
    expected = kind or (f"shape {shape}" if shape else "numbers")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected {expected} of numbers, got {value!r:.80}") from None
    if shape is not None and array.shape != shape:
        raise ValueError(f"{what}: expected {expected} {shape}, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: expected finite numbers, got {array.tolist()}")
    return array


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
        self.matrix = _floats("matrix", self.matrix, (3, 3))
        self.rotation = _floats("rotation", self.rotation, (3,), "a Rodrigues vector")
        self.translation = _floats("translation", self.translation, (3,))
        dist = np.zeros(5) if self.distortions is None else self.distortions
        dist = _floats("distortions", dist, None).ravel()
        if dist.size > 5:
            raise ValueError(f"distortions: expected up to 5 numbers, got {dist.size}")
        self.distortions = np.pad(dist, (0, 5 - dist.size))
        fx, fy = self.matrix[0, 0], self.matrix[1, 1]
        if not (fx > 0 and fy > 0):
            raise ValueError(
                f"matrix: expected positive focal lengths fx, fy (matrix[0][0], matrix[1][1]), "
                f"got {fx:g}, {fy:g}"
            )
        if self.size is not None:
            size = tuple(self.size) if isinstance(self.size, list | tuple) else (self.size,)
            if len(size) != 2 or not all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in size
            ):
                raise ValueError(f"size: expected [width, height] in pixels, got {self.size!r}")
            self.size = (int(size[0]), int(size[1]))

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


def read_calibration(path: str | Path) -> dict[str, Camera]:
    """Read an anipose ``calibration.toml`` into ``{camera name: Camera}``.

    Raises
    ------
    PoseFileError
        If the file is missing or unreadable, is not TOML, a camera table lacks a field or holds
        a malformed one (non-finite numbers, non-positive focal lengths, wrong shapes), or two
        cameras share a name.
    """
    path = Path(path)
    if path.is_dir():
        raise PoseFileError(path, "is a folder; expected an anipose calibration.toml file")
    if not path.is_file():  # missing, or a FIFO/device that would block or never end
        raise not_a_file_error(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PoseFileError(path, f"cannot read: {err.strerror or err}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise PoseFileError(path, f"not a TOML calibration file ({err})") from None
    cameras: dict[str, Camera] = {}
    sections: dict[str, str] = {}
    for key, cam in table.items():
        if not key.startswith("cam_"):
            continue
        camera = _camera(path, key, cam)
        if camera.name in cameras:
            raise PoseFileError(
                path,
                f"cameras [{sections[camera.name]}] and [{key}] are both named {camera.name!r}; "
                "expected unique camera names",
            )
        cameras[camera.name] = camera
        sections[camera.name] = key
    if not cameras:
        raise PoseFileError(path, "no [cam_*] tables: not an anipose calibration file")
    return cameras


def _camera(path: Path, key: str, cam: object) -> Camera:
    """One ``[cam_*]`` table -> Camera; every problem names the file and the table."""
    if not isinstance(cam, dict):
        raise PoseFileError(
            path,
            f"[{key}]: expected a table of camera fields, got {type(cam).__name__} {cam!r:.80}",
        )
    missing = [f for f in ("matrix", "rotation", "translation") if f not in cam]
    if missing:
        raise PoseFileError(path, f"camera table [{key}] is incomplete: missing {missing}")
    name = cam.get("name", key)
    if not isinstance(name, str) or not name:
        raise PoseFileError(path, f"[{key}] name: expected a non-empty string, got {name!r:.80}")
    try:
        return Camera(
            name=name,
            matrix=cam["matrix"],
            rotation=cam["rotation"],
            translation=cam["translation"],
            distortions=cam.get("distortions"),
            size=cam.get("size"),
        )
    except ValueError as err:
        raise PoseFileError(path, f"camera [{key}] ({name!r}): {err}") from None


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
