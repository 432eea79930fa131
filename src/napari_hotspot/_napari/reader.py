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
            layers.append((masks, {"name": f"{name} ground truth", "metadata": labels_meta, "opacity": 0.5}, "labels"))
    return layers
