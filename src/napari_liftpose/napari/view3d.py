"""The synchronized 3D view, docked beside the main viewer.

A second viewer (``ViewerModel(ndisplay=3)`` + ``QtViewer``) whose time axis follows the main
viewer's slider both ways.

The main viewer keeps the video ``(t, y, x[, c])`` and the 2D tracks; 3D poses ``(t, z, y, x)``
live only here, so the two kinds of axes never mix in one viewer. Each 3D pose layer holds the
current frame only and is rewritten as the slider moves (see :mod:`.frame_points`).
"""

from __future__ import annotations

import weakref

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QCheckBox, QGridLayout, QLabel, QSlider, QVBoxLayout, QWidget

from napari_liftpose.napari.convert import (
    ONE_FRAME_KEY,
    POSES_KEY,
    napari_order,
    palette,
    time_point,
)
from napari_liftpose.napari.frame_points import (
    keep_edits,
    one_frame_points_tuple,
    show_frame,
    shown_frame,
)
from napari_liftpose.napari.layers import (
    TRUTH_COLOR,
    UNCERTAINTY_SIZE_RANGE,
    axis_labels,
    fit_camera,
    oblique_view,
    uncertainty_sizes,
)
from napari_liftpose.napari.skeleton import COLOR_KEY, follow_skeletons
from napari_liftpose.poses import Poses

__all__ = [
    "PoseView3D",
    "get_view3d",
    "reveal",
    "fit_view",
    "show_truth",
    "UncertaintySizes",
    "View3DPanel",
]

#: Layer metadata key: the point size a pose layer was made with (the size control scales it).
BASE_SIZE_KEY = "liftpose_base_size"

_VIEWS: dict[int, PoseView3D] = {}  # id(main viewer) -> its 3D view


class PoseView3D:
    """A docked 3D viewer whose time slider is tied to the main viewer's (axis 0 of each)."""

    def __init__(self, viewer, area: str = "right"):
        from napari.components import ViewerModel
        from napari.qt import QtViewer

        viewer = _unproxied(viewer)
        self._main = weakref.ref(viewer)
        self.model = ViewerModel(title="3D poses", ndisplay=3)
        self.qt_viewer = QtViewer(self.model)
        viewer.window.add_dock_widget(self.qt_viewer, name="3D poses", area=area, tabify=False)
        self.dock = _dock_of(self.qt_viewer)  # the QDockWidget itself (Qt's parent of the canvas)
        self._window = self.dock.parentWidget()  # napari's main window, by Qt's own API
        _give_room(self.dock)
        follow_skeletons(self.model, canvas=self.qt_viewer.canvas)
        self._syncing = False
        self.dock.destroyed.connect(self._dock_gone)
        viewer.dims.events.current_step.connect(self._main_moved)
        self.model.dims.events.current_step.connect(self._view_moved)
        self.model.dims.events.current_step.connect(self._show_current_frame)
        self._closer = _CloseWith(self)
        self._window.installEventFilter(self._closer)

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

    def reveal(self) -> None:
        """Show the 3D dock again if the user hid it (its title bar's hide button)."""
        if self.dock is not None:
            reveal(self.qt_viewer)

    def add_poses(self, poses: Poses, name: str, color=None):
        """Add 3D ``poses`` as a Points layer ``(t, z, y, x)`` (bones follow automatically).

        The layer shows the current frame (:mod:`.frame_points`); ``metadata["poses"]`` holds all.
        Points are colored by keypoint (by individual when there are several), or all ``color``
        (RGBA) for a reference such as ground truth, which is then not editable. When the poses
        carry ``uncertainty``, each point's size shows it (:func:`.layers.uncertainty_sizes`).
        The view is labelled (``frame``, axes with units) and turned to an oblique view fitted
        to every pose layer (:func:`fit_view`).
        """
        if poses.n_space != 3:
            raise ValueError(f"{name}: the 3D view shows 3D poses, got 2D")
        main = self.main
        frame = time_point(main.dims) if main is not None else 0
        data, layer_kwargs, _ = one_frame_points_tuple(poses, name=name, frame=frame)
        layer_kwargs["metadata"][BASE_SIZE_KEY] = layer_kwargs["size"]
        if color is not None:
            layer_kwargs["face_color"] = np.tile(np.asarray(color, dtype=float), (len(data), 1))
            layer_kwargs["metadata"][COLOR_KEY] = tuple(color)
        if name in self.model.layers:
            self.model.layers.remove(name)
        from napari.layers import Points

        layer = Points(data, **layer_kwargs)
        if color is None:
            keep_edits(layer)  # before the bones follow the layer: they read the edited poses
        else:
            layer.editable = False
        self.model.add_layer(layer)
        if main is not None:
            self._main_moved()
        self._show_current_frame()
        if poses.uncertainty is not None and color is None:
            UncertaintySizes(self.model, layer)
        _label_axes(self.model, poses.units)
        fit_view(self)
        _later(lambda: fit_view(self) if self.is_open else None)  # once the dock is laid out
        return layer

    def add_truth(self, truth: Poses, name: str = "ground truth"):
        """Overlay 3D ground truth, in the lifted poses' axes and frames, in a muted grey.

        The layer follows the same time slider (frame ``t`` of the truth beside frame ``t`` of
        the lift) and is drawn under the lifted layers; it is not editable.
        """
        if truth.n_space != 3:
            raise ValueError(f"{name}: ground truth for the 3D view must be 3D, got 2D")
        layer = self.add_poses(truth.copy(uncertainty=None, suspicion=None), name, TRUTH_COLOR)
        self.model.layers.move(self.model.layers.index(layer), 0)
        return layer

    def panel(self):
        """A small Qt panel for this view: layer visibility and point size, and the legends."""
        return View3DPanel(self)

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
        if self._closer is not None and self._window is not None:
            try:
                self._window.removeEventFilter(self._closer)
            except RuntimeError:  # the window's Qt object is already gone
                pass
            self._window = None
        self.model.dims.events.current_step.disconnect(self._view_moved)
        self.model.dims.events.current_step.disconnect(self._show_current_frame)
        if self.qt_viewer is not None:
            qt_viewer, self.qt_viewer, self.dock = self.qt_viewer, None, None
            qt_viewer.close()


def _unproxied(viewer):
    """The viewer itself when napari handed the plugin a ``PublicOnlyProxy`` of it.

    Plugin widgets opened by napari (Plugins menu, ``add_plugin_dock_widget``, ``napari -w``) get
    a proxy; one viewer has one 3D view whichever way it is reached, so views are kept by the
    viewer itself. Only the viewer's public API is used.
    """
    return getattr(viewer, "__wrapped__", viewer)


def _dock_of(widget):
    """The ``QDockWidget`` holding ``widget`` (found through Qt parents, not napari internals)."""
    from qtpy.QtWidgets import QDockWidget

    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    if parent is None:
        raise RuntimeError("the 3D view was not docked")
    return parent


def reveal(widget) -> bool:
    """Show the dock holding ``widget`` if it was hidden; False if ``widget`` is not docked.

    A widget whose Qt object is gone (its dock was closed) is not docked.
    """
    from qtpy.QtWidgets import QDockWidget

    try:
        parent = widget.parentWidget()
    except RuntimeError:  # the Qt object was deleted with its dock
        return False
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    if parent is None:
        return False
    if parent.isHidden():
        parent.show()
    return True


def _give_room(dock) -> None:
    """Put ``dock`` in its own column beside the other docks of its area, ~40% of the width."""
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtWidgets import QDockWidget, QMainWindow

    window = dock.parentWidget()
    if not isinstance(window, QMainWindow):
        return  # floating or re-parented: nothing to share
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
    """The 3D view docked in ``viewer`` (a napari Viewer or the proxy plugins get), made once."""
    viewer = _unproxied(viewer)
    view = _VIEWS.get(id(viewer))
    if view is not None and (view.main is not viewer or not view.is_open):
        view.close()
        view = None
    if view is None:
        view = PoseView3D(viewer)
        _VIEWS[id(viewer)] = view
        weakref.finalize(viewer, _VIEWS.pop, id(viewer), None)
    return view


# -- how the view looks: camera, labels, uncertainty, truth, its own panel --------------------
_SIZERS: dict[int, UncertaintySizes] = {}  # id(layer) -> the sizer of that 3D layer


def _later(func) -> None:
    """Call ``func`` once Qt has handled the pending events (layout of a new dock)."""
    QTimer.singleShot(0, func)


def _pose_layers(model) -> list:
    """The 3D view's pose layers (one-frame Points layers with their poses), bottom first."""
    return [
        layer
        for layer in model.layers
        if layer.metadata.get(ONE_FRAME_KEY) and isinstance(layer.metadata.get(POSES_KEY), Poses)
    ]


def _label_axes(model, units: str | None) -> None:
    """Name the slider "frame" and the axes with their units; show the axes in the canvas."""
    labels = axis_labels(units, 3)
    if model.dims.ndim == len(labels):
        model.dims.axis_labels = labels
    model.axes.visible = True
    model.axes.labels = True
    model.axes.colored = True


def fit_view(view: PoseView3D, fill: float = 0.8) -> None:
    """Turn the 3D view to an oblique view and zoom so that every pose of every frame fits.

    The view direction comes from the poses' ``frame`` (:func:`.layers.oblique_view`); the
    box of all finite points of all the view's pose layers (every animal, every frame) takes
    ``fill`` of the canvas along its tighter side, so nothing is clipped as the slider moves.
    """
    layers = _pose_layers(view.model)
    corners = []
    for layer in layers:
        coords = layer.metadata[POSES_KEY].coords.reshape(-1, 3)
        coords = coords[np.isfinite(coords).all(-1)]
        if len(coords):
            corners += [coords.min(0), coords.max(0)]
    if not corners or view.qt_viewer is None:
        return
    scene = napari_order(np.array(corners))
    frame = layers[-1].metadata[POSES_KEY].frame
    direction, up = oblique_view(frame)
    camera = view.model.camera
    camera.set_view_direction(direction, up)
    center, zoom = fit_camera(
        scene.min(0), scene.max(0), direction, up, view.qt_viewer.canvas.size, fill
    )
    camera.center = center
    camera.zoom = zoom


def show_truth(viewer, truth: Poses, name: str = "ground truth"):
    """Overlay 3D ground truth in ``viewer``'s 3D view (see :meth:`PoseView3D.add_truth`).

    ``truth`` must be in the lifted poses' axes and units (``Lifter.truth_in_output_frame``)
    with the same frames. Returns the truth layer.
    """
    return get_view3d(viewer).add_truth(truth, name)


class UncertaintySizes:
    """Size each point of a 3D pose layer by its uncertainty, frame by frame.

    The size is the diameter of the joint's 80% uncertainty sphere, within
    :data:`.layers.UNCERTAINTY_SIZE_RANGE` times the layer's base size
    (``metadata["liftpose_base_size"]``, which the size control sets).
    """

    def __init__(self, model, layer):
        self._model = weakref.ref(model)
        self.layer = layer
        self.enabled = True
        _SIZERS[id(layer)] = self
        weakref.finalize(layer, _SIZERS.pop, id(layer), None)
        model.dims.events.current_step.connect(self.update, position="last")
        self.update()

    @staticmethod
    def of(layer) -> UncertaintySizes | None:
        """The sizer of ``layer``, None if its points are not sized by uncertainty."""
        return _SIZERS.get(id(layer))

    def update(self, event=None) -> None:
        """Size the points of the frame shown now (all at the base size when disabled)."""
        model = self._model()
        if model is None or self.layer not in model.layers:
            if model is not None:
                model.dims.events.current_step.disconnect(self.update)
            return
        poses: Poses = self.layer.metadata[POSES_KEY]
        base = float(self.layer.metadata[BASE_SIZE_KEY])
        n_rows = poses.n_individuals * poses.n_keypoints
        if len(self.layer.data) < n_rows:
            return
        sizes = np.full(len(self.layer.data), base)
        if self.enabled:
            sizes[:n_rows] = uncertainty_sizes(poses, shown_frame(self.layer), base)
        self.layer.size = sizes


def set_point_size(layer, size: float) -> None:
    """Set a 3D pose layer's base point size (uncertainty sizes scale with it) and bone width."""
    layer.metadata[BASE_SIZE_KEY] = float(size)
    sizer = UncertaintySizes.of(layer)
    if sizer is not None:
        sizer.update()
    else:
        layer.size = float(size)


def _hex(rgba) -> str:
    r, g, b = (int(round(255 * float(c))) for c in list(rgba)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _legend_html(entries: list[tuple[str, tuple]]) -> str:
    return " &nbsp; ".join(
        f'<span style="color:{_hex(color)}">&#9679;</span>&nbsp;{name}' for name, color in entries
    )


def keypoint_legend(poses: Poses) -> list[tuple[str, tuple]]:
    """(name, RGBA) of each color a lifted layer uses: keypoints, or individuals when several."""
    names = poses.individuals if poses.n_individuals > 1 else poses.keypoints
    return [(str(n), tuple(c)) for n, c in zip(names, palette(len(names)), strict=True)]


def uncertainty_legend(poses: Poses, name: str) -> str:
    """One line saying what point size means for layer ``name``, with its typical radii."""
    radius = poses.uncertainty[np.isfinite(poses.uncertainty)]
    if not len(radius):
        return ""
    median, high = np.percentile(radius, [50, 90])
    lo, hi = UNCERTAINTY_SIZE_RANGE
    unit = f" {poses.units}" if poses.units else ""
    return (
        f"{name}: point size = the sphere holding the true point 80% of the time "
        f"(radius median {median:.3g}{unit}, 90th percentile {high:.3g}{unit}; drawn "
        f"{lo:g}-{hi:g}x the plain size)"
    )


class View3DPanel(QWidget):
    """The 3D view's own controls: each layer's visibility and point size, and its legends.

    Parameters
    ----------
    view : PoseView3D
        The view to control (``get_view3d(viewer)``).
    """

    def __init__(self, view: PoseView3D):
        super().__init__()
        self.view = view
        self.setObjectName("liftpose 3D panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.layers_box = QWidget()
        self.layers_grid = QGridLayout(self.layers_box)
        self.layers_grid.setContentsMargins(0, 0, 0, 0)
        self.legend = QLabel()
        self.uncertainty = QLabel()
        for label in (self.legend, self.uncertainty):
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
        for widget in (self.layers_box, self.legend, self.uncertainty):
            layout.addWidget(widget)
        self.checks: dict[str, QCheckBox] = {}
        self.sizes: dict[str, QSlider] = {}
        view.model.layers.events.inserted.connect(self.refresh)
        view.model.layers.events.removed.connect(self.refresh)
        self.destroyed.connect(lambda *_: self._disconnect(view))
        self.refresh()

    def _disconnect(self, view) -> None:
        view.model.layers.events.inserted.disconnect(self.refresh)
        view.model.layers.events.removed.disconnect(self.refresh)

    def refresh(self, event=None) -> None:
        """Rebuild the rows and legends from the view's layers."""
        while self.layers_grid.count():
            item = self.layers_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.checks, self.sizes = {}, {}
        for row, layer in enumerate(reversed(list(self.view.model.layers))):
            check = QCheckBox(layer.name)
            check.setChecked(layer.visible)
            check.toggled.connect(lambda on, lay=layer: setattr(lay, "visible", on))
            self.layers_grid.addWidget(check, row, 0)
            self.checks[layer.name] = check
            if POSES_KEY in layer.metadata and BASE_SIZE_KEY in layer.metadata:
                slider = QSlider(Qt.Orientation.Horizontal)
                slider.setRange(10, 400)  # percent of the size the layer was made with
                slider.setValue(100)
                slider.setToolTip("point size (% of the starting size)")
                start = float(layer.metadata[BASE_SIZE_KEY])
                slider.valueChanged.connect(
                    lambda v, lay=layer, s=start: set_point_size(lay, s * v / 100)
                )
                self.layers_grid.addWidget(slider, row, 1)
                self.sizes[layer.name] = slider
        poses_layers = list(reversed(_pose_layers(self.view.model)))  # top first
        lifted = [layer for layer in poses_layers if COLOR_KEY not in layer.metadata]
        entries = keypoint_legend(lifted[0].metadata[POSES_KEY]) if lifted else []
        entries += [
            (layer.name, layer.metadata[COLOR_KEY])
            for layer in poses_layers
            if COLOR_KEY in layer.metadata
        ]
        lines = [
            uncertainty_legend(layer.metadata[POSES_KEY], layer.name)
            for layer in lifted
            if UncertaintySizes.of(layer) is not None
        ]
        self.layers_box.setMinimumHeight(self.layers_box.sizeHint().height())
        self.legend.setText(_legend_html(entries))
        self.uncertainty.setText("<br>".join(line for line in lines if line))
