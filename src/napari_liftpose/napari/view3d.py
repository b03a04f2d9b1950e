"""The synchronized 3D view, docked beside the main viewer.

A second viewer (``ViewerModel(ndisplay=3)`` + ``QtViewer``) whose time axis follows the main
viewer's slider both ways.

The main viewer keeps the video ``(t, y, x[, c])`` and the 2D tracks; 3D poses ``(t, z, y, x)``
live only here, so the two kinds of axes never mix in one viewer. Each 3D pose layer holds the
current frame only and is rewritten as the slider moves (see :mod:`.frame_points`).
"""

from __future__ import annotations

import weakref

from napari_liftpose.napari.convert import ONE_FRAME_KEY, time_point
from napari_liftpose.napari.frame_points import keep_edits, one_frame_points_tuple, show_frame
from napari_liftpose.napari.skeleton import follow_skeletons
from napari_liftpose.poses import Poses

__all__ = ["PoseView3D", "get_view3d"]

_VIEWS: dict[int, PoseView3D] = {}  # id(main viewer) -> its 3D view


class PoseView3D:
    """A docked 3D viewer whose time slider is tied to the main viewer's (axis 0 of each)."""

    def __init__(self, viewer, area: str = "right"):
        from napari.components import ViewerModel
        from napari.qt import QtViewer

        self._main = weakref.ref(viewer)
        self.model = ViewerModel(title="3D poses", ndisplay=3)
        self.qt_viewer = QtViewer(self.model)
        self.dock = viewer.window.add_dock_widget(
            self.qt_viewer, name="3D poses", area=area, tabify=False
        )
        _give_room(viewer.window._qt_window, self.dock)
        follow_skeletons(self.model, canvas=self.qt_viewer.canvas)
        self._syncing = False
        self.dock.destroyed.connect(self._dock_gone)
        viewer.dims.events.current_step.connect(self._main_moved)
        self.model.dims.events.current_step.connect(self._view_moved)
        self.model.dims.events.current_step.connect(self._show_current_frame)
        self._closer = _CloseWith(self)
        viewer.window._qt_window.installEventFilter(self._closer)

    @property
    def main(self):
        """The main viewer (None once it is closed)."""
        return self._main()

    def _main_moved(self, event=None) -> None:
        main = self.main
        if main is None or self._syncing:
            return
        self._syncing = True  # the 3D view may clamp the step (fewer frames): do not echo it back
        try:
            self._set_time(self.model, time_point(main.dims))
        finally:
            self._syncing = False

    def _view_moved(self, event=None) -> None:
        main = self.main
        if main is None or self._syncing:
            return
        self._syncing = True
        try:
            self._set_time(main, time_point(self.model.dims))
        finally:
            self._syncing = False

    def _show_current_frame(self, event=None) -> None:
        frame = time_point(self.model.dims)
        for layer in self.model.layers:
            if layer.metadata.get(ONE_FRAME_KEY):
                show_frame(layer, frame)

    @property
    def is_open(self) -> bool:
        """False once the 3D dock was closed (by its close button or with the main window)."""
        return self.qt_viewer is not None and self.qt_viewer.parent() is not None

    @staticmethod
    def _set_time(viewer, frame: int) -> None:
        if viewer.dims.ndim and time_point(viewer.dims) != frame:
            viewer.dims.set_point(0, frame)  # clamped to the viewer's range

    def add_poses(self, poses: Poses, name: str):
        """Add 3D ``poses`` as a Points layer ``(t, z, y, x)`` (bones follow automatically).

        The layer shows the current frame (:mod:`.frame_points`); ``metadata["poses"]`` holds all.
        """
        if poses.n_space != 3:
            raise ValueError(f"{name}: the 3D view shows 3D poses, got 2D")
        main = self.main
        frame = time_point(main.dims) if main is not None else 0
        data, layer_kwargs, _ = one_frame_points_tuple(poses, name=name, frame=frame)
        if name in self.model.layers:
            self.model.layers.remove(name)
        from napari.layers import Points

        layer = Points(data, **layer_kwargs)
        keep_edits(layer)  # before the bones follow the layer: they read the edited poses
        self.model.add_layer(layer)
        if main is not None:
            self._main_moved()
        self._show_current_frame()
        return layer

    def _dock_gone(self, *args) -> None:
        if self.qt_viewer is not None:
            self.close()

    def close(self) -> None:
        """Disconnect from the main viewer, close the 3D canvas and forget this view."""
        main = self.main
        if main is not None:
            main.dims.events.current_step.disconnect(self._main_moved)
            if _VIEWS.get(id(main)) is self:
                _VIEWS.pop(id(main))
            if self._closer is not None and hasattr(main.window, "_qt_window"):
                main.window._qt_window.removeEventFilter(self._closer)
        self.model.dims.events.current_step.disconnect(self._view_moved)
        self.model.dims.events.current_step.disconnect(self._show_current_frame)
        if self.qt_viewer is not None:
            qt_viewer, self.qt_viewer, self.dock = self.qt_viewer, None, None
            qt_viewer.close()


def _give_room(window, dock) -> None:
    """Put ``dock`` in its own column beside the other docks of its area, ~40% of the width."""
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtWidgets import QDockWidget

    area = window.dockWidgetArea(dock)
    others = [
        d
        for d in window.findChildren(QDockWidget)
        if d is not dock and not d.isHidden() and window.dockWidgetArea(d) == area
    ]
    if others:
        window.splitDockWidget(others[0], dock, Qt.Orientation.Horizontal)
    docks = [*others[:1], dock]
    widths = [int(window.width() * f) for f in (0.2, 0.32)][-len(docks) :]

    def resize() -> None:
        window.resizeDocks(docks, widths, Qt.Orientation.Horizontal)

    resize()
    QTimer.singleShot(0, resize)  # again once Qt has laid the new dock out


def _close_filter():
    from qtpy.QtCore import QEvent, QObject

    class CloseWith(QObject):
        """Closes the 3D view when the main window closes (its canvas must not outlive it)."""

        def __init__(self, view: PoseView3D):
            super().__init__()
            self._view = weakref.ref(view)

        def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
            view = self._view()
            if event.type() == QEvent.Type.Close and view is not None:
                view.close()
            return False

    return CloseWith


def _CloseWith(view: PoseView3D):  # noqa: N802 (a class made on first use: Qt is imported late)
    return _close_filter()(view)


def get_view3d(viewer) -> PoseView3D:
    """The 3D view docked in ``viewer``, created on first use."""
    view = _VIEWS.get(id(viewer))
    if view is not None and (view.main is not viewer or not view.is_open):
        view.close()
        view = None
    if view is None:
        view = PoseView3D(viewer)
        _VIEWS[id(viewer)] = view
        weakref.finalize(viewer, _VIEWS.pop, id(viewer), None)
    return view
