"""The coordinator between napari layers and the Qt-free core (HotspotSession + AnnotationStore).

One ``HotspotController`` per viewer owns the layers it makes for the chosen video layer (masks,
hotspots, hotspot tracks, clicks, boxes, gaze map), turns layer edits into session prompts and
store changes, runs propagation in thread workers and streams the results back, and refreshes
the layers from the store after every change (so undo is the store's undo). It holds no
QWidgets: the dock widget (``widget.py``) is a thin shell over it, and tests drive it directly.

The store is the truth; the session's anchors are derived from the store's keyframes
(``_sync_anchors``), so undoing a correction also removes its anchor before the next run.

Per-video adaptation (``adapt_now``, and automatically before a run for objects with keyframes
their adaptation has not learnt yet) fine-tunes each object's own copy of the tracker in a thread
worker; prompts and corrections stay possible meanwhile. The adapted weights are saved with the
project (``adaptation/object_XXXXX.pt``, listed in the project's ``extra``) and restored on open.

Before a run (or an adaptation) the masks that clicks and boxes made are completed once
by a round trip over ``complete_frames`` frames (``HotspotSession.complete_prompt``), in a thread
worker; each changed keyframe is written back to the store as one undo step.
"""

from __future__ import annotations

import io
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal

from napari_hotspot._napari.lazy_labels import LazyLabels
from napari_hotspot.annotations import AnnotationStore, Autosaver, Provenance, load_project, save_project
# The project's adaptation files are read and checked by the Qt-free loader; the names live there too.
from napari_hotspot.annotations.project import (
    ADAPTATION_DIR,
    WIDGET_EXTRA_KEY,
    adaptation_file_name,
    adaptation_warning,
)
from napari_hotspot.annotations.io_fixations import read_frame_fixations
from napari_hotspot.annotations.model import FrameAnnotation
from napari_hotspot.errors import AnnotationError, HotspotError, ProjectIOError, PromptError, VideoError
from napari_hotspot.options import DEFAULT_ADAPT_SECONDS, TrackingOptions
from napari_hotspot._napari.layer_data import (  # noqa: F401 (EXTRA_KEY, colours: the dock's names)
    DIRECTIONS,
    EXTRA_KEY,
    META_KEY,
    NEGATIVE_COLOR,
    OUTPUT_ROLES,
    POSITIVE_COLOR,
    REFRESH_SECONDS,
    ROLE_BOXES,
    ROLE_CLICKS,
    ROLE_GAZE,
    ROLE_HOTSPOTS,
    ROLE_MASKS,
    ROLE_TRACKS,
    ROLE_VIDEO,
    TRACK_COLOR_KEY,
    PromptGroup,
    frame_source_for,
    hotspot_size,
    hotspot_table,
    lazy_label_volume,
    layer_meta,
    prompt_layer_data,
    rgba,
    track_colors,
    track_table,
)

_models_lock = threading.Lock()
_shared_models = None


def shared_models():
    """The model bundle, loaded once per process (about a second) and shared by every controller."""
    global _shared_models
    with _models_lock:
        if _shared_models is None:
            from napari_hotspot.models.weights import ModelBundle

            _shared_models = ModelBundle.load()
        return _shared_models


# ---------------------------------------------------------------------------- the controller
class HotspotController:
    """Owns one video's session, annotation store and output layers in a napari viewer."""

    objects_changed = Signal()  # object list (ids, names, colours) changed
    selection_changed = Signal(int)  # selected object id (0 = none)
    annotations_changed = Signal()  # masks / hotspots / confidences changed (QA plot redraws)
    run_state_changed = Signal(bool)  # a propagation run started (True) or ended (False)
    run_progress = Signal(int)  # frames done in the current run
    video_changed = Signal()  # a (new) video layer is in use, or none
    click_label_changed = Signal(int)  # 1 = next click positive, 0 = negative
    status = Signal(str)  # one-line status for the dock
    ready_changed = Signal(bool)  # models loaded and session made
    project_changed = Signal()  # saved to / opened from a project folder
    adapt_state_changed = Signal(bool)  # an adaptation job started (True) or ended (False)
    adapt_progress = Signal(object)  # workers.AdaptProgress of the running adaptation job
    adaptation_changed = Signal(int)  # this object's adapted tracker changed (trained, reset or loaded)

    def __init__(
        self,
        viewer,
        *,
        models=None,
        long_side: int | None = None,
        autosave_dir: str | os.PathLike | None = None,
        autosave_interval_s: float = 180.0,
        adapt_seconds: float = DEFAULT_ADAPT_SECONDS,
    ) -> None:
        self.viewer = viewer
        self.models = models
        self.long_side = long_side
        self.autosave_dir = Path(autosave_dir) if autosave_dir is not None else None
        self.autosave_interval_s = autosave_interval_s
        self.lock = threading.Lock()
        self.video_layer = None
        self.session = None
        self.store: AnnotationStore | None = None
        self.frame_names: list[str] | None = None
        self.project_path: Path | None = None
        self.autosaver: Autosaver | None = None
        self.selected_id = 0
        self.click_label = 1
        # tracking settings the widget edits
        self.track_direction = "forward"
        self.track_scope = "selected"  # or "all"
        self.track_range: tuple[int, int] | None = None
        self.low_confidence_threshold = 0.5
        self.show_gaze_map = False
        #: What the session prepares before tracking (completion, adaptation) and its working size; the
        #: dock's settings edit it (``adapt_seconds``, ``adapt_max_steps``, ``complete_frames``).
        self.options = TrackingOptions(adapt_seconds=float(adapt_seconds)).with_(long_side=long_side)
        #: Called with no arguments to ask the user for a project folder (the widget sets a dialog).
        self.ask_project_path: Callable[[], str | None] | None = None
        self.last_error: Exception | None = None
        self._layers: dict[str, Any] = {}
        self._updating = 0
        self._muted = False
        self._dragging = False
        self._applied: dict[tuple[int, int], PromptGroup] = {}
        # Corrective clicks: per (frame, object), the mask the clicks refine (None: the clicks picked the
        # object on an empty frame), and each prompt's (store entry it wrote, group, base) so the clicks
        # on the layer follow undo and redo.
        self._click_bases: dict[tuple[int, int], np.ndarray | None] = {}
        self._prompt_history: dict[tuple[int, int], list[tuple[FrameAnnotation, PromptGroup, Any]]] = {}
        self._run_summary: str | None = None
        self._anchor_entries: dict[tuple[int, int], FrameAnnotation] = {}
        self._worker = None
        self._run_batch = None
        self._run_frames = 0
        self._run_cancelled = False
        self._run_error: Exception | None = None
        self._last_refresh = 0.0
        self._encode_worker = None
        self._pending_encode: int | None = None
        self._gaze_worker = None
        self._complete_worker = None
        self._complete_then: Callable[[], Any] | None = None  # the run (or adaptation) it comes before
        self._complete_batch = None
        self._complete_session = None
        self._complete_changed = False  # a keyframe's mask changed: refresh the layers at the end
        self._complete_error: Exception | None = None
        self._complete_cancelled = False
        self._model_worker = None
        self._j_cache: dict[tuple[int, int], tuple[FrameAnnotation, float]] = {}
        self._objects_signature: tuple = ()
        self._drag_guards: dict[int, Callable] = {}
        self._adapt_worker = None
        self._adapt_session = None
        self._adapt_stop = threading.Event()
        self._adapt_then: Callable[[], Any] | None = None  # the run that starts when adaptation ends
        self._adapt_pbar = None
        self._adapt_ticks = 0
        self._adapt_runs: dict[int, Any] = {}  # object id -> last AdaptProgress of the running job
        self._adapt_ids: list[int] = []
        self._adapt_before_run = False
        self._adapt_cancelled = False
        self._adapt_error: Exception | None = None
        #: Per object: the keyframes its adaptation has learnt with a full budget (a cancelled run
        #: leaves them pending, so the next run adapts again).
        self._adapt_learnt: dict[int, set[int]] = {}
        # (project, records, checked states, problems) from load_project, to restore once the session exists
        self._project_adaptation: tuple[Path, dict, dict, list] | None = None
        viewer.dims.events.current_step.connect(self._on_frame_changed)
        viewer.layers.events.removed.connect(self._on_layer_removed)

    # ------------------------------------------------------------------ settings
    def set_options(self, **changes) -> None:
        """Change tracking options (``TrackingOptions`` fields); the session follows at once."""
        self.options = replace(self.options, **changes)
        if self.session is not None:
            self.session.options = self.options

    @property
    def adapt_seconds(self) -> float:
        """Per-video adaptation budget per object, in seconds of training (0 = off): "Adapt now" trains
        for this long, and a run first adapts the objects with keyframes not learnt yet."""
        return self.options.adapt_seconds

    @adapt_seconds.setter
    def adapt_seconds(self, value: float) -> None:
        self.set_options(adapt_seconds=float(value))

    @property
    def adapt_max_steps(self) -> int | None:
        """Cap on the optimiser steps of one adaptation per object (None: the time budget alone)."""
        return self.options.adapt_steps

    @adapt_max_steps.setter
    def adapt_max_steps(self, value: int | None) -> None:
        self.set_options(adapt_steps=value)

    @property
    def complete_frames(self) -> int:
        """Frames a click's or box's mask travels away and back to be completed before the first run or
        adaptation that uses it (0 = off; HotspotSession.complete_prompt)."""
        return self.options.complete_frames

    @complete_frames.setter
    def complete_frames(self, value: int) -> None:
        self.set_options(complete_frames=int(value))

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """True when a video is chosen and its session is made (models loaded)."""
        return self.session is not None

    @property
    def running(self) -> bool:
        """A tracking run is in progress (its propagation, or the completion or adaptation it starts with)."""
        return (self._worker is not None or self._adapt_then is not None or self._complete_then is not None
                or self._complete_worker is not None)

    @property
    def busy(self) -> bool:
        """A propagation, gaze-prompt or completion job is running (edits are refused meanwhile)."""
        return self._worker is not None or self._gaze_worker is not None or self._complete_worker is not None

    @property
    def adapting(self) -> bool:
        """An adaptation job is running (prompts and corrections still work; runs, undo, deleting
        objects and switching videos wait for it)."""
        return self._adapt_worker is not None

    @property
    def num_frames(self) -> int:
        return self.store.num_frames if self.store is not None else 0

    def layer(self, role: str):
        """The output layer of ``role`` (None when it does not exist or was deleted)."""
        layer = self._layers.get(role)
        if layer is not None and layer in self.viewer.layers:
            return layer
        return None

    @contextmanager
    def _updating_layers(self):
        """Ignore the layer events our own writes cause."""
        self._updating += 1
        try:
            yield
        finally:
            self._updating -= 1

    def _report(self, err: Exception, warning: bool = False) -> None:
        from napari.utils.notifications import show_error, show_warning

        self.last_error = err
        (show_warning if warning else show_error)(str(err))
        self.status.emit(str(err))

    def _info(self, text: str) -> None:
        from napari.utils.notifications import show_info

        show_info(text)
        self.status.emit(text)

    # ------------------------------------------------------------------ video
    def set_video(self, layer) -> None:
        """Use ``layer`` (an Image layer of the viewer) as the video; None detaches.

        A layer opened from a project folder brings its store and adopts the project's layers;
        otherwise existing output layers made for this video (same name) are adopted, or new ones made.
        """
        if layer is self.video_layer:
            return
        if self.busy or self.adapting:
            raise AnnotationError("cannot switch the video while tracking or adapting; cancel the run first")
        self.flush_autosave()
        self._detach()
        if layer is None:
            self.video_changed.emit()
            return
        source = frame_source_for(layer)
        T = int(getattr(source, "num_frames", None) or source.shape[0])
        H, W = (int(source.height), int(source.width)) if hasattr(source, "height") else source.shape[1:3]
        meta = layer_meta(layer)
        project = meta.get("project")
        extra: dict = {}
        if project:
            with warnings.catch_warnings():  # its adaptation problems are reported once the session exists
                warnings.simplefilter("ignore")
                store, pmeta = load_project(project)
            if store.shape != (T, H, W):
                raise ProjectIOError(
                    f"project {project} is for a video of {store.shape} (frames, height, width) but layer "
                    f"{layer.name!r} is {(T, H, W)}"
                )
            self.project_path = Path(project)
            extra = (pmeta.get("extra") or {}).get(EXTRA_KEY) or {}
            records = extra.get("adaptation")
            if isinstance(records, dict) and records:
                self._project_adaptation = (Path(project), records, pmeta["adaptation"],
                                            pmeta["adaptation_problems"])
        else:
            store = AnnotationStore(T, H, W)
        self.video_layer = layer
        self.store = store
        self._source = source
        names = meta.get("frame_names")
        self.frame_names = list(names) if names and len(names) == T else None
        self._applied = {}
        for record in extra.get("prompts", []):
            key = (int(record["frame"]), int(record["object_id"]))
            self._applied[key] = PromptGroup.from_json(record)
        store.events.connect(self._on_store_changed)
        self._objects_signature = tuple((o.id, o.name, o.color) for o in store.objects)
        self._make_layers()
        self._make_autosaver()
        self.selected_id = store.object_ids[0] if store.object_ids else 0
        self._apply_selection()
        self.video_changed.emit()
        self.objects_changed.emit()
        self.annotations_changed.emit()
        self._make_session()

    def _detach(self) -> None:
        if self.store is not None:
            self.store.events.disconnect(self._on_store_changed)
        self._disconnect_layer_events()
        self.video_layer = None
        self.session = None
        self.store = None
        self.autosaver = None
        self.project_path = None
        self._layers = {}
        self._applied = {}
        self._click_bases = {}
        self._prompt_history = {}
        self._anchor_entries = {}
        self._j_cache = {}
        self._adapt_learnt = {}
        self._project_adaptation = None
        self.selected_id = 0

    def _make_session(self) -> None:
        if self.models is None and _shared_models is not None:
            self.models = _shared_models
        if self.models is not None:
            self._create_session()
            return
        self.status.emit("loading the models…")
        from napari.qt.threading import create_worker

        from napari_hotspot._napari.workers import reserve_pool_threads

        reserve_pool_threads()

        def done(models):
            self.models = models
            self._model_worker = None
            if self.video_layer is not None and self.session is None:
                self._create_session()

        def failed(err):
            self._model_worker = None
            self._report(err)

        self._model_worker = create_worker(shared_models, _connect={"returned": done, "errored": failed},
                                           _ignore_errors=True)

    def _create_session(self) -> None:
        from napari_hotspot.session import HotspotSession

        self.session = HotspotSession(self._source, self.models, options=self.options)
        self._anchor_entries = {}
        self._adapt_learnt = {}
        self.ready_changed.emit(True)
        self.status.emit(f"ready: {self.video_layer.name}, {self.num_frames} frames")
        self._restore_adaptation()
        self._request_encode(self.current_frame)

    def _on_layer_removed(self, event) -> None:
        if event.value is self.video_layer and self.video_layer is not None and not self.running:
            if self.adapting:  # it ends at its next chunk; what it learnt goes with the session
                self.cancel()
            self.flush_autosave()
            self._detach()
            self.video_changed.emit()
            self.objects_changed.emit()

    # ------------------------------------------------------------------ layers
    def _layer_meta(self, role: str) -> dict:
        return {META_KEY: {"role": role, "video": self.video_layer.name,
                           "project": None if self.project_path is None else str(self.project_path)}}

    def _find_layer(self, role: str):
        """An output layer made for this video earlier: same video name, or (newest first) opened from
        the same project as the video layer."""
        project = layer_meta(self.video_layer).get("project")
        for layer in self.viewer.layers:
            m = layer_meta(layer)
            if m.get("role") == role and m.get("video") == self.video_layer.name:
                return layer
        if project:
            for layer in reversed(self.viewer.layers):
                m = layer_meta(layer)
                if m.get("role") == role and m.get("project") == project:
                    return layer
        return None

    def _make_layers(self) -> None:
        """Adopt the output layers already made for this video (a reopened project) or create them."""
        store = self.store
        base = self.video_layer.name
        spatial = {"scale": tuple(self.video_layer.scale)[-3:], "translate": tuple(self.video_layer.translate)[-3:]}
        with self._updating_layers():
            masks = self._find_layer(ROLE_MASKS)
            if masks is None or tuple(masks.data.shape) != store.shape:
                masks = self.viewer.add_labels(lazy_label_volume(store), name=f"{base} masks", opacity=0.5,
                                               metadata=self._layer_meta(ROLE_MASKS), **spatial)
            else:
                masks.data = lazy_label_volume(store)
            self._layers[ROLE_MASKS] = masks
            clicks = self._find_layer(ROLE_CLICKS)
            if clicks is None:
                clicks = self.viewer.add_points(
                    np.zeros((0, 3)), ndim=3, name=f"{base} clicks", size=max(4, store.width / 60),
                    features={"label": np.zeros(0, int), "object_id": np.zeros(0, int)},
                    metadata=self._layer_meta(ROLE_CLICKS), border_width=0.25, out_of_slice_display=False,
                    **spatial)
            self._layers[ROLE_CLICKS] = clicks
            boxes = self._find_layer(ROLE_BOXES)
            if boxes is None:
                boxes = self.viewer.add_shapes(
                    None, ndim=3, name=f"{base} boxes", features={"object_id": np.zeros(0, int)},
                    face_color="transparent", edge_width=max(1, store.width / 300),
                    metadata=self._layer_meta(ROLE_BOXES), **spatial)
            self._layers[ROLE_BOXES] = boxes
            hotspots = self._find_layer(ROLE_HOTSPOTS)
            if hotspots is None:
                hotspots = self.viewer.add_points(
                    np.zeros((0, 3)), ndim=3, name=f"{base} hotspots", size=hotspot_size(store),
                    features={"object_id": np.zeros(0, int), "confidence": np.zeros(0),
                              "source": np.zeros(0, object), "keyframe": np.zeros(0, bool)},
                    border_color="white", border_width=0.2, out_of_slice_display=False,
                    metadata=self._layer_meta(ROLE_HOTSPOTS), **spatial)
            self._layers[ROLE_HOTSPOTS] = hotspots
            tracks = self._find_layer(ROLE_TRACKS)
            if tracks is not None:
                self._layers[ROLE_TRACKS] = tracks
            gaze = self._find_layer(ROLE_GAZE)
            if gaze is not None:
                self._layers[ROLE_GAZE] = gaze
        self._spatial = spatial
        self._rebuild_prompt_layers(self._applied)
        self._connect_layer_events()
        self._refresh_all()
        from napari_hotspot._napari.keybindings import bind_layer_keys

        bind_layer_keys([masks], self)
        self.viewer.layers.selection.active = clicks
        clicks.mode = "add"

    def _connect_layer_events(self) -> None:
        from napari.layers.base import ActionType

        self._action_type = ActionType
        masks, clicks = self._layers[ROLE_MASKS], self._layers[ROLE_CLICKS]
        boxes, hotspots = self._layers[ROLE_BOXES], self._layers[ROLE_HOTSPOTS]
        masks.events.paint.connect(self._on_paint)
        clicks.events.data.connect(self._on_prompt_data)
        boxes.events.data.connect(self._on_prompt_data)
        hotspots.events.data.connect(self._on_hotspot_data)
        for layer in (clicks, boxes, hotspots):
            self._install_drag_guard(layer)

    def _disconnect_layer_events(self) -> None:
        """Stop listening to the output layers of the video we leave (they stay in the viewer)."""
        handlers = {ROLE_MASKS: ("paint", self._on_paint), ROLE_CLICKS: ("data", self._on_prompt_data),
                    ROLE_BOXES: ("data", self._on_prompt_data), ROLE_HOTSPOTS: ("data", self._on_hotspot_data)}
        for role, (name, handler) in handlers.items():
            layer = self._layers.get(role)
            if layer is None:
                continue
            try:
                getattr(layer.events, name).disconnect(handler)
            except (TypeError, ValueError, RuntimeError):
                pass
            guard = self._drag_guards.pop(id(layer), None)
            if guard is not None and guard in layer.mouse_drag_callbacks:
                layer.mouse_drag_callbacks.remove(guard)

    def _install_drag_guard(self, layer) -> None:
        """Defer syncing point/box edits to the mouse release, so a click, a drag or a drawn box is one prompt
        or correction. The guard goes first in the layer's drag callbacks (napari appends its mode's
        callback after it), so it marks the drag before napari adds or moves anything."""
        if id(layer) in self._drag_guards:
            return

        def guard(_layer, event):
            self._dragging = True
            yield
            while event.type == "mouse_move":
                yield
            self._dragging = False
            self._after_drag(layer)

        self._drag_guards[id(layer)] = guard
        layer.mouse_drag_callbacks.insert(0, guard)

    def _after_drag(self, layer) -> None:
        if layer is self.layer(ROLE_HOTSPOTS):
            self._commit_hotspot_edits()
        else:
            self._sync_prompts()

    def _labels_colormap(self):
        from napari.utils.colormaps import DirectLabelColormap

        colors: dict = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
        for info in self.store.objects:
            colors[info.id] = rgba(info.color)
        return DirectLabelColormap(color_dict=colors)

    def _refresh_all(self) -> None:
        masks = self.layer(ROLE_MASKS)
        if masks is not None:
            needed = np.uint8 if max(self.store.object_ids, default=0) <= 255 else np.uint16
            with self._updating_layers():
                data = masks.data
                if data.dtype != needed or not self._labels_follow_store(data):
                    masks.data = lazy_label_volume(self.store)
                masks.colormap = self._labels_colormap()
                masks.refresh()
        self._refresh_points()

    def _refresh_frames(self, frames: Iterable[int]) -> None:
        masks = self.layer(ROLE_MASKS)
        if masks is None:
            return
        data = masks.data
        with self._updating_layers():
            if self._labels_follow_store(data):
                data.reload(frames)  # made from the store again when next read
            else:
                for t in frames:
                    data[t] = self.store.label_frame(t)

    def _labels_follow_store(self, data) -> bool:
        """The masks layer shows this store lazily (else it holds a copy to rewrite)."""
        return isinstance(data, LazyLabels) and data.store is self.store

    def _refresh_points(self) -> None:
        """Rebuild the hotspots and tracks layers from the store (cheap: one row per object and frame)."""
        hotspots = self.layer(ROLE_HOTSPOTS)
        data, features = hotspot_table(self.store)
        colors = {o.id: rgba(o.color) for o in self.store.objects}
        face = np.array([colors.get(int(i), (1, 1, 0, 1)) for i in features["object_id"]]).reshape(-1, 4)
        with self._updating_layers():
            if hotspots is not None:
                hotspots.data = data
                hotspots.features = features
                if len(data):
                    hotspots.face_color = face
                    hotspots.symbol = np.where(features["keyframe"], "star", "disc")
                hotspots.feature_defaults = {"object_id": self.selected_id, "confidence": np.nan,
                                             "source": Provenance.USER_CORRECTED.value, "keyframe": True}
                hotspots.current_face_color = colors.get(self.selected_id, (1, 1, 0, 1))
            self._refresh_tracks(colors)

    def _refresh_tracks(self, colors: dict) -> None:
        table = track_table(self.store)
        tracks = self.layer(ROLE_TRACKS)
        if not len(table):
            if tracks is not None:  # napari's Tracks layer cannot be empty
                self.viewer.layers.remove(tracks)
                self._layers.pop(ROLE_TRACKS, None)
            return
        properties, cmap = track_colors(table, colors)
        if tracks is None:
            selection = list(self.viewer.layers.selection)
            active = self.viewer.layers.selection.active
            tracks = self.viewer.add_tracks(
                table, name=f"{self.video_layer.name} hotspot tracks", properties=properties,
                colormaps_dict={TRACK_COLOR_KEY: cmap}, color_by=TRACK_COLOR_KEY, tail_length=self.num_frames,
                head_length=0, tail_width=2, metadata=self._layer_meta(ROLE_TRACKS), **self._spatial)
            self._layers[ROLE_TRACKS] = tracks
            self.viewer.layers.selection.update(selection)
            self.viewer.layers.selection.active = active  # adding a layer selects it: keep the user's
        else:
            tracks.color_by = "track_id"  # while data and properties are swapped (no fallback warning)
            tracks.data = table
            tracks.properties = properties
            tracks.colormaps_dict = {TRACK_COLOR_KEY: cmap}
            tracks.color_by = TRACK_COLOR_KEY

    def _rebuild_prompt_layers(self, groups: dict[tuple[int, int], PromptGroup]) -> None:
        clicks, boxes = self.layer(ROLE_CLICKS), self.layer(ROLE_BOXES)
        rows, labels, ids, rects, box_ids = prompt_layer_data(groups)
        with self._updating_layers():
            if clicks is not None:
                clicks.data = np.asarray(rows, float).reshape(-1, 3)
                clicks.features = {"label": np.asarray(labels, int), "object_id": np.asarray(ids, int)}
                self._color_clicks()
            if boxes is not None:
                boxes.data = []
                if rects:
                    boxes.add_rectangles(rects)
                boxes.features = {"object_id": np.asarray(box_ids, int)}
                self._color_boxes()

    def _color_clicks(self) -> None:
        clicks = self.layer(ROLE_CLICKS)
        if clicks is None:
            return
        colors = {o.id: rgba(o.color) for o in self.store.objects}
        labels = np.asarray(clicks.features["label"]) if len(clicks.data) else np.zeros(0, int)
        ids = np.asarray(clicks.features["object_id"]) if len(clicks.data) else np.zeros(0, int)
        with self._updating_layers():
            if any(i >= len(clicks.data) for i in clicks.selected_data):
                clicks.selected_data = set()  # left over from points that are gone
            # The current colours first: napari also paints them onto the selected points (the click
            # just made), so a click made negative turned green when N was pressed after it.
            clicks.current_face_color = POSITIVE_COLOR if self.click_label > 0 else NEGATIVE_COLOR
            clicks.current_border_color = colors.get(self.selected_id, (1, 1, 1, 1))
            clicks.feature_defaults = {"label": self.click_label, "object_id": self.selected_id}
            if len(clicks.data):  # each click in the colour of its own label
                clicks.face_color = np.array([POSITIVE_COLOR if lb > 0 else NEGATIVE_COLOR for lb in labels])
                clicks.border_color = np.array([colors.get(int(i), (1, 1, 1, 1)) for i in ids])

    def _color_boxes(self) -> None:
        boxes = self.layer(ROLE_BOXES)
        if boxes is None:
            return
        colors = {o.id: rgba(o.color) for o in self.store.objects}
        with self._updating_layers():
            if boxes.nshapes:
                ids = np.asarray(boxes.features["object_id"])
                boxes.edge_color = np.array([colors.get(int(i), (1, 1, 1, 1)) for i in ids])
            boxes.current_edge_color = colors.get(self.selected_id, (1, 1, 1, 1))
            boxes.feature_defaults = {"object_id": self.selected_id}

    # ------------------------------------------------------------------ store -> layers
    def _on_store_changed(self, obj_id: int, frames: tuple[int, ...]) -> None:
        if self._muted or self.store is None:
            return
        if frames:
            self._refresh_frames(frames)
            for t in frames:
                self._j_cache.pop((obj_id, t), None)
        signature = tuple((o.id, o.name, o.color) for o in self.store.objects)
        if signature != self._objects_signature:  # objects added, removed, renamed or recoloured
            self._objects_signature = signature
            self._refresh_all()
            self._color_clicks()
            self._color_boxes()
            self.objects_changed.emit()
            if self.selected_id and not self.store.has_object(self.selected_id):
                self.select_object(self.store.object_ids[0] if self.store.object_ids else 0)
        else:
            layer = self.layer(ROLE_MASKS)
            if layer is not None:
                layer.refresh()
            self._refresh_points()
        self.annotations_changed.emit()

    # ------------------------------------------------------------------ frames
    @property
    def current_frame(self) -> int:
        if self.video_layer is None:
            return 0
        try:
            t = self.video_layer.world_to_data(self.viewer.dims.point)[0]
        except (IndexError, ValueError):
            t = self.viewer.dims.current_step[0]
        return int(min(max(round(float(t)), 0), max(self.num_frames - 1, 0)))

    def go_to_frame(self, frame: int) -> None:
        if self.video_layer is None:
            return
        frame = int(min(max(frame, 0), self.num_frames - 1))
        world = self.video_layer.data_to_world([frame, 0, 0])[0]
        self.viewer.dims.set_point(0, world)

    def _on_frame_changed(self, _event=None) -> None:
        if self.session is not None and not self.running:
            self._request_encode(self.current_frame)

    def _request_encode(self, frame: int) -> None:
        """Encode the frame the user looks at in a thread, so the next click only runs the heads."""
        if self.session is None:
            return
        if self._encode_worker is not None:
            self._pending_encode = frame
            return
        from napari_hotspot._napari.workers import start_encode

        self._pending_encode = None
        self._encode_worker = start_encode(
            self.session, self.lock, frame, self.show_gaze_map,
            connect={"returned": self._on_encoded, "errored": self._on_encode_error,
                     "finished": self._on_encode_finished})

    def _on_encoded(self, value) -> None:
        frame, gaze = value
        if gaze is not None and self.show_gaze_map and self.video_layer is not None:
            self._show_gaze(frame, gaze)

    def _on_encode_error(self, err) -> None:
        self._report(err, warning=True)

    def _on_encode_finished(self) -> None:
        self._encode_worker = None
        if self._pending_encode is not None and not self.running:
            self._request_encode(self._pending_encode)

    def _show_gaze(self, frame: int, gaze: np.ndarray) -> None:
        layer = self.layer(ROLE_GAZE)
        image = (gaze / max(float(gaze.max()), 1e-12)).astype(np.float32)
        if layer is None:
            active = self.viewer.layers.selection.active
            layer = self.viewer.add_image(
                image, name=f"{self.video_layer.name} gaze map", colormap="inferno", blending="additive",
                opacity=0.6, contrast_limits=(0, 1), metadata=self._layer_meta(ROLE_GAZE),
                scale=self._spatial["scale"][-2:], translate=self._spatial["translate"][-2:])
            self._layers[ROLE_GAZE] = layer
            self.viewer.layers.selection.active = active
        else:
            layer.data = image
        layer.metadata[META_KEY]["frame"] = frame
        layer.visible = True

    def set_show_gaze_map(self, show: bool) -> None:
        self.show_gaze_map = bool(show)
        layer = self.layer(ROLE_GAZE)
        if not show and layer is not None:
            layer.visible = False
        if show:
            self._request_encode(self.current_frame)

    # ------------------------------------------------------------------ objects
    def _require_video(self) -> None:
        if self.store is None:
            raise PromptError("choose a video layer first (open a video, a frame folder or the sample)")

    def _require_session(self) -> None:
        self._require_video()
        if self.session is None:
            raise PromptError("the models are still loading; try again in a moment")

    def _require_idle(self, what: str) -> None:
        if self.busy:
            raise PromptError(f"cannot {what} while tracking; wait for the run to end or cancel it")

    def _require_no_jobs(self, what: str) -> None:
        """Like ``_require_idle``, and no adaptation running either."""
        self._require_idle(what)
        if self.adapting:
            raise PromptError(f"cannot {what} while the tracker adapts; wait for it to end or cancel it")

    def add_object(self, name: str | None = None):
        """Add an object (next free id, default colour) and select it; returns its ObjectInfo."""
        try:
            self._require_video()
            self._require_idle("add an object")
            info = self.store.add_object(name=name)
        except HotspotError as err:
            self._report(err)
            return None
        self.select_object(info.id)
        return info

    def select_object(self, obj_id: int) -> None:
        if self.store is not None and obj_id and not self.store.has_object(obj_id):
            self._report(AnnotationError(f"no object with id {obj_id}"))
            return
        self.selected_id = int(obj_id)
        self._apply_selection()
        self.selection_changed.emit(self.selected_id)

    def _apply_selection(self) -> None:
        masks = self.layer(ROLE_MASKS)
        if masks is not None and self.selected_id:
            masks.selected_label = self.selected_id
        self._color_clicks()
        self._color_boxes()
        hotspots = self.layer(ROLE_HOTSPOTS)
        if hotspots is not None:
            with self._updating_layers():
                hotspots.feature_defaults = {"object_id": self.selected_id, "confidence": np.nan,
                                             "source": Provenance.USER_CORRECTED.value, "keyframe": True}

    def _cycle_object(self, step: int) -> None:
        if self.store is None or not self.store.object_ids:
            return
        ids = self.store.object_ids
        pos = ids.index(self.selected_id) if self.selected_id in ids else -step
        self.select_object(ids[(pos + step) % len(ids)])

    def select_next_object(self) -> None:
        self._cycle_object(+1)

    def select_previous_object(self) -> None:
        self._cycle_object(-1)

    def rename_object(self, obj_id: int, name: str) -> None:
        try:
            self._require_video()
            self.store.rename_object(obj_id, name)
        except HotspotError as err:
            self._report(err)

    def recolor_object(self, obj_id: int, color: tuple[int, int, int]) -> None:
        try:
            self._require_video()
            self.store.recolor_object(obj_id, color)
        except HotspotError as err:
            self._report(err)

    def delete_object(self, obj_id: int | None = None) -> None:
        """Remove an object, its masks and hotspots (one undo step) and its clicks and boxes."""
        obj_id = self.selected_id if obj_id is None else obj_id
        try:
            self._require_video()
            self._require_no_jobs("delete an object")
            self.store.remove_object(obj_id)
        except HotspotError as err:
            self._report(err)
            return
        if self.session is not None:
            with self.lock:
                self.session.reset_object(obj_id)
        self._anchor_entries = {k: v for k, v in self._anchor_entries.items() if k[0] != obj_id}
        if self._adapt_learnt.pop(obj_id, None) is not None and self.autosaver is not None:
            self.autosaver.mark_dirty()
        self.adaptation_changed.emit(obj_id)
        self._applied = {k: v for k, v in self._applied.items() if k[1] != obj_id}
        self._click_bases = {k: v for k, v in self._click_bases.items() if k[1] != obj_id}
        self._prompt_history = {k: v for k, v in self._prompt_history.items() if k[1] != obj_id}
        self._rebuild_prompt_layers(self._applied)

    def _ensure_object(self) -> int:
        """The selected object, adding "object 1" when there is none yet."""
        if self.selected_id and self.store.has_object(self.selected_id):
            return self.selected_id
        info = self.store.add_object()
        self.select_object(info.id)
        return info.id

    # ------------------------------------------------------------------ prompts
    def toggle_click_label(self) -> int:
        """Make the next click negative if it was positive and vice versa; returns the new label."""
        self.set_click_label(0 if self.click_label > 0 else 1)
        return self.click_label

    def set_click_label(self, label: int) -> None:
        self.click_label = 1 if label else 0
        self._color_clicks()
        self.click_label_changed.emit(self.click_label)

    def add_click(self, frame: int, x: float, y: float, positive: bool | None = None) -> None:
        """Click like the user does: add a point to the clicks layer (the layer event prompts)."""
        if positive is not None:
            self.set_click_label(1 if positive else 0)
        layer = self.layer(ROLE_CLICKS)
        if layer is None:
            self._report(PromptError("choose a video layer first"))
            return
        layer.add(np.array([[frame, y, x]], float))

    def add_box(self, frame: int, x0: float, y0: float, x1: float, y1: float) -> None:
        """Draw a box like the user does: add a rectangle to the boxes layer (the layer event prompts)."""
        layer = self.layer(ROLE_BOXES)
        if layer is None:
            self._report(PromptError("choose a video layer first"))
            return
        layer.add_rectangles(np.array([[frame, y0, x0], [frame, y0, x1], [frame, y1, x1], [frame, y1, x0]], float))

    def _on_prompt_data(self, event) -> None:
        if self._updating or self.store is None:
            return
        action = getattr(event, "action", None)
        if action not in (self._action_type.ADDED, self._action_type.REMOVED, self._action_type.CHANGED):
            return
        if self._dragging:
            return  # the mouse release syncs (see _install_drag_guard)
        self._sync_prompts()

    def _layer_groups(self) -> dict[tuple[int, int], PromptGroup]:
        """The prompt groups the clicks and boxes layers hold now (the last box of a group wins)."""
        clicks, boxes = self.layer(ROLE_CLICKS), self.layer(ROLE_BOXES)
        found: dict[tuple[int, int], tuple[list, Any]] = {}
        fallback = self.selected_id
        if clicks is not None and len(clicks.data):
            labels = np.asarray(clicks.features["label"])
            ids = np.asarray(clicks.features["object_id"])
            for (t, y, x), label, oid in zip(clicks.data, labels, ids):
                key = (int(round(t)), int(oid) or fallback)
                found.setdefault(key, ([], None))[0].append((float(x), float(y), 1 if label > 0 else 0))
        if boxes is not None and boxes.nshapes:
            ids = np.asarray(boxes.features["object_id"]) if len(boxes.features) else np.zeros(boxes.nshapes, int)
            for verts, oid, kind in zip(boxes.data, ids, boxes.shape_type):
                if kind != "rectangle":
                    continue  # a box prompt is a rectangle; other shapes are the user's own notes
                verts = np.asarray(verts, float)
                key = (int(round(verts[0, 0])), int(oid) or fallback)
                ys, xs = verts[:, 1], verts[:, 2]
                box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
                entry = found.setdefault(key, ([], None))
                found[key] = (entry[0], box)
        return {k: PromptGroup(tuple(c), b) for k, (c, b) in found.items()}

    def _sync_prompts(self) -> None:
        """Prompt every (frame, object) whose clicks or box changed since it was last applied."""
        if self.store is None:
            return
        groups = self._layer_groups()
        changed = sorted(k for k in set(groups) | set(self._applied) if groups.get(k) != self._applied.get(k))
        if not changed:
            return
        rebuild = any(k[1] == 0 for k in groups)  # clicks made before any object existed
        boxes = self.layer(ROLE_BOXES)
        n_boxes = sum(k == "rectangle" for k in boxes.shape_type) if boxes is not None else 0
        rebuild |= n_boxes != sum(g.box is not None for g in groups.values())  # a box replaced another
        for key in changed:
            group = groups.get(key, PromptGroup())
            t, oid = key
            if group.empty:
                self._applied.pop(key, None)  # prompts deleted: the mask they made stays (undo removes it)
                self._click_bases.pop(key, None)  # new clicks there correct that mask
                continue
            try:
                self._require_session()
                self._require_idle("prompt")
                if not oid or not self.store.has_object(oid):
                    oid = self._ensure_object()
                base = self._correction_base(t, oid) if group.box is None else None
                if base is not None:  # the frame has a mask: the clicks correct it
                    result = self._refine_by_clicks(t, oid, base, group)
                    self._write_prompt(result, correction=True)
                    what = "corrected"
                else:
                    if not any(label > 0 for *_xy, label in group.clicks) and group.box is None:
                        raise PromptError(f"frame {t} has no mask of this object to correct: a positive click "
                                          f"(or a box) picks it first; N switches back to positive clicks")
                    kwargs: dict[str, Any] = {}
                    if group.clicks:
                        kwargs["points"] = [(x, y) for x, y, _ in group.clicks]
                        kwargs["labels"] = [label for *_xy, label in group.clicks]
                    if group.box is not None:
                        kwargs["box"] = group.box
                    with self.lock:
                        result = self.session.add_prompt(t, oid, source="click" if group.clicks else "box",
                                                         **kwargs)
                    self._write_prompt(result)
                    what = "prompted"
                self._prompt_history.setdefault((t, oid), []).append(
                    (self.store.get(oid, t), group, self._click_bases.get((t, oid))))
                n = len(group.clicks)
                self.status.emit(f"frame {t}: {self.store.get_object(oid).name} {what} "
                                 f"({n} click{'s' if n != 1 else ''}{' and a box' if group.box else ''})")
            except HotspotError as err:
                self._report(err)
                old = self._applied.get(key)  # back to the prompts that worked (or none)
                if old is None:
                    groups.pop(key, None)
                else:
                    groups[key] = old
                rebuild = True
                continue
            if key[1] != oid:
                groups.pop(key, None)
                rebuild = True
            self._applied[(t, oid)] = group
            groups[(t, oid)] = group
        if rebuild:
            self._rebuild_prompt_layers({k: v for k, v in groups.items() if k[1]})
        else:
            self._color_clicks()
            self._color_boxes()

    def _write_prompt(self, result, correction: bool = False) -> None:
        """Store a prompt's mask and hotspot on its frame as a keyframe."""
        t, oid = result.frame, result.object_id
        prev = self.store.get(oid, t)
        if correction or (prev is not None and prev.provenance not in (Provenance.KEYFRAME,)):
            provenance = Provenance.USER_CORRECTED
        else:
            provenance = Provenance.KEYFRAME
        self.store.set_frame(oid, t, mask=result.mask, hotspot=self._clip_hotspot(result.hotspot),
                             confidence=1.0, provenance=provenance)
        self._anchor_entries[(oid, t)] = self.store.get(oid, t)

    def _correction_base(self, t: int, oid: int) -> np.ndarray | None:
        """The mask the clicks of (frame, object) correct: the object's mask on the frame when its first
        click came (None when the frame had none: those clicks pick the object)."""
        key = (t, oid)
        if key in self._click_bases:
            return self._click_bases[key]
        if key in self._applied:
            return None  # clicks reopened from a project picked the object: they still do
        entry = self.store.get(oid, t)
        base = entry.mask if entry is not None and entry.packed_mask is not None else None
        self._click_bases[key] = base
        return base

    def _refine_by_clicks(self, t: int, oid: int, base: np.ndarray, group: PromptGroup):
        """The frame's mask corrected by the group's clicks (``corrections.refine_mask``), as the frame's
        new anchor."""
        from napari_hotspot.corrections import clicks_hotspot, refine_mask

        prev = self.store.get(oid, t)
        prev_hot = None
        if prev is not None and prev.hotspot is not None and prev.hotspot.visible:
            prev_hot = (prev.hotspot.x, prev.hotspot.y)
        self._anchor_entries.pop((oid, t), None)
        with self.lock:
            mask = refine_mask(self.session, t, base, group.clicks)
            hot = clicks_hotspot(mask, group.clicks, prev_hot)
            return self.session.add_prompt(t, oid, mask=mask, hotspot=hot, source="correction")

    def _prompts_follow_store(self, touched: set[tuple[int, int]]) -> None:
        """After undo or redo: the clicks and boxes of each touched (frame, object) are those that made the
        mask the store shows now, and none when that mask was not made by prompts."""
        changed = False
        for oid, t in touched:
            key = (t, oid)
            history = self._prompt_history.get(key)
            if not history:
                continue
            entry = self.store.get(oid, t) if self.store.has_object(oid) else None
            match = next(((g, b) for e, g, b in reversed(history) if e is entry), None)
            if match is None:
                changed |= self._applied.pop(key, None) is not None
                self._click_bases.pop(key, None)
            else:
                group, base = match
                self._click_bases[key] = base
                if self._applied.get(key) != group:
                    self._applied[key] = group
                    changed = True
        if changed:
            self._rebuild_prompt_layers(self._applied)

    def _clip_hotspot(self, xy):
        if xy is None:
            return None
        H, W = self.store.height, self.store.width
        return (float(np.clip(xy[0], -0.5, W - 0.5)), float(np.clip(xy[1], -0.5, H - 0.5)))

    def auto_prompt(self, frame: int | None = None) -> None:
        """Auto: EG-Net's gaze map picks the salient object on the frame, for the selected object."""
        t = self.current_frame if frame is None else int(frame)
        try:
            self._require_session()
            self._require_idle("prompt")
            oid = self._ensure_object()
            with self.lock:
                result = self.session.auto_prompt(t, oid)
            self._write_prompt(result)
        except HotspotError as err:
            self._report(err)

    def load_gaze(self, path: str | os.PathLike) -> None:
        """Prompt the selected object with recorded fixations (CSV ``t,x,y``), in a thread worker."""
        from napari_hotspot._napari.workers import start_gaze_prompts

        try:
            self._require_session()
            self._require_no_jobs("prompt with a gaze file")
            fixations = read_frame_fixations(path)
            bad = [t for t in fixations if not 0 <= t < self.num_frames]
            if bad:
                raise PromptError(f"gaze file {path}: frames {bad[:5]} are outside 0..{self.num_frames - 1}")
            oid = self._ensure_object()
        except HotspotError as err:
            self._report(err)
            return
        self._gaze_errors: list[str] = []
        self._gaze_batch = self.store.batch(f"gaze prompts from {Path(path).name}")
        self._gaze_batch.__enter__()
        self._set_editable(False)
        self._gaze_worker = start_gaze_prompts(
            self.session, self.lock, oid, fixations,
            connect={"yielded": self._on_gaze_result, "finished": self._on_gaze_finished,
                     "errored": self._on_gaze_failed})
        self.run_state_changed.emit(True)

    def _on_gaze_result(self, value) -> None:
        if isinstance(value, Exception):
            self._gaze_errors.append(str(value))
            return
        self._write_prompt(value)
        self._refresh_frames([value.frame])

    def _on_gaze_failed(self, err) -> None:
        self._gaze_errors.append(str(err))

    def _on_gaze_finished(self) -> None:
        self._gaze_worker = None
        self._muted = True
        try:
            self._gaze_batch.__exit__(None, None, None)
        finally:
            self._muted = False
        self._set_editable(True)
        self._refresh_all()
        self.annotations_changed.emit()
        self.run_state_changed.emit(False)
        if self._gaze_errors:
            self._report(PromptError("gaze prompts failed on some frames: " + "; ".join(self._gaze_errors[:3])),
                         warning=True)

    # ------------------------------------------------------------------ corrections
    def _on_paint(self, event) -> None:
        if self._updating or self.store is None:
            return
        frames = self._frames_after_atoms(getattr(event, "value", None) or [])
        self._commit_label_edits(frames)

    def _frames_after_atoms(self, atoms) -> dict[int, np.ndarray]:
        """The frames a paint event changes, as they are once its history atoms are applied.

        napari emits ``paint`` before it writes a single click's pixels (a stroke's are already
        written), so the atoms are replayed on copies; replaying is idempotent either way.
        """
        masks = self.layer(ROLE_MASKS)
        frames: dict[int, np.ndarray] = {}

        def frame(t: int) -> np.ndarray:
            if t not in frames:
                frames[t] = np.array(masks.data[t])
            return frames[t]

        for atom in atoms:
            key = getattr(atom, "slice_key", None)
            try:
                if key is not None:  # napari's _MaskedPaintAtom: a bounding box, a mask, one new label
                    ts = range(*key[0].indices(self.num_frames)) if isinstance(key[0], slice) else [int(key[0])]
                    t0 = ts[0]
                    slab = np.stack([frame(t) for t in ts])
                    local = (slice(0, len(ts)), *key[1:])
                    region = slab[local]
                    if atom.mask is None:
                        region[...] = atom.new_value
                    else:
                        region[atom.mask] = atom.new_value
                    slab[local] = region
                    for t in ts:
                        frames[t] = slab[t - t0]
                else:  # the legacy (indices, old values, new values) atom of data_setitem
                    indices, _old, new = atom
                    ts = np.asarray(indices[0]).reshape(-1)
                    rest = [np.asarray(i).reshape(-1) for i in indices[1:]]
                    values = np.broadcast_to(np.asarray(new), ts.shape)
                    for t in np.unique(ts):
                        sel = ts == t
                        frame(int(t))[tuple(i[sel] for i in rest)] = values[sel]
            except (TypeError, ValueError, IndexError, AttributeError):
                frame(self.current_frame)  # unknown atom: fall back to the layer's current frame
        return frames

    def _commit_label_edits(self, frames: dict[int, np.ndarray]) -> None:
        """Masks painted or erased on the labels layer become USER_CORRECTED keyframes (one undo step
        per frame). A refused edit is shown and the frame restored from the store."""
        for t, new in sorted(frames.items()):
            old = self.store.label_frame(t)
            diff = new != old
            if not diff.any():
                continue
            ids = sorted((set(np.unique(new[diff]).tolist()) | set(np.unique(old[diff]).tolist())) - {0})
            try:
                self._require_session()
                self._require_idle("correct masks")
                with self.store.batch(f"correct frame {t}"):
                    for oid in ids:
                        if not self.store.has_object(oid):
                            self.store.add_object(obj_id=int(oid))  # a new label painted: a new object
                        mask = new == oid
                        if not mask.any():
                            raise PromptError(
                                f"erasing object {oid} entirely on frame {t} is not a correction the tracker can "
                                f"use (an empty mask); the frame was restored")
                        prev = self.store.get(oid, t)
                        hot = None
                        if prev is not None and prev.hotspot is not None:
                            hx, hy = int(round(prev.hotspot.x)), int(round(prev.hotspot.y))
                            if 0 <= hy < mask.shape[0] and 0 <= hx < mask.shape[1] and mask[hy, hx]:
                                hot = (prev.hotspot.x, prev.hotspot.y)
                        self._anchor_entries.pop((oid, t), None)
                        with self.lock:
                            result = self.session.add_prompt(t, oid, mask=mask, hotspot=hot, source="correction")
                        self.store.set_frame(oid, t, mask=mask, hotspot=self._clip_hotspot(result.hotspot),
                                             confidence=1.0, provenance=Provenance.USER_CORRECTED)
            except HotspotError as err:
                self._report(err)
                self._restore_frame(t)  # the store rolled back: show it again
                continue
            for oid in ids:
                self._anchor_entries[(oid, t)] = self.store.get(oid, t)
            painted = [oid for oid in ids if (new == oid).any()]
            if painted and (not self.selected_id or not self.store.has_object(self.selected_id)):
                self.select_object(painted[0])  # the label just painted, as napari's label picker has it

    def _restore_frame(self, t: int) -> None:
        """Show the store's labels on frame ``t`` again, now and once napari has finished its own write."""
        def restore():
            if self.store is not None and self.layer(ROLE_MASKS) is not None:
                self._refresh_frames([t])
                self.layer(ROLE_MASKS).refresh()

        restore()
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, restore)

    def _on_hotspot_data(self, event) -> None:
        if self._updating or self.store is None:
            return
        if getattr(event, "action", None) not in (self._action_type.ADDED, self._action_type.REMOVED,
                                                  self._action_type.CHANGED):
            return
        if self._dragging:
            return
        self._commit_hotspot_edits()

    def _commit_hotspot_edits(self) -> None:
        """Hotspots dragged (or placed) on a frame become USER_CORRECTED keyframes; removals are undone."""
        layer = self.layer(ROLE_HOTSPOTS)
        if layer is None or self.store is None:
            return
        data = np.asarray(layer.data, float).reshape(-1, 3)
        ids = np.asarray(layer.features["object_id"]) if len(data) else np.zeros(0, int)
        expected, _ = hotspot_table(self.store)
        moves = []
        for (t, y, x), oid in zip(data, ids):
            t, oid = int(round(t)), int(oid) or self.selected_id
            if not oid or not self.store.has_object(oid) or not 0 <= t < self.num_frames:
                continue
            h = self.store.hotspot(oid, t)
            if h is not None and abs(h.x - x) < 1e-6 and abs(h.y - y) < 1e-6:
                continue
            moves.append((t, oid, float(x), float(y)))
        if len(data) < len(expected) and not moves:
            self._report(PromptError("hotspots follow the masks: to remove one, erase the object's mask on that "
                                     "frame or undo"), warning=True)
        done = []
        try:
            if moves:
                self._require_session()
                self._require_idle("move hotspots")
                with self.store.batch("move hotspot"):
                    for t, oid, x, y in moves:
                        entry = self.store.get(oid, t)
                        if entry is None or entry.packed_mask is None:
                            raise PromptError(f"object {oid} has no mask on frame {t}: prompt or paint it first, "
                                              f"then place its hotspot")
                        self._anchor_entries.pop((oid, t), None)
                        with self.lock:
                            result = self.session.add_prompt(t, oid, mask=entry.mask, hotspot=(x, y),
                                                             source="correction")
                        hx, hy = result.hotspot
                        if abs(hx - x) > 1.5 or abs(hy - y) > 1.5:
                            self._report(PromptError(
                                f"the hotspot of object {oid} on frame {t} must lie inside its mask; "
                                f"placed at ({hx:.0f}, {hy:.0f}) instead of ({x:.0f}, {y:.0f})"), warning=True)
                        self.store.set_frame(oid, t, hotspot=self._clip_hotspot(result.hotspot), confidence=1.0,
                                             provenance=Provenance.USER_CORRECTED)
                        done.append((oid, t))
        except HotspotError as err:
            self._report(err)
            done = []
        for key in done:
            self._anchor_entries[key] = self.store.get(*key)
        self._refresh_points()  # a rejected edit or removal snaps back to the store

    def _set_editable(self, editable: bool) -> None:
        for role in (ROLE_MASKS, ROLE_CLICKS, ROLE_BOXES, ROLE_HOTSPOTS):
            layer = self.layer(role)
            if layer is not None:
                layer.editable = editable

    # ------------------------------------------------------------------ session anchors
    def _sync_anchors(self, object_ids: Iterable[int]) -> None:
        """Make the session's anchors of these objects match the store's keyframes (after undo/load)."""
        for oid in object_ids:
            keyframes = {}
            for t in self.store.keyframes(oid):
                entry = self.store.get(oid, t)
                if entry is not None and entry.packed_mask is not None:
                    keyframes[t] = entry
            with self.lock:
                for t in self.session.anchors(oid):
                    if t not in keyframes:
                        self.session.remove_anchor(oid, t)
                        self._anchor_entries.pop((oid, t), None)
                for t, entry in keyframes.items():
                    if self._anchor_entries.get((oid, t)) is entry and t in self.session.anchors(oid):
                        continue
                    hot = None
                    if entry.hotspot is not None and entry.hotspot.visible:
                        hot = (min(max(entry.hotspot.x, 0), self.store.width - 1),
                               min(max(entry.hotspot.y, 0), self.store.height - 1))
                    self.session.add_prompt(t, oid, mask=entry.mask, hotspot=hot, source="mask")
                    self._anchor_entries[(oid, t)] = entry

    # ------------------------------------------------------------------ tracking
    def _track_ids(self) -> list[int]:
        if self.track_scope == "all":
            ids = [o for o in self.store.object_ids if self.store.keyframes(o)]
            if not ids:
                raise PromptError("no object has a prompt yet: click, draw a box or press Auto first")
            return ids
        oid = self.selected_id
        if not oid or not self.store.has_object(oid):
            raise PromptError("select an object first (or set Objects to 'all')")
        if not self.store.keyframes(oid):
            name = self.store.get_object(oid).name
            raise PromptError(f"{name} has no prompt yet: click, draw a box or press Auto first")
        return [oid]

    def track(self, direction: str | None = None, start_frame: int | None = None,
              stop_at_keyframe: bool = False, summary: str | None = None):
        """Propagate the objects (widget settings) in ``direction``; returns the worker or None.

        With ``start_frame`` the sweep starts there (re-propagation) and, with ``stop_at_keyframe``,
        ends at the next keyframe; otherwise it covers ``track_range`` (all frames by default).
        Results stream into the store (one undo step per run) and the layers while it runs.
        With an adaptation budget (``adapt_seconds`` > 0), objects with keyframes their adaptation has
        not learnt yet are adapted first (the returned worker is then the adaptation's; Cancel stops
        the whole run).
        """
        direction = direction or self.track_direction
        try:
            if direction not in DIRECTIONS:
                raise PromptError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
            self._require_session()
            self._require_no_jobs("start another run")
            ids = self._track_ids()
            self._sync_anchors(ids)
        except HotspotError as err:
            self._report(err)
            return None
        def adapt_then_propagate():
            learn = [oid for oid in ids if self.adaptation_pending(oid)] if self.adapt_seconds > 0 else []
            if learn:
                def then():
                    return self._start_propagation(direction, start_frame, stop_at_keyframe, ids, summary)

                return self._start_adaptation(learn, then=then)
            return self._start_propagation(direction, start_frame, stop_at_keyframe, ids, summary)

        return self._complete_then_start(ids, adapt_then_propagate)

    def _start_propagation(self, direction: str, start_frame: int | None, stop_at_keyframe: bool, ids: list[int],
                           summary: str | None = None):
        from napari_hotspot._napari.workers import Sweep, start_propagation

        try:
            self._require_session()
            self._require_no_jobs("start another run")
            ids = [oid for oid in ids if self.store.has_object(oid) and self.store.keyframes(oid)]
            if not ids:
                raise PromptError("no object to track is left")
            self._sync_anchors(ids)  # prompts and corrections made while the tracker adapted
        except HotspotError as err:
            self._report(err)
            return None
        last = self.num_frames - 1
        a, b = self.track_range if self.track_range is not None else (0, last)
        a, b = sorted((int(min(max(a, 0), last)), int(min(max(b, 0), last))))
        common = {"object_ids": ids, "stop_at_keyframe": stop_at_keyframe}
        sweeps = []
        if start_frame is not None:
            s = int(start_frame)
            if direction in ("forward", "both"):
                sweeps.append(Sweep({**common, "start_frame": s, "end_frame": b if not stop_at_keyframe else last,
                                     "direction": "forward"}, max(last - s, 1)))
            if direction in ("backward", "both"):
                sweeps.append(Sweep({**common, "start_frame": s, "end_frame": a if not stop_at_keyframe else 0,
                                     "direction": "backward"}, max(s, 1)))
        else:
            if direction in ("forward", "both"):
                sweeps.append(Sweep({**common, "start_frame": a, "end_frame": b, "direction": "forward"}, b - a + 1))
            if direction in ("backward", "both"):
                sweeps.append(Sweep({**common, "start_frame": b, "end_frame": a, "direction": "backward"}, b - a + 1))
        label = f"track {direction}" if start_frame is None else f"re-propagate {direction} from frame {start_frame}"
        self._run_batch = self.store.batch(label)
        self._run_batch.__enter__()
        self._run_summary = summary
        self._run_frames = 0
        self._run_cancelled = False
        self._run_error = None
        self._last_refresh = time.perf_counter()
        self._set_editable(False)
        self._worker = start_propagation(
            self.session, self.lock, sweeps, desc=label,
            connect={"yielded": self._on_run_batch, "errored": self._on_run_error,
                     "finished": self._on_run_finished})
        self.run_state_changed.emit(True)
        self.status.emit(f"{label}…")
        return self._worker

    def repropagation_plan(self, object_ids: Iterable[int], frame: int,
                           sides: Sequence[str] = ("forward", "backward")) -> dict[str, tuple[int, int]]:
        """Per side, the first and last frame a re-propagation from ``frame`` can change: the frames up to
        each object's next keyframe on that side, where the object has a keyframe to start from. A side
        with nothing to change (the last frame, forward; a keyframe right next to it) is left out."""
        last = self.num_frames - 1
        plan = {}
        for side in sides:
            step = 1 if side == "forward" else -1
            frames: set[int] = set()
            for oid in object_ids:
                keys = {k for k in self.store.keyframes(oid)
                        if (e := self.store.get(oid, k)) is not None and e.packed_mask is not None}
                if not any(k <= frame if step > 0 else k >= frame for k in keys):
                    continue  # nothing behind to track from on this side
                f = frame
                while 0 <= f <= last and (f == frame or f not in keys):
                    if f not in keys:
                        frames.add(f)
                    f += step
            if frames:
                plan[side] = (min(frames), max(frames)) if step > 0 else (max(frames), min(frames))
        return plan

    def repropagate_from_here(self, direction: str | None = None):
        """Propagate from the current frame up to the next keyframe on each side that has frames to change
        (``direction`` "forward" or "backward" keeps one side). Nothing starts, adaptation included,
        when no frame can change; the status says which frames it runs over."""
        t = self.current_frame
        sides = ("forward", "backward") if direction in (None, "both") else (direction,)
        try:
            if direction not in (None, *DIRECTIONS):
                raise PromptError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
            self._require_session()
            self._require_no_jobs("re-propagate")
            plan = self.repropagation_plan(self._track_ids(), t, sides)
            if not plan:
                where = {"forward": "after it", "backward": "before it"}
                raise PromptError(f"nothing to re-propagate from frame {t}: no frame "
                                  f"{' or '.join(where[s] for s in sides)} can change (a keyframe or the end of the "
                                  f"video is next)")
        except HotspotError as err:
            self._report(err)
            return None
        run = "both" if len(plan) == 2 else next(iter(plan))
        spans = [f"{side} over frames {a}-{b}" if a != b else f"{side} over frame {a}" for side, (a, b) in plan.items()]
        summary = f"re-propagated from frame {t}: " + ", ".join(spans)
        self.status.emit(summary.replace("re-propagated", "re-propagating", 1) + "…")
        return self.track(run, start_frame=t, stop_at_keyframe=True, summary=summary)

    def cancel(self) -> None:
        """Stop the running propagation (frames done so far are kept, as one undo step) or adaptation
        (what the objects learnt so far is kept; the run it was to start does not start)."""
        if self._worker is not None:
            self._run_cancelled = True
            self._worker.quit()
        if self._gaze_worker is not None:
            self._gaze_worker.quit()
        if self._complete_worker is not None:
            self._complete_cancelled = True
            self._complete_then = None
            self._complete_worker.quit()
        if self._adapt_worker is not None:
            self._adapt_cancelled = True
            self._adapt_then = None
            self._adapt_stop.set()
            self._adapt_worker.quit()

    # ------------------------------------------------------------------ completing sparse prompts
    def completion_pending(self, obj_id: int) -> list[int]:
        """Keyframes of the object whose click or box mask is not completed yet (none when completion
        is off: the next run or adaptation takes them as they are)."""
        if self.session is None or self.complete_frames <= 0:
            return []
        with self.lock:
            return self.session.pending_completions(obj_id)

    def _complete_then_start(self, object_ids: list[int], then: Callable[[], Any]):
        """Complete the objects' pending prompt masks in a thread worker, then call ``then`` (a run or
        an adaptation); with nothing pending, call it at once. Returns the first worker started."""
        from napari_hotspot._napari.workers import start_completion

        if self.complete_frames <= 0:  # off: the masks stay as they are, and adaptation may learn them
            with self.lock:
                for _ in self.session.preflight_steps(object_ids, adapt=False):
                    pass
        anchors = {oid: len(self.completion_pending(oid)) for oid in object_ids}
        pending = [oid for oid, n in anchors.items() if n]
        if not pending:
            return then()
        self._complete_then = then
        self._complete_changed = False
        self._complete_error = None
        self._complete_cancelled = False
        self._complete_session = self.session
        self._complete_batch = self.store.batch("complete prompt masks")
        self._complete_batch.__enter__()
        self._set_editable(False)
        self._complete_worker = start_completion(
            self.session, self.lock, pending, anchors=sum(anchors.values()),
            connect={"yielded": self._on_completed, "errored": self._on_complete_error,
                     "finished": self._on_complete_finished})
        self.run_state_changed.emit(True)
        self.status.emit("completing the prompt masks…")
        return self._complete_worker

    def _on_completed(self, result) -> None:
        if result is None or self.store is None or self.session is not self._complete_session \
                or not self.store.has_object(result.object_id):
            return
        self._write_prompt(result)
        self._complete_changed = True
        self._refresh_frames([result.frame])

    def _on_complete_error(self, err) -> None:
        self._complete_error = err

    def _on_complete_finished(self) -> None:
        self._complete_worker = None
        then, self._complete_then = self._complete_then, None
        self._muted = True
        try:
            self._complete_batch.__exit__(None, None, None)
        finally:
            self._muted = False
            self._complete_batch = None
        self.run_state_changed.emit(False)
        if self.session is None or self.session is not self._complete_session or self.store is None:
            return  # the video changed or was removed meanwhile
        self._set_editable(True)
        if self._complete_changed:
            self._refresh_all()
            self.annotations_changed.emit()
        if self._complete_error is not None:
            self._report(self._complete_error)
            return
        if self._complete_cancelled:
            self._info("cancelled while completing the prompt masks; nothing else started")
            return
        if then is not None and self.video_layer is not None and self.video_layer in self.viewer.layers:
            then()

    # ------------------------------------------------------------------ per-video adaptation
    def adaptation_pending(self, obj_id: int) -> list[int]:
        """Keyframes of the object (prompts and corrections) its adaptation has not learnt yet."""
        if self.store is None or not self.store.has_object(obj_id):
            return []
        learnt = self._adapt_learnt.get(obj_id, set())
        return [t for t in self.store.keyframes(obj_id)
                if t not in learnt and (e := self.store.get(obj_id, t)) is not None and e.packed_mask is not None]

    def adaptation_summary(self, obj_id: int) -> dict | None:
        """``{"steps", "seconds", "frames"}`` of the object's adapted tracker, None on the base model."""
        if self.session is None or not self.session.is_adapted(obj_id):
            return None
        state = self.session.adaptation_state(obj_id)
        return {"steps": int(state["steps"]), "seconds": float(state["seconds"]), "frames": list(state["frames"])}

    def adaptation_text(self, obj_id: int | None = None) -> str:
        """One line for the dock: "adapted: 40 steps, 4.8 s" or "base model" (and what is pending)."""
        oid = self.selected_id if obj_id is None else obj_id
        if self.session is None or not oid or self.store is None or not self.store.has_object(oid):
            return ""
        run = self._adapt_runs.get(oid)
        if self.adapting and run is not None and not run.done:
            if run.phase == "frames":
                return f"adapting: taking in keyframe {run.frames[-1]}…"
            return f"adapting: {run.fraction:.0%} ({run.steps} steps)"
        summary = self.adaptation_summary(oid)
        text = "base model" if summary is None else f"adapted: {summary['steps']} steps, {summary['seconds']:.1f} s"
        verdict = self.session.adaptation_verdict(oid, judge=False)  # reached when tracking starts
        if verdict is not None and not verdict.kept:
            text += (f"; not kept, the base model tracks (round trip {verdict.adapted_iou:.2f} vs "
                     f"{verdict.base_iou:.2f})")
        pending = self.adaptation_pending(oid)
        if pending and self.adapt_seconds > 0:
            n = len(pending)
            text += f" ({n} new keyframe{'s' if n > 1 else ''} to learn before tracking)"
        return text

    def _adaptation_target(self, obj_id: int | None, what: str, missing: str) -> int:
        """The object an adaptation action applies to (the selected one by default), once the session
        is ready and no job runs; raises a HotspotError saying why not."""
        oid = self.selected_id if obj_id is None else int(obj_id)
        self._require_session()
        self._require_no_jobs(what)
        if not oid or not self.store.has_object(oid):
            raise PromptError(missing)
        return oid

    def adapt_now(self, obj_id: int | None = None):
        """Adapt the selected object's tracker to its prompts and corrections for ``adapt_seconds``,
        in a thread worker; returns the worker or None."""
        try:
            oid = self._adaptation_target(obj_id, "adapt", "select an object to adapt the tracker to")
            if not self.store.keyframes(oid):
                name = self.store.get_object(oid).name
                raise PromptError(f"{name} has no prompt yet: click, draw a box or paint its mask first")
            if self.adapt_seconds <= 0:
                raise PromptError("the adaptation budget is 0 s (off): set 'Adapt (s)' above 0 first")
            self._sync_anchors([oid])
        except HotspotError as err:
            self._report(err)
            return None
        return self._complete_then_start([oid], lambda: self._start_adaptation([oid]))

    def reset_adaptation(self, obj_id: int | None = None) -> bool:
        """Back to the base tracker for the object; its adapted weights leave the project at the next save."""
        try:
            oid = self._adaptation_target(obj_id, "reset the adaptation", "select an object first")
        except HotspotError as err:
            self._report(err)
            return False
        was = self.session.is_adapted(oid)
        with self.lock:
            self.session.reset_adaptation(oid)
        self._adapt_learnt.pop(oid, None)
        if self.autosaver is not None:
            self.autosaver.mark_dirty()
        self.adaptation_changed.emit(oid)
        name = self.store.get_object(oid).name
        self._info(f"{name}: back to the base model" if was else f"{name} already uses the base model")
        return True

    def _start_adaptation(self, object_ids: list[int], then: Callable[[], Any] | None = None):
        from napari.utils import progress

        from napari_hotspot._napari.workers import start_adaptation

        self._adapt_stop = threading.Event()
        self._adapt_then = then
        self._adapt_before_run = then is not None
        self._adapt_cancelled = False
        self._adapt_error = None
        self._adapt_runs = {}
        self._adapt_ids = list(object_ids)
        self._adapt_session = self.session
        names = ", ".join(self.store.get_object(oid).name for oid in object_ids)
        self._adapt_ticks = 0
        self._adapt_pbar = None
        worker = self._adapt_worker = start_adaptation(
            self.session, self.lock, object_ids, should_stop=self._adapt_stop.is_set,
            connect={"yielded": self._on_adapt_progress, "errored": self._on_adapt_error,
                     "finished": self._on_adapt_finished})
        self.adapt_state_changed.emit(True)
        self.status.emit(f"adapting the tracker to {names}…")
        # napari's progress bar processes Qt events when it changes: make it once the job is set up
        pbar = progress(total=100 * len(object_ids), desc=f"adapting {names}")
        if self._adapt_worker is worker:
            self._adapt_pbar = pbar
        else:  # it ended already
            pbar.close()
        return worker

    def _on_adapt_progress(self, p) -> None:
        if self.session is None or self.session is not self._adapt_session:
            return  # the video changed meanwhile
        self._adapt_runs[p.object_id] = p
        if p.done:
            self._adapt_learnt[p.object_id] = set(self._adapt_learnt.get(p.object_id, set())) | set(p.learnt)
        self.adapt_progress.emit(p)
        self.adaptation_changed.emit(p.object_id)
        # last: napari's progress bar processes Qt events when it moves, so later progress (and the
        # end of the job) may be handled inside this call
        ticks = int(round(100 * p.total * p.overall))
        if self._adapt_pbar is not None and ticks > self._adapt_ticks:
            delta, self._adapt_ticks = ticks - self._adapt_ticks, ticks
            self._adapt_pbar.update(delta)

    def _on_adapt_error(self, err) -> None:
        self._adapt_error = err

    def _on_adapt_finished(self) -> None:
        self._adapt_worker = None
        then, self._adapt_then = self._adapt_then, None
        pbar, self._adapt_pbar = self._adapt_pbar, None
        if pbar is not None:
            pbar.close()
        runs, self._adapt_runs = self._adapt_runs, {}
        current = self.session is not None and self.session is self._adapt_session
        self._adapt_session = None
        if current and self.autosaver is not None and any(p.steps for p in runs.values()):
            self.autosaver.mark_dirty()
        self.adapt_state_changed.emit(False)
        for oid in runs:
            self.adaptation_changed.emit(oid)
        if not current:
            return
        names = {oid: self.store.get_object(oid).name for oid in runs if self.store.has_object(oid)}
        if self._adapt_error is not None:
            self._report(self._adapt_error)
            return
        if not all(oid in runs and runs[oid].done for oid in self._adapt_ids):
            self._adapt_cancelled = True  # stopped from napari's activity dock, not our Cancel
        if self._adapt_cancelled:
            kept = [f"{names.get(oid, oid)} keeps {s['steps']} steps"
                    for oid in runs if (s := self.adaptation_summary(oid)) is not None]
            self._info("adaptation cancelled" + (f"; {', '.join(kept)}" if kept else "; the base model stays in use")
                       + ("; tracking not started" if self._adapt_before_run else ""))
            return
        done = [p for p in runs.values() if p.done]
        idle = [names.get(p.object_id, p.object_id) for p in done if p.steps == 0]
        trained = [f"{names.get(p.object_id, p.object_id)} ({p.steps} steps, {p.seconds:.1f} s)"
                   for p in done if p.steps]
        if trained:
            self._info("adapted the tracker to " + ", ".join(trained))
        if idle:
            self._info(f"nothing new to learn for {', '.join(map(str, idle))}: its keyframes were learnt before "
                       f"(Reset adaptation to learn them again)")
        if then is not None and self.video_layer is not None and self.video_layer in self.viewer.layers:
            then()

    def _restore_adaptation(self) -> None:
        """Load the adapted trackers saved with the project (read and checked by ``load_project``); a
        missing, corrupt or unfitting file gives a warning and leaves that object on the base model
        (its annotations are untouched)."""
        pending, self._project_adaptation = self._project_adaptation, None
        if pending is None or self.session is None:
            return
        project, records, states, loaded_problems = pending
        problems = list(loaded_problems)
        for oid, state in sorted(states.items()):
            if not self.store.has_object(oid):
                continue
            name = records.get(str(oid), {}).get("file") if isinstance(records.get(str(oid)), dict) else None
            label = f"{self.store.get_object(oid).name} ({name or 'no file recorded'})"
            try:
                with self.lock:
                    self.session.load_adaptation_state(oid, state)
                learnt = {int(t) for t in state.get("frames", [])}
            except Exception as err:  # noqa: BLE001 (wrong keys or shapes: made for another tracker)
                with self.lock:
                    self.session.reset_adaptation(oid)
                detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
                problems.append(f"{label}: it does not fit this tracker ({detail})")
                continue
            self._adapt_learnt[oid] = learnt
            self.adaptation_changed.emit(oid)
        if problems:
            self._report(ProjectIOError(adaptation_warning(project, problems)), warning=True)

    def _on_run_batch(self, results) -> None:
        """Apply one frame's results (main thread): store first, then the labels slice."""
        frames = set()
        for r in results:
            if not self.store.has_object(r.object_id):
                continue
            entry = self.store.get(r.object_id, r.frame)
            if entry is not None and entry.is_keyframe:
                continue  # never overwrite what the user made or confirmed
            self.store.set_frame(r.object_id, r.frame, mask=r.mask, hotspot=self._clip_hotspot(r.hotspot),
                                 confidence=float(np.clip(r.confidence, 0.0, 1.0)),
                                 provenance=Provenance.PROPAGATED)
            self._j_cache.pop((r.object_id, r.frame), None)
            frames.add(r.frame)
        self._refresh_frames(frames)
        self._run_frames += 1
        self.run_progress.emit(self._run_frames)
        now = time.perf_counter()
        if now - self._last_refresh >= REFRESH_SECONDS:  # stream into the layers in small batches
            self._last_refresh = now
            masks = self.layer(ROLE_MASKS)
            if masks is not None:
                masks.refresh()
            self._refresh_points()
            self.annotations_changed.emit()

    def _on_run_error(self, err) -> None:
        self._run_error = err

    def _on_run_finished(self) -> None:
        self._worker = None
        self._muted = True  # the layers already show every result: skip the batch's full refresh
        try:
            if self._run_batch is not None:
                self._run_batch.__exit__(None, None, None)
        finally:
            self._muted = False
            self._run_batch = None
        self._set_editable(True)
        masks = self.layer(ROLE_MASKS)
        if masks is not None:
            masks.refresh()
        self._refresh_points()
        self.annotations_changed.emit()
        self.run_state_changed.emit(False)
        if self._run_error is not None:
            self._report(self._run_error)
        elif self._run_cancelled:
            self._info(f"tracking cancelled after {self._run_frames} frames; they are kept (undo removes them)")
        elif self._run_summary:
            self._info(f"{self._run_summary} ({self._run_frames} frames tracked)")
        else:
            self._info(f"tracked {self._run_frames} frames")
        self._request_encode(self.current_frame)

    def wait(self, timeout_s: float = 120.0) -> bool:
        """Process Qt events until the running job ends (scripts and tests); True if it ended."""
        from qtpy.QtWidgets import QApplication

        end = time.monotonic() + timeout_s
        while (self.busy or self.adapting or self._encode_worker is not None or self._model_worker is not None) \
                and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.005)
        QApplication.processEvents()
        return not self.busy and not self.adapting

    # ------------------------------------------------------------------ undo
    def undo(self) -> bool:
        return self._undo_redo("undo")

    def redo(self) -> bool:
        return self._undo_redo("redo")

    def _undo_redo(self, which: str) -> bool:
        touched: set[tuple[int, int]] = set()

        def record(obj_id, frames):
            touched.update((obj_id, t) for t in frames)

        try:
            self._require_video()
            self._require_no_jobs(which)
            self.store.events.connect(record)
            try:
                done = getattr(self.store, which)()
            finally:
                self.store.events.disconnect(record)
        except HotspotError as err:
            self._report(err)
            return False
        if not done:
            self.status.emit(f"nothing to {which}")
        else:
            self._prompts_follow_store(touched)  # clicks leave (and come back) with the masks they made
        return done

    # ------------------------------------------------------------------ QA
    def _qa_ids(self) -> list[int]:
        if self.store is None:
            return []
        if self.selected_id and self.store.has_object(self.selected_id):
            return [self.selected_id]
        return self.store.object_ids

    def confidence_series(self) -> dict[int, np.ndarray]:
        """Per object: (T,) confidence per frame, NaN where the object has no entry or no confidence."""
        out = {}
        for oid in (self.store.object_ids if self.store is not None else []):
            values = np.full(self.num_frames, np.nan)
            for t, entry in self.store.entries(oid).items():
                if entry.confidence is not None:
                    values[t] = entry.confidence
            out[oid] = values
        return out

    def ground_truth_layer(self):
        """A Labels layer named '... ground truth' with the video's shape, if the viewer has one."""
        if self.store is None:
            return None
        for layer in self.viewer.layers:
            if type(layer).__name__ == "Labels" and layer.name.endswith("ground truth") and \
                    tuple(layer.data.shape) == self.store.shape:
                return layer
        return None

    def jaccard_series(self) -> dict[int, np.ndarray] | None:
        """Per object: (T,) region similarity J against the ground-truth layer (label = object id); None
        without ground truth. Cached per entry, so only changed frames are recomputed."""
        from napari_hotspot.evaluation.davis import jaccard

        gt = self.ground_truth_layer()
        if gt is None:
            return None
        out = {}
        gt_frames: dict[int, np.ndarray] = {}
        for oid in self.store.object_ids:
            values = np.full(self.num_frames, np.nan)
            for t, entry in self.store.entries(oid).items():
                if entry.packed_mask is None:
                    continue
                cached = self._j_cache.get((oid, t))
                if cached is not None and cached[0] is entry:
                    values[t] = cached[1]
                    continue
                if t not in gt_frames:
                    gt_frames[t] = np.asarray(gt.data[t])
                j = float(jaccard(entry.mask, gt_frames[t] == oid))
                self._j_cache[(oid, t)] = (entry, j)
                values[t] = j
            out[oid] = values
        return out

    def keyframes(self) -> list[int]:
        frames: set[int] = set()
        for oid in self._qa_ids():
            frames.update(self.store.keyframes(oid))
        return sorted(frames)

    def low_confidence_frames(self) -> list[int]:
        series = self.confidence_series()
        ids = self._qa_ids()
        low = set()
        for oid in ids:
            values = series.get(oid)
            if values is not None:
                low.update(np.flatnonzero(values < self.low_confidence_threshold).tolist())
        return sorted(low)

    def _jump(self, frames: list[int], step: int, what: str) -> int | None:
        t = self.current_frame
        candidates = [f for f in frames if (f > t if step > 0 else f < t)]
        if not candidates:
            self.status.emit(f"no {what} {'after' if step > 0 else 'before'} frame {t}")
            return None
        target = min(candidates) if step > 0 else max(candidates)
        self.go_to_frame(target)
        return target

    def next_keyframe(self) -> int | None:
        return self._jump(self.keyframes(), +1, "keyframe")

    def previous_keyframe(self) -> int | None:
        return self._jump(self.keyframes(), -1, "keyframe")

    def next_low_confidence(self) -> int | None:
        return self._jump(self.low_confidence_frames(), +1, "low-confidence frame")

    def previous_low_confidence(self) -> int | None:
        return self._jump(self.low_confidence_frames(), -1, "low-confidence frame")

    # ------------------------------------------------------------------ save, load, export
    def _video_record(self) -> tuple[Any, dict]:
        """(video path for the project, description for the project reader)."""
        meta = layer_meta(self.video_layer)
        source = meta.get("source")
        if source == "sample":
            return None, {"kind": "sample"}
        path = getattr(self._source, "path", None) or source
        if path and Path(str(path)).exists():
            return Path(str(path)), {"kind": "path"}
        return None, {"kind": "none"}

    def _project_extra(self) -> dict:
        _path, video = self._video_record()
        prompts = [{"frame": t, "object_id": oid, **g.to_json()} for (t, oid), g in sorted(self._applied.items())]
        adaptation = {}
        if self.session is None and self._project_adaptation is not None:
            adaptation = dict(self._unrestored_adaptation()[0])  # models still loading: keep what the project had
        for oid in (self.store.object_ids if self.session is not None else []):
            summary = self.adaptation_summary(oid)
            if summary is not None:
                adaptation[str(oid)] = {"file": adaptation_file_name(oid), **summary}
        return {EXTRA_KEY: {"video": {**video, "name": self.video_layer.name}, "prompts": prompts,
                            "frame_names": self.frame_names, "adaptation": adaptation}}

    def _unrestored_adaptation(self) -> tuple[dict, dict[str, Path]]:
        """The project's adaptation records and files while the session that restores them is not made yet."""
        project, records, states, _problems = self._project_adaptation
        kept, files = {}, {}
        for key, record in records.items():
            name = record.get("file") if isinstance(record, dict) else None
            if name and str(key).isdigit() and int(key) in states:  # unusable files are dropped
                kept[key] = record
                files[str(name)] = project / str(name)
        return kept, files

    def _adaptation_files(self) -> dict[str, bytes | Path]:
        """Each adapted object's tracker state (torch.save bytes), by its file name in the project."""
        import torch

        if self.session is None and self._project_adaptation is not None:
            return self._unrestored_adaptation()[1]
        files: dict[str, bytes | Path] = {}
        for oid in (self.store.object_ids if self.session is not None else []):
            with self.lock:  # a consistent snapshot: training steps run under the lock
                if not self.session.is_adapted(oid):
                    continue
                buffer = io.BytesIO()
                torch.save(self.session.adaptation_state(oid), buffer)
            files[adaptation_file_name(oid)] = buffer.getvalue()
        return files

    def autosave_name(self) -> str:
        """The autosave folder name of the video: its layer name plus a key of its source path, so a frame
        folder and an mp4 of the same name (or two same-named videos in different folders) never share
        one autosave. A layer without a file keys on its name and shape."""
        import hashlib

        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.video_layer.name) or "video"
        video_path, record = self._video_record()
        if video_path is not None:
            source = str(Path(video_path).resolve())
        else:
            source = f"{record.get('kind')}:{self.video_layer.name}:{self.store.shape}"
        return f"{safe}-{hashlib.sha1(source.encode('utf-8')).hexdigest()[:10]}.hotspot"

    def _make_autosaver(self) -> None:
        path = self.project_path
        if path is None:
            root = self.autosave_dir or Path(os.environ.get("NAPARI_HOTSPOT_AUTOSAVE_DIR",
                                                            Path.home() / ".napari-hotspot" / "autosave"))
            path = Path(root) / self.autosave_name()
        video_path, _ = self._video_record()
        self.autosaver = Autosaver(self.store, path, self.autosave_interval_s, video_source=video_path,
                                   extra=self._project_extra, extra_files=self._adaptation_files,
                                   replace_dirs=(ADAPTATION_DIR,))

    def autosave_tick(self) -> bool:
        """Save if the store changed and the interval passed (a QTimer calls this); never while tracking."""
        if self.autosaver is None or self.store is None or self.store.in_batch:
            return False
        try:
            return self.autosaver.maybe_save()
        except ProjectIOError as err:
            self._report(err, warning=True)
            return False

    def flush_autosave(self) -> None:
        """Save now if there are unsaved changes (on close, before switching videos)."""
        if self.autosaver is None or self.store is None or not self.autosaver.dirty or self.store.in_batch:
            return
        try:
            self.autosaver.save_now()
        except ProjectIOError as err:
            self._report(err, warning=True)

    def save_project(self, path: str | os.PathLike | None = None) -> Path | None:
        """Save the project folder (video path, objects, masks, hotspots, prompts); returns its path."""
        try:
            self._require_video()
            if self.store.in_batch:
                raise ProjectIOError("cannot save while tracking; wait for the run to end or cancel it")
            if path is None:
                path = self.project_path
            if path is None and self.ask_project_path is not None:
                path = self.ask_project_path()
            if not path:
                raise ProjectIOError("no project folder chosen; use 'Save project as…'")
            video_path, _ = self._video_record()
            files = self._adaptation_files()
            saved = save_project(self.store, path, video_source=video_path, extra=self._project_extra(),
                                 extra_files=files, replace_dirs=(ADAPTATION_DIR,))
        except HotspotError as err:
            self._report(err)
            return None
        self.project_path = Path(saved)
        for role in OUTPUT_ROLES:
            layer = self.layer(role)
            if layer is not None:
                layer.metadata.setdefault(META_KEY, {})["project"] = str(saved)
        self._make_autosaver()
        self.project_changed.emit()
        self._info(f"saved project {saved}")
        return self.project_path

    def open_project(self, path: str | os.PathLike) -> bool:
        """Continue working on a saved project folder.

        When the project belongs to the video already shown, its annotations replace the current
        ones on that video layer; otherwise the project is opened through the napari-hotspot reader
        (its video plus layers). The current annotations are autosaved first.
        """
        from napari_hotspot.annotations.project import is_project_dir

        try:
            if self.busy or self.adapting:
                raise ProjectIOError("cannot open a project while tracking or adapting; cancel the run first")
            if not is_project_dir(path):
                raise ProjectIOError(f"{path} is not a napari-hotspot project folder (no project.json)")
            with warnings.catch_warnings():  # adaptation problems: reported once, when the session restores
                warnings.simplefilter("ignore")
                store, meta = load_project(path)  # read it once up front: a broken project changes nothing
            video = self.video_layer if self._is_project_video(store, meta) else None
            self.flush_autosave()
            if self.video_layer is not None:  # the old output layers are saved with their store: drop them
                for role in OUTPUT_ROLES:
                    layer = self.layer(role)
                    if layer is not None:
                        self.viewer.layers.remove(layer)
                self.set_video(None)
            if video is not None:
                video.metadata.setdefault(META_KEY, {})["project"] = str(path)
            else:
                layers = self.viewer.open(str(path), plugin="napari-hotspot")
                video = next(la for la in layers if layer_meta(la).get("role") == ROLE_VIDEO)
            self.set_video(video)
        except (HotspotError, StopIteration) as err:
            self._report(err if isinstance(err, HotspotError) else ProjectIOError(f"{path}: no video layer"))
            return False
        self.project_changed.emit()
        self._info(f"opened project {path}")
        return True

    def _is_project_video(self, store: AnnotationStore, meta: dict) -> bool:
        """Whether a loaded project was made for the video layer in use."""
        if self.video_layer is None or store.shape != self.store.shape:
            return False
        video_path, record = self._video_record()
        kind = ((meta.get("extra") or {}).get(EXTRA_KEY) or {}).get("video", {}).get("kind")
        if video_path is not None and meta.get("video_path"):
            return Path(meta["video_path"]).resolve() == Path(video_path).resolve()
        return kind == "sample" and record.get("kind") == "sample"

    def export(self, kind: str, path: str | os.PathLike) -> Path | None:
        """Export the annotations: ``kind`` "davis" (PNG folder), "csv"/"json" (hotspots) or "coco"."""
        from napari_hotspot.annotations import io_coco, io_davis, io_hotspots

        try:
            self._require_video()
            if self.store.in_batch:
                raise ProjectIOError("cannot export while tracking; wait for the run to end or cancel it")
            if kind == "davis":
                io_davis.export_davis_png(self.store, path, frame_names=self.frame_names)
            elif kind == "csv":
                io_hotspots.export_hotspots_csv(self.store, path)
            elif kind == "json":
                io_hotspots.export_hotspots_json(self.store, path)
            elif kind == "coco":
                io_coco.export_coco(self.store, path, frame_names=self.frame_names)
            else:
                raise ProjectIOError(f"unknown export kind {kind!r}; use davis, csv, json or coco")
        except HotspotError as err:
            self._report(err)
            return None
        self._info(f"exported {kind} to {path}")
        return Path(path)

    def close(self) -> None:
        """Cancel work, autosave, and stop listening to the viewer (the widget is closing)."""
        self.cancel()
        self.wait(30)  # let the workers end while their Qt signals still exist
        self.flush_autosave()
        self._disconnect_layer_events()
        masks = self.layer(ROLE_MASKS)
        if masks is not None:  # give the masks layer napari's own undo keys back
            from napari_hotspot._napari.keybindings import unbind_layer_keys

            unbind_layer_keys([masks])
        try:
            self.viewer.dims.events.current_step.disconnect(self._on_frame_changed)
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        except (TypeError, RuntimeError, ValueError):
            pass
