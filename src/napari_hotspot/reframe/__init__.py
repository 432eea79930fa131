"""Reframing: crop-path optimisation (L1 camera paths over mask and hotspot tracks), zoom, shot cuts,
quality metrics, rendering, and the ``napari-hotspot reframe`` command.

Modules: ``tracks`` (per-object hotspot + mask extent), ``l1`` (the linear program), ``path`` (crop
windows per shot, camera modes, keyframes, zoom), ``shots`` (cut detection), ``metrics`` (report and
naive baseline), ``render`` (cropping, encoding, audio), ``inputs`` (projects, track folders, tracker
runs), ``cli``. The maths modules are pure; I/O lives in ``render``, ``inputs`` and ``cli``.
"""

from napari_hotspot.reframe.metrics import path_metrics, reframe_report
from napari_hotspot.reframe.path import (
    MODES,
    CropPath,
    Keyframe,
    ReframeConfig,
    ShotPlan,
    base_window_height,
    parse_aspect,
    plan_crop_path,
)
from napari_hotspot.reframe.shots import detect_cuts, detect_cuts_in_frames, shot_ranges
from napari_hotspot.reframe.tracks import ObjectTrack, track_from_masks, tracks_from_labels, tracks_from_store

__all__ = [
    "MODES",
    "CropPath",
    "Keyframe",
    "ObjectTrack",
    "ReframeConfig",
    "ShotPlan",
    "base_window_height",
    "detect_cuts",
    "detect_cuts_in_frames",
    "parse_aspect",
    "path_metrics",
    "plan_crop_path",
    "reframe_report",
    "shot_ranges",
    "track_from_masks",
    "tracks_from_labels",
    "tracks_from_store",
]
