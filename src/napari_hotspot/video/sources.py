"""Lazy frame sources: video files (PyAV) and folders of jpg/png frames behind one interface.

Frame index ``i`` means the same frame everywhere in napari-hotspot: the i-th frame in
presentation (decode output) order for a video file, the i-th file in natural name order for a
frame folder. Sources decode only what is asked for, keep a bounded LRU cache, and are safe to
share between threads (napari reads from a worker thread while a tracker streams).
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from napari_hotspot.errors import VideoError
from napari_hotspot.video.cache import DEFAULT_CACHE_BYTES, FrameCache

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")

# Backward iteration decodes a chunk forward and yields it reversed; this bounds the chunk's memory.
BACKWARD_CHUNK_BYTES = 64 * 2**20
# When get_frame sees a viewer stepping backward, the seek it needs also caches this many frames
# before the target, so the next steps back are cache hits instead of one seek each.
BACKWARD_SCRUB_FRAMES = 24


class FrameIndexError(VideoError, IndexError):
    """A frame index outside ``0 .. num_frames - 1`` (also an IndexError, as numpy users expect)."""


def natural_sort_key(name: str) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10`` (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_video_path(path: str | os.PathLike) -> bool:
    """True when the file name has one of the supported video extensions (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The jpg/png files directly inside ``folder``, in natural name order (no validation)."""
    folder = Path(folder)
    files = [
        entry
        for entry in folder.iterdir()
        if entry.suffix.lower() in IMAGE_EXTENSIONS and not entry.name.startswith(".") and entry.is_file()
    ]
    files.sort(key=lambda p: natural_sort_key(p.name))
    return files


class FrameSource(ABC):
    """A read-only sequence of RGB frames, shape ``(num_frames, height, width, 3)``, dtype uint8.

    Subclasses set ``path``, ``num_frames``, ``height``, ``width``, ``fps``, ``frame_names`` and
    implement ``_decode(index)``. Frames returned to callers are always fresh, writable arrays.
    """

    path: Path
    num_frames: int
    height: int
    width: int
    fps: float | None
    frame_names: list[str]
    #: Frames the container says it holds, when that differs from the readable ``num_frames`` (a
    #: truncated file); None when they agree or the container does not say.
    expected_frames: int | None = None

    def __init__(self, path: Path, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.path = Path(path)
        self._cache = FrameCache(cache_bytes)
        # Re-entrant: _decode may call helpers that take the lock again.
        self._lock = threading.RLock()
        self._closed = False

    # -- public interface -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.num_frames, self.height, self.width, 3)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def truncated(self) -> bool:
        """True when fewer frames are readable than the container lists (see ``require_complete``)."""
        return self.expected_frames is not None and self.num_frames < self.expected_frames

    def __len__(self) -> int:
        return self.num_frames

    def get_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as a new ``(H, W, 3)`` uint8 RGB array (decoded once, then cached)."""
        return self.get_frame_readonly(index).copy()

    def get_frame_readonly(self, index: int) -> np.ndarray:
        """Frame ``index`` as the cached read-only array (no copy; for viewers that never write)."""
        i = self._check_index(index)
        with self._lock:
            self._check_open()
            frame = self._cache.get(i)
            if frame is None:
                frame = self._cache.put(i, self._decode_checked(i))
            return frame

    def frame_indices(self, start: int | None = None, stop: int | None = None, step: int = 1) -> range:
        """The indices ``iter_frames(start, stop, step)`` yields, as a ``range``.

        Forward (step > 0): start defaults to 0, stop to ``num_frames``. Backward (step < 0):
        start defaults to the last frame, stop to None meaning "down to and including frame 0".
        Negative indices are rejected (no Python wrap-around: it hides off-by-one bugs).
        """
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step == 0:
            raise VideoError(f"{self.path}: step must be a non-zero integer, got {step!r}")
        step = int(step)
        n = self.num_frames
        if start is None:
            start = 0 if step > 0 else n - 1
        else:
            start = self._check_index(start)
        if stop is None:
            stop = n if step > 0 else -1
        else:
            if isinstance(stop, bool) or not isinstance(stop, (int, np.integer)) or not 0 <= stop <= n:
                raise FrameIndexError(
                    f"{self.path}: stop={stop!r} is out of range; expected an integer in 0..{n} "
                    "(use stop=None to run to the end or, backward, down to frame 0)"
                )
            stop = int(stop)
        return range(start, stop, step)

    def iter_frames(self, start: int | None = None, stop: int | None = None, step: int = 1) -> Iterator[np.ndarray]:
        """Stream frames ``frame_indices(start, stop, step)`` in that order, decoding sequentially.

        Yields new ``(H, W, 3)`` uint8 arrays; streamed frames are not added to the cache, so a
        full pass over a long video does not evict the frames a viewer is showing.
        Arguments are checked now, not at the first ``next()``.
        """
        indices = self.frame_indices(start, stop, step)
        self._check_open()
        return self._iter_indices(indices)

    def close(self) -> None:
        """Release the file handle and the cache. Safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._cache.clear()
                self._release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        fps = "None" if self.fps is None else f"{self.fps:g}"
        return (
            f"{type(self).__name__}({str(self.path)!r}, num_frames={self.num_frames}, "
            f"height={self.height}, width={self.width}, fps={fps})"
        )

    # -- for subclasses -----------------------------------------------------------------------
    @abstractmethod
    def _decode(self, index: int) -> np.ndarray:
        """Decode frame ``index`` (already validated; lock held) into a new (H, W, 3) uint8 array."""

    def _release(self) -> None:
        """Free file handles (lock held)."""

    def _iter_indices(self, indices: range) -> Iterator[np.ndarray]:
        for i in indices:
            with self._lock:
                self._check_open()
                cached = self._cache.get(i)
                frame = cached.copy() if cached is not None else self._decode_checked(i)
            yield frame

    def _decode_checked(self, index: int) -> np.ndarray:
        frame = self._decode(index)
        if frame.shape != (self.height, self.width, 3):
            raise VideoError(
                f"{self.path}: frame {index} has shape {frame.shape}, expected "
                f"{(self.height, self.width, 3)} like the first frame; frames of different sizes are not supported"
            )
        return frame

    def _check_index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise FrameIndexError(f"{self.path}: frame index must be an integer, got {index!r}")
        i = int(index)
        if not 0 <= i < self.num_frames:
            raise FrameIndexError(
                f"{self.path}: frame index {i} is out of range; the source has {self.num_frames} frames "
                f"(valid indices 0..{self.num_frames - 1})"
            )
        return i

    def _check_open(self) -> None:
        if self._closed:
            raise VideoError(f"{self.path}: the frame source is closed")


class FrameFolderSource(FrameSource):
    """A folder of jpg/png frames (e.g. DAVIS ``JPEGImages/480p/<seq>/``), natural name order.

    Opening reads only the image headers (to check every frame has the same size).
    ``frame_names`` are the file stems; ``fps`` is None (a folder has no frame rate).
    """

    def __init__(self, folder: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(Path(folder), cache_bytes)
        folder = self.path
        if not folder.exists():
            raise VideoError(f"Frame folder not found: {folder}")
        if not folder.is_dir():
            raise VideoError(f"Not a folder: {folder}")
        try:
            files = list_frame_files(folder)
        except OSError as exc:
            raise VideoError(f"Cannot list frame folder {folder}: {exc}") from exc
        if not files:
            subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir())
            hint = f" (it has sub-folders: {', '.join(subdirs[:5])}; open one of them)" if subdirs else ""
            raise VideoError(
                f"Frame folder {folder} contains no frames: expected {'/'.join(IMAGE_EXTENSIONS)} files{hint}"
            )
        stems = [p.stem for p in files]
        if len(set(stems)) != len(stems):
            seen: set[str] = set()
            dup = next(s for s in stems if s in seen or seen.add(s))
            raise VideoError(
                f"Frame folder {folder} has two frames named {dup!r} (e.g. {dup}.jpg and {dup}.png); "
                "frame names must be unique"
            )
        self._files = files
        self.frame_names = stems
        self.file_names = [p.name for p in files]  # with their extensions (what COCO's file_name names)
        self.num_frames = len(files)
        self.fps = None
        self.height, self.width = self._check_sizes(files)

    @staticmethod
    def _header_size(file: Path) -> tuple[int, int]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(file) as img:
                width, height = img.size
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise VideoError(f"Cannot read image {file}: not a valid jpg/png ({exc})") from exc
        return height, width

    def _check_sizes(self, files: list[Path]) -> tuple[int, int]:
        height, width = self._header_size(files[0])
        for file in files[1:]:
            size = self._header_size(file)
            if size != (height, width):
                raise VideoError(
                    f"Frame folder {self.path} mixes frame sizes: {files[0].name} is {width}x{height} "
                    f"but {file.name} is {size[1]}x{size[0]}; all frames must have the same size"
                )
        return height, width

    def _decode(self, index: int) -> np.ndarray:
        import cv2

        file = self._files[index]
        # imdecode(fromfile) rather than imread: it reports unreadable files the same way on every OS.
        try:
            data = np.fromfile(file, dtype=np.uint8)
        except OSError as exc:
            raise VideoError(f"Cannot read frame {index} ({file}): {exc}") from exc
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise VideoError(f"Cannot decode frame {index} ({file}): the file is empty or corrupt")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV; random access seeks to the keyframe before and decodes forward.

    Opening demuxes the packets once without decoding them, to index every frame's timestamp and
    the keyframes, then decodes frame 0 (to fail early on an undecodable file). ``num_frames``
    is the number of frames actually present (a truncated file reports what it really holds).
    ``frame_names`` are zero-padded indices ``"00000", "00001", ...``.
    """

    def __init__(self, path: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(Path(path), cache_bytes)
        path = self.path
        if not path.exists():
            raise VideoError(f"Video file not found: {path}")
        if not path.is_file():
            raise VideoError(f"Not a file: {path}")
        if not is_video_path(path):
            raise VideoError(
                f"Unsupported video extension {path.suffix!r} for {path}; "
                f"supported: {', '.join(VIDEO_EXTENSIONS)}"
            )
        self._container = None
        self._open_container()
        try:
            self._build_index()
            # Decoder state: a generator of decoded frames from the last seek, and the index of the
            # last frame it produced; sequential reads continue it instead of seeking.
            self._frames_iter: Iterator | None = None
            self._last_index: int | None = None
            self._last_error: str | None = None
            self._last_request: int | None = None  # last get_frame index, to spot backward stepping
            first = self._decode(0)
        except BaseException:
            self._release()
            raise
        self.height, self.width = first.shape[:2]
        self._cache.put(0, first)

    # -- opening ------------------------------------------------------------------------------
    def _open_container(self) -> None:
        import av

        if self._container is not None:
            self._container.close()
            self._container = None
        try:
            container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise VideoError(f"Cannot open video {self.path}: corrupt or not a video file ({exc})") from exc
        if not container.streams.video:
            container.close()
            raise VideoError(f"Video {self.path} has no video stream")
        self._container = container
        self._stream = container.streams.video[0]
        # Let FFmpeg use the cores for slice/frame threads; a big win for sequential decoding.
        self._stream.thread_type = "AUTO"

    def _build_index(self) -> None:
        import av

        stream = self._stream
        timestamps: list[int | None] = []
        keyframe_ts: list[int | None] = []
        try:
            for packet in self._container.demux(stream):
                if packet.size == 0:  # the flush packet at end of stream
                    continue
                if packet.is_corrupt:  # cut short by truncation: its frame is not really there
                    logger.warning("%s: skipping a corrupt packet (pts=%s)", self.path, packet.pts)
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                timestamps.append(ts)
                if packet.is_keyframe:
                    keyframe_ts.append(ts)
        except (av.FFmpegError, OSError) as exc:
            if not timestamps:
                raise VideoError(f"Cannot read video {self.path}: corrupt or truncated ({exc})") from exc
            logger.warning("%s: stopped indexing after %d frames: %s", self.path, len(timestamps), exc)
        if not timestamps:
            raise VideoError(f"Video {self.path} contains no video frames (empty or truncated file)")
        self.num_frames = len(timestamps)
        self.frame_names = [f"{i:05d}" for i in range(self.num_frames)]

        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.expected_frames = self._listed_frames(len(timestamps))

        reliable = None not in timestamps and len(set(timestamps)) == len(timestamps)
        if reliable:
            self._pts = sorted(timestamps)
            self._index_by_pts: dict[int, int] | None = {ts: i for i, ts in enumerate(self._pts)}
            keyframes = sorted({self._index_by_pts[ts] for ts in keyframe_ts})
        else:
            # No usable timestamps: frames are numbered by decode output order, and random access
            # always decodes from the start (slow but correct; such files are rare).
            logger.warning("%s: packets lack unique timestamps; random access will decode from the start", self.path)
            self._pts = None
            self._index_by_pts = None
            keyframes = []
        if not keyframes or keyframes[0] != 0:
            keyframes.insert(0, 0)  # frame 0 is always reachable by decoding from the very start
        self._keyframes = keyframes

    def _listed_frames(self, readable: int) -> int | None:
        """The frame count the container lists, when it lists more than ``readable``: exact from an
        mp4/mov index, else estimated from the stream's (or, lacking it, the file's) duration and
        frame rate, where a shortfall under 5% (or 2 frames) is rounding, not truncation."""
        stream = self._stream
        listed = int(stream.frames or 0)
        if listed > 0:
            return listed if listed > readable else None
        if not self.fps:
            return None
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif self._container.duration:
            seconds = self._container.duration / 1_000_000  # av.time_base: microseconds
        else:
            return None
        estimate = int(round(seconds * self.fps))
        return estimate if readable < estimate - max(2, 0.05 * estimate) else None

    # -- decoding ----------------------------------------------------------------------------
    def _release(self) -> None:
        self._frames_iter = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def _decoded_frames(self) -> Iterator:
        """Frames decoded from the current demux position; bad packets are skipped, not fatal."""
        import av

        demuxer = self._container.demux(self._stream)
        while True:
            try:
                packet = next(demuxer)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as exc:
                # Unreadable data: end the stream here, but drain the frames already in the decoder.
                self._last_error = str(exc)
                try:
                    yield from self._stream.codec_context.decode(None)
                except (av.FFmpegError, OSError):
                    pass
                return
            if packet.is_corrupt:  # excluded from the index too (see _build_index)
                continue
            try:
                frames = packet.decode()
            except (av.FFmpegError, OSError) as exc:
                # Like FFmpeg itself, skip a damaged packet; the frame it held is reported missing.
                self._last_error = str(exc)
                continue
            yield from frames

    def _seek_to_keyframe(self, keyframe_pos: int) -> None:
        """Position the decoder at ``self._keyframes[keyframe_pos]`` (position 0: the very start)."""
        import av

        self._frames_iter = None
        self._last_index = None
        if keyframe_pos == 0 or self._pts is None:
            # Reopening is the one start-of-file seek that works in every container.
            self._open_container()
            self._last_index = -1 if self._pts is None else None
        else:
            target = self._pts[self._keyframes[keyframe_pos]]
            try:
                self._container.seek(int(target), stream=self._stream, backward=True, any_frame=False)
            except (av.FFmpegError, OSError) as exc:
                frame = self._keyframes[keyframe_pos]
                raise VideoError(f"{self.path}: seeking to frame {frame} failed ({exc})") from exc
        self._frames_iter = self._decoded_frames()

    def _advance_to(self, index: int):
        """Decode forward from the current position to frame ``index``; return its av frame.

        Returns None if the decoder started past ``index`` (seeked too far: caller seeks earlier).
        """
        while True:
            try:
                frame = next(self._frames_iter)
            except StopIteration:
                self._frames_iter = None
                self._last_index = None
                raise self._missing_frame_error(index, "the stream ended before it") from None
            if self._index_by_pts is None:
                got = self._last_index + 1
            else:
                got = self._index_by_pts.get(frame.pts) if frame.pts is not None else None
                if got is None:
                    if self._last_index is None:
                        continue  # cannot place this frame yet; the next one with a known pts will
                    got = self._last_index + 1
            previous = self._last_index
            self._last_index = got
            if got == index:
                return frame
            if got > index:
                if previous is None:  # first frame after a seek is already past the target
                    return None
                self._frames_iter = None
                self._last_index = None
                raise self._missing_frame_error(index, f"the decoder jumped from frame {previous} to {got}")

    def _missing_frame_error(self, index: int, why: str) -> VideoError:
        detail = f"; last decoder error: {self._last_error}" if self._last_error else ""
        return VideoError(f"Cannot decode frame {index} of {self.path}: {why} (damaged or truncated file){detail}")

    def _position_and_decode(self, index: int):
        """The av frame ``index``, continuing the current decode when that is cheaper than a seek."""
        pos = bisect.bisect_right(self._keyframes, index) - 1
        keyframe = self._keyframes[pos]
        last = self._last_index
        if self._frames_iter is not None and last is not None and keyframe - 1 <= last < index:
            frame = self._advance_to(index)
            if frame is not None:
                return frame
        # Seek to the keyframe before; if the container lands after the target (inexact seeking,
        # open GOPs), retry from earlier keyframes, finally from the start of the file.
        while True:
            self._seek_to_keyframe(pos)
            frame = self._advance_to(index)
            if frame is not None:
                return frame
            if pos == 0:
                raise self._missing_frame_error(index, "decoding from the start of the file skips it")
            pos -= 1

    def _to_rgb(self, frame, index: int) -> np.ndarray:
        import av

        try:
            rgb = frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, ValueError) as exc:
            raise VideoError(f"Cannot convert frame {index} of {self.path} to RGB: {exc}") from exc
        # PyAV returns a view over padded rows; callers (torch, cv2) want contiguous memory.
        return np.ascontiguousarray(rgb)

    def _decode(self, index: int) -> np.ndarray:
        return self._to_rgb(self._position_and_decode(index), index)

    def get_frame_readonly(self, index: int) -> np.ndarray:
        i = self._check_index(index)
        with self._lock:
            self._check_open()
            frame = self._cache.get(i)
            if frame is None:
                last = self._last_request
                if last is not None and 0 < last - i <= 2 and self._cache.max_bytes > 0:
                    # Stepping backward (napari slider, arrow key): fill the cache below i too.
                    keyframe = self._keyframes[bisect.bisect_right(self._keyframes, i) - 1]
                    for j in range(max(keyframe, i - BACKWARD_SCRUB_FRAMES), i):
                        if j not in self._cache:
                            try:
                                self._cache.put(j, self._decode_checked(j))
                            except VideoError:
                                break  # a damaged neighbour must not fail the frame asked for
                frame = self._cache.put(i, self._decode_checked(i))
            self._last_request = i
            return frame

    def _iter_indices(self, indices: range) -> Iterator[np.ndarray]:
        if indices.step > 0:
            yield from super()._iter_indices(indices)
            return
        # Backward: decode a chunk forward (from its keyframe) and hand it out reversed. A chunk
        # never spans a keyframe, so each frame is decoded about once per pass for short GOPs.
        frame_bytes = self.height * self.width * 3
        max_chunk = max(1, BACKWARD_CHUNK_BYTES // frame_bytes)
        remaining = list(indices)
        while remaining:
            high = remaining[0]
            keyframe = self._keyframes[bisect.bisect_right(self._keyframes, high) - 1]
            low_bound = max(keyframe, high - max_chunk + 1)
            chunk = [i for i in remaining if i >= low_bound]
            remaining = remaining[len(chunk) :]
            decoded: list[np.ndarray] = []
            for i in reversed(chunk):
                with self._lock:
                    self._check_open()
                    cached = self._cache.get(i)
                    decoded.append(cached.copy() if cached is not None else self._decode_checked(i))
            while decoded:
                yield decoded.pop()


def require_complete(source: FrameSource, accept_truncated: bool = False, flag: str = "--accept-truncated") -> None:
    """Refuse a truncated video (fewer readable frames than its container lists) unless
    ``accept_truncated``: tracking it would silently replace a full output with a shorter one.
    Accepted, it warns once and the readable frames are used."""
    if not source.truncated:
        return
    what = (f"{source.path}: the video is truncated or damaged: its container lists {source.expected_frames} "
            f"frames but only {source.num_frames} are readable")
    if not accept_truncated:
        raise VideoError(f"{what}; repair or re-export the file, or pass {flag} to use the readable part")
    import warnings

    warnings.warn(f"{what}; using those {source.num_frames} ({flag})", stacklevel=2)


def open_source(path: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES) -> FrameSource:
    """Open a video file (mp4, avi, mov, mkv, m4v, webm) or a folder of jpg/png frames, lazily.

    Raises VideoError naming the path when it is missing, of an unsupported kind, or unreadable.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise VideoError(f"Video or frame folder not found: {path}")
    if path.is_dir():
        return FrameFolderSource(path, cache_bytes=cache_bytes)
    if is_video_path(path):
        return VideoFileSource(path, cache_bytes=cache_bytes)
    raise VideoError(
        f"Cannot open {path}: unsupported file type {path.suffix or '(no extension)'!r}; expected a video "
        f"({', '.join(VIDEO_EXTENSIONS)}) or a folder of {'/'.join(IMAGE_EXTENSIONS)} frames"
    )
