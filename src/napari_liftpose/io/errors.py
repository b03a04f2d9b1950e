"""Errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PoseFileError", "PoseFileNotFoundError", "not_a_file_error"]


class PoseFileError(ValueError):
    """A pose, model or calibration file that cannot be read or written.

    The message always starts with the file's path, then says what is wrong, so it can be
    shown as is in a napari notification or a CLI error line.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep the exception picklable across worker threads/processes
        return (type(self), (self.path, self.problem))


class PoseFileNotFoundError(PoseFileError, FileNotFoundError):
    """The file does not exist (also a :class:`FileNotFoundError`)."""

    def __init__(self, path: str | Path, problem: str = "file not found"):
        super().__init__(path, problem)


def not_a_file_error(path: str | Path) -> PoseFileError:
    """The error for a path that is not a regular file: missing, a folder, a FIFO or a device.

    A folder, FIFO or device named like a pose file is not "file not found": say what it is
    (and never open a FIFO, which would wait for a writer forever).
    """
    path = Path(path)
    if not path.exists():
        return PoseFileNotFoundError(path)
    if path.is_dir():
        return PoseFileError(path, "is a folder, not a file")
    return PoseFileError(path, "not a regular file (a FIFO, socket or device); refused")
