"""Open the demo's files in napari: video, 2D tracks, the trained lifter and the synced 3D view."""

from __future__ import annotations

from napari_liftpose.demo import DemoFiles
from napari_liftpose.napari.widgets import LiftPoseWidget

__all__ = ["show_demo"]


def show_demo(files: DemoFiles, viewer=None):
    """Show a built demo in ``viewer`` (a new one if None); returns ``(viewer, widget)``."""
    import napari

    viewer = viewer or napari.Viewer(title="napari-liftpose demo")
    viewer.open(files.tracks, plugin="napari-liftpose")
    widget = LiftPoseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="LiftPose", area="right")
    widget.load_model(files.model)
    widget.lift_layer.value = files.tracks.name
    widget.truth_file.value = files.truth
    widget.lift_selected(then=lambda layer3d: widget.evaluate_against(files.truth))
    return viewer, widget
