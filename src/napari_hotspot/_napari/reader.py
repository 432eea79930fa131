"""npe2 reader: opens a video file or a frame folder as a lazy napari Image layer (+ DAVIS ground truth),
and a napari-hotspot project folder with its layers (see ``project_reader``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from napari_hotspot.annotations.project import is_project_dir
from napari_hotspot.video import (
    LazyVideoArray,
    find_davis_annotations,
    is_video_path,
    lazy_mask_array,
    list_frame_files,
    open_source,
)

LayerData = tuple  # (data, kwargs, layer_type)


def _single_path(path) -> Path | None:
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None  # several videos/folders at once: napari calls us once per path instead
        path = path[0]
    if not isinstance(path, (str, os.PathLike)):
        return None
    return Path(path)


def get_reader(path) -> Callable[[object], list[LayerData]] | None:
    """Return ``read_video`` for a video file or a folder holding jpg/png frames, ``read_project`` for a
    napari-hotspot project folder, else None."""
    single = _single_path(path)
    if single is None:
        return None
    if single.is_dir() and is_project_dir(single):
        return read_project
    if single.is_dir():
        try:
            has_frames = bool(list_frame_files(single))
        except OSError:
            return None
        return read_video if has_frames else None
    return read_video if is_video_path(single) else None


def read_project(path) -> list[LayerData]:
    """Layer data for a project folder: its video plus masks, hotspots, tracks, clicks and boxes."""
    from napari_hotspot._napari.project_reader import read_project as _read_project

    return _read_project(path)


def read_video(path) -> list[LayerData]:
    """Layer data for ``path``: the video as a lazy RGB Image layer, plus DAVIS ground truth if found.

    Raises napari_hotspot.errors.VideoError (napari shows its message) when the video cannot be read.
    """
    single = _single_path(path)
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


def is_ground_truth(layer) -> bool:
    """A Labels layer of DAVIS ground truth (opened by ``read_video``, or named '... ground truth')."""
    meta = (getattr(layer, "metadata", None) or {}).get("napari_hotspot")
    flagged = isinstance(meta, dict) and bool(meta.get("ground_truth"))
    return type(layer).__name__ == "Labels" and (flagged or layer.name.endswith("ground truth"))


def style_ground_truth(layer) -> None:
    """Draw ground truth as a contour in its own colour over the masks (napari takes no ``contour``
    from a reader, so the dock sets it once the layer is in the viewer)."""
    from napari.utils.colormaps import DirectLabelColormap

    if getattr(layer, "_hotspot_styled", False):
        return  # once: the user may restyle it afterwards
    layer._hotspot_styled = True
    layer.colormap = DirectLabelColormap(color_dict=dict(GROUND_TRUTH_COLORS))
    layer.contour = max(1, round(min(layer.data.shape[-2:]) / 240))
    layer.opacity = 1.0
