"""Layer data of the hotspot docks (Qt-free helpers on plain arrays and layer metadata).

What the tracking dock's controller, the project reader and the video reader share: the roles and
metadata keys of the layers napari-hotspot makes, the conversions between the annotation store and
napari layer data (labels, points, tracks, prompts), and the frame source of a video layer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_hotspot._napari.lazy_labels import LazyLabels
from napari_hotspot.annotations import AnnotationStore
from napari_hotspot.annotations.project import WIDGET_EXTRA_KEY
from napari_hotspot.errors import VideoError
from napari_hotspot.video import LazyVideoArray, find_davis_annotations, lazy_mask_array, open_source

META_KEY = "napari_hotspot"
EXTRA_KEY = WIDGET_EXTRA_KEY
# In a video layer's META_KEY metadata: where a closed dock left that video's annotations (controller._hand_over)
RESUME_KEY = "resume"

ROLE_VIDEO = "video"
ROLE_MASKS = "masks"
ROLE_HOTSPOTS = "hotspots"
ROLE_TRACKS = "hotspot tracks"
ROLE_CLICKS = "clicks"
ROLE_BOXES = "boxes"
ROLE_GAZE = "gaze map"
OUTPUT_ROLES = (ROLE_MASKS, ROLE_HOTSPOTS, ROLE_TRACKS, ROLE_CLICKS, ROLE_BOXES, ROLE_GAZE)

POSITIVE_COLOR = (0.1, 0.95, 0.2, 1.0)
NEGATIVE_COLOR = (1.0, 0.15, 0.15, 1.0)
#: While a propagation run streams in: the masks and hotspot layers are refreshed at most this often
#: (seconds), and only when the frame on screen got a new result; the QA plot at most every
#: POINTS_REFRESH_SECONDS; the hotspot tracks only when the run ends.
REFRESH_SECONDS = 0.15
POINTS_REFRESH_SECONDS = 0.6
#: After an edit (a click, a box, a painted mask) the hotspot tracks layer is rebuilt this much later
#: (milliseconds), once the edit shows: rebuilding it took 0.1-0.4 s of a click on the 2-CPU machine.
TRACKS_DELAY_MS = 150
#: ... and the hotspots layer this much later: rebuilding it (the whole table, napari's Points setters)
#: took about 80 ms of a click's 200-280 ms on a slow 2-CPU machine; the mask shows first.
POINTS_DELAY_MS = 30
DIRECTIONS = ("forward", "backward", "both")

# ---------------------------------------------------------------------------- pure helpers
@dataclass(frozen=True)
class PromptGroup:
    """The prompts of one object on one frame: clicks ``(x, y, label)`` and at most one box."""

    clicks: tuple[tuple[float, float, int], ...] = ()
    box: tuple[float, float, float, float] | None = None

    @property
    def empty(self) -> bool:
        return not self.clicks and self.box is None

    def to_json(self) -> dict:
        return {"clicks": [list(c) for c in self.clicks], "box": None if self.box is None else list(self.box)}

    @classmethod
    def from_json(cls, record: dict) -> PromptGroup:
        clicks = tuple((float(x), float(y), int(label)) for x, y, label in record.get("clicks", []))
        box = record.get("box")
        return cls(clicks, None if box is None else tuple(float(v) for v in box))


def prompt_records(extra: dict, num_frames: int) -> tuple[dict[tuple[int, int], tuple[PromptGroup, dict]], list[str]]:
    """A project's saved prompts: ``{(frame, object_id): (group, record)}`` and a line per record that
    could not be read (malformed, or a frame outside the video), which is skipped: the rest still loads."""
    found, problems = {}, []
    records = extra.get("prompts", [])
    for i, record in enumerate(records if isinstance(records, list) else []):
        try:
            key = (int(record["frame"]), int(record["object_id"]))
            if not 0 <= key[0] < num_frames:
                raise ValueError(f"frame {key[0]} is outside the video's {num_frames} frames")
            found[key] = (PromptGroup.from_json(record), record)
        except (KeyError, TypeError, ValueError) as err:
            problems.append(f"prompt record {i} of the project is unreadable and was skipped ({err!r})")
    if not isinstance(records, list):
        problems.append("the project's prompt records are not a list; none were loaded")
    return found, problems


def lazy_label_volume(store: AnnotationStore) -> LazyLabels:
    """The store's (T, H, W) labels as a lazy, writable array (uint8, uint16 above 255 objects):
    frames are made from the store when read, a few dense ones cached, written ones kept compressed."""
    return LazyLabels(store)


def hotspot_table(store: AnnotationStore) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Hotspots as napari Points data ``(N, 3)`` rows ``(t, y, x)`` plus features
    ``object_id``, ``confidence`` (NaN when unknown), ``source`` (provenance value) and ``keyframe``."""
    rows, ids, conf, source, key = [], [], [], [], []
    for oid, frame, entry in store.iter_entries():
        if entry.hotspot is None or not entry.hotspot.visible:
            continue
        rows.append((frame, entry.hotspot.y, entry.hotspot.x))
        ids.append(oid)
        conf.append(np.nan if entry.confidence is None else entry.confidence)
        source.append(entry.provenance.value)
        key.append(entry.is_keyframe)
    data = np.asarray(rows, dtype=float).reshape(-1, 3)
    features = {
        "object_id": np.asarray(ids, dtype=int),
        "confidence": np.asarray(conf, dtype=float),
        "source": np.asarray(source, dtype=object),
        "keyframe": np.asarray(key, dtype=bool),
    }
    return data, features


def track_table(store: AnnotationStore) -> np.ndarray:
    """Hotspot trajectories as napari Tracks data ``(N, 4)`` rows ``(object_id, t, y, x)``."""
    data, features = hotspot_table(store)
    if not len(data):
        return np.zeros((0, 4))
    table = np.column_stack([features["object_id"].astype(float), data])
    order = np.lexsort((table[:, 1], table[:, 0]))
    return table[order]


def prompt_layer_data(groups: dict[tuple[int, int], "PromptGroup"]):
    """Clicks and boxes of prompt groups as napari layer data: click rows (t, y, x) with their labels
    and object ids, box rectangles (4 corners, t-indexed) with their object ids."""
    rows, labels, ids, rects, box_ids = [], [], [], [], []
    for (t, oid), group in sorted(groups.items()):
        for x, y, label in group.clicks:
            rows.append((t, y, x))
            labels.append(label)
            ids.append(oid)
        if group.box is not None:
            x0, y0, x1, y1 = group.box
            rects.append(np.array([[t, y0, x0], [t, y0, x1], [t, y1, x1], [t, y1, x0]], float))
            box_ids.append(oid)
    return rows, labels, ids, rects, box_ids


def hotspot_size(store: AnnotationStore) -> float:
    """Display size of hotspot points: visible on small and large frames alike."""
    return max(6.0, min(store.height, store.width) / 24)


#: The Tracks property that colours each hotspot track with its object's colour.
TRACK_COLOR_KEY = "object_color"


def track_colors(table: np.ndarray, colors: dict[int, tuple]) -> tuple[dict[str, np.ndarray], Any]:
    """Properties and a step colormap that give each track (= object id) its object's RGBA colour.

    napari maps a property with a custom colormap without rescaling, so each object gets a value in
    [0, 1] (its rank) and the colormap has one bin per object centred on it.
    """
    from napari.utils.colormaps import Colormap

    ids = sorted(set(table[:, 0].astype(int).tolist()) | set(colors))
    n = len(ids)
    value = {oid: (i + 0.5) / n for i, oid in enumerate(ids)}
    controls = np.linspace(0.0, 1.0, n + 1)
    palette = [colors.get(oid, (1.0, 1.0, 0.0, 1.0)) for oid in ids]
    cmap = Colormap(colors=palette, controls=controls, interpolation="zero", name="hotspot objects")
    properties = {TRACK_COLOR_KEY: np.array([value[int(i)] for i in table[:, 0]])}
    return properties, cmap


def frame_source_for(layer) -> Any:
    """What the session reads frames from: the reader's FrameSource, else the layer's array through the
    one frame adapter (``video.frames.ArrayFrames``)."""
    from napari_hotspot.video.frames import ArrayFrames

    data = layer.data
    if getattr(layer, "multiscale", False):
        raise VideoError(f"layer {layer.name!r} is multiscale; open the video itself with napari-hotspot")
    if isinstance(data, LazyVideoArray):
        return data.source
    return ArrayFrames(data, bool(layer.rgb), layer.name)


def layer_meta(layer) -> dict:
    md = getattr(layer, "metadata", None) or {}
    value = md.get(META_KEY)
    return value if isinstance(value, dict) else {}


def rgba(color: Sequence[int], alpha: float = 1.0) -> tuple[float, float, float, float]:
    return (color[0] / 255.0, color[1] / 255.0, color[2] / 255.0, alpha)


# ---------------------------------------------------------------------------- a video's layers
LayerData = tuple  # (data, kwargs, layer_type)


def single_path(path) -> Path | None:
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None  # several videos/folders at once: napari calls us once per path instead
        path = path[0]
    if not isinstance(path, (str, os.PathLike)):
        return None
    return Path(path)


def video_layer_data(path) -> list[LayerData]:
    """Layer data for ``path``: the video as a lazy RGB Image layer, plus DAVIS ground truth if found.

    Raises napari_hotspot.errors.VideoError (napari shows its message) when the video cannot be read.
    """
    single = single_path(path)
    if single is None:
        raise ValueError(f"napari-hotspot reads one video or frame folder at a time, got {path!r}")
    source = open_source(single)
    name = single.stem if single.is_file() else single.name
    metadata = {
        "napari_hotspot": {
            "source": str(single),
            "fps": source.fps,
            "frame_names": list(source.frame_names),
            "num_frames": source.num_frames,
        }
    }
    layers: list[LayerData] = [(LazyVideoArray(source), {"name": name, "rgb": True, "metadata": metadata}, "image")]
    if single.is_dir():
        annotations = find_davis_annotations(single)
        if annotations is not None:
            masks = lazy_mask_array(annotations, source.frame_names, source.height, source.width)
            labels_meta = {"napari_hotspot": {"source": str(annotations), "ground_truth": True}}
            layers.append((masks, {"name": f"{name} ground truth", "metadata": labels_meta, "opacity": 0.5,
                                   "colormap": dict(GROUND_TRUTH_COLORS)}, "labels"))
    return layers


#: Ground truth in one colour of its own (cyan; the DAVIS palette of the masks has none), so the
#: masks being made and the truth they are measured against can be told apart.
GROUND_TRUTH_COLOR = (0.0, 0.9, 1.0, 1.0)
GROUND_TRUTH_COLORS = {None: GROUND_TRUTH_COLOR, 0: (0.0, 0.0, 0.0, 0.0)}
