"""Small helpers shared by the HDF5-based formats."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from napari_liftpose.io.errors import PoseFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_BOMB_BYTES = 1 << 30  # datasets above 1 GiB in memory...
_BOMB_RATIO = 1000  # ...that are over 1000 times their stored size are refused unread


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


def read_dataset(f: h5py.Group, name: str) -> np.ndarray:
    """The whole dataset ``name`` of an open HDF5 file, as a NumPy array.

    Raises
    ------
    ValueError
        If ``name`` is a link to elsewhere, a group, a dataset whose values are not plain
        numbers or strings, or one that would take over 1 GiB in memory while storing less
        than a thousandth of that (a few bytes claiming a huge shape).
    """
    link = f.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise ValueError(f"{name}: expected a dataset in this file, got a {type(link).__name__}")
    obj = f[name]
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"{name}: expected a dataset, got a {type(obj).__name__.lower()}")
    kind = obj.dtype.kind
    string = h5py.check_string_dtype(obj.dtype) is not None
    if kind not in "iufSU" and not string:
        raise ValueError(f"{name}: expected numbers or strings, got HDF5 type {obj.dtype}")
    declared = obj.size * obj.dtype.itemsize
    stored = obj.id.get_storage_size()
    if declared > _BOMB_BYTES and declared > _BOMB_RATIO * max(stored, 1):
        raise ValueError(
            f"{name}: its shape {obj.shape} needs {declared:,} bytes but the file stores only "
            f"{stored:,} for it; refusing to allocate (a crafted or mostly empty dataset?)"
        )
    value = obj[()]
    if string and isinstance(value, np.ndarray) and value.dtype.kind == "O":
        value = np.array([v if isinstance(v, bytes) else str(v).encode() for v in value.ravel()])
        value = value.reshape(obj.shape)
    elif string and not isinstance(value, np.ndarray):
        value = np.array(value if isinstance(value, bytes) else str(value).encode())
    return np.asarray(value)
