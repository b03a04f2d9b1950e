"""Path rules that keep inputs safe: same-file checks and where refined copies go."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["same_file", "colliding_input", "refined_path", "require_readable_file"]


def require_readable_file(path: str | Path) -> None:
    """Raise unless ``path`` is a regular file this process can open for reading.

    Says what is wrong ("file not found", "is a folder", "not a regular file", "cannot be read:
    permission denied") before a reader can blame the format ("not an HDF5 file").

    Raises
    ------
    PoseFileError
        Naming ``path`` and the problem.
    """
    from napari_liftpose.io.errors import PoseFileError, not_a_file_error

    if not Path(path).is_file():
        raise not_a_file_error(path)
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise PoseFileError(path, "cannot be read: permission denied") from None
    except OSError as err:
        raise PoseFileError(path, f"cannot be read: {err.strerror or err}") from None


def same_file(a: str | Path, b: str | Path) -> bool:
    """True if ``a`` and ``b`` name the same file.

    Symlinks, ``..`` spellings, relative and absolute spellings and hard links (same device and
    inode) all count. A path that does not exist yet can still resolve onto an existing one
    (through a symlinked folder, say), so both resolved paths are compared too.
    """
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def colliding_input(output: str | Path, inputs: Iterable[str | Path | None]) -> Path | None:
    """The first of ``inputs`` that ``output`` would overwrite, or None."""
    for candidate in inputs:
        if candidate is not None and same_file(output, candidate):
            return Path(candidate)
    return None


#: Suffixes that name a kind of file as a whole: ``name.refined`` goes before them.
_COMPOUND_SUFFIXES = (".pkg.slp", ".analysis.h5", ".analysis.hdf5")


def refined_path(path: str | Path) -> Path:
    """``name.refined.ext`` beside ``path``: where saving onto a source file goes instead.

    Compound suffixes stay whole (``x.pkg.slp`` -> ``x.refined.pkg.slp``), so SLEAP still
    recognises what the file is.
    """
    path = Path(path)
    name = path.name
    suffix = next((s for s in _COMPOUND_SUFFIXES if name.lower().endswith(s)), path.suffix)
    stem = name[: len(name) - len(suffix)] if suffix else name
    return path.with_name(f"{stem}.refined{name[len(stem):]}")
