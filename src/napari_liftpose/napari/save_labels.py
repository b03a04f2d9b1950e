"""Save labels: write a 2D pose layer back in its source's format, never onto the source.

napari 0.9 / npe2 0.10 cannot let a plugin outrank napari's builtin ``.csv`` writer (ties go to
napari, which registers first), and napari has no save event or layer-saved hook (``LayerList.save``
calls the writer directly; ``settings.plugins.extension2writer`` exists but napari never reads it).
So the path that is always right is this module's action:

- :func:`save_labels` writes ``<name>.refined.<ext>`` beside the source, in the source's format
  (DeepLabCut ``.csv`` / ``.h5``, SLEAP ``.slp`` / ``.pkg.slp``, SLEAP analysis ``.h5``);
- :func:`save_labels_action` does that for the viewer's active pose layer and says where;
- :func:`attach_save_labels` binds :data:`SAVE_LABELS_KEY` on the viewer, installs
  :func:`guard_saves` and returns a "Save labels" button for the dock.

:func:`guard_saves` wraps the viewer's public ``layers.save`` (what File > Save calls) and warns
after a DLC/SLEAP layer was written by another writer (napari's generic CSV). The reader offers
once to become napari's remembered reader for ``.slp``/``.h5``/``.csv`` (:func:`offer_reader`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from napari_liftpose.io import detect_format, write_poses
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.io.paths import refined_path
from napari_liftpose.napari.convert import POSES_KEY, poses_from_layer_data
from napari_liftpose.poses import Poses

__all__ = [
    "SAVE_LABELS_KEY",
    "SOURCE_FORMATS",
    "READER_PATTERNS",
    "PLUGIN",
    "labels_target",
    "save_labels",
    "save_labels_action",
    "attach_save_labels",
    "guard_saves",
    "remember_reader",
    "reader_remembered",
    "offer_reader",
]

#: napari key binding of the Save labels action (free among napari 0.9's defaults).
SAVE_LABELS_KEY = "Control-Shift-L"
#: 2D label formats written back as they came.
SOURCE_FORMATS = {
    "dlc": "DeepLabCut",
    "sleap": "SLEAP",
    "sleap_analysis": "SLEAP analysis",
}
#: Filename patterns this plugin offers to become the remembered reader for.
READER_PATTERNS = ("*.slp", "*.h5", "*.csv")
#: The plugin's npe2 name.
PLUGIN = "napari-liftpose"
_GUARD_MARK = "liftpose_save_guard"


def _label_poses(layer) -> Poses | None:
    """The 2D poses of a layer read from DLC/SLEAP (with the user's edits), else None."""
    template = getattr(layer, "metadata", {}).get(POSES_KEY)
    if not isinstance(template, Poses) or template.n_space != 2:
        return None
    return poses_from_layer_data(layer.data, layer.features, layer.metadata)


def labels_target(poses: Poses) -> Path:
    """Where :func:`save_labels` writes ``poses``: ``<name>.refined.<ext>`` beside the source.

    Raises
    ------
    ValueError
        If the poses are not 2D labels read from a DeepLabCut or SLEAP file.
    """
    if poses.n_space != 2:
        raise ValueError(f"{poses.name}: 3D poses are not labels; export them from the Lift tab")
    if not poses.source or poses.source_format not in SOURCE_FORMATS:
        raise ValueError(
            f"{poses.name}: not read from a DeepLabCut or SLEAP file "
            f"(source format {poses.source_format!r}); use File > Save Selected Layers"
        )
    return refined_path(poses.source)


def save_labels(layer) -> Path:
    """Write a 2D pose layer in its source's format beside the source; returns the path.

    The source file is never touched: the labels go to ``<name>.refined.<ext>`` (a ``.pkg.slp``
    keeps its embedded frames, see :mod:`napari_liftpose.io.sleap_writer`). Writes are atomic.

    Raises
    ------
    ValueError
        If ``layer`` is not a 2D pose layer read from DeepLabCut or SLEAP.
    PoseFileError
        If the file could not be written (the old one, if any, is kept).
    """
    poses = _label_poses(layer)
    if poses is None:
        raise ValueError(f"{layer.name}: not a 2D pose layer opened by napari-liftpose")
    target = labels_target(poses)
    return write_poses(poses, target, format=poses.source_format)


def _pose_layer_to_save(viewer):
    """The active layer if it holds 2D labels, else the only such layer, else None."""
    active = viewer.layers.selection.active
    if active is not None and _label_poses(active) is not None:
        return active
    candidates = [layer for layer in viewer.layers if _label_poses(layer) is not None]
    return candidates[0] if len(candidates) == 1 else None


def save_labels_action(viewer) -> Path | None:
    """Save the viewer's active 2D pose layer in its source's format and say where.

    Shows one notification: where the labels went (the source is kept), or what is wrong.
    Returns the path written, or None.
    """
    from napari.utils.notifications import show_error, show_info

    layer = _pose_layer_to_save(viewer)
    if layer is None:
        show_error("Save labels: select the 2D pose layer to save (read from DeepLabCut or SLEAP)")
        return None
    try:
        written = save_labels(layer)
    except (ValueError, PoseFileError, OSError) as err:
        show_error(f"Save labels: {err}")
        return None
    source = layer.metadata[POSES_KEY].source
    show_info(f"Labels of {layer.name} saved to {written} ({Path(source).name} is unchanged)")
    return written


def attach_save_labels(viewer, offer: bool = True):
    """Bind Save labels on ``viewer`` and return its dock button (a magicgui ``PushButton``).

    Binds :data:`SAVE_LABELS_KEY` through the viewer's public ``bind_key``, installs
    :func:`guard_saves`, and (``offer=True``) offers once to make the plugin napari's remembered
    reader. Works with a ``PublicOnlyProxy`` of the viewer.
    """
    from magicgui.widgets import PushButton

    key_name = SAVE_LABELS_KEY.replace("Control", "Ctrl").replace("-", "+")
    button = PushButton(text=f"Save labels ({key_name})")
    button.tooltip = (
        "Write the selected 2D pose layer in its source's format as <name>.refined.<ext> "
        "beside the source (the source is never changed)"
    )
    button.changed.connect(lambda: save_labels_action(viewer))
    viewer.bind_key(SAVE_LABELS_KEY, lambda v: save_labels_action(viewer), overwrite=True)
    guard_saves(viewer)
    if offer:
        offer_reader()
    return button


# --- the guard on napari's own save --------------------------------------------------------------


def _foreign_writes(paths: list[str]) -> list[str]:
    """The written files that no DeepLabCut/SLEAP reader takes (napari's CSV, an SVG...)."""
    foreign = []
    for path in paths:
        try:
            fmt = detect_format(path) if Path(path).is_file() else None
        except (PoseFileError, OSError, ValueError):
            fmt = None
        if fmt not in SOURCE_FORMATS:
            foreign.append(str(path))
    return foreign


def guard_saves(viewer) -> None:
    """Warn when File > Save (or ``viewer.layers.save``) writes DLC/SLEAP labels in a foreign format.

    napari 0.9 has no save event, so this wraps the viewer's public ``layers.save`` (the method
    napari's save dialogs call); the wrapped call is unchanged. After it, if a layer read from
    DeepLabCut or SLEAP was among those saved and a written file is not in a DLC/SLEAP format,
    one warning names the file and the right path (Save labels). Installing twice is a no-op.
    """
    layers = viewer.layers
    original = layers.save
    if getattr(original, _GUARD_MARK, False):
        return

    def save(path, *args, **kwargs):
        selected = kwargs.get("selected", False)
        chosen = [layer for layer in layers if not selected or layer in layers.selection]
        labels = [layer for layer in chosen if _label_poses(layer) is not None]
        written = original(path, *args, **kwargs)
        if labels and written:
            _warn_foreign(labels, list(written))
        return written

    setattr(save, _GUARD_MARK, True)
    save.__doc__ = original.__doc__
    layers.save = save


def _warn_foreign(labels: list, written: list[str]) -> None:
    from napari.utils.notifications import show_warning

    foreign = _foreign_writes(written)
    if not foreign:
        return
    names = ", ".join(
        f"{layer.name} ({SOURCE_FORMATS[layer.metadata[POSES_KEY].source_format]})"
        for layer in labels
    )
    key_name = SAVE_LABELS_KEY.replace("Control", "Ctrl").replace("-", "+")
    show_warning(
        f"{', '.join(foreign)} was written by a writer that is not napari-liftpose's, not in the "
        f"labels' format: {names}. Use Save labels ({key_name}) in the LiftPose dock to write "
        "<name>.refined.<ext> in the source's format."
    )


# --- napari's remembered reader ------------------------------------------------------------------


def reader_remembered() -> bool:
    """True if napari's reader preference maps every :data:`READER_PATTERNS` to this plugin."""
    from napari.settings import get_settings

    prefs = get_settings().plugins.extension2reader
    return all(prefs.get(pattern) == PLUGIN for pattern in READER_PATTERNS)


def remember_reader() -> None:
    """Make this plugin napari's remembered reader for ``*.slp``, ``*.h5`` and ``*.csv``.

    Uses napari's own preference (``settings.plugins.extension2reader``, shown and editable in
    Preferences > Plugins): File > Open and ``viewer.open(path)`` then no longer ask
    "Choose reader". napari's own CSV reader stays one click away in File > Open with Plugin.
    """
    from napari.settings import get_settings

    settings = get_settings().plugins
    settings.extension2reader = {
        **settings.extension2reader,
        **dict.fromkeys(READER_PATTERNS, PLUGIN),
    }


def _offer_record() -> Path | None:
    """The file that records that the offer was made (beside napari's settings), or None."""
    from napari.settings import get_settings

    override = os.environ.get("NAPARI_LIFTPOSE_STATE")
    if override:
        return Path(override)
    config = get_settings().config_path
    return Path(config).parent / "napari-liftpose-state.json" if config else None


_offered_in_session = False


def _offered() -> bool:
    record = _offer_record()
    if record is None:
        return _offered_in_session
    if not record.is_file():
        return False
    try:
        return bool(json.loads(record.read_text()).get("reader_offered", False))
    except (OSError, ValueError):
        return _offered_in_session


def _mark_offered() -> None:
    global _offered_in_session
    _offered_in_session = True
    record = _offer_record()
    if record is None:
        return
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"reader_offered": True}))
    except OSError:
        pass  # offered again next session: harmless


def offer_reader(on_answer: Callable[[bool], None] | None = None) -> bool:
    """Offer once (per napari settings folder) to make the plugin the remembered reader.

    Shows an info notification with an "Always open with LiftPose" button (it calls
    :func:`remember_reader`). Nothing is shown when the preference is already set or the offer
    was made before. Returns True if the offer was shown now.
    """
    from napari.utils.notifications import Notification, notification_manager

    if reader_remembered() or _offered():
        return False
    _mark_offered()

    def accept(_notification=None) -> None:
        remember_reader()
        if on_answer is not None:
            on_answer(True)

    notification_manager.dispatch(
        Notification(
            "napari asks which reader to use for .slp/.h5/.csv each time. Make napari-liftpose "
            "the remembered reader for them? (Preferences > Plugins can change it back.)",
            severity="info",
            actions=[("Always open with LiftPose", accept)],
        )
    )
    return True
