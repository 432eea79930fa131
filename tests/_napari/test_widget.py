"""GUI tests of the hotspot tracking widget (napari_hotspot._napari.widget / controller), driven through
the real layers and buttons: prompt by clicks, box and Auto; track; cancel; correct and re-propagate;
undo; QA navigation; shortcuts. Save/reload/export live in test_widget_project.py.

Runs headless: ``xvfb-run -a python -m pytest tests/_napari/test_widget.py``. Uses a small synthetic
video (24 frames of 96x128) at a working resolution of 256 (half the default) so a run over all
frames takes a couple of seconds. Tracking tests start from a painted keyframe (the ground-truth
mask painted into the masks layer, the correction path) so they do not depend on how good the
click decoder of the shipped weights is; the prompt tests use clicks, boxes and Auto.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from qtpy.QtWidgets import QApplication
from scipy.ndimage import distance_transform_edt

from napari_hotspot._napari.controller import HotspotController
from napari_hotspot.annotations.io_fixations import read_frame_fixations
from napari_hotspot._napari.keybindings import SHORTCUTS, markdown_table
from napari_hotspot._napari.widget import HotspotWidget, controller_for
from napari_hotspot.annotations import Provenance
from napari_hotspot.errors import PromptError
from napari_hotspot.sample_data import make_sample_video

pytestmark = pytest.mark.gui

T, H, W = 24, 96, 128
LONG_SIDE = 256


@pytest.fixture(scope="module")
def sample():
    return make_sample_video(num_frames=T, height=H, width=W)


def deepest(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel deepest inside a mask: where a user clicks."""
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # the frame border counts as outside
    y, x = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return float(x), float(y)


@pytest.fixture
def setup(make_napari_viewer, models, sample_folder, tmp_path):
    """A viewer with the sample frame folder opened by our reader (video + ground truth) and the widget."""
    viewer = make_napari_viewer()
    viewer.open(str(sample_folder.frames), plugin="napari-hotspot")
    # adaptation off: these tests are about tracking itself (test_widget_adaptation.py covers it)
    widget = HotspotWidget(viewer, models=models, long_side=LONG_SIDE, autosave_dir=tmp_path / "autosave",
                           adapt_seconds=0)
    viewer.window.add_dock_widget(widget, name="Hotspot tracking")
    controller = widget.controller
    assert controller.ready and controller.video_layer.name == "sample"
    yield viewer, widget, controller
    widget.shutdown()


def prompt_object_1(controller, sample, frame=0):
    x, y = deepest(sample.masks[frame] == 1)
    controller.add_click(frame, x, y, positive=True)
    assert controller.last_error is None, controller.last_error
    return x, y


def paint_object_1(controller, sample, frame=0):
    """Paint object 1's ground-truth mask on ``frame`` into the masks layer: a USER_CORRECTED keyframe."""
    ys, xs = np.nonzero(sample.masks[frame] == 1)
    controller.layer("masks").data_setitem((np.full_like(ys, frame), ys, xs), 1)
    entry = controller.store.get(1, frame)
    assert controller.last_error is None and entry.is_keyframe, controller.last_error
    np.testing.assert_array_equal(entry.mask, sample.masks[frame] == 1)
    return entry


def track_and_wait(widget, controller, direction="forward"):
    widget.direction_combo.setCurrentText(direction)
    widget.track_button.click()
    assert controller.running
    assert controller.wait(60), "tracking did not finish"


# ---------------------------------------------------------------------------- prompting
def test_click_prompts_mask_hotspot_and_layers(setup, sample):
    viewer, widget, c = setup
    assert controller_for(viewer) is c
    names = [layer.name for layer in viewer.layers]
    for role in ("masks", "clicks", "boxes", "hotspots"):
        assert f"sample {role}" in names
    x, y = prompt_object_1(c, sample)
    # the first click made object 1 and selected it
    assert c.store.object_ids == [1] and widget.object_list.count() == 1
    entry = c.store.get(1, 0)
    assert entry.provenance is Provenance.KEYFRAME and entry.mask.any()
    assert c.session.anchors(1) == [0]
    masks = c.layer("masks")
    np.testing.assert_array_equal(masks.data[0], c.store.label_frame(0))
    c.flush_layers()  # the hotspots layer follows a moment after the mask (POINTS_DELAY_MS)
    hotspots = c.layer("hotspots")
    assert hotspots.data.shape == (1, 3) and hotspots.data[0, 0] == 0
    assert list(hotspots.features["object_id"]) == [1]
    assert hotspots.features["source"][0] == "keyframe"
    # a negative click (label toggled with the N shortcut) re-runs the prompt with both clicks
    viewer.layers.selection.active = c.layer("clicks")
    viewer.window._qt_viewer._key_map_handler.press_key("N")
    assert c.click_label == 0 and widget.label_button.text() == "negative click"
    far_x, far_y = W - 3.0, H - 3.0
    c.add_click(0, far_x, far_y)
    assert c.last_error is None
    assert list(c.layer("clicks").features["label"]) == [1, 0]
    assert c.store.get(1, 0) is not entry  # prompted again
    assert c._applied[(0, 1)].clicks == ((x, y, 1), (far_x, far_y, 0))


def test_a_click_answers_first_and_its_refined_mask_joins_the_same_undo_step(setup, sample):
    from napari_hotspot.session import HotspotSession

    viewer, widget, c = setup
    x, y = prompt_object_1(c, sample, frame=2)
    assert c.store.get(1, 2).mask.any()  # the decoder's answer is there at once...
    assert c._refine_worker is not None and (1, 2) in c._refinements  # ...and its refinement runs in a thread
    assert c.wait(30)
    expected = HotspotSession(c._source, c.session.models, long_side=LONG_SIDE).add_prompt(2, 1, points=[(x, y)])
    np.testing.assert_array_equal(c.store.get(1, 2).mask, expected.mask)  # what a plain prompt makes
    np.testing.assert_array_equal(c.layer("masks").data[2], c.store.label_frame(2))
    assert c.undo()  # one undo takes the whole click back: its mask and the point
    assert c.store.get(1, 2) is None and len(c.layer("clicks").data) == 0
    assert c.redo()
    np.testing.assert_array_equal(c.store.get(1, 2).mask, expected.mask)
    assert len(c.layer("clicks").data) == 1
    # A second click at once stops the first one's refinement (it is replaced anyway); the frame ends
    # with the two clicks' refined mask, and undo takes the second click back.
    first_mask = c.store.get(1, 2).mask
    c.add_click(2, W - 3.0, H - 3.0, positive=False)
    assert c.last_error is None, c.last_error
    c.add_click(2, x + 1, y, positive=True)
    assert c.wait(30) and not c._refinements
    both = HotspotSession(c._source, c.session.models, long_side=LONG_SIDE).add_prompt(
        2, 1, points=[(x, y), (W - 3.0, H - 3.0), (x + 1, y)], labels=[1, 0, 1])
    np.testing.assert_array_equal(c.store.get(1, 2).mask, both.mask)
    assert c.undo() and len(c.layer("clicks").data) == 2
    assert c.undo() and np.array_equal(c.store.get(1, 2).mask, first_mask)
    # A hotspot moved at once after a click lands on the click's refined mask, not its first answer.
    x9, y9 = deepest(sample.masks[9] == 1)
    c.add_click(9, x9, y9, positive=True)
    assert (1, 9) in c._refinements
    c.flush_layers()
    hotspots = c.layer("hotspots")
    data = hotspots.data.copy()
    data[np.flatnonzero(data[:, 0] == 9)[0], 1:] = (y9 + 1, x9 + 1)
    hotspots.data = data
    assert not c._refinements and c.last_error is None, c.last_error
    refined9 = HotspotSession(c._source, c.session.models, long_side=LONG_SIDE).add_prompt(9, 1, points=[(x9, y9)])
    np.testing.assert_array_equal(c.store.get(1, 9).mask, refined9.mask)
    assert (c.store.hotspot(1, 9).x, c.store.hotspot(1, 9).y) == pytest.approx((x9 + 1, y9 + 1))
    # Tracking at once after a click tracks from the refined mask, and the store ends with it
    # (completion off: it would change the mask again).
    c.complete_frames = 0
    x, y = deepest(sample.masks[5] == 1)
    c.add_click(5, x, y, positive=True)
    c.track_range = (5, 7)
    track_and_wait(widget, c)
    expected = HotspotSession(c._source, c.session.models, long_side=LONG_SIDE).add_prompt(5, 1, points=[(x, y)])
    np.testing.assert_array_equal(c.store.get(1, 5).mask, expected.mask)


def test_bad_prompts_are_shown_and_keep_annotations(setup, sample):
    viewer, widget, c = setup
    c.add_click(0, 900.0, 10.0)  # the first click, off the image: refused before it makes an object
    assert isinstance(c.last_error, PromptError) and "off the image" in str(c.last_error)
    assert c.store.object_ids == [] and len(c.layer("clicks").data) == 0
    c.last_error = None
    prompt_object_1(c, sample)
    before = c.store.get(1, 0)
    clicks = len(c.layer("clicks").data)
    c.add_click(0, -20.0, 10.0)  # off the image
    assert isinstance(c.last_error, PromptError) and "off the image" in str(c.last_error)
    assert len(c.layer("clicks").data) == clicks  # the bad click is taken back
    assert c.store.get(1, 0) is before
    c.last_error = None
    c.add_box(0, 30.0, 20.0, 30.0, 60.0)  # zero area
    assert isinstance(c.last_error, PromptError) and "zero area" in str(c.last_error)
    assert c.layer("boxes").nshapes == 0 and c.store.get(1, 0) is before
    c.last_error = None
    c.add_object()  # object 2: a negative click alone is refused
    c.add_click(3, 20.0, 20.0, positive=False)
    assert isinstance(c.last_error, PromptError) and "positive click" in str(c.last_error)
    assert c.store.get(2, 3) is None and len(c.layer("clicks").data) == clicks
    assert c.store.get(1, 0) is before


def test_box_prompt(setup, sample):
    viewer, widget, c = setup
    c.add_object("bird")
    ys, xs = np.nonzero(sample.masks[2] == 2)
    c.go_to_frame(2)
    c.add_box(2, xs.min() - 2.0, ys.min() - 2.0, xs.max() + 2.0, ys.max() + 2.0)
    assert c.last_error is None, c.last_error
    entry = c.store.get(1, 2)
    assert c.store.get_object(1).name == "bird"
    assert entry.provenance is Provenance.KEYFRAME and entry.mask.any()
    assert c.layer("boxes").nshapes == 1
    assert list(c.layer("boxes").features["object_id"]) == [1]
    # a second box for the same object and frame replaces the first one
    c.add_box(2, xs.min() - 4.0, ys.min() - 4.0, xs.max() + 4.0, ys.max() + 4.0)
    assert c.last_error is None and c.layer("boxes").nshapes == 1
    assert c._applied[(2, 1)].box == (xs.min() - 4.0, ys.min() - 4.0, xs.max() + 4.0, ys.max() + 4.0)


def test_auto_prompt_button(setup):
    viewer, widget, c = setup
    c.go_to_frame(4)
    widget.auto_button.click()
    entry = c.store.get(1, 4)
    if c.last_error is None:  # EG-Net found a salient object
        assert entry.provenance is Provenance.KEYFRAME and entry.mask.any()
        assert c.session.anchors(1) == [4]
        np.testing.assert_array_equal(c.layer("masks").data[4], c.store.label_frame(4))
    else:  # nothing salient: reported, nothing stored
        assert isinstance(c.last_error, PromptError) and entry is None


def test_gaze_file_stands_in_for_clicks(setup, sample, tmp_path):
    viewer, widget, c = setup
    x, y = deepest(sample.masks[0] == 1)
    path = tmp_path / "gaze.csv"
    path.write_text(f"t,x,y\n0,{x},{y}\n0,{x + 1},{y}\n5,{x},{y}\n")
    assert read_frame_fixations(path) == {0: [(x, y), (x + 1, y)], 5: [(x, y)]}
    c.load_gaze(path)
    assert c.wait(30)
    for t in (0, 5):
        if c.store.get(1, t) is not None:
            assert c.store.get(1, t).is_keyframe
    assert c.store.get(1, 0) is not None or c.last_error is not None
    bad = tmp_path / "bad.csv"
    bad.write_text("t,x,y\n0,abc,3\n")
    c.last_error = None
    c.load_gaze(bad)
    assert isinstance(c.last_error, PromptError) and "line 2" in str(c.last_error)


# ---------------------------------------------------------------------------- tracking
def test_track_to_the_end_streams_and_undoes_as_one_step(setup, sample):
    viewer, widget, c = setup
    paint_object_1(c, sample)
    seen, status = [], []
    c.run_progress.connect(lambda n: (seen.append(len(c.store.frames_with(1))),
                                      status.append(widget.status_label.text())))
    widget.direction_combo.setCurrentText("forward")
    widget.track_button.click()
    # no napari progress bar (its animation repaints the window): the dock's status line counts frames
    assert c.running and getattr(c.job("track").worker, "pbar", None) is None
    assert c.wait(60)
    assert status[0] == "tracking… 1 frame done"
    assert c.last_error is None, c.last_error
    assert c.store.frames_with(1) == list(range(T))
    # results streamed in frame by frame while the worker ran
    assert len(seen) == T - 1 and seen[0] == 2 and seen == sorted(seen)
    for t in range(1, T):
        entry = c.store.get(1, t)
        assert entry.provenance is Provenance.PROPAGATED and 0.0 <= entry.confidence <= 1.0
        assert entry.mask.shape == (H, W)
    np.testing.assert_array_equal(c.layer("masks").data, np.stack([c.store.label_frame(t) for t in range(T)]))
    with_hotspot = [t for t in range(T) if c.store.hotspot(1, t) is not None]  # None: the tracker saw none
    assert 0 in with_hotspot
    hotspots = c.layer("hotspots")
    assert sorted(hotspots.data[:, 0].astype(int)) == with_hotspot
    for t, y, x in hotspots.data:
        assert (c.store.hotspot(1, int(t)).x, c.store.hotspot(1, int(t)).y) == (x, y)
    tracks = c.layer("hotspot tracks")
    assert tracks.data.shape == (len(with_hotspot), 4) and set(tracks.data[:, 0]) == {1}
    assert widget.cancel_button.isEnabled() is False and widget.track_button.isEnabled()
    # one undo removes the whole run, redo brings it back
    widget.undo_button.click()
    c.flush_layers()
    assert c.store.frames_with(1) == [0]
    assert not c.layer("masks").data[1:].any() and len(c.layer("hotspots").data) == 1
    widget.redo_button.click()
    assert c.store.frames_with(1) == list(range(T))


def test_cancel_half_way_keeps_frames_done(setup, sample):
    viewer, widget, c = setup
    paint_object_1(c, sample)
    c.run_progress.connect(lambda n: widget.cancel_button.click() if n == 2 else None)
    track_and_wait(widget, c, "forward")
    done = c.store.frames_with(1)
    assert 3 <= len(done) < T, done  # stopped early, kept what was done
    assert done == list(range(len(done)))  # a contiguous run from the prompt
    np.testing.assert_array_equal(c.layer("masks").data, np.stack([c.store.label_frame(t) for t in range(T)]))
    assert not c.layer("masks").data[len(done):].any()
    c.undo()
    assert c.store.frames_with(1) == [0]


def test_track_right_after_cancel_waits_for_the_cancelled_run(setup, sample):
    """Cancel, then Track at once: the cancelled run ends its current frame first; Track waits for it
    instead of refusing with "cancel it first"."""
    viewer, widget, c = setup
    paint_object_1(c, sample)
    restarted = []

    def cancel_and_track(n):
        if n == 2 and not restarted:
            widget.cancel_button.click()
            restarted.append(c.track("forward"))

    c.run_progress.connect(cancel_and_track)
    widget.direction_combo.setCurrentText("forward")
    widget.track_button.click()
    assert c.wait(60) and c.wait(60)
    assert restarted and restarted[0] is not None and c.last_error is None, c.last_error
    assert c.store.frames_with(1) == list(range(T))  # the second run tracked the whole video


def test_removing_the_video_while_it_tracks_stops_the_run_and_lets_the_video_go(setup, sample):
    """The dock ignored the removal while a run went on and kept working on a layer the viewer no longer
    had; now the run stops at its next frame, its frames are autosaved and the dock lets the video go."""
    from napari_hotspot.annotations import load_project

    viewer, widget, c = setup
    paint_object_1(c, sample)
    target = c.autosaver.path
    video = c.video_layer
    again = []

    def remove_then_track(n):
        if n == 2 and video in viewer.layers:
            viewer.layers.remove(video)
            widget.scope_combo.setCurrentIndex(1)  # all objects: the scope that met a store already gone
            again.append(c.track("forward"))  # waits for the stopped run, then finds no video

    c.run_progress.connect(remove_then_track)
    widget.direction_combo.setCurrentText("forward")
    widget.track_button.click()
    assert c.wait(60)
    assert c.video_layer is None and c.store is None
    assert again == [None] and isinstance(c.last_error, PromptError) and "video" in str(c.last_error)
    saved, _ = load_project(target)
    assert 3 <= len(saved.frames_with(1)) < T  # the frames done before it stopped


def test_track_backward_range_and_both(setup, sample):
    viewer, widget, c = setup
    paint_object_1(c, sample, frame=10)
    widget.range_check.setChecked(True)
    widget.range_from.setValue(4)
    widget.range_to.setValue(14)
    assert c.track_range == (4, 14)
    track_and_wait(widget, c, "backward")
    assert c.store.frames_with(1) == list(range(4, 11))
    track_and_wait(widget, c, "both")
    assert c.store.frames_with(1) == list(range(4, 15))
    widget.range_check.setChecked(False)
    assert c.track_range is None


def test_track_without_prompt_is_reported(setup):
    viewer, widget, c = setup
    c.add_object()
    widget.track_button.click()
    assert not c.running and isinstance(c.last_error, PromptError) and "no prompt" in str(c.last_error)


# ---------------------------------------------------------------------------- correction
def test_paint_correction_becomes_keyframe_and_repropagation_stops_there(setup, sample):
    viewer, widget, c = setup
    paint_object_1(c, sample)
    track_and_wait(widget, c)
    masks = c.layer("masks")
    c.go_to_frame(12)
    masks.brush_size = 9
    masks.selected_label = 1
    masks.paint((12, 10, 10), 1)  # paint a blob in a corner: a correction on frame 12
    corrected = c.store.get(1, 12)
    assert corrected.provenance is Provenance.USER_CORRECTED
    np.testing.assert_array_equal(corrected.mask, np.asarray(masks.data[12]) == 1)
    assert corrected.mask[10, 10] and 12 in c.session.anchors(1)
    before = {t: c.store.get(1, t) for t in range(T)}
    # re-propagate from frame 6 (no keyframe, so it is redone too) both ways, up to keyframes 12 and 0
    c.go_to_frame(6)
    widget.repropagate_button.click()
    assert c.wait(60)
    after = {t: c.store.get(1, t) for t in range(T)}
    assert all(after[t] is not before[t] for t in range(1, 12))
    assert all(after[t] is before[t] for t in [0, *range(12, T)])
    # a full forward run never overwrites the correction either
    track_and_wait(widget, c)
    assert c.store.get(1, 12) is corrected and c.store.get(1, 0) is before[0]
    assert all(c.store.get(1, t) is not after[t] for t in range(13, T))
    # Ctrl+Z on the masks layer is the store's undo (the last run), not napari's per-stroke undo
    viewer.layers.selection.active = masks
    viewer.window._qt_viewer._key_map_handler.press_key("Control-Z")
    assert all(c.store.get(1, t) is after[t] for t in range(T))


def test_erasing_an_object_entirely_marks_it_absent_there(setup, sample):
    """Erased entirely on a frame, the object is absent there (an empty keyframe): a run leaves that
    frame empty and gives empty masks after it until the object's next prompt, where it tracks again;
    re-propagation neither starts from the absence nor crosses it; undo brings the mask back."""
    viewer, widget, c = setup
    widget.reacquire_check.setChecked(False)  # it stays absent (the next test looks for it again)
    assert c.options.reacquire is False and (c.session is None or c.session.options.reacquire is False)
    paint_object_1(c, sample)
    track_and_wait(widget, c)
    masks = c.layer("masks")
    tracked = c.store.get(1, 8)
    masks.contiguous = False  # the bucket then erases every pixel of the label on the frame
    masks.fill((8, *deepest(tracked.mask)[::-1]), 0)
    assert c.last_error is None, c.last_error
    gone = c.store.get(1, 8)
    assert gone.is_keyframe and gone.provenance is Provenance.USER_CORRECTED
    assert not gone.mask.any() and gone.hotspot is None
    assert c.session.absent_frames(1) == [8] and 8 not in c.session.anchors(1)
    track_and_wait(widget, c)
    assert all(not c.store.get(1, t).mask.any() for t in range(9, T))  # nothing tracked past it
    # the object comes back on frame 16: prompted there by painting
    paint_object_1(c, sample, frame=16)
    track_and_wait(widget, c)
    assert all(c.store.get(1, t).mask.any() for t in range(1, 8))
    assert all(not c.store.get(1, t).mask.any() and c.store.get(1, t).provenance is Provenance.PROPAGATED
               for t in range(9, 16))
    assert all(c.store.get(1, t).mask.any() for t in range(17, T))
    # from the absence nothing is re-propagated forward; from frame 5 forward it stops before it
    assert c.repropagation_plan([1], 8, ("forward",)) == {}
    assert c.repropagation_plan([1], 5, ("forward",)) == {"forward": (5, 7)}
    for _ in range(4):  # the two runs, the paint on frame 16 and the erase
        c.undo()  # frame 8 then holds its tracked mask again, and the next run syncs the session
    assert np.array_equal(c.store.get(1, 8).mask, tracked.mask)
    track_and_wait(widget, c)
    assert c.session.absent_frames(1) == [] and c.store.get(1, 12).mask.any()


def test_the_search_window_setting_reaches_the_session_and_a_run_follows_it(setup, sample):
    viewer, widget, c = setup
    assert widget.window_check.isChecked() and c.options.search_window
    widget.window_check.setChecked(False)
    assert not c.options.search_window
    paint_object_1(c, sample)
    grids = []
    real = c.session.models.tracker.forward
    c.session.models.tracker.forward = lambda f, corr, m: grids.append(tuple(f.s16.shape[-2:])) or real(f, corr, m)
    try:
        track_and_wait(widget, c)
        assert not c.session.search_window and len(set(grids)) == 1  # the whole frame only
        widget.window_check.setChecked(True)
        grids.clear()
        track_and_wait(widget, c)
    finally:
        c.session.models.tracker.forward = real
    assert c.session.search_window and len(set(grids)) > 1  # windows beside the prompt's whole frame


def test_the_steady_hotspot_setting_reaches_the_session_and_changes_only_the_hotspots(setup, sample):
    from napari_hotspot.options import HOTSPOT_SMOOTHING

    viewer, widget, c = setup
    spin = widget.option_spins["hotspot_smoothing"]
    assert spin.value() == HOTSPOT_SMOOTHING == c.options.hotspot_smoothing and "hotspot" in spin.toolTip()
    paint_object_1(c, sample)
    runs = {}
    for keep in (0.0, 0.6):
        spin.setValue(keep)
        assert c.options.hotspot_smoothing == keep and c.session.options.hotspot_smoothing == keep
        track_and_wait(widget, c)
        runs[keep] = [c.store.get(1, t) for t in range(1, T)]
    assert spin.specialValueText() == "off"  # 0 shows as off
    moved = 0
    for raw, steady in zip(runs[0.0], runs[0.6]):
        np.testing.assert_array_equal(raw.mask, steady.mask)
        assert (raw.hotspot is None) == (steady.hotspot is None)
        if steady.hotspot is not None:
            moved += not np.allclose((raw.hotspot.x, raw.hotspot.y), (steady.hotspot.x, steady.hotspot.y))
    assert moved > 0


def test_a_run_finds_an_erased_object_again_and_says_where(setup, sample):
    """By default a forward run looks for an object past the frame where it was erased: here it never
    left, so it is tracked again from the second frame after the absence, and the status line says so."""
    viewer, widget, c = setup
    assert widget.reacquire_check.isChecked() and c.options.reacquire
    paint_object_1(c, sample)
    track_and_wait(widget, c)
    masks = c.layer("masks")
    masks.contiguous = False
    masks.fill((8, *deepest(c.store.get(1, 8).mask)[::-1]), 0)
    assert c.session.absent_frames(1) == [8]
    track_and_wait(widget, c)
    assert not c.store.get(1, 8).mask.any() and not c.store.get(1, 9).mask.any()
    assert all(c.store.get(1, t).mask.any() for t in range(10, T))
    assert "found again on frame 10" in widget.status_label.text(), widget.status_label.text()
    # re-propagation from the absence looks for it too, up to the next keyframe (none here: the end)
    assert c.repropagation_plan([1], 8, ("forward",)) == {"forward": (9, T - 1)}
    assert c.repropagation_plan([1], 8, ("backward",)) == {}  # before it: the forward run's from frame 0
    assert c.repropagation_plan([1], 12, ("forward",)) == {}  # from a frame past it a new search would blank it
    c.go_to_frame(8)
    c.repropagate_from_here("forward")
    assert c.wait(60) and c.last_error is None, c.last_error
    assert "found again on frame 10" in widget.status_label.text(), widget.status_label.text()


def test_painting_a_new_label_adds_an_object(setup, sample):
    viewer, widget, c = setup
    masks = c.layer("masks")
    masks.brush_size = 7
    masks.paint((3, 50, 60), 4)
    assert c.store.has_object(4) and c.store.get(4, 3).provenance is Provenance.USER_CORRECTED
    assert widget.object_list.count() == 1 and c.session.anchors(4) == [3]
    c.undo()
    assert not c.store.has_object(4) and not masks.data[3].any()


@pytest.fixture
def small_mask_cache(monkeypatch):
    """A 4-frame dense cache for the masks layer (the default holds more than this 24-frame video)."""
    from napari_hotspot._napari import lazy_labels

    monkeypatch.setattr(lazy_labels, "DEFAULT_CACHE_FRAMES", 4)


def test_lazy_masks_layer_brush_fill_and_undo_reach_the_store(small_mask_cache, setup, sample, monkeypatch):
    from napari_hotspot._napari.lazy_labels import LazyLabels

    viewer, widget, c = setup
    monkeypatch.setattr(LazyLabels, "__array__", lambda *a, **k: pytest.fail("dense masks volume made"))
    paint_object_1(c, sample)
    track_and_wait(widget, c)
    masks = c.layer("masks")
    data = masks.data
    assert isinstance(data, LazyLabels) and data.store is c.store
    assert data.shape == (T, H, W) and data.dtype == np.uint8 and masks.ndim == 3
    assert len(data.cached_frames) <= 4 and data.cache_nbytes < 6 * H * W  # never the whole volume
    for t in range(T):  # every frame read through a 4-frame cache still shows the store
        np.testing.assert_array_equal(masks.data[t], c.store.label_frame(t))
    # brush: a blob of object 1 on frame 9 is a correction; napari's own undo/redo replays it on the layer
    c.go_to_frame(9)
    viewer.layers.selection.active = masks
    before = c.store.get(1, 9)
    old = np.asarray(masks.data[9])
    masks.brush_size = 9
    masks.selected_label = 1
    masks.paint((9, 10, 10), 1)
    corrected = c.store.get(1, 9)
    assert corrected.provenance is Provenance.USER_CORRECTED and corrected.mask[10, 10]
    np.testing.assert_array_equal(c.store.label_frame(9), masks.data[9])
    np.testing.assert_array_equal(masks._slice.image.raw, masks.data[9])  # what the canvas shows
    assert 9 in c.session.anchors(1)
    masks.undo()  # napari's per-stroke undo (bound to the store's undo on the keyboard): the layer's pixels
    np.testing.assert_array_equal(masks.data[9], old)
    masks.redo()
    np.testing.assert_array_equal(masks.data[9], c.store.label_frame(9))
    # bucket fill of frame 15's background with a new label: a new object with that region
    masks.contiguous = True
    masks.fill((15, 1, 1), 3)
    assert c.last_error is None, c.last_error
    assert c.store.has_object(3) and c.store.get(3, 15).provenance is Provenance.USER_CORRECTED
    np.testing.assert_array_equal(c.store.get(3, 15).mask, np.asarray(masks.data[15]) == 3)
    assert c.store.get(3, 15).mask[1, 1] and not (c.store.get(3, 15).mask & c.store.get(1, 15).mask).any()
    # data_setitem with index arrays (a legacy history atom) on a frame far from the others
    masks.data_setitem((np.array([21, 21]), np.array([2, 3]), np.array([2, 3])), 1)
    assert c.store.get(1, 21).provenance is Provenance.USER_CORRECTED and c.store.get(1, 21).mask[3, 3]
    assert len(data.cached_frames) <= 4 and masks.data is data
    # the store's undo (Ctrl+Z on the masks layer) takes the edits back, newest first, and the layer follows
    c.undo()
    assert c.store.get(1, 21) is not None and not c.store.get(1, 21).mask[3, 3]
    np.testing.assert_array_equal(masks.data[21], c.store.label_frame(21))
    viewer.layers.selection.active = c.ground_truth_layer()  # the layer the dock puts over the masks
    viewer.window._qt_viewer._key_map_handler.press_key("Control-Z")
    assert not c.store.has_object(3) and not (np.asarray(masks.data[15]) == 3).any()
    viewer.layers.selection.active = masks
    c.undo()
    assert c.store.get(1, 9) is before
    np.testing.assert_array_equal(masks.data[9], old)
    np.testing.assert_array_equal(masks.data[9], c.store.label_frame(9))
    np.testing.assert_array_equal(masks._slice.image.raw, old)


def test_dragging_or_placing_a_hotspot_is_a_correction(setup, sample):
    viewer, widget, c = setup
    paint_object_1(c, sample)
    track_and_wait(widget, c)
    # the propagated frame with the biggest mask (a sensible tracker keeps the object somewhere)
    t = max(range(1, T), key=lambda f: c.store.get(1, f).mask.sum())
    mask = c.store.get(1, t).mask
    assert mask.any()
    target_x, target_y = deepest(mask)
    hotspots = c.layer("hotspots")
    rows = np.flatnonzero(hotspots.data[:, 0] == t)
    if len(rows):  # what a drag ends with: the point moved
        data = hotspots.data.copy()
        data[rows[0], 1:] = (target_y, target_x)
        hotspots.data = data
    else:  # the tracker saw no hotspot there: the user places one
        hotspots.add([t, target_y, target_x])
    entry = c.store.get(1, t)
    assert entry.provenance is Provenance.USER_CORRECTED
    assert (entry.hotspot.x, entry.hotspot.y) == pytest.approx((target_x, target_y), abs=1.5)
    assert t in c.session.anchors(1) and t in c.keyframes()
    # a hotspot outside the mask is moved inside, with a warning
    outside = np.argwhere(~mask)[0]
    data = c.layer("hotspots").data.copy()
    data[np.flatnonzero(data[:, 0] == t)[0], 1:] = outside
    c.layer("hotspots").data = data
    hot = c.store.hotspot(1, t)
    assert mask[int(round(hot.y)), int(round(hot.x))] and "inside its mask" in str(c.last_error)
    # removing a hotspot point is not an annotation: it snaps back
    count = len(hotspots.data)
    hotspots.data = np.delete(hotspots.data, 0, axis=0)
    assert len(c.layer("hotspots").data) == count


def test_edits_are_refused_while_tracking(setup, sample):
    viewer, widget, c = setup
    paint_object_1(c, sample)
    widget.track_button.click()
    assert c.running and not c.layer("masks").editable
    c.auto_prompt()
    assert isinstance(c.last_error, PromptError) and "while tracking" in str(c.last_error)
    assert not widget.undo_button.isEnabled() and widget.cancel_button.isEnabled()
    assert c.wait(60)
    assert c.layer("masks").editable and widget.undo_button.isEnabled()


# ---------------------------------------------------------------------------- objects
def test_objects_add_select_rename_delete(setup, sample):
    viewer, widget, c = setup
    widget.add_button.click()
    widget.add_button.click()
    assert c.store.object_ids == [1, 2] and c.selected_id == 2 and widget.object_list.count() == 2
    assert c.layer("masks").selected_label == 2
    widget.object_list.setCurrentRow(0)
    assert c.selected_id == 1
    item = widget.object_list.item(1)
    item.setText("bird")
    assert c.store.get_object(2).name == "bird"
    item = widget.object_list.item(1)  # the rename rebuilt the list
    item.setText("  ")  # an empty name is refused and the list shows the kept one
    assert c.store.get_object(2).name == "bird" and widget.object_list.item(1).text() == "bird"
    assert c.last_error is not None and "needs a name" in str(c.last_error)
    c.last_error = None
    c.select_object(2)
    ys, xs = np.nonzero(sample.masks[0] == 2)
    c.add_box(0, xs.min() - 2.0, ys.min() - 2.0, xs.max() + 2.0, ys.max() + 2.0)
    assert c.store.get(2, 0) is not None
    widget.delete_button.click()
    assert c.store.object_ids == [1] and widget.object_list.count() == 1
    assert c.layer("boxes").nshapes == 0 and not (c.layer("masks").data == 2).any()
    c.undo()
    assert c.store.object_ids == [1, 2] and (c.layer("masks").data[0] == 2).any()
    assert c.layer("boxes").nshapes == 1 and (0, 2) in c._applied  # the box that made the mask is back
    c.redo()
    assert c.store.object_ids == [1] and c.layer("boxes").nshapes == 0
    c.undo()
    assert c.layer("boxes").nshapes == 1
    viewer.window._qt_viewer._key_map_handler.press_key("U")  # next object
    assert c.selected_id in (1, 2)


# ---------------------------------------------------------------------------- QA
def test_qa_plot_ground_truth_and_navigation(setup, sample):
    viewer, widget, c = setup
    paint_object_1(c, sample)
    track_and_wait(widget, c)
    assert c.ground_truth_layer().name == "sample ground truth"
    j = c.jaccard_series()[1]
    assert np.isfinite(j).all() and ((0 <= j) & (j <= 1)).all()
    conf = c.confidence_series()[1]
    assert conf[0] == 1.0 and np.isfinite(conf).all()
    widget._refresh_plot(immediate=True)
    assert widget.qa_plot.draw_count >= 1 and len(widget.qa_plot.axes.lines) >= 3

    class Click:  # what matplotlib hands the callback
        inaxes = widget.qa_plot.axes
        xdata = 9.2

    widget.qa_plot._on_click(Click())
    assert c.current_frame == 9
    widget.threshold_spin.setValue(1.0)  # every propagated frame counts as low
    c.go_to_frame(0)
    widget.next_low_button.click()
    assert c.current_frame == 1
    c.go_to_frame(T - 1)
    viewer.window._qt_viewer._key_map_handler.press_key("Shift-J")
    assert c.current_frame == T - 2
    viewer.window._qt_viewer._key_map_handler.press_key("Shift-K")
    assert c.current_frame == 0  # the prompt is the only keyframe
    assert c.next_keyframe() is None


def test_gaze_map_layer(setup):
    viewer, widget, c = setup
    widget.gaze_map_check.setChecked(True)
    c.wait(30)
    layer = c.layer("gaze map")
    assert layer is not None and layer.data.shape == (H, W) and layer.visible
    assert layer.data.max() == pytest.approx(1.0)
    widget.gaze_map_check.setChecked(False)
    assert not layer.visible


def test_the_look_alikes_setting_reaches_the_session(setup, sample):
    """'keep look-alikes out' is the session's distractor memory: on by default, a run computes the
    painted keyframe's distractors; off, it tracks without them."""
    viewer, widget, c = setup
    assert widget.lookalike_check.isChecked() and c.options.distractor_memory
    paint_object_1(c, sample, 0)
    widget.range_check.setChecked(True)
    widget.range_from.setValue(0)
    widget.range_to.setValue(3)
    track_and_wait(widget, c)
    assert (1, 0) in c.session._distractors
    widget.lookalike_check.setChecked(False)
    assert not c.options.distractor_memory and not c.session.distractor_memory
    c.session._distractors.clear()
    track_and_wait(widget, c)
    assert c.last_error is None and not c.session._distractors
    widget.lookalike_check.setChecked(True)
    assert c.session.distractor_memory


# ---------------------------------------------------------------------------- shortcuts
def test_shortcut_table_is_bound_and_documented(setup):
    viewer, widget, c = setup
    keys = [s.key for s in SHORTCUTS]
    assert len(keys) == len(set(keys))
    for shortcut in SHORTCUTS:
        assert callable(getattr(HotspotController, shortcut.action))
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "shortcuts.md"
    assert docs.read_text() == markdown_table(), "regenerate docs/shortcuts.md from keybindings.py"
    bound = {str(k) for k in viewer.keymap}
    assert {"Shift+F", "Shift+R", "K", "J", "N", "G"} <= bound
    masks = c.layer("masks")
    assert "Ctrl+Z" in {str(k) for k in masks.keymap}  # the store's undo on the masks layer
    widget.shutdown()
    assert not {"Shift+F", "Shift+R"} & {str(k) for k in viewer.keymap}
    assert "Ctrl+Z" not in {str(k) for k in masks.keymap}  # napari's own undo again


# ---------------------------------------------------------------------------- real mouse gestures
@dataclass
class MouseEvent:
    """A vispy-like mouse event as napari's mouse callbacks read it (world coordinates)."""

    type: str
    position: tuple
    is_dragging: bool = False
    modifiers: list = field(default_factory=list)
    pos: np.ndarray = field(default_factory=lambda: np.zeros(2))
    view_direction: list | None = None
    up_direction: list | None = None
    dims_displayed: list = field(default_factory=lambda: [1, 2])
    handled: bool = False


def drag(layer, points):
    """Press at the first point, move through the others, release at the last (napari's callback chain)."""
    from napari.utils._proxies import ReadOnlyWrapper
    from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

    def event(kind, pos, dragging):
        return ReadOnlyWrapper(MouseEvent(kind, tuple(pos), is_dragging=dragging), exceptions=("handled",))

    mouse_press_callbacks(layer, event("mouse_press", points[0], False))
    for pos in points[1:]:
        mouse_move_callbacks(layer, event("mouse_move", pos, True))
    mouse_release_callbacks(layer, event("mouse_release", points[-1], len(points) > 1))


def test_mouse_click_box_and_hotspot_drag(setup, sample):
    viewer, widget, c = setup
    c.go_to_frame(0)  # mouse positions are on the frame shown
    x, y = deepest(sample.masks[0] == 1)
    widget.click_button.click()  # the clicks layer in add mode
    clicks = c.layer("clicks")
    assert viewer.layers.selection.active is clicks and clicks.mode == "add"
    drag(clicks, [(0, y, x)])
    assert len(clicks.data) == 1 and c.store.get(1, 0) is not None
    assert c.store.get(1, 0).provenance is Provenance.KEYFRAME
    # dragging object 1's hotspot to a new place is one correction (one undo step)
    c.flush_layers()
    hotspots = c.layer("hotspots")
    viewer.layers.selection.active = hotspots
    hotspots.mode = "select"
    assert len(hotspots.data) == 1
    row = int(np.flatnonzero(hotspots.features["object_id"] == 1)[0])
    start = hotspots.data[row].copy()
    target_x, target_y = deepest(c.store.get(1, 0).mask)
    steps = [tuple(start), (0, (start[1] + target_y) / 2, (start[2] + target_x) / 2), (0, target_y, target_x)]
    drag(hotspots, steps)
    hot = c.store.hotspot(1, 0)
    assert (hot.x, hot.y) == pytest.approx((target_x, target_y), abs=1.5)
    assert c.store.get(1, 0).provenance is Provenance.USER_CORRECTED
    c.undo()  # the whole drag is one undo step
    assert (c.store.hotspot(1, 0).y, c.store.hotspot(1, 0).x) == (start[1], start[2])
    c.redo()
    # a box drawn with the mouse prompts once, when the mouse is released
    c.add_object("bird")
    ys, xs = np.nonzero(sample.masks[0] == 2)
    widget.box_button.click()
    boxes = c.layer("boxes")
    assert boxes.mode == "add_rectangle"
    corners = [(0, ys.min() - 2.0, xs.min() - 2.0), (0, ys.mean(), xs.mean()), (0, ys.max() + 2.0, xs.max() + 2.0)]
    viewer.layers.selection.active = boxes
    drag(boxes, corners)
    assert c.last_error is None, c.last_error
    assert boxes.nshapes == 1 and c.store.get(2, 0) is not None
    x0, y0, x1, y1 = c._applied[(0, 2)].box
    assert (x0, y0, x1, y1) == pytest.approx((xs.min() - 2.0, ys.min() - 2.0, xs.max() + 2.0, ys.max() + 2.0), abs=0.6)
