"""Refuse HDF5 files that PyTables (and so pandas) would unpickle, before PyTables opens them.

PyTables runs ``pickle.loads`` on (a) every scalar byte-string attribute that ends with ``.``
(pandas keeps its own metadata that way: protocol-0 pickles of lists, tuples, dicts and strings)
and (b) the rows of ``VLArray`` datasets with an object pseudo-atom (pandas "fixed" tables with an
object column or row index). A crafted file can therefore run code as soon as pandas reads it,
even when only listing its keys.

:func:`check_no_pickles` inspects the file with h5py, which never unpickles, and refuses it
unless every attribute that could be unpickled is a *literal-only* pickle (numbers, strings,
bytes, ``None``, booleans, and lists, tuples, dicts and sets of those), no dataset is
variable-length or opaque, and no link leads elsewhere. It reads attributes and dataset
headers only, never dataset contents, so it costs milliseconds whatever the number of frames.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from napari_liftpose.io._hdf5 import stores_data_elsewhere
from napari_liftpose.io.errors import PoseFileError

__all__ = ["check_no_pickles", "is_literal_pickle"]

#: Pickle opcodes that only build literals (no import, no call, no attribute set).
_LITERAL_OPCODES = frozenset(
    {
        # framing
        "PROTO", "FRAME", "STOP", "MARK",
        # None, booleans, integers, floats
        "NONE", "NEWTRUE", "NEWFALSE",
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
        "FLOAT", "BINFLOAT",
        # strings and bytes
        "STRING", "BINSTRING", "SHORT_BINSTRING",
        "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
        "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
        # containers
        "EMPTY_LIST", "LIST", "APPEND", "APPENDS",
        "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
        "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
        "EMPTY_SET", "ADDITEMS", "FROZENSET",
        # memo and stack
        "PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET", "MEMOIZE",
        "POP", "POP_MARK", "DUP",
    }
)  # fmt: skip

_REFUSED = "refused: opening it could run code"


def is_literal_pickle(data: bytes) -> bool:
    """True if ``data`` is a complete pickle that only builds literal values.

    Every opcode up to the first ``STOP`` must be in the whitelist (no ``GLOBAL``, ``REDUCE``,
    ``BUILD``, ``INST``, ``OBJ``, ``NEWOBJ``, ``EXT``, ``PERSID``...). A stream that cannot be
    parsed to its ``STOP`` is not literal: ``pickle.loads`` would run the opcodes before a
    malformed tail.
    """
    try:
        for opcode, _arg, _pos in pickletools.genops(data):
            if opcode.name not in _LITERAL_OPCODES:
                return False
            if opcode.name == "STOP":
                return True
    except Exception:  # malformed or truncated stream: genops raises ValueError and others
        return False
    return False


def check_no_pickles(path: str | Path, image: bytes | None = None) -> None:
    """Raise unless PyTables can open ``path`` without unpickling anything but literals.

    Parameters
    ----------
    path : str or Path
        The HDF5 file (named in the error).
    image : bytes, optional
        The file's bytes, already read. Pass them and open PyTables on the same bytes so that
        the file checked is the file read, even if ``path`` changes in between.

    Raises
    ------
    PoseFileError
        Naming the HDF5 object that holds a pickled Python object, a variable-length or opaque
        dataset, or a soft or external link; or if the file is not readable HDF5.
    """
    path = Path(path)
    try:
        handle = h5py.File(io.BytesIO(image) if image is not None else path, "r")
    except (OSError, ValueError) as err:
        raise PoseFileError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {err}"
        ) from None
    with handle:
        problem = _first_problem(handle)
    if problem:
        raise PoseFileError(path, problem)


def _first_problem(handle: h5py.File) -> str | None:
    """What makes the open file unsafe for PyTables, or None."""
    objects: list[tuple[str, h5py.HLObject]] = [("/", handle)]

    def collect(name: str, obj: h5py.HLObject) -> None:
        objects.append(("/" + name, obj))

    try:
        handle.visititems(collect)  # every object once (hard links), root not included
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        return f"HDF5 structure that cannot be inspected ({err}); {_REFUSED}"
    for name, obj in objects:
        problem = _attribute_problem(name, obj)
        if problem is None and isinstance(obj, h5py.Group):
            problem = _link_problem(name, obj)
        if problem is None and isinstance(obj, h5py.Dataset):
            problem = _dataset_problem(name, obj)
        if problem:
            return problem
    return None


def _attribute_problem(name: str, obj: h5py.HLObject) -> str | None:
    """A pickle-like attribute value that is not a literal-only pickle, or None."""
    try:
        attr_names = list(obj.attrs.keys())
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        return f"attributes of {name} cannot be inspected ({err}); {_REFUSED}"
    for attr in attr_names:
        where = f"attribute {attr!r} of {name}"
        try:
            value = obj.attrs[attr]
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
            return f"{where} cannot be inspected ({err}); {_REFUSED}"
        for data in _strings(value):
            if data.rstrip(b"\x00").endswith(b".") and not is_literal_pickle(data):
                return f"holds pickled Python objects ({where}); {_REFUSED}"
    return None


def _strings(value: object) -> Iterator[bytes]:
    """Every byte or text string in an attribute value (scalar or array), as bytes."""
    if isinstance(value, (bytes, np.bytes_)):
        yield bytes(value)
    elif isinstance(value, str):
        yield value.encode("utf-8", "surrogateescape")
    elif isinstance(value, np.ndarray) and value.dtype.kind in "OSUV":
        for item in value.flat:
            yield from _strings(item)
    elif isinstance(value, np.void) and value.dtype.fields:  # compound scalar: its fields
        for item in value.tolist():
            yield from _strings(item)


def _link_problem(name: str, group: h5py.Group) -> str | None:
    """A soft or external link in ``group`` (PyTables follows them), or None."""
    try:
        members = list(group.keys())
        for member in members:
            link = group.get(member, getlink=True)
            where = f"{name.rstrip('/')}/{member}"
            if isinstance(link, h5py.ExternalLink):
                return (
                    f"holds an external link {where} -> {link.filename}:{link.path}; "
                    "refused: opening it would read another file"
                )
            if isinstance(link, h5py.SoftLink):
                return (
                    f"holds a soft link {where} -> {link.path}; refused: pose tables have none "
                    "and a crafted one can hide pickled objects"
                )
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        return f"links of {name} cannot be inspected ({err}); {_REFUSED}"
    return None


def _dataset_problem(name: str, dataset: h5py.Dataset) -> str | None:
    """A dataset PyTables could unpickle (VLArray, variable-length, opaque), or None."""
    try:
        dtype = dataset.dtype
        attrs = dataset.attrs
        klass = attrs.get("CLASS")
        pseudo = attrs.get("PSEUDOATOM")
        flavor = attrs.get("FLAVOR")
        elsewhere = stores_data_elsewhere(dataset)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
        return f"dataset {name} cannot be inspected ({err}); {_REFUSED}"
    if (
        _text(klass) == "VLARRAY"
        or pseudo is not None
        or _text(flavor).lower() == "object"
        or _variable_or_opaque(dtype)
    ):
        return f"holds pickled Python objects (variable-length dataset {name}); {_REFUSED}"
    if elsewhere:
        return f"dataset {name} keeps its data in other files; refused: it would read them"
    return None


def _text(value: object) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else ""


def _variable_or_opaque(dtype: np.dtype) -> bool:
    """True for variable-length, object, reference or opaque types, also inside compounds."""
    if dtype.fields:
        return any(_variable_or_opaque(field[0]) for field in dtype.fields.values())
    if dtype.subdtype is not None:
        return _variable_or_opaque(dtype.subdtype[0])
    return dtype.kind == "O" or dtype.kind == "V"
