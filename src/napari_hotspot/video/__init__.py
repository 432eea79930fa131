"""Video sources: lazy frame access for files and frame folders."""

from napari_hotspot.video.cache import DEFAULT_CACHE_BYTES, FrameCache
from napari_hotspot.video.lazy_array import LazyFrameArray, LazyVideoArray
from napari_hotspot.video.masks import find_davis_annotations, lazy_mask_array, read_mask_png
from napari_hotspot.video.sources import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    FrameFolderSource,
    FrameIndexError,
    FrameSource,
    VideoFileSource,
    is_video_path,
    list_frame_files,
    open_source,
    require_complete,
)

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FrameCache",
    "FrameFolderSource",
    "FrameIndexError",
    "FrameSource",
    "LazyFrameArray",
    "LazyVideoArray",
    "VideoFileSource",
    "find_davis_annotations",
    "is_video_path",
    "lazy_mask_array",
    "list_frame_files",
    "open_source",
    "require_complete",
    "read_mask_png",
]
