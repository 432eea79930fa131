"""The "Reframe video" dock widget: preview a crop path as t-indexed rectangles, edit it by dragging
keyframes, render the reframed video in a thread worker (thin Qt layer over ``napari_hotspot.reframe``).

Inputs are the layers the tracking widget produces: an RGB Image layer (the video), a Labels layer
whose values are object ids, and a hotspot Points layer with data ``(t, y, x)`` and an ``object_id``
feature. Either Labels or Points may be missing (then only hotspots, or masks' deepest points, are
used). The preview is a Shapes layer "reframe window" with one rectangle per frame; dragging or
resizing a rectangle (select mode) turns that frame into a keyframe the path must pass through, and
the path is re-planned.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_hotspot._napari.layer_roles import best_layer_name
from napari_hotspot._napari.workers import ClosesWithDock, stop_workers
from napari_hotspot.errors import HotspotError
from napari_hotspot.reframe.path import MODES, CropPath, Keyframe, ReframeConfig, parse_aspect, plan_crop_path
from napari_hotspot.reframe.tracks import (
    ObjectTrack,
    hotspots_from_points,
    label_object_ids,
    track_from_masks,
    tracks_from_labels,
)

WINDOW_LAYER = "reframe window"
NONE = "(none)"
ASPECTS = ("9:16", "1:1", "4:5", "16:9", "4:3", "2.39:1")


def _rgb_frame(data, t: int) -> np.ndarray:
    frame = np.asarray(data[t])
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.dtype != np.uint8:
        lo, hi = float(frame.min()), float(frame.max())
        frame = ((frame - lo) / (hi - lo + 1e-12) * 255).astype(np.uint8)
    return frame[..., :3]


def _plan_job(frames_data, num_frames: int, tracks, frame_size, config, keyframes, detect_cuts, known_cuts):
    """Worker body: detect cuts (once per video) and plan the path. Returns (path, cuts)."""
    from napari_hotspot.reframe.shots import detect_cuts_in_frames

    cuts = known_cuts
    if cuts is None:
        cuts = detect_cuts_in_frames(_rgb_frame(frames_data, t) for t in range(num_frames)) if detect_cuts else []
    return plan_crop_path(tracks, frame_size, config, cuts, keyframes), cuts


def _render_job(frames, path, out_path, fps, audio_from, tracks):
    """Worker body (generator): render, yielding (done, total); writes and returns the report dict."""
    from napari_hotspot.reframe.cli import write_report
    from napari_hotspot.reframe.metrics import reframe_report
    from napari_hotspot.reframe.render import render_steps

    summary = yield from render_steps(frames, path, out_path, None, fps, audio_from)
    report = reframe_report(path.centers, path.heights, path.aspect, path.frame_size, tracks, path.cuts)
    report.update({"out": str(out_path), "frames": summary["frames"],
                   "output_size": [summary["width"], summary["height"]], "fps": summary["fps"],
                   "audio": summary["audio"], "shots": [s.as_dict() for s in path.shots],
                   "windows": [[round(float(v), 3) for v in row] for row in path.windows]})
    write_report(report, Path(out_path).with_suffix(".json"))
    return report


class ReframeWidget(ClosesWithDock, QWidget):
    """Dock widget: pick video, objects, aspect, zoom and camera mode; preview, keyframe, render."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.path: CropPath | None = None
        self.keyframes: dict[int, Keyframe] = {}
        self.report: dict | None = None
        self.worker = None  # the running plan/render worker, for tests and cancellation
        self._tracks: list[ObjectTrack] | None = None
        self._cuts: list[int] | None = None
        self._cuts_for: int | None = None  # id of the image data the cuts belong to
        self._updating_layer = False
        self._build_ui()
        self._chosen = set()  # the pickers the user has set: a refresh keeps their choice
        for combo in (self.image_combo, self.labels_combo, self.points_combo):
            combo.activated.connect(lambda _i, c=combo: self._chosen.add(c))
        self.viewer.layers.events.inserted.connect(self.refresh_layers)
        self.viewer.layers.events.removed.connect(self.refresh_layers)
        self.refresh_layers()

    def shutdown(self) -> None:
        """Stop a planning or rendering job (waiting for it to end) and stop following the viewer (idempotent)."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        stop_workers([self.worker])
        for name in ("inserted", "removed"):
            try:
                getattr(self.viewer.layers.events, name).disconnect(self.refresh_layers)
            except (TypeError, RuntimeError, ValueError):
                pass

    # ------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self.image_combo = QComboBox()
        self.labels_combo = QComboBox()
        self.points_combo = QComboBox()
        self.objects_list = QListWidget()
        self.objects_list.setDragDropMode(QAbstractItemView.InternalMove)
        self.objects_list.setToolTip("Objects to keep in view; drag to reorder, the top one has priority")
        self.objects_list.setMaximumHeight(110)
        refresh_objects = QPushButton("Find objects")
        refresh_objects.clicked.connect(self.refresh_objects)
        self.aspect_combo = QComboBox()
        self.aspect_combo.setEditable(True)
        self.aspect_combo.addItems(ASPECTS)
        self.zoom_spin = QDoubleSpinBox()
        self.zoom_spin.setRange(1.0, 8.0)
        self.zoom_spin.setSingleStep(0.1)
        self.zoom_spin.setValue(1.0)
        self.auto_zoom = QCheckBox("auto (frame the masks)")
        self.auto_zoom.toggled.connect(lambda on: self.zoom_spin.setEnabled(not on))
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(MODES)
        self.detect_cuts = QCheckBox("detect shot cuts")
        self.detect_cuts.setChecked(True)
        self.live = QCheckBox("re-plan when a window is dragged")
        self.live.setChecked(True)
        self.preview_button = QPushButton("Preview crop path")
        self.preview_button.clicked.connect(lambda: self.compute_path())
        self.keyframe_button = QPushButton("Keyframe = window on this frame")
        self.keyframe_button.clicked.connect(self.keyframe_from_current_frame)
        self.clear_button = QPushButton("Clear keyframes")
        self.clear_button.clicked.connect(self.clear_keyframes)
        self.keyframe_label = QLabel("no keyframes")
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("output .mp4")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        self.render_button = QPushButton("Render")
        self.render_button.clicked.connect(lambda: self.render())
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("video", self.image_combo)
        form.addRow("masks", self.labels_combo)
        form.addRow("hotspots", self.points_combo)
        objects_row = QVBoxLayout()
        objects_row.addWidget(self.objects_list)
        objects_row.addWidget(refresh_objects)
        form.addRow("objects", objects_row)
        form.addRow("aspect W:H", self.aspect_combo)
        zoom_row = QHBoxLayout()
        zoom_row.addWidget(self.zoom_spin)
        zoom_row.addWidget(self.auto_zoom)
        form.addRow("zoom", zoom_row)
        form.addRow("camera", self.mode_combo)
        form.addRow("", self.detect_cuts)
        form.addRow("", self.live)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit)
        out_row.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview_button)
        key_row = QHBoxLayout()
        key_row.addWidget(self.keyframe_button)
        key_row.addWidget(self.clear_button)
        layout.addLayout(key_row)
        layout.addWidget(self.keyframe_label)
        layout.addLayout(out_row)
        layout.addWidget(self.render_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _browse(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Reframed video", self.out_edit.text() or "reframed.mp4",
                                              "Video (*.mp4 *.mov *.mkv)")
        if name:
            self.out_edit.setText(name)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #e06060" if error else "")
        if error:
            from napari.utils.notifications import show_error

            show_error(text)

    # ------------------------------------------------------------------------------ layers
    def _layers(self, kind: str) -> list:
        import napari.layers as nl

        cls = {"image": nl.Image, "labels": nl.Labels, "points": nl.Points}[kind]
        return [layer for layer in self.viewer.layers if isinstance(layer, cls)]

    def refresh_layers(self, event=None) -> None:
        """Refill the layer pickers, keeping the current choices when they still exist."""
        for combo, kind, optional in ((self.image_combo, "image", False), (self.labels_combo, "labels", True),
                                      (self.points_combo, "points", True)):
            current = combo.currentText()
            names = [layer.name for layer in self._layers(kind)]
            if kind == "points":
                names = [n for n in names if n != WINDOW_LAYER]
            combo.blockSignals(True)
            combo.clear()
            if optional:
                combo.addItem(NONE)
            combo.addItems(names)
            if current in names and combo in self._chosen:
                combo.setCurrentText(current)
            else:  # nobody chose yet: the tracker's layer (not ground truth, clicks or "(none)")
                best = best_layer_name([la for la in self._layers(kind) if la.name in names], kind)
                if best is not None:
                    combo.setCurrentText(best)
            combo.blockSignals(False)
        if self.objects_list.count() == 0:
            self.refresh_objects()

    def _layer(self, combo: QComboBox):
        name = combo.currentText()
        if not name or name == NONE or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    def _video(self):
        layer = self._layer(self.image_combo)
        if layer is None:
            raise HotspotError("pick the video: no Image layer is selected")
        shape = layer.data.shape
        if not ((layer.rgb and len(shape) == 4) or (not layer.rgb and len(shape) == 3)):
            raise HotspotError(f"layer {layer.name!r} is not a video: expected (T, H, W[, 3]) data, got {shape}")
        return layer, int(shape[0]), (int(shape[1]), int(shape[2]))

    def refresh_objects(self) -> None:
        """List the object ids found in the Points features and the Labels layer (all checked)."""
        ids: set[int] = set()
        points = self._layer(self.points_combo)
        if points is not None and "object_id" in points.features:
            ids.update(int(v) for v in np.unique(points.features["object_id"]))
        labels = self._layer(self.labels_combo)
        if labels is not None and labels.data.ndim == 3:
            n = labels.data.shape[0]
            frames = range(n) if n <= 300 else np.linspace(0, n - 1, 30).astype(int)
            ids.update(label_object_ids(labels.data, frames))
        previous = {int(self.objects_list.item(i).text()): self.objects_list.item(i).checkState()
                    for i in range(self.objects_list.count())}
        order = [i for i in previous if i in ids] + sorted(ids - set(previous))
        self.objects_list.clear()
        for oid in order:
            item = QListWidgetItem(str(oid))
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(previous.get(oid, Qt.Checked))
            self.objects_list.addItem(item)

    def object_ids(self) -> list[int]:
        """Checked objects, priority (list) order."""
        return [int(self.objects_list.item(i).text()) for i in range(self.objects_list.count())
                if self.objects_list.item(i).checkState() == Qt.Checked]

    def config(self) -> ReframeConfig:
        zoom = None if self.auto_zoom.isChecked() else float(self.zoom_spin.value())
        return ReframeConfig(aspect=parse_aspect(self.aspect_combo.currentText()), zoom=zoom,
                             mode=self.mode_combo.currentText())

    def collect_tracks(self, num_frames: int, frame_size: tuple[int, int]) -> list[ObjectTrack]:
        """Object tracks from the Labels / Points layers for the checked objects."""
        ids = self.object_ids()
        if not ids:
            raise HotspotError("no object selected: check at least one object (press 'Find objects')")
        points = self._layer(self.points_combo)
        labels = self._layer(self.labels_combo)
        if points is None and labels is None:
            raise HotspotError("pick a Labels layer (masks) and/or a Points layer (hotspots)")
        hotspots = {}
        if points is not None:
            pid = np.asarray(points.features["object_id"]) if "object_id" in points.features else None
            data = np.asarray(points.data)
            if data.ndim != 2 or data.shape[1] != 3:
                raise HotspotError(f"hotspot layer {points.name!r} must hold (t, y, x) points, got shape {data.shape}")
            hotspots = {oid: hotspots_from_points(data, pid, oid, num_frames) for oid in ids}
        if labels is not None:
            if tuple(labels.data.shape) != (num_frames, *frame_size):
                raise HotspotError(f"mask layer {labels.name!r} has shape {tuple(labels.data.shape)}, the video is "
                                   f"{(num_frames, *frame_size)}")
            return tracks_from_labels(labels.data, ids, hotspots)
        return [track_from_masks(oid, [None] * num_frames, hotspots[oid], frame_size) for oid in ids]

    # ------------------------------------------------------------------------------ planning
    def compute_path(self, keep_keyframes: bool = True):
        """Plan the crop path in a worker thread; the preview layer updates when it returns."""
        from napari.qt.threading import create_worker

        try:
            layer, num_frames, frame_size = self._video()
            config = self.config()
            self._tracks = self.collect_tracks(num_frames, frame_size)
        except HotspotError as exc:
            self._set_status(str(exc), error=True)
            return None
        if not keep_keyframes:
            self.keyframes.clear()
        data_id = id(layer.data)
        known_cuts = self._cuts if self._cuts_for == data_id and self.detect_cuts.isChecked() else None
        self._set_status("planning the crop path…")
        self.preview_button.setEnabled(False)
        worker = create_worker(_plan_job, layer.data, num_frames, self._tracks, frame_size, config,
                               list(self.keyframes.values()), self.detect_cuts.isChecked(), known_cuts,
                               _start_thread=False, _ignore_errors=True)  # errors go to the status line
        # Bound methods, not lambdas: Qt drops them if the widget is closed while the worker runs.
        self._planning_data_id = data_id
        worker.returned.connect(self._on_planned)
        worker.errored.connect(self._on_plan_error)
        worker.finished.connect(self._on_plan_finished)
        self.worker = worker
        worker.start()
        return worker

    def _on_plan_error(self, exc) -> None:
        self._set_status(f"planning failed: {exc}", error=True)

    def _on_plan_finished(self) -> None:
        self.preview_button.setEnabled(True)

    def _on_planned(self, result) -> None:
        path, cuts = result
        if self.detect_cuts.isChecked():
            self._cuts, self._cuts_for = cuts, self._planning_data_id
        self.path = path
        self.show_path(path)
        modes = "; ".join(f"{s.start}-{s.stop - 1}: {s.mode_x}/{s.mode_y}" for s in path.shots)
        notes = [n for s in path.shots for n in s.notes]
        self._set_status(f"{len(path.shots)} shot(s) ({modes})" + ("\n" + "\n".join(notes) if notes else ""))

    def window_rectangles(self, path: CropPath) -> list[np.ndarray]:
        """One (4, 3) rectangle of (t, y, x) vertices per frame."""
        rects = []
        for t in range(path.num_frames):
            x0, y0, x1, y1 = path.box(t)
            rects.append(np.array([[t, y0, x0], [t, y0, x1], [t, y1, x1], [t, y1, x0]], dtype=float))
        return rects

    def show_path(self, path: CropPath) -> None:
        """Put the path in the "reframe window" Shapes layer (created on first use)."""
        rects = self.window_rectangles(path)
        self._updating_layer = True
        try:
            if WINDOW_LAYER in self.viewer.layers:
                layer = self.viewer.layers[WINDOW_LAYER]
                layer.data = rects
                layer.shape_type = ["rectangle"] * len(rects)
            else:
                layer = self.viewer.add_shapes(rects, shape_type="rectangle", name=WINDOW_LAYER, edge_color="yellow",
                                               face_color="transparent", edge_width=3)
                layer.events.data.connect(self._on_window_edited)
            layer.edge_color = ["magenta" if t in self.keyframes else "yellow" for t in range(path.num_frames)]
            layer.mode = "select"
        finally:
            self._updating_layer = False
        self._update_keyframe_label()

    # ------------------------------------------------------------------------------ keyframes
    def _keyframe_from_rect(self, rect: np.ndarray) -> Keyframe:
        t = int(round(float(rect[:, 0].mean())))
        y0, x0 = rect[:, 1].min(), rect[:, 2].min()
        y1, x1 = rect[:, 1].max(), rect[:, 2].max()
        bh, bw = y1 - y0, x1 - x0
        height = 0.5 * (bh + bw / self.path.aspect)
        keep_zoom = abs(height - self.path.heights[t]) < 1.0
        return Keyframe(t, float((x0 + x1) / 2), float((y0 + y1) / 2), None if keep_zoom else float(height))

    def _on_window_edited(self, event) -> None:
        if self._updating_layer or self.path is None or str(getattr(event, "action", "changed")) != "changed":
            return
        layer = self.viewer.layers[WINDOW_LAYER]
        changed = []
        for rect in layer.data:
            rect = np.asarray(rect)
            if rect.shape != (4, 3):
                continue
            t = int(round(float(rect[:, 0].mean())))
            if not 0 <= t < self.path.num_frames:
                continue
            planned = self.path.box(t)
            now = (rect[:, 2].min(), rect[:, 1].min(), rect[:, 2].max(), rect[:, 1].max())
            if max(abs(a - b) for a, b in zip(planned, now)) > 0.5:
                self.keyframes[t] = self._keyframe_from_rect(rect)
                changed.append(t)
        if changed:
            self._update_keyframe_label()
            if self.live.isChecked():
                self.compute_path()

    def keyframe_from_current_frame(self) -> None:
        """Make the window shown on the current frame a keyframe (after moving it by hand)."""
        if self.path is None or WINDOW_LAYER not in self.viewer.layers:
            self._set_status("preview a crop path first", error=True)
            return
        t = int(self.viewer.dims.current_step[0])
        for rect in self.viewer.layers[WINDOW_LAYER].data:
            rect = np.asarray(rect)
            if rect.shape == (4, 3) and int(round(float(rect[:, 0].mean()))) == t:
                self.keyframes[t] = self._keyframe_from_rect(rect)
                self._update_keyframe_label()
                self.compute_path()
                return
        self._set_status(f"no window on frame {t}", error=True)

    def clear_keyframes(self) -> None:
        self.keyframes.clear()
        self._update_keyframe_label()
        if self.path is not None:
            self.compute_path()

    def _update_keyframe_label(self) -> None:
        frames = sorted(self.keyframes)
        self.keyframe_label.setText(f"keyframes: {', '.join(map(str, frames))}" if frames else "no keyframes")

    # ------------------------------------------------------------------------------ render
    def render(self, out_path: str | None = None):
        """Render the previewed path to ``out_path`` (or the path in the text box) in a worker thread;
        also writes the JSON report next to it."""
        from napari.qt.threading import create_worker

        from napari_hotspot.video import open_source

        out = out_path or self.out_edit.text().strip()
        if not out:
            self._set_status("choose an output file first", error=True)
            return None
        if self.path is None or self._tracks is None:
            self._set_status("preview a crop path first", error=True)
            return None
        layer, num_frames, frame_size = self._video()
        meta = (layer.metadata or {}).get("napari_hotspot", {})
        fps = meta.get("fps")
        source_path = meta.get("source")
        frames = None
        audio_from = None
        if source_path and Path(source_path).exists():
            try:
                src = open_source(source_path)
                if src.num_frames == num_frames and (src.height, src.width) == frame_size:
                    frames = src.iter_frames()
                    audio_from = source_path if Path(source_path).is_file() else None
            except HotspotError:
                frames = None
        if frames is None:
            frames = (_rgb_frame(layer.data, t) for t in range(num_frames))
        self.progress.setRange(0, num_frames)
        self.progress.setValue(0)
        self.render_button.setEnabled(False)
        self._set_status(f"rendering {out}…")
        worker = create_worker(_render_job, frames, self.path, out, fps, audio_from, self._tracks,
                               _start_thread=False, _ignore_errors=True)  # errors go to the status line
        worker.yielded.connect(self._on_render_progress)
        worker.returned.connect(self._on_rendered)
        worker.errored.connect(self._on_render_error)
        worker.finished.connect(self._on_render_finished)
        self.worker = worker
        worker.start()
        return worker

    def _on_render_progress(self, item: tuple[int, int]) -> None:
        self.progress.setValue(item[0])

    def _on_render_error(self, exc) -> None:
        self._set_status(f"rendering failed: {exc}", error=True)

    def _on_render_finished(self) -> None:
        self.render_button.setEnabled(True)

    def _on_rendered(self, report: dict) -> None:
        self.report = report
        self._set_status(
            f"wrote {report['out']} ({report['output_size'][0]}x{report['output_size'][1]}, "
            f"{report['frames']} frames); "
            f"hotspot in window {report['hotspot_in_window']:.1%}, jerk {report['jerk']:.3f} vs naive "
            f"{report['baseline']['jerk']:.3f}")

    def report_json(self) -> str:
        return json.dumps(self.report, indent=1) if self.report else ""
