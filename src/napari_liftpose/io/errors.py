"""Errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PoseFileError", "PoseFileNotFoundError"]


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
