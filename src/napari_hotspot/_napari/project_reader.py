"""Opening a napari-hotspot project folder in napari: the video plus masks, hotspots, tracks, clicks and boxes.

Every layer carries ``metadata["napari_hotspot"]`` with its ``role``, the ``video`` layer name and
the ``project`` path, so the hotspot widget adopts the layers and reloads the store from the
project instead of starting empty. Qt-free: returns napari layer-data tuples.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from napari_hotspot._napari.layer_data import (
    EXTRA_KEY,
    META_KEY,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    ROLE_BOXES,
    ROLE_CLICKS,
    ROLE_HOTSPOTS,
    ROLE_MASKS,
    ROLE_TRACKS,
    ROLE_VIDEO,
    TRACK_COLOR_KEY,
    hotspot_size,
    hotspot_table,
    lazy_label_volume,
    prompt_layer_data,
    prompt_records,
    track_colors,
    track_table,
    video_layer_data,
)
from napari_hotspot.annotations.project import load_project_quietly
from napari_hotspot.errors import ProjectIOError

LayerData = tuple


def _video_layer(path: Path, meta: dict, extra: dict, shape: tuple[int, int, int]) -> list[LayerData]:
    """The video Image layer (and DAVIS ground truth when the video is a DAVIS frame folder)."""
    video = extra.get("video") or {}
    name = video.get("name")
    video_path = meta.get("video_path")
    if video_path and Path(video_path).exists():
        layers = video_layer_data(video_path)
        data, kwargs, kind = layers[0]
        if tuple(data.shape[:3]) != shape:
            raise ProjectIOError(
                f"project {path}: the video {video_path} has {tuple(data.shape[:3])} (frames, height, width) "
                f"but the project was made for {shape}")
        kwargs = dict(kwargs)
        if name:
            kwargs["name"] = name
            if len(layers) > 1:  # keep the reader's "<seq> ground truth" naming in step with the video name
                gt_data, gt_kwargs, gt_kind = layers[1]
                layers[1] = (gt_data, {**gt_kwargs, "name": f"{name} ground truth"}, gt_kind)
        kwargs["metadata"] = {META_KEY: {**kwargs["metadata"][META_KEY], "role": ROLE_VIDEO, "project": str(path)}}
        return [(data, kwargs, kind), *layers[1:]]
    if video.get("kind") == "sample":
        from napari_hotspot.sample_data import make_sample_video

        T, H, W = shape
        sample = make_sample_video(num_frames=T, height=H, width=W)
        md = {"source": "sample", "fps": sample.fps, "frame_names": [f"{i:05d}" for i in range(T)],
              "num_frames": T, "role": ROLE_VIDEO, "project": str(path)}
        layers = [(sample.frames, {"name": name or "sample video", "rgb": True, "metadata": {META_KEY: md}}, "image"),
                  (sample.masks, {"name": f"{name or 'sample video'} ground truth", "opacity": 0.5,
                                  "visible": False}, "labels")]
        return layers
    where = video_path or "(no video recorded)"
    raise ProjectIOError(
        f"project {path}: its video {where} cannot be found; put the video back at that path (or next to the "
        f"project with the same relative location) and open the project again")


def read_project(path) -> list[LayerData]:
    """Layer data for a project folder: video, masks, hotspots, hotspot tracks, clicks and boxes."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    path = Path(path)
    store, meta = load_project_quietly(path)
    extra = (meta.get("extra") or {}).get(EXTRA_KEY) or {}
    layers = _video_layer(path, meta, extra, store.shape)
    video_name = layers[0][1]["name"]

    def md(role: str) -> dict:
        return {META_KEY: {"role": role, "video": video_name, "project": str(path)}}

    from napari.utils.colormaps import DirectLabelColormap

    colors = {o.id: tuple(c / 255 for c in o.color) + (1.0,) for o in store.objects}
    cmap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), **colors})
    layers.append((lazy_label_volume(store), {"name": f"{video_name} masks", "opacity": 0.5, "colormap": cmap,
                                         "metadata": md(ROLE_MASKS)}, "labels"))
    saved, problems = prompt_records(extra, store.num_frames)
    for problem in problems:
        warnings.warn(problem, stacklevel=2)
    groups = {key: group for key, (group, _record) in saved.items()}
    rows, labels, ids, rects, box_ids = prompt_layer_data(groups)
    click_kwargs = {"name": f"{video_name} clicks", "ndim": 3, "size": max(4, store.width / 60),
                    "features": {"label": np.asarray(labels, int), "object_id": np.asarray(ids, int)},
                    "border_width": 0.25, "out_of_slice_display": False, "metadata": md(ROLE_CLICKS)}
    if rows:
        click_kwargs["face_color"] = [POSITIVE_COLOR if lb else NEGATIVE_COLOR for lb in labels]
        click_kwargs["border_color"] = [colors.get(i, (1, 1, 1, 1)) for i in ids]
    layers.append((np.asarray(rows, float).reshape(-1, 3), click_kwargs, "points"))
    box_kwargs = {"name": f"{video_name} boxes", "ndim": 3, "shape_type": "rectangle",
                  "features": {"object_id": np.asarray(box_ids, int)}, "face_color": "transparent",
                  "edge_width": max(1, store.width / 300), "metadata": md(ROLE_BOXES)}
    if rects:
        box_kwargs["edge_color"] = [colors.get(i, (1, 1, 1, 1)) for i in box_ids]
    layers.append((rects, box_kwargs, "shapes"))
    data, features = hotspot_table(store)
    hot_kwargs = {"name": f"{video_name} hotspots", "ndim": 3, "size": hotspot_size(store),
                  "features": features, "border_color": "white", "border_width": 0.2,
                  "out_of_slice_display": False, "metadata": md(ROLE_HOTSPOTS)}
    if len(data):
        hot_kwargs["face_color"] = [colors.get(int(i), (1, 1, 0, 1)) for i in features["object_id"]]
        hot_kwargs["symbol"] = np.where(features["keyframe"], "star", "disc").tolist()
    layers.append((data, hot_kwargs, "points"))
    table = track_table(store)
    if len(table):  # napari's Tracks layer cannot be empty
        properties, track_cmap = track_colors(table, colors)
        layers.append((table, {"name": f"{video_name} hotspot tracks", "properties": properties,
                               "colormaps_dict": {TRACK_COLOR_KEY: track_cmap}, "color_by": TRACK_COLOR_KEY,
                               "tail_length": store.num_frames, "head_length": 0, "tail_width": 2,
                               "metadata": md(ROLE_TRACKS)}, "tracks"))
    return layers
