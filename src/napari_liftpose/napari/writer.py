"""npe2 writer contribution: save (refined) 2D tracks to SLEAP, DeepLabCut, movement or NWB.

The source file is never overwritten: saving onto it writes ``<name>.refined<suffix>`` beside it
and says so. Writes are atomic (a failed write leaves no partial file).
"""

from __future__ import annotations

from pathlib import Path

from napari_liftpose.io import write_poses
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.io.paths import refined_path, same_file
from napari_liftpose.napari.convert import POSES_KEY, poses_from_layer_data
from napari_liftpose.poses import Poses

__all__ = ["write_tracks", "refined_path"]


def write_tracks(path: str, data, attributes: dict) -> list[str]:
    """Write one pose Points layer to ``path`` (``.slp``, ``.h5``, ``.csv``, ``.nc`` or ``.nwb``).

    ``.nc`` is movement's poses dataset (netCDF), ``.nwb`` NWB with ndx-pose; the others keep
    the format the tracks came from where they can (see :func:`~napari_liftpose.io.write_poses`).

    Returns the list of paths written (empty, with an error notification, if it failed).
    """
    from napari.utils.notifications import show_error, show_info

    target = Path(path)
    template = attributes.get("metadata", {}).get(POSES_KEY)
    if not isinstance(template, Poses):
        show_error(f"{target}: this layer was not opened by napari-liftpose; nothing written")
        return []
    try:
        poses = poses_from_layer_data(data, attributes["features"], attributes["metadata"])
    except ValueError as err:  # e.g. a keypoint placed twice in one frame
        show_error(f"{target}: nothing written: {err}")
        return []
    if template.source and same_file(target, template.source):
        target = refined_path(target)
        show_info(f"{template.source} is kept as it is; the refined tracks go to {target}")
    try:
        written = write_poses(poses, target)
    except (PoseFileError, OSError) as err:
        show_error(str(err))
        return []
    return [str(written)]
