"""Turn a lifter of a body model's full skeleton into a lifter of a lab's skeleton, exactly.

A body-model lifter (e.g. a built-in one) is trained with random subsets of its keypoints
hidden (``TrainConfig.subset_dropout``), so it already lifts a pose that shows only the
keypoints a lab tracks. :func:`adapt_lifter` makes that a lifter *of the lab's skeleton*
without retraining: it keeps the mapped keypoints (renamed to the lab's names) and drops the
model-only ones.

Why this is exact: a missing keypoint enters the network as zeros (its z-scored ``x, y`` are
0 and its confidence is 0, :func:`~napari_liftpose.lifting.normalization.model_inputs`), so the
first layer's input columns of the dropped keypoints (the MLP's first ``Linear``, the temporal
model's ``expand`` convolution) never contribute, and removing them changes nothing. Each
output keypoint is its own rows of the last layer, so dropping keypoints removes rows. The
normalisation statistics, the per-joint uncertainty calibration, the roots and target sets are
sliced the same way. The result is an ordinary :class:`~napari_liftpose.lifting.Lifter`, so the
CLI, the widget, live re-lifting, uncertainty and suspicion work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_liftpose.bodies.library import contracted_edges, mapped_user_edges
from napari_liftpose.bodies.mapping import KeypointMapping, to_user_poses
from napari_liftpose.lifting.checkpoint import load_checkpoint, save_checkpoint
from napari_liftpose.lifting.inference import Lifter
from napari_liftpose.lifting.models import build_model
from napari_liftpose.lifting.normalization import Normalization
from napari_liftpose.poses import Poses

__all__ = ["AdaptError", "adapt_lifter", "record_body_model", "with_unmapped"]

_CALIBRATION_ARRAYS = ("floor", "visible", "hidden", "rootless")


class AdaptError(ValueError):
    """A lifter cannot be adapted to a skeleton (e.g. its root is not mapped)."""


def adapt_lifter(
    lifter: Lifter,
    mapping: KeypointMapping,
    *,
    edges: np.ndarray | Sequence[Sequence[int]] | None = None,
    library: Poses | None = None,
) -> Lifter:
    """A lifter of the user's mapped keypoints, made from a lifter of the body model's.

    Parameters
    ----------
    lifter : Lifter
        A lifter whose keypoints are the body model's names (``mapping.model_names`` or a
        superset of the mapped ones).
    mapping : KeypointMapping
        User names -> the lifter's names
        (:func:`~napari_liftpose.bodies.mapping.map_keypoints`).
    edges : array-like of int, optional
        The user's skeleton (indices into ``mapping.user_names``, e.g. their tracks' edges);
        bones with an unmapped end are dropped. Default: the lifter's skeleton contracted onto
        the mapped keypoints.
    library : Poses, optional
        3D poses in the lifter's keypoint names (e.g. sampled from its body model): the bone
        statistics that suspicion scores against are recomputed on the kept keypoints from it.
        Without one they are dropped (bone lengths relative to pose size change with the
        keypoint set), and suspicion judges bones against the file's own spread.

    Returns
    -------
    Lifter
        Keypoints: the mapped user names in the user's order. Its outputs on the user's 2D are
        the full lifter's outputs on the same 2D with the model-only keypoints missing.
        ``meta["adapted"]`` records the mapping and what was dropped.

    Raises
    ------
    AdaptError
        If fewer than two keypoints are mapped, a mapped name is not one of the lifter's keypoints, or the
        lifter's root (or a root whose keypoints are kept) is not mapped: the message names
        the root and says to map one of the user's keypoints to it.
    """
    names = list(lifter.keypoints)
    kept = _kept(lifter, mapping)
    old = [names.index(m) for _, m in kept]
    layout = lifter.layout
    roots, target_sets = _new_layout(lifter, mapping, set(old))
    where = {o: i for i, o in enumerate(old)}

    old_targets = list(layout.targets)
    new_root = where[layout.roots[0]]
    new_targets = [i for i in range(len(old)) if i != new_root]
    rows = [old_targets.index(old[i]) for i in new_targets]

    arch = dict(lifter.meta["architecture"])
    state = {k: v.detach().cpu().clone() for k, v in lifter.model.state_dict().items()}
    per_kp = 3 if arch["type"] == "temporal" or arch.get("inputs", "xy") == "xyc" else 2
    first = "expand.weight" if arch["type"] == "temporal" else "inp.0.weight"
    last = "head" if arch["type"] == "temporal" else "out"
    columns = [k * per_kp + c for k in old for c in range(per_kp)]
    state[first] = state[first][:, columns].contiguous()
    out_rows = [3 * r + c for r in rows for c in range(3)]
    state[f"{last}.weight"] = state[f"{last}.weight"][out_rows].contiguous()
    state[f"{last}.bias"] = state[f"{last}.bias"][out_rows].contiguous()
    model = build_model(arch, len(old), 3 * (len(old) - 1))
    model.load_state_dict(state, strict=True)

    norm = lifter.norm
    new_norm = Normalization(
        np.array(norm.input_mean[old]),
        np.array(norm.input_std[old]),
        np.array(norm.target_mean[rows]),
        np.array(norm.target_std[rows]),
    )
    meta = _new_meta(lifter, kept, mapping, roots, target_sets, edges, library)
    return Lifter(model, meta, new_norm, lifter.device, lifter.path)


def _kept(lifter: Lifter, mapping: KeypointMapping) -> list[tuple[str, str]]:
    """``(user name, lifter name)`` of the mapped keypoints, in the user's order."""
    if not mapping.pairs:
        raise AdaptError(f"no keypoint maps onto the lifter's: {mapping.describe()}")
    unknown = [m for m in mapping.pairs.values() if m not in lifter.keypoints]
    if unknown:
        raise AdaptError(
            f"the mapping names {unknown}, which are not keypoints of the lifter "
            f"({_lifter_name(lifter)}); expected names among {lifter.keypoints}"
        )
    kept = [(u, mapping.pairs[u]) for u in mapping.user_names if u in mapping.pairs]
    if len(kept) < 2:
        raise AdaptError(
            f"only {kept[0][0]!r} maps onto the lifter's keypoints; expected at least two "
            f"(a pose is lifted from its root and the keypoints around it): {mapping.describe()}"
        )
    return kept


def _lifter_name(lifter: Lifter) -> str:
    builtin = lifter.meta.get("builtin")
    if isinstance(builtin, dict) and isinstance(builtin.get("name"), str):
        return f"built-in {builtin['name']}"
    return str(lifter.path) if lifter.path else "in memory"


def _new_layout(
    lifter: Lifter, mapping: KeypointMapping, kept: set[int]
) -> tuple[list[str], list[list[str]] | None]:
    """The kept roots and target sets, renamed to the user's names."""
    names = list(lifter.keypoints)
    user_of = {m: u for u, m in mapping.pairs.items()}
    layout = lifter.layout
    first = layout.roots[0]
    if first not in kept:
        raise AdaptError(
            f"the lifter's root {names[first]!r} ({_lifter_name(lifter)}) is not among the "
            f"mapped keypoints: every lifted point is relative to it. Map one of your keypoints "
            f"to {names[first]!r} (a mapping file line: YOUR_NAME = {names[first]!r}), or use a "
            f"lifter rooted on a keypoint you track. {mapping.describe()}"
        )
    roots = [user_of[names[first]]]
    sets: list[list[str]] | None = None
    if layout.target_sets is not None:
        sets = [[user_of[names[j]] for j in layout.target_sets[0] if j in kept]]
        for root, targets in zip(layout.roots[1:], layout.target_sets[1:], strict=True):
            kept_targets = [user_of[names[j]] for j in targets if j in kept]
            if root not in kept:
                if kept_targets:
                    raise AdaptError(
                        f"the lifter's root {names[root]!r} ({_lifter_name(lifter)}) is not "
                        f"mapped, but its keypoints {kept_targets} are: map one of your "
                        f"keypoints to {names[root]!r}"
                    )
                continue
            roots.append(user_of[names[root]])
            sets.append(kept_targets)
    return roots, sets


def _new_meta(
    lifter: Lifter,
    kept: list[tuple[str, str]],
    mapping: KeypointMapping,
    roots: list[str],
    target_sets: list[list[str]] | None,
    edges: np.ndarray | Sequence[Sequence[int]] | None,
    library: Poses | None,
) -> dict:
    names = list(lifter.keypoints)
    users = [u for u, _ in kept]
    models = [m for _, m in kept]
    old = [names.index(m) for m in models]
    if edges is None:
        new_edges = contracted_edges(names, lifter.edges, models)
    else:
        new_edges = mapped_user_edges(edges, mapping, users)
    meta = {
        k: v for k, v in lifter.meta.items() if k not in ("uncertainty", "bone_stats", "adapted")
    }
    meta.update(
        keypoints=users,
        edges=new_edges.tolist(),
        roots=roots,
        target_sets=target_sets,
        bone_stats=_bone_stats(library, models, users, new_edges),
        adapted={
            "from": _lifter_name(lifter),
            "from_keypoints": names,
            "mapping": dict(kept),
            "unmapped_user": mapping.unmapped_user,
            "dropped": [n for i, n in enumerate(names) if i not in set(old)],
        },
    )
    calibration = lifter.meta.get("uncertainty")
    if calibration is not None:
        meta["uncertainty"] = {
            **calibration,
            **{k: [calibration[k][i] for i in old] for k in _CALIBRATION_ARRAYS},
        }
    return meta


def _bone_stats(
    library: Poses | None, models: list[str], users: list[str], edges: np.ndarray
) -> dict | None:
    if library is None or not len(edges):
        return None
    from napari_liftpose.lifting.suspicion import library_bone_stats

    subset = library.select_keypoints(models).copy(keypoints=users, edges=edges)
    return library_bone_stats([subset], edges)


def with_unmapped(
    lifted: Poses,
    mapping: KeypointMapping,
    edges: np.ndarray | Sequence[Sequence[int]] | None = None,
) -> Poses:
    """An adapted lifter's output on the user's full keypoint list, NaN where unmapped.

    Parameters
    ----------
    lifted : Poses
        What the adapted lifter returned (keypoints: the user's mapped names).
    mapping : KeypointMapping
        The mapping it was adapted with.
    edges : array-like of int, optional
        The user's skeleton (indices into ``mapping.user_names``); default: the lifted edges.

    Returns
    -------
    Poses
        Keypoints ``mapping.user_names`` in their order; coordinates, confidence and
        uncertainty NaN for the unmapped ones (see
        :func:`~napari_liftpose.bodies.mapping.to_user_poses`).
    """
    mapped = [u for u in mapping.user_names if u in mapping.pairs]
    identity = KeypointMapping(list(mapping.user_names), mapped, {u: u for u in mapped})
    return to_user_poses(lifted, identity, edges)


def record_body_model(path: str | Path, body_model: dict, **extra: object) -> Path:
    """Record the body model (and e.g. ``builtin``) in a lifter file's metadata, in place.

    The tensors are written back unchanged (atomically, through
    :func:`~napari_liftpose.lifting.save_checkpoint`); the metadata gains ``body_model``
    (:func:`~napari_liftpose.bodies.library.body_model_meta`) and the ``extra`` keys.

    Returns
    -------
    Path
        ``path``.
    """
    tensors, meta = load_checkpoint(path)
    meta = {
        k: v for k, v in meta.items() if k not in ("format", "format_version", "package_version")
    }
    meta.update(body_model=body_model, **extra)
    return save_checkpoint(path, tensors, meta)
