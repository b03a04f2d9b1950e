"""3D training libraries made from a body model, for :func:`~napari_liftpose.lifting.train`.

A lab with no 3D library trains a lifter on poses sampled from a body model
(:func:`body_library`). Three things make that library fit the lab:

* **its skeleton**: :func:`restrict_to_mapping` keeps only the body-model keypoints the lab's
  keypoints map onto (:func:`~napari_liftpose.bodies.mapping.map_keypoints`) and renames them to
  the lab's names, so the trained lifter lifts the lab's files directly (a 4-keypoint DLC
  open-field file: snout, leftear, rightear, tailbase);
* **its few real 3D frames**: :func:`mix_real_frames` scales the sampled poses to the real
  frames' size (so the lifter answers in the lab's units) and repeats the real frames until they
  are a set share of the training frames (default :data:`REAL_SHARE`);
* **a root the lab tracks**: :func:`choose_root`.

:func:`training_library` does all three. Everything here is numpy; it never imports torch.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_liftpose.bodies.mapping import KeypointMapping, map_keypoints, to_model_poses
from napari_liftpose.bodies.model import BodyModel, load_body_model
from napari_liftpose.bodies.sampler import sample_poses
from napari_liftpose.poses import Poses

__all__ = [
    "REAL_SHARE",
    "BodyLibrary",
    "body_library",
    "body_model_meta",
    "choose_root",
    "contracted_edges",
    "is_rodent",
    "mix_real_frames",
    "restrict_to_mapping",
    "training_library",
]

#: Default share of the training frames that a lab's real 3D frames make up after repetition.
#: A few hundred real frames beside 50k sampled ones would otherwise be 1 % of what the network
#: sees; a quarter keeps the real animal's proportions in charge while the sampled poses still
#: cover the behaviours and viewpoints the real frames lack.
REAL_SHARE = 0.25
#: Most copies of the real frames :func:`mix_real_frames` makes (a handful of frames is not
#: repeated into thousands).
MAX_REPEATS = 100


def body_library(
    model: BodyModel | str | Path,
    n_poses: int,
    *,
    seed: int = 0,
    seq_len: int = 64,
    fps: float | None = None,
    behaviours: Sequence[str] | None = None,
) -> Poses:
    """A 3D pose library sampled from a body model, ready for ``train``.

    Parameters
    ----------
    model : BodyModel, str or Path
        The body model, or a shipped name (``"mouse"``, ``"fly"``) or a TOML path.
    n_poses : int
        Poses wanted (rounded up to whole sequences).
    seed : int
        The same seed gives the same library.
    seq_len : int
        Frames per sequence (one individual per sequence).
    fps : float, optional
        Frame rate; the model's own if omitted.
    behaviours : sequence of str, optional
        Behaviours to draw from (default: the model's, with its weights).

    Returns
    -------
    Poses
        ``(seq_len, n_sequences, keypoints, 3)`` in the model's names, units and z-up axes;
        ``source`` is ``"body model <name> (seed <seed>)"``.
    """
    model = _model(model)
    library = sample_poses(
        model, n_poses, seq_len=seq_len, fps=fps, seed=int(seed), behaviours=behaviours
    )
    return library.copy(source=f"body model {model.name} (seed {int(seed)})")


def _model(model: BodyModel | str | Path) -> BodyModel:
    return model if isinstance(model, BodyModel) else load_body_model(model)


def contracted_edges(
    names: Sequence[str], edges: np.ndarray | Sequence[Sequence[int]], keep: Sequence[str]
) -> np.ndarray:
    """The skeleton on a subset of its keypoints, still a tree where the skeleton is one.

    The skeleton's spanning tree is pruned to the part that joins the kept keypoints, then
    every dropped keypoint is removed, its neighbours joined in a star around one of them (a
    kept one first, in ``keep``'s order). A dropped keypoint between two kept ones becomes a
    bone between them; the mouse's head, joining nose and ears, becomes nose-ear bones.

    Parameters
    ----------
    names : sequence of str
        The full skeleton's keypoints.
    edges : array-like of int
        ``(bones, 2)`` indices into ``names``.
    keep : sequence of str
        The kept keypoints (a subset of ``names``), in the order the result indexes.

    Returns
    -------
    np.ndarray
        ``(bones, 2)`` int64 indices into ``keep``, smaller index first, sorted.
    """
    names = list(names)
    index = {n: i for i, n in enumerate(names)}
    kept = {index[n]: i for i, n in enumerate(keep)}
    graph: dict[int, set[int]] = {i: set() for i in range(len(names))}
    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2):
        graph[int(a)].add(int(b))
        graph[int(b)].add(int(a))
    tree: dict[int, set[int]] = {i: set() for i in graph}
    seen: set[int] = set()
    for start in [*kept, *graph]:  # breadth-first spanning tree, from the kept keypoints
        if start in seen:
            continue
        seen.add(start)
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in sorted(graph[node]):
                if nxt not in seen:
                    seen.add(nxt)
                    tree[node].add(nxt)
                    tree[nxt].add(node)
                    queue.append(nxt)
    leaves = deque(n for n in tree if n not in kept and len(tree[n]) <= 1)
    while leaves:  # prune dropped leaves: what is left joins kept keypoints only
        node = leaves.popleft()
        if node not in tree:
            continue
        for other in tree.pop(node):
            tree[other].discard(node)
            if other not in kept and len(tree[other]) <= 1:
                leaves.append(other)
    for node in sorted(n for n in tree if n not in kept):
        around = sorted(tree.pop(node), key=lambda n: (n not in kept, kept.get(n, 0), n))
        for other in around:
            tree[other].discard(node)
        for other in around[1:]:
            tree[around[0]].add(other)
            tree[other].add(around[0])
    pairs = {(min(kept[a], kept[b]), max(kept[a], kept[b])) for a in tree for b in tree[a]}
    return np.asarray(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def choose_root(model: BodyModel, names: Sequence[str], prefer: Sequence[str] = ()) -> str:
    """The root for a lifter of body-model keypoints ``names``.

    The first of ``prefer`` that is in ``names``; else the model's own root if it is there;
    else the keypoint of ``names`` nearest to the model's root along the skeleton (ties: the
    model's keypoint order), i.e. the most central one.

    Raises
    ------
    ValueError
        If ``names`` is empty or names a keypoint the model does not have.
    """
    names = list(names)
    unknown = [n for n in names if n not in model.keypoints]
    if not names or unknown:
        raise ValueError(
            f"choose_root: expected keypoints of body model {model.name!r}, got {unknown or 'none'}"
        )
    for name in (*prefer, model.root):
        if name in names:
            return name
    hops = _hops(model, model.index(model.root))
    return min(names, key=lambda n: (hops[model.index(n)], model.index(n)))


def _hops(model: BodyModel, start: int) -> np.ndarray:
    """Skeleton distance (in bones) of every keypoint of ``model`` from ``start``."""
    n = len(model.keypoints)
    neighbours: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in model.edges:
        neighbours[int(a)].append(int(b))
        neighbours[int(b)].append(int(a))
    hops = np.full(n, n + 1)
    hops[start] = 0
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in neighbours[node]:
            if hops[nxt] > hops[node] + 1:
                hops[nxt] = hops[node] + 1
                queue.append(nxt)
    return hops


def mapped_user_edges(
    edges: np.ndarray | Sequence[Sequence[int]], mapping: KeypointMapping, kept: Sequence[str]
) -> np.ndarray:
    """The user's bones (indices into ``mapping.user_names``) as indices into ``kept``.

    Bones with an end not in ``kept`` (an unmapped keypoint) are dropped.
    """
    position = {u: i for i, u in enumerate(kept)}
    names = mapping.user_names
    return np.asarray(
        [
            (position[names[a]], position[names[b]])
            for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2)
            if names[a] in position and names[b] in position
        ],
        dtype=np.int64,
    ).reshape(-1, 2)


def restrict_to_mapping(
    library: Poses,
    mapping: KeypointMapping,
    edges: np.ndarray | Sequence[Sequence[int]] | None = None,
) -> Poses:
    """A body-model library on the user's mapped keypoints, named and ordered as the user's.

    Parameters
    ----------
    library : Poses
        3D poses with the body model's keypoint names (all mapped ones present).
    mapping : KeypointMapping
        From :func:`~napari_liftpose.bodies.mapping.map_keypoints` (user names -> model names).
    edges : array-like of int, optional
        The user's skeleton as indices into ``mapping.user_names`` (e.g. the 2D tracks' edges);
        bones with an unmapped end are dropped. Default: the library's skeleton contracted
        onto the mapped keypoints (:func:`contracted_edges`).

    Returns
    -------
    Poses
        Keypoints: the mapped user names in the user's order; ``metadata["mapping"]`` holds
        ``{user name: model name}``.

    Raises
    ------
    ValueError
        If nothing is mapped, or the library lacks a mapped body-model keypoint.
    """
    if not mapping.pairs:
        raise ValueError(f"no keypoint maps onto the body model: {mapping.describe()}")
    users = [u for u in mapping.user_names if u in mapping.pairs]
    models = [mapping.pairs[u] for u in users]
    missing = [m for m in models if m not in library.keypoints]
    if missing:
        raise ValueError(f"{library.name}: the library lacks the mapped keypoints {missing}")
    if edges is None:
        new_edges = contracted_edges(library.keypoints, library.edges, models)
    else:
        new_edges = mapped_user_edges(edges, mapping, users)
    subset = library.select_keypoints(models)
    return subset.copy(
        keypoints=users,
        edges=new_edges,
        metadata={**subset.metadata, "mapping": dict(zip(users, models, strict=True))},
    )


@dataclass
class MixReport:
    """What :func:`mix_real_frames` did.

    Attributes
    ----------
    real_frames : int
        Real frames with at least one finite keypoint (before repetition).
    repeats : int
        Copies of the real frames in the training list.
    share : float
        Real frames' share of all training frames after repetition.
    scale : float
        Factor the sampled poses were multiplied by to match the real frames' size.
    units : str
        Units of the mixed library (the real frames').
    """

    real_frames: int
    repeats: int
    share: float
    scale: float
    units: str

    def describe(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"{self.real_frames} real 3D frames, repeated {self.repeats}x: "
            f"{100 * self.share:.0f}% of the training frames; sampled poses scaled by "
            f"{self.scale:.4g} to the real frames' size ({self.units})"
        )


def _pose_sizes(coords: np.ndarray) -> np.ndarray:
    """Per pose the root-mean-square distance of its finite keypoints from their centroid."""
    flat = coords.reshape(-1, coords.shape[-2], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN poses: dropped below
        centre = np.nanmean(flat, axis=1, keepdims=True)
        size = np.sqrt(np.nanmean(np.sum((flat - centre) ** 2, axis=-1), axis=1))
    return size[np.isfinite(size) & (size > 0)]


def mix_real_frames(
    library: Poses,
    real: Sequence[Poses],
    *,
    share: float = REAL_SHARE,
    rescale: bool = True,
) -> tuple[list[Poses], MixReport]:
    """Add a lab's real 3D frames to a sampled library, weighted by repetition.

    Parameters
    ----------
    library : Poses
        The sampled 3D library.
    real : sequence of Poses
        Real 3D frames with the same keypoint names as ``library`` (a subset is fine: the
        missing ones are NaN), in z-up axes like the body model.
    share : float
        Wanted share of the real frames among all training frames, in (0, 1); the real frames
        are repeated ``round(share / (1 - share) * sampled / real)`` times (1 to
        :data:`MAX_REPEATS`).
    rescale : bool
        Scale the sampled poses so that their median pose size (root-mean-square distance from
        the centroid, on the keypoints the real frames have) equals the real frames': the
        lifter then answers in the real frames' units.

    Returns
    -------
    tuple
        ``([library, real copies...], MixReport)``: the list ``train`` takes.

    Raises
    ------
    ValueError
        If ``share`` is outside (0, 1), a real library is 2D, has keypoints the library does
        not, or has no finite 3D point.
    """
    if not 0 < share < 1:
        raise ValueError(f"share: expected a number in (0, 1), got {share!r}")
    reals = []
    for poses in real:
        if poses.n_space != 3:
            raise ValueError(f"{poses.name}: expected real 3D frames, got 2D poses")
        extra = [k for k in poses.keypoints if k not in library.keypoints]
        if extra:
            raise ValueError(
                f"{poses.name}: keypoints {extra} are not in the library "
                f"({list(library.keypoints)}); map them first"
            )
        full = _on_keypoints(poses, list(library.keypoints))
        if not np.isfinite(full.coords).all(-1).any():
            raise ValueError(f"{poses.name}: no finite 3D point to train on")
        reals.append(full)
    if not reals:
        return [library], MixReport(0, 0, 0.0, 1.0, library.units)
    n_real = int(sum(np.isfinite(p.coords).all(-1).any(-1).sum() for p in reals))
    n_sampled = library.n_frames * library.n_individuals
    scale = 1.0
    units = reals[0].units or library.units
    if rescale:
        seen = np.zeros(library.n_keypoints, dtype=bool)
        for p in reals:
            seen |= np.isfinite(p.coords).all(-1).any((0, 1))
        real_size = np.median(np.concatenate([_pose_sizes(p.coords[:, :, seen]) for p in reals]))
        sampled_size = np.median(_pose_sizes(library.coords[:, :, seen]))
        if math.isfinite(real_size) and real_size > 0 and sampled_size > 0:
            scale = float(real_size / sampled_size)
        library = library.copy(coords=library.coords * scale, units=units)
    repeats = int(np.clip(round(share / (1 - share) * n_sampled / n_real), 1, MAX_REPEATS))
    mixed = [library] + [r.copy(units=units) for r in reals] * repeats
    got = repeats * n_real / (repeats * n_real + n_sampled)
    return mixed, MixReport(n_real, repeats, float(got), scale, units)


def _on_keypoints(poses: Poses, names: list[str]) -> Poses:
    """``poses`` on keypoint list ``names`` (NaN where it lacks one), edges dropped."""
    frames, individuals = poses.coords.shape[:2]
    coords = np.full((frames, individuals, len(names), 3), np.nan)
    index = {n: i for i, n in enumerate(poses.keypoints)}
    for i, name in enumerate(names):
        if name in index:
            coords[:, :, i] = poses.coords[:, :, index[name]]
    return Poses(
        coords=coords,
        keypoints=names,
        individuals=list(poses.individuals),
        fps=poses.fps,
        units=poses.units,
        source=poses.source,
        source_format=poses.source_format,
        frame=poses.frame,
    )


@dataclass
class BodyLibrary:
    """A training library from a body model (what :func:`training_library` returns).

    Attributes
    ----------
    libraries : list of Poses
        What ``train`` takes: the sampled library, then the real frames' copies.
    roots : list of str
        The root to train with (``train(..., roots=roots)``).
    keypoints : list of str
        The lifter's keypoints: the user's mapped names, or the body model's.
    mapping : KeypointMapping or None
        The user's mapping, when the library was restricted to it.
    mix : MixReport or None
        How real frames were mixed in (None without any).
    body_model : str
        The body model's name.
    model : BodyModel or None
        The body model itself.
    notes : list of str
        Further lines for :meth:`describe`.
    """

    libraries: list[Poses]
    roots: list[str]
    keypoints: list[str]
    mapping: KeypointMapping | None = None
    mix: MixReport | None = None
    body_model: str = ""
    model: BodyModel | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Readable summary (the mapping, the root, the real frames)."""
        lib = self.libraries[0]
        parts = [
            f"{lib.n_frames * lib.n_individuals} poses sampled from body model "
            f"{self.body_model!r} on {len(self.keypoints)} keypoints, root {self.roots[0]!r}"
        ]
        if self.mapping is not None:
            parts.append(self.mapping.describe())
        if self.mix is not None and self.mix.repeats:
            parts.append(self.mix.describe())
        return "; ".join(parts + self.notes)


def training_library(
    model: BodyModel | str | Path,
    n_poses: int,
    *,
    user_keypoints: Sequence[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    user_edges: np.ndarray | Sequence[Sequence[int]] | None = None,
    real: Sequence[Poses] = (),
    real_share: float = REAL_SHARE,
    seed: int = 0,
    seq_len: int = 64,
    behaviours: Sequence[str] | None = None,
    prefer_roots: Sequence[str] = (),
) -> BodyLibrary:
    """Everything ``train`` needs to train from a body model, for a lab's skeleton.

    Parameters
    ----------
    model : BodyModel, str or Path
        The body model.
    n_poses : int
        Poses to sample.
    user_keypoints : sequence of str, optional
        The lab's keypoint names (e.g. its 2D tracks'): train on the mapped subset only, named
        as the lab names them. Default: all of the body model's keypoints.
    overrides : mapping, optional
        ``{user name: model name or ""}`` (a mapping file's contents).
    user_edges : array-like of int, optional
        The lab's skeleton (indices into ``user_keypoints``); default the contracted model's.
    real : sequence of Poses
        The lab's real 3D frames (keypoints named as the lab's or as the body model's; they are
        mapped the same way), z up.
    real_share : float
        See :func:`mix_real_frames`.
    seed, seq_len, behaviours
        See :func:`body_library`.
    prefer_roots : sequence of str
        Body-model keypoints to root on when mapped (see :func:`choose_root`).

    Returns
    -------
    BodyLibrary

    Raises
    ------
    ValueError
        If nothing maps onto the model, or a real library has no keypoint of the model.
    """
    model = _model(model)
    library = body_library(model, n_poses, seed=seed, seq_len=seq_len, behaviours=behaviours)
    mapping = None
    keep = list(model.keypoints)
    if user_keypoints is not None:
        mapping = map_keypoints(
            user_keypoints, model.keypoints, aliases=model.aliases, overrides=overrides
        )
        if not mapping.pairs:
            raise ValueError(
                f"no keypoint maps onto body model {model.name!r}: {mapping.describe()}"
            )
        keep = [mapping.pairs[u] for u in mapping.user_names if u in mapping.pairs]
    real_model = [_real_on_model(p, model, mapping, overrides) for p in real]
    libraries, mix = mix_real_frames(library, real_model, share=real_share)
    root_model = choose_root(model, keep, prefer_roots)
    if mapping is not None:
        libraries = [restrict_to_mapping(lib, mapping, user_edges) for lib in libraries]
        user_of = {m: u for u, m in mapping.pairs.items()}
        root, names = user_of[root_model], list(libraries[0].keypoints)
    else:
        root, names = root_model, list(model.keypoints)
    return BodyLibrary(libraries, [root], names, mapping, mix if real else None, model.name, model)


def _real_on_model(
    poses: Poses,
    model: BodyModel,
    mapping: KeypointMapping | None,
    overrides: Mapping[str, str] | None,
) -> Poses:
    """Real 3D frames renamed onto the body model's keypoints (only the mapped ones)."""
    if all(k in model.keypoints for k in poses.keypoints):
        return poses
    if mapping is not None and all(k in mapping.user_names for k in poses.keypoints):
        real_map = map_keypoints(
            poses.keypoints,
            model.keypoints,
            overrides={u: m for u, m in mapping.pairs.items() if u in poses.keypoints},
        )
    else:
        real_map = map_keypoints(
            poses.keypoints, model.keypoints, aliases=model.aliases, overrides=overrides
        )
    if not real_map.pairs:
        raise ValueError(
            f"{poses.name}: no keypoint of the real 3D frames maps onto body model "
            f"{model.name!r}: {real_map.describe()}"
        )
    return to_model_poses(poses, real_map)


#: Words of a body model's name or species that make it a rodent (top-view cameras by default).
_RODENT_WORDS = ("mouse", "mice", "rat", "rattus", "mus ", "rodent")


def is_rodent(model: BodyModel) -> bool:
    """Whether ``model`` is a mouse or rat (by its name or species), filmed from above by default."""
    text = f"{model.name} {model.species}".lower()
    return any(word in text for word in _RODENT_WORDS)


def body_model_meta(model: BodyModel) -> dict:
    """What a lifter file records about the body model it was trained from.

    ``{"name", "keypoints", "aliases", "root"}``: enough to map a lab's keypoint names onto the
    lifter without the body model's file (:func:`~napari_liftpose.bodies.builtin.lifter_for_tracks`).
    """
    return {
        "name": model.name,
        "keypoints": list(model.keypoints),
        "aliases": {k: list(v) for k, v in model.aliases.items()},
        "root": model.root,
    }
