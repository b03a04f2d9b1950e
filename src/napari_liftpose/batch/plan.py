"""Which files a batch lifts and where each output goes.

An input is a file, a folder (searched recursively) or a glob pattern (expanded here, so a
quoted pattern works the same as one the shell expanded; ``**`` matches any depth). Each input
file gets one output under the output folder that mirrors where it sits below the folder or
the pattern's fixed part: ``<rel folder>/<stem>.lifted<ext>``. Folders and patterns take only
files with a suffix some reader claims (:data:`napari_liftpose.io.FORMATS`) and leave out hidden
files and folders (``.git``, the atomic writer's temporary files) and earlier outputs
(``*.lifted.*``); a file named explicitly is always taken.

An output that exists is complete: every writer publishes its file by an atomic rename after
verifying it (:mod:`napari_liftpose.io.atomic`), so an interrupted run leaves either no output
or a whole one. :func:`plan_batch` skips those (unless ``overwrite``), which is how a run
resumes; an existing output that no reader recognises is redone.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from napari_liftpose.io.errors import PoseFileError

__all__ = [
    "BatchPlanError",
    "Job",
    "Plan",
    "find_inputs",
    "input_suffixes",
    "lifted_suffixes",
    "plan_batch",
]

_MAGIC = ("*", "?", "[")
_LIFTED = ".lifted"


class BatchPlanError(ValueError):
    """Inputs or an output folder that cannot make a batch (a typo, two inputs, one output)."""


@dataclass(frozen=True)
class Job:
    """One input file and the output it is written to."""

    source: Path
    target: Path


@dataclass
class Plan:
    """What a batch will do: ``todo`` to lift, ``skipped`` (a complete output exists)."""

    todo: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    redo: list[Job] = field(default_factory=list)  # an existing output was not a complete file

    @property
    def total(self) -> int:
        """Number of input files."""
        return len(self.todo) + len(self.skipped)


def lifted_suffixes() -> tuple[str, ...]:
    """Suffixes a lifted 3D file can be written with (:data:`napari_liftpose.io.LIFTED_SUFFIXES`)."""
    from napari_liftpose.io import LIFTED_SUFFIXES

    return tuple(LIFTED_SUFFIXES)


def input_suffixes() -> frozenset[str]:
    """Suffixes some reader claims: what folders and patterns are searched for."""
    from napari_liftpose.io import FORMATS

    return frozenset(s for f in FORMATS.values() for s in f.suffixes)


def _is_candidate(path: Path, suffixes: frozenset[str]) -> bool:
    name = path.name
    return (
        not name.startswith(".")
        and path.suffix.lower() in suffixes
        and f"{_LIFTED}." not in name.lower()
    )


def _walk(folder: Path, suffixes: frozenset[str], exclude: Path | None) -> Iterable[Path]:
    """Candidate files below ``folder``, sorted, skipping hidden folders and ``exclude``."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        here = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (exclude is None or here / d != exclude)
        )
        for name in sorted(files):
            path = here / name
            if _is_candidate(path, suffixes) and path.is_file():
                yield path


def _glob(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, except that ``**`` never enters a symlinked folder.

    Python's ``**`` follows symbolic links to folders, so a link to a parent folder makes it
    run forever; here, as for a folder input (``os.walk(followlinks=False)``), a linked folder
    is neither entered nor matched by ``**``. Names starting with ``.`` match only a pattern
    component starting with ``.``, as in :mod:`glob`.
    """
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    candidates = [os.path.join(*parts[:first])] if first else [""]
    rest = parts[first:]
    for k, part in enumerate(rest):
        last = k == len(rest) - 1
        found: list[str] = []
        for folder in candidates:
            if part == "**":
                if folder:  # zero folders deep: the folder itself ("a/" when last, as glob)
                    found.append(os.path.join(folder, "") if last else folder)
                found += _below(folder, files=last)
            elif glob.has_magic(part):
                found += _matching(folder, part, dirs_only=not last)
            else:
                path = os.path.join(folder, part)
                if os.path.lexists(path) if last else os.path.isdir(path):
                    found.append(path)
        candidates = list(dict.fromkeys(found))
    return candidates


def _matching(folder: str, part: str, *, dirs_only: bool) -> list[str]:
    """Entries of ``folder`` matching the wildcard component ``part``."""
    try:
        entries = list(os.scandir(folder or os.curdir))
    except OSError:
        return []
    return [
        os.path.join(folder, e.name)
        for e in entries
        if fnmatch.fnmatch(e.name, part)
        and (part.startswith(".") or not e.name.startswith("."))
        and (not dirs_only or e.is_dir())
    ]


def _below(folder: str, *, files: bool) -> list[str]:
    """Folders (and files when ``files``) below ``folder``, not entering symlinked folders."""
    found, stack = [], [folder]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here or os.curdir))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = os.path.join(here, entry.name)
            if entry.is_dir(follow_symlinks=False):
                found.append(path)
                stack.append(path)
            elif files and not (entry.is_symlink() and entry.is_dir()):
                found.append(path)
    return found


def _fixed_part(pattern: str) -> Path:
    """The folder before the first component with a wildcard (``a/b/**/*.h5`` -> ``a/b``)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if any(m in part for m in _MAGIC):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def find_inputs(
    inputs: Sequence[str | Path], out_dir: Path | None = None
) -> list[tuple[Path, Path]]:
    """Expand files, folders and glob patterns into ``(file, path relative to its base)``.

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, folders or glob patterns (``**`` for any depth).
    out_dir : Path, optional
        The output folder: left out when it lies inside a searched folder.

    Returns
    -------
    list of (Path, Path)
        Every input file once (the first spelling wins), in the order given, folders sorted.

    Raises
    ------
    BatchPlanError
        For an input that is neither a file, a folder nor a pattern matching something.
    """
    suffixes = input_suffixes()
    exclude = Path(os.path.abspath(out_dir)) if out_dir is not None else None
    found: list[tuple[Path, Path]] = []
    for spec in map(str, inputs):
        path = Path(spec)
        if path.is_dir():
            base = Path(os.path.abspath(path))
            skip = exclude if exclude is not None and exclude != base else None
            found += [(p, p.relative_to(base)) for p in _walk(base, suffixes, skip)]
        elif path.exists() or os.path.lexists(path):
            found.append((path, Path(path.name)))
        elif any(m in spec for m in _MAGIC):
            base = _fixed_part(spec)
            matches = sorted(_glob(spec))
            if not matches:
                raise BatchPlanError(f"{spec}: the pattern matches no file")
            base_abs = Path(os.path.abspath(base))
            for match in map(Path, matches):
                if match.is_dir():
                    folder = Path(os.path.abspath(match))
                    found += [(p, p.relative_to(base_abs)) for p in _walk(folder, suffixes, None)]
                elif _is_candidate(match, suffixes):
                    found.append((match, Path(os.path.abspath(match)).relative_to(base_abs)))
        else:
            raise BatchPlanError(f"{spec}: no such file or folder (nor a pattern: * ? [ ])")
    seen: set[Path] = set()
    unique = []
    for path, rel in found:
        key = Path(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            unique.append((path, rel))
    return unique


def _targets(files: list[tuple[Path, Path]], out_dir: Path, ext: str) -> list[Path]:
    """``out_dir/<rel folder>/<stem>.lifted<ext>``; inputs sharing a stem keep their suffix."""
    by_stem: dict[Path, int] = {}
    for _, rel in files:
        key = rel.parent / rel.stem
        by_stem[key] = by_stem.get(key, 0) + 1
    targets = []
    for _, rel in files:
        name = rel.stem if by_stem[rel.parent / rel.stem] == 1 else rel.name
        targets.append(out_dir / rel.parent / f"{name}{_LIFTED}{ext}")
    return targets


def _is_complete(target: Path) -> bool:
    """An existing output some reader recognises (written atomically, so whole)."""
    from napari_liftpose.io import detect_format

    try:
        return target.is_file() and detect_format(target) is not None
    except (OSError, PoseFileError, ValueError):
        return False


def plan_batch(
    inputs: Sequence[str | Path], out_dir: str | Path, ext: str = ".npz", overwrite: bool = False
) -> Plan:
    """Find the input files and decide what to lift.

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, folders or glob patterns (see :func:`find_inputs`).
    out_dir : str or Path
        The output folder (created by the writers as needed).
    ext : str
        Output suffix, one of :func:`lifted_suffixes`.
    overwrite : bool
        Lift every file again even where a complete output exists.

    Returns
    -------
    Plan

    Raises
    ------
    BatchPlanError
        For a missing input, a pattern matching nothing, no input file at all, an unknown
        ``ext``, two inputs that would share an output, or an output that is an input.
    """
    if ext not in lifted_suffixes():
        raise BatchPlanError(f"--ext: expected one of {list(lifted_suffixes())}, got {ext!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BatchPlanError(f"{out_dir}: exists and is not a folder")
    files = find_inputs(inputs, out_dir)
    if not files:
        raise BatchPlanError(
            f"no input file found in {', '.join(map(str, inputs))} (searched for "
            f"{', '.join(sorted(input_suffixes()))})"
        )
    targets = _targets(files, out_dir, ext)
    owner: dict[Path, Path] = {}
    for (source, _), target in zip(files, targets, strict=True):
        key = Path(os.path.abspath(target))
        if key in owner:
            raise BatchPlanError(
                f"{target}: both {owner[key]} and {source} would be written there; lift them "
                "in separate runs or give their common folder"
            )
        owner[key] = source
    inodes = {key: source for source, _ in files if (key := _inode(source)) is not None}
    plan = Plan()
    for (source, _), target in zip(files, targets, strict=True):
        job = Job(source, target)
        if os.path.lexists(target):
            hit = inodes.get(_inode(target) or (-1, -1))
            if hit is not None:
                raise BatchPlanError(f"{target}: would overwrite the input {hit}")
            if not overwrite:
                if _is_complete(target):
                    plan.skipped.append(job)
                    continue
                plan.redo.append(job)
        plan.todo.append(job)
    return plan


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
