"""A lazy, frame-on-demand video array for napari Image layers (decoding through sleap-io)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["LazyVideo", "open_video"]


class LazyVideo:
    """Array-like ``(frames, height, width[, 3])`` that decodes a frame only when it is indexed.

    napari slices Image data with an integer time index, so only the frame on screen is
    decoded; a small cache keeps the last frames for scrubbing back and forth.
    """

    def __init__(self, video, cache_size: int = 16):
        self._video = video
        frames, height, width, channels = video.shape
        self.shape = (frames, height, width) if channels == 1 else (frames, height, width, channels)
        self.dtype = np.dtype(np.uint8)
        self.ndim = len(self.shape)
        self._cache: dict[int, np.ndarray] = {}
        self._cache_size = cache_size

    @property
    def rgb(self) -> bool:
        """True for color video."""
        return self.ndim == 4

    def frame(self, index: int) -> np.ndarray:
        """Decode frame ``index`` as ``(height, width[, 3])`` uint8."""
        index = int(index)
        if index < 0:
            index += self.shape[0]
        if index not in self._cache:
            image = np.asarray(self._video[index], dtype=np.uint8)
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = image
        return self._cache[index]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            return self.frame(first)[rest] if rest else self.frame(first)
        indices = np.arange(self.shape[0])[first]
        stack = np.stack([self.frame(i) for i in np.atleast_1d(indices)])
        return stack[(slice(None), *rest)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)


def open_video(path: str | Path) -> LazyVideo:
    """Open a video file lazily; raises ``OSError`` naming the file if it cannot be decoded."""
    import sleap_io as sio

    if not Path(path).is_file():  # a FIFO or device would block the decoder forever
        raise OSError(f"{path}: cannot open video (not a regular file)")
    try:
        video = sio.load_video(str(path))
        if video.shape is None:
            raise OSError("no frames could be read")
    except Exception as err:
        raise OSError(f"{path}: cannot open video ({err})") from None
    return LazyVideo(video)
