"""npe2 reader contribution: pose files -> points + bones (+ the video) layers."""

from __future__ import annotations

import logging
from pathlib import Path

from napari_liftpose.io import read_poses
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.napari.layers import pose_layer_tuples

__all__ = ["get_reader", "read_pose_layers"]

log = logging.getLogger(__name__)
SUFFIXES = (".slp", ".h5", ".hdf5", ".csv", ".npz", ".npy", ".nc", ".nwb")


def get_reader(path):
    """Return :func:`read_pose_layers` for pose-file suffixes, else None (napari tries others)."""
    if isinstance(path, list):
        if not all(str(p).lower().endswith(SUFFIXES) for p in path):
            return None
        return read_pose_layers
    return read_pose_layers if str(path).lower().endswith(SUFFIXES) else None


def read_pose_layers(path) -> list[tuple]:
    """Read one or more pose files into layer tuples.

    A file that cannot be read gives a napari error notification naming the file and the
    problem (no traceback dump); the other files still open. Once labels are open, the viewer's
    File > Save warns if it writes them in a foreign format (:func:`.save_labels.guard_saves`),
    and napari is offered, once, to remember this plugin as the reader for ``.slp/.h5/.csv``.
    """
    from napari import current_viewer
    from napari.utils.notifications import show_error, show_warning

    from napari_liftpose.napari.save_labels import SOURCE_FORMATS, guard_saves, offer_reader
    from napari_liftpose.napari.skeleton import follow_skeletons

    paths = path if isinstance(path, list) else [path]
    layers: list[tuple] = []
    labels_read = False
    for one in paths:
        try:
            poses = read_poses(one)
        except PoseFileError as err:
            show_error(str(err))
            continue
        labels_read = labels_read or poses.source_format in SOURCE_FORMATS
        video = None
        if poses.video:
            try:
                from napari_liftpose.napari.video import open_video

                video = open_video(poses.video)
            except OSError as err:
                show_warning(f"{Path(one)}: video not opened: {err}")
        layers.extend(pose_layer_tuples(poses, video))
    viewer = current_viewer()
    follow_skeletons(viewer)  # bones appear when the points layer is added
    if labels_read:
        if viewer is not None:
            guard_saves(viewer)
        offer_reader()
    return layers or [(None,)]
