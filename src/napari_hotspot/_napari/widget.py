"""The "Hotspot tracking" dock widget: a thin Qt shell over HotspotController (the npe2 widget).

Sections: video and objects (prompt tools), tracking (with per-video adaptation), QA plot, project and
export. Every button calls one controller method; the controller's signals update the widgets. The
widget also owns the autosave timer and saves on close. The ``menu_*`` functions are npe2 commands
for the File menu.
"""

from __future__ import annotations

import os
import time

from napari.viewer import Viewer
from qtpy.QtCore import QEvent, QObject, QSize, Qt, QTimer
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_hotspot._napari.controller import HotspotController
from napari_hotspot._napari.keybindings import bind_keys, unbind_keys
from napari_hotspot._napari.layer_data import ROLE_BOXES, ROLE_CLICKS, ROLE_MASKS, layer_meta
from napari_hotspot._napari.layout import WrappingLabel, vertical_scroll
# controller_for is imported for the dock's users (the registry lives in open_docks: the reader reads it too)
from napari_hotspot._napari.open_docks import controller_for, register, unregister, unwrap, widget_for  # noqa: F401
from napari_hotspot._napari.qa_plot import QAPlot
from napari_hotspot._napari.reader import is_ground_truth, style_ground_truth
from napari_hotspot._napari.workers import ClosesWithDock, stop_workers
from napari_hotspot.options import DEFAULT_ADAPT_SECONDS, FIELDS, TrackingOptions

#: The autosave timer checks this often (ms); the Autosaver itself saves every ``autosave_interval_s``.
AUTOSAVE_CHECK_MS = 15_000
#: The status line's "tracking… N frames done" changes at most this often (seconds).
PROGRESS_TEXT_SECONDS = 0.5

class _CloseWatcher(QObject):
    """Tell the dock when the main window closes (dock widgets get no close event of their own)."""

    def __init__(self, callback, parent=None):
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
        if event.type() == QEvent.Close:
            self._callback(obj, event.spontaneous())
        return False


def option_box(name: str, value):
    """The magicgui box of a ``TrackingOptions`` field, generated from its ``options.FIELDS`` entry
    (label, range, step, decimals, help) and shown as "off" at 0."""
    from magicgui import widgets as mw

    field = FIELDS[name]
    box = mw.FloatSpinBox(label=field.label, min=field.minimum, max=field.maximum, step=field.step,
                          tooltip=field.tooltip)
    spin = box.native
    spin.setDecimals(field.decimals)
    spin.setRange(0, field.maximum)
    spin.setSpecialValueText("off")
    spin.setValue(value)
    spin.setToolTip(field.tooltip)
    return box


def _wrapping_label() -> WrappingLabel:
    return WrappingLabel()


class HotspotWidget(ClosesWithDock, QWidget):
    """Prompt objects, track them, correct, check quality and save, in one dock."""

    def __init__(self, napari_viewer, *, models=None, long_side: int | None = None,
                 autosave_dir: str | os.PathLike | None = None, autosave_interval_s: float = 180.0,
                 adapt_seconds: float = DEFAULT_ADAPT_SECONDS, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        napari_viewer = unwrap(napari_viewer)
        self.viewer = napari_viewer
        self.controller = HotspotController(napari_viewer, models=models, long_side=long_side,
                                            autosave_dir=autosave_dir, autosave_interval_s=autosave_interval_s,
                                            adapt_seconds=adapt_seconds)
        self.controller.ask_project_path = self._ask_project_folder
        register(napari_viewer, self)
        self._closing = False
        self._opened_project = None
        self._progress_shown = 0.0  # when the status line last showed the run's progress
        self._last_jaccard = None  # the QA plot's J series as last computed (kept while a run streams in)
        self._build()
        self._connect()
        bind_keys(napari_viewer, self.controller)
        self._autosave_timer = QTimer(self)
        self._autosave_timer.timeout.connect(self.controller.autosave_tick)
        self._autosave_timer.start(AUTOSAVE_CHECK_MS)
        self._watching_window = False  # a flag, not the window: a reference would keep napari's window alive
        self._refresh_video_choices()
        QTimer.singleShot(0, self._watch_main_window)
        self._auto_pick_video()

    #: The width the dock asks for, and the least it shrinks to (napari's dock area gives ~395 px on a
    #: 1920x1080 screen; every row fits in the minimum, so it never scrolls sideways).
    PREFERRED_WIDTH, MINIMUM_WIDTH = 380, 300

    def sizeHint(self):  # noqa: N802 (Qt name)
        hint = super().sizeHint()
        return QSize(self.PREFERRED_WIDTH, hint.height())

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        """Collapsible sections, at most three buttons a row and settings as a magicgui form with
        labels on the left: the dock fits napari's right dock area on a 1366x768 screen and scrolls
        only vertically (it needed ~495 px where a 1920x1080 screen gives ~395)."""
        from magicgui import widgets as mw
        from superqt import QCollapsible

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        body = QWidget()
        outer.addWidget(vertical_scroll(body))
        self.setMinimumWidth(self.MINIMUM_WIDTH)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        self.sections: dict[str, QCollapsible] = {}

        def section(title: str, expanded: bool = True) -> QVBoxLayout:
            coll = QCollapsible(title)
            coll.setDuration(0)
            content = QWidget()
            box = QVBoxLayout(content)
            box.setContentsMargins(2, 0, 2, 2)
            coll.addWidget(content)
            (coll.expand if expanded else coll.collapse)(animate=False)
            layout.addWidget(coll)
            self.sections[title] = coll
            return box

        def row(*widgets) -> QHBoxLayout:
            line = QHBoxLayout()
            line.setSpacing(4)
            for w in widgets:
                line.addWidget(w)
            return line

        # video + objects
        box = section("Video and objects")
        self.video_combo = QComboBox()
        self.video_combo.setToolTip("The Image layer to segment and track")
        self.video_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.video_combo.setMinimumContentsLength(8)  # a long layer name must not widen the dock
        video_label = QLabel("Video")
        box.addLayout(row(video_label, self.video_combo))
        self.object_list = QListWidget()
        self.object_list.setSelectionMode(QAbstractItemView.SingleSelection)
        self.object_list.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)
        self.object_list.setMaximumHeight(90)
        self.object_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.object_list.setToolTip("Objects: select one to prompt it; double-click to rename")
        box.addWidget(self.object_list)
        self.add_button = QPushButton("Add object")
        self.delete_button = QPushButton("Delete")
        box.addLayout(row(self.add_button, self.delete_button))
        self.click_button = QPushButton("Click")
        self.click_button.setToolTip("Click on the video to prompt the selected object (clicks layer)")
        self.box_button = QPushButton("Box")
        self.box_button.setToolTip("Draw a rectangle around the selected object (boxes layer)")
        self.auto_button = QPushButton("Auto")
        self.auto_button.setToolTip("EG-Net picks the salient object on this frame (G)")
        box.addLayout(row(self.click_button, self.box_button, self.auto_button))
        self.label_button = QPushButton("positive click")
        self.label_button.setCheckable(True)
        self.label_button.setToolTip("The label of the next click; N toggles it")
        self.gaze_button = QPushButton("Gaze file…")
        self.gaze_button.setToolTip("Prompt the selected object with recorded fixations (CSV t,x,y)")
        box.addLayout(row(self.label_button, self.gaze_button))

        # tracking
        box = section("Tracking")
        self.track_button = QPushButton("Track")
        self.track_button.setToolTip("Propagate (Shift+F forward, Shift+B backward, Shift+T both)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        box.addLayout(row(self.track_button, self.cancel_button))
        self.repropagate_button = QPushButton("Re-propagate from here")
        self.repropagate_button.setToolTip(
            "From the current frame up to the next keyframe on each side that has frames to change "
            "(Shift+R; the direction setting picks the side)")
        self.keyframe_button = QPushButton("Keep as keyframe")
        self.keyframe_button.setToolTip(
            "The current frame's tracked masks (the selected object's, or all) are right: keep them as "
            "keyframes, so re-propagation stops there (Shift+M; again to unmark; an empty mask kept: absent)")
        box.addLayout(row(self.repropagate_button, self.keyframe_button))
        self.adapt_button = QPushButton("Adapt now")
        self.adapt_button.setToolTip("Fine-tune the selected object's tracker on its prompts and corrections now, "
                                     "for the budget set (Cancel stops it and keeps what was learnt)")
        self.reset_adapt_button = QPushButton("Reset adaptation")
        self.reset_adapt_button.setToolTip("Forget the selected object's adaptation: back to the base model "
                                           "(its adapted weights leave the project at the next save)")
        box.addLayout(row(self.adapt_button, self.reset_adapt_button))
        self.adapt_label = _wrapping_label()
        self.adapt_label.setToolTip("The tracker the selected object uses: its adapted copy or the base model")
        box.addWidget(self.adapt_label)
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        box.addLayout(row(self.undo_button, self.redo_button))

        # settings: a magicgui form (labels left, one setting a row); the Qt widgets keep their names
        box = section("Settings", expanded=False)
        direction = mw.ComboBox(label="direction", choices=["forward", "backward", "both"])
        scope = mw.ComboBox(label="objects", choices=["selected object", "all objects"])
        limit = mw.CheckBox(text="only frames from..to")
        first, last = mw.SpinBox(label="from", min=0, max=0), mw.SpinBox(label="to", min=0, max=0)
        # the tracking options (completion, adaptation) come from the options object itself
        options = {name: option_box(name, getattr(self.controller.options, name)) for name in FIELDS}
        lookalikes = mw.CheckBox(text="keep look-alikes out", value=self.controller.options.distractor_memory)
        reacquire = mw.CheckBox(text="find absent objects again", value=self.controller.options.reacquire)
        window = mw.CheckBox(text="search near each object", value=self.controller.options.search_window)
        threshold = mw.FloatSpinBox(label="low below", min=0.0, max=1.0, step=0.05)
        gaze_map = mw.CheckBox(text="show the EG-Net gaze map")
        self.settings = mw.Container(widgets=[direction, scope, limit, first, last, *options.values(), lookalikes,
                                              reacquire, window, threshold, gaze_map], labels=True)
        self.settings.margins = (0, 0, 0, 0)
        box.addWidget(self.settings.native)
        self.direction_combo, self.scope_combo = direction.native, scope.native
        self.range_check, self.range_from, self.range_to = limit.native, first.native, last.native
        for spin in (self.range_from, self.range_to):
            spin.setEnabled(False)
        self.option_spins = {name: box.native for name, box in options.items()}
        self.adapt_spin, self.complete_spin = self.option_spins["adapt_seconds"], self.option_spins["complete_frames"]
        self.threshold_spin, self.gaze_map_check = threshold.native, gaze_map.native
        self.lookalike_check = lookalikes.native
        self.lookalike_check.setToolTip(
            "When a run reaches a keyframe, the tracker looks at it on its own frame and notes where it would "
            "grow the mask (the rest of an object you painted only part of, a look-alike beside your object); "
            "while tracking from it, what looks more like those regions than like your object is kept out. "
            "Off: masks may grow into whole salient objects. A change applies from the next run.")
        self.reacquire_check = reacquire.native
        self.reacquire_check.setToolTip(
            "After a frame where you erased an object entirely (it left the view or is hidden), a run going away "
            "from your prompt looks for it on every frame and tracks it again once two frames in a row show "
            "something that matches its keyframe; the status line says where. Off: it stays empty until you "
            "prompt it again.")
        self.window_check = window.native
        self.window_check.setToolTip(
            "Each tracked frame looks for an object in a window around its mask on the frame before (and "
            "wherever its keyframe's look matches), not on the whole frame: faster, most of all for several "
            "small objects; a mask that reaches the window's side is tracked on the whole frame. Off: the "
            "whole frame every time.")
        self.threshold_spin.setValue(self.controller.low_confidence_threshold)
        self.threshold_spin.setToolTip("Frames whose confidence is below this are 'low' (◀ low, low ▶, J)")
        self.range_check.setToolTip("Track only the frames from..to (else all frames)")

        # QA
        box = section("Quality")
        self.qa_plot = QAPlot()
        box.addWidget(self.qa_plot)
        self.prev_key_button = QPushButton("◀ key")
        self.next_key_button = QPushButton("key ▶")
        self.prev_low_button = QPushButton("◀ low")
        self.next_low_button = QPushButton("low ▶")
        nav = QGridLayout()
        nav.setSpacing(4)
        for i, (b, tip) in enumerate(((self.prev_key_button, "Previous keyframe (Shift+K)"),
                                      (self.next_key_button, "Next keyframe (K)"),
                                      (self.prev_low_button, "Previous low-confidence frame (Shift+J)"),
                                      (self.next_low_button, "Next low-confidence frame (J)"))):
            b.setToolTip(tip)
            b.setMinimumWidth(40)
            nav.addWidget(b, 0, i)
        box.addLayout(nav)

        # project
        box = section("Project")
        self.save_button = QPushButton("Save")
        self.save_as_button = QPushButton("Save as…")
        self.open_button = QPushButton("Open…")
        self.export_button = QPushButton("Export")
        menu = QMenu(self.export_button)
        self.export_actions = {
            "davis": menu.addAction("DAVIS PNG masks…"),
            "csv": menu.addAction("Hotspots CSV…"),
            "json": menu.addAction("Hotspots JSON…"),
            "coco": menu.addAction("COCO JSON…"),
        }
        self.export_button.setMenu(menu)
        grid = QGridLayout()
        grid.setSpacing(4)
        grid.addWidget(self.save_button, 0, 0)
        grid.addWidget(self.save_as_button, 0, 1)
        grid.addWidget(self.open_button, 1, 0)
        grid.addWidget(self.export_button, 1, 1)
        box.addLayout(grid)
        self.project_label = _wrapping_label()
        box.addWidget(self.project_label)

        self.status_label = _wrapping_label()
        layout.addWidget(self.status_label)
        layout.addStretch(1)

    def _connect(self) -> None:
        c = self.controller
        self.video_combo.activated.connect(self._on_video_chosen)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self.add_button.clicked.connect(lambda: c.add_object())
        self.delete_button.clicked.connect(lambda: c.delete_object())
        self.object_list.currentItemChanged.connect(self._on_item_selected)
        self.object_list.itemChanged.connect(self._on_item_renamed)
        self.click_button.clicked.connect(self._activate_clicks)
        self.box_button.clicked.connect(self._activate_boxes)
        self.auto_button.clicked.connect(lambda: c.auto_prompt())
        self.label_button.toggled.connect(lambda checked: c.set_click_label(0 if checked else 1))
        self.gaze_button.clicked.connect(self._choose_gaze_file)
        self.gaze_map_check.toggled.connect(c.set_show_gaze_map)
        self.direction_combo.currentTextChanged.connect(lambda text: setattr(c, "track_direction", text))
        self.scope_combo.currentIndexChanged.connect(
            lambda i: setattr(c, "track_scope", "selected" if i == 0 else "all"))
        self.range_check.toggled.connect(self._on_range_changed)
        self.range_from.valueChanged.connect(self._on_range_changed)
        self.range_to.valueChanged.connect(self._on_range_changed)
        self.track_button.clicked.connect(lambda: c.track())
        self.repropagate_button.clicked.connect(lambda: c.repropagate_from_here())
        self.keyframe_button.clicked.connect(lambda: c.toggle_keyframe())
        self.cancel_button.clicked.connect(c.cancel)
        for name, spin in self.option_spins.items():
            spin.valueChanged.connect(lambda value, name=name: self._on_option(name, value))
        self.lookalike_check.toggled.connect(lambda on: c.set_options(distractor_memory=bool(on)))
        self.reacquire_check.toggled.connect(lambda on: c.set_options(reacquire=bool(on)))
        self.window_check.toggled.connect(lambda on: c.set_options(search_window=bool(on)))
        self.adapt_button.clicked.connect(lambda: c.adapt_now())
        self.reset_adapt_button.clicked.connect(lambda: c.reset_adaptation())
        self.undo_button.clicked.connect(c.undo)
        self.redo_button.clicked.connect(c.redo)
        self.qa_plot.frame_clicked.connect(c.go_to_frame)
        self.threshold_spin.valueChanged.connect(self._on_threshold)
        self.prev_key_button.clicked.connect(c.previous_keyframe)
        self.next_key_button.clicked.connect(c.next_keyframe)
        self.prev_low_button.clicked.connect(c.previous_low_confidence)
        self.next_low_button.clicked.connect(c.next_low_confidence)
        self.save_button.clicked.connect(lambda: c.save_project())
        self.save_as_button.clicked.connect(self._save_as)
        self.open_button.clicked.connect(self._open_project)
        for kind, action in self.export_actions.items():
            action.triggered.connect(lambda _checked=False, k=kind: self.export_dialog(k))

        c.objects_changed.connect(self._refresh_objects)
        c.selection_changed.connect(self._show_selection)
        c.annotations_changed.connect(self._refresh_plot)
        c.run_state_changed.connect(self._on_run_state)
        c.run_progress.connect(self._show_progress)
        c.adapt_state_changed.connect(self._on_adapt_state)
        c.adapt_progress.connect(self._show_adapt_progress)
        c.adaptation_changed.connect(lambda _oid: self._show_adaptation())
        c.ready_changed.connect(lambda _ready: self._show_adaptation())
        c.video_changed.connect(self._on_video_changed)
        c.click_label_changed.connect(self._show_click_label)
        c.status.connect(self._show_status)
        c.project_changed.connect(self._show_project)
        self.viewer.dims.events.current_step.connect(self._on_frame)

    def _show_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _show_progress(self, frames: int) -> None:
        now = time.perf_counter()  # a new text repaints the window: a few times a second is enough
        if now - self._progress_shown >= PROGRESS_TEXT_SECONDS:
            self._progress_shown = now
            self.status_label.setText(f"tracking… {frames} frame{'' if frames == 1 else 's'} done")

    def _show_adapt_progress(self, p) -> None:
        store = self.controller.store
        name = store.get_object(p.object_id).name if store is not None and store.has_object(p.object_id) \
            else f"object {p.object_id}"
        if p.phase == "frames":
            self.status_label.setText(f"adapting {name}: taking in keyframe {p.frames[-1]}…")
        elif p.done:
            self.status_label.setText(f"adapted {name}: {p.steps} steps, {p.seconds:.1f} s")
        else:
            self.status_label.setText(f"adapting {name}… {p.fraction:.0%} ({p.steps} steps)")
        self._show_adaptation()

    def _show_adaptation(self) -> None:
        self.adapt_label.setText(self.controller.adaptation_text())

    def _on_option(self, name: str, value: float) -> None:
        """A tracking option changed in the settings: the controller (and its session) follow."""
        kind = type(getattr(TrackingOptions(), name))  # int frames, float seconds
        self.controller.set_options(**{name: kind(value)})
        self._show_adaptation()

    # ------------------------------------------------------------------ video choice
    def _image_layers(self):
        return [la for la in self.viewer.layers if type(la).__name__ == "Image" and layer_meta(la).get("role") is None
                or (type(la).__name__ == "Image" and layer_meta(la).get("role") == "video")]

    def _refresh_video_choices(self) -> None:
        self.video_combo.blockSignals(True)
        self.video_combo.clear()
        self.video_combo.addItem("(choose a video layer)")
        current = self.controller.video_layer
        for layer in self._image_layers():
            self.video_combo.addItem(layer.name)
            if layer is current:
                self.video_combo.setCurrentIndex(self.video_combo.count() - 1)
        self.video_combo.blockSignals(False)

    def _on_layers_changed(self, event=None) -> None:
        if self._closing:
            return
        self._refresh_video_choices()
        layer = getattr(event, "value", None)
        if getattr(event, "type", "") == "inserted" and layer_meta(layer).get("project") and \
                layer_meta(layer).get("role") == "video":
            self._opened_project = layer  # File > Open on a project folder: work on it
        # Let one viewer.open() insert all its layers before picking (a project brings several).
        QTimer.singleShot(0, self._auto_pick_video)

    def _auto_pick_video(self) -> None:
        """Use a project's video just opened, or the first video while none is chosen."""
        if self._closing or self.controller.busy or self.controller.adapting:
            return
        opened, self._opened_project = self._opened_project, None
        current = self.controller.video_layer
        if opened is not None and opened is not current and opened in self.viewer.layers:
            self._start_on(opened)
            return
        layers = self._image_layers()
        if current is None and layers:
            projects = [la for la in layers if layer_meta(la).get("project")]
            self._start_on((projects or layers)[-1 if projects else 0])
        self._show_ground_truth()

    def _start_on(self, layer) -> None:
        """Work on a video the dock picked itself, from its first frame (napari opens on the middle one,
        where the first click would otherwise land)."""
        self.use_video(layer)
        if self.controller.video_layer is layer:
            self.controller.go_to_frame(0)
        self._show_ground_truth()

    def _show_ground_truth(self) -> None:
        """Ground truth as a contour in its own colour, drawn over the masks."""
        masks = self.controller.layer(ROLE_MASKS)
        for layer in list(self.viewer.layers):
            if not is_ground_truth(layer):
                continue
            style_ground_truth(layer)
            if masks is not None and layer in self.viewer.layers and masks in self.viewer.layers:
                i, j = self.viewer.layers.index(layer), self.viewer.layers.index(masks)
                if i < j:
                    self.viewer.layers.move(i, j + 1)  # napari inserts before dest: just above the masks

    def _on_video_chosen(self, index: int) -> None:
        layers = self._image_layers()
        self.use_video(layers[index - 1] if index > 0 and index - 1 < len(layers) else None)

    def use_video(self, layer) -> None:
        """Work on ``layer`` (errors are shown in napari, not raised)."""
        from napari_hotspot.errors import HotspotError

        try:
            self.controller.set_video(layer)
        except HotspotError as err:
            self.controller._report(err)
        self._refresh_video_choices()

    def _on_video_changed(self) -> None:
        c = self.controller
        n = c.num_frames
        for spin in (self.range_from, self.range_to):
            spin.setRange(0, max(n - 1, 0))
        self.range_to.setValue(max(n - 1, 0))
        self._refresh_objects()
        self._refresh_plot()
        self._show_project()
        self._update_buttons()

    def _show_project(self) -> None:
        c = self.controller
        if c.project_path is not None:
            self.project_label.setText(f"project: {c.project_path}")
        elif c.autosaver is not None:
            self.project_label.setText(f"not saved yet; autosave to {c.autosaver.path}")
        else:
            self.project_label.setText("")

    # ------------------------------------------------------------------ objects
    def _refresh_objects(self) -> None:
        c = self.controller
        self.object_list.blockSignals(True)
        self.object_list.clear()
        if c.store is not None:
            for info in c.store.objects:
                pix = QPixmap(12, 12)
                pix.fill(QColor(*info.color))
                item = QListWidgetItem(QIcon(pix), info.name)
                item.setData(Qt.UserRole, info.id)
                item.setFlags(item.flags() | Qt.ItemIsEditable)
                self.object_list.addItem(item)
                if info.id == c.selected_id:
                    self.object_list.setCurrentItem(item)
        self.object_list.blockSignals(False)
        self._refresh_plot()

    def _show_selection(self, obj_id: int) -> None:
        self.object_list.blockSignals(True)
        for i in range(self.object_list.count()):
            item = self.object_list.item(i)
            if item.data(Qt.UserRole) == obj_id:
                self.object_list.setCurrentItem(item)
        self.object_list.blockSignals(False)
        self._refresh_plot()
        self._show_adaptation()

    def _on_item_selected(self, item, _previous=None) -> None:
        if item is not None:
            self.controller.select_object(int(item.data(Qt.UserRole)))

    def _on_item_renamed(self, item) -> None:
        oid = int(item.data(Qt.UserRole))
        store = self.controller.store
        if store is not None and store.has_object(oid) and store.get_object(oid).name != item.text():
            text = item.text()
            if not text.strip():  # refused below (with a message): the list keeps showing the kept name
                self.object_list.blockSignals(True)
                item.setText(store.get_object(oid).name)
                self.object_list.blockSignals(False)
            self.controller.rename_object(oid, text)  # a rename rebuilds the list (this item goes)

    def _show_click_label(self, label: int) -> None:
        self.label_button.blockSignals(True)
        self.label_button.setChecked(label == 0)
        self.label_button.setText("negative click" if label == 0 else "positive click")
        self.label_button.blockSignals(False)

    def _activate_clicks(self) -> None:
        layer = self.controller.layer(ROLE_CLICKS)
        if layer is not None:
            self.viewer.layers.selection.active = layer
            layer.mode = "add"

    def _activate_boxes(self) -> None:
        layer = self.controller.layer(ROLE_BOXES)
        if layer is not None:
            self.viewer.layers.selection.active = layer
            layer.mode = "add_rectangle"

    def _choose_gaze_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Gaze fixations (CSV t,x,y)", "", "CSV (*.csv);;All files (*)")
        if path:
            self.controller.load_gaze(path)

    # ------------------------------------------------------------------ tracking
    def _on_range_changed(self, *_args) -> None:
        on = self.range_check.isChecked()
        for spin in (self.range_from, self.range_to):
            spin.setEnabled(on)
        self.controller.track_range = (self.range_from.value(), self.range_to.value()) if on else None

    def _update_buttons(self) -> None:
        """Enable what works now: nothing that edits during a run; prompts (not runs) while adapting."""
        c = self.controller
        running, adapting = c.busy, c.adapting
        self.cancel_button.setEnabled(running or adapting)
        for b in (self.auto_button, self.add_button, self.save_button, self.keyframe_button):
            b.setEnabled(not running)
        for b in (self.track_button, self.repropagate_button, self.delete_button, self.undo_button,
                  self.redo_button, self.open_button, self.gaze_button, self.adapt_button,
                  self.reset_adapt_button):
            b.setEnabled(not (running or adapting))

    def _on_run_state(self, running: bool) -> None:
        self._update_buttons()
        if running:  # at the end the controller's annotations_changed redraws it, J included, a turn later
            self._refresh_plot()
        self._show_project()
        self._show_adaptation()

    def _on_adapt_state(self, _adapting: bool) -> None:
        self._update_buttons()
        self._show_adaptation()

    # ------------------------------------------------------------------ QA
    def _on_threshold(self, value: float) -> None:
        self.controller.low_confidence_threshold = float(value)
        self._refresh_plot()

    def _on_frame(self, _event=None) -> None:
        self.qa_plot.set_current_frame(self.controller.current_frame)

    def _refresh_plot(self, immediate: bool = False) -> None:
        c = self.controller
        self._show_adaptation()  # new keyframes may wait to be learnt
        if c.store is None:
            self.qa_plot.set_data({}, {}, {}, [], c.low_confidence_threshold, None, 0, 0, immediate=immediate)
            return
        ids = c._qa_ids()
        conf = {k: v for k, v in c.confidence_series().items() if k in ids}
        # J after the run (ground truth may be slow to read); during it the last J stands, so the plot
        # keeps its curves and legend and only blits the new confidences
        j = self._last_jaccard if c.running else c.jaccard_series()
        self._last_jaccard = j
        if j is not None:
            j = {k: v for k, v in j.items() if k in ids}
        colors = {o.id: o.color for o in c.store.objects}
        names = {o.id: o.name for o in c.store.objects}
        self.qa_plot.set_data(conf, colors, names, c.keyframes(), c.low_confidence_threshold, j, c.num_frames,
                              c.current_frame, immediate=immediate)

    # ------------------------------------------------------------------ project
    def _ask_project_folder(self) -> str | None:
        path = QFileDialog.getSaveFileName(self, "Save hotspot project as (a folder)", "", "")[0]
        return path or None

    def _save_as(self) -> None:
        path = self._ask_project_folder()
        if path:
            self.controller.save_project(path)

    def _open_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open hotspot project folder")
        if path:
            self.controller.open_project(path)

    def export_dialog(self, kind: str) -> None:
        if kind == "davis":
            path = QFileDialog.getExistingDirectory(self, "Export DAVIS PNG masks into folder")
        else:
            suffix = {"csv": "CSV (*.csv)", "json": "JSON (*.json)", "coco": "COCO JSON (*.json)"}[kind]
            path = QFileDialog.getSaveFileName(self, f"Export {kind}", "", suffix)[0]
        if path:
            self.controller.export(kind, path)

    # ------------------------------------------------------------------ closing
    def _watch_main_window(self) -> None:
        window = self.window()
        if window is not None and window is not self and not self._watching_window:
            self._close_watcher = _CloseWatcher(self._on_main_window_close, self)
            window.installEventFilter(self._close_watcher)
            # viewer.close() closes the canvas first, then the window, whose close stops threads that
            # processing events in between would delete: the dock must stop its jobs at the first step
            qt_viewer = getattr(getattr(self.viewer, "window", None), "_qt_viewer", None)
            if qt_viewer is not None and qt_viewer is not window:
                qt_viewer.installEventFilter(self._close_watcher)
            self._watching_window = True

    def _on_main_window_close(self, closing, spontaneous: bool) -> None:
        if self._closing:
            return
        self.controller.flush_autosave()
        if closing is not self.window():  # the canvas: viewer.close(), which nothing can refuse
            self.shutdown()
        else:  # the window: the user's close may still be refused (napari's confirmation dialog)
            self._close_check = QTimer(self)  # owned by the dock: it never keeps the viewer alive
            self._close_check.setSingleShot(True)
            self._close_check.timeout.connect(self._after_window_close)
            self._close_check.start(0)

    def _after_window_close(self) -> None:
        window = self.window()
        if not self._closing and (window is None or window is self or not window.isVisible()):
            self.shutdown()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        self._watch_main_window()

    def shutdown(self) -> None:
        """Stop timers and workers (waiting for them to end), autosave, unbind keys (idempotent)."""
        if getattr(self, "_closing", True):  # also before __init__ has finished
            return
        self._closing = True
        self._autosave_timer.stop()
        c = self.controller
        workers = c.workers()
        c.close()
        stop_workers(workers)  # until superqt has let go of them too: no worker may outlive the dock
        try:
            self.viewer.layers.events.inserted.disconnect(self._on_layers_changed)
            self.viewer.layers.events.removed.disconnect(self._on_layers_changed)
            self.viewer.dims.events.current_step.disconnect(self._on_frame)
        except (TypeError, RuntimeError, ValueError):
            pass
        unbind_keys(self.viewer)
        unregister(self.viewer, self)


# ---------------------------------------------------------------------------- File-menu commands (npe2)
def _widget_or_dock(viewer: Viewer) -> HotspotWidget | None:
    """The open hotspot widget, docking one first when there is none."""
    widget = widget_for(viewer)
    if widget is None:
        viewer.window.add_plugin_dock_widget("napari-hotspot", "Hotspot tracking")
        widget = widget_for(viewer)
    return widget


def menu_save_project(viewer: Viewer) -> None:
    """File > Save hotspot project (asks for a folder the first time)."""
    widget = _widget_or_dock(viewer)
    if widget is not None:
        widget.controller.save_project()


def menu_open_project(viewer: Viewer) -> None:
    """File > Open hotspot project…"""
    widget = _widget_or_dock(viewer)
    if widget is not None:
        widget._open_project()


def menu_export(viewer: Viewer) -> None:
    """File > Export hotspot annotations: shows the export choices of the dock."""
    widget = _widget_or_dock(viewer)
    if widget is not None:
        widget.export_button.showMenu()
