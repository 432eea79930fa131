"""npe2 reader: opens a video file or a frame folder as a lazy napari Image layer (+ DAVIS ground truth),
and a napari-hotspot project folder with its layers (see ``project_reader``)."""

from __future__ import annotations

from collections.abc import Callable

# The video and project readers build on layer_data, which imports neither of them: no import cycle.
from napari_hotspot._napari.layer_data import (  # noqa: F401 (the ground-truth colours are read from here)
    GROUND_TRUTH_COLOR,
    GROUND_TRUTH_COLORS,
    LayerData,
    single_path,
    video_layer_data,
)
from napari_hotspot._napari.open_docks import controller_for
from napari_hotspot._napari.project_reader import read_project as _read_project
from napari_hotspot.annotations.project import is_project_dir
from napari_hotspot.video import is_video_path, list_frame_files


def get_reader(path) -> Callable[[object], list[LayerData]] | None:
    """Return ``read_video`` for a video file or a folder holding jpg/png frames, ``read_project`` for a
    napari-hotspot project folder, else None."""
    single = single_path(path)
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
    """Layer data for a project folder: its video plus masks, hotspots, tracks, clicks and boxes; nothing
    (napari's "handled" answer) when the hotspot dock already shows the project's video and opens it."""
    if _opened_in_dock(path):
        return [(None,)]
    return _read_project(path)


def _opened_in_dock(path) -> bool:
    """File > Open of a project made for the video the hotspot dock of the current viewer shows: the
    dock opens it on that video, as its own Open... does (the current annotations autosaved, then
    replaced by the project's), instead of napari adding a second copy of the video with its own layers
    that the dock would then follow."""
    single = single_path(path)
    try:
        import napari

        viewer = napari.current_viewer()
    except ImportError:  # the reader used without napari (a script reading the folder): read it
        return False
    if viewer is None or single is None:
        return False
    controller = controller_for(viewer)
    loaded = None if controller is None else controller.shown_video_project(single)
    if loaded is None:
        return False
    controller.open_project(single, loaded)  # its errors (a run in progress, say) go to the dock's status line
    return True


def read_video(path) -> list[LayerData]:
    """Layer data for ``path``: the video as a lazy RGB Image layer, plus DAVIS ground truth if found.

    Raises napari_hotspot.errors.VideoError (napari shows its message) when the video cannot be read.
    """
    return video_layer_data(path)


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
