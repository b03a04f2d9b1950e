"""Small helpers shared by the HDF5-based formats."""

from __future__ import annotations

from pathlib import Path

import h5py

from napari_liftpose.io.errors import PoseFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: Path) -> bool:
    """True if the file starts with the HDF5 signature (cheap; does not parse the file)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def hdf5_keys(path: Path) -> set[str]:
    """Top-level names in an HDF5 file, or an empty set if it cannot be opened."""
    try:
        with h5py.File(path, "r") as f:
            return set(f.keys())
    except (OSError, ValueError):
        return set()


def pandas_keys(path: Path) -> list[str]:
    """Groups that pandas stores a table in (they carry a ``pandas_type`` attribute).

    Read with h5py, which never unpickles: unlike ``pandas.HDFStore(path).keys()``, this is safe
    on a file from a stranger. Empty if the file cannot be opened.
    """
    keys: list[str] = []

    def collect(name: str, obj: h5py.HLObject) -> None:
        if isinstance(obj, h5py.Group) and "pandas_type" in obj.attrs:
            keys.append("/" + name)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(collect)
    except (OSError, ValueError, RuntimeError, KeyError):
        return []
    return keys


def open_hdf5(path: Path) -> h5py.File:
    """Open an HDF5 file for reading, turning h5py's errors into a :class:`PoseFileError`."""
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise PoseFileError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {err}"
        ) from None


def decode(values) -> list[str]:
    """HDF5 string arrays (bytes or str) -> list of str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
