"""Part prompts are tracked as given (issue 19, item 4): the distractor memory of the session, on
synthetic clips of the sample video's animal (one frame under a known camera motion)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_hotspot.evaluation.part_prompts import camera_path, copy_beside, half_part, part_scores, warp_clip
from napari_hotspot.session import HotspotSession

# The clips' working size, fixed at the default 448 where the thresholds below were set: at 512 the 320-px
# sample is upscaled 1.6x and the memoryless tracker grows less (0.08 of the rest instead of 0.25).
LONG_SIDE = 448


def _track(models, video, first_mask, memory: bool) -> tuple[np.ndarray, HotspotSession]:
    session = HotspotSession(video, models, long_side=LONG_SIDE)
    session.distractor_memory = memory
    session.add_prompt(0, 1, mask=first_mask)
    out = np.zeros((len(video),) + first_mask.shape, bool)
    out[0] = first_mask
    for r in session.propagate([1], 0, len(video) - 1):
        out[r.frame] = r.mask
    return out, session


@pytest.fixture(scope="module")
def half_clip(sample):
    rng = np.random.default_rng(2)
    whole = sample.masks[0] == 1
    part = half_part(rng, whole)
    video, (parts, wholes) = warp_clip(sample.frames[0], [part, whole], camera_path(rng, whole.shape, 8))
    return video, parts, wholes


def test_half_of_an_object_is_tracked_as_given_not_grown_into_the_whole(models, half_clip):
    video, parts, wholes = half_clip
    grown = part_scores(_track(models, video, parts[0], memory=False)[0], parts, wholes)
    kept = part_scores(_track(models, video, parts[0], memory=True)[0], parts, wholes)
    # Without the memory the tracker takes a fifth of the rest of the animal; with it, almost none.
    assert grown["taken"] > 0.1
    assert kept["taken"] < 0.5 * grown["taken"] and kept["taken"] < 0.05
    assert kept["part_j"] > grown["part_j"] and kept["part_j"] > 0.8


def test_whole_objects_track_as_well_with_the_memory(models, sample):
    video, gt = sample.frames[:16], sample.masks[:16] == 1
    scores = {}
    for memory in (False, True):
        pred, _ = _track(models, video, gt[0], memory)
        scores[memory] = np.mean([(p & g).sum() / (p | g).sum() for p, g in zip(pred[1:], gt[1:])])
    assert scores[True] >= scores[False] - 0.02
    assert scores[True] > 0.7


def test_distractors_are_computed_once_per_anchor_mask(models, half_clip):
    video, parts, wholes = half_clip
    session = HotspotSession(video[:3], models, long_side=LONG_SIDE)
    passes = []
    real = session._track_own_frame
    session._track_own_frame = lambda *args: passes.append(1) or real(*args)
    session.add_prompt(0, 1, mask=parts[0])
    first = session._anchor_reference(1, 0).distractors
    assert first is not None and first.shape[0] == session._anchor_reference(1, 0).keys.shape[1]
    assert len(passes) == 3  # cached after the first time: no second set of tracker passes
    session.add_prompt(0, 1, mask=wholes[0])  # a new mask on the same frame: computed again
    session._anchor_reference(1, 0)
    assert len(passes) == 6
    session.distractor_memory = False
    assert session._anchor_reference(1, 0).distractors is None


def test_another_object_prompted_on_the_same_frame_is_kept_out(models, sample):
    """Two look-alikes (the sample's animal and a copy of it beside it), each its own object: tracked
    alone, object 1 spreads onto the copy; with the copy prompted as object 2, it stays off it."""
    rng = np.random.default_rng(2)
    animal = sample.masks[0] == 1
    image, copy = copy_beside(sample.frames[0], animal)
    video, (ones, twos) = warp_clip(image, [animal, copy], camera_path(rng, animal.shape, 8))
    scores = {}
    for both in (False, True):
        session = HotspotSession(video, models, long_side=LONG_SIDE)
        session.add_prompt(0, 1, mask=ones[0])
        if both:
            session.add_prompt(0, 2, mask=twos[0])
        pred = [r.mask for r in session.propagate([1], 0, len(video) - 1)]
        scores[both] = (np.mean([(p & g).sum() / (p | g).sum() for p, g in zip(pred, ones[1:])]),
                        np.mean([(p & g).sum() / g.sum() for p, g in zip(pred, twos[1:])]))
    (j_alone, taken_alone), (j_both, taken_both) = scores[False], scores[True]
    assert taken_alone > 0.3 and taken_both < 0.5 * taken_alone
    assert j_both > j_alone


def test_an_object_without_a_whole_grid_cell_gets_no_distractors(models, sample):
    """No grid cell is mostly such an object (small or thin), so the gate, which compares with the
    template's object cells, would keep nothing of it: it gets no distractors, whatever the tracker
    would grow it into."""
    frames = sample.frames[:2]
    session = HotspotSession(frames, models)
    grown = torch.zeros(session.work_size, dtype=torch.bool)
    grown[:, : session.work_size[1] // 2] = True  # as if the passes grew it over half the frame
    session._track_own_frame = lambda *args: grown
    sx = session.work_size[1] / frames.shape[2]
    sy = session.work_size[0] / frames.shape[1]
    thin = np.zeros(frames.shape[1:3], bool)  # 3 working pixels wide, inside one column of cells
    thin[10:-10, int(np.ceil(65 / sx)): int(67 / sx) + 1] = True
    session.add_prompt(0, 1, mask=thin)
    ref = session._anchor_reference(1, 0)
    assert not bool((ref.mask > 0.5).any()) and ref.distractors is None
    wide = np.zeros(frames.shape[1:3], bool)
    wide[10:-10, int(64 / sx): int(96 / sx)] = True
    session.add_prompt(0, 1, mask=wide)
    assert session._anchor_reference(1, 0).distractors is not None
