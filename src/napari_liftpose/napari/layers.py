"""Poses -> napari layer-data tuples (points + bones [+ video]); no Qt needed."""

from __future__ import annotations

import numpy as np

from napari_liftpose.napari.convert import POSES_KEY, point_colors, points_layer_data
from napari_liftpose.poses import Poses

__all__ = ["pose_layer_tuples", "points_tuple", "pose_points_kwargs", "point_size"]


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
