"""Body models: an animal's 3D skeleton as a tree of bones, read from a plain TOML file.

A body model says, in the body frame (x forward, y left, z up, origin at the root keypoint):

- each keypoint's parent, the rest direction of the bone from the parent to it, and the bone's
  length (mean and spread between individuals);
- for each joint (the bone into a keypoint turns at its parent) the range of its rotation about
  the x (``roll``), y (``pitch``) and z (``yaw``) axes, in degrees away from the rest direction;
- left/right symmetry (``left_*``/``right_*`` names, plus listed pairs), optional ``aliases``
  per keypoint and optional display edges;
- what the pose sampler needs to animate it (legs, spine, neck, tail, gaits, behaviours).

Rotations follow the right-hand rule about the body axes: positive ``pitch`` turns a forward
(+x) bone down (-z), positive ``yaw`` turns it left (+y), positive ``roll`` turns a left (+y)
bone up (+z). A joint's rotation carries every bone below it (forward kinematics):
``R_k = Rz(yaw) @ Ry(pitch) @ Rx(roll)``, ``G_k = G_parent @ R_k``,
``p_k = p_parent + G_k @ (length_k * direction_k)``. See docs/body-models.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_liftpose.io.errors import PoseFileError, not_a_file_error

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "AXES",
    "BodyModel",
    "BodyModelError",
    "Gait",
    "Keypoint",
    "Motion",
    "rotation_matrices",
    "SHIPPED",
    "load_body_model",
    "shipped_models",
]

#: Joint axes in the order of the last axis of joint-angle arrays: about x, y, z.
AXES = ("roll", "pitch", "yaw")
#: Behaviours every model can have; gaits add their own names (see :class:`Motion`).
BASE_BEHAVIOURS = ("still", "rear", "groom", "head_turn", "crouch")
SHIPPED_DIR = Path(__file__).resolve().parent
#: Names of the body models that ship with the package.
SHIPPED = ("mouse", "fly")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Most keypoints a body model may have (a real skeleton has tens; the lifter's size grows with it).
MAX_KEYPOINTS = 1000
#: Largest bone length accepted, in the model's units (bounds the sampler's numbers).
MAX_LENGTH = 1e6
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BodyModelError(PoseFileError):
    """A body-model file that cannot be used; the message is ``"PATH: problem"``."""


@dataclass(frozen=True)
class Keypoint:
    """One keypoint: the end of the bone from its parent (the root has no bone).

    Attributes
    ----------
    name : str
        Keypoint name (snake_case).
    parent : str or None
        Parent keypoint; None for the root.
    direction : np.ndarray
        Unit rest direction ``(3,)`` of the bone parent -> keypoint in the body frame.
    length : float
        Mean bone length, in the model's units (0 for the root).
    length_sd : float
        Standard deviation of the bone length between individuals, in the model's units.
    angles : dict
        ``{axis: (min_deg, max_deg)}`` for the axes this joint turns about; other axes are fixed.
    aliases : tuple of str
        Other names this keypoint is known by (keypoint mapping).
    source : str or None
        Citation id the numbers come from.
    note : str
        Free text (e.g. why a number is an estimate).
    """

    name: str
    parent: str | None
    direction: np.ndarray
    length: float
    length_sd: float
    angles: dict[str, tuple[float, float]]
    aliases: tuple[str, ...] = ()
    source: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Gait:
    """A periodic leg pattern: phase of each leg in the cycle, duty factor, stride frequency."""

    name: str
    phases: dict[str, float]
    duty: float
    frequency_hz: tuple[float, float]
    stride: float  # foot excursion during stance, as a fraction of the leg's length


@dataclass(frozen=True)
class Motion:
    """What the sampler animates: which keypoints play which part, gaits and behaviours.

    Every list names keypoints. A leg is its first keypoint and the chain of single children
    below it down to its tip.
    """

    legs: tuple[str, ...] = ()
    front_legs: tuple[str, ...] = ()
    hind_legs: tuple[str, ...] = ()
    spine: tuple[str, ...] = ()
    neck: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    groom_target: str | None = None
    rear_pitch_deg: tuple[float, float] = (0.0, 0.0)
    groom_hz: tuple[float, float] = (3.0, 6.0)
    fps: float = 30.0
    gaits: dict[str, Gait] = field(default_factory=dict)
    behaviours: dict[str, float] = field(default_factory=dict)


@dataclass
class BodyModel:
    """A validated body model (see the module docstring for the conventions).

    Use :func:`load_body_model` to make one. ``keypoints`` keeps the file's order.
    """

    name: str
    species: str
    units: str
    description: str
    citations: list[dict]
    nodes: list[Keypoint]
    pairs: list[tuple[str, str]]
    display_edges: list[tuple[str, str]] | None
    size_sd: float
    motion: Motion
    path: Path | None = None

    # -- names and indices -------------------------------------------------------------------
    @property
    def keypoints(self) -> list[str]:
        """Keypoint names, in the file's order."""
        return [k.name for k in self.nodes]

    def index(self, name: str) -> int:
        """Index of keypoint ``name`` (a ``KeyError`` naming the model if unknown)."""
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise KeyError(f"{name!r} is not a keypoint of body model {self.name!r}") from None

    @property
    def root(self) -> str:
        """The root keypoint's name (the only one without a parent)."""
        return next(k.name for k in self.nodes if k.parent is None)

    @property
    def parents(self) -> np.ndarray:
        """Parent index per keypoint ``(keypoints,)``; -1 for the root."""
        names = self.keypoints
        return np.array([-1 if k.parent is None else names.index(k.parent) for k in self.nodes])

    @property
    def order(self) -> list[int]:
        """Keypoint indices with every parent before its children (breadth-first from the root)."""
        parents = self.parents
        order = [int(np.flatnonzero(parents < 0)[0])]
        i = 0
        while i < len(order):
            order.extend(int(c) for c in np.flatnonzero(parents == order[i]))
            i += 1
        return order

    @property
    def edges(self) -> np.ndarray:
        """Display skeleton as index pairs ``(n_edges, 2)``: the file's ``[edges]`` or the tree."""
        if self.display_edges is not None:
            return np.array(
                [(self.index(a), self.index(b)) for a, b in self.display_edges], dtype=np.int64
            ).reshape(-1, 2)
        parents = self.parents
        return np.array(
            [(int(parents[k]), k) for k in range(len(parents)) if parents[k] >= 0], dtype=np.int64
        ).reshape(-1, 2)

    @property
    def aliases(self) -> dict[str, list[str]]:
        """``{keypoint: [aliases...]}`` for keypoints that list some."""
        return {k.name: list(k.aliases) for k in self.nodes if k.aliases}

    @property
    def directions(self) -> np.ndarray:
        """Rest bone directions ``(keypoints, 3)`` (zeros for the root)."""
        return np.stack([k.direction for k in self.nodes])

    @property
    def lengths(self) -> np.ndarray:
        """Mean bone lengths ``(keypoints,)`` (0 for the root)."""
        return np.array([k.length for k in self.nodes])

    @property
    def length_sds(self) -> np.ndarray:
        """Bone-length standard deviations ``(keypoints,)``."""
        return np.array([k.length_sd for k in self.nodes])

    @property
    def angle_limits(self) -> np.ndarray:
        """Joint ranges in degrees ``(keypoints, 3 axes (roll, pitch, yaw), 2 (min, max))``.

        Axes a joint does not turn about hold ``(0, 0)``.
        """
        out = np.zeros((len(self.nodes), 3, 2))
        for i, k in enumerate(self.nodes):
            for a, axis in enumerate(AXES):
                if axis in k.angles:
                    out[i, a] = k.angles[axis]
        return out

    @property
    def behaviours(self) -> list[str]:
        """Behaviours the sampler can make for this model (those the file gives a weight)."""
        return list(self.motion.behaviours)

    def chain(self, start: str) -> list[int]:
        """Indices of ``start`` and the chain of single children below it, down to its tip."""
        parents = self.parents
        out = [self.index(start)]
        while True:
            children = np.flatnonzero(parents == out[-1])
            if len(children) != 1:
                return out
            out.append(int(children[0]))

    # -- geometry ----------------------------------------------------------------------------
    def forward_kinematics(
        self, angles_deg: np.ndarray | None = None, lengths: np.ndarray | None = None
    ) -> np.ndarray:
        """Keypoint positions in the body frame, root at the origin.

        Parameters
        ----------
        angles_deg : np.ndarray, optional
            Joint angles ``(..., keypoints, 3)`` in degrees (roll, pitch, yaw); zeros (the rest
            pose) if omitted.
        lengths : np.ndarray, optional
            Bone lengths ``(..., keypoints)`` broadcastable against ``angles_deg``'s leading axes;
            the mean lengths if omitted.

        Returns
        -------
        np.ndarray
            ``(..., keypoints, 3)``.
        """
        n = len(self.nodes)
        if angles_deg is None:
            angles_deg = np.zeros((n, 3))
        angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
        lead = angles.shape[:-2]
        if lengths is None:
            lengths = self.lengths
        lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), (*lead, n))
        dirs = self.directions
        parents = self.parents
        has_children = np.zeros(n, dtype=bool)
        has_children[parents[parents >= 0]] = True
        pos = np.zeros((*lead, n, 3))
        glob: dict[int, np.ndarray | None] = {}  # None = identity (saves the products)
        for k in self.order:
            p = parents[k]
            if p < 0:
                glob[k] = None
                continue
            ang = angles[..., k, :]
            turned = bool(ang.any())
            if has_children[k]:
                rot = rotation_matrices(ang) if turned else None
                glob[k] = _compose(glob[p], rot)
                bone = dirs[k] if glob[k] is None else glob[k] @ dirs[k]
            else:
                bone = _rotate(ang, dirs[k]) if turned else dirs[k]
                if glob[p] is not None:
                    bone = np.einsum("...ij,...j->...i", glob[p], bone)
            pos[..., k, :] = pos[..., p, :] + bone * lengths[..., k, None]
        return pos

    def mean_pose(self) -> np.ndarray:
        """The rest pose with mean bone lengths ``(keypoints, 3)``.

        The root is above the origin, the lowest keypoint on the ground (z = 0).
        """
        pos = self.forward_kinematics()
        pos[:, 2] -= pos[:, 2].min()
        return pos

    def bone_lengths(self, coords: np.ndarray) -> np.ndarray:
        """Length of each tree bone in ``coords`` ``(..., keypoints, 3)``.

        Returns ``(..., keypoints)``, NaN for the root.
        """
        parents = self.parents
        safe = np.where(parents < 0, np.arange(len(parents)), parents)
        out = np.linalg.norm(coords - coords[..., safe, :], axis=-1)
        out[..., parents < 0] = np.nan
        return out


def _compose(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """``a @ b`` where None stands for the identity."""
    if a is None:
        return b
    if b is None:
        return a
    return a @ b


def _rotate(angles: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``Rz(yaw) @ Ry(pitch) @ Rx(roll) @ vector`` for angles ``(..., 3)`` (radians)."""
    r, p, y = np.moveaxis(angles, -1, 0)
    x0, y0, z0 = vector
    cr, sr = np.cos(r), np.sin(r)
    y1, z1 = cr * y0 - sr * z0, sr * y0 + cr * z0
    cp, sp = np.cos(p), np.sin(p)
    x2, z2 = cp * x0 + sp * z1, -sp * x0 + cp * z1
    cy, sy = np.cos(y), np.sin(y)
    return np.stack([cy * x2 - sy * y1, sy * x2 + cy * y1, z2], -1)


def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` for angles ``(..., 3)`` in radians -> ``(..., 3, 3)``."""
    angles = np.asarray(angles, dtype=np.float64)
    r, p, y = np.moveaxis(angles, -1, 0)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    out = np.empty((*angles.shape[:-1], 3, 3))
    out[..., 0, 0] = cy * cp
    out[..., 0, 1] = cy * sp * sr - sy * cr
    out[..., 0, 2] = cy * sp * cr + sy * sr
    out[..., 1, 0] = sy * cp
    out[..., 1, 1] = sy * sp * sr + cy * cr
    out[..., 1, 2] = sy * sp * cr - cy * sr
    out[..., 2, 0] = -sp
    out[..., 2, 1] = cp * sr
    out[..., 2, 2] = cp * cr
    return out


# -- loading ---------------------------------------------------------------------------------


def shipped_models() -> dict[str, Path]:
    """``{name: path}`` of the body models that ship with the package."""
    return {n: SHIPPED_DIR / f"{n}.toml" for n in SHIPPED if (SHIPPED_DIR / f"{n}.toml").is_file()}


def load_body_model(name_or_path: str | Path) -> BodyModel:
    """Read and validate a body model.

    ``name_or_path`` is a shipped name (``"mouse"``, ``"fly"``, see :func:`shipped_models`) or
    the path of a ``.toml`` file.

    Raises
    ------
    BodyModelError
        The file is missing, not TOML (the message gives the line), or breaks a rule of the
        format (unknown parent, cycle, two roots, negative length, angle min > max, ...); the
        message names the file and the problem.
    """
    shipped = shipped_models()
    if isinstance(name_or_path, str) and name_or_path in shipped:
        path = shipped[name_or_path]
    else:
        path = Path(name_or_path)
        if not path.is_file():
            if not path.exists() and path.suffix == "" and len(path.parts) == 1:
                known = ", ".join(shipped)
                raise BodyModelError(
                    path, f"no such body model; shipped models: {known}, or give a .toml file"
                )
            err = not_a_file_error(path)
            raise BodyModelError(err.path, err.problem)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading byte-order mark is fine
    except OSError as err:
        raise BodyModelError(path, f"cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise BodyModelError(path, "not a text file (expected a TOML body model)") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise BodyModelError(path, f"TOML syntax error: {err}") from None
    except RecursionError:
        raise BodyModelError(path, "not TOML (nested too deeply)") from None
    return _Parser(path).model(table)


class _Parser:
    """Turns the parsed TOML table into a :class:`BodyModel`, raising on the first problem."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, problem: str) -> BodyModelError:
        return BodyModelError(self.path, problem)

    def only(self, table: dict, allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(
                f"{where}: unknown key {unknown[0]!r} (expected one of {', '.join(sorted(allowed))})"
            )

    def table(self, parent: dict, key: str, where: str, required: bool = False) -> dict:
        value = parent.get(key)
        if value is None:
            if required:
                raise self.fail(f"missing [{key}] table")
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{where}: expected a table, got {type(value).__name__}")
        return value

    def number(
        self,
        value,
        where: str,
        minimum: float | None = None,
        strict=False,
        maximum: float | None = None,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{where}: expected a number, got {value!r:.60}")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(f"{where}: expected a finite number, got {value}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            sign = ">" if strict else ">="
            word = "negative" if minimum == 0 and not strict else "out of range"
            raise self.fail(f"{where}: {word} value {value:g} (must be {sign} {minimum:g})")
        if maximum is not None and value > maximum:
            raise self.fail(f"{where}: value {value:g} too large (must be <= {maximum:g})")
        return value

    def text(self, value, where: str, one_line: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{where}: expected a string, got {value!r:.60}")
        if one_line and _CONTROL.search(value):
            raise self.fail(f"{where}: control characters (newline, NUL, ...) are not allowed")
        return value

    def names(self, value, where: str, known: list[str]) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(f"{where}: expected a list of keypoint names")
        for v in value:
            self.known(v, where, known)
        return tuple(value)

    def known(self, name, where: str, known: list[str]) -> str:
        if not isinstance(name, str):
            raise self.fail(f"{where}: expected a keypoint name, got {name!r:.60}")
        if name not in known:
            raise self.fail(f"{where}: unknown keypoint {name!r}")
        return name

    def range_(self, value, where: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(f"{where}: expected [min, max], got {value!r:.60}")
        lo, hi = (self.number(v, where) for v in value)
        if lo > hi:
            raise self.fail(f"{where}: min {lo:g} > max {hi:g}")
        return lo, hi

    # -- sections --------------------------------------------------------------------------
    def model(self, table: dict) -> BodyModel:
        self.only(
            table,
            {
                "model",
                "variation",
                "citations",
                "keypoints",
                "symmetry",
                "edges",
                "motion",
                "gaits",
            },
            "top level",
        )
        meta = self.table(table, "model", "[model]", required=True)
        self.only(meta, {"name", "species", "units", "up", "forward", "description"}, "[model]")
        for key in ("name", "species", "units"):
            if key not in meta:
                raise self.fail(f"[model]: missing {key!r}")
        if meta.get("up", "z") != "z" or meta.get("forward", "x") != "x":
            raise self.fail(
                "[model]: the body frame is x forward, y left, z up; "
                f"got up={meta.get('up')!r}, forward={meta.get('forward')!r}"
            )
        citations = self.citations(table.get("citations", []))
        variation = self.table(table, "variation", "[variation]")
        self.only(variation, {"size_sd", "length_cv"}, "[variation]")
        size_sd = self.number(variation.get("size_sd", 0.0), "[variation] size_sd", 0.0, maximum=1)
        default_cv = self.number(
            variation.get("length_cv", 0.0), "[variation] length_cv", 0.0, maximum=1
        )
        nodes = self.keypoints(
            self.table(table, "keypoints", "[keypoints]", required=True), default_cv, citations
        )
        names = [k.name for k in nodes]
        pairs = self.symmetry(self.table(table, "symmetry", "[symmetry]"), nodes)
        edges = self.edges(self.table(table, "edges", "[edges]"), names)
        motion = self.motion(
            self.table(table, "motion", "[motion]"), self.table(table, "gaits", "[gaits]"), names
        )
        return BodyModel(
            name=self.text(meta["name"], "[model] name", one_line=True),
            species=self.text(meta["species"], "[model] species", one_line=True),
            units=self.text(meta["units"], "[model] units", one_line=True),
            description=self.text(meta.get("description", ""), "[model] description"),
            citations=citations,
            nodes=nodes,
            pairs=pairs,
            display_edges=edges,
            size_sd=size_sd,
            motion=motion,
            path=self.path,
        )

    def citations(self, value) -> list[dict]:
        if not isinstance(value, list):
            raise self.fail("[[citations]]: expected an array of tables")
        out = []
        for i, c in enumerate(value):
            where = f"[[citations]] #{i + 1}"
            if not isinstance(c, dict):
                raise self.fail(f"{where}: expected a table")
            self.only(c, {"id", "reference", "used_for"}, where)
            for key in ("id", "reference", "used_for"):
                if key not in c:
                    raise self.fail(f"{where}: missing {key!r}")
                self.text(c[key], f"{where} {key}")
            out.append(dict(c))
        ids = [c["id"] for c in out]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise self.fail(f"[[citations]]: id {dup[0]!r} is used twice")
        return out

    def keypoints(self, table: dict, default_cv: float, citations: list[dict]) -> list[Keypoint]:
        if not table:
            raise self.fail("[keypoints]: no keypoints")
        if len(table) > MAX_KEYPOINTS:
            raise self.fail(f"[keypoints]: {len(table)} keypoints; at most {MAX_KEYPOINTS} allowed")
        cited = {c["id"] for c in citations}
        allowed = {"parent", "direction", "length", "length_sd", "length_cv", "aliases"}
        allowed |= {"source", "note", *AXES}
        nodes = []
        for name, kp in table.items():
            where = f"[keypoints.{name}]"
            if not _NAME.match(name):
                raise self.fail(f"{where}: keypoint names are letters, digits and _ only")
            if not isinstance(kp, dict):
                raise self.fail(f"{where}: expected a table")
            self.only(kp, allowed, where)
            parent = kp.get("parent")
            if parent is not None and not isinstance(parent, str):
                raise self.fail(f"{where} parent: expected a keypoint name, got {parent!r:.60}")
            if parent is None:
                extra = sorted(set(kp) & {"direction", "length", "length_sd", "length_cv", *AXES})
                if extra:
                    raise self.fail(f"{where}: the root has no bone, so no {extra[0]!r}")
                direction, length, sd = np.zeros(3), 0.0, 0.0
            else:
                for key in ("direction", "length"):
                    if key not in kp:
                        raise self.fail(f"{where}: missing {key!r}")
                direction = self.direction(kp["direction"], f"{where} direction")
                length = self.number(
                    kp["length"], f"{where} length", 0.0, strict=True, maximum=MAX_LENGTH
                )
                if "length_sd" in kp and "length_cv" in kp:
                    raise self.fail(f"{where}: give length_sd or length_cv, not both")
                if "length_sd" in kp:
                    sd = self.number(kp["length_sd"], f"{where} length_sd", 0.0, maximum=length)
                else:
                    cv = kp.get("length_cv", default_cv)
                    sd = length * self.number(cv, f"{where} length_cv", 0.0, maximum=1)
            angles = {a: self.range_(kp[a], f"{where} {a}") for a in AXES if a in kp}
            aliases = kp.get("aliases", [])
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise self.fail(f"{where} aliases: expected a list of strings")
            source = kp.get("source")
            if source is not None and source not in cited:
                raise self.fail(f"{where} source: {source!r} is not a [[citations]] id")
            nodes.append(
                Keypoint(
                    name=name,
                    parent=parent,
                    direction=direction,
                    length=length,
                    length_sd=sd,
                    angles=angles,
                    aliases=tuple(aliases),
                    source=source,
                    note=self.text(kp.get("note", ""), f"{where} note"),
                )
            )
        self.tree(nodes)
        self.check_aliases(nodes)
        return nodes

    def direction(self, value, where: str) -> np.ndarray:
        if not isinstance(value, list) or len(value) != 3:
            raise self.fail(f"{where}: expected [x, y, z], got {value!r:.60}")
        vec = np.array([self.number(v, where) for v in value])
        norm = float(np.linalg.norm(vec))
        if norm == 0:
            raise self.fail(f"{where}: zero vector (no direction)")
        return vec / norm

    def tree(self, nodes: list[Keypoint]) -> None:
        names = {k.name for k in nodes}
        for k in nodes:
            if k.parent is not None and k.parent not in names:
                raise self.fail(f"[keypoints.{k.name}] parent: unknown keypoint {k.parent!r}")
            if k.parent == k.name:
                raise self.fail(f"[keypoints.{k.name}] parent: a keypoint cannot be its own parent")
        roots = [k.name for k in nodes if k.parent is None]
        parent_of = {k.name: k.parent for k in nodes}
        reaches_root: set[str] = set()  # keypoints whose parent chain is known to end at a root
        for k in nodes:  # walk up until a known-good keypoint, a root, or back into the walk
            path = {k.name: 0}
            cur = k.parent
            while cur is not None and cur not in reaches_root:
                if cur in path:
                    walk = list(path)
                    loop = walk[path[cur] :] + [cur]
                    raise self.fail(f"[keypoints]: parent cycle {' -> '.join(loop)}")
                path[cur] = len(path)
                cur = parent_of[cur]
            reaches_root.update(path)
        if not roots:
            raise self.fail("[keypoints]: missing root (one keypoint must have no parent)")
        if len(roots) > 1:
            raise self.fail(
                f"[keypoints]: {len(roots)} roots ({', '.join(roots[:4])}); "
                "exactly one keypoint may have no parent"
            )

    def check_aliases(self, nodes: list[Keypoint]) -> None:
        owner: dict[str, str] = {k.name.lower(): k.name for k in nodes}
        for k in nodes:
            for alias in k.aliases:
                other = owner.get(alias.lower())
                if other is not None and other != k.name:
                    raise self.fail(
                        f"[keypoints.{k.name}] aliases: {alias!r} already names {other!r}"
                    )
                owner[alias.lower()] = k.name

    def symmetry(self, table: dict, nodes: list[Keypoint]) -> list[tuple[str, str]]:
        self.only(table, {"pairs"}, "[symmetry]")
        names = [k.name for k in nodes]
        pairs: list[tuple[str, str]] = []
        for n in names:
            if n.startswith("left_") and "right_" + n[5:] in names:
                pairs.append((n, "right_" + n[5:]))
        listed = table.get("pairs", [])
        if not isinstance(listed, list):
            raise self.fail("[symmetry] pairs: expected a list of [left, right] pairs")
        for p in listed:
            if not isinstance(p, list) or len(p) != 2:
                raise self.fail(f"[symmetry] pairs: expected [left, right], got {p!r:.60}")
            a, b = (self.known(n, "[symmetry] pairs", names) for n in p)
            if a == b:
                raise self.fail(f"[symmetry] pairs: {a!r} paired with itself")
            if (a, b) not in pairs:
                pairs.append((a, b))
        used = [n for p in pairs for n in p]
        dup = sorted({n for n in used if used.count(n) > 1})
        if dup:
            raise self.fail(f"[symmetry]: {dup[0]!r} is in two pairs")
        by_name = {k.name: k for k in nodes}
        for a, b in pairs:
            ka, kb = by_name[a], by_name[b]
            mirrored = ka.direction * np.array([1.0, -1.0, 1.0])
            if not np.allclose(mirrored, kb.direction, atol=1e-6) or not math.isclose(
                ka.length, kb.length, rel_tol=1e-9
            ):
                raise self.fail(
                    f"[symmetry]: {a} and {b} are a left/right pair but their bones are not "
                    "mirror images (direction with y negated, same length)"
                )
        return pairs

    def edges(self, table: dict, names: list[str]) -> list[tuple[str, str]] | None:
        self.only(table, {"display"}, "[edges]")
        if "display" not in table:
            return None
        value = table["display"]
        if not isinstance(value, list):
            raise self.fail("[edges] display: expected a list of [a, b] pairs")
        out = []
        for e in value:
            if not isinstance(e, list) or len(e) != 2:
                raise self.fail(f"[edges] display: expected [a, b], got {e!r:.60}")
            a, b = (self.known(n, "[edges] display", names) for n in e)
            if a == b:
                raise self.fail(f"[edges] display: edge [{a!r}, {b!r}] joins a keypoint to itself")
            out.append((a, b))
        return out

    def motion(self, table: dict, gaits_table: dict, names: list[str]) -> Motion:
        keys = {"legs", "front_legs", "hind_legs", "spine", "neck", "tail", "groom_target"}
        keys |= {"rear_pitch_deg", "groom_hz", "fps", "behaviours"}
        self.only(table, keys, "[motion]")
        lists = {
            k: self.names(table.get(k, []), f"[motion] {k}", names)
            for k in ("legs", "front_legs", "hind_legs", "spine", "neck", "tail")
        }
        for k in ("front_legs", "hind_legs"):
            extra = sorted(set(lists[k]) - set(lists["legs"]))
            if extra:
                raise self.fail(f"[motion] {k}: {extra[0]!r} is not in [motion] legs")
        groom = table.get("groom_target")
        if groom is not None:
            self.known(groom, "[motion] groom_target", names)
        rear = self.range_(table.get("rear_pitch_deg", [0, 0]), "[motion] rear_pitch_deg")
        groom_hz = self.range_(table.get("groom_hz", [3, 6]), "[motion] groom_hz")
        fps = self.number(table.get("fps", 30.0), "[motion] fps", 0.0, strict=True)
        gaits = {}
        for gname, g in gaits_table.items():
            where = f"[gaits.{gname}]"
            if gname in BASE_BEHAVIOURS:
                raise self.fail(f"{where}: {gname!r} is a behaviour name; call the gait otherwise")
            if not isinstance(g, dict):
                raise self.fail(f"{where}: expected a table")
            self.only(g, {"phases", "duty", "frequency_hz", "stride"}, where)
            for key in ("phases", "duty", "frequency_hz"):
                if key not in g:
                    raise self.fail(f"{where}: missing {key!r}")
            phases = g["phases"]
            if not isinstance(phases, dict):
                raise self.fail(f"{where} phases: expected a table {{leg = phase}}")
            for leg, ph in phases.items():
                if leg not in lists["legs"]:
                    raise self.fail(f"{where} phases: {leg!r} is not in [motion] legs")
                self.number(ph, f"{where} phases.{leg}")
            missing = [leg for leg in lists["legs"] if leg not in phases]
            if missing:
                raise self.fail(f"{where} phases: no phase for leg {missing[0]!r}")
            duty = self.number(g["duty"], f"{where} duty", 0.0, strict=True)
            if duty >= 1:
                raise self.fail(f"{where} duty: {duty:g} must be < 1")
            freq = self.range_(g["frequency_hz"], f"{where} frequency_hz")
            if freq[0] <= 0:
                raise self.fail(f"{where} frequency_hz: must be > 0")
            gaits[gname] = Gait(
                name=gname,
                phases={k: float(v) % 1.0 for k, v in phases.items()},
                duty=duty,
                frequency_hz=freq,
                stride=self.number(g.get("stride", 0.4), f"{where} stride", 0.0),
            )
        behaviours = self.table(table, "behaviours", "[motion] behaviours")
        known = set(BASE_BEHAVIOURS) | set(gaits)
        out: dict[str, float] = {}
        for b, w in behaviours.items():
            if b not in known:
                raise self.fail(
                    f"[motion] behaviours: unknown behaviour {b!r} "
                    f"(expected one of {', '.join(sorted(known))})"
                )
            out[b] = self.number(w, f"[motion] behaviours.{b}", 0.0)
        needs = {"rear": "hind_legs", "groom": "groom_target", "head_turn": "neck"}
        for b, need in needs.items():
            if out.get(b) and not (lists.get(need) or (need == "groom_target" and groom)):
                raise self.fail(f"[motion] behaviours: {b!r} needs [motion] {need}")
        if out.get("groom") and not lists["front_legs"]:
            raise self.fail("[motion] behaviours: 'groom' needs [motion] front_legs")
        if out and not any(out.values()):
            raise self.fail(
                "[motion] behaviours: every weight is 0 (give at least one behaviour a weight > 0)"
            )
        if not out:
            out = {"still": 1.0}
        return Motion(
            **lists,
            groom_target=groom,
            rear_pitch_deg=rear,
            groom_hz=groom_hz,
            fps=fps,
            gaits=gaits,
            behaviours=out,
        )
