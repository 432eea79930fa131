"""Numpy-like read-only arrays over frame sequences that decode only the frames indexed (for napari)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_hotspot.video.sources import FrameIndexError, FrameSource


class LazyFrameArray:
    """A read-only array of shape ``(T, *frame_shape)`` whose frame ``t`` is ``read_frame(t)``.

    Supports ``shape``, ``dtype``, ``ndim``, ``size``, ``len()``, ``np.asarray`` and indexing with
    ints, numpy integers, slices, integer/boolean arrays (first axis) and tuples of those (the
    remaining axes are applied to the decoded frames). Nothing is read until indexed.
    """

    def __init__(
        self,
        read_frame: Callable[[int], np.ndarray],
        num_frames: int,
        frame_shape: tuple[int, ...],
        dtype: np.dtype | type = np.uint8,
        name: str = "frames",
    ):
        self._read_frame = read_frame
        self._num_frames = int(num_frames)
        self._frame_shape = tuple(int(s) for s in frame_shape)
        self._dtype = np.dtype(dtype)
        self._name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._num_frames, *self._frame_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return 1 + len(self._frame_shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self._dtype.itemsize

    def __len__(self) -> int:
        return self._num_frames

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}, shape={self.shape}, dtype={self._dtype})"

    def _frame(self, t: int) -> np.ndarray:
        frame = np.asarray(self._read_frame(t))
        if frame.shape != self._frame_shape or frame.dtype != self._dtype:
            raise ValueError(
                f"{self._name}: frame {t} is {frame.shape} {frame.dtype}, expected {self._frame_shape} {self._dtype}"
            )
        return frame

    def _expand_key(self, key) -> tuple:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is None for k in key):
            raise IndexError(f"{self._name}: np.newaxis/None indexing is not supported on a lazy frame array")
        n_ellipsis = sum(1 for k in key if k is Ellipsis)
        if n_ellipsis > 1:
            raise IndexError(f"{self._name}: an index can only have a single ellipsis ('...')")
        if n_ellipsis:
            pos = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (self.ndim - (len(key) - 1))
            key = key[:pos] + fill + key[pos + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"{self._name}: too many indices ({len(key)}) for an array of {self.ndim} dimensions")
        return key

    def _frame_number(self, t) -> int:
        n = self._num_frames
        t = int(t)
        if not -n <= t < n:
            raise FrameIndexError(f"{self._name}: frame index {t} is out of range for {n} frames")
        return t + n if t < 0 else t

    def __getitem__(self, key):
        key = self._expand_key(key)
        if not key:
            return self.__array__()
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)) and not isinstance(first, (bool, np.bool_)):
            return self._frame(self._frame_number(first))[rest]
        if isinstance(first, slice):
            frames = range(*first.indices(self._num_frames))
        else:
            index = np.asarray(first)
            if index.dtype == bool:
                if index.shape != (self._num_frames,):
                    raise IndexError(
                        f"{self._name}: boolean index of shape {index.shape} does not match {self._num_frames} frames"
                    )
                frames = np.flatnonzero(index)
            elif np.issubdtype(index.dtype, np.integer) and index.ndim == 1:
                frames = [self._frame_number(t) for t in index]
            else:
                raise IndexError(f"{self._name}: unsupported index {first!r} for the frame axis")
        out = np.empty((len(frames), *self._frame_shape), dtype=self._dtype)
        for k, t in enumerate(frames):
            out[k] = self._frame(int(t))
        return out[(slice(None), *rest)]

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __iter__(self):
        for t in range(self._num_frames):
            yield self._frame(t)


class LazyVideoArray(LazyFrameArray):
    """``(T, H, W, 3)`` uint8 view of a FrameSource for napari; reads go through the source's cache."""

    def __init__(self, source: FrameSource):
        self.source = source
        super().__init__(
            source.get_frame_readonly,
            source.num_frames,
            (source.height, source.width, 3),
            np.uint8,
            name=str(source.path),
        )
