"""Built-in lifters, shipped inside the package: 3D from 2D with no training and no 3D data.

Each built-in is an MLP trained only on poses sampled from a shipped body model
(:mod:`napari_liftpose.bodies.sampler`), seen by random virtual cameras of one set-up, with
random subsets of up to 80 % of its keypoints hidden (``TrainConfig.subset_dropout``), so it
lifts whatever subset a lab tracks. :func:`lifter_for_tracks` maps a lab's keypoint names
onto the body model's and adapts the lifter to them exactly (:func:`~napari_liftpose.bodies.adapt.adapt_lifter`).

The files and their manifest (``builtin/manifest.toml``: name, body model, camera set-up,
description, file, sha256) are written by ``scripts/build_builtin_lifters.py`` from
:data:`RECIPES` (seeded and reproducible: :func:`build_builtin` on the CPU gives the shipped
tensors bit for bit). Loading checks the file's sha256 against the manifest and then goes
through the ordinary safe loader (:func:`~napari_liftpose.lifting.load_lifter`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from napari_liftpose.bodies.adapt import adapt_lifter, record_body_model
from napari_liftpose.bodies.library import body_library, body_model_meta
from napari_liftpose.bodies.mapping import KeypointMapping, map_keypoints, read_mapping_file
from napari_liftpose.bodies.model import load_body_model, shipped_models
from napari_liftpose.lifting.checkpoint import ModelFileError
from napari_liftpose.lifting.inference import Lifter, load_lifter
from napari_liftpose.poses import Poses

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "BUILTIN_DIR",
    "RECIPES",
    "BuiltinLifter",
    "Recipe",
    "build_builtin",
    "builtin_info",
    "builtin_names",
    "describe_builtins",
    "lifter_for_tracks",
    "load_builtin",
]

#: Folder of the shipped lifter files and ``manifest.toml``.
BUILTIN_DIR = Path(__file__).with_name("builtin")
MANIFEST = BUILTIN_DIR / "manifest.toml"
#: Poses sampled from the body model to recompute an adapted lifter's bone statistics.
_BONE_STATS_POSES = 2048


@dataclass(frozen=True)
class Recipe:
    """How one built-in lifter is made (all of it seeded).

    Attributes
    ----------
    name : str
        The built-in's name (``mouse-top``).
    body_model : str
        A shipped body model.
    elevation : (float, float)
        Random cameras' elevation range in degrees (90 looks straight down); any azimuth.
    camera : str
        The set-up in words, for listings.
    description : str
        What it is for.
    root : str
        Root keypoint: every lab that uses it must track it.
    n_poses, epochs, width, blocks, seed : int
        Library size and training.
    subset_dropout, bone_jitter : float
        Augmentations (see ``TrainConfig``).
    noise_2d : float, optional
        2D noise as a fraction of the pose's size (None: ``TrainConfig``'s default for random
        cameras, 0.03).
    """

    name: str
    body_model: str
    elevation: tuple[float, float]
    camera: str
    description: str
    root: str
    n_poses: int = 40_000
    epochs: int = 16
    width: int = 256
    blocks: int = 1
    seed: int = 0
    subset_dropout: float = 0.8
    bone_jitter: float = 0.05
    noise_2d: float | None = None

    @property
    def file(self) -> str:
        """The lifter's file name in :data:`BUILTIN_DIR`."""
        return f"{self.name}.safetensors"


#: The built-in lifters, by name.
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="mouse-top",
            body_model="mouse",
            elevation=(50.0, 88.0),
            camera="one camera above the arena (random cameras, elevation 50-88 deg, any azimuth)",
            description="mouse or rat filmed from above (open field, home cage from the top)",
            root="tail_base",
        ),
        Recipe(
            name="mouse-side",
            body_model="mouse",
            elevation=(-5.0, 45.0),
            camera="one camera beside the animal (random cameras, elevation -5-45 deg, any azimuth)",
            description="mouse or rat filmed from the side or obliquely (an arena or treadmill seen from the side)",
            root="tail_base",
        ),
        Recipe(
            name="fly-side",
            body_model="fly",
            elevation=(-10.0, 40.0),
            camera="one camera beside the fly (random cameras, elevation -10-40 deg, any azimuth)",
            description="Drosophila filmed from the side (tethered on a ball or walking)",
            root="left_middle_coxa",
        ),
    )
}


@dataclass(frozen=True)
class BuiltinLifter:
    """One entry of the manifest: a shipped lifter."""

    name: str
    body_model: str
    camera: str
    description: str
    file: str
    sha256: str
    root: str
    size_bytes: int

    @property
    def path(self) -> Path:
        """The lifter file."""
        return BUILTIN_DIR / self.file


def _manifest() -> dict[str, BuiltinLifter]:
    """The shipped manifest, checked (a broken install gives one clear error)."""
    try:
        table = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ModelFileError(
            MANIFEST, f"cannot read the built-in lifters' manifest ({err})"
        ) from None
    entries = table.get("lifter", [])
    out: dict[str, BuiltinLifter] = {}
    fields = ("name", "body_model", "camera", "description", "file", "sha256", "root")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) for f in fields):
            raise ModelFileError(MANIFEST, f"malformed entry {entry!r:.200}; expected {fields}")
        size = entry.get("size_bytes", 0)
        out[entry["name"]] = BuiltinLifter(
            **{f: entry[f] for f in fields}, size_bytes=int(size) if isinstance(size, int) else 0
        )
    return out


def builtin_names() -> list[str]:
    """Names of the shipped lifters (``["mouse-top", "mouse-side", "fly-side"]``)."""
    return list(_manifest())


def builtin_info(name: str) -> BuiltinLifter:
    """The manifest entry of built-in ``name``.

    Raises
    ------
    ValueError
        ``"unknown built-in lifter 'X'; expected one of [...]"``.
    """
    manifest = _manifest()
    if name not in manifest:
        raise ValueError(f"unknown built-in lifter {name!r:.80}; expected one of {list(manifest)}")
    return manifest[name]


def describe_builtins() -> str:
    """A readable list of the built-in lifters: name, body model, camera, use, size."""
    lines = []
    for info in _manifest().values():
        lines.append(
            f"{info.name}: {info.description}. Body model {info.body_model!r}, root "
            f"{info.root!r}; {info.camera}; {info.size_bytes / 1e6:.2f} MB"
        )
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_builtin(name: str, device: str = "cpu") -> Lifter:
    """Load a built-in lifter (full body-model skeleton) after checking its sha256.

    Parameters
    ----------
    name : str
        One of :func:`builtin_names`.
    device : str
        ``"cpu"`` (default), ``"auto"``, ``"cuda"``, ``"mps"``.

    Returns
    -------
    Lifter
        Keypoints: the body model's. Use :func:`lifter_for_tracks` to lift a lab's file.

    Raises
    ------
    ValueError
        For an unknown name.
    ModelFileError
        If the file is missing or its sha256 differs from the manifest's (changed or damaged).
    """
    info = builtin_info(name)
    if not info.path.is_file():
        raise ModelFileError(
            info.path, f"built-in lifter {name!r} is missing; reinstall napari-liftpose"
        )
    found = _sha256(info.path)
    if found != info.sha256:
        raise ModelFileError(
            info.path,
            f"sha256 {found[:16]}... differs from the manifest's {info.sha256[:16]}...: the "
            f"built-in lifter {name!r} was changed or damaged; reinstall napari-liftpose",
        )
    return load_lifter(info.path, device)


def lifter_for_tracks(
    name_or_lifter: str | Lifter,
    tracks: Poses | Sequence[str],
    mapping_file: str | Path | None = None,
    device: str = "cpu",
) -> tuple[Lifter, KeypointMapping]:
    """A lifter for a lab's tracks: their keypoints mapped onto a body-model lifter's.

    Parameters
    ----------
    name_or_lifter : str or Lifter
        A built-in name, or a lifter trained on a body model's full skeleton (its metadata
        records ``body_model``, as built-ins and ``train --body`` lifters do).
    tracks : Poses or sequence of str
        The lab's 2D tracks (their keypoints and edges are used) or just the keypoint names.
    mapping_file : str or Path, optional
        A TOML ``[mapping]`` file overriding the automatic mapping (``docs/mapping.md``).
    device : str
        Device for a built-in.

    Returns
    -------
    tuple
        ``(lifter, mapping)``: the adapted lifter (keypoints: the mapped user names; lift the
        tracks with it directly) and the mapping (``mapping.describe()`` says what is not
        mapped; :func:`~napari_liftpose.bodies.mapping.to_user_poses` puts the unmapped
        keypoints back as NaN).

    Raises
    ------
    ValueError
        Unknown built-in, a lifter that records no body model, nothing mapped, or the root not
        mapped (:class:`~napari_liftpose.bodies.adapt.AdaptError`, naming the root).
    PoseFileError
        A bad mapping file (naming it and the problem).
    """
    lifter = (
        load_builtin(name_or_lifter, device) if isinstance(name_or_lifter, str) else name_or_lifter
    )
    body = _recorded_body_model(lifter)
    names = list(tracks.keypoints) if isinstance(tracks, Poses) else [str(n) for n in tracks]
    overrides = None
    if mapping_file is not None:
        overrides = read_mapping_file(mapping_file, lifter.keypoints)
    mapping = map_keypoints(
        names, lifter.keypoints, aliases=body.get("aliases"), overrides=overrides
    )
    edges = None
    if isinstance(tracks, Poses) and len(tracks.edges):
        edges = tracks.edges
    library = None
    if body.get("name") in shipped_models() and body.get("keypoints") == lifter.keypoints:
        library = body_library(body["name"], _BONE_STATS_POSES, seed=0)
    return adapt_lifter(lifter, mapping, edges=edges, library=library), mapping


def _recorded_body_model(lifter: Lifter) -> dict:
    """The lifter's ``body_model`` metadata, checked (a stranger's file may hold anything)."""
    body = lifter.meta.get("body_model")
    where = str(lifter.path) if lifter.path else "the lifter"
    if body is None:
        raise ValueError(
            f"{where}: records no body model, so its keypoints cannot be mapped onto a lab's; "
            "expected a built-in lifter or one trained with --body"
        )
    ok = isinstance(body, dict) and isinstance(body.get("name"), str)
    aliases = body.get("aliases", {}) if isinstance(body, dict) else None
    ok = ok and isinstance(aliases, dict)
    ok = ok and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) for a in v)
        for k, v in aliases.items()
    )
    if not ok:
        raise ValueError(f"{where}: body_model: expected a name and aliases, got {body!r:.200}")
    return {**body, "aliases": {k: v for k, v in aliases.items() if k in lifter.keypoints}}


def build_builtin(
    name: str,
    output: str | Path,
    progress: Callable | None = None,
    recipe: Recipe | None = None,
) -> Path:
    """Train built-in ``name`` from its :data:`RECIPES` entry and write it to ``output``.

    ``recipe`` replaces the entry (to try another one); ``progress`` goes to ``train``.

    Deterministic on the CPU with one thread: the shipped file's tensors come out bit for
    bit (``scripts/build_builtin_lifters.py --check``). The metadata records ``body_model``
    (:func:`~napari_liftpose.bodies.library.body_model_meta`) and ``builtin`` (the recipe).

    Returns
    -------
    Path
        ``output``.
    """
    from dataclasses import asdict

    from napari_liftpose.lifting import RandomCameras, TrainConfig, train

    recipe = recipe or RECIPES[name]
    model = load_body_model(recipe.body_model)
    library = body_library(model, recipe.n_poses, seed=recipe.seed).copy(
        source=f"body model {model.name} (seed {recipe.seed})"
    )
    config = TrainConfig(
        model="mlp",
        architecture={"width": recipe.width, "blocks": recipe.blocks},
        epochs=recipe.epochs,
        seed=recipe.seed,
        device="cpu",
        subset_dropout=recipe.subset_dropout,
        bone_jitter=recipe.bone_jitter,
        noise_2d=recipe.noise_2d,
    )
    cameras = RandomCameras(elevation=recipe.elevation)
    result = train(library, cameras, output, config, roots=[recipe.root], progress=progress)
    if not result.written:
        raise RuntimeError(f"building {name}: training wrote no model ({result.status})")
    builtin = {**asdict(recipe), "elevation": list(recipe.elevation)}
    return record_body_model(output, body_model_meta(model), builtin=builtin)
