"""GUI: a full keyframe labelling pass by two annotators on the sample video, gaze import, export."""

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_hotspot._napari.labelling_widget import (
    DENSITY_LAYER,
    FIXATIONS_LAYER,
    LABELS_LAYER,
    MASKS_LAYER,
    PROPOSAL_LAYER,
    TRACK_LAYER,
    LabellingWidget,
)
from napari_hotspot._napari.sample import make_sample_video
from napari_hotspot.annotations.io_hotspot_maps import load_hotspot_maps, score_hotspot_track
from napari_hotspot.annotations.io_hotspots import read_hotspots_csv
from napari_hotspot.annotations.model import Provenance

pytestmark = pytest.mark.gui


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def sample_viewer(make_napari_viewer):
    """The sample video's layers plus a 'tracker' Points layer: ground truth + 2 px noise."""
    viewer = make_napari_viewer(show=True)
    for data, kwargs, kind in make_sample_video():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    truth = viewer.layers["sample ground truth hotspots"]
    noise = np.random.default_rng(0).normal(0, 2.0, (len(truth.data), 2))
    viewer.add_points(truth.data + np.column_stack([np.zeros(len(noise)), noise]), name="tracker",
                      features=truth.features)
    return viewer


def make_widget(viewer, qtbot, **kwargs):
    widget = LabellingWidget(viewer, **kwargs)
    viewer.window.add_dock_widget(widget, name="Hotspot labelling")
    widget.video_combo.setCurrentText("sample video")
    widget.tracker_combo.setCurrentText("tracker")
    widget.masks_combo.setCurrentText("sample ground truth")
    widget.clock = FakeClock()
    return widget


def click_canvas(viewer, qtbot, x, y):
    """A real mouse press + release on the vispy canvas at image pixel (x, y) of the current frame."""
    canvas = viewer.window._qt_viewer.canvas
    transform = canvas.view.transform * canvas.view.scene.transform
    position = transform.map([x, y])[:2]
    canvas._scene_canvas.events.mouse_press(pos=position, button=1, modifiers=())
    canvas._scene_canvas.events.mouse_release(pos=position, button=1, modifiers=())
    qtbot.wait(5)


def test_full_labelling_pass_by_two_annotators(sample_viewer, qtbot, tmp_path):
    viewer = sample_viewer
    widget = make_widget(viewer, qtbot)
    widget.extra_edit.setText("25")  # an extra keyframe from QA
    assert widget.start_labelling("A") is not None
    labeller = widget.labeller
    assert labeller.schedule == [0, 10, 20, 25, 30, 40]
    assert viewer.layers.selection.active.name == PROPOSAL_LAYER
    keys = viewer.window._qt_viewer._key_map_handler
    visited, moved_to = [], {}
    while not labeller.done:
        task = labeller.current
        visited.append((task.object_id, task.frame))
        assert viewer.dims.current_step[0] == task.frame
        assert f"keyframe {task.index + 1} of 6" in widget.progress_label.text()
        proposal = viewer.layers[PROPOSAL_LAYER].data
        assert proposal.shape == (1, 3) and proposal[0, 0] == task.frame
        widget.clock.now += 2.0
        if task.index == 1:  # a click moves the hotspot, Enter stores it
            x, y = proposal[0, 2] + 6.0, proposal[0, 1] - 4.0
            click_canvas(viewer, qtbot, x, y)
            assert labeller.pending == pytest.approx((x, y), abs=1e-6)
            moved_to[(task.object_id, task.frame)] = (x, y)
            assert keys.press_key("Enter")
        elif task.index == 2:
            assert keys.press_key("n")  # not visible
        else:
            assert keys.press_key("Enter")
    assert visited == [(1, f) for f in labeller.schedule] + [(2, f) for f in labeller.schedule]
    assert "all keyframes visited" in widget.progress_label.text()
    assert len(viewer.layers[PROPOSAL_LAYER].data) == 0

    own = widget.store.annotator_hotspots("A")
    for (obj_id, frame), (x, y) in moved_to.items():
        record = own[(obj_id, frame)]
        assert record.provenance == Provenance.USER_CORRECTED
        assert (record.hotspot.x, record.hotspot.y) == pytest.approx((x, y), abs=1e-6)
    assert own[(1, 0)].provenance == Provenance.KEYFRAME and own[(1, 0)].seconds_spent == pytest.approx(2.0)
    assert own[(1, 20)].hotspot is None  # marked not visible
    derived = sorted(f for (o, f), r in own.items() if o == 1 and r.provenance == Provenance.DERIVED)
    assert derived == [*range(1, 10), *range(26, 30), *range(31, 40), *range(41, 48)]
    assert len(viewer.layers[LABELS_LAYER].data) == len([r for r in own.values() if r.hotspot is not None])
    snapshot_a = widget.store.annotator_hotspots("A")
    main_track = {(o, f): e for o, f, e in widget.store.iter_entries()}

    # annotator B works with the dock's buttons and the canvas
    assert widget.start_labelling("B").annotator == "B"
    assert widget.labeller.current.frame == 0  # B starts at the beginning, from the tracker's proposals
    rng = np.random.default_rng(3)
    while not widget.labeller.done:
        task = widget.labeller.current
        widget.clock.now += 1.0
        if task.object_id == 2 and task.index == 4:
            qtbot.mouseClick(widget.not_visible_button, Qt.LeftButton)
            continue
        p = widget.labeller.proposal()
        click_canvas(viewer, qtbot, p.x + rng.normal(0, 2), p.y + rng.normal(0, 2))
        qtbot.mouseClick(widget.accept_button, Qt.LeftButton)
    assert widget.store.annotator_hotspots("A") == snapshot_a  # nothing of A changed
    assert {(o, f): e for o, f, e in widget.store.iter_entries()} == main_track
    assert widget.store.annotators() == ["A", "B"]

    # agreement: table and plot in the dock
    widget.object_combo.setCurrentIndex(0)
    widget.refresh_agreement()
    assert widget.table.rowCount() == 6
    frames = [int(widget.table.item(r, 0).text()) for r in range(6)]
    assert frames == [0, 10, 20, 25, 30, 40]
    assert widget.table.item(0, 1).text() == "A, B"
    assert widget.table.item(2, 2).text() == "A"  # A said not visible on frame 20
    assert widget.table.item(0, 3).text() not in ("", "-")
    assert len(widget.figure.axes[0].lines) >= 2
    assert "2 annotator(s)" in widget.agreement_label.text()

    # the labels survive a save and open in a fresh dock (annotators work in separate sessions)
    assert widget.save_project(tmp_path / "labels") is not None
    other = LabellingWidget(viewer)
    other.video_combo.setCurrentText("sample video")
    store = other.open_project(tmp_path / "labels")
    assert store is not None and store.annotators() == ["A", "B"]
    assert store.annotator_hotspots("A")[(1, 10)] == snapshot_a[(1, 10)]
    assert other.table.rowCount() == 6

    # export and score a track against it without any conversion
    result = widget.export(tmp_path / "export")
    assert result is not None and (tmp_path / "export" / "consensus.csv").is_file()
    assert {r.annotator for r in read_hotspots_csv(result.annotators_csv)} == {"A", "B"}
    maps = load_hotspot_maps(result.map_dirs[1])
    assert maps.frames == [0, 10, 20, 25, 30, 40]  # on 20 only B saw the hotspot
    truth = viewer.layers["sample ground truth hotspots"]
    track = np.full((48, 2), np.nan)
    first = truth.features["object_id"].to_numpy() == 1
    track[truth.data[first, 0].astype(int)] = truth.data[first][:, [2, 1]]
    scores = score_hotspot_track(track, result.map_dirs[1])
    assert scores["auc_judd"] > 0.9 and scores["hs_pck10"] > 0.8


def test_fixations_initialise_an_object_and_show_density(sample_viewer, qtbot, tmp_path):
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.session import HotspotSession

    viewer = sample_viewer
    frames = viewer.layers["sample video"].data
    session = HotspotSession(frames, ModelBundle.load(), long_side=256)  # small working size: fast test
    widget = make_widget(viewer, qtbot, session=session)
    widget.tracker_combo.setCurrentText("(none)")
    widget.masks_combo.setCurrentText("(none)")
    truth = viewer.layers["sample ground truth hotspots"]
    on_frame = (truth.data[:, 0] == 12) & (truth.features["object_id"].to_numpy() == 2)
    _, hy, hx = truth.data[on_frame][0]
    path = tmp_path / "gaze.csv"
    rows = ["time_ms,x,y,duration,observer"]
    for k, (dx, dy) in enumerate([(0, 0), (2, -1), (-1, 2), (1, 1)]):
        rows.append(f"{1000 * 12 / 24 + 5 + 3 * k + 250:.1f},{hx + dx:.2f},{hy + dy:.2f},180,o{k}")
    rows.append("9999999,5,5,100,o1")  # after the end of the video: dropped
    path.write_text("\n".join(rows) + "\n")
    widget.unit_combo.setCurrentText("ms")
    widget.offset_spin.setValue(0.25)  # the recording started 250 ms before frame 0
    fixations = widget.load_fixations(path)
    assert fixations is not None and fixations.frames.tolist() == [12] * 4
    assert "dropped: 1 out of range" in widget.status.text()
    points = viewer.layers[FIXATIONS_LAYER]
    assert points.data.shape == (4, 3) and list(points.features["observer"]) == ["o0", "o1", "o2", "o3"]
    density = viewer.layers[DENSITY_LAYER]
    frame = np.asarray(density.data[12])
    assert frame.shape == (240, 320) and frame.max() == pytest.approx(1.0)
    assert np.hypot(*(np.array(np.unravel_index(frame.argmax(), frame.shape)) - (hy, hx))) < 3
    assert not np.asarray(density.data[11]).any()

    viewer.dims.set_current_step(0, 12)
    result = widget.init_object_from_gaze()
    assert result is not None, widget.status.text()
    store = widget.store
    assert store.object_ids == [1] and store.get_object(1).name == "animal"  # named from the sample metadata
    entry = store.get(1, 12)
    assert entry.provenance == Provenance.KEYFRAME and entry.mask.any() and entry.hotspot is not None
    assert session.anchors(1) == [12]
    assert MASKS_LAYER in viewer.layers and np.asarray(viewer.layers[MASKS_LAYER].data[12]).any()
    assert len(viewer.layers[TRACK_LAYER].data) == 1

    # the gaze cluster is also a hotspot candidate while labelling
    widget.every_spin.setValue(12)
    widget.start_labelling("G1")
    widget.labeller.go_to_frame(1, 12)
    widget.snap_to_gaze()
    assert np.hypot(widget.labeller.pending[0] - hx, widget.labeller.pending[1] - hy) < 3


def test_run_tracker_prefills_proposals_in_a_worker(make_napari_viewer, qtbot):
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.sample_data import make_sample_video as render
    from napari_hotspot.session import HotspotSession

    sample = render(num_frames=6, height=96, width=128)
    viewer = make_napari_viewer()
    viewer.add_image(sample.frames, name="clip", rgb=True)
    viewer.add_labels(sample.masks, name="truth")
    widget = LabellingWidget(viewer, session=HotspotSession(sample.frames, ModelBundle.load(), long_side=256))
    widget.video_combo.setCurrentText("clip")
    widget.masks_combo.setCurrentText("truth")
    widget.run_tracker()
    assert not widget.track_button.isEnabled()  # busy while the worker runs
    qtbot.waitUntil(widget.track_button.isEnabled, timeout=120_000)
    assert "tracker filled 10 frames of 2 object(s)" in widget.status.text()
    store = widget.store
    assert store.object_ids == [1, 2] and store.keyframes(1) == [0]
    assert all(store.get(1, t).provenance == Provenance.PROPAGATED for t in range(1, 6))
    assert widget.tracker_combo.currentText() == TRACK_LAYER
    widget.every_spin.setValue(5)
    labeller = widget.start_labelling("A")
    hotspot = store.hotspot(1, 5)  # object 1: the one the tracker keeps to frame 5 on this tiny clip
    assert labeller.tracker_track(1)[5] == pytest.approx((hotspot.x, hotspot.y))
    widget.labeller.go_to_frame(1, 5)
    assert (widget.labeller.proposal().x, widget.labeller.proposal().y) == pytest.approx((hotspot.x, hotspot.y))


def test_errors_are_shown_in_the_dock(sample_viewer, qtbot):
    widget = make_widget(sample_viewer, qtbot)
    assert widget.start_labelling("") is None
    assert "annotator id" in widget.status.text()
    widget.extra_edit.setText("3, 99")
    assert widget.start_labelling("A") is None
    assert "out of range" in widget.status.text()
    assert widget.init_object_from_gaze() is None and "load fixations first" in widget.status.text()
    assert widget.open_project("/nonexistent/labels") is None and "/nonexistent/labels" in widget.status.text()


def test_dock_opens_from_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-hotspot", "Hotspot labelling")
    assert isinstance(widget, LabellingWidget)
    viewer.add_image(np.zeros((3, 8, 8), np.uint8), name="clip")  # the dock follows the viewer's layers
    assert widget.video_combo.findText("clip") >= 0


def test_a_float_video_is_not_black_to_the_labelling_tracker(make_napari_viewer, models):
    """The labelling dock's session reads a float [0, 1] video layer as the tracking dock does
    (layer_data.frame_source_for), not as black frames."""
    from napari_hotspot._napari.layer_data import frame_source_for

    viewer = make_napari_viewer()
    frames = make_sample_video()[0][0]
    layer = viewer.add_image(np.asarray(frames, np.float32) / 255.0, name="clip", rgb=True)
    widget = LabellingWidget(viewer, models=models)
    widget.video_combo.setCurrentText("clip")
    seen = widget.ensure_session().source.get_frame(3)
    assert seen.dtype == np.uint8 and seen.max() >= 250
    np.testing.assert_array_equal(seen, frame_source_for(layer).get_frame(3))
    widget.shutdown()
