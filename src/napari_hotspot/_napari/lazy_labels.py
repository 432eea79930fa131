"""A lazy, writable, frame-sparse (T, H, W) label array for the masks Labels layer.

``LazyLabels`` replaces a dense (T, H, W) volume built from the store: a frame is made (from the
``AnnotationStore``, which keeps masks compressed) only when napari or the controller reads or
writes it. At most ``cache_frames`` frames are held dense (least recently used first out); a frame
written through the array (napari's brush, fill, erase, undo/redo, ``data[t] = ...``) that leaves
the cache is kept zlib-compressed until ``reload`` drops it. Memory is therefore proportional to
the frames touched, not to the video length.

What napari's Labels layer and the controller use, and this class provides: ``shape``, ``dtype``,
``ndim``, ``size``, ``len()``; ``__getitem__`` and ``__setitem__`` with ints, slices, Ellipsis,
integer or boolean index arrays and tuples of them (numpy semantics, including the tuple of index
arrays of ``data_setitem`` and the slice boxes of ``paint``/``fill``/undo); results are always
numpy copies. ``np.asarray(lazy)`` (``__array__``) builds the whole dense volume, as do whole-volume
comparisons (``lazy == 2``): they work, for the rare full-volume need, but no viewing, painting,
tracking or saving path calls them.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from typing import Any

import numpy as np

#: Dense frames held at most (1080p uint8: 2 MB a frame).
DEFAULT_CACHE_FRAMES = 32


def labels_dtype(store) -> np.dtype:
    """uint8, or uint16 when an object id is above 255 (as ``AnnotationStore.label_frame``)."""
    return np.dtype(np.uint8 if max(store.object_ids, default=0) <= 255 else np.uint16)


class LazyLabels:
    """(T, H, W) labels of an ``AnnotationStore``, materialised one frame at a time on demand."""

    def __init__(self, store, dtype: Any = None, cache_frames: int | None = None):
        self.store = store
        self._shape = tuple(int(n) for n in store.shape)
        self._dtype = labels_dtype(store) if dtype is None else np.dtype(dtype)
        if not np.issubdtype(self._dtype, np.integer):
            raise TypeError(f"LazyLabels needs an integer dtype, got {self._dtype}")
        self.cache_frames = max(1, int(DEFAULT_CACHE_FRAMES if cache_frames is None else cache_frames))
        self._dense: OrderedDict[int, np.ndarray] = OrderedDict()  # LRU of dense frames
        self._dirty: set[int] = set()  # dense frames written through this array
        self._packed: dict[int, bytes] = {}  # written frames out of the LRU, zlib-compressed

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape))

    def __len__(self) -> int:
        return self._shape[0]

    def __repr__(self) -> str:
        return (f"LazyLabels(shape={self._shape}, dtype={self._dtype}, dense={len(self._dense)}, "
                f"packed={len(self._packed)})")

    def __array__(self, dtype=None, copy=None):
        """The whole dense volume (T*H*W elements): for rare full-volume needs only."""
        if copy is False:
            raise ValueError("LazyLabels cannot be viewed as a numpy array without a copy")
        volume = np.empty(self._shape, dtype=self._dtype)
        for t in range(self._shape[0]):
            volume[t] = self._peek(t)
        return volume if dtype is None else volume.astype(dtype, copy=False)

    # Whole-volume comparisons (``data == 2``) give numpy's dense boolean result: rare (tests, scripts).
    __hash__ = object.__hash__

    def __eq__(self, other):
        return np.asarray(self) == other

    def __ne__(self, other):
        return np.asarray(self) != other

    def __getitem__(self, key):
        frames, local = self._resolve(key)
        sub = self._gather(frames)
        result = sub[local]
        if isinstance(result, np.ndarray) and np.may_share_memory(result, sub):
            result = result.copy()
        return result

    def __setitem__(self, key, value) -> None:
        whole = self._whole_frame(key)
        if whole is not None:  # data[t] = frame: no need to make the old frame first
            frame = np.empty(self._shape[1:], dtype=self._dtype)
            frame[...] = value
            self._put(whole, frame)
            return
        frames, local = self._resolve(key)
        sub = self._gather(frames)
        sub[local] = value
        if len(frames) == 1:  # sub is a view of the cached frame: mark it written
            t = frames[0]
            if t in self._dense:
                self._dirty.add(t)
                self._packed.pop(t, None)
            else:  # evicted meanwhile (cannot happen with cache_frames >= 1): store the copy
                self._put(t, sub[0].copy())
        else:
            for i, t in enumerate(frames):
                self._put(t, sub[i].copy())

    # ------------------------------------------------------------------ cache control
    def reload(self, frames=None) -> None:
        """Forget frames (default: all), written ones included: they are made from the store again."""
        ts = list(self._dense) + list(self._packed) if frames is None else frames
        for t in ts:
            t = self._frame_index(t)
            self._dense.pop(t, None)
            self._dirty.discard(t)
            self._packed.pop(t, None)

    @property
    def cached_frames(self) -> list[int]:
        """Frames held dense now (least recently used first)."""
        return list(self._dense)

    @property
    def written_frames(self) -> list[int]:
        """Frames written through this array and not reloaded since (dense or compressed)."""
        return sorted(self._dirty | set(self._packed))

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by dense frames plus compressed written frames."""
        return sum(f.nbytes for f in self._dense.values()) + sum(len(b) for b in self._packed.values())

    # ------------------------------------------------------------------ internals
    def _frame_index(self, t) -> int:
        t = int(t)
        n = self._shape[0]
        if t < 0:
            t += n
        if not 0 <= t < n:
            raise IndexError(f"frame {t} is out of bounds for {n} frames")
        return t

    def _whole_frame(self, key) -> int | None:
        """t when key selects exactly one whole frame (``t``, ``(t,)``, ``(t, :, :)``, ``(t, ...)``)."""
        if not isinstance(key, tuple):
            key = (key,)
        if not key or not isinstance(key[0], (int, np.integer)) or isinstance(key[0], bool):
            return None
        rest = key[1:]
        if (len(rest) == 1 and rest[0] is Ellipsis) or all(isinstance(k, slice) and k == slice(None) for k in rest):
            if len(rest) <= self.ndim - 1:
                return self._frame_index(key[0])
        return None

    def _resolve(self, key) -> tuple[list[int], tuple]:
        """The frames a key touches and the key rewritten for the stack of those frames."""
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is None for k in key):
            raise IndexError("LazyLabels does not support np.newaxis in an index")
        if any(k is Ellipsis for k in key):
            if sum(k is Ellipsis for k in key) > 1:
                raise IndexError("an index can only have a single ellipsis ('...')")
            i = next(j for j, k in enumerate(key) if k is Ellipsis)
            fill = self.ndim - (len(key) - 1)
            key = key[:i] + (slice(None),) * max(fill, 0) + key[i + 1:]
        if not key:
            key = (slice(None),)
        k0, rest = key[0], key[1:]
        n = self._shape[0]
        if isinstance(k0, (int, np.integer)) and not isinstance(k0, bool):
            return [self._frame_index(k0)], (0, *rest)
        if isinstance(k0, slice):
            frames = list(range(*k0.indices(n)))
            return frames, (slice(None), *rest)
        arr = np.asarray(k0)
        if arr.dtype == bool:
            if arr.ndim != 1 or arr.shape[0] != n:
                raise IndexError(f"boolean index of shape {arr.shape} does not match {n} frames")
            frames = np.flatnonzero(arr).tolist()
            return frames, (np.arange(len(frames)), *rest)
        if not np.issubdtype(arr.dtype, np.integer):
            if arr.size == 0:
                arr = arr.astype(np.intp)
            else:
                raise IndexError(f"frame indices must be integers, got {arr.dtype}")
        if arr.size and (arr.min() < -n or arr.max() >= n):
            raise IndexError(f"frame index out of bounds for {n} frames")
        arr = np.where(arr < 0, arr + n, arr)
        frames = np.unique(arr).tolist()
        local = np.searchsorted(np.asarray(frames, dtype=np.intp), arr) if frames else arr
        return frames, (local, *rest)

    def _gather(self, frames: list[int]) -> np.ndarray:
        """The frames stacked; for one frame, a (1, H, W) view of the cached frame itself."""
        if len(frames) == 1:
            return self._frame(frames[0])[np.newaxis]
        sub = np.empty((len(frames), *self._shape[1:]), dtype=self._dtype)
        for i, t in enumerate(frames):
            sub[i] = self._peek(t)
        return sub

    def _peek(self, t: int) -> np.ndarray:
        """Frame t for reading, without filling the LRU with frames only passed through."""
        if t in self._dense:
            return self._dense[t]
        if t in self._packed:
            return self._unpack(t)
        return self._from_store(t)

    def _frame(self, t: int) -> np.ndarray:
        """Frame t, dense and in the LRU (most recent)."""
        frame = self._dense.get(t)
        if frame is not None:
            self._dense.move_to_end(t)
            return frame
        if t in self._packed:
            frame = self._unpack(t)
            del self._packed[t]
            self._dirty.add(t)
        else:
            frame = self._from_store(t)
        self._dense[t] = frame
        self._evict()
        return frame

    def _put(self, t: int, frame: np.ndarray) -> None:
        self._dense[t] = frame
        self._dense.move_to_end(t)
        self._dirty.add(t)
        self._packed.pop(t, None)
        self._evict()

    def _evict(self) -> None:
        while len(self._dense) > self.cache_frames:
            t, frame = self._dense.popitem(last=False)
            if t in self._dirty:
                self._dirty.discard(t)
                self._packed[t] = zlib.compress(np.ascontiguousarray(frame).tobytes(), 1)

    def _unpack(self, t: int) -> np.ndarray:
        raw = zlib.decompress(self._packed[t])
        return np.frombuffer(raw, dtype=self._dtype).reshape(self._shape[1:]).copy()

    def _from_store(self, t: int) -> np.ndarray:
        frame = self.store.label_frame(t)
        if frame.dtype != self._dtype:
            frame = frame.astype(self._dtype)
        return frame
