"""The adaptation guard (session.adaptation_verdict): an adapted tracker copy is used only when it carries
its anchor masks away and back through the real video at least as well as the base tracker does."""

import copy

import numpy as np
import torch

from napari_hotspot.session import HotspotSession

LONG_SIDE = 256  # below the sample video's 320 px: about a third of the default (448) working size's work


def _iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def test_the_guard_drops_an_adaptation_forced_to_learn_a_wrong_mask(sample, models):
    frames, truth = sample.frames[:16], sample.masks[:16] == 1
    session = HotspotSession(frames, models, long_side=LONG_SIDE)
    session.add_prompt(0, 1, mask=truth[0])
    base = [r.mask for r in session.propagate(direction="forward")]
    # Overfit the copy to the wrong thing: everything but the object is what it learns to segment.
    session.add_adaptation_frames(1)
    adapter = session._adapters[1]
    for example in adapter.examples:
        example.masks = [~m for m in example.masks]
    adapter.opt.param_groups[0]["lr"] = 5e-3
    assert adapter.fit(seconds=1e9, max_steps=20) == 20
    verdict = session.adaptation_verdict(1)
    assert verdict is not None and not verdict.kept
    assert verdict.adapted_iou < verdict.base_iou - 0.2
    assert "not kept" in verdict.describe()
    guarded = [r.mask for r in session.propagate(direction="forward")]
    assert all(np.array_equal(a, b) for a, b in zip(base, guarded))  # the base tracker tracked
    # Without the guard the overfit copy tracks, and does worse.
    session.guard_adaptation = False
    unguarded = [r.mask for r in session.propagate(direction="forward")]
    assert np.mean([_iou(m, t) for m, t in zip(unguarded, truth[1:])]) < np.mean(
        [_iou(m, t) for m, t in zip(base, truth[1:])])


def test_the_guard_keeps_an_adaptation_that_repairs_a_damaged_tracker(sample, models):
    """A base tracker whose mask output is biased towards background loses the object; adapting its copy
    to the true mask repairs it, and the guard keeps that copy."""
    frames, truth = sample.frames[:16], sample.masks[:16] == 1
    damaged = copy.copy(models)
    damaged.tracker = copy.deepcopy(models.tracker)
    with torch.no_grad():
        damaged.tracker.mask4.bias -= 4.0
    session = HotspotSession(frames, damaged, long_side=LONG_SIDE)
    session.add_prompt(0, 1, mask=truth[0])
    assert session.adaptation_verdict(1) is None  # nothing adapted yet
    base = [r.mask for r in session.propagate(direction="forward")]
    assert session.adapt(1, seconds=1e9, max_steps=40) == 40
    verdict = session.adaptation_verdict(1)
    assert verdict.kept and verdict.adapted_iou > verdict.base_iou
    assert session.adaptation_verdict(1) is verdict  # judged once per adaptation
    adapted = [r.mask for r in session.propagate(direction="forward")]
    j_base = np.mean([_iou(m, t) for m, t in zip(base, truth[1:])])
    j_adapted = np.mean([_iou(m, t) for m, t in zip(adapted, truth[1:])])
    assert j_adapted > j_base + 0.05
    # A later adaptation is judged again; resetting drops the verdict with the copy.
    session.adapt(1, seconds=1e9, max_steps=2)
    assert session.adaptation_verdict(1).steps == 42
    session.reset_adaptation(1)
    assert session.adaptation_verdict(1) is None


def test_an_adapted_copy_tracks_only_near_the_frames_it_learnt(sample, models):
    """`adapt_reach`: beyond it the base tracker tracks (a copy that learnt one frame's look leaves out the
    parts an object shows later); the frames near any learnt frame use the copy, in either direction."""
    frames, truth = sample.frames[:16], sample.masks[:16] == 1
    damaged = copy.copy(models)
    damaged.tracker = copy.deepcopy(models.tracker)
    with torch.no_grad():
        damaged.tracker.mask4.bias -= 4.0  # the base tracker loses the object; the adapted copy does not
    session = HotspotSession(frames, damaged, long_side=LONG_SIDE)
    session.add_prompt(0, 1, mask=truth[0])
    session.add_prompt(15, 1, mask=truth[15])
    assert session.adapt(1, seconds=1e9, max_steps=40) == 40
    assert session.adaptation_verdict(1).kept
    copy_model = session._adapters[1].model
    session.adapt_reach = 5
    assert [session._tracker_for(1, t) is copy_model for t in range(16)] == [t < 5 or t > 10 for t in range(16)]
    session.adapt_reach = None
    assert all(session._tracker_for(1, t) is copy_model for t in range(16))
    everywhere = {r.frame: r.mask for r in session.propagate(start_frame=0, end_frame=15, direction="forward")}
    session.adapt_reach = 3
    near = {r.frame: r.mask for r in session.propagate(start_frame=0, end_frame=15, direction="forward")}
    assert sorted(near) == sorted(everywhere) == list(range(1, 15))  # the anchors 0 and 15 are not tracked
    assert all(np.array_equal(everywhere[t], near[t]) for t in (1, 2))  # the copy tracked both
    # Frames 3..12 are the damaged base tracker's, which loses the object there
    assert np.mean([_iou(near[t], truth[t]) for t in range(3, 13)]) < np.mean(
        [_iou(everywhere[t], truth[t]) for t in range(3, 13)]) - 0.05


def test_a_copy_that_brings_nothing_back_is_not_kept(sample, models):
    """A speck of a mask (a tiny box's answer) is lost within frames by both trackers: round trips 0 and 0
    are not evidence for the copy, so the base tracker tracks and the verdict says so."""
    frames = sample.frames[:16]
    speck = np.zeros(frames.shape[1:3], bool)
    speck[5:8, 5:8] = True
    session = HotspotSession(frames, models, long_side=LONG_SIDE)
    session.add_prompt(0, 1, mask=speck)
    assert session.adapt(1, seconds=1e9, max_steps=5) == 5
    verdict = session.adaptation_verdict(1)
    assert verdict.adapted_iou == 0.0 and verdict.base_iou == 0.0
    assert not verdict.kept and "not kept" in verdict.describe()
    assert session._tracker_for(1, 3) is session.models.tracker
