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

The controller is the dock's signal hub, in parts: layer data (``layer_data``), edits
(``controller_edits``), background jobs with one record and one end (``controller_jobs``), the
project (``controller_project``), quality checks (``controller_qa``) and the Qt-free bookkeeping of
the adapted trackers (``annotations.adapted_trackers``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal

from napari_hotspot._napari.controller_edits import EditsMixin
from napari_hotspot._napari.controller_jobs import Job, JobsMixin
from napari_hotspot._napari.controller_project import ProjectMixin
from napari_hotspot._napari.controller_qa import QAMixin
from napari_hotspot._napari.deferred import DeferredRefresh
from napari_hotspot._napari.lazy_labels import LazyLabels
from napari_hotspot.annotations import AnnotationStore, Autosaver, Provenance
# The project's adaptation files are read and checked by the Qt-free loader; the names live there too.
from napari_hotspot.annotations.project import (  # noqa: F401
    adaptation_file_name,
    adaptation_warning,
    load_project_quietly,
)
from napari_hotspot.annotations.adapted_trackers import AdaptedTrackers
from napari_hotspot.annotations.model import FrameAnnotation
from napari_hotspot.compute import SessionLock, compute_thread
from napari_hotspot.errors import AnnotationError, HotspotError, ProjectIOError, PromptError
from napari_hotspot.options import DEFAULT_ADAPT_SECONDS, TrackingOptions
from napari_hotspot._napari.layer_data import (  # noqa: F401 (EXTRA_KEY, colours: the dock's names)
    EXTRA_KEY,
    META_KEY,
    NEGATIVE_COLOR,
    POINTS_DELAY_MS,
    POSITIVE_COLOR,
    RESUME_KEY,
    ROLE_BOXES,
    ROLE_CLICKS,
    ROLE_GAZE,
    ROLE_HOTSPOTS,
    ROLE_MASKS,
    ROLE_TRACKS,
    TRACK_COLOR_KEY,
    TRACKS_DELAY_MS,
    PromptGroup,
    frame_source_for,
    hotspot_size,
    hotspot_table,
    lazy_label_volume,
    prompt_records,
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

            # loaded on the model thread: a model's first passes there build its kernels for later ones
            _shared_models = compute_thread().run(ModelBundle.load)
        return _shared_models


# ---------------------------------------------------------------------------- the controller
class HotspotController(EditsMixin, JobsMixin, ProjectMixin, QAMixin):
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
        self.lock = SessionLock()  # its run() does model work on the process's one model thread
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
        #: dock's settings edit it (``adapt_seconds``, ``adapt_max_steps``, ``complete_frames``,
        #: ``distractor_memory``, ``reacquire``, ``search_window``, ``hotspot_smoothing``).
        self.options = TrackingOptions(adapt_seconds=float(adapt_seconds)).with_(long_side=long_side)
        #: Called with no arguments to ask the user for a project folder (the widget sets a dialog).
        self.ask_project_path: Callable[[], str | None] | None = None
        self.last_error: Exception | None = None
        self._layers: dict[str, Any] = {}
        self._updating = 0
        self._muted = False
        self._dragging = False
        # Layer refreshes a moment after an edit, once its mask shows: the hotspots layer cost a click
        # ~80 ms, the tracks layer 0.1-0.4 s; never under a drag of a hotspot (its release commits).
        self._points_later = DeferredRefresh(self._refresh_points_if_shown, POINTS_DELAY_MS,
                                             hold=lambda: self._dragging)
        self._tracks_later = DeferredRefresh(self._refresh_tracks_if_shown, TRACKS_DELAY_MS)
        self._applied: dict[tuple[int, int], PromptGroup] = {}
        # Corrective clicks: per (frame, object), the mask the clicks refine (None: the clicks picked the
        # object on an empty frame), and each prompt's (store entry it wrote, group, base) so the clicks
        # on the layer follow undo and redo.
        self._click_bases: dict[tuple[int, int], np.ndarray | None] = {}
        # ... and each base's compressed form for the project file, with the base it was made from
        self._click_base_json: dict[tuple[int, int], tuple[np.ndarray, dict]] = {}
        self._prompt_history: dict[tuple[int, int], list[tuple[FrameAnnotation, PromptGroup, Any]]] = {}
        self._anchor_entries: dict[tuple[int, int], FrameAnnotation] = {}
        #: The running background jobs by kind (controller_jobs.Job: completion, adaptation, tracking, gaze).
        self._jobs: dict[str, Job] = {}
        self._keyed_layers: list = []  # the layers whose undo keys reach the store (`_make_layers`)
        self._encode_worker = None
        self._pending_encode: int | None = None
        # A click's or box's first mask waiting for its refinement (`_request_refinement`): per (object,
        # frame) the session, the prompt's token and the store entry the refined mask amends; the
        # refined prompts computed (under the lock, by the worker or `_finish_refinements`) by token.
        self._refine_worker = None
        self._refine_stop = threading.Event()  # set: the worker's refinement ends after its current pass
        self._refinements: dict[tuple[int, int], tuple[Any, int, FrameAnnotation]] = {}
        self._refined: dict[tuple[int, int, int], Any] = {}
        self._model_worker = None
        self._j_cache: dict[tuple[int, int], tuple[FrameAnnotation, float]] = {}
        self._objects_signature: tuple = ()
        self._drag_guards: dict[int, Callable] = {}
        #: The objects' adapted trackers: keyframes learnt, project records and files (Qt-free).
        self.adapted = AdaptedTrackers()
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
        adapt = self._jobs.get("adapt")
        return "track" in self._jobs or "complete" in self._jobs or (adapt is not None and adapt.then is not None)

    @property
    def busy(self) -> bool:
        """A propagation, gaze-prompt or completion job is running (edits are refused meanwhile)."""
        return any(kind in self._jobs for kind in ("track", "gaze", "complete"))

    @property
    def adapting(self) -> bool:
        """An adaptation job is running (prompts and corrections still work; runs, undo, deleting
        objects and switching videos wait for it)."""
        return "adapt" in self._jobs

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
        self._finish_refinements()  # the clicks' refined masks are what the autosave keeps
        self._hand_over()  # autosaves first
        self._detach()
        if layer is None:
            self.video_changed.emit()
            return
        source = frame_source_for(layer)
        T = int(getattr(source, "num_frames", None) or source.shape[0])
        H, W = (int(source.height), int(source.width)) if hasattr(source, "height") else source.shape[1:3]
        meta = layer_meta(layer)
        project = meta.get("project")
        # What a dock closed on this video (or a switch to another video) left: its saved folder, or, when
        # that save failed, the store itself. Taken once, so a later dock does not take it again. It is
        # newer than the project the video was opened from (a Save As since goes there too).
        resume = self._take_resume(layer, (T, H, W), getattr(source, "path", None) or meta.get("source"))
        if resume is not None and resume.get("folder"):
            project = resume["folder"]
        extra: dict = {}
        from_memory = resume is not None and resume.get("store") is not None
        if from_memory:
            store = resume["store"]
            self.project_path = Path(resume["project"]) if resume.get("project") else None
            states = resume.get("adaptation") or {}
            if states:  # the adapted trackers, restored once the session exists
                self.adapted.unrestored = (self.project_path or Path("."), {}, states, [])
        elif project:
            store, pmeta = load_project_quietly(project)  # adaptation problems: reported once the session exists
            if store.shape != (T, H, W):
                raise ProjectIOError(
                    f"project {project} is for a video of {store.shape} (frames, height, width) but layer "
                    f"{layer.name!r} is {(T, H, W)}"
                )
            # An autosave folder is not the user's project: Save still asks where (and autosaves go on there).
            if resume is not None:
                self.project_path = Path(resume["project"]) if resume.get("project") else None
            else:
                self.project_path = Path(project)
            extra = (pmeta.get("extra") or {}).get(EXTRA_KEY) or {}
            records = extra.get("adaptation")
            if isinstance(records, dict) and records:
                self.adapted.unrestored = (Path(project), records, pmeta["adaptation"],
                                           pmeta["adaptation_problems"])
        else:
            store = AnnotationStore(T, H, W)
        self.video_layer = layer
        self.store = store
        self._source = source
        names = meta.get("frame_names")
        self.frame_names = list(names) if names and len(names) == T else None
        self._applied = {}
        if from_memory:  # the same store: its prompts, their history and bases go on as they were
            for name in ("_applied", "_prompt_history", "_click_bases", "_click_base_json"):
                setattr(self, name, dict(resume.get(name) or {}))
        saved, problems = prompt_records(extra, T)
        for key, (group, record) in saved.items():
            self._applied[key] = group
            self._restore_correction(key, record)
        for problem in problems:  # those clicks are gone; every mask and the other prompts load
            self._report(ProjectIOError(problem), warning=True)
        store.events.connect(self._on_store_changed)
        self._objects_signature = tuple((o.id, o.name, o.color) for o in store.objects)
        self._make_layers()
        self._make_autosaver()
        if from_memory:  # that store's last save failed: it is still to be saved
            self.autosaver.mark_dirty()
        self.selected_id = store.object_ids[0] if store.object_ids else 0
        self._apply_selection()
        self.video_changed.emit()
        self.objects_changed.emit()
        self.annotations_changed.emit()
        self._make_session()

    def _hand_over(self) -> None:
        """Leave where this video's annotations are for the next dock that shows it (this dock closing, a
        switch to another video and back, the video layer removed and opened again): the folder its
        autosave (or Save) wrote, or, when that save fails, the store itself with its prompts and adapted
        trackers.
        Kept on the video layer and on the output layers a new video layer of the same name adopts.
        Without it a reopened dock started an empty store, emptied the adopted masks layer and
        autosaved that over the work."""
        if self.video_layer is None or self.store is None:
            return
        self.flush_autosave()
        if not self.store.object_ids and self.project_path is None:
            # nothing annotated and no project: a new dock starts empty, as this one did (not from an
            # autosave folder an earlier session left, which this dock never showed)
            return
        saved = self.autosaver is not None and not self.autosaver.dirty and self.autosaver.path.is_dir()
        video_path, _ = self._video_record()
        resume = {"folder": str(self.autosaver.path) if saved else None,
                  "project": None if self.project_path is None else str(self.project_path),
                  "shape": tuple(self.store.shape), "source": None if video_path is None else str(video_path)}
        if not saved:
            resume.update(store=self.store, adaptation=self._adaptation_states(),
                          **{name: dict(getattr(self, name)) for name in
                             ("_applied", "_prompt_history", "_click_bases", "_click_base_json")})
        for layer in (self.video_layer, self.layer(ROLE_MASKS)):
            if layer is not None:
                layer.metadata.setdefault(META_KEY, {})[RESUME_KEY] = resume

    def _adaptation_states(self) -> dict:
        """Each adapted object's tracker state, to go on in the next dock (the in-memory hand-over)."""
        if self.session is None:
            return {}
        with self.lock:
            return {oid: self.session.adaptation_state(oid) for oid in self.store.object_ids
                    if self.session.is_adapted(oid)}

    def _take_resume(self, layer, shape, source=None) -> dict | None:
        """The hand-over left for this video (`_hand_over`): on the layer itself, else on the masks layer of
        the same name it will adopt; taken once (from every layer that holds it). None when there is none,
        or it is for a video of another shape or another file (a different video of the same name: left
        where it is)."""
        holders = [layer] + [la for la in self.viewer.layers if la is not layer
                             and layer_meta(la).get("role") == ROLE_MASKS and layer_meta(la).get("video") == layer.name]
        resume = next((found for h in holders if isinstance(found := layer_meta(h).get(RESUME_KEY), dict)), None)
        if resume is None or tuple(resume.get("shape", ())) != tuple(shape):
            return None
        if resume.get("source") and source is not None and \
                Path(str(resume["source"])).resolve() != Path(str(source)).resolve():
            return None
        for holder in holders:
            if layer_meta(holder).get(RESUME_KEY) is resume:
                layer_meta(holder).pop(RESUME_KEY)
        if resume.get("folder") and not Path(resume["folder"]).is_dir():
            return None
        return resume

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
        self._click_base_json = {}
        self._prompt_history = {}
        self._anchor_entries = {}
        self._refinements = {}
        self._refined = {}
        self._j_cache = {}
        self.adapted.clear()
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
        self.adapted.learnt = {}
        self.ready_changed.emit(True)
        self.status.emit(f"ready: {self.video_layer.name}, {self.num_frames} frames")
        self._restore_adaptation()
        self._request_encode(self.current_frame)

    def _restore_adaptation(self) -> None:
        """Load the adapted trackers saved with the project (``AdaptedTrackers.restore``); a missing,
        corrupt or unfitting file gives a warning and leaves that object on the base model (its
        annotations are untouched)."""
        restored, project, problems = self.adapted.restore(self.session, self.store, self.lock)
        for oid in restored:
            self.adaptation_changed.emit(oid)
        if problems:
            self._report(ProjectIOError(adaptation_warning(project, problems)), warning=True)

    def _on_layer_removed(self, event) -> None:
        if event.value is not self.video_layer or self.video_layer is None:
            return
        if self._jobs:  # a run or gaze prompts stop at their next frame; the last end lets go (`_finish_job`)
            self._video_removed = True
            self.cancel()
            return
        self._drop_removed_video()

    def _drop_removed_video(self) -> None:
        """The video layer left the viewer: autosave what it had and leave the dock without a video."""
        self._video_removed = False
        self._finish_refinements()
        self._hand_over()  # autosaves first
        self._detach()
        self.video_changed.emit()
        self.objects_changed.emit()

    # ------------------------------------------------------------------ layers
    def _layer_meta(self, role: str) -> dict:
        return {META_KEY: {"role": role, "video": self.video_layer.name,
                           "project": None if self.project_path is None else str(self.project_path)}}

    def _find_layer(self, role: str):
        """An earlier output layer of this video: same video name, or (newest first) its project's."""
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

        # The ground-truth layer too: the dock places it over the masks, and with it selected napari's own
        # Labels undo took Ctrl+Z (nothing to undo there) instead of the dock's.
        gt = self.ground_truth_layer()
        self._keyed_layers = [masks] + ([gt] if gt is not None else [])
        bind_layer_keys(self._keyed_layers, self)
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
            if layer is self.layer(ROLE_HOTSPOTS):
                self._points_later.flush()  # napari is about to pick and move points: they must be the store's
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

    def _refresh_points(self, tracks: bool = True) -> None:
        """Rebuild the hotspots (and, with ``tracks``, the tracks) layer from the store."""
        self._points_later.cancel()  # a deferred refresh has nothing left to do
        hotspots = self.layer(ROLE_HOTSPOTS)
        data, features = hotspot_table(self.store)
        colors = {o.id: rgba(o.color) for o in self.store.objects}
        face = np.array([colors.get(int(i), (1, 1, 0, 1)) for i in features["object_id"]]).reshape(-1, 4)
        with self._updating_layers():
            if hotspots is not None:
                hotspots.data = data
                hotspots.features = features
                if len(data):
                    _set_colors(hotspots, "face_color", face)
                    symbols = np.where(features["keyframe"], "star", "disc")
                    if [str(s) for s in np.asarray(hotspots.symbol).reshape(-1)] != list(symbols):
                        hotspots.symbol = symbols
                hotspots.feature_defaults = {"object_id": self.selected_id, "confidence": np.nan,
                                             "source": Provenance.USER_CORRECTED.value, "keyframe": True}
                hotspots.current_face_color = colors.get(self.selected_id, (1, 1, 0, 1))
            if tracks:
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
            # (Each only when it changes: every setter redraws the layer, about 8 ms.)
            _set_current(clicks, "current_face_color", POSITIVE_COLOR if self.click_label > 0 else NEGATIVE_COLOR)
            _set_current(clicks, "current_border_color", colors.get(self.selected_id, (1, 1, 1, 1)))
            defaults = {"label": self.click_label, "object_id": self.selected_id}
            current = clicks.feature_defaults
            if list(current.columns) != list(defaults) or any(
                    len(current[k]) != 1 or current[k].iloc[0] != v for k, v in defaults.items()):
                clicks.feature_defaults = defaults
            if len(clicks.data):  # each click in the colour of its own label (set only when it changes:
                # each setter redraws the layer, about 8 ms)
                _set_colors(clicks, "face_color", [POSITIVE_COLOR if lb > 0 else NEGATIVE_COLOR for lb in labels])
                _set_colors(clicks, "border_color", [colors.get(int(i), (1, 1, 1, 1)) for i in ids])

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
            self._points_later.request()  # a click's mask shows first
            self._tracks_later.request()
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
        """Like ``_require_idle``, and no adaptation running either. What follows (a job, undo, a
        deletion) then starts from the prompts' refined masks (`_finish_refinements`)."""
        self._require_idle(what)
        if self.adapting:
            raise PromptError(f"cannot {what} while the tracker adapts; wait for it to end or cancel it")
        self._finish_refinements()

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
        if self.adapted.learnt.pop(obj_id, None) is not None and self.autosaver is not None:
            self.autosaver.mark_dirty()
        self.adaptation_changed.emit(obj_id)
        self._applied = {k: v for k, v in self._applied.items() if k[1] != obj_id}
        self._click_bases = {k: v for k, v in self._click_bases.items() if k[1] != obj_id}
        self._click_base_json = {k: v for k, v in self._click_base_json.items() if k[1] != obj_id}
        # _prompt_history stays: an undo of the deletion brings the masks back, and with them (matched by
        # entry, `_prompts_follow_store`) the clicks and boxes that made them.
        self._rebuild_prompt_layers(self._applied)

    def _ensure_object(self) -> int:
        """The selected object, adding "object 1" when there is none yet."""
        if self.selected_id and self.store.has_object(self.selected_id):
            return self.selected_id
        info = self.store.add_object()
        self.select_object(info.id)
        return info.id

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
            frames = sorted({t for _oid, t in touched})
            where = f" (frames {frames[0]}-{frames[-1]})" if len(frames) > 1 else f" (frame {frames[0]})" if frames else ""
            self.status.emit(("undid" if which == "undo" else "redid") + f" the last change{where}")
        return done

    def close(self) -> None:
        """Cancel work, autosave, and stop listening to the viewer (the widget is closing)."""
        self._closed = True  # a run asked for from here on (Track right after Cancel) does not start
        self.cancel()
        self.wait(30)  # let the workers end while their Qt signals still exist (deferred work runs too)
        self._hand_over()  # autosaves first
        if self.store is not None:  # a store handed over in memory goes on in the next dock, not here
            self.store.events.disconnect(self._on_store_changed)
        self._disconnect_layer_events()
        keyed = [la for la in self._keyed_layers if la is not None]
        if keyed:  # give the masks (and ground-truth) layers napari's own undo keys back
            from napari_hotspot._napari.keybindings import unbind_layer_keys

            unbind_layer_keys(keyed)
        try:
            self.viewer.dims.events.current_step.disconnect(self._on_frame_changed)
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        except (TypeError, RuntimeError, ValueError):
            pass


def _set_current(layer, name: str, color) -> None:
    """Set a layer's ``current_face_color`` or ``current_border_color`` unless it is that already."""
    from napari.utils.colormaps.standardize_color import transform_color

    wanted = transform_color(color)[0]
    # napari keeps the current colour as an 8-bit hex string: equal within half a step of 1/255
    if not np.allclose(transform_color(getattr(layer, name))[0], wanted, rtol=0, atol=0.5 / 255):
        setattr(layer, name, color)


def _set_colors(layer, name: str, colors) -> None:
    """Set a Points layer's per-point colours (``face_color``, ``border_color``) unless it shows them
    already: each setter redraws the layer."""
    wanted = np.asarray(colors, float).reshape(-1, 4)
    current = np.asarray(getattr(layer, name), float)
    if current.shape != wanted.shape or not np.allclose(current, wanted):
        setattr(layer, name, wanted)
