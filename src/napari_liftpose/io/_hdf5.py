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
    """Open an HDF5 file for reading, turning h5py's errors into a :class:`PoseFileError`.

    A dataset that keeps its values in other files (external raw storage, virtual datasets) is
    refused: reading it would read any local file, or block forever on a FIFO.
    """
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise PoseFileError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {err}"
        ) from None
    try:
        problem = _external_storage(handle)
    except BaseException:
        handle.close()
        raise
    if problem:
        handle.close()
        raise PoseFileError(path, problem)
    return handle


def refuse_external_storage(path: Path) -> None:
    """Raise if a dataset of ``path`` keeps its data in other files; an unreadable file passes.

    For readers that open the file with another library (sleap-io) and word their own errors.
    """
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError):
        return
    with handle:
        problem = _external_storage(handle)
    if problem:
        raise PoseFileError(path, problem)


def stores_data_elsewhere(dataset: h5py.Dataset) -> bool:
    """True for a dataset whose data lives in other files (external or virtual storage)."""
    return bool(dataset.is_virtual or dataset.id.get_create_plist().get_external_count())


def _external_storage(handle: h5py.File) -> str | None:
    """What dataset of ``handle`` keeps its data in other files, or None."""
    found: list[str] = []

    def visit(name: str, obj: h5py.HLObject) -> object:
        if isinstance(obj, h5py.Dataset) and stores_data_elsewhere(obj):
            found.append("/" + name)
            return True  # stop visiting
        return None

    try:
        handle.visititems(visit)
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        return f"HDF5 structure that cannot be inspected ({err})"
    if found:
        return f"dataset {found[0]} keeps its data in other files; refused: it would read them"
    return None


def decode(values) -> list[str]:
    """HDF5 string arrays (bytes or str) -> list of str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
