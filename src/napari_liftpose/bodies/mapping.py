"""Map a user's keypoint names onto a body model's, automatically or from a mapping file.

A lab's skeleton rarely spells its keypoints like a body model: ``Ear_R``, ``leftear``,
``LF_Coxa``, ``TTI``, ``Haunch_left`` all name a body-model keypoint. :func:`map_keypoints`
reads a name as *side* (left/right, however spelled), *leg* (front/middle/hind, for insects and
for ``fore``/``hind`` paws) and *part* (the rest, with case and separators ignored), puts the part
through a table of common synonyms and the body model's own aliases, and pairs names whose
readings agree. It never maps two user keypoints onto one model keypoint: when two could be the
same one (and neither is spelled closer), both stay unmapped and the mapping says why. A mapping
file (:func:`read_mapping_file`) overrides the automatic choice. :func:`to_model_poses` and
:func:`to_user_poses` apply a mapping to :class:`~napari_liftpose.poses.Poses` both ways.

The rules are documented for users in ``docs/mapping.md``.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.io.paths import require_readable_file
from napari_liftpose.poses import Poses

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "KeypointMapping",
    "NameReading",
    "format_mapping_file",
    "map_keypoints",
    "read_mapping_file",
    "read_name",
    "to_model_poses",
    "to_user_poses",
]

# -- reading one name ----------------------------------------------------------------------------
_SEPARATORS = re.compile(r"[\s_\-.:/|]+")
# lower/digit -> Upper ("TailTip", "lEar", "Finger1Base"), and an acronym before a word ("TTIBase")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LEFT = {"l", "left", "lft", "lt"}
_RIGHT = {"r", "right", "rgt", "rt"}
_LEGS = {
    "front": {"front", "fore", "frontal", "anterior", "pro", "prothoracic", "t1"},
    "middle": {"middle", "mid", "meso", "mesothoracic", "t2"},
    "hind": {"hind", "rear", "posterior", "meta", "metathoracic", "t3"},
}
_LEG_WORD = {word: leg for leg, words in _LEGS.items() for word in words}
_LEG_LETTER = {"f": "front", "m": "middle", "h": "hind", "1": "front", "2": "middle", "3": "hind"}
_SIDE_LETTER = {"l": "left", "r": "right"}
# LF, RH, L1, R3 (side + leg) and FL, HR (leg + side)
_SIDE_LEG = re.compile(r"^(?:([lr])([fmh123])|([fmh])([lr]))$")
# anipose fly names: L1A .. R3E = side, leg, joint (A thorax-coxa .. E tarsus tip)
_SIDE_LEG_JOINT = re.compile(r"^([lr])([123])([a-e])$", re.IGNORECASE)
_JOINT_LETTER = {"a": "coxa", "b": "femur", "c": "tibia", "d": "tarsus", "e": "claw"}
_TAIL_NUMBER = re.compile(r"^tail(\d+)$")


class NameReading(NamedTuple):
    """How a keypoint name reads: ``side`` and ``leg`` (or None) and the ``part`` (lower case)."""

    side: str | None
    leg: str | None
    part: str


def _tokens(name: str) -> list[str]:
    """Lower-case words of ``name``: split at separators and CamelCase; ``L1A`` stays whole."""
    words: list[str] = []
    for chunk in _SEPARATORS.split(name.strip()):
        if not chunk:
            continue
        if _SIDE_LEG_JOINT.match(chunk):
            words.append(chunk.lower())
        else:
            words.extend(w.lower() for w in _CAMEL.split(chunk) if w)
    return words


@functools.lru_cache(maxsize=4096)
def read_name(name: str) -> NameReading:
    """Read a keypoint name as side, leg and part, ignoring case and separators.

    Parameters
    ----------
    name : str
        A keypoint name, e.g. ``"Ear_R"``, ``"leftear"``, ``"LF_Coxa"``, ``"left_front_coxa"``.

    Returns
    -------
    NameReading
        E.g. ``("right", None, "ear")``, ``("left", None, "ear")``, ``("left", "front", "coxa")``.
        A name with two side words keeps the second in its part (it then matches nothing).
    """
    words = _tokens(name)
    side: str | None = None
    leg: str | None = None
    rest: list[str] = []
    for word in words:
        joint = _SIDE_LEG_JOINT.match(word)
        side_leg = _SIDE_LEG.match(word)
        if joint and side is None and leg is None:
            side, leg = _SIDE_LETTER[joint[1]], _LEG_LETTER[joint[2]]
            rest.append(_JOINT_LETTER[joint[3]])
        elif side_leg and side is None and leg is None:
            side_letter = side_leg[1] or side_leg[4]
            leg_letter = side_leg[2] or side_leg[3]
            side, leg = _SIDE_LETTER[side_letter], _LEG_LETTER[leg_letter]
        elif word in _LEFT and side is None:
            side = "left"
        elif word in _RIGHT and side is None:
            side = "right"
        elif word in _LEG_WORD and leg is None:
            leg = _LEG_WORD[word]
        else:
            rest.append(word)
    if side is None and rest:  # glued: "leftear", "righthindpaw"
        for prefix, value in (("left", "left"), ("right", "right")):
            if rest[0].startswith(prefix) and len(rest[0]) > len(prefix) + 1:
                side, rest[0] = value, rest[0][len(prefix) :]
                break
    return NameReading(side, leg, "".join(rest))


# -- synonyms --------------------------------------------------------------------------------
#: Groups of spellings of one body part, side-free; the first is the body models' own name.
#: Matching ignores case, separators and word order of leg words (``front_paw`` = ``paw_front``).
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("nose", "snout", "nose_tip", "tip_of_nose", "muzzle", "rostrum"),
    ("head", "skull", "head_centre", "head_center", "head_mid", "crown", "cranium"),
    ("neck", "nape", "neck_base", "base_of_neck"),
    ("ear", "ears", "pinna"),
    ("eye", "eyes"),
    ("spine_front", "withers", "shoulder_blades", "scapulae", "upper_back", "front_spine"),
    (
        "spine_mid",
        "mid_spine",
        "trunk",
        "body",
        "body_centre",
        "body_center",
        "centroid",
        "center",
        "centre",
        "back",
        "mid_back",
        "spine",
        "torso",
    ),
    ("spine_back", "lumbar", "lower_back", "rump", "back_spine", "hind_spine"),
    (
        "tail_base",
        "tailbase",
        "tti",
        "tail_root",
        "base_of_tail",
        "root_of_tail",
        "tail_start",
        "tail_torso_intersection",
    ),
    ("tail_tip", "tailtip", "tail_end", "tailend", "end_of_tail", "tip_of_tail"),
    ("hip", "haunch", "haunches", "hips", "hip_joint"),
    ("shoulder", "shoulders", "shoulder_joint"),
    ("knee", "stifle"),
    ("ankle", "hock", "heel", "tarsal_joint"),
    ("wrist", "carpus"),
    (
        "forepaw",
        "front_paw",
        "hand",
        "fore_foot",
        "front_foot",
        "manus",
        "back_of_hand",
    ),
    ("hindpaw", "hind_paw", "foot", "hind_foot", "back_paw", "back_foot", "pes"),
    ("thorax", "thx", "mesothorax", "notum", "scutellum"),
    ("abdomen", "abdomen_tip", "abd", "abd_tip", "tip_of_abdomen", "abdomen_end"),
    ("antenna", "antennae", "ant", "antenna_base"),
    ("coxa", "body_coxa", "thorax_coxa", "coxa_base"),
    ("femur", "trochanter", "coxa_femur", "trochanter_femur", "femur_base"),
    ("tibia", "femur_tibia", "tibia_base"),
    ("tarsus", "tibia_tarsus", "tarsus_base"),
    ("claw", "tip", "tarsus_tip", "pretarsus", "claws", "leg_tip", "tarsus_end"),
)


def _joined(reading: NameReading) -> str:
    return (reading.leg or "") + reading.part


def _build_synonyms() -> dict[str, str]:
    table: dict[str, str] = {}
    for group in SYNONYMS:
        canon = _joined(read_name(group[0]))
        for spelling in group:
            table[_joined(read_name(spelling))] = canon
    return table


_SYNONYM_OF = _build_synonyms()


def _canonical(reading: NameReading) -> NameReading:
    """``reading`` with its part replaced by its synonym group's first spelling.

    Leg and part are looked up together first (``front`` + ``paw`` = ``forepaw``, ``mid`` +
    ``spine`` = ``spine_mid``), then the part alone (``LF`` + ``tip`` = front + ``claw``).
    """
    joined = _joined(reading)
    if joined in _SYNONYM_OF:
        return NameReading(reading.side, None, _SYNONYM_OF[joined])
    return NameReading(reading.side, reading.leg, _SYNONYM_OF.get(reading.part, reading.part))


# -- the mapping -----------------------------------------------------------------------------
@dataclass
class KeypointMapping:
    """Which user keypoint is which body-model keypoint.

    Attributes
    ----------
    user_names : list of str
        The user's keypoints, in their order.
    model_names : list of str
        The body model's keypoints, in its order.
    pairs : dict
        ``{user name: model name}`` for the mapped keypoints, in the user's order; one-to-one.
    reasons : dict
        ``{user name: why it is not mapped}`` for every unmapped user keypoint.
    overridden : list of str
        User names whose pairing (or dropping) came from the overrides (mapping file).
    ignored_overrides : list of str
        Override entries naming no keypoint of the user's (a typo, or a file for another
        skeleton); they changed nothing.
    """

    user_names: list[str]
    model_names: list[str]
    pairs: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)
    ignored_overrides: list[str] = field(default_factory=list)

    @property
    def unmapped_user(self) -> list[str]:
        """User keypoints not mapped (carried through as NaN), in the user's order."""
        return [n for n in self.user_names if n not in self.pairs]

    @property
    def unmapped_model(self) -> list[str]:
        """Body-model keypoints no user keypoint maps to, in the model's order."""
        taken = set(self.pairs.values())
        return [n for n in self.model_names if n not in taken]

    @property
    def model_pairs(self) -> list[tuple[str, str]]:
        """``(user name, model name)`` for the mapped keypoints, in the body model's order."""
        user_of = {m: u for u, m in self.pairs.items()}
        return [(user_of[m], m) for m in self.model_names if m in user_of]

    def describe(self) -> str:
        """One readable message: what is mapped, what is not and why.

        Returns
        -------
        str
            E.g. ``"4 of 4 keypoints mapped onto the body model (snout -> nose, ...); ..."``.
        """
        shown = ", ".join(u if u == m else f"{u} -> {m}" for u, m in self.pairs.items())
        text = (
            f"{len(self.pairs)} of {len(self.user_names)} keypoints mapped onto the body "
            f"model ({shown or 'none'})"
        )
        if self.unmapped_user:
            by_reason: dict[str, list[str]] = {}
            for name in self.unmapped_user:
                by_reason.setdefault(self.reasons.get(name, "not mapped"), []).append(name)
            why = "; ".join(f"{', '.join(names)} ({r})" for r, names in by_reason.items())
            text += f". Not mapped, carried through as NaN: {why}"
        if self.unmapped_model:
            text += f". Body-model keypoints with no data: {', '.join(self.unmapped_model)}"
        if self.ignored_overrides:
            text += (
                ". The mapping names keypoints these tracks do not have (ignored): "
                f"{', '.join(self.ignored_overrides)}"
            )
        return text + "."


def _check_overrides(
    overrides: Mapping[str, str], model_names: Sequence[str] | None, source: str
) -> dict[str, str]:
    """Validate ``{user: model or ""}`` (targets against ``model_names`` unless None)."""
    checked: dict[str, str] = {}
    target_of: dict[str, str] = {}
    for user, model in overrides.items():
        if not isinstance(user, str) or not isinstance(model, str):
            raise ValueError(
                f'{source}: expected user_name = "model_name" (strings), got {user!r:.60} = '
                f"{model!r:.60}"
            )
        if model and model_names is not None and model not in model_names:
            raise ValueError(
                f"{source}: {user!r} = {model!r}: {model!r} is not a keypoint of the body model; "
                f'expected one of {list(model_names)} or "" to drop it'
            )
        if model and model in target_of:
            raise ValueError(
                f"{source}: {target_of[model]!r} and {user!r} both map to {model!r}; "
                "expected each body-model keypoint at most once"
            )
        if model:
            target_of[model] = user
        checked[user] = model
    return checked


def _check_aliases(
    aliases: Mapping[str, Iterable[str]] | None, model_names: Sequence[str]
) -> dict[str, list[str]]:
    if not aliases:
        return {}
    unknown = [m for m in aliases if m not in model_names]
    if unknown:
        raise ValueError(f"aliases: {unknown} are not keypoints of the body model")
    return {m: [str(a) for a in names] for m, names in aliases.items()}


def map_keypoints(
    user_names: Sequence[str],
    model_names: Sequence[str],
    *,
    aliases: Mapping[str, Iterable[str]] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> KeypointMapping:
    """Map a user's keypoint names onto a body model's.

    Overrides come first. Every other name is read as side, leg and part
    (:func:`read_name`) and paired, one to one, with the model keypoint that reads the same,
    closest spelling first: the exact name, then the same reading (case, separators, side and
    leg spellings), then the same reading through :data:`SYNONYMS` or the model's ``aliases``.
    A user name that could be two model keypoints equally well, or a model keypoint that two
    user names could be equally well, stays unmapped. Numbered tail points (``Tail_0`` ..
    ``Tail_n``) go onto the model's numbered tail points in order (see ``docs/mapping.md``).

    Parameters
    ----------
    user_names : sequence of str
        The user's keypoints (unique).
    model_names : sequence of str
        The body model's keypoints (unique).
    aliases : mapping, optional
        ``{model name: [other names]}`` from the body model's file.
    overrides : mapping, optional
        ``{user name: model name}``; ``""`` drops a user keypoint (left unmapped). Entries for
        names the user does not have are listed in ``ignored_overrides``.

    Returns
    -------
    KeypointMapping

    Raises
    ------
    ValueError
        Duplicate names, an override or alias naming no model keypoint, or two overrides with
        one target.
    """
    user_names = [str(n) for n in user_names]
    model_names = [str(n) for n in model_names]
    for what, names in (("user keypoints", user_names), ("body-model keypoints", model_names)):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{what}: expected unique names, got duplicates {duplicates}")
    fixed = _check_overrides(overrides or {}, model_names, "mapping")
    alias_of = _check_aliases(aliases, model_names)

    pairs: dict[str, str] = {}
    reasons: dict[str, str] = {}
    overridden = [u for u in user_names if u in fixed]
    for user in overridden:
        if fixed[user]:
            pairs[user] = fixed[user]
        else:
            reasons[user] = "dropped by the mapping"
    ignored = [u for u in fixed if u not in user_names]
    taken = set(pairs.values())
    free_users = [u for u in user_names if u not in fixed]
    free_models = [m for m in model_names if m not in taken]

    tail_users = [u for u in free_users if _tail_number(u) is not None]
    tail_models = [m for m in free_models if _tail_number(m) is not None]
    _match_by_name(
        [u for u in free_users if u not in tail_users],
        [m for m in free_models if m not in tail_models],
        alias_of,
        pairs,
        reasons,
    )
    _match_tail(tail_users, tail_models, model_names, pairs, reasons)
    for user in user_names:
        if user not in pairs and user not in reasons:
            reasons[user] = _no_match_reason(user, model_names)
    ordered = {u: pairs[u] for u in user_names if u in pairs}
    return KeypointMapping(user_names, model_names, ordered, reasons, overridden, ignored)


def _no_match_reason(user: str, model_names: list[str]) -> str:
    """Why ``user`` matched nothing: it gives no side where the model has sides, or no name."""
    reading = _canonical(read_name(user))
    if reading.side is None and reading.part:
        sided = [
            m
            for m in model_names
            if _canonical(read_name(m))._replace(side=None) == reading
            and read_name(m).side is not None
        ]
        if sided:
            return f"no side given: {' or '.join(sided)}?"
    return "no body-model keypoint of that name"


def _tier(user: str, model: str, aliases: list[str]) -> int | None:
    """How closely ``user`` names ``model``: 0 exact, 1 same reading, 2 synonym/alias; None: no."""
    if user == model:
        return 0
    reading = read_name(user)
    if not reading.part:
        return None
    if reading == read_name(model):
        return 1
    spellings = [read_name(s) for s in (model, *aliases)]
    if reading in spellings or _canonical(reading) in [_canonical(r) for r in spellings]:
        return 2
    return None


def _match_by_name(
    users: list[str],
    models: list[str],
    alias_of: dict[str, list[str]],
    pairs: dict[str, str],
    reasons: dict[str, str],
) -> None:
    best: dict[str, tuple[int, str]] = {}  # user -> (tier, model)
    for user in users:
        scored = [(t, m) for m in models if (t := _tier(user, m, alias_of.get(m, []))) is not None]
        if not scored:
            continue
        top = min(t for t, _ in scored)
        choices = [m for t, m in scored if t == top]
        if len(choices) > 1:
            reasons[user] = f"ambiguous: could be {' or '.join(choices)}"
            continue
        best[user] = (top, choices[0])
    claims: dict[str, list[tuple[int, str]]] = {}
    for user, (tier, model) in best.items():
        claims.setdefault(model, []).append((tier, user))
    for model, claimants in claims.items():
        top = min(t for t, _ in claimants)
        winners = [u for t, u in claimants if t == top]
        if len(winners) == 1:
            pairs[winners[0]] = model
            for _, user in claimants:
                if user != winners[0]:
                    reasons[user] = f"{model} is taken by {winners[0]} (spelled closer)"
            continue
        for _, user in claimants:
            others = " and ".join(u for u in winners if u != user)
            reasons[user] = f"ambiguous: {user} and {others} could both be {model}"


def _tail_number(name: str) -> int | None:
    reading = read_name(name)
    found = _TAIL_NUMBER.match(reading.part)
    if found is None or reading.side is not None or reading.leg is not None:
        return None
    return int(found[1])


def _match_tail(
    users: list[str],
    models: list[str],
    model_names: list[str],
    pairs: dict[str, str],
    reasons: dict[str, str],
) -> None:
    """Numbered tail points, in order: equal counts pair one by one; else base..tip, else none."""
    if not users:
        return
    users = sorted(users, key=_tail_number)
    models = sorted(models, key=_tail_number)
    if len({_tail_number(u) for u in users}) < len(users):
        for user in users:
            reasons[user] = "two numbered tail points share a number"
        return
    if len(users) == len(models):
        pairs.update(zip(users, models, strict=True))
        return
    taken = set(pairs.values())
    ends = [_find_canonical(model_names, end) for end in ("tail_base", "tail_tip")]
    if len(users) == len(models) + 2 and all(e is not None and e not in taken for e in ends):
        pairs.update(zip(users, [ends[0], *models, ends[1]], strict=True))
        return
    for user in users:
        reasons[user] = (
            f"{len(users)} numbered tail points cannot be placed on the body model's "
            f"{len(models)} free tail points; name them in a mapping file"
        )


def _find_canonical(model_names: list[str], part: str) -> str | None:
    target = _canonical(read_name(part))
    found = [m for m in model_names if _canonical(read_name(m)) == target]
    return found[0] if len(found) == 1 else None


# -- mapping files -------------------------------------------------------------------------------
def read_mapping_file(path: str | Path, model_names: Sequence[str] | None = None) -> dict[str, str]:
    """Read a mapping file: a TOML ``[mapping]`` table of ``user_name = "model_name"``.

    ``user_name = ""`` drops that keypoint. Names with spaces or dots are quoted TOML keys
    (``"Tail 0" = "tail_1"``).

    Parameters
    ----------
    path : str or Path
        The TOML file.
    model_names : sequence of str, optional
        The body model's keypoints: when given, every target must be one of them.

    Returns
    -------
    dict
        ``{user name: model name or ""}``, for :func:`map_keypoints`'s ``overrides``.

    Raises
    ------
    PoseFileError
        Naming the file and the problem: unreadable, not TOML, no ``[mapping]`` table, a value
        that is not a string, two user names with one target, a target the body model lacks.
    """
    path = Path(path)
    require_readable_file(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as err:
        raise PoseFileError(path, f"cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise PoseFileError(path, "not a TOML mapping file (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as err:
        raise PoseFileError(path, f"not a TOML mapping file ({err})") from None
    except RecursionError:
        raise PoseFileError(path, "not TOML (nested too deeply)") from None
    mapping = table.get("mapping")
    if not isinstance(mapping, dict):
        raise PoseFileError(
            path,
            'expected a [mapping] table of user_name = "model_name", '
            + ("got none" if mapping is None else f"got {type(mapping).__name__}"),
        )
    for user, model in mapping.items():
        if not isinstance(model, str):
            raise PoseFileError(
                path,
                f'[mapping] {user!r}: expected a body-model keypoint name in quotes (or "" '
                f"to drop it), got {model!r:.60}",
            )
    try:
        return _check_overrides(mapping, model_names, "[mapping]")
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def format_mapping_file(mapping: KeypointMapping) -> str:
    """A mapping file (TOML) holding ``mapping``, for a user to check and edit.

    Every user keypoint is listed: mapped ones with their model name, unmapped ones as ``""``
    with the reason in a comment; the body model's keypoints are listed in a comment.

    Parameters
    ----------
    mapping : KeypointMapping
        E.g. the automatic mapping from :func:`map_keypoints`.

    Returns
    -------
    str
        TOML text that :func:`read_mapping_file` reads back to ``mapping.pairs`` (plus drops).
    """
    lines = [
        '# Keypoint mapping: user_name = "body-model keypoint" ("" drops it).',
        f"# Body-model keypoints: {', '.join(mapping.model_names)}",
        "[mapping]",
    ]
    for user in mapping.user_names:
        model = mapping.pairs.get(user, "")
        line = f"{_toml_string(user)} = {_toml_string(model)}"
        if not model:
            line += f"  # {mapping.reasons.get(user, 'not mapped')}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


# -- applying a mapping to poses -------------------------------------------------------------
def to_model_poses(poses: Poses, mapping: KeypointMapping, *, complete: bool = False) -> Poses:
    """The mapped keypoints of ``poses``, renamed to the body model's names, in its order.

    Parameters
    ----------
    poses : Poses
        The user's tracks (keypoints named as in ``mapping.user_names``).
    mapping : KeypointMapping
        From :func:`map_keypoints`.
    complete : bool
        If True, every body-model keypoint is present, NaN (coordinates and confidence) where
        no user keypoint maps to it; else only the mapped ones.

    Returns
    -------
    Poses
        A copy; edges are kept where both ends are mapped.

    Raises
    ------
    ValueError
        If ``poses`` lacks a mapped user keypoint, or nothing is mapped.
    """
    if not mapping.pairs:
        raise ValueError(
            f"no keypoint maps onto the body model{_where(poses)}: {mapping.describe()}"
        )
    users = [u for u, _ in mapping.model_pairs]
    subset = poses.select_keypoints(users)
    subset = subset.copy(keypoints=[m for _, m in mapping.model_pairs])
    if not complete:
        return subset
    return _expand(subset, mapping.model_names, {m: m for m in subset.keypoints}, None)


def to_user_poses(
    lifted: Poses,
    mapping: KeypointMapping,
    edges: np.ndarray | Sequence[Sequence[int]] | None = None,
) -> Poses:
    """Lifted body-model keypoints back onto the user's keypoint list, NaN where unmapped.

    Parameters
    ----------
    lifted : Poses
        Output named with body-model keypoints (at least the mapped ones).
    mapping : KeypointMapping
        The mapping the input went through.
    edges : array-like of int, optional
        The user's skeleton (indices into ``mapping.user_names``), e.g. the 2D tracks' edges.

    Returns
    -------
    Poses
        Keypoints ``mapping.user_names``; coordinates, confidence and uncertainty are NaN for
        unmapped keypoints; everything else is kept.

    Raises
    ------
    ValueError
        If ``lifted`` lacks a mapped body-model keypoint.
    """
    missing = [m for m in mapping.pairs.values() if m not in lifted.keypoints]
    if missing:
        raise ValueError(
            f"lifted poses lack the mapped body-model keypoints {missing}{_where(lifted)}"
        )
    return _expand(lifted, mapping.user_names, mapping.pairs, edges)


def _expand(
    poses: Poses,
    names: list[str],
    source_of: Mapping[str, str],
    edges: np.ndarray | Sequence[Sequence[int]] | None,
) -> Poses:
    """``poses`` on keypoint list ``names``: ``names[i]`` takes ``source_of[names[i]]``, else NaN."""
    frames, individuals, _, space = poses.coords.shape
    coords = np.full((frames, individuals, len(names), space), np.nan)
    confidence = np.full((frames, individuals, len(names)), np.nan)
    uncertainty = None if poses.uncertainty is None else confidence.copy()
    index = {n: i for i, n in enumerate(poses.keypoints)}
    for i, name in enumerate(names):
        if name in source_of:
            j = index[source_of[name]]
            coords[:, :, i] = poses.coords[:, :, j]
            confidence[:, :, i] = poses.confidence[:, :, j]
            if uncertainty is not None:
                uncertainty[:, :, i] = poses.uncertainty[:, :, j]
    if edges is None:
        position = {source_of[n]: i for i, n in enumerate(names) if n in source_of}
        edges = [
            (position[poses.keypoints[a]], position[poses.keypoints[b]])
            for a, b in poses.edges
            if poses.keypoints[a] in position and poses.keypoints[b] in position
        ]
    return poses.copy(
        coords=coords,
        confidence=confidence,
        uncertainty=uncertainty,
        keypoints=list(names),
        edges=np.asarray(edges, dtype=np.int64).reshape(-1, 2),
    )


def _where(poses: Poses) -> str:
    return f" (in {poses.source})" if poses.source else ""
