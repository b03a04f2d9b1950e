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

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from napari_liftpose.io.errors import PoseFileError

__all__ = ["ModelFileError", "save_checkpoint", "load_checkpoint", "FORMAT", "FORMAT_VERSION"]

FORMAT = "napari-liftpose-lifter"
FORMAT_VERSION = 1
_META_KEY = "napari_liftpose"


class ModelFileError(PoseFileError):
    """A lifter file that cannot be read or written (message: ``"PATH: problem"``)."""


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write tensors and metadata to ``path`` atomically (temp file + ``os.replace``).

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
        If the file cannot be written.
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
    tmp = None
    try:
        if not path.parent.is_dir():
            raise ModelFileError(path, f"cannot write: folder {path.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        save_file(payload, tmp, metadata={_META_KEY: json.dumps(header)})
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise ModelFileError(path, f"cannot write: {err.strerror or err}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
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


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a lifter file written by :func:`save_checkpoint`.

    Returns
    -------
    tuple
        ``(tensors, meta)``: all tensors on the CPU, and the JSON metadata.

    Raises
    ------
    ModelFileError
        If the file is missing, is a pickle/zip torch checkpoint, is not safetensors, or lacks
        napari-liftpose metadata, or its format version is newer than this package reads.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "file not found")
    try:
        _refuse_pickle(path)
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except ModelFileError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(path, f"not a safetensors lifter file ({err})") from None
    if _META_KEY not in header:
        raise ModelFileError(
            path, "safetensors file without napari-liftpose metadata: not a lifter"
        )
    try:
        meta = json.loads(header[_META_KEY])
    except json.JSONDecodeError as err:
        raise ModelFileError(path, f"corrupt metadata ({err})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(path, f"expected format {FORMAT!r}, got {meta.get('format')!r}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(
            path,
            f"format version {meta['format_version']} is newer than this napari-liftpose reads "
            f"({FORMAT_VERSION}); update napari-liftpose",
        )
    return tensors, meta
