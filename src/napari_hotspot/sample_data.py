"""A deterministic synthetic sample video with ground-truth masks and hotspots (no internet, no Qt).

Two textured objects move over a textured static background: object 1 is a four-legged animal
(body, neck, distinct pale head), object 2 a smaller bird with a red head seen from above. Each
object's hotspot is the centre of its head. Objects stay in the frame and never overlap, because
each moves inside its own vertical band of the frame.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from napari_hotspot.errors import VideoError

OBJECT_NAMES: tuple[str, ...] = ("animal", "bird")


@dataclass(frozen=True)
class SampleVideo:
    """Frames plus ground truth. Object ids are 1..n_objects (0 = background) in ``object_names`` order."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    masks: np.ndarray  # (T, H, W) uint8 object ids
    hotspots: np.ndarray  # (T, n_objects, 3) float32: x, y (pixels), visible (0/1)
    object_names: tuple[str, ...] = OBJECT_NAMES
    fps: float = 24.0

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def object_ids(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.object_names) + 1))


@dataclass(frozen=True)
class SamplePaths:
    """What ``write_sample`` wrote: ``frames`` is a folder of JPGs or an .mp4 file."""

    frames: Path
    annotations: Path  # folder of indexed PNG masks 00000.png ... (pixel value = object id)
    hotspots_csv: Path  # columns frame,object_id,x,y,visible
    frame_names: list[str] = field(default_factory=list)


# -- procedural textures --------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, height: int, width: int, octaves=(4, 8, 16, 32)) -> np.ndarray:
    """Multi-octave value noise in [0, 1]: coarse random grids upsampled smoothly and summed."""
    total = np.zeros((height, width), np.float32)
    weight_sum = 0.0
    for k, cells in enumerate(octaves):
        weight = 0.5**k
        gh = max(2, round(cells * height / max(height, width)))
        gw = max(2, round(cells * width / max(height, width)))
        grid = rng.random((gh, gw), dtype=np.float32)
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        weight_sum += weight
    total /= weight_sum
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def _make_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Grass-and-earth ground with static distractor blobs (rocks, a red flower patch), float32 0..255."""
    terrain = _smooth_noise(rng, height, width)
    blades = _smooth_noise(rng, height, width, octaves=(48, 96, 160))  # fine grass-like texture
    patches = _smooth_noise(rng, height, width, octaves=(3, 6))
    grain = rng.normal(0.0, 1.0, (height, width)).astype(np.float32)
    grass_dark, grass_light = np.array([52, 84, 38], np.float32), np.array([128, 150, 78], np.float32)
    earth = np.array([128, 104, 76], np.float32)
    color = grass_dark + terrain[..., None] * (grass_light - grass_dark)
    earthiness = np.clip((patches - 0.55) * 4.0, 0.0, 1.0)[..., None]
    color = color * (1 - earthiness) + earth * (0.8 + 0.4 * terrain[..., None]) * earthiness
    color *= (0.8 + 0.4 * blades)[..., None]
    color += 5.0 * grain[..., None]

    # Distractors: a few static blobs with object-like colours, so a tracker has something to confuse.
    m = min(height, width)
    distractors = [((118, 92, 70), 0.10), ((110, 106, 100), 0.08), ((120, 84, 56), 0.06), ((190, 50, 45), 0.03)]
    for rgb, size in distractors:
        cy, cx = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
        ay, ax = size * m * rng.uniform(0.6, 1.0), size * m * rng.uniform(0.8, 1.3)
        blob = np.zeros((height, width), np.float32)
        cv2.ellipse(blob, (int(cx), int(cy)), (max(1, int(ax)), max(1, int(ay))), rng.uniform(0, 180), 0, 360, 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), max(0.8, 0.006 * m))
        shade = 0.7 + 0.6 * _smooth_noise(rng, height, width, octaves=(8, 24, 64))[..., None]
        color = color * (1 - blob[..., None]) + np.array(rgb, np.float32) * shade * blob[..., None]

    # Soft vignette, as a real lens gives.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((yy - height / 2) / (height / 2)) ** 2 + ((xx - width / 2) / (width / 2)) ** 2
    color *= (1.0 - 0.18 * r2)[..., None]
    return np.clip(color, 0, 255).astype(np.float32)


# -- objects ------------------------------------------------------------------------------------------
# Part labels inside an object's local canvas; each has a colour, and 0 is outside the object.
_PART_COLORS = {
    "animal": {1: (140, 92, 52), 2: (226, 206, 170), 3: (96, 62, 36), 4: (70, 45, 28), 5: (20, 16, 14)},
    "bird": {1: (72, 92, 150), 2: (205, 38, 36), 3: (48, 62, 110), 4: (236, 190, 40), 5: (15, 15, 15)},
}


class _ObjectModel:
    """One object: draws its part labels in a local canvas (heading +x) and textures them."""

    def __init__(self, kind: str, unit: float, rng: np.random.Generator):
        self.kind = kind
        self.u = unit  # characteristic size in pixels
        self.canvas = int(2 * math.ceil(2.6 * unit) + 8)
        c = self.canvas / 2
        self.center = (c, c)
        if kind == "animal":
            self.head_local = (c + 1.55 * unit, c - 0.75 * unit)
        else:
            self.head_local = (c + 1.05 * unit, c)
        self.palette = np.zeros((6, 3), np.float32)
        for label, rgb in _PART_COLORS[kind].items():
            self.palette[label] = rgb
        # Texture fields fixed to the object, so the texture moves and turns with it.
        self.fur = _smooth_noise(rng, self.canvas, self.canvas, octaves=(6, 12, 24))
        self.spots = _smooth_noise(rng, self.canvas, self.canvas, octaves=(5, 9))

    def draw_labels(self, phase: float) -> np.ndarray:
        """Part labels of the object at gait/flap ``phase`` (radians)."""
        u, (cx, cy) = self.u, self.center
        labels = np.zeros((self.canvas, self.canvas), np.uint8)

        def pt(x, y):
            return (int(round(cx + x * u)), int(round(cy + y * u)))

        def ax(a, b):
            return (max(1, int(round(a * u))), max(1, int(round(b * u))))

        if self.kind == "animal":
            swing = 0.35 * math.sin(phase)
            thick = max(2, int(round(0.28 * u)))
            for hip_x, sign in ((-0.75, 1), (-0.45, -1), (0.55, 1), (0.85, -1)):  # legs swing in pairs
                cv2.line(labels, pt(hip_x, 0.3), pt(hip_x + sign * swing, 1.25), 3, thick)
            cv2.line(labels, pt(-1.05, -0.1), pt(-1.6, 0.35 + 0.1 * math.sin(phase)), 4, max(1, thick // 2))
            cv2.ellipse(labels, pt(0, 0), ax(1.15, 0.62), 0, 0, 360, 1, -1)  # body
            cv2.ellipse(labels, pt(1.1, -0.42), ax(0.45, 0.3), -35, 0, 360, 1, -1)  # neck
            hx, hy = (self.head_local[0] - cx) / u, (self.head_local[1] - cy) / u
            ear = [pt(hx - 0.3, hy - 0.3), pt(hx - 0.1, hy - 0.85), pt(hx + 0.05, hy - 0.3)]
            cv2.fillPoly(labels, [np.array(ear)], 4)
            cv2.circle(labels, pt(hx, hy), int(round(0.5 * u)), 2, -1)  # head
            cv2.ellipse(labels, pt(hx + 0.45, hy + 0.12), ax(0.3, 0.22), 0, 0, 360, 2, -1)  # muzzle
            cv2.circle(labels, pt(hx + 0.12, hy - 0.15), max(1, int(round(0.09 * u))), 5, -1)  # eye
        else:
            spread = 0.55 + 0.45 * math.sin(phase)  # wing beat
            for side in (-1, 1):
                wing = [pt(0.35, 0.0), pt(-0.55, side * (0.35 + 1.1 * spread)), pt(-0.35, side * 0.2)]
                cv2.fillPoly(labels, [np.array(wing)], 3)
            cv2.ellipse(labels, pt(0, 0), ax(0.85, 0.38), 0, 0, 360, 1, -1)  # body
            cv2.fillPoly(labels, [np.array([pt(-0.7, 0), pt(-1.25, -0.3), pt(-1.25, 0.3)])], 3)  # tail
            cv2.fillPoly(labels, [np.array([pt(1.3, -0.12), pt(1.3, 0.12), pt(1.7, 0)])], 4)  # beak
            cv2.circle(labels, pt(1.05, 0), int(round(0.36 * u)), 2, -1)  # head
        return labels

    def render(self, phase: float) -> tuple[np.ndarray, np.ndarray]:
        """(alpha (S,S) float32 0..1 with soft edges, texture (S,S,3) float32) in local coordinates."""
        labels = self.draw_labels(phase)
        texture = self.palette[labels]
        grain = 0.75 + 0.5 * self.fur[..., None]
        if self.kind == "animal":
            spots = np.where((self.spots > 0.62) & (labels == 1), 0.55, 1.0).astype(np.float32)[..., None]
        else:
            spots = np.where((self.spots > 0.55) & (labels == 3), 1.35, 1.0).astype(np.float32)[..., None]
        # Lit from above: lighter back, darker belly.
        rows = np.linspace(1.15, 0.8, self.canvas, dtype=np.float32)[:, None, None]
        texture = np.clip(texture * grain * spots * rows, 0, 255)
        alpha = cv2.GaussianBlur((labels > 0).astype(np.float32), (3, 3), 0.7)
        return alpha, texture

    def extent(self, max_scale: float, max_tilt_deg: float) -> tuple[float, float]:
        """Half-width and half-height (pixels) the object can reach around its centre."""
        ys, xs = np.nonzero(self.draw_labels(math.pi / 2) | self.draw_labels(-math.pi / 2))
        xs = xs - self.center[0]
        ys = ys - self.center[1]
        ex = ey = 0.0
        for deg in np.linspace(-max_tilt_deg, max_tilt_deg, 13):
            t = math.radians(deg)
            ex = max(ex, float(np.abs(xs * math.cos(t) - ys * math.sin(t)).max()))
            ey = max(ey, float(np.abs(xs * math.sin(t) + ys * math.cos(t)).max()))
        return (ex + 1.5) * max_scale, (ey + 1.5) * max_scale


def _local_to_frame(center_local, scale: float, flip: bool, angle: float, position) -> np.ndarray:
    """2x3 affine: local canvas -> frame (scale, optional mirror, rotate, translate)."""
    cos, sin = math.cos(angle), math.sin(angle)
    sx = -scale if flip else scale
    linear = np.array([[cos * sx, -sin * scale], [sin * sx, cos * scale]], np.float64)
    offset = np.asarray(position, np.float64) - linear @ np.asarray(center_local, np.float64)
    return np.hstack([linear, offset[:, None]])


def _path(rng: np.random.Generator, t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Smooth Lissajous-like positions (T, 2) within the box [lo, hi], random phases and rates."""
    mid, amp = (lo + hi) / 2, np.maximum(hi - lo, 0) / 2
    rates = rng.uniform(0.55, 1.1, 2) * 2 * math.pi
    phases = rng.uniform(0, 2 * math.pi, 2)
    wobble = 0.15 * np.sin(2 * rates[::-1][None] * t[:, None] + phases[None])
    return mid + amp * np.clip(0.85 * np.sin(rates[None] * t[:, None] + phases[None]) + wobble, -1, 1)


def make_sample_video(num_frames: int = 48, height: int = 240, width: int = 320, seed: int = 0) -> SampleVideo:
    """Render the sample video and its ground truth; same arguments give identical arrays."""
    for name, value, minimum in (("num_frames", num_frames, 1), ("height", height, 64), ("width", width, 64)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise VideoError(f"make_sample_video: {name} must be an integer >= {minimum}, got {value!r}")
    rng = np.random.default_rng(seed)
    background = _make_background(rng, height, width)
    m = min(height, width)
    models = [_ObjectModel("animal", 0.1 * m, rng), _ObjectModel("bird", 0.055 * m, rng)]
    max_scale, animal_tilt = 1.12, 15.0

    # Each object moves inside its own vertical band ([0, split] and [split, width]), so they never meet.
    split = 0.6 * width
    extents = [models[0].extent(max_scale, animal_tilt), models[1].extent(max_scale, 180.0)]
    (ex1, ey1), (ex2, ey2) = extents
    boxes = [
        (np.array([ex1, ey1]), np.array([split - ex1 - 1, height - ey1])),
        (np.array([split + ex2 + 1, ey2]), np.array([width - ex2, height - ey2])),
    ]
    for (lo, hi), name in zip(boxes, OBJECT_NAMES, strict=True):
        if np.any(hi < lo):
            raise VideoError(f"make_sample_video: a {width}x{height} frame is too small to keep the {name} apart")

    t = np.arange(num_frames, dtype=np.float64) / max(num_frames, 24)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width), np.uint8)
    hotspots = np.zeros((num_frames, len(models), 3), np.float32)
    paths = [_path(rng, t, lo, hi) for lo, hi in boxes]
    scales = [1.0 + 0.1 * np.sin(2 * math.pi * (0.4 + 0.2 * k) * t + rng.uniform(0, 6.3)) for k in range(2)]
    noise_rng = np.random.default_rng(rng.integers(1 << 31))
    for f in range(num_frames):
        frame = background.copy()
        for k, model in enumerate(models):
            pos = paths[k][f]
            vel = paths[k][min(f + 1, num_frames - 1)] - paths[k][max(f - 1, 0)]
            if model.kind == "animal":
                flip = bool(vel[0] < 0)  # faces where it walks; stays upright
                climb = math.degrees(math.atan2(vel[1], abs(vel[0]) + 1e-6))
                tilt = math.radians(float(np.clip(climb, -animal_tilt, animal_tilt)))
                angle = -tilt if flip else tilt
                phase = 2.2 * f
            else:
                flip, angle = False, math.atan2(vel[1], vel[0]) if np.hypot(*vel) > 1e-3 else 0.0
                phase = 1.3 * f
            affine = _local_to_frame(model.center, float(scales[k][f]), flip, angle, pos)
            alpha_local, texture_local = model.render(phase)
            alpha = cv2.warpAffine(alpha_local, affine, (width, height), flags=cv2.INTER_LINEAR)
            texture = cv2.warpAffine(texture_local, affine, (width, height), flags=cv2.INTER_LINEAR)
            # A soft contact shadow slightly below the object.
            drop = max(1, int(0.04 * m))
            shadow = np.zeros_like(alpha)
            shadow[drop:] = alpha[:-drop]
            shadow = cv2.GaussianBlur(shadow, (0, 0), 0.03 * m)
            frame *= (1.0 - 0.35 * shadow)[..., None]
            frame = frame * (1.0 - alpha[..., None]) + texture * alpha[..., None]
            masks[f][alpha > 0.5] = k + 1
            hx, hy = affine @ np.array([*model.head_local, 1.0])
            inside = 0 <= hx < width and 0 <= hy < height and masks[f, int(hy), int(hx)] == k + 1
            hotspots[f, k] = (hx, hy, 1.0 if inside else 0.0)
        frame += noise_rng.normal(0.0, 2.0, (height, width, 1)).astype(np.float32)  # sensor noise
        frames[f] = np.clip(frame, 0, 255).astype(np.uint8)
    return SampleVideo(frames=frames, masks=masks, hotspots=hotspots, object_names=OBJECT_NAMES, fps=24.0)


# -- writing ------------------------------------------------------------------------------------------
def davis_palette() -> np.ndarray:
    """The (256, 3) uint8 palette DAVIS/PASCAL-VOC indexed masks use (1 = dark red, 2 = green, ...)."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (r, g, b)
    return palette


def write_masks_png(masks: np.ndarray, folder: str | os.PathLike, frame_names: list[str]) -> Path:
    """Write ``masks`` (T, H, W) as DAVIS-style indexed PNGs ``<folder>/<frame name>.png``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    palette = davis_palette().reshape(-1).tolist()
    for mask, name in zip(masks, frame_names, strict=True):
        img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="P")
        img.putpalette(palette)
        img.save(folder / f"{name}.png")
    return folder


def write_hotspots_csv(hotspots: np.ndarray, path: str | os.PathLike) -> Path:
    """Write (T, n_objects, 3) hotspots as CSV rows ``frame,object_id,x,y,visible`` (ids from 1)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", "object_id", "x", "y", "visible"])
        for f, per_frame in enumerate(hotspots):
            for k, (x, y, visible) in enumerate(per_frame):
                writer.writerow([f, k + 1, f"{x:.2f}", f"{y:.2f}", int(visible > 0.5)])
    return path


def write_mp4(frames: np.ndarray, path: str | os.PathLike, fps: float = 24.0, crf: int = 18) -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 mp4 (H and W must be even for yuv420p)."""
    import av

    path = Path(path)
    t, h, w = frames.shape[:3]
    if h % 2 or w % 2:
        raise VideoError(f"Cannot write {path}: H.264 needs an even frame size, got {w}x{h}")
    path.parent.mkdir(parents=True, exist_ok=True)
    from fractions import Fraction

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_sample(
    directory: str | os.PathLike,
    kind: str = "folder",
    sample: SampleVideo | None = None,
    name: str = "sample",
) -> SamplePaths:
    """Write a sample video (default: ``make_sample_video()``) and its ground truth under ``directory``.

    kind="folder": frames as ``<dir>/JPEGImages/<name>/00000.jpg ...``; kind="mp4": ``<dir>/<name>.mp4``.
    Both write masks to ``<dir>/Annotations/<name>/00000.png ...`` (indexed, value = object id) and
    hotspots to ``<dir>/<name>_hotspots.csv``. The folder layout is DAVIS-like, so the napari reader
    finds the ground truth next to the frames.
    """
    if kind not in ("folder", "mp4"):
        raise VideoError(f"write_sample: kind must be 'folder' or 'mp4', got {kind!r}")
    sample = make_sample_video() if sample is None else sample
    directory = Path(directory)
    names = [f"{i:05d}" for i in range(sample.num_frames)]
    try:
        if kind == "folder":
            frames_path = directory / "JPEGImages" / name
            frames_path.mkdir(parents=True, exist_ok=True)
            for frame, frame_name in zip(sample.frames, names, strict=True):
                ok = cv2.imwrite(str(frames_path / f"{frame_name}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                 [cv2.IMWRITE_JPEG_QUALITY, 95])
                if not ok:
                    raise OSError(f"could not write {frames_path / f'{frame_name}.jpg'}")
        else:
            frames_path = write_mp4(sample.frames, directory / f"{name}.mp4", fps=sample.fps)
        annotations = write_masks_png(sample.masks, directory / "Annotations" / name, names)
        csv_path = write_hotspots_csv(sample.hotspots, directory / f"{name}_hotspots.csv")
    except OSError as exc:
        raise VideoError(f"Cannot write the sample video under {directory}: {exc}") from exc
    return SamplePaths(frames=frames_path, annotations=annotations, hotspots_csv=csv_path, frame_names=names)
