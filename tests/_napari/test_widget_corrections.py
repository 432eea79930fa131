"""GUI tests of the annotator's correction loop in the hotspot dock: corrective clicks that refine the mask
on a frame (a negative click alone removes a part), clicks that follow undo and redo and keep their
colours, re-propagation towards the frames that can change, and one autosave per source.

Runs headless under Xvfb like test_widget.py, on the same small synthetic video (two objects).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from napari.utils.colormaps.standardize_color import transform_color
from scipy.ndimage import distance_transform_edt

from napari_hotspot._napari.controller import EXTRA_KEY, NEGATIVE_COLOR, POSITIVE_COLOR
from napari_hotspot._napari.controller_project import mask_fingerprint
from napari_hotspot._napari.widget import HotspotWidget
from napari_hotspot.annotations import Provenance, load_project
from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.sample_data import make_sample_video, write_sample

pytestmark = pytest.mark.gui

T, H, W = 24, 96, 128
LONG_SIDE = 256


@pytest.fixture(scope="module")
def sample():
    return make_sample_video(num_frames=T, height=H, width=W)


def deepest(mask: np.ndarray) -> tuple[float, float]:
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return float(x), float(y)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


@pytest.fixture
def setup(make_napari_viewer, models, sample_folder, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(sample_folder.frames), plugin="napari-hotspot")
    widget = HotspotWidget(viewer, models=models, long_side=LONG_SIDE, autosave_dir=tmp_path / "autosave",
                           adapt_seconds=0)
    viewer.window.add_dock_widget(widget, name="Hotspot tracking")
    c = widget.controller
    assert c.ready and c.current_frame == 0  # the dock opened the video on its first frame
    yield viewer, widget, c
    widget.shutdown()


def paint_and_track(c, sample, frame=0):
    """Object 1's ground truth painted on ``frame`` (a keyframe), then tracked forward over the video."""
    ys, xs = np.nonzero(sample.masks[frame] == 1)
    c.layer("masks").data_setitem((np.full_like(ys, frame), ys, xs), 1)
    assert c.last_error is None and c.store.get(1, frame).is_keyframe
    c.track("forward")
    assert c.wait(120) and c.last_error is None


def other_at(sample, t):
    return sample.masks[t] == 2


def drift(c, sample, t):
    """Make object 1's mask on frame ``t`` spread onto object 2 (the drift of two look-alikes)."""
    spread = (sample.masks[t] == 1) | (sample.masks[t] == 2)
    c.store.set_frame(1, t, mask=spread, confidence=0.9, provenance=Provenance.PROPAGATED)
    return spread


def test_negative_click_alone_removes_the_part_it_points_at(setup, sample, tmp_path):
    viewer, widget, c = setup
    paint_and_track(c, sample)
    t = 10
    drift(c, sample, t)
    assert c.store.get(1, t).provenance is Provenance.PROPAGATED
    for later in (t + 1, t + 2):
        drift(c, sample, later)
    half = (sample.masks[t + 3] == 2) | ((sample.masks[t + 3] == 1) & (np.arange(W) < deepest(sample.masks[t + 3] == 1)[0]))
    c.store.set_frame(1, t + 3, mask=half, confidence=0.9, provenance=Provenance.PROPAGATED)
    before = {f: c.store.get(1, f).mask for f in range(t + 1, T)}
    c.go_to_frame(t)
    x, y = deepest(sample.masks[t] == 2)
    c.add_click(t, x, y, positive=False)  # a negative click alone, on a propagated frame
    assert c.last_error is None, c.last_error
    entry = c.store.get(1, t)
    assert entry.is_keyframe and entry.provenance is Provenance.USER_CORRECTED
    other, own = sample.masks[t] == 2, sample.masks[t] == 1
    assert (entry.mask & other).sum() < 0.2 * other.sum()  # the part on the other object is gone
    assert (entry.mask & own).sum() > 0.8 * own.sum()  # the object itself stays
    assert not entry.mask[int(y), int(x)]
    clicks = c.layer("clicks")
    assert list(clicks.features["label"]) == [0]  # the click stays on the layer
    assert "corrected" in widget.status_label.text()
    # colours stay true: red, also after N switches the next click back to positive
    np.testing.assert_allclose(clicks.face_color[0], NEGATIVE_COLOR)
    viewer.layers.selection.active = clicks
    viewer.window._qt_viewer._key_map_handler.press_key("N")
    assert c.click_label == 1
    np.testing.assert_allclose(clicks.face_color[0], NEGATIVE_COLOR)
    np.testing.assert_allclose(transform_color(clicks.current_face_color)[0], POSITIVE_COLOR, atol=1e-2)
    # and in the project (what a reopened session draws from), with the mask the click corrected
    drifted = (sample.masks[t] == 1) | (sample.masks[t] == 2)
    assert c._project_extra()[EXTRA_KEY]["prompts"] == [
        {"frame": t, "object_id": 1, "clicks": [[x, y, 0]], "box": None,
         "corrects": CompressedMask.from_array(drifted).to_json(),
         "made_mask": mask_fingerprint(c.store.get(1, t).packed_mask)}]
    saved = c._project_extra()[EXTRA_KEY]["prompts"][0]["corrects"]
    assert c._project_extra()[EXTRA_KEY]["prompts"][0]["corrects"] is saved  # each autosave: encoded once per base
    # Re-propagating from it only removes pixels (corrections.combine_repropagated): the drift onto
    # object 2 goes, and the frame that had lost half of object 1 does not get it back from the tracker.
    assert c.click_correction_polarity(t) == {1: "remove"}
    c.repropagate_from_here("forward")
    assert c.wait(120) and c.last_error is None, c.last_error
    after = {f: c.store.get(1, f).mask for f in before}
    assert all(not (after[f] & ~before[f]).any() for f in before)
    for f in (t + 1, t + 2, t + 3):
        assert (after[f] & other_at(sample, f)).sum() < 0.2 * other_at(sample, f).sum(), f
    assert (after[t + 2] & (sample.masks[t + 2] == 1)).sum() > 0.8 * (sample.masks[t + 2] == 1).sum()
    assert "only removed pixels (negative clicks)" in widget.status_label.text()
    # Saved and reopened, the click still corrects that mask: re-propagation keeps to its kind, and a
    # second negative click refines the corrected mask (it is not refused as a pick without a positive click).
    project = c.save_project(tmp_path / "corrected.hotspot")
    assert project is not None and c.open_project(project), c.last_error
    assert c.click_correction_polarity(t) == {1: "remove"}
    reopened = c._project_extra()[EXTRA_KEY]["prompts"][0]["corrects"]
    assert reopened == saved and reopened is not saved  # the reopened base is encoded afresh
    corrected = c.store.get(1, t).mask
    c.add_click(t, x + 1, y, positive=False)  # beside the first one, on object 2
    assert c.last_error is None, c.last_error
    assert not (c.store.get(1, t).mask & ~corrected).any()
    assert c.click_correction_polarity(t) == {1: "remove"}
    # A frame whose mask changed after the save (another tool) no longer counts as made by the clicks:
    # re-propagation from it replaces; the clicks still correct the mask they corrected.
    assert c.save_project(project) is not None
    meta_path = project / "project.json"
    meta = json.loads(meta_path.read_text())
    meta["extra"][EXTRA_KEY]["prompts"][0]["made_mask"] = "0" * 16
    meta_path.write_text(json.dumps(meta))
    assert c.open_project(project) and c.last_error is None, c.last_error
    assert c.click_correction_polarity(t) == {} and c._correction_base(t, 1) is not None
    # A damaged record loses only that correction's base: a warning, and every mask and click still loads.
    meta = json.loads(meta_path.read_text())
    meta["extra"][EXTRA_KEY]["prompts"][0]["corrects"]["data"] = "broken"
    meta["extra"][EXTRA_KEY]["prompts"] += [{"frame": T + 5, "object_id": 1, "clicks": [[1, 1, 1]], "box": None},
                                            {"object_id": 1}]  # a frame past the video's end, no frame at all
    meta_path.write_text(json.dumps(meta))
    masks = {f: c.store.get(1, f).mask for f in range(T)}
    assert c.open_project(project)
    assert "unreadable" in str(c.last_error)
    assert len(c.layer("clicks").data) == 2
    assert all(np.array_equal(c.store.get(1, f).mask, m) for f, m in masks.items())
    assert c.click_correction_polarity(t) == {}  # re-propagation from it now replaces


def test_negative_click_on_an_empty_frame_is_refused_clearly(setup, sample):
    viewer, widget, c = setup
    c.add_object()
    x, y = deepest(sample.masks[0] == 1)
    c.add_click(0, x, y, positive=False)
    assert c.last_error is not None and "no mask of this object to correct" in str(c.last_error)
    assert c.store.get(1, 0) is None and len(c.layer("clicks").data) == 0


def test_clicks_follow_undo_and_redo(setup, sample):
    viewer, widget, c = setup
    paint_and_track(c, sample)
    t = 8
    spread = drift(c, sample, t)
    c.go_to_frame(t)
    x2, y2 = deepest(sample.masks[t] == 2)
    x1, y1 = deepest(sample.masks[t] == 1)
    c.add_click(t, x2, y2, positive=False)
    first = c.store.get(1, t)
    c.add_click(t, x1, y1, positive=True)  # a second click refines the same frame again
    assert c.last_error is None, c.last_error
    second = c.store.get(1, t)
    assert second is not first and second.mask[int(y1), int(x1)] and not second.mask[int(y2), int(x2)]
    clicks = c.layer("clicks")
    assert list(clicks.features["label"]) == [0, 1]

    assert c.undo()
    assert c.store.get(1, t) is first
    assert list(clicks.features["label"]) == [0]  # the undone click left the layer
    np.testing.assert_allclose(clicks.face_color[0], NEGATIVE_COLOR)
    assert [p["clicks"] for p in c._project_extra()[EXTRA_KEY]["prompts"]] == [[[x2, y2, 0]]]
    assert c.undo()
    np.testing.assert_array_equal(c.store.get(1, t).mask, spread)  # back to the propagated mask
    assert len(clicks.data) == 0 and c._project_extra()[EXTRA_KEY]["prompts"] == []
    assert c.redo() and c.redo()
    assert c.store.get(1, t) is second
    assert list(clicks.features["label"]) == [0, 1]
    # a click after undo corrects what the frame shows then (the propagated mask)
    assert c.undo() and c.undo()
    c.add_click(t, x2, y2, positive=False)
    assert c.last_error is None
    assert not c.store.get(1, t).mask[int(y2), int(x2)] and list(clicks.features["label"]) == [0]


def test_repropagate_runs_towards_frames_that_can_change(setup, sample):
    viewer, widget, c = setup
    paint_and_track(c, sample)
    ys, xs = np.nonzero(sample.masks[T - 1] == 1)  # the last frame corrected: a keyframe
    c.layer("masks").data_setitem((np.full_like(ys, T - 1), ys, xs), 1)
    c.adapt_seconds = 1.0  # adaptation on (the new keyframe waits to be learnt): it must not start
    c.go_to_frame(T - 1)
    assert c.repropagation_plan([1], T - 1) == {"backward": (T - 2, 1)}  # nothing lies ahead
    assert c.repropagate_from_here("forward") is None
    assert not c.running and not c.adapting
    assert "nothing to re-propagate from frame 23" in str(c.last_error)
    # a correction on frame 12: from frame 6 both ways, up to the keyframes 0 and 12
    c.last_error = None
    c.adapt_seconds = 0
    ys, xs = np.nonzero(sample.masks[12] == 1)
    c.layer("masks").data_setitem((np.full_like(ys, 12), ys, xs), 1)
    assert c.store.get(1, 12).is_keyframe
    assert c.repropagation_plan([1], 6) == {"forward": (6, 11), "backward": (6, 1)}
    after = {t: c.store.get(1, t) for t in range(13, T)}
    c.go_to_frame(6)
    widget.repropagate_button.click()
    assert c.wait(120) and c.last_error is None, c.last_error
    changed = [t for t in range(1, 12) if c.store.get(1, t).provenance is Provenance.PROPAGATED]
    assert changed == list(range(1, 12))
    assert all(c.store.get(1, t) is after[t] for t in after)  # beyond the keyframe: untouched
    text = widget.status_label.text()
    assert "re-propagated from frame 6: forward over frames 6-11, backward over frames 6-1" in text, text
    # from a keyframe with keyframes right next to it on both sides: nothing to do, said so
    c.layer("masks").data_setitem((np.full_like(ys, 11), ys, xs), 1)
    c.layer("masks").data_setitem((np.full_like(ys, 13), ys, xs), 1)
    c.go_to_frame(12)
    assert c.repropagate_from_here() is None and "nothing to re-propagate from frame 12" in str(c.last_error)


def test_autosave_is_per_source_for_two_same_named_videos(make_napari_viewer, models, sample, tmp_path):
    """A frame folder and an mp4 of the same name, each opened in its own session, keep their own
    autosave: the second session does not overwrite the first one's."""
    folder = write_sample(tmp_path / "a", "folder", sample=sample, name="clip")
    movie = write_sample(tmp_path / "b", "mp4", sample=sample, name="clip")
    saved = []
    for source, frame in ((folder.frames, 0), (movie.frames, 3)):
        viewer = make_napari_viewer()
        [video, *_] = viewer.open(str(source), plugin="napari-hotspot")
        assert video.name == "clip"
        widget = HotspotWidget(viewer, models=models, long_side=LONG_SIDE, autosave_dir=tmp_path / "autosave",
                               adapt_seconds=0)
        viewer.window.add_dock_widget(widget, name="Hotspot tracking")
        c = widget.controller
        try:
            assert c.video_layer is video and c.ready
            x, y = deepest(sample.masks[frame] == 1)
            c.add_click(frame, x, y, positive=True)
            assert c.last_error is None, c.last_error
            saved.append(c.autosaver.path)
        finally:
            widget.shutdown()  # closing autosaves
    path_a, path_b = saved
    assert path_a != path_b and path_a.parent == path_b.parent
    assert path_a.name.startswith("clip-") and path_b.name.startswith("clip-")
    store_a, meta_a = load_project(path_a)
    store_b, meta_b = load_project(path_b)
    assert store_a.frames_with(1) == [0] and store_b.frames_with(1) == [3]


def test_defaults_first_frame_ground_truth_contour_and_pickers(setup):
    """The dock opens the video on frame 0, draws ground truth as a contour in its own colour above
    the masks, and the reframe and labelling docks pick the tracker's masks and hotspots."""
    from napari_hotspot._napari.labelling_widget import LabellingWidget
    from napari_hotspot._napari.reader import GROUND_TRUTH_COLOR
    from napari_hotspot._napari.reframe_widget import ReframeWidget

    viewer, widget, c = setup
    assert c.current_frame == 0
    names = [layer.name for layer in viewer.layers]
    assert names.index("sample ground truth") == names.index("sample masks") + 1
    truth = viewer.layers["sample ground truth"]
    assert truth.contour >= 1 and truth.opacity == 1.0
    np.testing.assert_allclose(truth.colormap.map(np.array([1, 2]))[:, :4], [GROUND_TRUTH_COLOR] * 2, atol=1e-6)
    reframe = ReframeWidget(viewer)
    labelling = LabellingWidget(viewer)
    try:
        assert reframe.labels_combo.currentText() == "sample masks"
        assert reframe.points_combo.currentText() == "sample hotspots"
        assert reframe.image_combo.currentText() == "sample"
        assert labelling.tracker_combo.currentText() == "sample hotspots"
        assert labelling.masks_combo.currentText() == "sample masks"
        # a layer the user picks stays picked when layers change
        labelling.masks_combo.setCurrentText("sample ground truth")
        labelling.masks_combo.activated.emit(labelling.masks_combo.currentIndex())
        viewer.add_points(np.zeros((0, 3)), ndim=3, name="notes")
        assert labelling.masks_combo.currentText() == "sample ground truth"
    finally:
        reframe.shutdown()
        labelling.shutdown()


def test_a_tracked_frame_kept_as_keyframe_bounds_repropagation_and_waits_to_be_learnt(setup, sample):
    viewer, widget, c = setup
    paint_and_track(c, sample)
    tracked = c.store.get(1, 10)
    assert tracked.provenance is Provenance.PROPAGATED and 10 not in c.store.keyframes(1)
    c.go_to_frame(10)
    widget.keyframe_button.click()
    kept = c.store.get(1, 10)
    assert kept.provenance is Provenance.ACCEPTED and kept.confidence == 1.0 and kept.is_keyframe
    assert np.array_equal(kept.mask, tracked.mask) and kept.hotspot == tracked.hotspot  # kept as it was
    assert c.store.keyframes(1) == [0, 10] and 10 not in c.adaptation_pending(1)  # nothing to learn from it
    assert "frame 10: object 1 kept as a keyframe" in widget.status_label.text()
    # re-propagation from frame 5 stops at it; the frames beyond it stay as they were
    after = {t: c.store.get(1, t) for t in range(10, T)}
    assert c.repropagation_plan([1], 5) == {"forward": (5, 9), "backward": (5, 1)}
    c.go_to_frame(5)
    assert c.repropagate_from_here() is not None
    assert c.wait(120) and c.last_error is None, c.last_error
    assert all(c.store.get(1, t) is after[t] for t in after)
    # to the tracker it is a correction (the painted prompt on frame 0 stays the object's appearance)
    # that adaptation does not learn
    assert c.session._objects[1].anchors[10].source == "kept" and 10 not in c.session.pending_adaptation_frames(1)
    # pressed again: unmarked (the mask stays until a run changes it); Ctrl+Z marks it again
    c.go_to_frame(10)
    assert c.toggle_keyframe() is False
    assert c.store.get(1, 10).provenance is Provenance.PROPAGATED and c.store.keyframes(1) == [0]
    assert np.array_equal(c.store.get(1, 10).mask, tracked.mask)
    c.undo()
    assert c.store.get(1, 10).provenance is Provenance.ACCEPTED
    # the painted first frame stays a keyframe, and so does the only keyframe of an object
    c.go_to_frame(0)
    assert c.toggle_keyframe() is None and "not by Keep as keyframe" in str(c.last_error)
    assert c.store.keyframes(1) == [0, 10]


def test_keeping_an_empty_tracked_frame_says_the_object_is_absent_and_a_frame_never_tracked_is_refused(setup, sample):
    viewer, widget, c = setup
    c.set_options(reacquire=False)  # the object stays absent past the kept frame
    c.go_to_frame(3)
    assert c.toggle_keyframe() is None  # nothing prompted or tracked yet
    assert "no object has a mask on frame 3 to keep" in str(c.last_error)
    c.last_error = None
    paint_and_track(c, sample)
    c.store.set_frame(1, 7, mask=np.zeros((H, W), bool), hotspot=None, provenance=Provenance.PROPAGATED)
    c.go_to_frame(7)
    assert c.toggle_keyframe() is True
    kept = c.store.get(1, 7)
    assert kept.provenance is Provenance.ACCEPTED and not kept.mask.any() and kept.is_keyframe
    assert "frame 7: object 1 kept as absent" in widget.status_label.text()
    assert 7 not in c.adaptation_pending(1)  # nothing to learn from an absence
    c.track("forward")
    assert c.wait(120) and c.last_error is None, c.last_error
    assert c.session.absent_frames(1) == [7]
    assert c.store.get(1, 6).mask.any() and not any(c.store.get(1, t).mask.any() for t in range(8, T))
    # the object comes back on frame 12: one click there prompts it afresh (nothing to correct on an
    # empty frame), not a click-sized speck
    own = sample.masks[12] == 1
    c.go_to_frame(12)
    c.add_click(12, *deepest(own), positive=True)
    assert c.last_error is None, c.last_error
    back = c.store.get(1, 12)
    assert back.is_keyframe and iou(back.mask, own) > 0.5, iou(back.mask, own)


def test_keep_as_keyframe_unmarks_only_what_it_marked(setup, sample, tmp_path):
    """An Auto or clicked prompt, or a painted correction, stays a keyframe when Shift+M is pressed on it."""
    viewer, widget, c = setup
    paint_and_track(c, sample)
    c.store.set_frame(1, 4, confidence=1.0, provenance=Provenance.KEYFRAME)  # as a prompt on an empty frame writes
    c.go_to_frame(4)
    assert c.toggle_keyframe() is None and "not by Keep as keyframe" in str(c.last_error)
    assert c.store.get(1, 4).provenance is Provenance.KEYFRAME
    c.go_to_frame(9)
    assert c.toggle_keyframe() is True and c.toggle_keyframe() is False
    assert c.toggle_keyframe() is True
    c.undo()
    c.redo()  # the same mark again: it can still unmark it
    assert c.toggle_keyframe() is False and c.store.get(1, 9).provenance is Provenance.PROPAGATED
    assert c.toggle_keyframe() is True  # kept frames are saved as such: a reopened project unmarks them too
    saved = tmp_path / "kept.hotspot"
    assert c.save_project(saved)
    assert load_project(saved)[0].get(1, 9).provenance is Provenance.ACCEPTED


def test_an_object_absent_everywhere_it_was_marked_does_not_block_a_run_of_all_objects(setup, sample):
    viewer, widget, c = setup
    paint_and_track(c, sample)
    masks = c.layer("masks")
    masks.paint((5, 20, 20), 3)  # a slip of the brush: a new object 3 on frame 5 ...
    assert c.store.has_object(3)
    masks.contiguous = False
    masks.fill((5, 20, 20), 0)  # ... erased again: absent there, prompted nowhere
    assert c.store.get(3, 5).is_keyframe and not c.store.get(3, 5).mask.any()
    assert "absent here" in widget.status_label.text()
    c.track_scope = "all"
    c.track("forward")
    assert c.wait(120) and c.last_error is None, c.last_error
    assert c.store.get(1, 20).mask.any()
