"""Mask files: the one reader of mask PNGs (object ids) and of prompt masks, and per-frame mask PNGs
(DAVIS ``Annotations``) read lazily, aligned with a frame source's frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_hotspot.errors import ProjectIOError, VideoError
from napari_hotspot.video.lazy_array import LazyFrameArray


class MaskFileError(VideoError, ProjectIOError):
    """A mask file cannot be read (a video's ground truth, an import, an evaluation or a prompt alike)."""


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """The one reader of mask PNGs: ``(H, W)`` uint8 object ids, as the file holds them.

    Mode "P" gives palette indices (DAVIS-2017 style); grey ("L", "1", 16-bit up to 255, grey with
    alpha) its values; RGB(A) grey its grey values, colours mapped back through the DAVIS palette
    (another colour is an error). The viewer's ground truth, DAVIS imports (``io_davis``), the
    evaluator (``evaluation.report``) and reframing's track folders all read masks here; a binary 0/255
    mask (DAVIS-2016 style) is read as it is, and ``binary_as_object_one`` makes it object 1.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "P":
                return np.array(image, dtype=np.uint8)
            if mode in ("L", "1", "LA"):
                return np.array(image.convert("L"), dtype=np.uint8)
            if mode in ("I", "I;16", "I;16B", "I;16L"):
                values = np.array(image)
                if values.min() < 0 or values.max() > 255:
                    raise MaskFileError(f"{path}: label values {values.min()}..{values.max()} exceed 255 "
                                        "(at most 255 objects are supported)")
                return values.astype(np.uint8)
            rgb = np.array(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise MaskFileError(f"mask file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise MaskFileError(f"cannot read mask PNG {path}: {err}") from None
    return _rgb_to_index(rgb, path)


def _rgb_to_index(rgb: np.ndarray, path: Path) -> np.ndarray:
    from napari_hotspot.annotations.palette import davis_palette

    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return rgb[..., 0].copy()  # grey stored as RGB
    palette = davis_palette().astype(np.int32)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {int(k): i for i, k in enumerate(keys)}
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    colors, inverse = np.unique(packed, return_inverse=True)
    indices = np.empty(len(colors), dtype=np.uint8)
    for i, color in enumerate(colors.tolist()):
        if color not in lookup:
            rgb_text = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
            raise MaskFileError(f"{path}: colour {rgb_text} is not in the DAVIS palette")
        indices[i] = lookup[color]
    return indices[inverse].reshape(packed.shape)


def binary_as_object_one(labels: np.ndarray) -> np.ndarray:
    """A binary 0/255 mask (DAVIS-2016 style: every value 0 or 255) as object 1; other labels as they are."""
    values = np.unique(labels)
    return (labels == 255).astype(np.uint8) if np.all(np.isin(values, (0, 255))) else labels


def read_mask_png(path: str | os.PathLike) -> np.ndarray:
    """A mask PNG as ``(H, W)`` uint8 object ids (0 = background), a binary 0/255 one as object 1
    (``read_label_png``, ``binary_as_object_one``)."""
    return binary_as_object_one(read_label_png(path))


def read_prompt_mask(path: Path, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """The one reader of prompt masks (``track``/``reframe --mask``, a batch manifest's mask): (H, W)
    bool, any non-zero pixel is the object. In an RGBA image with transparency the opaque pixels are
    the object; a lossy JPEG is thresholded at half intensity (its compression noise is not object).
    A mask that covers the whole frame is refused (inverted, or an opaque image)."""
    import cv2

    from napari_hotspot.errors import PromptError

    path = Path(path)
    if path.is_dir():
        raise PromptError(f"mask {path} is a folder: give one image file (a PNG of the prompted frame)")
    if not path.is_file():
        raise PromptError(f"mask file not found: {path}")
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise PromptError(f"cannot read mask image {path}: not a valid PNG")
    if m.ndim == 3 and m.shape[2] == 4 and m[..., 3].min() != m[..., 3].max():
        m = m[..., 3]  # transparency marks the object; the colour of transparent pixels is arbitrary
    elif m.ndim == 3:
        m = m[..., :3].max(axis=2)
    if frame_size is not None and m.shape != tuple(frame_size):
        raise PromptError(f"mask {path} has size {m.shape[1]}x{m.shape[0]} but the frames are "
                          f"{frame_size[1]}x{frame_size[0]}")
    lossy = path.suffix.lower() in (".jpg", ".jpeg")
    mask = m > (np.iinfo(m.dtype).max // 2 if lossy and m.dtype.kind == "u" else 0)
    if mask.all():
        raise PromptError(f"mask {path} covers the whole frame: the object must be non-zero on a zero "
                          "background (is the mask inverted, or an opaque image?)")
    return mask


def find_davis_annotations(frames_dir: str | os.PathLike) -> Path | None:
    """The ``Annotations`` folder matching a DAVIS-style frame folder, or None.

    ``<root>/JPEGImages/<res>/<seq>`` -> ``<root>/Annotations/<res>/<seq>``, and
    ``<root>/JPEGImages/<seq>`` -> ``<root>/Annotations/<seq>``; only if that folder exists.
    """
    frames_dir = Path(frames_dir)
    parts = frames_dir.resolve().parts
    if "JPEGImages" not in parts[:-1]:
        return None
    pos = len(parts) - 1 - parts[::-1].index("JPEGImages")
    if len(parts) - pos - 1 not in (1, 2):  # <seq> or <res>/<seq> below JPEGImages
        return None
    candidate = Path(*parts[:pos], "Annotations", *parts[pos + 1 :])
    return candidate if candidate.is_dir() else None


def lazy_mask_array(
    annotations_dir: str | os.PathLike, frame_names: list[str], height: int, width: int
) -> LazyFrameArray:
    """``(T, H, W)`` uint8 masks read on demand from ``<annotations_dir>/<frame name>.png``.

    Frames without a mask file read as all background (DAVIS test sets annotate only frame 0).
    Raises VideoError when the folder holds no mask for any frame, or a mask has another size.
    """
    annotations_dir = Path(annotations_dir)
    files = [annotations_dir / f"{name}.png" for name in frame_names]
    if not any(f.is_file() for f in files):
        raise VideoError(f"Annotation folder {annotations_dir} has no <frame name>.png mask for any frame")

    def read(t: int) -> np.ndarray:
        if not files[t].is_file():  # checked per read: masks may be added while the layer is open
            return np.zeros((height, width), np.uint8)
        mask = read_mask_png(files[t])
        if mask.shape != (height, width):
            raise VideoError(f"Mask {files[t]} is {mask.shape[1]}x{mask.shape[0]}, but the frames are {width}x{height}")
        return mask

    return LazyFrameArray(read, len(frame_names), (height, width), np.uint8, name=str(annotations_dir))
