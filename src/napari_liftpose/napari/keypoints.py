"""Keypoint-safe editing of a 2D pose Points layer: a chooser decides what a new point is.

napari gives a point added in add mode the features of whatever point was selected last, so a
re-placed ``Nose`` could silently become a second ``TailTip``. :class:`KeypointEditor` takes over
the layer's ``add`` (as napari-deeplabcut's keypoint controls do): a new point is the chooser's
keypoint of the chooser's individual, in the frame it is placed in. Placing a keypoint that this
frame already has for that individual is refused with a notification (the existing point is
selected, so that it can be dragged or deleted); nothing is overwritten.

Every edit (add, move, delete) marks the point ``edited``; a placed or moved point gets confidence
:data:`~napari_liftpose.napari.convert.USER_CONFIDENCE` (1, as sleap-io reads SLEAP user
instances; movement reads those as NaN). napari 0.9 has no undo for Points layers, so the editor
keeps its own: :meth:`KeypointEditor.undo` / :meth:`KeypointEditor.redo` (Ctrl+Z, Ctrl+Shift+Z).

Keys, on the layer: Down / Up = next / previous keypoint, Shift+Down / Shift+Up = next / previous
individual. napari's Points layer already uses 1-5 (modes, delete), so numbers are not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from napari_liftpose.napari.convert import POSES_KEY, USER_CONFIDENCE, palette
from napari_liftpose.poses import Poses

__all__ = ["KeypointEditor", "keypoint_chooser", "KEYS"]

#: Key bindings the editor puts on the layer: key -> editor method name.
KEYS = {
    "Down": "next_keypoint",
    "Up": "previous_keypoint",
    "Shift-Down": "next_individual",
    "Shift-Up": "previous_individual",
    "Control-Z": "undo",
    "Control-Shift-Z": "redo",
}

Key = tuple[int, str, str]  # (frame, individual, keypoint): one point of the poses


@dataclass
class _Row:
    """One layer row as it was: its point, position (layer order) and features."""

    key: Key
    position: np.ndarray
    features: dict


@dataclass
class _Edit:
    """One undoable edit: rows as they were before it and as they are after it."""

    before: list[_Row] = field(default_factory=list)
    after: list[_Row] = field(default_factory=list)


class KeypointEditor:
    """Keypoint chooser, duplicate guard, edit flags and undo for one pose Points layer.

    Parameters
    ----------
    layer : napari.layers.Points
        A 2D tracks layer opened by this plugin (``metadata["poses"]`` holds its poses).
    advance : bool
        After a point is placed, choose the next keypoint this frame lacks (as DeepLabCut's
        sequential labelling does).

    Raises
    ------
    ValueError
        If the layer was not made by napari-liftpose.
    """

    def __init__(self, layer, advance: bool = True):
        poses = layer.metadata.get(POSES_KEY)
        if not isinstance(poses, Poses):
            raise ValueError(f"{layer.name}: not a pose layer opened by napari-liftpose")
        self.layer = layer
        self.poses: Poses = poses
        self.advance = advance
        self.keypoint: str = poses.keypoints[0]
        self.individual: str = poses.individuals[0]
        self._undo: list[_Edit] = []
        self._redo: list[_Edit] = []
        self._busy = False  # our own data changes are not recorded as user edits
        self._pending: list[_Row] = []  # rows about to be removed (between removing and removed)
        self._last = np.array(layer.data, copy=True)  # positions before a drag
        self._listeners: list = []  # called with no argument after every change
        self._original_add = layer.add
        layer.add = self.add  # napari's add mode calls layer.add(coords)
        layer.events.data.connect(self._on_data)
        for key, name in KEYS.items():
            layer.bind_key(key, self._key_handler(name), overwrite=True)

    # -- the chooser -----------------------------------------------------------------------
    def choose(self, keypoint: str | None = None, individual: str | None = None) -> None:
        """Make ``keypoint`` (and/or ``individual``) what the next new point is."""
        if keypoint is not None:
            if keypoint not in self.poses.keypoints:
                raise ValueError(f"{self.layer.name}: no keypoint {keypoint!r}")
            self.keypoint = keypoint
        if individual is not None:
            if individual not in self.poses.individuals:
                raise ValueError(f"{self.layer.name}: no individual {individual!r}")
            self.individual = individual
        self._changed()

    def next_keypoint(self, step: int = 1) -> str:
        """Choose the keypoint ``step`` places on (wrapping); returns it."""
        names = self.poses.keypoints
        self.choose(keypoint=names[(names.index(self.keypoint) + step) % len(names)])
        return self.keypoint

    def previous_keypoint(self) -> str:
        """Choose the keypoint before the current one (wrapping); returns it."""
        return self.next_keypoint(-1)

    def next_individual(self, step: int = 1) -> str:
        """Choose the individual ``step`` places on (wrapping); returns it."""
        names = self.poses.individuals
        self.choose(individual=names[(names.index(self.individual) + step) % len(names)])
        return self.individual

    def previous_individual(self) -> str:
        """Choose the individual before the current one (wrapping); returns it."""
        return self.next_individual(-1)

    def missing(self, frame: int, individual: str | None = None) -> list[str]:
        """Keypoints of ``individual`` (the chosen one by default) with no point in ``frame``."""
        present = set(self._keypoints_in(frame, individual or self.individual))
        return [k for k in self.poses.keypoints if k not in present]

    # -- adding ----------------------------------------------------------------------------
    def add(self, coords) -> None:
        """Place the chosen keypoint at ``coords`` (layer order ``t, y, x``), unless it is there.

        This replaces the layer's own ``add``: napari's add mode calls it for every click.
        A refusal shows a warning and selects the point that is already there.
        """
        rows = np.atleast_2d(np.asarray(coords, dtype=float))
        placed = []
        for row in rows:
            key = (int(round(row[0])), self.individual, self.keypoint)
            existing = self._find(key)
            if existing is not None:
                self._refuse(key, existing)
                return
            self._append([_Row(key, row, self._user_features())], select=True)
            placed.append(_Row(key, row.copy(), self._user_features()))
        if placed:
            self._record(_Edit(after=placed))
            if self.advance:
                self._advance(placed[-1].key[0])

    def _refuse(self, key: Key, existing: int) -> None:
        from napari.utils.notifications import show_warning

        frame, individual, keypoint = key
        who = f" of {individual}" if self.poses.n_individuals > 1 else ""
        show_warning(
            f"{keypoint}{who} is already placed in frame {frame}: drag it, or delete it "
            "first (it is selected now). Choose another keypoint to add a new point."
        )
        self.layer.selected_data = {existing}

    def _advance(self, frame: int) -> None:
        missing = self.missing(frame)
        if not missing:
            return
        names = self.poses.keypoints
        start = names.index(self.keypoint)
        later = [k for k in missing if names.index(k) > start]
        self.choose(keypoint=(later or missing)[0])

    # -- undo ------------------------------------------------------------------------------
    def undo(self) -> bool:
        """Undo the last edit (add, move or delete); False when there is nothing to undo."""
        if not self._undo:
            return False
        edit = self._undo.pop()
        self._apply(edit.after, edit.before)
        self._redo.append(edit)
        self._changed()
        return True

    def redo(self) -> bool:
        """Redo the last undone edit; False when there is nothing to redo."""
        if not self._redo:
            return False
        edit = self._redo.pop()
        self._apply(edit.before, edit.after)
        self._undo.append(edit)
        self._changed()
        return True

    @property
    def can_undo(self) -> bool:
        """True when there is an edit to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """True when there is an undone edit to redo."""
        return bool(self._redo)

    def _apply(self, remove: list[_Row], restore: list[_Row]) -> None:
        """Replace the rows ``remove`` stands for by the rows ``restore`` (by point key)."""
        moved = {r.key for r in remove} & {r.key for r in restore}
        gone = [self._find(r.key) for r in remove if r.key not in moved]
        gone = [row for row in gone if row is not None]
        if gone:
            # napari re-selects the remaining points before it says that rows went: the
            # bones would read a stale row index then
            self.layer.selected_data = set()
            self._busy = True
            try:
                self.layer.remove(gone)
            finally:
                self._busy = False
        changed = []
        for row in restore:
            if row.key in moved:
                index = self._find(row.key)
                if index is not None:
                    self._set_row(index, row)
                    changed.append(index)
        if changed:
            self._emit_changed(changed)
        self._append([r for r in restore if r.key not in moved], select=False)
        self._last = np.array(self.layer.data, copy=True)

    def _record(self, edit: _Edit) -> None:
        self._undo.append(edit)
        self._redo.clear()
        self._changed()

    # -- what the user does to the layer -----------------------------------------------------
    def _on_data(self, event) -> None:
        if self._busy:
            return
        action = str(getattr(event, "action", ""))
        indices = [int(i) for i in (getattr(event, "data_indices", None) or ())]
        if action == "removing":
            self._pending = [self._row(i) for i in indices if 0 <= i < len(self.layer.data)]
        elif action == "removed":
            if self._pending:
                self._record(_Edit(before=self._pending))
            self._pending = []
            self._last = np.array(self.layer.data, copy=True)
        elif action == "added":
            self._last = np.array(self.layer.data, copy=True)
        elif action == "changed":
            self._on_moved(indices)

    def _on_moved(self, indices: list[int]) -> None:
        data = self.layer.data
        if len(data) != len(self._last):  # rows came or went without an event (paste)
            self._last = np.array(data, copy=True)
            return
        rows = np.asarray(indices or range(len(data)), dtype=np.int64)
        rows = rows[(rows >= 0) & (rows < len(data))]
        rows = rows[(data[rows] != self._last[rows]).any(axis=1)]
        if len(rows) == 0:
            return
        before = []
        for r in rows:
            row = self._row(int(r))
            row.position = self._last[r].astype(float)
            before.append(row)
        self._set_user_features(rows)
        after = [self._row(int(r)) for r in rows]
        self._last[rows] = data[rows]
        self._record(_Edit(before=before, after=after))

    # -- rows ------------------------------------------------------------------------------
    def _keys(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        features = self.layer.features
        frames = np.rint(np.asarray(self.layer.data)[:, 0]).astype(np.int64)
        return (
            frames,
            features["individual"].astype(str).to_numpy(),
            features["keypoint"].astype(str).to_numpy(),
        )

    def _find(self, key: Key) -> int | None:
        """The layer row of point ``key``, or None."""
        frames, individuals, keypoints = self._keys()
        rows = np.flatnonzero((frames == key[0]) & (individuals == key[1]) & (keypoints == key[2]))
        return int(rows[0]) if len(rows) else None

    def _keypoints_in(self, frame: int, individual: str) -> list[str]:
        frames, individuals, keypoints = self._keys()
        return list(keypoints[(frames == frame) & (individuals == individual)])

    def _row(self, index: int) -> _Row:
        features = self.layer.features.iloc[index]
        key = (
            int(round(float(self.layer.data[index, 0]))),
            *map(str, features[["individual", "keypoint"]]),
        )
        return _Row(key, np.array(self.layer.data[index], dtype=float), features.to_dict())

    def _user_features(self) -> dict:
        features = self.layer.feature_defaults.iloc[0].to_dict()
        features.update(
            individual=self.individual,
            keypoint=self.keypoint,
            confidence=USER_CONFIDENCE,
            edited=True,
        )
        return features

    def _set_user_features(self, rows) -> None:
        features = self.layer.features
        if "edited" in features:
            features.loc[rows, "edited"] = True
        if "confidence" in features:
            features.loc[rows, "confidence"] = USER_CONFIDENCE

    def _set_row(self, index: int, row: _Row) -> None:
        self.layer.data[index] = row.position
        features = self.layer.features
        for name, value in row.features.items():
            if name in features and name not in ("individual", "keypoint"):
                features.loc[index, name] = value

    def _emit_changed(self, rows: list[int]) -> None:
        """Say that ``rows`` moved, as napari does after a drag (bones and live re-lift follow)."""
        self.layer.refresh()
        self._busy = True
        try:
            self.layer.events.data(
                value=self.layer.data,
                action="changed",
                data_indices=tuple(rows),
                vertex_indices=((),),
            )
        finally:
            self._busy = False

    def _color(self, features: dict) -> np.ndarray:
        if self.poses.n_individuals > 1:
            return palette(self.poses.n_individuals)[
                self.poses.individuals.index(str(features["individual"]))
            ]
        return palette(self.poses.n_keypoints)[
            self.poses.keypoints.index(str(features["keypoint"]))
        ]

    def _append(self, rows: list[_Row], select: bool) -> None:
        """Append ``rows`` with their features and colour through napari's own ``add``."""
        layer = self.layer
        for row in rows:
            layer.selected_data = set()  # current_* setters would repaint selected points
            defaults = layer.feature_defaults.copy()
            for name, value in row.features.items():
                if name in defaults:
                    if isinstance(defaults[name].dtype, pd.CategoricalDtype):
                        value = pd.Categorical([value], categories=defaults[name].cat.categories)
                    defaults[name] = value
            layer.feature_defaults = defaults
            layer.current_face_color = self._color(row.features)
            self._busy = not select  # a restored row is not a new user edit
            try:
                self._original_add(row.position)
            finally:
                self._busy = False
        if not select and rows:
            layer.selected_data = set()
        self._last = np.array(layer.data, copy=True)

    # -- plumbing --------------------------------------------------------------------------
    def _key_handler(self, name: str):
        def handler(layer) -> None:
            getattr(self, name)()

        handler.__doc__ = getattr(type(self), name).__doc__
        return handler

    def on_change(self, callback) -> None:
        """Call ``callback()`` after every choice or edit (the chooser widget refreshes)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    def detach(self) -> None:
        """Give the layer back its own ``add``, events and keys."""
        if "add" in vars(self.layer):
            del self.layer.add
        self.layer.events.data.disconnect(self._on_data)
        for key in KEYS:
            self.layer.bind_key(key, None, overwrite=True)
        self._listeners.clear()


def keypoint_chooser(viewer, layer, advance: bool = True):
    """The keypoint chooser of ``layer``: dropdowns, next / previous, undo / redo, a status line.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer showing ``layer`` (its time slider gives the frame the status line reports).
    layer : napari.layers.Points
        A 2D tracks layer opened by napari-liftpose.
    advance : bool
        After a point is placed, choose the next keypoint the frame lacks.

    Returns
    -------
    magicgui.widgets.Container
        The chooser; its ``editor`` attribute is the :class:`KeypointEditor` (scripting, undo),
        its ``detach()`` gives the layer back napari's own editing.
    """
    from magicgui.widgets import ComboBox, Container, Label, PushButton

    from napari_liftpose.napari.convert import time_point

    editor = KeypointEditor(layer, advance=advance)
    poses = editor.poses
    keypoint = ComboBox(label="new point is", choices=list(poses.keypoints), value=editor.keypoint)
    individual = ComboBox(
        label="of",
        choices=list(poses.individuals),
        value=editor.individual,
        visible=poses.n_individuals > 1,
    )
    previous = PushButton(text="◀ previous (Up)")
    following = PushButton(text="next (Down) ▶")
    undo = PushButton(text="Undo (Ctrl+Z)")
    redo = PushButton(text="Redo (Ctrl+Shift+Z)")
    status = Label(value="")
    status.native.setWordWrap(True)
    container = Container(
        widgets=[
            keypoint,
            individual,
            Container(widgets=[previous, following], layout="horizontal", labels=False),
            Container(widgets=[undo, redo], layout="horizontal", labels=False),
            status,
        ],
        labels=True,
    )
    container.editor = editor

    def refresh(*_) -> None:
        if keypoint.value != editor.keypoint:
            keypoint.value = editor.keypoint
        if individual.value != editor.individual:
            individual.value = editor.individual
        frame = time_point(viewer.dims)
        missing = editor.missing(frame)
        placed = "missing" if editor.keypoint in missing else "placed (adding it is refused)"
        status.value = (
            f"frame {frame}: {editor.keypoint} is {placed}; "
            f"{len(missing)} of {poses.n_keypoints} keypoints missing"
        )
        undo.enabled = editor.can_undo
        redo.enabled = editor.can_redo

    keypoint.changed.connect(lambda value: editor.choose(keypoint=value))
    individual.changed.connect(lambda value: editor.choose(individual=value))
    previous.changed.connect(lambda: editor.previous_keypoint())
    following.changed.connect(lambda: editor.next_keypoint())
    undo.changed.connect(lambda: editor.undo())
    redo.changed.connect(lambda: editor.redo())
    editor.on_change(refresh)
    viewer.dims.events.current_step.connect(refresh)
    layer.events.data.connect(refresh)

    def detach() -> None:
        """Give the layer back napari's own editing and stop following the viewer."""
        editor.detach()
        viewer.dims.events.current_step.disconnect(refresh)
        layer.events.data.disconnect(refresh)

    container.detach = detach
    refresh()
    return container
