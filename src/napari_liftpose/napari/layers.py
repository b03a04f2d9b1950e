"""Poses -> napari layer-data tuples (points + bones [+ video]); no Qt needed."""

from __future__ import annotations

import numpy as np

from napari_liftpose.napari.convert import POSES_KEY, point_colors, points_layer_data
from napari_liftpose.poses import Poses

__all__ = [
    "pose_layer_tuples",
    "points_tuple",
    "pose_points_kwargs",
    "point_size",
    "axis_labels",
    "oblique_view",
    "fit_camera",
    "uncertainty_sizes",
    "TRUTH_COLOR",
]

#: RGBA of ground-truth points and bones in the 3D view: a muted grey under the lifted colours.
TRUTH_COLOR = (0.6, 0.6, 0.6, 0.55)
#: Uncertainty point sizes are kept within these multiples of the plain point size.
UNCERTAINTY_SIZE_RANGE = (0.5, 4.0)


def point_size(poses: Poses) -> float:
    """A point size that reads well at the data's scale: 1/60 of the pose extent.

    Tracks in pixels get a few pixels; a 3 mm insect in millimetres gets 0.05 mm.
    """
    sample = poses.coords[:: max(1, poses.n_frames // 1000)].reshape(-1, poses.n_space)
    if not np.isfinite(sample).any():
        return 5.0
    extent = float(np.max(np.nanmax(sample, axis=0) - np.nanmin(sample, axis=0)))
    return extent / 60 if extent > 0 else 5.0


def pose_points_kwargs(poses: Poses, features, name: str | None = None) -> dict:
    """Points layer keyword arguments for rows with ``features``: name, colors, size, metadata."""
    return {
        "name": name or poses.name,
        "features": features,
        "face_color": point_colors(poses, features),
        "border_width": 0,
        "size": point_size(poses),
        "metadata": {POSES_KEY: poses},
    }


def points_tuple(poses: Poses, name: str | None = None, **kwargs) -> tuple:
    """The Points layer-data tuple of ``poses`` (conventions in :mod:`.convert`)."""
    data, features = points_layer_data(poses)
    layer_kwargs = pose_points_kwargs(poses, features, name)
    layer_kwargs.update(kwargs)
    return data, layer_kwargs, "points"


def pose_layer_tuples(poses: Poses, video=None) -> list[tuple]:
    """Layer tuples for a pose file: [video image,] points.

    The skeleton is not a layer tuple: :func:`~napari_liftpose.napari.skeleton.follow_skeletons`
    adds a bones layer that follows the time slider once the points are in a viewer.
    """
    layers = []
    if video is not None:
        layers.append(
            (
                video,
                {
                    "name": f"{poses.name} video",
                    "rgb": getattr(video, "rgb", False),
                    "contrast_limits": (0, 255),
                },
                "image",
            )
        )
    layers.append(points_tuple(poses))
    return layers


def axis_labels(units: str | None, n_space: int) -> tuple[str, ...]:
    """Slider and axis labels of a pose layer ``(t, [z,] y, x)``: ``("frame", "z (mm)", ...)``."""
    unit = f" ({units})" if units else ""
    return ("frame", *(f"{axis}{unit}" for axis in "zyx"[3 - n_space :]))


def oblique_view(frame: str | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A starting view direction and up direction (napari scene order ``z, y, x``) for 3D poses.

    Poses in a camera's axes (``frame="camera"``: x right, y down, z forward) are seen from 35
    degrees right of and 25 degrees above that camera, with -y up; poses with z up (``"world"``,
    ``"upright"`` or unknown) from the front-left, 30 degrees above the horizon, with z up. Neither
    looks along an axis, so depth shows from the start.
    """
    if frame == "camera":
        yaw, pitch = np.radians(35.0), np.radians(25.0)
        # pose order x, y, z: forward (z) turned right (x) and tilted down (+y)
        view = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        up = np.array([0.0, -1.0, 0.0])
    else:
        azimuth, elevation = np.radians(-60.0), np.radians(30.0)
        # looking down at the animal: horizontal part from the azimuth, z component negative
        view = np.array(
            [
                np.cos(elevation) * np.cos(azimuth),
                np.cos(elevation) * np.sin(azimuth),
                -np.sin(elevation),
            ]
        )
        up = np.array([0.0, 0.0, 1.0])
    return tuple(view[::-1].tolist()), tuple(up[::-1].tolist())


def fit_camera(
    low: np.ndarray,
    high: np.ndarray,
    view_direction,
    up_direction,
    canvas_size: tuple[int, int],
    fill: float = 0.8,
) -> tuple[tuple[float, ...], float]:
    """Centre and zoom that show the box ``low``..``high`` whole, seen along ``view_direction``.

    Parameters
    ----------
    low, high : np.ndarray
        Opposite corners of the box, napari scene order ``(z, y, x)``.
    view_direction, up_direction : sequence of float
        The camera's directions (scene order); ``up_direction`` need not be orthogonal.
    canvas_size : tuple of int
        ``(height, width)`` of the canvas in pixels.
    fill : float
        Fraction of the canvas the box's projection may take along its tighter side.

    Returns
    -------
    center : tuple of float
        The box centre (scene order).
    zoom : float
        Canvas pixels per data unit (napari's 3D ``camera.zoom``, orthographic view).
    """
    low, high = np.asarray(low, float), np.asarray(high, float)
    view = np.asarray(view_direction, float)
    view /= np.linalg.norm(view)
    up = np.asarray(up_direction, float)
    up = up - view * (up @ view)
    up /= np.linalg.norm(up)
    right = np.cross(view, up)
    corners = np.array(np.meshgrid(*zip(low, high, strict=True), indexing="ij")).reshape(3, -1).T
    width = np.ptp(corners @ right)
    height = np.ptp(corners @ up)
    canvas_h, canvas_w = (max(int(v), 1) for v in canvas_size)
    span = max(width / canvas_w, height / canvas_h)
    zoom = fill / span if span > 0 else 1.0
    return tuple(((low + high) / 2).tolist()), float(zoom)


def uncertainty_sizes(poses: Poses, frame: int, base: float) -> np.ndarray | None:
    """Point sizes ``(individuals * keypoints,)`` of one frame that show each joint's uncertainty.

    A point's size is the diameter of its uncertainty sphere (twice the radius that holds the
    true point 80% of the time), kept within :data:`UNCERTAINTY_SIZE_RANGE` times ``base`` so
    that a sure point stays visible and an unsure one does not hide the pose; ``base`` where the
    radius is unknown. None when the poses carry no uncertainty.
    """
    if poses.uncertainty is None:
        return None
    n_rows = poses.n_individuals * poses.n_keypoints
    if not 0 <= frame < poses.n_frames:
        return np.full(n_rows, float(base))
    radius = poses.uncertainty[frame].reshape(-1)
    lo, hi = (f * base for f in UNCERTAINTY_SIZE_RANGE)
    return np.where(np.isfinite(radius), np.clip(2 * radius, lo, hi), base)
