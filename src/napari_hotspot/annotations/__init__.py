"""The Qt-free annotation data model, project storage, imports and exports.

Formats live in their own modules (``io_davis``, ``io_hotspots``, ``io_coco``) and are imported
explicitly; the model and project functions are re-exported here.
"""

from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.annotations.model import (
    KEEP,
    AnnotationStore,
    AnnotatorHotspot,
    FrameAnnotation,
    Hotspot,
    ObjectInfo,
    Provenance,
    StoreEvents,
)
from napari_hotspot.annotations.project import (
    Autosaver,
    is_project_dir,
    load_project,
    save_project,
)

__all__ = [
    "KEEP",
    "AnnotationStore",
    "AnnotatorHotspot",
    "Autosaver",
    "CompressedMask",
    "FrameAnnotation",
    "Hotspot",
    "ObjectInfo",
    "Provenance",
    "StoreEvents",
    "is_project_dir",
    "load_project",
    "save_project",
]
