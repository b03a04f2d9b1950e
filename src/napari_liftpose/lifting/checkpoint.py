"""One self-describing, pickle-free model file (safetensors + JSON metadata).

Layout of a ``.safetensors`` lifter file:

* tensors ``model.<name>``: the network's ``state_dict``;
* tensors ``norm.input_mean``, ``norm.input_std`` (``(keypoints, 2)``), ``norm.target_mean``,
  ``norm.target_std`` (``(keypoints - 1, 3)``): z-score statistics;
* tensors ``resume.*`` (only in the ``*.resume.safetensors`` file written beside a model while it
  trains): optimiser moments and random states;
* header metadata key ``napari_liftpose``: one JSON object with ``format``, ``format_version``,
  ``package_version``, ``architecture``, ``keypoints``, ``edges``, ``roots``, ``target_sets``,
  ``input_norm``, ``camera``, ``units``, ``training`` (config), ``metrics`` and ``history``.

Loading never unpickles anything; a pickle or zip (``torch.save``) file is refused.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from napari_liftpose.io.atomic import atomic_write_bytes
from napari_liftpose.io.errors import PoseFileError

__all__ = [
    "ModelFileError",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_header",
    "FORMAT",
    "FORMAT_VERSION",
]

FORMAT = "napari-liftpose-lifter"
FORMAT_VERSION = 1
_META_KEY = "napari_liftpose"


class ModelFileError(PoseFileError):
    """A lifter file that cannot be read or written (message: ``"PATH: problem"``)."""


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write tensors and metadata to ``path`` atomically and verified.

    The file is written to a temporary file in the target folder (plain Python I/O), fsynced,
    re-opened and checked (tensor names and shapes, metadata) and only then renamed onto
    ``path`` (:func:`napari_liftpose.io.atomic.atomic_write_bytes`); on any error the old file
    is left as it was and the temporary file is removed.

    Parameters
    ----------
    path : str or Path
        Destination ``.safetensors`` file.
    tensors : dict of str to torch.Tensor
        Everything numeric (weights, statistics, optimiser state).
    meta : dict
        JSON-able description; ``format``, ``format_version`` and ``package_version`` are added.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ModelFileError
        If the file cannot be written (missing folder, full disk, permissions...).
    """
    from napari_liftpose import __version__

    path = Path(path)
    header = {
        **meta,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
    }
    payload = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    shapes = {k: tuple(v.shape) for k, v in payload.items()}
    if not path.parent.is_dir():
        raise ModelFileError(path, f"cannot write: folder {path.parent} does not exist")
    if path.is_dir():
        raise ModelFileError(path, "cannot write: is a folder; expected a file name")
    data = save(payload, metadata={_META_KEY: json.dumps(header, allow_nan=True)})

    def verify(tmp: Path) -> None:
        with safe_open(str(tmp), framework="pt", device="cpu") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            if (f.metadata() or {}).get(_META_KEY) is None:
                raise ValueError("the napari-liftpose metadata is missing")
        if found != shapes:
            raise ValueError("the tensors' names or shapes differ from those written")

    try:
        atomic_write_bytes(path, data, verify=verify)
    except ModelFileError:
        raise
    except PoseFileError as err:
        raise ModelFileError(path, err.problem) from None
    return path


def _refuse_pickle(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        raise ModelFileError(
            path,
            "is a zip/pickle torch checkpoint (torch.save); refusing to load it because unpickling "
            "can run code. Expected a napari-liftpose .safetensors lifter",
        )
    if head[:1] == b"\x80" and head[1:2] in (bytes([p]) for p in range(2, 6)):
        raise ModelFileError(
            path,
            "is a Python pickle; refusing to load it because unpickling can run code. "
            "Expected a napari-liftpose .safetensors lifter",
        )


def _check_header(path: Path, header: dict) -> dict:
    """Decode and check the napari-liftpose metadata every checkpoint carries."""
    if _META_KEY not in header:
        raise ModelFileError(
            path, "safetensors file without napari-liftpose metadata: not a lifter"
        )
    try:
        meta = json.loads(header[_META_KEY])
    except (json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(path, f"corrupt metadata ({err})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(
            path, f"metadata: expected a JSON object, got {type(meta).__name__}: not a lifter"
        )
    if meta.get("format") != FORMAT:
        raise ModelFileError(path, f"expected format {FORMAT!r}, got {meta.get('format')!r:.100}")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(
            path, f"format_version: expected a positive integer, got {version!r:.100}"
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            path,
            f"format version {version} is newer than this napari-liftpose reads "
            f"({FORMAT_VERSION}); update napari-liftpose",
        )
    return meta


@contextlib.contextmanager
def _open(path: Path) -> Iterator:
    """``safe_open`` the file after the pickle check; every read error names ``path``."""
    if path.is_dir():
        raise ModelFileError(path, "is a folder; expected a .safetensors model file")
    if not path.exists():
        raise ModelFileError(path, "file not found")
    if not path.is_file():  # a FIFO would block the read forever, a device never ends
        raise ModelFileError(path, "not a regular file (a FIFO, socket or device); refused")
    try:
        _refuse_pickle(path)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from None
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(path, f"not a safetensors lifter file ({err})") from None
    with handle as f:
        yield f


def read_checkpoint_header(path: str | Path) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """Metadata and tensor shapes of a lifter file, without loading any tensor.

    Returns
    -------
    tuple
        ``(meta, {tensor name: shape})``.

    Raises
    ------
    ModelFileError
        As :func:`load_checkpoint`.
    """
    path = Path(path)
    with _open(path) as f:
        try:
            header = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ModelFileError(path, f"not a safetensors lifter file ({err})") from None
    return _check_header(path, header), shapes


def load_checkpoint(
    path: str | Path, names: Iterable[str] | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a lifter file written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or Path
        The ``.safetensors`` file.
    names : iterable of str, optional
        Load only these tensors (default: all).

    Returns
    -------
    tuple
        ``(tensors, meta)``: tensors on the CPU, and the JSON metadata (a dict).

    Raises
    ------
    ModelFileError
        If the file is missing, unreadable, a pickle/zip torch checkpoint, not safetensors,
        lacks napari-liftpose metadata, or its format version is not one this package reads.
    """
    path = Path(path)
    with _open(path) as f:
        try:
            meta = _check_header(path, f.metadata() or {})
            keys = list(f.keys()) if names is None else [k for k in names if k in f.keys()]
            tensors = {k: f.get_tensor(k) for k in keys}
        except ModelFileError:
            raise
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ModelFileError(path, f"not a safetensors lifter file ({err})") from None
    return tensors, meta
