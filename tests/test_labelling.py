"""Keyframe labelling protocol (Qt-free): schedule, derived frames, several annotators, agreement."""

import math

import numpy as np
import pytest

from napari_hotspot.annotations.labelling import (
    KeyframeLabeller,
    annotator_summary,
    annotator_tracks,
    derive_track,
    frame_agreements,
    keyframe_schedule,
    object_agreement,
    parse_frame_list,
    run_tracker,
    tracker_track,
)
from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.errors import AnnotationError

T, H, W = 25, 60, 80


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def tracked_store(num_frames=T, objects=1):
    """A store whose main track moves right 2 px per frame (the 'tracker'), with box masks."""
    store = AnnotationStore(num_frames, H, W)
    for k in range(1, objects + 1):
        store.add_object(obj_id=k)
        for t in range(num_frames):
            mask = np.zeros((H, W), bool)
            mask[10 * k: 10 * k + 20, t: t + 20] = True
            store.set_frame(k, t, mask=mask, hotspot=(10.0 + t, 10.0 * k), provenance="propagated")
    return store


def test_schedule_every_n_plus_extra_frames():
    assert keyframe_schedule(48) == [0, 10, 20, 30, 40]
    assert keyframe_schedule(48, 10, extra=[5, 10, 47]) == [0, 5, 10, 20, 30, 40, 47]
    assert keyframe_schedule(7, 3, start=1) == [1, 4]
    with pytest.raises(AnnotationError, match="out of range"):
        keyframe_schedule(10, 5, extra=[10])
    with pytest.raises(AnnotationError, match="keyframe interval"):
        keyframe_schedule(10, 0)


def test_parse_frame_list():
    assert parse_frame_list("5, 17 30-32;3") == [3, 5, 17, 30, 31, 32]
    assert parse_frame_list("") == []
    with pytest.raises(AnnotationError, match="'x'"):
        parse_frame_list("4, x")
    with pytest.raises(AnnotationError, match="backwards"):
        parse_frame_list("9-3")
    with pytest.raises(AnnotationError, match=r"out of range.*0\.\.9"):
        parse_frame_list("12", num_frames=10)


def test_derive_track_follows_tracker_with_blended_offsets():
    tracker = np.column_stack([np.arange(21) * 3.0, np.full(21, 50.0) + np.sin(np.arange(21))])
    labels = {0: (tracker[0, 0] + 4, tracker[0, 1]), 10: (tracker[10, 0], tracker[10, 1] - 6), 20: None}
    derived = derive_track(labels, tracker)
    # between 0 and 10: offset (4, 0) -> (0, -6), linear in time, added to the tracker (not a straight line)
    for t in range(1, 10):
        w = t / 10
        assert derived[t] == pytest.approx((tracker[t, 0] + 4 * (1 - w), tracker[t, 1] - 6 * w))
    assert not set(range(11, 21)) & set(derived)  # next to a not-visible keyframe: nothing derived
    assert 0 not in derived and 10 not in derived  # keyframes themselves are the annotator's


def test_derive_track_hold_gaps_and_clipping():
    tracker = np.column_stack([np.arange(10.0), np.full(10, 5.0)])
    tracker[6] = np.nan  # the tracker lost the object on frame 6
    derived = derive_track({2: (4.0, 5.0), 5: (7.0, 5.0)}, tracker, hold_before=True, hold_after=True,
                           frame_size=(10, 9))
    assert derived[0] == pytest.approx((2.0, 5.0)) and derived[1] == pytest.approx((3.0, 5.0))
    assert 6 not in derived
    assert derived[9] == pytest.approx((8.0, 5.0))  # 9 + 2 clipped to W - 1 = 8
    assert derive_track({}, tracker) == {}
    with pytest.raises(AnnotationError, match=r"\(T, 2\)"):
        derive_track({0: (1, 1)}, np.zeros((5, 3)))


def test_labelling_pass_accept_move_not_visible_and_derived():
    store = tracked_store()
    clock = FakeClock()
    lab = KeyframeLabeller(store, "A", every=10, extra_frames=[15], clock=clock)
    assert lab.schedule == [0, 10, 15, 20]
    assert lab.progress_text() == "A - object 1 (object 1): keyframe 1 of 4, frame 0"
    visited = []
    # keyframe 0: accept the tracker's proposal after 2 s
    visited.append(lab.current.frame)
    assert (lab.proposal().x, lab.proposal().y) == (10.0, 10.0)
    clock.now += 2.0
    record = lab.accept()
    assert record.provenance == Provenance.KEYFRAME and record.seconds_spent == pytest.approx(2.0)
    # keyframe 10: move it 5 px right, then accept
    visited.append(lab.current.frame)
    assert lab.progress() == (2, 4)
    lab.move(25.0, 12.0)
    assert (lab.proposal().x, lab.proposal().y) == (25.0, 12.0)
    clock.now += 3.0
    assert lab.accept().provenance == Provenance.USER_CORRECTED
    # keyframe 15: not visible; keyframe 20: accept
    visited.append(lab.current.frame)
    lab.mark_not_visible()
    visited.append(lab.current.frame)
    lab.accept()
    assert visited == [0, 10, 15, 20] and lab.done and lab.current is None

    own = store.annotator_hotspots("A")
    assert own[(1, 15)].hotspot is None
    assert own[(1, 10)].hotspot.x == 25.0
    # frames 1..9 derived: offset (0, 0) at 0 -> (5, 2) at 10, added to the tracker's x = 10 + t
    for t in range(1, 10):
        rec = own[(1, t)]
        assert rec.provenance == Provenance.DERIVED
        assert (rec.hotspot.x, rec.hotspot.y) == pytest.approx((10 + t + 0.5 * t, 10 + 0.2 * t))
    assert all((1, t) not in own for t in (11, 12, 13, 14, 16, 17, 18, 19))  # around the not-visible key
    assert all(own[(1, t)].provenance == Provenance.DERIVED for t in range(21, T))  # held to the end
    # the main (tracker) track is untouched
    assert store.hotspot(1, 10).x == 20.0 and store.get(1, 10).provenance == Provenance.PROPAGATED
    summary = annotator_summary(store, "A")
    assert summary["keyframes"] == 4 and summary["not_visible"] == 1 and summary["moved"] == 1
    assert summary["seconds_total"] == pytest.approx(5.0)


def test_revisit_updates_label_time_and_derived_frames():
    store = tracked_store()
    clock = FakeClock()
    lab = KeyframeLabeller(store, "A", every=10, clock=clock)
    clock.now += 1.0
    lab.accept()
    clock.now += 1.0
    lab.accept()
    before = store.annotator_hotspots("A")[(1, 5)].hotspot
    lab.back()
    assert lab.current.frame == 10
    assert lab.proposal().x == 20.0  # the earlier label is the proposal now
    lab.move(30.0, 10.0)
    clock.now += 4.0
    lab.accept()
    after = store.annotator_hotspots("A")
    assert after[(1, 10)].seconds_spent == pytest.approx(5.0)  # 1 s + 4 s over two visits
    assert after[(1, 5)].hotspot.x == pytest.approx(before.x + 5.0)
    # one undo step per keyframe: undo restores the first label and its derived frames
    store.undo()
    assert store.annotator_hotspots("A")[(1, 5)].hotspot == before


def test_second_annotator_never_changes_the_first():
    store = tracked_store(objects=2)
    lab_a = KeyframeLabeller(store, "A", every=8)
    while not lab_a.done:
        lab_a.accept()
    snapshot = store.annotator_hotspots("A")
    main = {(o, f): e for o, f, e in store.iter_entries()}
    lab_b = KeyframeLabeller(store, "B", every=8)
    assert lab_b.proposal() is not None  # B starts from the tracker, not from A's labels
    while not lab_b.done:
        task = lab_b.current
        if task.index == 1:
            lab_b.mark_not_visible()
        else:
            p = lab_b.proposal()
            lab_b.move(p.x + 3.0, p.y + 4.0)
            lab_b.accept()
    assert store.annotator_hotspots("A") == snapshot
    assert {(o, f): e for o, f, e in store.iter_entries()} == main
    assert store.annotators() == ["A", "B"]

    rows = frame_agreements(store, 1)
    assert [r.frame for r in rows] == [0, 8, 16, 24]
    first = rows[0]
    assert first.annotators == ("A", "B") and first.mean_pairwise_px == pytest.approx(5.0)
    assert first.spread_px == pytest.approx(2.5)
    assert first.consensus == pytest.approx((10.0 + 1.5, 10.0 + 2.0))
    size = math.hypot(20, 20)
    assert first.object_size_px == pytest.approx(size)
    assert first.pck == (1.0 if 5.0 <= 0.1 * size else 0.0)
    assert rows[1].not_visible == ("B",) and rows[1].n_annotators == 1
    names, tracks = annotator_tracks(store, 1)
    assert names == ["A", "B"] and tracks.shape == (2, T, 2) and np.isnan(tracks[0, 1]).all()
    _, dense = annotator_tracks(store, 1, include_derived=True)
    assert np.isfinite(dense[0, 1]).all()
    seq = object_agreement(store, 1)
    assert seq["annotators"] == ["A", "B"] and seq["n_frames"] == 3
    assert seq["mean_pairwise_px"] == pytest.approx(5.0)


def test_outliers_flagged_with_three_annotators():
    store = tracked_store()
    for name, dx in (("A", 0.0), ("B", 1.0), ("C", 30.0)):
        store.set_annotator_hotspot(name, 1, 4, (20.0 + dx, 10.0))
    (row,) = frame_agreements(store, 1)
    assert row.outliers == ("C",)
    assert row.consensus == pytest.approx((21.0, 10.0), abs=1e-3)


def test_labeller_errors():
    store = tracked_store()
    with pytest.raises(AnnotationError, match="annotator id"):
        KeyframeLabeller(store, "  ")
    with pytest.raises(AnnotationError, match="unknown object id 7"):
        KeyframeLabeller(store, "A", object_ids=[7])
    with pytest.raises(AnnotationError, match="no objects"):
        KeyframeLabeller(AnnotationStore(5, H, W), "A")
    lab = KeyframeLabeller(store, "A", tracker_tracks={1: np.full((T, 2), np.nan)})
    assert lab.proposal() is None
    with pytest.raises(AnnotationError, match="no hotspot to accept"):
        lab.accept()
    with pytest.raises(AnnotationError, match="off the 80x60 image"):
        lab.move(100.0, 5.0)
    with pytest.raises(AnnotationError, match="not a keyframe"):
        lab.go_to_frame(1, 3)
    with pytest.raises(AnnotationError, match=r"expected \(25, 2\)"):
        KeyframeLabeller(store, "A", tracker_tracks={1: np.zeros((3, 2))})
    lab.go_to(len(lab.tasks))
    with pytest.raises(AnnotationError, match="every keyframe has been visited"):
        lab.mark_not_visible()


def test_tracker_track_reads_visible_main_hotspots():
    store = tracked_store()
    store.set_frame(1, 3, hotspot=(1.0, 2.0, False))
    store.set_frame(1, 4, hotspot=None)
    track = tracker_track(store, 1)
    assert track.shape == (T, 2) and np.isnan(track[3]).all() and np.isnan(track[4]).all()
    assert tuple(track[5]) == (15.0, 10.0)


def test_run_tracker_prefills_the_main_track_from_a_keyframe_mask():
    from napari_hotspot.sample_data import make_sample_video
    from napari_hotspot.session import HotspotSession

    sample = make_sample_video(num_frames=4, height=64, width=96)
    store = AnnotationStore(4, 64, 96)
    store.add_object(obj_id=1)
    store.set_frame(1, 1, mask=sample.masks[1] == 1, hotspot=tuple(sample.hotspots[1, 0, :2]),
                    provenance="keyframe")
    session = HotspotSession(sample.frames, long_side=192)  # small working size keeps the test fast
    calls = []
    written = run_tracker(session, store, progress=lambda done, total: calls.append((done, total)))
    assert written == 3 and store.frames_with(1) == [0, 1, 2, 3]
    assert store.get(1, 1).provenance == Provenance.KEYFRAME  # the keyframe is kept
    for t in (0, 2, 3):
        entry = store.get(1, t)
        assert entry.provenance == Provenance.PROPAGATED and entry.mask.shape == (64, 96)
    assert calls[-1][0] == 3
    given = store.hotspot(1, 1)
    assert (given.x, given.y) == pytest.approx(tuple(sample.hotspots[1, 0, :2]))  # the anchor's hotspot is kept
    lab = KeyframeLabeller(store, "A", every=2)
    assert lab.schedule == [0, 2]
    # a keyframe mask without a hotspot gets the session's hotspot, so that keyframe has a proposal
    store.add_object(obj_id=2)
    store.set_frame(2, 0, mask=sample.masks[0] == 2, provenance="keyframe")
    other = HotspotSession(sample.frames, models=session.models, long_side=192)
    run_tracker(other, store, [2])
    assert store.hotspot(2, 0) is not None and other.anchors(2) == [0]
    assert store.mask(2, 0)[int(round(store.hotspot(2, 0).y)), int(round(store.hotspot(2, 0).x))]
    with pytest.raises(AnnotationError, match="no keyframe mask"):
        store.add_object(obj_id=3)
        run_tracker(other, store, [3])
