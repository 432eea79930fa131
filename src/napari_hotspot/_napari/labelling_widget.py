"""Dock widget for hotspot ground-truth labelling: keyframe protocol, several annotators, agreement, gaze.

A thin Qt layer over ``annotations.labelling`` (keyframe walk, derived frames, agreement),
``annotations.io_fixations`` (eye-tracker CSV, density map, gaze prompts) and
``annotations.io_hotspot_maps`` (benchmark export). It works from the viewer's layers: the video
(Image), an optional tracker hotspot Points layer (feature ``object_id``) and masks (Labels), and
runs its own ``HotspotSession`` when the tracker has to be run here.

While labelling, the proposal layer is the active layer: Enter accepts the proposed hotspot, a click
moves it (a drag pans as usual), N marks the object not visible, B goes back, G snaps to the
strongest gaze candidate.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_hotspot._napari.agreement_plot import annotator_colors, draw_agreement, fmt_number, fmt_point
from napari_hotspot._napari.layer_data import frame_source_for, hotspot_table
from napari_hotspot._napari.layout import WrappingLabel, vertical_scroll
from napari_hotspot._napari.layer_roles import best_layer_name, layer_rank
from napari_hotspot._napari.workers import ClosesWithDock, stop_workers
from napari_hotspot.annotations import io_fixations
from napari_hotspot.annotations.io_hotspot_maps import export_benchmark
from napari_hotspot.annotations.labelling import (
    DEFAULT_KEYFRAME_INTERVAL,
    KeyframeLabeller,
    anchor_on_first_masks,
    annotator_points,
    annotator_summary,
    frame_agreements,
    import_layer_data,
    keyframe_schedule,
    object_agreement,
    parse_frame_list,
    prompt_session_from_store,
    store_track_results,
    track_for_labelling,
)
from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.compute import OnModelThread, compute_thread
from napari_hotspot.errors import AnnotationError, HotspotError
from napari_hotspot.video.lazy_array import LazyFrameArray

NONE_ITEM = "(none)"
PROPOSAL_LAYER = "labelling: proposal"
LABELS_LAYER = "labelling: annotator hotspots"
TRACK_LAYER = "labelling: tracker hotspots"
MASKS_LAYER = "labelling: tracker masks"
FIXATIONS_LAYER = "fixations"
DENSITY_LAYER = "fixation density"
AGREEMENT_HEADERS = ("Frame", "Seen by", "Not visible", "Pairwise px", "Spread px", "PCK", "Consensus", "Outliers")
AGREEMENT_TIPS = {"Pairwise px": "mean distance between two annotators' points (px)",
                  "Spread px": "mean distance of the points from their consensus (px)",
                  "PCK": "share of points within the PCK radius of the consensus",
                  "Outliers": "annotators whose point is far from the consensus"}
# Proposal colours: the tracker's point, the annotator's earlier label, a point the annotator moved.
PROPOSAL_COLORS = {"tracker": "yellow", "label": "lime", "moved": "magenta"}


class LabellingWidget(ClosesWithDock, QWidget):
    """Hotspot labelling dock: setup, the keyframe pass, agreement and export (one tab each)."""

    def __init__(self, napari_viewer, store: AnnotationStore | None = None, session=None, models=None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.store: AnnotationStore | None = None
        self.session = session
        self._models = models
        self.labeller: KeyframeLabeller | None = None
        self.fixations: io_fixations.Fixations | None = None
        self.clock = time.monotonic  # tests replace it to control seconds_spent
        self._worker = None
        self._build_ui()
        self._chosen = set()  # the layer pickers the user has set: a refresh keeps their choice
        for combo in (self.video_combo, self.tracker_combo, self.masks_combo):
            combo.activated.connect(lambda _i, c=combo: self._chosen.add(c))
        if store is not None:
            self.set_store(store)
        self.viewer.layers.events.inserted.connect(self._refresh_layer_choices)
        self.viewer.layers.events.removed.connect(self._refresh_layer_choices)
        self._refresh_layer_choices()

    def shutdown(self) -> None:
        """Stop the tracker run (waiting for it to end) and stop following the viewer (idempotent)."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        stop_workers([self._worker])
        for name in ("inserted", "removed"):
            try:
                getattr(self.viewer.layers.events, name).disconnect(self._refresh_layer_choices)
            except (TypeError, RuntimeError, ValueError):
                pass

    # ================================================================== UI
    def _build_ui(self) -> None:
        self.tabs = QTabWidget()
        outer = QVBoxLayout(self)
        outer.addWidget(self.tabs)
        self.status = WrappingLabel("")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)

        # ---- setup: video, tracker pre-fill, gaze
        setup = QWidget()
        layout = QVBoxLayout(setup)
        box = QGroupBox("Video and tracker")
        form = QFormLayout(box)
        self.video_combo = QComboBox()
        self.tracker_combo = QComboBox()
        self.masks_combo = QComboBox()
        form.addRow("Video", self.video_combo)
        form.addRow("Tracker hotspots", self.tracker_combo)
        form.addRow("Masks", self.masks_combo)
        self.track_button = QPushButton("Run tracker (pre-fill)")
        self.track_button.setToolTip("Propagate the objects' keyframe masks (or gaze prompts) with the "
                                     "hotspot tracker; its hotspots become the proposals")
        self.track_button.clicked.connect(lambda: self.run_tracker())
        form.addRow(self.track_button)
        layout.addWidget(box)

        box = QGroupBox("Eye-gaze fixations")
        form = QFormLayout(box)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.01, 10000.0)
        self.fps_spin.setDecimals(3)
        self.fps_spin.setValue(24.0)
        self.offset_spin = QDoubleSpinBox()
        self.offset_spin.setRange(-1e7, 1e7)
        self.offset_spin.setDecimals(4)
        self.offset_spin.setSuffix(" s")
        self.unit_combo = QComboBox()
        self.unit_combo.addItems(["s", "ms", "us"])
        self.normalized_check = QCheckBox("x, y in [0, 1] of the frame")
        self.sigma_spin = QDoubleSpinBox()
        self.sigma_spin.setRange(0.0, 1000.0)
        self.sigma_spin.setSpecialValueText("auto")
        self.sigma_spin.setSuffix(" px")
        form.addRow("Video fps", self.fps_spin)
        form.addRow("Time offset", self.offset_spin)
        form.addRow("Time unit", self.unit_combo)
        form.addRow("Coordinates", self.normalized_check)
        form.addRow("Density sigma", self.sigma_spin)
        self.load_fix_button = QPushButton("Load fixations...")
        self.load_fix_button.clicked.connect(lambda: self.load_fixations())
        self.gaze_init_button = QPushButton("Object from gaze")
        self.gaze_init_button.setToolTip("Initialise a new object: prompt it with the fixations on the current frame")
        self.gaze_init_button.clicked.connect(lambda: self.init_object_from_gaze())
        form.addRow(self.load_fix_button)
        form.addRow(self.gaze_init_button)
        layout.addWidget(box)

        box = QGroupBox("Labels on disk (project folder)")
        row = QHBoxLayout(box)
        self.open_button = QPushButton("Open labels...")
        self.open_button.setToolTip("Load a project folder: objects, tracker track and every annotator's labels")
        self.open_button.clicked.connect(lambda: self.open_project())
        self.save_button = QPushButton("Save labels...")
        self.save_button.setToolTip("Save everything (all annotators) as a project folder")
        self.save_button.clicked.connect(lambda: self.save_project())
        row.addWidget(self.open_button)
        row.addWidget(self.save_button)
        layout.addWidget(box)
        layout.addStretch(1)
        self.tabs.addTab(vertical_scroll(setup), "1 Setup")

        # ---- the keyframe pass
        label_tab = QWidget()
        layout = QVBoxLayout(label_tab)
        box = QGroupBox("Keyframe protocol")
        form = QFormLayout(box)
        self.annotator_edit = QLineEdit()
        self.annotator_edit.setPlaceholderText("your annotator id, e.g. A1")
        self.every_spin = QSpinBox()
        self.every_spin.setRange(1, 100000)
        self.every_spin.setValue(DEFAULT_KEYFRAME_INTERVAL)
        self.extra_edit = QLineEdit()
        self.extra_edit.setPlaceholderText("extra keyframes, e.g. 5, 17, 30-33")
        form.addRow("Annotator", self.annotator_edit)
        form.addRow("Keyframe every", self.every_spin)
        form.addRow("Extra frames", self.extra_edit)
        self.start_button = QPushButton("Start labelling")
        self.start_button.clicked.connect(lambda: self.start_labelling())
        form.addRow(self.start_button)
        layout.addWidget(box)
        self.progress_label = WrappingLabel("not labelling")
        self.progress_label.setWordWrap(True)
        font = self.progress_label.font()
        font.setBold(True)
        self.progress_label.setFont(font)
        layout.addWidget(self.progress_label)
        grid = QGridLayout()  # three buttons a row: the dock fits napari's dock area on small screens
        self.accept_button = QPushButton("Accept (Enter)")
        self.not_visible_button = QPushButton("Not visible (N)")
        self.back_button = QPushButton("Back (B)")
        self.skip_button = QPushButton("Skip")
        self.gaze_button = QPushButton("Gaze (G)")
        for i, (button, slot) in enumerate(((self.accept_button, self.accept),
                                            (self.not_visible_button, self.mark_not_visible),
                                            (self.back_button, self.back), (self.skip_button, self.skip),
                                            (self.gaze_button, self.snap_to_gaze))):
            button.clicked.connect(lambda _=False, s=slot: s())
            grid.addWidget(button, i // 3, i % 3)
        layout.addLayout(grid)
        help_text = WrappingLabel(
            "Decide first which part of the object is salient, then mark that same part on every "
            "keyframe. Enter: accept the proposed point. Click: move it there (then Enter). "
            "N: object not visible. B: back one keyframe. G: use the strongest gaze cluster."
        )
        help_text.setWordWrap(True)
        layout.addWidget(help_text)
        self.summary_label = WrappingLabel("")
        self.summary_label.setWordWrap(True)
        layout.addWidget(self.summary_label)
        layout.addStretch(1)
        self.tabs.addTab(vertical_scroll(label_tab), "2 Label")

        # ---- agreement and export
        agree_tab = QWidget()
        layout = QVBoxLayout(agree_tab)
        row = QHBoxLayout()
        self.object_combo = QComboBox()
        self.object_combo.currentIndexChanged.connect(lambda _: self.refresh_agreement())
        self.derived_check = QCheckBox("include derived frames")
        self.derived_check.toggled.connect(lambda _: self.refresh_agreement())
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.refresh_agreement())
        row.addWidget(QLabel("Object"))
        row.addWidget(self.object_combo, 1)
        row.addWidget(refresh)
        layout.addLayout(row)
        layout.addWidget(self.derived_check)
        self.agreement_label = WrappingLabel("")
        self.agreement_label.setWordWrap(True)
        layout.addWidget(self.agreement_label)
        self.table = QTableWidget(0, len(AGREEMENT_HEADERS))
        self.table.setHorizontalHeaderLabels(AGREEMENT_HEADERS)
        self.table.verticalHeader().setVisible(False)
        # The columns share the dock's width (two-line headers, full text in the tooltips), so the
        # Outliers column is not cut off behind a sideways scroll bar.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(24)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        for col, title in enumerate(AGREEMENT_HEADERS):
            item = QTableWidgetItem(title.replace(" ", "\n", 1))
            item.setToolTip(AGREEMENT_TIPS.get(title, title))
            self.table.setHorizontalHeaderItem(col, item)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.cellDoubleClicked.connect(self._go_to_table_frame)
        layout.addWidget(self.table, 2)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.4), tight_layout=True)
        self.plot_canvas = FigureCanvasQTAgg(self.figure)
        self.plot_canvas.setMinimumHeight(170)
        layout.addWidget(self.plot_canvas, 1)
        box = QGroupBox("Export for benchmarks")
        form = QFormLayout(box)
        self.bit_combo = QComboBox()
        self.bit_combo.addItems(["8-bit PNG", "16-bit PNG"])
        self.map_sigma_spin = QDoubleSpinBox()
        self.map_sigma_spin.setRange(0.0, 1000.0)
        self.map_sigma_spin.setSpecialValueText("auto")
        self.map_sigma_spin.setSuffix(" px")
        self.export_button = QPushButton("Export hotspots and maps...")
        self.export_button.clicked.connect(lambda: self.export())
        form.addRow("Hotspot maps", self.bit_combo)
        form.addRow("Map sigma", self.map_sigma_spin)
        form.addRow(self.export_button)
        layout.addWidget(box)
        self.tabs.addTab(vertical_scroll(agree_tab), "3 Agreement and export")
        for combo in self.findChildren(QComboBox):  # a long layer name must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self._update_controls()

    def _message(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #ff7070;" if error else "")

    def _refresh_layer_choices(self, event=None) -> None:
        from napari.layers import Image, Labels, Points

        ours = {PROPOSAL_LAYER, LABELS_LAYER, FIXATIONS_LAYER, DENSITY_LAYER}
        for combo, kind, optional, role in ((self.video_combo, Image, False, "image"),
                                            (self.tracker_combo, Points, True, "points"),
                                            (self.masks_combo, Labels, True, "labels")):
            current = combo.currentText()
            layers = [layer for layer in self.viewer.layers if isinstance(layer, kind) and layer.name not in ours]
            names = [layer.name for layer in layers]
            combo.blockSignals(True)
            combo.clear()
            if optional:
                combo.addItem(NONE_ITEM)
            combo.addItems(names)
            best = best_layer_name(layers, role)
            if best is not None and optional and layer_rank(self.viewer.layers[best], role) == 2:
                best = None  # ground truth or clicks are never the default masks or hotspots
            if combo in self._chosen and combo.findText(current) >= 0:
                combo.setCurrentText(current)
            elif best is not None:  # nobody chose yet: the tracker's layer, not "(none)"
                combo.setCurrentText(best)
            elif current and combo.findText(current) >= 0:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        video = self._video_layer(required=False)
        if video is not None:
            fps = (video.metadata or {}).get("napari_hotspot", {}).get("fps")
            if fps and self.fixations is None:
                self.fps_spin.setValue(float(fps))

    def _layer(self, combo: QComboBox):
        name = combo.currentText()
        if not name or name == NONE_ITEM or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    def _video_layer(self, required: bool = True):
        layer = self._layer(self.video_combo)
        if layer is None and required:
            raise AnnotationError("open a video first (File > Open, or the sample video)")
        return layer

    def _update_controls(self) -> None:
        active = self.labeller is not None and not self.labeller.done
        for button in (self.accept_button, self.not_visible_button, self.skip_button, self.gaze_button):
            button.setEnabled(active)
        self.back_button.setEnabled(self.labeller is not None)

    # ================================================================== store and session
    def set_store(self, store: AnnotationStore) -> None:
        """Work on ``store`` (e.g. the main widget's), instead of one built from the layers."""
        if self.store is not None:
            self.store.events.disconnect(self._on_store_changed)
        self.store = store
        store.events.connect(self._on_store_changed)
        self._refresh_object_choices()

    def _on_store_changed(self, obj_id: int, frames: tuple[int, ...]) -> None:
        if obj_id not in [self.object_combo.itemData(i) for i in range(self.object_combo.count())]:
            self._refresh_object_choices()

    def _object_names(self) -> list[str]:
        video = self._video_layer(required=False)
        meta = (video.metadata or {}).get("napari_hotspot", {}) if video is not None else {}
        return list(meta.get("object_names", []))

    def ensure_store(self) -> AnnotationStore:
        """The store, built from the video layer's size when there is none yet."""
        if self.store is None:
            frames = frame_source_for(self._video_layer())
            self.set_store(AnnotationStore(frames.num_frames, frames.height, frames.width))
        return self.store

    def _add_object(self, obj_id: int) -> None:
        names = self._object_names()
        name = names[obj_id - 1] if 0 < obj_id <= len(names) else None
        self.store.add_object(name=name, obj_id=obj_id)

    def ensure_session(self):
        """This widget's HotspotSession on the video layer (created on first use)."""
        if self.session is None:
            from napari_hotspot._napari.controller import shared_models
            from napari_hotspot.session import HotspotSession

            if self._models is None:
                self._models = shared_models()  # the tracking dock's, if it loaded them
            # the tracking dock's frame source (video.frames): the same pixels whatever the layer's type
            self.session = HotspotSession(frame_source_for(self._video_layer()), models=self._models)
        return self.session

    def import_layers(self, frames: list[int] | None = None) -> None:
        """Copy the chosen tracker hotspots (main track) and reference masks into the store.

        Tracker points fill frames without a keyframe entry. The Masks layer is the reference for
        the object size that agreement is normalised by (and for the exported masks): at ``frames``
        (default: the keyframes) its masks replace the tracker's, but never a keyframe mask.
        """
        store = self.ensure_store()
        points = self._layer(self.tracker_combo)
        masks = self._layer(self.masks_combo)
        if frames is None:
            frames = keyframe_schedule(store.num_frames, self.every_spin.value(), self._extra_frames())
        coords = ids = None
        if points is not None and points.name != TRACK_LAYER:  # our own layer mirrors the store
            coords = np.asarray(points.data, dtype=float)
            if coords.ndim != 2 or coords.shape[1] != 3:
                raise AnnotationError(f"tracker layer {points.name!r} must hold (frame, y, x) points")
            features = points.features
            ids = np.asarray(features["object_id"], dtype=int) if "object_id" in features else None
        labels = masks.data if masks is not None and masks.name != MASKS_LAYER else None
        import_layer_data(store, frames, coords, ids, labels, add_object=self._add_object)

    def save_project(self, directory: str | Path | None = None) -> Path | None:
        """Save the store (objects, tracker track, every annotator's labels) as a project folder."""
        if self.store is None:
            self._message("nothing to save yet", error=True)
            return None
        if directory is None:
            directory = QFileDialog.getExistingDirectory(self, "Save labels into project folder")
            if not directory:
                return None
        from napari_hotspot.annotations.project import save_project

        try:
            path = save_project(self.store, directory)
        except HotspotError as err:
            self._message(str(err), error=True)
            return None
        self._message(f"saved the labels of {len(self.store.annotators())} annotator(s) to {path}")
        return path

    def open_project(self, directory: str | Path | None = None) -> AnnotationStore | None:
        """Load a project folder (its frame count and size must match the video layer)."""
        if directory is None:
            directory = QFileDialog.getExistingDirectory(self, "Open labels from project folder")
            if not directory:
                return None
        from napari_hotspot.annotations.project import load_project

        try:
            store, _meta = load_project(directory)
            video = self._video_layer(required=False)
            if video is not None:
                frames = frame_source_for(video)
                expected = (frames.num_frames, frames.height, frames.width)
                if store.shape != expected:
                    raise AnnotationError(
                        f"{directory} holds labels for {store.shape[0]} frames of {store.shape[2]}x{store.shape[1]}, "
                        f"but the video is {expected[0]} frames of {expected[2]}x{expected[1]}"
                    )
        except HotspotError as err:
            self._message(str(err), error=True)
            return None
        self.labeller = None
        self.set_store(store)
        self._update_controls()
        self._refresh_label_layer()
        self.refresh_agreement()
        self._message(f"opened {directory}: {len(store.objects)} object(s), annotators "
                      f"{', '.join(store.annotators()) or 'none yet'}")
        return store

    # ================================================================== tracker
    def run_tracker(self, block: bool = False) -> None:
        """Pre-fill: propagate every object with this widget's session; hotspots become proposals.

        Objects are anchored on the store's keyframe masks (gaze initialisation) or, failing that, on
        the first frame of each object in the chosen Masks layer. Runs in a worker thread unless
        ``block``; the store is only written on the main thread.
        """
        try:
            store = self.ensure_store()
            session = self.ensure_session()
            self._anchor_from_masks_layer(store, session)
            # the prompts' model work on the process's one model thread (napari_hotspot.compute); the
            # store, whose listeners update widgets, is written here
            ids = prompt_session_from_store(OnModelThread(session), store)
        except HotspotError as err:
            self._message(str(err), error=True)
            return
        total = len(ids) * store.num_frames

        def work():
            results = []
            steps = track_for_labelling(session, ids, store.num_frames)
            while (step := compute_thread().run(next, steps, None)) is not None:
                done, _total, result = step
                results.append(result)
                if done % 4 == 0:
                    yield done
            return results

        def finished(results) -> None:
            written = store_track_results(store, results)
            self._show_tracker_layers()
            self._message(f"tracker filled {written} frames of {len(ids)} object(s)")
            self.track_button.setEnabled(True)

        self.track_button.setEnabled(False)
        self._message("tracking...")
        if block:
            generator = work()
            try:
                while True:
                    next(generator)
            except StopIteration as stop:
                finished(stop.value)
            return
        from napari.qt.threading import create_worker

        self._worker = create_worker(work, _ignore_errors=True)  # errors go to the message line
        self._worker.yielded.connect(lambda done: self._message(f"tracking... {done}/{total}"))
        self._worker.returned.connect(finished)
        self._worker.errored.connect(lambda err: (self._message(f"tracking failed: {err}", error=True),
                                                  self.track_button.setEnabled(True)))
        self._worker.start()

    def _anchor_from_masks_layer(self, store: AnnotationStore, session) -> None:
        """Give each object of the chosen Masks layer that has no prompt yet a KEYFRAME mask on the
        first frame it appears in (that mask is what the tracker starts from)."""
        masks = self._layer(self.masks_combo)
        if masks is None or masks.name == MASKS_LAYER:
            return

        def anchored(obj_id: int) -> bool:
            if session.anchors(obj_id):
                return True
            return store.has_object(obj_id) and bool(store.object_keyframes(obj_id))

        anchor_on_first_masks(store, masks.data, anchored, add_object=self._add_object)

    def _show_tracker_layers(self) -> None:
        store = self.store
        data, table_features = hotspot_table(store)  # the tracking dock's hotspots layer data
        features = {"object_id": table_features["object_id"]}
        if TRACK_LAYER in self.viewer.layers:
            layer = self.viewer.layers[TRACK_LAYER]
            layer.data = data
            layer.features = features
        else:
            self.viewer.add_points(data, name=TRACK_LAYER, features=features, size=6, face_color="yellow",
                                   opacity=0.7)
        labels = LazyFrameArray(store.label_frame, store.num_frames, (store.height, store.width),
                                np.uint8 if max(store.object_ids, default=0) <= 255 else np.uint16,
                                name="tracker masks")
        if MASKS_LAYER in self.viewer.layers:
            self.viewer.layers[MASKS_LAYER].data = labels
        else:
            self.viewer.add_labels(labels, name=MASKS_LAYER, opacity=0.35)
        self._chosen.add(self.tracker_combo)  # its own run's proposals, over any other hotspots layer
        self._refresh_layer_choices()
        self.tracker_combo.setCurrentText(TRACK_LAYER)

    # ================================================================== gaze
    def _time_base(self) -> io_fixations.TimeBase:
        return io_fixations.TimeBase(self.fps_spin.value(), self.offset_spin.value(), self.unit_combo.currentText())

    def load_fixations(self, path: str | Path | None = None) -> io_fixations.Fixations | None:
        """Read a fixation CSV with the time base in the dock; show points and a density map."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open fixation CSV", "", "CSV files (*.csv *.tsv *.txt)")
            if not path:
                return None
        try:
            store = self.ensure_store()
            fixations = io_fixations.read_fixations_csv(
                path, self._time_base(), num_frames=store.num_frames, frame_size=(store.height, store.width),
                normalized=self.normalized_check.isChecked(),
            )
        except HotspotError as err:
            self._message(str(err), error=True)
            return None
        self.fixations = fixations
        self._show_fixations()
        dropped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in fixations.dropped.items() if v)
        text = (f"{len(fixations)} fixations of {len(fixations.observer_names)} observer(s) on "
                f"{len(fixations.frames_with_fixations())} frames")
        self._message(text + (f" (dropped: {dropped})" if dropped else ""))
        return fixations

    def _show_fixations(self) -> None:
        store, fixations = self.store, self.fixations
        features = {"observer": np.asarray(fixations.observers, dtype=object),
                    "duration": fixations.durations}
        if FIXATIONS_LAYER in self.viewer.layers:
            self.viewer.layers.remove(FIXATIONS_LAYER)
        if DENSITY_LAYER in self.viewer.layers:
            self.viewer.layers.remove(DENSITY_LAYER)
        sigma = self.sigma_spin.value() or None
        shape = (store.height, store.width)

        def density(frame: int) -> np.ndarray:
            xy, weights = fixations.select(frame)
            dens = io_fixations.fixation_density(xy, shape, sigma, weights)
            top = dens.max()
            return dens / top if top > 0 else dens  # shown peak-normalised per frame

        volume = LazyFrameArray(density, store.num_frames, shape, np.float32, name="fixation density")
        self.viewer.add_image(volume, name=DENSITY_LAYER, colormap="inferno", blending="additive", opacity=0.6,
                              contrast_limits=(0.0, 1.0))
        self.viewer.add_points(fixations.points_tyx(), name=FIXATIONS_LAYER, features=features, size=5,
                               face_color="cyan", border_color="black", opacity=0.8)

    def init_object_from_gaze(self, frame: int | None = None, obj_id: int | None = None):
        """Prompt an object with the fixations on ``frame`` (default: the current frame)."""
        if self.fixations is None:
            self._message("load fixations first", error=True)
            return None
        try:
            store = self.ensure_store()
            session = self.ensure_session()
            frame = int(self.viewer.dims.current_step[0]) if frame is None else int(frame)
            if obj_id is None:
                obj_id = max(store.object_ids, default=0) + 1
            if not store.has_object(obj_id):
                self._add_object(obj_id)
            result = io_fixations.init_object_from_gaze(OnModelThread(session), store, self.fixations, frame, obj_id)
        except HotspotError as err:
            self._message(str(err), error=True)
            return None
        self._show_tracker_layers()
        self._message(f"object {obj_id} initialised from gaze on frame {frame}: {int(result.mask.sum())} px, "
                      f"hotspot {fmt_point(result.hotspot)}; run the tracker to pre-fill the other frames")
        return result

    def snap_to_gaze(self) -> None:
        """Move the proposal to the strongest gaze cluster on the keyframe (inside the object mask
        when the store has one there)."""
        task = self.labeller.current if self.labeller else None
        if task is None or self.fixations is None:
            self._message("no fixations loaded" if self.fixations is None else "not labelling", error=True)
            return
        shape = (self.store.height, self.store.width)
        mask = self.store.mask(task.object_id, task.frame)
        candidates = io_fixations.hotspot_candidates(self.fixations, task.frame, shape, mask=mask)
        if not candidates and mask is not None:
            candidates = io_fixations.hotspot_candidates(self.fixations, task.frame, shape)
        if not candidates:
            self._message(f"no fixation on frame {task.frame}", error=True)
            return
        self.labeller.move(candidates[0].x, candidates[0].y)
        self._show_task()

    # ================================================================== labelling
    def _extra_frames(self) -> list[int]:
        num_frames = self.store.num_frames if self.store is not None else None
        return parse_frame_list(self.extra_edit.text(), num_frames)

    def start_labelling(self, annotator: str | None = None) -> KeyframeLabeller | None:
        """Start (or resume) the keyframe pass of the annotator named in the dock."""
        if annotator is not None:
            self.annotator_edit.setText(annotator)
        try:
            store = self.ensure_store()
            extra = self._extra_frames()
            self.import_layers(keyframe_schedule(store.num_frames, self.every_spin.value(), extra))
            labeller = KeyframeLabeller(store, self.annotator_edit.text(), every=self.every_spin.value(),
                                        extra_frames=extra, clock=self.clock)
        except HotspotError as err:
            self._message(str(err), error=True)
            return None
        self.labeller = labeller
        labeller.next_unlabelled()
        self._ensure_label_layers()
        self._show_task()
        self._refresh_object_choices()
        self.tabs.setCurrentIndex(1)
        self._message(f"{labeller.annotator}: {len(labeller.schedule)} keyframes per object "
                      f"({', '.join(map(str, labeller.schedule))}), {len(labeller.object_ids)} object(s)")
        return labeller

    def _ensure_label_layers(self) -> None:
        if LABELS_LAYER not in self.viewer.layers:
            self.viewer.add_points(np.zeros((0, 3)), name=LABELS_LAYER, size=7, face_color="white",
                                   features={"annotator": np.zeros(0, dtype=object),
                                             "object_id": np.zeros(0, dtype=int),
                                             "provenance": np.zeros(0, dtype=object)})
        if PROPOSAL_LAYER not in self.viewer.layers:
            layer = self.viewer.add_points(np.zeros((0, 3)), name=PROPOSAL_LAYER, size=13, symbol="cross",
                                           face_color="yellow", border_color="black", border_width=0.1)
            layer.mode = "pan_zoom"
            layer.mouse_drag_callbacks.append(self._on_click)
            layer.bind_key("Enter", lambda _layer: self.accept(), overwrite=True)
            layer.bind_key("n", lambda _layer: self.mark_not_visible(), overwrite=True)
            layer.bind_key("b", lambda _layer: self.back(), overwrite=True)
            layer.bind_key("g", lambda _layer: self.snap_to_gaze(), overwrite=True)
        self.viewer.layers.move(self.viewer.layers.index(LABELS_LAYER), len(self.viewer.layers) - 1)
        self.viewer.layers.move(self.viewer.layers.index(PROPOSAL_LAYER), len(self.viewer.layers) - 1)
        self.viewer.layers.selection.active = self.viewer.layers[PROPOSAL_LAYER]

    def _on_click(self, layer, event):
        """Click (press and release without dragging) moves the proposal; a drag pans as usual."""
        if event.type != "mouse_press" or self.labeller is None or self.labeller.done:
            return
        start = np.asarray(event.position, dtype=float)
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if dragged:
            return
        task = self.labeller.current
        frame, y, x = start[-3], start[-2], start[-1]
        if int(round(frame)) != task.frame:
            self.viewer.dims.set_current_step(0, task.frame)
            self._message(f"the keyframe is frame {task.frame}; click again", error=True)
            return
        self.move_to(x, y)

    def move_to(self, x: float, y: float) -> None:
        """Move the proposal on the current keyframe to (x, y) (what a click does)."""
        if self.labeller is None or self.labeller.done:
            return
        try:
            self.labeller.move(x, y)
        except HotspotError as err:
            self._message(str(err), error=True)
            return
        self._show_task()

    def accept(self) -> None:
        self._act(lambda labeller: labeller.accept())

    def mark_not_visible(self) -> None:
        self._act(lambda labeller: labeller.mark_not_visible())

    def skip(self) -> None:
        self._act(lambda labeller: labeller.skip())

    def back(self) -> None:
        self._act(lambda labeller: labeller.back(), require_task=False)

    def _act(self, action, require_task: bool = True) -> None:
        if self.labeller is None or (require_task and self.labeller.done):
            return
        try:
            action(self.labeller)
        except HotspotError as err:
            self._message(str(err), error=True)
            return
        self._message("")
        self._show_task()
        self.refresh_agreement()

    def _show_task(self) -> None:
        labeller = self.labeller
        self._update_controls()
        self._refresh_label_layer()
        layer = self.viewer.layers[PROPOSAL_LAYER] if PROPOSAL_LAYER in self.viewer.layers else None
        summary = annotator_summary(self.store, labeller.annotator)
        keyframes = set(labeller.schedule)
        per_object = "; ".join(
            f"{self.store.get_object(obj_id).name}: {len(keyframes & set(labeller.labelled_keyframes(obj_id)))} "
            f"of {len(keyframes)} keyframes" for obj_id in labeller.object_ids
        )
        self.summary_label.setText(
            f"{labeller.annotator}: {summary['keyframes']} keyframes labelled ({summary['moved']} moved, "
            f"{summary['not_visible']} not visible), {summary['derived']} derived frames, "
            f"{fmt_number(summary['seconds_per_keyframe'], '.1f')} s per keyframe. Done: {per_object}"
        )
        task = labeller.current
        if task is None:
            self.progress_label.setText(labeller.progress_text())
            if layer is not None:
                layer.data = np.zeros((0, 3))
            return
        self.progress_label.setText(labeller.progress_text())
        self.viewer.dims.set_current_step(0, task.frame)
        proposal = labeller.proposal()
        if layer is None:
            return
        if proposal is None:
            layer.data = np.zeros((0, 3))
            own = labeller.own_label(task.object_id, task.frame)
            if own is not None and own.provenance != Provenance.DERIVED:
                self.progress_label.setText(labeller.progress_text() + " - marked not visible")
            else:
                self.progress_label.setText(labeller.progress_text() + " - no tracker hotspot: click the "
                                            "salient part or press N")
            return
        own = labeller.own_label(task.object_id, task.frame)
        if labeller.pending is not None:
            color = PROPOSAL_COLORS["moved"]
        elif own is not None and own.provenance != Provenance.DERIVED:
            color = PROPOSAL_COLORS["label"]
        else:
            color = PROPOSAL_COLORS["tracker"]
        layer.data = np.array([[task.frame, proposal.y, proposal.x]], dtype=float)
        layer.face_color = color
        layer.selected_data = set()

    def _refresh_label_layer(self) -> None:
        if LABELS_LAYER not in self.viewer.layers or self.store is None:
            return
        rows, features = annotator_points(self.store)
        layer = self.viewer.layers[LABELS_LAYER]
        layer.data = rows
        layer.features = {k: v for k, v in features.items() if k != "derived"}
        if len(rows):
            layer.size = np.where(features["derived"], 4.0, 8.0)
            palette = annotator_colors(self.store.annotators())
            layer.face_color = np.array([palette[n] for n in features["annotator"]])

    def _go_to_table_frame(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.viewer.dims.set_current_step(0, int(item.text()))

    # ================================================================== agreement
    def _refresh_object_choices(self) -> None:
        if self.store is None:
            return
        current = self.object_combo.currentData()
        self.object_combo.blockSignals(True)
        self.object_combo.clear()
        for info in self.store.objects:
            self.object_combo.addItem(f"{info.id}: {info.name}", info.id)
        index = self.object_combo.findData(current)
        self.object_combo.setCurrentIndex(max(index, 0))
        self.object_combo.blockSignals(False)

    def agreement_rows(self, obj_id: int | None = None):
        """Frame agreements of the selected object (what the table shows)."""
        if self.store is None:
            return []
        obj_id = self.object_combo.currentData() if obj_id is None else obj_id
        if obj_id is None or not self.store.has_object(obj_id):
            return []
        return frame_agreements(self.store, obj_id, include_derived=self.derived_check.isChecked())

    def refresh_agreement(self) -> None:
        """Fill the agreement table and plot for the selected object."""
        rows = self.agreement_rows()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            cells = (
                str(row.frame), ", ".join(row.annotators), ", ".join(row.not_visible),
                fmt_number(row.mean_pairwise_px, ".1f"), fmt_number(row.spread_px, ".1f"),
                fmt_number(row.pck, ".2f"), fmt_point(row.consensus), ", ".join(row.outliers),
            )
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 7 and text:
                    item.setForeground(Qt.red)
                self.table.setItem(i, j, item)
        obj_id = self.object_combo.currentData()
        if rows and obj_id is not None:
            try:
                seq = object_agreement(self.store, obj_id, include_derived=self.derived_check.isChecked())
                self.agreement_label.setText(
                    f"{len(seq['annotators'])} annotator(s), {seq['n_frames']} frames compared: mean pairwise "
                    f"{fmt_number(seq['mean_pairwise_px'], '.1f')} px "
                    f"({fmt_number(seq['mean_pairwise_norm'], '.3f')} of object size), spread "
                    f"{fmt_number(seq['spread_px'], '.1f')} px, PCK@0.1 {fmt_number(seq['pck'], '.2f')}"
                )
            except HotspotError as err:
                self.agreement_label.setText(str(err))
        else:
            self.agreement_label.setText("no labels for this object yet")
        self._plot(rows)

    def _plot(self, rows) -> None:
        draw_agreement(self.figure, rows)
        self.plot_canvas.draw_idle()

    # ================================================================== export
    def export(self, directory: str | Path | None = None):
        """Write per-annotator and consensus hotspots, agreement and hotspot maps into ``directory``."""
        if directory is None:
            directory = QFileDialog.getExistingDirectory(self, "Export hotspots and maps to")
            if not directory:
                return None
        if self.store is None:
            self._message("nothing to export yet", error=True)
            return None
        try:
            result = export_benchmark(
                self.store, directory, include_derived=self.derived_check.isChecked(),
                sigma=self.map_sigma_spin.value() or None,
                bit_depth=16 if self.bit_combo.currentIndex() == 1 else 8,
            )
        except HotspotError as err:
            self._message(str(err), error=True)
            return None
        self._message(f"exported {len(self.store.annotators())} annotator(s) and maps of "
                      f"{len(result.map_dirs)} object(s) to {result.root}")
        return result


__all__ = ["LabellingWidget"]
