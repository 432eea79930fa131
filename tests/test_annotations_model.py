"""Tests for the annotation data model: objects, entries, validation, undo/redo, events, memory."""

import base64
import json
import math
import zlib

import numpy as np
import pytest

from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.annotations.model import (
    AnnotationStore,
    Hotspot,
    ObjectInfo,
    Provenance,
)
from napari_hotspot.annotations.palette import davis_palette, default_color
from napari_hotspot.errors import AnnotationError

H, W, T = 40, 60, 10


def box(y0, x0, y1, x1, shape=(H, W)):
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.fixture
def store():
    s = AnnotationStore(T, H, W)
    s.add_object("swan")
    s.add_object("boat")
    return s


# ---------------------------------------------------------------- compressed masks
@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((H, W), bool),
        np.ones((H, W), bool),
        box(3, 5, 4, 6),
        np.random.default_rng(0).random((H, W)) > 0.5,
        box(0, 0, H, 1),
    ],
    ids=["empty", "full", "single-pixel", "noise", "left-column"],
)
def test_compressed_mask_round_trip_is_exact(mask):
    packed = CompressedMask.from_array(mask)
    assert np.array_equal(packed.to_array(), mask)
    assert packed.area == int(mask.sum())
    assert packed == CompressedMask.from_array(mask.astype(np.uint8) * 7)  # non-zero = foreground
    record = json.loads(json.dumps(packed.to_json()))  # what a project file keeps
    assert CompressedMask.from_json(record) == packed


@pytest.mark.parametrize("change, message", [
    ({"data": "not base64!"}, "malformed"),
    ({"data": base64.b64encode(b"not zlib").decode()}, "malformed"),
    ({"area": 3}, "does not match its area"),
    ({"bbox": [0, 0, H + 1, W]}, "does not fit"),
    ({"shape": None}, "malformed"),
    ({"shape": [-3, W], "bbox": None, "data": "", "area": 0}, "no 2-D mask shape"),
    ({"shape": [10**20, 10**20], "bbox": [0, 0, 10**20, 10**20]}, "malformed"),  # nothing that size is made
    ({"shape": [10**6, 10**6], "bbox": [0, 0, 10**6, 10**6]}, "does not hold the box's pixels"),
    ({"data": base64.b64encode(zlib.compress(b"\xff" * 40)).decode()}, "does not hold the box's pixels"),
], ids=["not-base64", "not-zlib", "wrong-area", "box-outside", "no-shape", "negative-shape", "overflow",
        "huge-box", "long-payload"])
def test_compressed_mask_json_rejects_broken_records(change, message):
    record = {**CompressedMask.from_array(box(2, 3, 5, 8)).to_json(), **change}
    with pytest.raises(AnnotationError, match=message):
        CompressedMask.from_json(record)


def test_compressed_mask_json_checks_the_expected_shape():
    record = CompressedMask.from_array(box(2, 3, 5, 8)).to_json()
    assert CompressedMask.from_json(record, (H, W)).shape == (H, W)
    with pytest.raises(AnnotationError, match="was expected"):
        CompressedMask.from_json(record, (H + 1, W))


def test_compressed_mask_paint_only_sets_foreground():
    target = np.full((H, W), 9, dtype=np.uint8)
    CompressedMask.from_array(box(2, 3, 5, 8)).paint(target, 4)
    assert (target == 4).sum() == 15 and (target == 9).sum() == H * W - 15


def test_compressed_mask_rejects_bad_arrays():
    with pytest.raises(AnnotationError, match="2-D"):
        CompressedMask.from_array(np.zeros((2, 3, 4)))
    with pytest.raises(AnnotationError, match="dtype"):
        CompressedMask.from_array(np.array([["a"]]))


# ---------------------------------------------------------------- objects
def test_objects_get_unique_ids_and_distinct_default_colours(store):
    assert store.object_ids == [1, 2]
    assert [o.name for o in store.objects] == ["swan", "boat"]
    third = store.add_object()
    assert third.id == 3 and third.name == "object 3"
    colours = [o.color for o in store.objects]
    assert len(set(colours)) == 3
    assert colours[0] == tuple(davis_palette()[1]) == (128, 0, 0)
    with pytest.raises(AnnotationError, match="already exists"):
        store.add_object(obj_id=2)
    assert default_color(300) != default_color(301)


def test_rename_recolor_remove_and_undo_restores_order(store):
    store.add_object("dog")
    store.rename_object(2, "ship")
    with pytest.raises(AnnotationError, match="needs a name"):
        store.rename_object(2, "  ")
    store.recolor_object(2, (1, 2, 3))
    assert store.get_object(2) == ObjectInfo(2, "ship", (1, 2, 3))
    store.set_frame(2, 4, mask=box(1, 1, 5, 5), hotspot=(2.0, 3.0))
    store.set_annotator_hotspot("ann", 2, 4, (1.0, 1.0))
    store.remove_object(2)
    assert store.object_ids == [1, 3]
    assert store.annotators() == []
    store.undo()
    assert store.object_ids == [1, 2, 3]
    assert store.hotspot(2, 4) == Hotspot(2.0, 3.0)
    assert store.annotator_hotspots("ann")[(2, 4)].hotspot == Hotspot(1.0, 1.0)
    for _ in range(3):  # annotator hotspot, entry, recolour
        store.undo()
    assert store.get_object(2) == ObjectInfo(2, "ship", default_color(2))
    store.undo()
    assert store.get_object(2) == ObjectInfo(2, "boat", default_color(2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"obj_id": 0}, "1..65535"),
        ({"obj_id": 70000}, "1..65535"),
        ({"obj_id": 1.5}, "integer"),
        ({"color": (300, 0, 0)}, "0..255"),
        ({"color": (1, 2)}, "3 integers"),
        ({"name": 5}, "name"),
    ],
)
def test_bad_object_definitions_are_rejected(kwargs, message):
    s = AnnotationStore(2, H, W)
    with pytest.raises(AnnotationError, match=message):
        s.add_object(**kwargs)


# ---------------------------------------------------------------- entries
def test_set_frame_get_and_keep_semantics(store):
    mask = box(5, 6, 15, 20)
    entry = store.set_frame(
        1, 3, mask=mask, hotspot=Hotspot(10.5, 7.25), confidence=0.8,
        provenance=Provenance.KEYFRAME, annotator="alice",
    )
    assert np.array_equal(store.mask(1, 3), mask)
    assert store.hotspot(1, 3) == Hotspot(10.5, 7.25, True)
    assert entry.confidence == 0.8 and entry.annotator == "alice"
    assert abs(entry.timestamp - __import__("time").time()) < 5
    # Omitted fields are kept, None clears.
    store.set_frame(1, 3, hotspot=(11.0, 8.0, False), provenance="user_corrected")
    entry = store.get(1, 3)
    assert np.array_equal(entry.mask, mask)
    assert entry.hotspot == Hotspot(11.0, 8.0, visible=False)
    assert entry.confidence == 0.8 and entry.annotator == "alice"
    assert entry.provenance is Provenance.USER_CORRECTED
    store.set_frame(1, 3, mask=None)
    assert store.mask(1, 3) is None and store.hotspot(1, 3) is not None
    assert store.get(1, 4) is None and store.mask(1, 4) is None and store.hotspot(1, 4) is None


def test_frames_with_keyframes_and_iteration(store):
    store.set_frame(1, 0, mask=box(0, 0, 2, 2), provenance=Provenance.KEYFRAME)
    store.set_frame(1, 5, mask=box(0, 0, 2, 2), provenance=Provenance.PROPAGATED)
    store.set_frame(1, 7, hotspot=(1, 1), provenance=Provenance.USER_CORRECTED)
    store.set_frame(2, 5, mask=box(1, 1, 3, 3))
    assert store.frames_with(1) == [0, 5, 7]
    assert store.keyframes(1) == [0, 7]
    assert store.keyframes(2) == []
    assert [(o, f) for o, f, _ in store.iter_entries()] == [(1, 0), (1, 5), (1, 7), (2, 5)]
    assert [o for o, _ in store.iter_frame(5)] == [1, 2]
    assert len(store) == 4
    store.clear_frame(1, 5)
    assert store.frames_with(1) == [0, 7]


def test_label_frame_paints_later_objects_on_top(store):
    store.set_frame(1, 2, mask=box(0, 0, 10, 10))
    store.set_frame(2, 2, mask=box(5, 5, 15, 15))
    labels = store.label_frame(2)
    assert labels.dtype == np.uint8 and labels.shape == (H, W)
    assert labels[0, 0] == 1 and labels[7, 7] == 2 and labels[12, 12] == 2 and labels[20, 20] == 0
    assert store.label_frame(3).max() == 0
    store.add_object(obj_id=300)
    store.set_frame(300, 2, mask=box(30, 30, 32, 32))
    big = store.label_frame(2)
    assert big.dtype == np.uint16 and big[31, 31] == 300


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask": np.zeros((H + 1, W), bool)}, r"shape \(41, 60\), expected \(H, W\) = \(40, 60\)"),
        ({"mask": np.zeros((H, W, 3), bool)}, "shape"),
        ({"hotspot": (math.nan, 3.0)}, "finite"),
        ({"hotspot": (W + 1.0, 3.0)}, r"outside the image.*59.5"),
        ({"hotspot": (3.0, -2.0)}, "outside the image"),
        ({"hotspot": "abc"}, "Hotspot or"),
        ({"confidence": 1.5}, r"\[0, 1\]"),
        ({"confidence": math.nan}, r"\[0, 1\]"),
        ({"provenance": "guessed"}, "unknown provenance 'guessed'"),
        ({"annotator": 3}, "annotator"),
    ],
)
def test_bad_entry_values_raise_and_change_nothing(store, kwargs, message):
    revision = store.revision
    with pytest.raises(AnnotationError, match=message):
        store.set_frame(1, 0, **kwargs)
    assert store.get(1, 0) is None and store.revision == revision


def test_unknown_object_and_bad_frame_are_named(store):
    with pytest.raises(AnnotationError, match=r"unknown object id 9; known object ids: 1, 2"):
        store.set_frame(9, 0, hotspot=(1, 1))
    with pytest.raises(AnnotationError, match=r"frame 10 is out of range; expected 0..9"):
        store.set_frame(1, T, hotspot=(1, 1))
    with pytest.raises(AnnotationError, match="frame -1"):
        store.get(1, -1)
    with pytest.raises(AnnotationError, match="integer"):
        store.set_frame(1, 1.0, hotspot=(1, 1))


def test_hotspot_on_the_border_is_accepted(store):
    store.set_frame(1, 0, hotspot=(-0.5, H - 0.5))
    store.set_frame(1, 1, hotspot=(W - 0.5, 0.0))
    assert store.hotspot(1, 1) == Hotspot(W - 0.5, 0.0)


# ---------------------------------------------------------------- annotator hotspots
def test_annotator_hotspots_are_isolated(store):
    store.set_frame(1, 2, hotspot=(5, 5))
    store.set_annotator_hotspot("alice", 1, 2, (10, 10), Provenance.USER_CORRECTED, seconds_spent=3.5)
    store.set_annotator_hotspot("bob", 1, 2, (20, 20), "automatic")
    store.set_annotator_hotspot("bob", 2, 3, None)  # explicit "no hotspot seen"
    assert store.annotators() == ["alice", "bob"]
    alice = store.annotator_hotspots("alice")
    assert alice[(1, 2)].hotspot == Hotspot(10, 10) and alice[(1, 2)].seconds_spent == 3.5
    store.set_annotator_hotspot("alice", 1, 2, (11, 11))
    store.clear_annotator_hotspot("alice", 1, 2)
    assert store.annotator_hotspots("bob")[(1, 2)].hotspot == Hotspot(20, 20)
    assert store.annotator_hotspots("bob")[(2, 3)].hotspot is None
    assert store.annotator_hotspots("bob")[(1, 2)].provenance is Provenance.AUTOMATIC
    assert store.hotspot(1, 2) == Hotspot(5, 5)
    assert store.annotators() == ["bob"] and store.annotator_hotspots("alice") == {}
    with pytest.raises(AnnotationError, match="non-empty"):
        store.set_annotator_hotspot("", 1, 2, (1, 1))
    with pytest.raises(AnnotationError, match="seconds_spent"):
        store.set_annotator_hotspot("carol", 1, 2, (1, 1), seconds_spent=-1)
    with pytest.raises(AnnotationError, match="outside the image"):
        store.set_annotator_hotspot("carol", 1, 2, (1, 100))
    assert "carol" not in store.annotators()


# ---------------------------------------------------------------- undo / redo / batch / events
def test_undo_redo_single_steps(store):
    first, second = box(0, 0, 5, 5), box(10, 10, 20, 20)
    store.set_frame(1, 1, mask=first)
    store.set_frame(1, 1, mask=second, hotspot=(3, 3))
    assert store.undo()
    assert np.array_equal(store.mask(1, 1), first) and store.hotspot(1, 1) is None
    assert store.undo()
    assert store.get(1, 1) is None
    assert store.redo() and store.redo()
    assert np.array_equal(store.mask(1, 1), second)
    assert not store.redo()
    store.undo()
    store.set_frame(1, 2, hotspot=(1, 1))  # a new action drops the redo stack
    assert not store.can_redo


def test_amend_frame_joins_the_step_that_wrote_the_entry(store):
    # A click's first mask, then its refined one: one undo removes the click's whole result.
    calls = []
    store.events.connect(lambda obj_id, frames: calls.append((obj_id, frames)))
    first, refined = box(0, 0, 5, 5), box(0, 0, 8, 8)
    store.set_frame(1, 1, mask=box(20, 20, 30, 30))  # an earlier step on the same frame
    written = store.set_frame(1, 1, mask=first, hotspot=(2, 2), provenance=Provenance.KEYFRAME)
    store.set_frame(2, 4, mask=box(1, 1, 3, 3))  # a later step elsewhere does not matter
    calls.clear()
    amended = store.amend_frame(1, 1, written, mask=refined, hotspot=(4, 4))
    assert amended is store.get(1, 1) and np.array_equal(store.mask(1, 1), refined)
    assert store.get(1, 1).provenance is Provenance.KEYFRAME  # fields not given are kept
    assert calls == [(1, (1,))]
    assert store.undo() and store.undo()  # the later step, then the click with its amendment
    assert np.array_equal(store.mask(1, 1), box(20, 20, 30, 30))
    assert store.redo() and np.array_equal(store.mask(1, 1), refined)
    assert store.amend_frame(1, 1, written, mask=first) is None  # no longer the entry: nothing changes
    assert np.array_equal(store.mask(1, 1), refined)
    with pytest.raises(TypeError, match="colour"):
        store.amend_frame(1, 1, store.get(1, 1), colour=1)


def test_amend_frame_after_the_entry_was_touched_since_is_its_own_step(store):
    written = store.set_frame(1, 1, mask=box(0, 0, 5, 5))
    store.set_frame(1, 1, mask=box(0, 0, 6, 6))
    store.undo()
    store.redo()  # the entry is no longer the one written: nothing to amend
    assert store.amend_frame(1, 1, written, mask=box(0, 0, 7, 7)) is None
    current = store.get(1, 1)
    with store.batch("run"):  # a batch that wrote the frame: the amendment joins the batch
        store.set_frame(1, 2, mask=box(0, 0, 2, 2))
        batch_entry = store.set_frame(1, 1, mask=box(0, 0, 3, 3))
        store.amend_frame(1, 1, batch_entry, mask=box(0, 0, 4, 4))
    store.undo()
    assert store.get(1, 1) is current and store.get(1, 2) is None
    # An undone step that would put the entry back on redo: the amendment is a new step (redo is gone).
    written = store.set_frame(1, 7, mask=box(0, 0, 5, 5))
    store.set_frame(1, 7, mask=box(0, 0, 6, 6))
    store.undo()
    store.amend_frame(1, 7, written, mask=box(0, 0, 8, 8))
    assert not store.can_redo and np.array_equal(store.mask(1, 7), box(0, 0, 8, 8))
    store.undo()
    assert store.get(1, 7) is written
    # A batch that did not touch the frame leaves the amendment in the step that wrote it.
    written = store.set_frame(1, 5, mask=box(0, 0, 5, 5))
    with store.batch("run"):
        store.set_frame(1, 6, mask=box(0, 0, 2, 2))
        store.amend_frame(1, 5, written, mask=box(0, 0, 9, 9))
    store.undo()  # the run
    assert np.array_equal(store.mask(1, 5), box(0, 0, 9, 9)) and store.get(1, 6) is None
    store.undo()  # the step that wrote frame 5, amendment included
    assert store.get(1, 5) is None


def test_batch_is_one_undo_step_and_events_are_grouped(store):
    calls = []
    store.events.connect(lambda obj_id, frames: calls.append((obj_id, frames)))
    store.set_frame(1, 0, mask=box(0, 0, 4, 4), provenance=Provenance.KEYFRAME)
    calls.clear()
    with store.batch("propagation"):
        for t in range(1, T):
            store.set_frame(1, t, mask=box(t, t, t + 4, t + 4), provenance=Provenance.PROPAGATED)
            store.set_frame(2, t, hotspot=(t, t))
        assert calls == []  # listeners hear about a batch once, when it closes
    assert calls == [(1, tuple(range(1, T))), (2, tuple(range(1, T)))]
    assert store.history.undo_name() == "propagation"
    calls.clear()
    assert store.undo()
    assert store.frames_with(1) == [0] and store.frames_with(2) == []
    assert sorted(calls) == [(1, tuple(range(1, T))), (2, tuple(range(1, T)))]
    assert store.redo()
    assert store.frames_with(1) == list(range(T))
    assert np.array_equal(store.mask(1, 5), box(5, 5, 9, 9))


def test_failed_batch_rolls_back_and_records_nothing(store):
    store.set_frame(1, 0, hotspot=(1, 1))
    revision_history = store.history.undo_name()
    with pytest.raises(AnnotationError):
        with store.batch("propagation"):
            store.set_frame(1, 1, hotspot=(2, 2))
            store.set_frame(1, 0, hotspot=(3, 3))
            store.set_frame(1, 2, hotspot=(999, 2))  # outside the image
    assert store.frames_with(1) == [0] and store.hotspot(1, 0) == Hotspot(1, 1)
    assert store.history.undo_name() == revision_history
    assert not store.in_batch


def test_nested_batches_form_one_step_and_inner_failure_is_recoverable(store):
    with store.batch("outer"):
        store.set_frame(1, 0, hotspot=(1, 1))
        with store.batch("inner"):
            store.set_frame(1, 1, hotspot=(1, 1))
        try:
            with store.batch("inner-fails"):
                store.set_frame(1, 2, hotspot=(1, 1))
                raise RuntimeError("cancelled")
        except RuntimeError:
            pass
        store.set_frame(1, 3, hotspot=(1, 1))
    assert store.frames_with(1) == [0, 1, 3]
    assert store.history.undo_name() == "outer"
    store.undo()
    assert store.frames_with(1) == []
    assert store.history.undo_name() != "outer"  # the next step back is the fixture's add_object


def test_undo_inside_batch_is_refused(store):
    with store.batch("x"):
        with pytest.raises(AnnotationError, match="inside an open batch"):
            store.undo()


def test_event_listeners_can_disconnect_and_a_broken_one_does_not_break_the_store(store):
    seen = []

    def broken(obj_id, frames):
        raise RuntimeError("listener bug")

    def listener(obj_id, frames):
        seen.append((obj_id, frames))

    store.events.connect(broken)
    store.events.connect(listener)
    store.set_frame(1, 4, hotspot=(1, 1))
    store.rename_object(2, "x")
    assert seen == [(1, (4,)), (2, ())]
    store.events.disconnect(listener)
    store.set_frame(1, 5, hotspot=(1, 1))
    assert len(seen) == 2 and store.frames_with(1) == [4, 5]


def test_revision_counts_every_change(store):
    start = store.revision
    store.set_frame(1, 0, hotspot=(1, 1))
    store.undo()
    assert store.revision == start + 2


# ---------------------------------------------------------------- sparse memory
def test_sparse_storage_of_1000_480p_masks_is_small():
    height, width, frames = 480, 854, 1000
    s = AnnotationStore(frames, height, width)
    s.add_object()
    # An ellipse on a larger canvas; each frame is a shifted view of it (no per-frame allocation).
    yy, xx = np.mgrid[: height + 50, : width + 200]
    canvas = ((yy - 250) / 90.0) ** 2 + ((xx - 500) / 140.0) ** 2 < 1.0
    with s.batch("propagation"):
        for t in range(frames):
            dy, dx = t % 50, t % 200
            s.set_frame(1, t, mask=canvas[dy : dy + height, dx : dx + width], hotspot=(500 - dx, 250 - dy))
    dense = frames * height * width  # one byte per pixel as a uint8/bool stack
    assert s.nbytes < dense / 100, f"store holds {s.nbytes} bytes, dense stack is {dense}"
    assert np.array_equal(s.mask(1, 7), canvas[7 : 7 + height, 7 : 7 + width])
    assert s.mask(1, 7).sum() > 30000  # the masks are not trivially small


def test_an_empty_mask_is_absent_without_decompressing_and_no_mask_is_not():
    from napari_hotspot.annotations.model import FrameAnnotation
    from napari_hotspot.annotations.masks import CompressedMask

    empty = FrameAnnotation(packed_mask=CompressedMask.from_array(np.zeros((4, 5), bool)))
    full = FrameAnnotation(packed_mask=CompressedMask.from_array(np.ones((4, 5), bool)))
    assert empty.is_absent and empty.has_mask
    assert not full.is_absent and not FrameAnnotation().is_absent


def test_object_keyframes_are_the_keyframes_whose_mask_shows_the_object():
    store = AnnotationStore(6, 4, 5)
    store.add_object(obj_id=1)
    on = np.zeros((4, 5), bool)
    on[1, 1] = True
    store.set_frame(1, 0, mask=on, provenance=Provenance.KEYFRAME)
    store.set_frame(1, 2, mask=np.zeros((4, 5), bool), provenance=Provenance.USER_CORRECTED)  # absent there
    store.set_frame(1, 3, hotspot=(1.0, 1.0), provenance=Provenance.KEYFRAME)  # a hotspot, no mask
    store.set_frame(1, 4, mask=on, provenance=Provenance.PROPAGATED)  # not a keyframe
    store.set_frame(1, 5, mask=on, provenance=Provenance.ACCEPTED)
    assert store.keyframes(1) == [0, 2, 3, 5]
    assert store.object_keyframes(1) == [0, 5]
