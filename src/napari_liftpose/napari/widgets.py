"""The LiftPose dock widget: train or load a lifter, lift into the 3D view, annotate, evaluate.

The widget holds controls only. The state (lifter, lifted poses, edits) and the work on it live in
a :class:`~napari_liftpose.napari.session.LiftSession` (``widget.session``, no Qt), which uses
:mod:`napari_liftpose.lifting` and :mod:`napari_liftpose.io` (all of it is also in the CLI).

It works however napari opens it: the Plugins menu, ``napari -w napari-liftpose``,
``viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")`` (napari then hands it a
``PublicOnlyProxy`` of the viewer) or ``LiftPoseWidget(viewer)``; it uses napari's public API only.

Scripting (a script or a notebook)::

    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    widget.load_model("lifter.safetensors")
    widget.lift_layer.value = "walk.slp"
    widget.lift_selected()                 # in the background; the 3D view docks when done
    widget.export_3d("walk3d.npz")
    widget.evaluate_against("walk3d_truth.npz", camera=("calibration.toml", "cam1"))
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QScrollArea, QSizePolicy, QTabWidget, QVBoxLayout, QWidget

from napari_liftpose.io import read_calibration, read_poses
from napari_liftpose.io.calibration import Camera
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.lifting import (
    KnownCamera,
    PairedTracks,
    RandomCameras,
    TrainConfig,
    resolve_device,
    train,
)
from napari_liftpose.lifting.camera_defaults import default_distance
from napari_liftpose.napari.convert import POSES_KEY, poses_from_layer_data
from napari_liftpose.napari.keypoints import keypoint_chooser
from napari_liftpose.napari.layers import axis_labels
from napari_liftpose.napari.live import LiveRelift
from napari_liftpose.napari.loss_plot import JointErrorPlot, LossCurve, TrainingProgress
from napari_liftpose.napari.queue import AnnotatorQueue
from napari_liftpose.napari.save_labels import attach_save_labels
from napari_liftpose.napari.session import LiftSession, read_camera
from napari_liftpose.napari.view3d import get_view3d, reveal, show_truth
from napari_liftpose.poses import Poses

__all__ = ["LiftPoseWidget"]

CAMERA_MODES = ("random cameras", "calibration file", "paired 2D layer")
#: Where the Train tab's 3D poses come from: library files, or a shipped body model.
LIBRARY_FILES = "3D library files"
BODY_SOURCES = (LIBRARY_FILES, "body model: mouse", "body model: fly")
#: Random-camera elevations (degrees) a body model's lifter trains with by default, as the CLI's
#: ``train --body``: rodents are filmed from above, flies from the side.
BODY_ELEVATIONS = {"mouse": (50.0, 89.0), "fly": (-10.0, 40.0)}
#: Poses sampled from a body model for one training run.
BODY_POSES = 100_000
NO_BUILTIN = "(choose)"
WHOLE_SKELETON = "(whole skeleton)"


class _Relay(QObject):
    """Carries training progress from the worker thread to the GUI thread (queued signal)."""

    progressed = Signal(object)


class _Failed:
    """What a worker returns instead of raising (napari would show a second toast for a raise)."""

    def __init__(self, error: Exception):
        self.error = error


def _catching(func):
    """``func`` returning a :class:`_Failed` instead of raising (for worker threads)."""

    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 (reported once, in the GUI thread)
            return _Failed(err)

    return run


def _wrapping(label: Label) -> Label:
    """Let ``label`` wrap long messages instead of widening the dock."""
    native = label.native
    native.setWordWrap(True)
    native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    native.setMinimumWidth(50)
    return label


def _range(label: str, lo: float, hi: float, bounds: tuple[float, float]) -> Container:
    low = FloatSpinBox(value=lo, min=bounds[0], max=bounds[1], step=5)
    high = FloatSpinBox(value=hi, min=bounds[0], max=bounds[1], step=5)
    return Container(widgets=[low, high], layout="horizontal", label=label, labels=False)


def _set_range(row: Container, lo: float, hi: float) -> None:
    """Show ``lo, hi`` with enough decimals for any units (0.012 m as well as 5 mm)."""
    smallest = max(min(abs(lo), abs(hi)), 1e-6)
    for box, value in zip(row, (lo, hi), strict=True):
        box.native.setDecimals(max(2, 3 - math.floor(math.log10(smallest))))
        box.value = value


def _range_value(row: Container) -> tuple[float, float]:
    return float(row[0].value), float(row[1].value)


def device_description() -> str:
    """Which device training will use, in words."""
    device = resolve_device("auto")
    if device.type == "cuda":
        import torch

        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return "CPU (no GPU found)"


def pose_layers(viewer, n_space: int = 2) -> list:
    """Points layers of ``viewer`` that hold poses of ``n_space`` dimensions."""
    from napari.layers import Points

    return [
        layer
        for layer in viewer.layers
        if isinstance(layer, Points)
        and isinstance(layer.metadata.get(POSES_KEY), Poses)
        and layer.metadata[POSES_KEY].n_space == n_space
    ]


def _layer_id(layer) -> int:
    """The identity of ``layer`` (napari's ``PublicOnlyProxy`` makes a new proxy per access)."""
    return id(getattr(layer, "__wrapped__", layer))


def _unset(path) -> bool:
    """True for an empty file field (magicgui's ``FileEdit`` reads ``Path(".")`` then)."""
    return path is None or str(path).strip() in ("", ".")


def _holds(viewer, layer) -> bool:
    """True while ``layer`` is still in ``viewer`` (either may be napari's ``PublicOnlyProxy``)."""
    return any(_layer_id(other) == _layer_id(layer) for other in viewer.layers)


def layer_poses(layer) -> Poses:
    """The poses a pose Points layer shows now (with the user's edits)."""
    return poses_from_layer_data(layer.data, layer.features, layer.metadata)


class LiftPoseWidget(QWidget):
    """Train / Model / Lift / Evaluate tabs for one viewer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (or the ``PublicOnlyProxy`` of it that napari gives plugin widgets).
    session : LiftSession, optional
        The state to show and work on (a new one by default).
    """

    def __init__(self, napari_viewer, session: LiftSession | None = None):
        super().__init__()
        self.viewer = napari_viewer
        self.session = session or LiftSession()
        self.live: dict[str, LiveRelift] = {}  # 2D layer name -> its live re-lift
        self.last_result = None
        self.loss_curve = LossCurve()
        self.joint_plot = JointErrorPlot()
        self._cancel = threading.Event()
        self._worker = None
        self._progress: TrainingProgress | None = None
        self._relay = _Relay()
        self._relay.progressed.connect(self._on_progress)
        self._chooser = None  # the keypoint chooser shown: the annotated layer's
        self._choosers: dict[int, Container] = {}  # every 2D pose layer's chooser, by layer id
        self._panel3d = None  # the 3D view's layer panel, docked once
        self.queue = AnnotatorQueue(self.viewer)

        self.tabs = QTabWidget()
        for name, tab, plot in (
            ("Train", self._build_train_tab(), self.loss_curve),
            ("Model", self._build_model_tab(), None),
            ("Lift", self._build_lift_tab(), None),
            ("Annotate", self._build_annotate_tab(), self.queue),
            ("Evaluate", self._build_evaluate_tab(), self.joint_plot),
        ):
            if plot is not None:  # the plot sits under its controls, always in view with them
                plot.setMinimumHeight(220)
                tab.native.layout().addWidget(plot, stretch=1)
            else:
                tab.native.layout().addStretch(1)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(tab.native)
            self.tabs.addTab(scroll, name)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self.status = _wrapping(Label(value="No lifter yet: train one or load a model file."))
        layout.addWidget(self.status.native)
        self.viewer.layers.events.inserted.connect(self._refresh_layer_choices)
        self.viewer.layers.events.removed.connect(self._refresh_layer_choices)
        self._refresh_layer_choices()

    def show_tab(self, name: str) -> None:
        """Bring tab ``name`` ("Train", "Model", "Lift", "Annotate", "Evaluate") to the front."""
        names = [self.tabs.tabText(i) for i in range(self.tabs.count())]
        self.tabs.setCurrentIndex(names.index(name))

    @property
    def lifter(self):
        """The session's lifter (None before one is trained or loaded)."""
        return self.session.lifter

    @property
    def lifted(self) -> Poses | None:
        """A copy of the last lifted 3D poses, with live re-lifts and 3D edits (None before)."""
        return self.session.lifted() if self.session.has_lifted() else None

    # -- building ------------------------------------------------------------------------
    def _build_train_tab(self) -> Container:
        self.poses_from = ComboBox(label="3D poses from", choices=BODY_SOURCES, value=LIBRARY_FILES)
        self.poses_from.tooltip = (
            "a body model needs no 3D data: poses are sampled from it (docs/body-models.md); "
            "3D library files chosen too are mixed in as the lab's real frames"
        )
        self.body_layer = ComboBox(label="keypoints of", choices=[])
        self.body_layer.tooltip = (
            "a 2D layer whose keypoints the lifter is for (mapped onto the body model by name); "
            "empty: the body model's whole skeleton"
        )
        self.library = FileEdit(label="3D library", mode="rm", filter="*.npz *.h5 *.csv *.npy")
        self.camera_mode = ComboBox(label="camera", choices=CAMERA_MODES, value=CAMERA_MODES[0])
        self.calibration = FileEdit(label="calibration", mode="r", filter="*.toml")
        self.camera_name = ComboBox(label="camera name", choices=[])
        self.azimuth = _range("azimuth (deg)", -180, 180, (-180, 180))
        self.elevation = _range("elevation (deg)", -30, 30, (-89, 89))
        self.roll = _range("roll (deg)", 0, 0, (-180, 180))
        self.distance = _range("distance", 1, 1, (1e-6, 1e9))
        _set_range(self.distance, *default_distance([]))
        self.distance.tooltip = (
            "library units; set to 5-10x the animal's size when a library is chosen"
        )
        self.projection = ComboBox(label="projection", choices=["pinhole", "weak"])
        self.paired_layer = ComboBox(label="2D layer", choices=[])
        self.roots = LineEdit(label="roots", value="")
        self.model_kind = ComboBox(label="model", choices=["mlp", "temporal"], value="mlp")
        self.epochs = SpinBox(label="epochs", value=30, min=1, max=10000)
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda", "mps"])
        self.device_label = _wrapping(Label(value=f"Trains on: {device_description()}"))
        self.output = FileEdit(
            label="save model to",
            mode="w",
            filter="*.safetensors",
            value=str(Path.home() / "liftpose-models" / "lifter.safetensors"),
        )
        self.train_button = PushButton(text="Train")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.calibration.changed.connect(self._on_calibration)
        self.library.changed.connect(self._on_library)
        self.camera_mode.changed.connect(self._show_camera_controls)
        self.train_button.changed.connect(self.start_training)
        self.cancel_button.changed.connect(self.cancel_training)
        self.poses_from.changed.connect(self._on_poses_from)
        tab = Container(
            widgets=[
                self.poses_from,
                self.body_layer,
                self.library,
                self.camera_mode,
                self.calibration,
                self.camera_name,
                self.azimuth,
                self.elevation,
                self.roll,
                self.distance,
                self.projection,
                self.paired_layer,
                self.roots,
                self.model_kind,
                self.epochs,
                self.device,
                self.device_label,
                self.output,
                Container(
                    widgets=[self.train_button, self.cancel_button],
                    layout="horizontal",
                    labels=False,
                ),
            ]
        )
        self._show_camera_controls()
        self._on_poses_from()
        return tab

    def _build_model_tab(self) -> Container:
        from napari_liftpose.bodies.builtin import builtin_names

        self.model_file = FileEdit(label="model file", mode="r", filter="*.safetensors")
        self.load_button = PushButton(text="Load model")
        self.builtin = ComboBox(label="built-in lifter", choices=[NO_BUILTIN, *builtin_names()])
        self.builtin.tooltip = (
            "lifters made from body models, shipped with the plugin: no 3D data needed; your "
            "keypoints are mapped onto theirs by name (docs/builtin-lifters.md)"
        )
        self.builtin_button = PushButton(text="Use built-in lifter")
        self.model_info = _wrapping(Label(value=""))
        self.load_button.changed.connect(lambda: self.load_model(self.model_file.value))
        self.builtin_button.changed.connect(lambda: self.use_builtin(self.builtin.value))
        return Container(
            widgets=[
                self.model_file,
                self.load_button,
                self.builtin,
                self.builtin_button,
                self.model_info,
            ]
        )

    def _build_lift_tab(self) -> Container:
        self.lift_layer = ComboBox(label="2D layer", choices=[])
        self.lift_button = PushButton(text="Lift to 3D")
        self.export_path = FileEdit(
            label="export 3D to", mode="w", filter="*.npz *.h5 *.csv *.nc *.nwb"
        )
        self.export_button = PushButton(text="Export 3D")
        self.lift_button.changed.connect(lambda: self.lift_selected())
        self.export_button.changed.connect(lambda: self.export_3d(self.export_path.value))
        return Container(
            widgets=[self.lift_layer, self.lift_button, self.export_path, self.export_button]
        )

    def _build_annotate_tab(self) -> Container:
        self.annotate_layer = ComboBox(label="2D layer", choices=[])
        self.annotate_layer.changed.connect(self._annotate)
        self.save_labels_button = attach_save_labels(self.viewer)
        self._chooser_box = Container(widgets=[], labels=False)
        return Container(widgets=[self.annotate_layer, self._chooser_box, self.save_labels_button])

    def _annotate(self, event=None) -> None:
        """Show the chosen 2D layer's keypoint chooser; give the queue that layer and its lift."""
        self._follow_pose_layers()
        name = self.annotate_layer.value
        layer = self.viewer.layers[name] if name and name in self.viewer.layers else None
        self._chooser = self._choosers.get(_layer_id(layer)) if layer is not None else None
        for chooser in self._choosers.values():
            chooser.visible = chooser is self._chooser
        if layer is None:
            return
        self.queue.set_points(layer)
        if self.session.has_lifted(name):
            self.queue.set_lifted(self.session.lifted(name))

    def _follow_pose_layers(self) -> None:
        """Give every 2D pose layer its keypoint chooser; removed layers lose theirs.

        A layer without one would add points through napari's own add, which takes the keypoint
        of the last selected point: every pose layer is guarded, whichever the Annotate tab shows.
        """
        layers = {_layer_id(layer): layer for layer in pose_layers(self.viewer, 2)}
        for key in [key for key in self._choosers if key not in layers]:
            chooser = self._choosers.pop(key)
            chooser.detach()
            self._chooser_box.remove(chooser)
        for key, layer in layers.items():
            if key not in self._choosers:
                chooser = keypoint_chooser(self.viewer, layer)
                chooser.visible = False
                self._choosers[key] = chooser
                self._chooser_box.append(chooser)

    def _build_evaluate_tab(self) -> Container:
        self.truth_file = FileEdit(label="3D ground truth", mode="r")
        self.eval_calibration = FileEdit(label="camera file", mode="r", filter="*.toml")
        self.eval_calibration.tooltip = (
            "calibration.toml of the camera the 2D tracks were filmed with: random-camera "
            "lifters need it to put the 3D truth in their axes"
        )
        self.eval_camera = ComboBox(label="camera name", choices=[])
        self.evaluate_button = PushButton(text="Evaluate")
        self.metrics_label = _wrapping(Label(value=""))
        self.eval_calibration.changed.connect(self._on_eval_calibration)
        self.evaluate_button.changed.connect(lambda: self.evaluate_against(self.truth_file.value))
        return Container(
            widgets=[
                self.truth_file,
                self.eval_calibration,
                self.eval_camera,
                self.evaluate_button,
                self.metrics_label,
            ]
        )

    # -- small reactions -----------------------------------------------------------------
    def _refresh_layer_choices(self, event=None) -> None:
        layers = pose_layers(self.viewer, 2)
        names = [layer.name for layer in layers]
        for layer in layers:  # a renamed layer is renamed in the choices too
            layer.events.name.disconnect(self._refresh_layer_choices)
            layer.events.name.connect(self._refresh_layer_choices)
        for combo in (self.paired_layer, self.lift_layer, self.annotate_layer, self.body_layer):
            current = combo.value
            combo.choices = [WHOLE_SKELETON, *names] if combo is self.body_layer else names
            if current in names:
                combo.value = current
        self._annotate()  # new layers get their chooser, removed ones lose it
        if layers and self.viewer.dims.ndim == 3:  # the time slider reads "frame", not "-3"
            units = layers[0].metadata[POSES_KEY].units  # the file's; no rebuild of its rows
            self.viewer.dims.axis_labels = axis_labels(units, 2)

    def _show_camera_controls(self, event=None) -> None:
        mode = self.camera_mode.value
        for widget in (self.calibration, self.camera_name):
            widget.visible = mode == "calibration file"
        for widget in (self.azimuth, self.elevation, self.roll, self.distance, self.projection):
            widget.visible = mode == "random cameras"
        self.paired_layer.visible = mode == "paired 2D layer"

    def _body_model(self) -> str | None:
        """The body model the Train tab samples from, or None for library files."""
        source = self.poses_from.value
        return None if source == LIBRARY_FILES else source.split(": ", 1)[1]

    def _on_poses_from(self, event=None) -> None:
        """Show the controls of the chosen source of 3D poses.

        A body model shows its keypoint layer, gives random cameras its default elevations and
        distance (as ``train --body``), and makes the library files optional real frames.
        """
        body = self._body_model()
        self.body_layer.visible = body is not None
        self.library.label = "3D library" if body is None else "real 3D frames (optional)"
        if body is None:
            self._on_library()
            return
        from napari_liftpose.bodies.sampler import sample_poses

        _set_range(self.elevation, *BODY_ELEVATIONS[body])
        _set_range(self.distance, *default_distance([sample_poses(body, 2048, seed=0)]))

    def _on_library(self, event=None) -> None:
        """Fill the random cameras' distance with the default for this library (as the CLI)."""
        if self._body_model() is not None:
            return  # the body model's size decides it
        files = self.library.value
        files = files if isinstance(files, (list, tuple)) else [files]
        try:
            libraries = [read_poses(f) for f in files if Path(f).is_file()]
        except PoseFileError:
            return  # training reports it
        if libraries:
            _set_range(self.distance, *default_distance(libraries))

    def _on_calibration(self, event=None) -> None:
        self._fill_camera_names(self.calibration.value, self.camera_name)

    def _on_eval_calibration(self, event=None) -> None:
        self._fill_camera_names(self.eval_calibration.value, self.eval_camera)

    def _fill_camera_names(self, path, combo: ComboBox) -> None:
        if not Path(path).is_file():
            combo.choices = []
            return
        try:
            cameras = read_calibration(path)
        except PoseFileError as err:
            self._error(str(err))
            return
        combo.choices = list(cameras)

    def _error(self, message: str) -> None:
        from napari.utils.notifications import show_error

        self.status.value = message
        show_error(message)

    def _info(self, message: str) -> None:
        from napari.utils.notifications import show_info

        self.status.value = message
        show_info(message)

    # -- training ------------------------------------------------------------------------
    def _camera_choice(self):
        mode = self.camera_mode.value
        if mode == "calibration file":
            cameras = read_calibration(self.calibration.value)
            name = self.camera_name.value or next(iter(cameras))
            return KnownCamera(cameras[name])
        if mode == "random cameras":
            return RandomCameras(
                azimuth=_range_value(self.azimuth),
                elevation=_range_value(self.elevation),
                roll=_range_value(self.roll),
                distance=_range_value(self.distance),
                projection=self.projection.value,
            )
        if not self.paired_layer.value:
            raise ValueError("paired 2D layer: open 2D tracks of the library's frames first")
        return PairedTracks([layer_poses(self.viewer.layers[self.paired_layer.value])])

    def start_training(self) -> None:
        """Read the controls and train in a worker thread (progress bar, loss curve, cancel)."""
        from napari.qt.threading import create_worker
        from napari.utils import progress

        if self._worker is not None:
            self._error("a training run is already going; cancel it first")
            return
        files = self.library.value
        files = files if isinstance(files, (list, tuple)) else [files]
        roots = [r.strip() for r in self.roots.value.split(",") if r.strip()] or None
        body = self._body_model()
        self._body_for_output: str | None = None
        try:
            if body is None:
                if not files or not all(Path(f).is_file() for f in files):
                    raise ValueError("3D library: choose one or more 3D pose files")
                library = [read_poses(f) for f in files]
            else:
                library, body_roots = self._body_library(body, files)
                roots = roots or body_roots
            camera = self._camera_choice()
            config = TrainConfig(
                model=self.model_kind.value, epochs=int(self.epochs.value), device=self.device.value
            )
        except (PoseFileError, ValueError, KeyError) as err:
            self._error(str(err))
            return
        self._cancel.clear()
        self.loss_curve.reset()
        self._progress = TrainingProgress(
            self.loss_curve, progress(total=config.epochs, desc="Training lifter")
        )
        self._worker = create_worker(
            _catching(train),
            library,
            camera,
            self.output.value,
            config,
            roots=roots,
            progress=self._relay.progressed.emit,
            cancel=self._cancel,
        )
        self._worker.returned.connect(self._training_done)
        self._worker.errored.connect(self._training_failed)
        self._worker.finished.connect(self._training_finished)
        self.train_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = f"Training on {device_description()}..."
        self._worker.start()

    def _body_library(self, body: str, files) -> tuple[list[Poses], list[str]]:
        """The Train tab's library sampled from ``body``, for the chosen layer's keypoints.

        Library files that exist are mixed in as the lab's real 3D frames. A lifter on the
        body model's whole skeleton records it, so any lab's layer can be mapped onto it later
        (as the built-in lifters); one for a layer's keypoints lifts that skeleton directly.
        """
        from napari_liftpose.bodies.library import training_library

        real = [read_poses(f) for f in files if f and Path(f).is_file()]
        layer = self.body_layer.value
        user = None
        if layer not in (None, "", WHOLE_SKELETON):
            user = layer_poses(self.viewer.layers[layer])
        made = training_library(
            body,
            BODY_POSES,
            user_keypoints=None if user is None else user.keypoints,
            user_edges=None if user is None or not len(user.edges) else user.edges,
            real=real,
        )
        self._body_for_output = body if user is None else None
        self._info(made.describe())
        return made.libraries, made.roots

    def cancel_training(self) -> None:
        """Ask the running training to stop; the best model so far is kept."""
        self._cancel.set()
        self.status.value = "Cancelling..."

    def _on_progress(self, update) -> None:
        # records only: napari's bar processes Qt events, so it is moved by a timer, never here
        if self._progress is not None:
            self._progress.push(update)

    def _training_done(self, result) -> None:
        if isinstance(result, _Failed):
            self._training_failed(result.error)
            return
        self.last_result = result
        if result.written and self._body_for_output is not None:
            from napari_liftpose.bodies.adapt import record_body_model
            from napari_liftpose.bodies.library import body_model_meta
            from napari_liftpose.bodies.model import load_body_model

            body = load_body_model(self._body_for_output)
            record_body_model(result.path, body_model_meta(body))
        if result.written:
            self.load_model(result.path)
            self._info(result.summary())
        else:
            self._error(result.summary())

    def _training_failed(self, error: Exception) -> None:
        self._error(f"Training failed: {error}")

    def _training_finished(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._worker = None
        self.train_button.enabled = True
        self.cancel_button.enabled = False

    # -- model ---------------------------------------------------------------------------
    def load_model(self, path) -> bool:
        """Load a lifter file and check it against the selected 2D layer's keypoints.

        Parameters
        ----------
        path : str or Path
            A ``.safetensors`` lifter file (trained here, with the CLI or by a colleague).

        Returns
        -------
        bool
            True when loaded. A file that fails to load changes nothing (the previous lifter
            stays) and says why in the status line and one notification.
        """
        try:
            self.session.load_model(path)
        except (PoseFileError, ValueError, OSError) as err:
            self._error(str(err))
            return False
        return self._lifter_loaded(f"Lifter loaded: {Path(path).name}")

    def use_builtin(self, name: str) -> bool:
        """Make the built-in lifter ``name`` the lifter; each 2D layer is mapped onto it by name.

        Returns
        -------
        bool
            True when loaded (the status line says so); False with the reason otherwise.
        """
        if name in (None, "", NO_BUILTIN):
            self._error("Built-in lifter: choose one first")
            return False
        try:
            self.session.load_builtin(name)
        except (PoseFileError, ValueError, OSError) as err:
            self._error(str(err))
            return False
        return self._lifter_loaded(f"Built-in lifter: {name}")

    def _lifter_loaded(self, message: str) -> bool:
        """Show the loaded lifter and check it against the selected 2D layer."""
        path = self.session.model_path or Path("lifter")
        self.model_info.value = self.session.model_summary()
        self.status.value = message
        if self.session.needs_camera():
            self.model_info.value += (
                "\nRandom-camera lifter: to evaluate, give the camera the 2D tracks were filmed "
                "with (Evaluate tab)."
            )
        if self.lift_layer.value:
            try:
                self.session.check_fits(
                    self.viewer.layers[self.lift_layer.value].metadata[POSES_KEY]
                )
            except ValueError as err:
                self._error(f"{Path(path).name} does not fit layer {self.lift_layer.value}: {err}")
                return True
            if self.session.mapping_note:
                self.model_info.value += f"\n{self.lift_layer.value}: {self.session.mapping_note}"
        return True

    # -- lifting -------------------------------------------------------------------------
    def lift_selected(self, then=None):
        """Lift the selected 2D layer (``lift_layer``) in a worker thread; show it in the 3D view.

        Parameters
        ----------
        then : callable, optional
            Called with the 3D layer once it is shown.

        Returns
        -------
        worker or None
            napari's worker (``worker.finished`` tells when it is over); None if nothing could
            be started (no lifter, no layer, keypoints that do not fit: the status says why).
        """
        from napari.qt.threading import create_worker

        if self.session.lifter is None:
            self._error("No lifter: train one or load a model file first")
            return None
        if not self.lift_layer.value:
            self._error("No 2D tracks layer to lift: open a SLEAP or DeepLabCut file first")
            return None
        if self.lift_layer.value not in self.viewer.layers:  # renamed since it was chosen
            self._refresh_layer_choices()
            self._error(f"No layer {self.lift_layer.value!r} any more: choose the 2D layer again")
            return None
        layer = self.viewer.layers[self.lift_layer.value]
        try:
            tracks = layer_poses(layer)
            self.session.check_fits(tracks)
        except ValueError as err:
            self._error(f"{layer.name}: {err}")
            return None
        worker = create_worker(_catching(self.session.compute_lift), tracks)

        def done(result) -> None:
            if isinstance(result, _Failed):
                self._error(f"{layer.name}: lifting failed: {result.error}")
                return
            if not _holds(self.viewer, layer):
                self._error(f"{layer.name} was removed while it was lifted: nothing is shown")
                return
            lifter, lifted = result
            self.session.keep_lift(layer.name, tracks, lifter, lifted)
            layer3d = self.show_lifted(layer)
            if then is not None:
                then(layer3d)

        worker.returned.connect(done)
        self.status.value = f"Lifting {layer.name}..."
        worker.start()
        return worker

    def show_lifted(self, layer):
        """Show the session's 3D of ``layer`` in the 3D view and tie them for live re-lifting."""
        view = get_view3d(self.viewer)
        view.reveal()  # the user may have hidden the 3D dock
        lifted = self.session.lifted(layer.name)  # the view gets a copy; the session keeps its own
        layer3d = view.add_poses(lifted, name=f"{layer.name} 3D")
        self.viewer.reset_view()  # the main canvas narrowed when the 3D view docked
        if layer.name in self.live:
            self.live.pop(layer.name).disconnect()
        self.live[layer.name] = LiveRelift(self.session, layer.name, layer, layer3d)
        self._dock_panel3d(view)
        if layer.name in self.annotate_layer.choices:  # the queue follows the layer just lifted
            self.annotate_layer.value = layer.name
        self.queue.set_points(layer)
        self.queue.set_lifted(lifted)
        self.status.value = f"Lifted {layer.name}: {lifted.n_frames} frames"
        return layer3d

    def _dock_panel3d(self, view) -> None:
        """Dock the 3D view's panel (layer visibility, point size, legends) for ``view``.

        A panel of a closed 3D view is replaced; a hidden one is shown again.
        """
        panel = self._panel3d
        if panel is not None and panel.view is view and reveal(panel):
            return
        if panel is not None:
            if reveal(panel):
                self.viewer.window.remove_dock_widget(panel)
            self._panel3d = None
        self._panel3d = view.panel()
        self._panel3d.setMinimumHeight(200)  # its rows and legends stay readable
        self.viewer.window.add_dock_widget(self._panel3d, name="3D layers", area="right")

    def export_3d(self, path) -> Path | None:
        """Write the last lifted 3D poses (with live re-lifts and 3D edits) to a file.

        Parameters
        ----------
        path : str or Path
            ``.npz``, ``.h5``, ``.csv`` (anipose), ``.nc`` (movement) or ``.nwb`` (NWB).

        Returns
        -------
        Path or None
            The file written; None on failure (the status says why).
        """
        if _unset(path):
            self._error("Export 3D: choose the file to write first (.npz, .h5, .csv, .nc or .nwb)")
            return None
        try:
            written = self.session.export(path)
        except (PoseFileError, ValueError, OSError) as err:
            self._error(str(err))
            return None
        self._info(f"3D poses written to {written}")
        return written

    # -- evaluation ----------------------------------------------------------------------
    def _camera_for_evaluation(self, camera) -> Camera | None:
        if isinstance(camera, Camera):
            return camera
        if camera is not None:  # (calibration file, camera name) or a calibration file
            path, name = camera if isinstance(camera, (tuple, list)) else (camera, None)
            return read_camera(path, name)
        if Path(self.eval_calibration.value).is_file():
            return read_camera(self.eval_calibration.value, self.eval_camera.value)
        return None

    def evaluate_against(self, path, camera=None) -> dict | None:
        """Compare the lifted 3D with a ground-truth file; show the metrics and a per-joint plot.

        Parameters
        ----------
        path : str or Path
            3D ground truth of the lifted frames, in the library's (world) axes.
        camera : Camera, (calibration file, camera name) or calibration file, optional
            The camera the 2D tracks were filmed with; random-camera lifters need it. Default:
            the Evaluate tab's camera fields.

        Returns
        -------
        dict or None
            The metrics (see :func:`napari_liftpose.lifting.evaluate`); None on failure.
        """
        if not self.session.has_lifted():
            self._error("Lift a 2D layer first, then evaluate against its 3D ground truth")
            return None
        if _unset(path):
            self._error("Evaluate: choose the 3D ground-truth file first")
            return None
        try:
            camera = self._camera_for_evaluation(camera)
            metrics = self.session.evaluate(path, camera)
            truth = self.session.truth_overlay(path, camera)
        except (PoseFileError, ValueError, OSError) as err:
            self._error(str(err))
            return None
        show_truth(self.viewer, truth, name=f"{Path(path).name} (truth)")  # beside the lift
        units = metrics["units"]
        self.metrics_label.value = (
            f"MPJPE {metrics['mpjpe']:.3g} {units}\nPA-MPJPE {metrics['pa_mpjpe']:.3g} {units}\n"
            f"N-MPJPE {metrics['n_mpjpe']:.3g} {units}\nMPJVE {metrics['mpjve']:.3g} {units}/frame\n"
            f"({metrics['n_frames']} frames, {metrics['n_valid_joints']} joints)"
        )
        per_joint = metrics["per_joint_mpjpe"]
        self.joint_plot.show_errors(list(per_joint), list(per_joint.values()), units)
        self.show_tab("Evaluate")
        return metrics
