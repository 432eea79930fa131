"""Tests for napari_hotspot.video: lazy sources (files, folders), frame cache, lazy arrays, masks."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from napari_hotspot.errors import VideoError
from napari_hotspot.video import (
    FrameCache,
    FrameFolderSource,
    FrameIndexError,
    LazyFrameArray,
    LazyVideoArray,
    VideoFileSource,
    find_davis_annotations,
    lazy_mask_array,
    open_source,
    read_mask_png,
)
from napari_hotspot.video import sources as sources_module

N_FRAMES, HEIGHT, WIDTH = 40, 48, 64


def synthetic_frames(n: int = N_FRAMES, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """Frames that all differ: a moving bright square on a frame-dependent gradient plus texture."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    frames = np.empty((n, height, width, 3), np.uint8)
    ramp = np.linspace(0, 120, width, dtype=np.float32)[None, :, None]
    for i in range(n):
        img = texture.astype(np.float32) + ramp + 3 * i
        x = (5 * i) % (width - 12)
        img[10:22, x : x + 12] = 255
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def write_video(path: Path, frames: np.ndarray, codec: str = "libx264", fps: int = 25, gop: int = 10, bframes: int = 2, faststart: bool = False) -> Path:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        opts = {"g": str(gop)}
        if codec in ("libx264", "mpeg4"):
            opts["bf"] = str(bframes)
        stream.options = opts
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def reference_decode(path: Path) -> list[np.ndarray]:
    """Plain sequential PyAV decode: the ground truth the sources must match frame by frame."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]


def write_folder(folder: Path, frames: np.ndarray, names: list[str] | None = None, ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{i:05d}" for i in range(len(frames))]
    for frame, name in zip(frames, names, strict=True):
        assert cv2.imwrite(str(folder / f"{name}{ext}"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


VIDEO_KINDS = {
    "mp4": ("libx264", {}),
    "mkv": ("libx264", {}),
    "mov": ("libx264", {}),
    "m4v": ("libx264", {}),
    "avi": ("mpeg4", {}),
    "webm": ("libvpx", {}),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    frames = synthetic_frames()
    return {ext: write_video(root / f"clip.{ext}", frames, codec) for ext, (codec, _) in VIDEO_KINDS.items()}


@pytest.fixture(scope="module")
def reference(videos) -> dict[str, list[np.ndarray]]:
    return {ext: reference_decode(path) for ext, path in videos.items()}


# -- video files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", list(VIDEO_KINDS))
def test_video_properties(videos, ext):
    with open_source(videos[ext]) as src:
        assert isinstance(src, VideoFileSource)
        assert src.path == videos[ext]
        assert (src.num_frames, src.height, src.width) == (N_FRAMES, HEIGHT, WIDTH)
        assert len(src) == N_FRAMES and src.shape == (N_FRAMES, HEIGHT, WIDTH, 3)
        assert src.fps == pytest.approx(25.0)
        assert src.frame_names == [f"{i:05d}" for i in range(N_FRAMES)]
    assert src.closed


@pytest.mark.parametrize("ext", list(VIDEO_KINDS))
def test_random_access_equals_sequential_decode(videos, reference, ext):
    ref = reference[ext]
    assert len(ref) == N_FRAMES
    with open_source(videos[ext]) as src:
        streamed = list(src.iter_frames())
        assert len(streamed) == N_FRAMES
        for i, frame in enumerate(streamed):
            np.testing.assert_array_equal(frame, ref[i], err_msg=f"iter_frames frame {i}")
        order = np.random.default_rng(1).permutation(N_FRAMES)
        for i in order:
            frame = src.get_frame(int(i))
            assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
            np.testing.assert_array_equal(frame, ref[i], err_msg=f"random access frame {i}")


@pytest.mark.parametrize("ext", ["mp4", "webm", "avi"])
def test_backward_and_strided_iteration(videos, reference, ext, monkeypatch):
    ref = reference[ext]
    # A tiny chunk budget forces several chunks inside one GOP, the hard case.
    monkeypatch.setattr(sources_module, "BACKWARD_CHUNK_BYTES", 3 * HEIGHT * WIDTH * 3)
    with open_source(videos[ext], cache_bytes=0) as src:
        backward = list(src.iter_frames(step=-1))
        assert len(backward) == N_FRAMES
        for frame, i in zip(backward, range(N_FRAMES - 1, -1, -1)):
            np.testing.assert_array_equal(frame, ref[i], err_msg=f"backward frame {i}")
        for args in [(25, None, -1), (33, 4, -3), (3, 31, 4), (7, None, 1), (0, None, -1)]:
            expected = list(src.frame_indices(*args))
            assert expected == list(range(args[0], -1 if args[1] is None and args[2] < 0 else (args[1] or N_FRAMES), args[2]))
            got = list(src.iter_frames(*args))
            assert len(got) == len(expected)
            for frame, i in zip(got, expected):
                np.testing.assert_array_equal(frame, ref[i], err_msg=f"iter_frames{args} frame {i}")


def test_frames_are_caller_owned_and_cached(videos):
    with open_source(videos["mp4"]) as src:
        first = src.get_frame(5)
        first[:] = 0  # must not corrupt the cache
        again = src.get_frame(5)
        assert again.any()
        assert again.flags.writeable and again.flags.c_contiguous
        assert 5 in src._cache
        streamed = next(src.iter_frames(5))
        np.testing.assert_array_equal(streamed, again)
        assert src.get_frame_readonly(5).flags.writeable is False


def test_backward_stepping_prefills_cache_correctly(videos, reference):
    ref = reference["mp4"]
    with open_source(videos["mp4"]) as src:
        src.get_frame(29)
        src.get_frame(28)  # one step back: the seek also caches the frames below 28 in its GOP
        keyframe = max(k for k in src._keyframes if k <= 28)
        prefilled = set(range(max(keyframe, 28 - sources_module.BACKWARD_SCRUB_FRAMES), 28))
        assert prefilled and prefilled <= set(src._cache._frames)
        for i in sorted(prefilled):
            np.testing.assert_array_equal(src.get_frame_readonly(i), ref[i], err_msg=f"prefilled frame {i}")


def test_open_decodes_only_the_first_frame(videos):
    with open_source(videos["mkv"]) as src:
        assert len(src._cache) == 1 and 0 in src._cache


def test_concurrent_readers_get_correct_frames(videos, reference):
    ref = reference["mp4"]
    errors: list[str] = []
    with open_source(videos["mp4"], cache_bytes=0) as src:

        def reader(seed: int) -> None:
            for i in np.random.default_rng(seed).integers(0, N_FRAMES, 25):
                if not np.array_equal(src.get_frame(int(i)), ref[i]):
                    errors.append(f"thread {seed} frame {i}")

        def streamer() -> None:
            for i, frame in enumerate(src.iter_frames()):
                if not np.array_equal(frame, ref[i]):
                    errors.append(f"streamer frame {i}")

        threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)] + [threading.Thread(target=streamer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_index_out_of_range(videos):
    with open_source(videos["mp4"]) as src:
        for bad in (N_FRAMES, -1, 10**6):
            with pytest.raises(FrameIndexError, match=rf"frame index {bad} is out of range.*{N_FRAMES} frames"):
                src.get_frame(bad)
        with pytest.raises(IndexError):  # FrameIndexError is also an IndexError
            src.get_frame(N_FRAMES)
        with pytest.raises(VideoError, match="must be an integer"):
            src.get_frame(1.5)
        with pytest.raises(VideoError, match="out of range"):
            src.iter_frames(N_FRAMES)
        with pytest.raises(VideoError, match="stop=.* out of range"):
            src.iter_frames(0, N_FRAMES + 1)
        with pytest.raises(VideoError, match="non-zero integer"):
            src.iter_frames(step=0)
    with pytest.raises(VideoError, match="closed"):
        src.get_frame(0)


def test_missing_path_and_unsupported_extension(tmp_path):
    with pytest.raises(VideoError, match=r"not found: .*nothing\.mp4"):
        open_source(tmp_path / "nothing.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(VideoError, match=r"notes\.txt.*unsupported file type '\.txt'"):
        open_source(text)
    with pytest.raises(VideoError, match=r"Unsupported video extension '\.txt'"):
        VideoFileSource(text)


@pytest.mark.parametrize("content", [b"", b"random"])
def test_corrupt_video_file(tmp_path, content):
    path = tmp_path / "broken.mp4"
    data = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes() if content else b""
    path.write_bytes(data)
    with pytest.raises(VideoError, match=r"broken\.mp4.*corrupt"):
        open_source(path)


def test_truncated_mp4_with_index_at_end_gives_clear_error(tmp_path, videos):
    data = videos["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut\.mp4"):
        open_source(cut)


@pytest.mark.parametrize("kind", ["faststart-mp4", "mkv", "webm"])
def test_truncated_video_opens_with_the_frames_present(tmp_path, kind):
    frames = synthetic_frames(seed=3)
    # Noisy content so the cut lands in the middle of the stream, not in the header.
    frames = np.clip(frames.astype(int) + np.random.default_rng(0).integers(0, 90, frames.shape), 0, 255).astype(np.uint8)
    if kind == "faststart-mp4":
        full = write_video(tmp_path / "full.mp4", frames, faststart=True)
    elif kind == "mkv":
        full = write_video(tmp_path / "full.mkv", frames)
    else:
        full = write_video(tmp_path / "full.webm", frames, codec="libvpx")
    data = full.read_bytes()
    cut = tmp_path / f"cut{full.suffix}"
    cut.write_bytes(data[: len(data) // 2])
    ref = reference_decode(full)
    with open_source(cut) as src:
        assert 0 < src.num_frames < N_FRAMES
        streamed = list(src.iter_frames())  # every indexed frame really decodes
        assert len(streamed) == src.num_frames
        for i in (src.num_frames - 1, 0, src.num_frames // 2):
            np.testing.assert_array_equal(src.get_frame(i), ref[i])
        with pytest.raises(FrameIndexError, match=rf"cut{full.suffix}.*out of range"):
            src.get_frame(src.num_frames)


@pytest.mark.parametrize("ext", ["mp4", "webm", "avi"])
def test_damaged_middle_gives_frames_or_videoerror(tmp_path, videos, ext):
    data = bytearray(videos[ext].read_bytes())
    start = len(data) // 3
    data[start : start + 1500] = np.random.default_rng(2).integers(0, 256, 1500, dtype=np.uint8).tobytes()
    path = tmp_path / f"damaged.{ext}"
    path.write_bytes(bytes(data))
    try:
        src = open_source(path)
    except VideoError as exc:
        assert "damaged" in str(exc)
        return
    with src:
        for i in range(src.num_frames - 1, -1, -1):
            try:
                frame = src.get_frame(i)
            except VideoError as exc:  # the only acceptable failure, naming file and frame
                assert f"frame {i}" in str(exc) and str(path) in str(exc)
            else:
                assert frame.shape == (HEIGHT, WIDTH, 3)


# -- frame folders ----------------------------------------------------------------------------------
def test_frame_folder_natural_order_and_pixels(tmp_path):
    frames = synthetic_frames(12)
    names = [f"frame_{i}" for i in range(12)]  # frame_10 must come after frame_9
    folder = write_folder(tmp_path / "frames", frames, names)
    (folder / "notes.txt").write_text("not a frame")
    with open_source(folder) as src:
        assert isinstance(src, FrameFolderSource)
        assert src.frame_names == names
        assert (src.num_frames, src.height, src.width, src.fps) == (12, HEIGHT, WIDTH, None)
        for i in (11, 0, 7):
            np.testing.assert_array_equal(src.get_frame(i), frames[i])  # png is lossless
        backward = list(src.iter_frames(step=-1))
        np.testing.assert_array_equal(np.stack(backward), frames[::-1])
        np.testing.assert_array_equal(np.stack(list(src.iter_frames(2, 9, 3))), frames[2:9:3])


def test_frame_folder_jpg_and_grayscale(tmp_path):
    folder = tmp_path / "jpgs"
    folder.mkdir()
    gray = np.full((HEIGHT, WIDTH), 120, np.uint8)
    cv2.imwrite(str(folder / "00000.jpg"), gray)
    cv2.imwrite(str(folder / "00001.JPG"), np.full((HEIGHT, WIDTH, 3), 200, np.uint8))
    with open_source(folder) as src:
        assert src.num_frames == 2
        frame = src.get_frame(0)
        assert frame.shape == (HEIGHT, WIDTH, 3)
        assert abs(int(frame.mean()) - 120) <= 2


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(VideoError, match=r"empty contains no frames.*sub-folders: sub"):
        open_source(empty)


def test_folder_with_mixed_frame_sizes(tmp_path):
    folder = write_folder(tmp_path / "mixed", synthetic_frames(3))
    cv2.imwrite(str(folder / "00003.png"), np.zeros((HEIGHT + 2, WIDTH, 3), np.uint8))
    with pytest.raises(VideoError, match=r"mixes frame sizes: 00000\.png is 64x48 but 00003\.png is 64x50"):
        open_source(folder)


def test_folder_with_corrupt_image(tmp_path):
    folder = write_folder(tmp_path / "bad", synthetic_frames(3))
    (folder / "00001.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(VideoError, match=r"00001\.png"):
        open_source(folder)


def test_folder_duplicate_stems(tmp_path):
    folder = write_folder(tmp_path / "dup", synthetic_frames(2))
    cv2.imwrite(str(folder / "00000.jpg"), synthetic_frames(1)[0])
    with pytest.raises(VideoError, match="two frames named '00000'"):
        open_source(folder)


# -- lazy arrays ---------------------------------------------------------------------------------------
def test_lazy_video_array_indexing(videos, reference):
    ref = np.stack(reference["mp4"])
    with open_source(videos["mp4"]) as src:
        arr = LazyVideoArray(src)
        assert arr.shape == (N_FRAMES, HEIGHT, WIDTH, 3)
        assert arr.dtype == np.uint8 and arr.ndim == 4 and arr.size == ref.size and len(arr) == N_FRAMES
        np.testing.assert_array_equal(arr[3], ref[3])
        np.testing.assert_array_equal(arr[np.int64(7)], ref[7])
        np.testing.assert_array_equal(arr[-1], ref[-1])
        np.testing.assert_array_equal(arr[2:9:3], ref[2:9:3])
        np.testing.assert_array_equal(arr[::-5], ref[::-5])
        np.testing.assert_array_equal(arr[4, 10:20, 5:30, 1], ref[4, 10:20, 5:30, 1])
        np.testing.assert_array_equal(arr[(slice(1, 3), slice(None), 0)], ref[1:3, :, 0])
        np.testing.assert_array_equal(arr[[5, 1, 5]], ref[[5, 1, 5]])
        np.testing.assert_array_equal(arr[np.array([2, 0])], ref[[2, 0]])
        mask = np.zeros(N_FRAMES, bool)
        mask[[1, 30]] = True
        np.testing.assert_array_equal(arr[mask], ref[mask])
        np.testing.assert_array_equal(arr[..., 2], ref[..., 2])
        np.testing.assert_array_equal(arr[6, ...], ref[6])
        np.testing.assert_array_equal(np.asarray(arr), ref)
        assert np.asarray(arr, dtype=np.float32).dtype == np.float32
        with pytest.raises(IndexError, match="out of range"):
            arr[N_FRAMES]
        with pytest.raises(IndexError, match="too many indices"):
            arr[0, 0, 0, 0, 0]


def test_lazy_array_reads_only_what_is_indexed():
    reads: list[int] = []

    def read(t: int) -> np.ndarray:
        reads.append(t)
        return np.full((4, 5), t, np.uint8)

    arr = LazyFrameArray(read, 100, (4, 5), np.uint8)
    assert arr.shape == (100, 4, 5) and reads == []
    assert arr[42, 1, 2] == 42
    assert arr[10:13].shape == (3, 4, 5)
    assert reads == [42, 10, 11, 12]
    bad = LazyFrameArray(lambda t: np.zeros((3, 3), np.uint8), 2, (4, 5), np.uint8, name="bad")
    with pytest.raises(ValueError, match="bad: frame 0 is"):
        bad[0]


def test_frame_cache_is_bounded_by_bytes():
    cache = FrameCache(max_bytes=3 * 100)
    for i in range(5):
        cache.put(i, np.full(100, i, np.uint8))
    assert len(cache) == 3 and cache.nbytes == 300
    assert cache.get(0) is None and cache.get(1) is None
    assert cache.get(2) is not None  # now most recently used
    cache.put(5, np.zeros(100, np.uint8))
    assert cache.get(3) is None and cache.get(2) is not None
    cache.put(9, np.zeros(1000, np.uint8))  # bigger than the whole budget: not stored
    assert 9 not in cache


# -- masks ---------------------------------------------------------------------------------------------
def test_read_mask_png_modes(tmp_path):
    binary = np.zeros((6, 8), np.uint8)
    binary[2:4, 3:6] = 255
    Image.fromarray(binary, mode="L").save(tmp_path / "binary.png")
    np.testing.assert_array_equal(read_mask_png(tmp_path / "binary.png"), binary // 255)
    ids = np.zeros((6, 8), np.uint8)
    ids[0, 0], ids[5, 7] = 1, 2
    indexed = Image.fromarray(ids, mode="P")
    indexed.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    indexed.save(tmp_path / "indexed.png")
    np.testing.assert_array_equal(read_mask_png(tmp_path / "indexed.png"), ids)
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[1, 1] = (0, 128, 0)  # DAVIS palette colour 2: one reader for every mask PNG (video/masks.py)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert read_mask_png(tmp_path / "rgb.png").sum() == 2
    rgb[1, 1] = (0, 200, 0)  # not a palette colour: refused, as a DAVIS import or the evaluator refuses it
    Image.fromarray(rgb).save(tmp_path / "other.png")
    with pytest.raises(VideoError, match="not in the DAVIS palette"):
        read_mask_png(tmp_path / "other.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(VideoError, match=r"junk\.png"):
        read_mask_png(tmp_path / "junk.png")


def test_davis_annotations_are_found_and_read_lazily(tmp_path):
    frames_dir = write_folder(tmp_path / "JPEGImages" / "480p" / "seq", synthetic_frames(4), ext=".jpg")
    ann = tmp_path / "Annotations" / "480p" / "seq"
    ann.mkdir(parents=True)
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[5:9, 5:9] = 255
    Image.fromarray(mask).save(ann / "00001.png")
    assert find_davis_annotations(frames_dir) == ann.resolve()
    assert find_davis_annotations(tmp_path / "Annotations") is None
    names = [f"{i:05d}" for i in range(4)]
    masks = lazy_mask_array(ann, names, HEIGHT, WIDTH)
    assert masks.shape == (4, HEIGHT, WIDTH) and masks.dtype == np.uint8
    assert masks[0].sum() == 0  # no file for frame 0: background
    assert masks[1].sum() == 16 and masks[1].max() == 1
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(ann / "00002.png")
    with pytest.raises(VideoError, match=r"00002\.png is 10x10"):
        masks[2]
    with pytest.raises(VideoError, match="no <frame name>.png mask"):
        lazy_mask_array(ann, ["a", "b"], HEIGHT, WIDTH)


# ---------------------------------------------------------------------------- the one frame adapter
def test_a_float_video_fills_the_range_for_both_docks():
    """A float [0, 1] video layer: the tracking and the labelling dock read the same full-range RGB
    uint8 frames through the one adapter (video.frames); the labelling dock used to see it all black."""
    from types import SimpleNamespace

    from napari_hotspot._napari.layer_data import frame_source_for
    from napari_hotspot.video.frames import ArrayFrames, to_rgb_uint8

    rng = np.random.default_rng(0)
    video = rng.random((3, 12, 16, 3)).astype(np.float32)
    video[:, 0, 0] = (0.0, 0.0, 0.0)
    video[:, 0, 1] = (1.0, 1.0, 1.0)
    layer = SimpleNamespace(data=video, rgb=True, name="clip", multiscale=False)
    source = frame_source_for(layer)
    assert (source.num_frames, source.height, source.width) == (3, 12, 16)
    frame = source.get_frame(1)
    assert frame.dtype == np.uint8 and frame.shape == (12, 16, 3)
    assert frame.min() == 0 and frame.max() == 255 and frame.mean() > 100
    np.testing.assert_array_equal(frame, np.clip(video[1] * 255, 0, 255).astype(np.uint8))
    # grey, 16-bit and uint8 videos through the same adapter
    grey = ArrayFrames((video[..., 0] * 1000).astype(np.uint16), rgb=False)
    assert grey.get_frame(0).shape == (12, 16, 3) and grey.get_frame(0).max() == 255
    as_bytes = (video * 255).astype(np.uint8)
    np.testing.assert_array_equal(ArrayFrames(as_bytes, rgb=True).get_frame(2), as_bytes[2])
    assert not to_rgb_uint8(np.full((4, 4), np.nan, np.float32), rgb=False).any()  # no NaN surprise
    with pytest.raises(VideoError, match="expected a video"):
        ArrayFrames(np.zeros((2, 3, 4, 5, 6)), rgb=False)
