"""Rendering a crop path: cut each frame's window out at sub-pixel precision, encode, carry audio over.

``crop_frame`` is pure (one warp per frame: the window is resampled straight to the output size, so
a window that moves by 0.3 px moves the picture by 0.3 px instead of snapping to whole pixels).
``render_reframed`` streams frames in, writes H.264 (yuv420p, one output frame per input frame, the
source frame rate) with PyAV, and copies the source's first audio stream: remuxed when the output
container accepts its codec, else transcoded to AAC.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from napari_hotspot.errors import ProjectIOError, VideoError
from napari_hotspot.fileio import describe_os_error, describe_write_error, fsync_dir, pid_alive
from napari_hotspot.reframe.path import CropPath, base_window_height

DEFAULT_FPS = 24.0
# Audio codecs each output container takes as they are (others are transcoded to AAC).
REMUX_AUDIO = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".mkv": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac", "vorbis", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
}


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file, if there is one; a cleanup that cannot (a read-only folder where the file
    was never made) must not hide the error that led to it."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def output_size(frame_size: tuple[int, int], aspect: float, height: int | None = None) -> tuple[int, int]:
    """(width, height) of the output video: the zoom-1 window's size (or ``height``), both even."""
    h = base_window_height(frame_size, aspect) if height is None else float(height)
    if h < 2:
        if height is None:
            raise VideoError(f"the aspect {aspect:g} leaves an output {h:.1f} pixels high, under 2: choose a less "
                             "extreme aspect")
        raise VideoError(f"output height must be at least 2 pixels, got {height!r}")
    out_h = max(2, int(round(h / 2)) * 2)
    out_w = max(2, int(round(out_h * aspect / 2)) * 2)
    return out_w, out_h


def crop_frame(frame: np.ndarray, window: Iterable[float], size: tuple[int, int]) -> np.ndarray:
    """The window ``(cx, cy, w, h)`` of ``frame`` resampled to ``size = (width, height)`` (bilinear).

    Output pixel ``(u, v)`` samples the source at ``(cx - w/2 + (u + 0.5) w / W_out, ...)`` in
    pixel-centre coordinates, so the output spans exactly the window's edges.
    """
    cx, cy, w, h = (float(v) for v in window)
    out_w, out_h = size
    kx, ky = w / out_w, h / out_h
    m = np.array([[kx, 0.0, cx - w / 2 + 0.5 * kx], [0.0, ky, cy - h / 2 + 0.5 * ky]])
    src = np.ascontiguousarray(frame)
    if kx > 1.5 or ky > 1.5:  # shrinking a lot: pre-blur against aliasing
        src = cv2.GaussianBlur(src, (0, 0), sigmaX=0.5 * max(kx - 1, 0.1), sigmaY=0.5 * max(ky - 1, 0.1))
    return cv2.warpAffine(src, m, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


class _AudioCarrier:
    """Copies (or transcodes to AAC) the source's first audio stream into the output container."""

    def __init__(self, source: Path, container, out_ext: str):
        import av

        self.notes: list[str] = []
        self._input = av.open(str(source))
        self._in_stream = self._input.streams.audio[0]
        codec = self._in_stream.codec_context.name
        self.remux = codec in REMUX_AUDIO.get(out_ext, set())
        if self.remux:
            self.out_stream = container.add_stream_from_template(self._in_stream)
            self.notes.append(f"audio: {codec} copied")
        else:
            rate = self._in_stream.codec_context.sample_rate or 48000
            self.out_stream = container.add_stream("aac", rate=rate)
            layout = self._in_stream.codec_context.layout
            self.out_stream.layout = layout.name if layout.nb_channels <= 2 else "stereo"
            self.notes.append(f"audio: {codec} transcoded to aac")
        self._packets = self._packet_iter()
        self._pending = None

    def _packet_iter(self) -> Iterator:
        tb = self._in_stream.time_base
        if self.remux:
            for packet in self._input.demux(self._in_stream):
                if packet.dts is None:
                    continue
                packet.stream = self.out_stream
                yield float(packet.dts * tb), packet
        else:
            for frame in self._input.decode(self._in_stream):
                seconds = float(frame.pts * tb) if frame.pts is not None else 0.0
                frame.pts = None
                for packet in self.out_stream.encode(frame):
                    yield seconds, packet
            for packet in self.out_stream.encode(None):
                yield math.inf, packet

    def mux_until(self, container, seconds: float) -> None:
        """Mux every audio packet that starts before ``seconds`` (keeps the file interleaved)."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            when, packet = self._pending
            if when > seconds:
                return
            container.mux(packet)
            self._pending = None

    def close(self) -> None:
        self._input.close()


def _has_audio(source: Path | None) -> bool:
    if source is None or not Path(source).is_file():
        return False
    import av

    try:
        with av.open(str(source)) as probe:
            return bool(probe.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def render_reframed(
    frames: Iterable[np.ndarray],
    path: CropPath,
    out_path: str | Path,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    audio_from: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    crf: int = 18,
) -> dict:
    """Encode the path's window of every frame of ``frames`` to ``out_path`` (.mp4, .mov, .mkv, .m4v).

    ``frames`` must yield exactly ``path.num_frames`` (H, W, 3) uint8 RGB frames. ``audio_from`` is a
    video file whose first audio stream is carried over, if it has one. Returns a summary dict
    (``frames``, ``width``, ``height``, ``fps``, ``audio``, ``notes``).
    """
    steps = render_steps(frames, path, out_path, size, fps, audio_from, crf)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(done, total)


def _remove_dead_partials(out_path: Path) -> None:
    """Delete the temporary videos that killed renders of ``out_path`` left (not a live one's)."""
    for leftover in out_path.parent.glob(f".{out_path.stem}.*.partial{out_path.suffix}"):
        pid = leftover.name[len(out_path.stem) + 2:].partition("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _check_and_commit(temp: Path, out_path: Path, frames: int) -> None:
    """Check the finished temporary video (it opens, and an indexed container lists every frame),
    fsync it and rename it over ``out_path``: a full disk can end a write without an error."""
    import av

    try:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with av.open(str(temp)) as probe:
            listed = int(probe.streams.video[0].frames or 0) if probe.streams.video else -1
        if listed < 0 or (listed and listed != frames):
            raise ProjectIOError(f"finishing {out_path} failed: the written file lists {max(listed, 0)} of "
                                 f"{frames} frames (disk full?)")
        os.replace(temp, out_path)
        fsync_dir(out_path.parent)
    except av.error.FFmpegError as exc:
        raise ProjectIOError(f"finishing {out_path} failed: the written file is unreadable ({exc}); disk full?") from exc
    except OSError as exc:
        raise ProjectIOError(f"finishing {out_path} failed: {describe_os_error(exc)}") from exc


def render_steps(
    frames: Iterable[np.ndarray],
    path: CropPath,
    out_path: str | Path,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    audio_from: str | Path | None = None,
    crf: int = 18,
) -> Iterator[tuple[int, int]]:
    """``render_reframed`` as a generator: yields ``(frames done, total)`` after each frame and
    returns the summary dict. The video is rendered into a hidden temporary sibling that replaces
    ``out_path`` only once it is complete and checked, so a failure (a full disk), a cancel or a kill
    leaves an earlier video at ``out_path`` as it was; closing it early deletes the partial file."""
    import av

    out_path = Path(out_path)
    ext = out_path.suffix.lower()
    if ext not in REMUX_AUDIO:
        raise ProjectIOError(f"cannot write {out_path}: the output must be one of {', '.join(sorted(REMUX_AUDIO))}")
    size = output_size(path.frame_size, path.aspect) if size is None else tuple(int(v) for v in size)
    if size[0] % 2 or size[1] % 2:
        raise VideoError(f"output size {size[0]}x{size[1]} must be even for H.264 yuv420p")
    fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
    total = path.num_frames
    # Same folder (one rename commits it), same extension (the muxer is chosen by it).
    temp = out_path.with_name(f".{out_path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{out_path.suffix}")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_partials(out_path)
        container = av.open(str(temp), mode="w")
    except (OSError, av.error.FFmpegError) as exc:
        raise ProjectIOError(f"cannot write {out_path}: {describe_write_error(exc) if isinstance(exc, OSError) else exc}") from exc
    audio = None
    written = 0
    ok = False
    try:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        if _has_audio(Path(audio_from) if audio_from is not None else None):
            audio = _AudioCarrier(Path(audio_from), container, ext)
        windows = path.windows
        for t, frame in enumerate(frames):
            if t >= total:
                raise VideoError(f"the video has more frames than the crop path ({total})")
            frame = np.asarray(frame)
            if frame.shape[:2] != tuple(path.frame_size):
                raise VideoError(f"frame {t} is {frame.shape[1]}x{frame.shape[0]}, the path was planned for "
                                 f"{path.frame_size[1]}x{path.frame_size[0]}")
            out = crop_frame(frame, windows[t], size)
            for packet in stream.encode(av.VideoFrame.from_ndarray(out, format="rgb24")):
                container.mux(packet)
            written += 1
            if audio is not None:
                audio.mux_until(container, (t + 1) / fps)
            yield written, total
        if written != total:
            raise VideoError(f"the video gave {written} frames, the crop path has {total}")
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            audio.mux_until(container, math.inf)
        ok = True
    except (av.error.FFmpegError, OSError) as exc:
        raise ProjectIOError(f"encoding {out_path} failed: {exc}") from exc
    finally:
        if audio is not None:
            audio.close()
        try:
            container.close()
        except (av.error.FFmpegError, OSError) as exc:
            if ok:
                _remove_quietly(temp)
                raise ProjectIOError(f"finishing {out_path} failed: {exc}") from exc
        if not ok:
            _remove_quietly(temp)  # never leave a half-written video behind
    try:
        _check_and_commit(temp, out_path, written)
    finally:
        _remove_quietly(temp)  # gone already once committed
    return {"frames": written, "width": size[0], "height": size[1], "fps": fps,
            "audio": audio is not None, "notes": audio.notes if audio is not None else []}
