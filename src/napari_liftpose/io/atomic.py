"""Atomic, verified writes: a temporary file beside the target, renamed into place when proven.

:func:`atomic_path` yields a temporary path in the target's folder named
``.<name>.liftpose-<host>-<pid>-<random>.tmp<suffix>`` (recognisable, and traceable to the
process that made it). After the caller has written it, the file is fsynced, checked by an
optional ``verify`` callable (re-open it, compare shape and keys; raise on a mismatch), renamed
over the target and the folder is fsynced. Any failure (a write error such as a full disk, a
failed check, ``KeyboardInterrupt``, ``SystemExit``) removes the temporary file and leaves the old
target untouched; write errors and failed checks raise :class:`PoseFileError` naming the target.
A signal recorded by :mod:`napari_liftpose.io.interrupts` stops the rename even when the
library that was running swallowed its ``KeyboardInterrupt``.

HDF5 libraries must not write to the disk themselves: on a full disk h5py can crash the process
and PyTables can report success for a broken file. Build the file in memory instead
(:func:`hdf5_image`, :func:`hdf5_store_image`) and write its bytes with
:func:`atomic_write_bytes`, whose plain Python I/O raises a clean ``OSError``.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import itertools
import os
import re
import secrets
import socket
import stat
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from napari_liftpose.io import interrupts
from napari_liftpose.io.errors import PoseFileError

if TYPE_CHECKING:
    import h5py
    import pandas as pd

__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_write_text",
    "atomic_write_bytes",
    "hdf5_image",
    "hdf5_store_image",
    "temp_files_for",
    "remove_stale_temp_files",
    "verify_csv_lines",
]

Verify = Callable[[Path], object]
_TEMP_RE = re.compile(r"\.liftpose-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}\.tmp")
_UMASK_LOCK = threading.Lock()
_NAME_BYTES = 150  # keep temp names under the 255-byte limit of most file systems


@contextlib.contextmanager
def atomic_path(path: str | Path, verify: Verify | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once written and verified it replaces ``path``.

    The temporary path does not exist yet (HDF5 libraries refuse an empty file) and keeps the
    target's suffix, so libraries choosing a format by suffix behave the same.

    Parameters
    ----------
    path : str or Path
        The target. Its folder is created if needed.
    verify : callable, optional
        ``verify(tmp)`` re-opens the written temporary file and raises (any exception) if it is
        not what was meant to be written.

    Raises
    ------
    PoseFileError
        On a write error (``OSError``: full disk, quota, read-only or forbidden folder) or a
        failed ``verify``: ``"PATH: could not write: REASON; the old file is kept"`` (or
        ``"nothing was written"``). The temporary file is removed, the old target untouched.
    KeyboardInterrupt
        If, inside :func:`napari_liftpose.io.interrupts.interrupt_guard`, a SIGINT/SIGTERM
        was received (:func:`napari_liftpose.io.interrupts.interrupted`) by the time the file
        is complete: nothing is renamed.
    """
    path = Path(path)
    existed = os.path.lexists(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _write_error(path, _reason(err), existed) from None
    remove_stale_temp_files(path)
    tmp = _new_temp_path(path)
    try:
        try:
            with interrupts.surfaced():
                yield tmp
        except PoseFileError:
            raise
        except OSError as err:
            raise _write_error(path, _reason(err), existed) from None
        with interrupts.surfaced():
            _finish(tmp, path, verify, existed)
    finally:
        with interrupts.deferred_signals(), contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _finish(tmp: Path, path: Path, verify: Verify | None, existed: bool) -> None:
    """fsync, verify, rename and fsync the folder; errors become a :class:`PoseFileError`."""
    if not tmp.is_file():
        raise _write_error(path, "the writer produced no file", existed)
    try:
        _fsync_file(tmp)
        _copy_mode(path, tmp)
    except OSError as err:
        raise _write_error(path, _reason(err), existed) from None
    if verify is not None:
        try:
            verify(tmp)
        except Exception as err:
            detail = err.problem if isinstance(err, PoseFileError) else str(err) or type(err).__name__
            raise _write_error(
                path, f"the written file does not read back as written ({detail})", existed
            ) from None
    if interrupts.interrupted():  # even if the library that ran swallowed the interrupt
        interrupts.raise_if_pending()
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise _write_error(path, _reason(err), existed) from None
    _fsync_folder(path.parent)


def _write_error(path: Path, reason: str, existed: bool) -> PoseFileError:
    kept = "the old file is kept" if existed else "nothing was written"
    return PoseFileError(path, f"could not write: {reason}; {kept}")


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR if sys.platform == "win32" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; best effort (some systems cannot fsync a folder)."""
    if sys.platform == "win32":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy_mode(path: Path, tmp: Path) -> None:
    """A replaced file keeps its permission bits; a new one gets ``0o666`` less the umask.

    Whatever mode the writer created the temporary file with (``mkstemp`` and some libraries
    use 0600), the file lands as any other new file would: 0644 under the usual umask 022.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)


def _umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:  # elsewhere: set and restore at once
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _temp_prefix(path: Path) -> str:
    name = path.name
    while len(os.fsencode(name)) > _NAME_BYTES:
        name = name[:-1]
    return f".{name}.liftpose-"


def _new_temp_path(path: Path) -> Path:
    token = secrets.token_hex(4)
    return path.parent / f"{_temp_prefix(path)}{_host_tag()}-{os.getpid()}-{token}.tmp{path.suffix}"


def temp_files_for(path: str | Path) -> list[Path]:
    """The temporary files of :func:`atomic_path` for ``path`` (any process), sorted."""
    path = Path(path)
    pattern = glob.escape(_temp_prefix(path)) + "*.tmp" + glob.escape(path.suffix)
    try:
        return sorted(p for p in path.parent.glob(pattern) if _TEMP_RE.search(p.name))
    except OSError:  # an unreadable folder: the write itself will say what is wrong
        return []


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Remove temporary files for ``path`` left by processes of this host that no longer run.

    A process killed with SIGKILL (or a power cut) cannot clean up; the next write does. Files
    of a live process (a concurrent run) and of other hosts (a shared folder) are kept.
    Returns the files removed.
    """
    removed = []
    host = _host_tag()
    for tmp in temp_files_for(path):
        match = _TEMP_RE.search(tmp.name)
        if match is None or match.group(1) != host:
            continue
        pid = int(match.group(2))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill would terminate it: never guess there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def atomic_write(path: str | Path, write: Callable[[Path], object], verify: Verify | None = None) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically; returns ``path``.

    See :func:`atomic_path` for ``verify`` and the errors raised.
    """
    with atomic_path(path, verify=verify) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, verify: Verify | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``.

    Without ``verify`` the file is checked to hold exactly the encoded text's length.
    """
    return atomic_write_bytes(path, text.encode("utf-8"), verify=verify)


def atomic_write_bytes(path: str | Path, data: bytes, verify: Verify | None = None) -> Path:
    """Write ``data`` to ``path`` atomically with plain Python I/O; returns ``path``.

    The temporary file must hold exactly ``len(data)`` bytes, then ``verify(tmp)`` runs if
    given. A full disk raises :class:`PoseFileError` (see :func:`atomic_path`).
    """
    size = len(data)

    def check(tmp: Path) -> None:
        written = tmp.stat().st_size
        if written != size:
            raise ValueError(f"expected {size} bytes, found {written}")
        if verify is not None:
            verify(tmp)

    with atomic_path(path, verify=check) as tmp, open(tmp, "xb") as f:
        f.write(data)
    return Path(path)


def hdf5_image(fill: Callable[[h5py.File], object]) -> bytes:
    """The bytes of an HDF5 file built in memory by ``fill(file)`` (h5py, nothing on disk).

    Write them with :func:`atomic_write_bytes`: h5py never touches the disk, so a full disk
    cannot crash the process.
    """
    import h5py

    name = f"liftpose-image-{uuid.uuid4().hex}.h5"  # a name only: the core driver keeps no file
    with interrupts.surfaced(), h5py.File(name, "w", driver="core", backing_store=False) as f:
        fill(f)
        f.flush()
        return f.id.get_file_image()


def hdf5_store_image(fill: Callable[[pd.HDFStore], object]) -> bytes:
    """The bytes of a pandas/PyTables HDF5 store built in memory by ``fill(store)``.

    For example ``hdf5_store_image(lambda store: store.put("df", frame, track_times=False))``;
    write them with :func:`atomic_write_bytes`. Not ``frame.to_hdf(store, ...)``: pandas 2 turns
    the store into its file name and writes a file of that name; such a file is removed and
    ``RuntimeError`` raised.
    """
    import pandas as pd

    name = f"liftpose-image-{uuid.uuid4().hex}.h5"
    with interrupts.surfaced():
        store = pd.HDFStore(name, mode="w", driver="H5FD_CORE", driver_core_backing_store=0)
        try:
            fill(store)
            store.flush()
            image = store._handle.get_file_image()
        finally:
            store.close()
            strayed = os.path.lexists(name)
            if strayed:
                with contextlib.suppress(OSError):
                    os.remove(name)
    if strayed:
        raise RuntimeError(f"{fill!r} wrote a file on disk, not the in-memory store")
    return image


def verify_csv_lines(path: Path, header_rows: int, rows: int, fields: int) -> None:
    """Check a written CSV: ``header_rows`` records, then ``rows`` lines; the last has ``fields``.

    Cheap enough for large files: the header is parsed with :mod:`csv` (names may be quoted),
    the body's lines are counted. A cut or a lost block shows as missing lines or a short last
    line. For tables of values, whose cells hold no line breaks.

    Raises
    ------
    ValueError
        On a mismatch (or a file that is not UTF-8).
    """
    found, tail = 0, b""
    with open(path, "rb") as f:
        lines = (line.decode("utf-8") for line in iter(f.readline, b""))
        header = list(itertools.islice(csv.reader(lines), header_rows))  # reads no further
        for chunk in iter(lambda: f.read(1 << 20), b""):
            found += chunk.count(b"\n")
            tail += chunk
            start = tail.rfind(b"\n", 0, len(tail) - 1) + 1  # keep the last line only
            tail = tail[start:]
    if len(header) != header_rows:
        raise ValueError(f"expected {header_rows} header rows, got {len(header)}")
    if found != rows or (rows and not tail.endswith(b"\n")):
        raise ValueError(f"expected {rows} rows of values, got {found} lines")
    if rows:
        last = tail.rstrip(b"\r\n").decode("utf-8", errors="replace")
        if len(next(csv.reader([last]))) != fields:
            raise ValueError(f"the last row does not have {fields} fields")
