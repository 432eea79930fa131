"""Session semantics with the shipped weights on the synthetic sample video."""

import cv2
import numpy as np
import pytest
import torch

from napari_hotspot.models.backbone import frame_to_tensor
from napari_hotspot.errors import PromptError
from napari_hotspot.session import HotspotSession

# Below the sample video's 320 px (the default working size, 448, would upscale it): the semantics
# tested here do not depend on the size, and the file runs in about half the time.
LONG_SIDE = 256


def iou(a, b):
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else np.logical_and(a, b).sum() / u


@pytest.fixture()
def session(sample, models):
    return HotspotSession(sample.frames[:16], models, long_side=LONG_SIDE)


def test_mask_prompt_propagates_forward(session, sample):
    given = sample.masks[0] == 1
    given[10:40:2, 10:60:3] = True  # fine structure the working size cannot hold
    r = session.add_prompt(0, 1, mask=given)
    assert np.array_equal(r.mask, given)  # a given mask is the answer on its frame as given
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    results = list(session.propagate())
    assert [r.frame for r in results] == list(range(1, 16))
    js = [iou(r.mask, sample.masks[r.frame] == 1) for r in results]
    assert np.mean(js) > 0.5, js
    for r in results:
        assert r.mask.shape == (240, 320) and 0.0 <= r.confidence <= 1.0
        if r.hotspot is not None:
            x, y = r.hotspot
            assert r.mask[int(round(y)), int(round(x))]


def test_backward_and_both(session, sample):
    session.add_prompt(10, 1, mask=sample.masks[10] == 1)
    back = [r.frame for r in session.propagate(direction="backward")]
    assert back == list(range(9, -1, -1))
    both = [r.frame for r in session.propagate(direction="both")]
    assert both == list(range(11, 16)) + list(range(9, -1, -1))


def test_keyframes_are_never_overwritten_and_reanchor(session, sample):
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    session.add_prompt(8, 1, mask=sample.masks[8] == 1, source="correction")
    frames = [r.frame for r in session.propagate()]
    assert 8 not in frames and frames == [t for t in range(1, 16) if t != 8]
    # Re-propagate from the correction up to the next keyframe only.
    session.add_prompt(12, 1, mask=sample.masks[12] == 1)
    frames = [r.frame for r in session.propagate(start_frame=8, stop_at_keyframe=True)]
    assert frames == [9, 10, 11]
    frames = [r.frame for r in session.propagate(start_frame=8, direction="backward", stop_at_keyframe=True)]
    assert frames == [7, 6, 5, 4, 3, 2, 1]


def test_an_object_marked_absent_gets_empty_masks_until_its_next_anchor(session, sample):
    session.options = session.options.with_(reacquire=False)  # not looked for again (the next test does)
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    session.mark_absent(5, 1)
    session.add_prompt(10, 1, mask=sample.masks[10] == 1)
    assert session.anchors(1) == [0, 10] and session.absent_frames(1) == [5]
    results = {r.frame: r for r in session.propagate()}
    assert sorted(results) == [t for t in range(1, 16) if t not in (5, 10)]  # the absence is a keyframe too
    assert all(results[t].mask.any() for t in (1, 2, 3, 4, 11, 12, 13, 14, 15))
    assert all(not results[t].mask.any() and results[t].hotspot is None for t in (6, 7, 8, 9))
    # backward from the anchor on 10: it tracks down to the absence and stops there (with or without
    # stop_at_keyframe: the frames before the absence are the forward sweep's from frame 0)
    assert [r.frame for r in session.propagate(start_frame=10, direction="backward", stop_at_keyframe=True)] == \
        [9, 8, 7, 6]
    back = {r.frame: r for r in session.propagate(start_frame=15, direction="backward")}
    assert sorted(back) == [6, 7, 8, 9] and all(back[t].mask.any() for t in back)
    # a sweep started past the absence has nothing to track from until the next anchor
    started = {r.frame: r for r in session.propagate(start_frame=7, end_frame=12)}
    assert sorted(started) == [7, 8, 9, 11, 12] and not any(started[t].mask.any() for t in (7, 8, 9))
    # marking an anchor's frame absent replaces the anchor; a prompt there replaces the absence
    session.mark_absent(10, 1)
    assert session.anchors(1) == [0] and session.absent_frames(1) == [5, 10]
    session.add_prompt(5, 1, mask=sample.masks[5] == 1)
    assert session.anchors(1) == [0, 5] and session.absent_frames(1) == [10]
    session.mark_absent(10, 1, absent=False)
    assert session.absent_frames(1) == [] and [r.frame for r in session.propagate()] == \
        [t for t in range(1, 16) if t != 5]


def cut_away(sample, away: np.ndarray, first: int = 6, back: int = 14, end: int = 24):
    """The sample video's frames before `first`, then the `away` frames (the objects are not there), then
    its frames from `back` to `end`: (video, truth of object 1, first away frame, first frame back)."""
    video = np.concatenate([sample.frames[:first], away, sample.frames[back:end]])
    truth = np.concatenate([sample.masks[:first] == 1, np.zeros(away.shape[:3], bool), sample.masks[back:end] == 1])
    return video, truth, first, first + len(away)


def test_a_forward_sweep_finds_an_object_again_after_its_absence(sample, models):
    """Past a frame where the object is marked absent, a forward sweep looks for it on every frame: it
    gives nothing while another scene is shown and tracks the object again from its second frame back
    (REACQUIRE_FRAMES), saying so once; with `reacquire` off it stays absent."""
    rng = np.random.default_rng(1)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 6)  # no object in it
    away = np.stack([np.roll(scene, 4 * i, axis=1) for i in range(6)])
    video, truth, gone, back = cut_away(sample, away)
    session = HotspotSession(video, models, long_side=LONG_SIDE)
    session.add_prompt(0, 1, mask=truth[0])
    session.mark_absent(gone, 1)
    results = {r.frame: r for r in session.propagate()}
    assert all(not results[t].mask.any() and results[t].hotspot is None for t in range(gone + 1, back))
    assert not results[back].mask.any() and results[back].confidence < 1.0  # looks like it: not yet sure
    found = [t for t, r in results.items() if r.found_again]
    assert found == [back + 1], found
    assert all(iou(results[t].mask, truth[t]) > 0.5 for t in range(back + 1, len(video))), \
        [round(iou(results[t].mask, truth[t]), 2) for t in range(back + 1, len(video))]
    assert all(results[t].mask[int(round(results[t].hotspot[1])), int(round(results[t].hotspot[0]))]
               for t in range(back + 1, len(video)))
    # a sweep started past the absence looks from there; one that stops at keyframes stops at the absence
    started = {r.frame: r for r in session.propagate(start_frame=back - 2)}
    assert [t for t, r in started.items() if r.found_again] == [back + 1]
    assert [r.frame for r in session.propagate(stop_at_keyframe=True)] == list(range(1, gone))
    session.options = session.options.with_(reacquire=False)
    assert not any(r.mask.any() for r in session.propagate(start_frame=gone + 1))
    # a backward sweep does not look where an anchor comes before the absence: those frames are the
    # forward sweep's from it
    session.options = session.options.with_(reacquire=True)
    session.add_prompt(len(video) - 1, 1, mask=truth[-1])
    assert [r.frame for r in session.propagate(start_frame=len(video) - 1, direction="backward")] == \
        list(range(len(video) - 2, gone, -1))


def test_a_backward_sweep_looks_before_an_absence_no_anchor_precedes(sample, models):
    """Prompted on the last frame and marked absent on the last cut-away frame: a backward sweep tracks down
    to the absence, finds nothing in the cut-away and the object again before it (on its second frame
    there), and tracks it back to frame 0; "both" runs the same way."""
    rng = np.random.default_rng(2)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 6)
    video, truth, gone, back = cut_away(sample, np.stack([np.roll(scene, 4 * i, axis=0) for i in range(6)]))
    last = len(video) - 1
    session = HotspotSession(video, models, long_side=LONG_SIDE)
    session.add_prompt(last, 1, mask=truth[last])
    session.mark_absent(back - 1, 1)
    for direction in ("backward", "both"):
        results = {r.frame: r for r in session.propagate(direction=direction)}
        assert sorted(results) == [t for t in range(last) if t != back - 1]
        assert all(not results[t].mask.any() for t in range(gone - 1, back - 1))
        assert [t for t, r in results.items() if r.found_again] == [gone - 2]
        assert all(iou(results[t].mask, truth[t]) > 0.5 for t in range(0, gone - 1)), \
            [round(iou(results[t].mask, truth[t]), 2) for t in range(0, gone - 1)]
    session.options = session.options.with_(reacquire=False)
    assert sorted(r.frame for r in session.propagate(direction="backward")) == list(range(back, last))
    # forward from before the first anchor: no look behind the absence, so nothing is looked for there
    session.options = session.options.with_(reacquire=True)
    ahead = {r.frame: r for r in session.propagate(start_frame=0, end_frame=back + 2)}
    assert not any(r.mask.any() or r.found_again for t, r in ahead.items() if t > back - 1)


def test_a_search_leaves_the_other_objects_alone_and_encodes_each_frame_once(sample, models, monkeypatch):
    """Object 1 marked absent and looked for, object 2 tracked: object 2's masks are those of a run without
    the absence, and every frame is encoded once for both."""
    session = HotspotSession(sample.frames[:14], models, long_side=LONG_SIDE)
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    session.add_prompt(0, 2, mask=sample.masks[0] == 2)
    plain = {r.frame: r.mask for r in session.propagate() if r.object_id == 2}
    session._features.clear()
    session.features(0)
    session.mark_absent(5, 1)
    encoded = []
    real = session.models.encoder.forward
    monkeypatch.setattr(session.models.encoder, "forward", lambda x, **kw: encoded.append(1) or real(x, **kw))
    results = list(session.propagate())
    assert len(encoded) == 13  # frames 1..13, the absence's too (the search's first step compares with it)
    assert all(np.array_equal(r.mask, plain[r.frame]) for r in results if r.object_id == 2)
    ones = {r.frame: r for r in results if r.object_id == 1}
    assert sorted(ones) == [t for t in range(1, 14) if t != 5] and not ones[6].mask.any()
    assert ones[7].found_again and all(ones[t].mask.any() for t in range(7, 14))


def test_a_search_takes_no_other_object(sample, models):
    """The second object (a bird) shown where the first (an animal) was marked absent is not taken for it."""
    video, truth, gone, back = cut_away(sample, np.stack([sample.frames[t] for t in range(6, 14)]))
    bird_only = video.copy()
    for t in range(gone, back):  # the animal painted out
        near = cv2.dilate((sample.masks[t] == 1).astype(np.uint8), np.ones((9, 9), np.uint8))
        bird_only[t] = cv2.inpaint(sample.frames[t], near, 5, cv2.INPAINT_TELEA)
    session = HotspotSession(bird_only[:back], models, long_side=LONG_SIDE)
    session.add_prompt(0, 1, mask=truth[0])
    session.mark_absent(gone, 1)
    assert not any(r.mask.any() for r in session.propagate() if r.frame > gone)


def test_a_correction_keeps_the_prompt_behind_it_as_template(session, sample):
    """A sweep leaving a corrected frame restarts the previous-frame chain from the correction but keeps
    the prompt behind it as the appearance template, so a partial correction does not shrink the
    object for the rest of the video (the default; `corrections_keep_anchor`)."""
    truth = sample.masks == 1
    session.add_prompt(0, 1, mask=truth[0])
    part = truth[5].copy()
    ys, xs = np.nonzero(part)
    part[:, : int(np.percentile(xs, 70))] = False  # the correction holds only a sliver of the object
    assert 0 < part.sum() < 0.4 * truth[5].sum()
    session.add_prompt(5, 1, mask=part, source="correction")
    assert session._template_for_correction(1, 5, +1) is not None  # frame 0's prompt lies behind
    # backward too: the prompt is the object's appearance whichever way the sweep runs
    assert session._template_for_correction(1, 5, -1) is not None
    assert session._template_for_correction(1, 0, +1) is None  # frame 0 is a prompt, not a correction

    def j_after(keep):
        session.corrections_keep_anchor = keep
        res = list(session.propagate(start_frame=5, end_frame=15))
        return np.mean([iou(r.mask, truth[r.frame]) for r in res])

    kept, replaced = j_after(True), j_after(False)
    assert kept > replaced + 0.1, (kept, replaced)


def test_a_correction_keeps_the_prompt_in_a_backward_sweep(session, sample):
    """A backward sweep from a correction after the prompt keeps the prompt as its anchor template too,
    and a sweep started between two anchors re-anchors the same way."""
    truth = sample.masks == 1
    session.add_prompt(0, 1, mask=truth[0])
    part = truth[12].copy()
    ys, xs = np.nonzero(part)
    part[:, : int(np.percentile(xs, 70))] = False
    session.add_prompt(12, 1, mask=part, source="correction")
    anchor_ref, prev_ref = session._state_from_behind(1, 8, -1)  # between them, backward: from frame 12
    prompt_ref = session._template_for_correction(1, 12, -1)
    assert torch.equal(anchor_ref.mask, prompt_ref.mask)  # frame 0's prompt, not the sliver at frame 12
    assert prev_ref.mask.sum() < 0.5 * anchor_ref.mask.sum()  # the chain restarts from the sliver

    def j_backward(keep):
        session.corrections_keep_anchor = keep
        res = list(session.propagate(start_frame=12, end_frame=1, direction="backward"))
        return np.mean([iou(r.mask, truth[r.frame]) for r in res])

    kept, replaced = j_backward(True), j_backward(False)
    assert kept > replaced + 0.1, (kept, replaced)


def test_several_objects_encode_each_frame_once(session, sample, monkeypatch):
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    session.add_prompt(0, 2, mask=sample.masks[0] == 2)
    encoded = []
    real = session.models.encoder.forward
    monkeypatch.setattr(session.models.encoder, "forward", lambda x, **kw: encoded.append(1) or real(x, **kw))
    results = list(session.propagate(end_frame=5))
    assert sorted((r.frame, r.object_id) for r in results) == [(t, o) for t in range(1, 6) for o in (1, 2)]
    assert len(encoded) == 5  # frames 1..5, once each for both objects


def test_a_kept_frame_restarts_the_chain_keeps_the_prompts_look_and_is_not_learnt(session, sample):
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    session.add_prompt(6, 1, mask=sample.masks[6] == 1, source="kept")
    assert session.pending_adaptation_frames(1) == [0]
    kept_template = session._template_for_correction(1, 6, +1)
    prompt, kept = session._anchor_reference(1, 0), session._anchor_reference(1, 6)
    assert torch.equal(kept_template.keys, prompt.keys)  # the prompt on frame 0 stays the appearance
    assert not torch.equal(kept_template.keys, kept.keys)
    assert [r.frame for r in session.propagate(start_frame=6, end_frame=9)] == [7, 8, 9]
    # an object started by painting (a correction to the session): the painted mask is its look
    session.add_prompt(0, 1, mask=sample.masks[0] == 1, source="correction")
    assert torch.equal(session._template_for_correction(1, 6, +1).keys, session._anchor_reference(1, 0).keys)


def test_frames_where_the_object_is_absent_are_not_encoded(session, sample, monkeypatch):
    session.options = session.options.with_(reacquire=False)  # looking for it again encodes them
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    session.mark_absent(3, 1)
    session.add_prompt(10, 1, mask=sample.masks[10] == 1)
    session.features(0)
    session.features(10)  # the prompts' frames are encoded already
    encoded = []
    real = session.models.encoder.forward
    monkeypatch.setattr(session.models.encoder, "forward", lambda x, **kw: encoded.append(1) or real(x, **kw))
    results = {r.frame: r for r in session.propagate(end_frame=12)}
    assert sorted(results) == [1, 2, 4, 5, 6, 7, 8, 9, 11, 12]
    assert not any(results[t].mask.any() for t in range(4, 10))
    assert len(encoded) <= 5, len(encoded)  # 1, 2, 11, 12 (and at most one frame asked ahead before the absence)


def test_a_sweep_encodes_no_frame_nothing_tracks(session, sample, monkeypatch):
    """A backward sweep from the video's end (the dock's "both" and "backward" runs) passes the frames after
    the object's last anchor without tracking them, and without encoding them."""
    session.add_prompt(4, 1, mask=sample.masks[4] == 1)
    session.features(4)
    encoded = []
    real = session.models.encoder.forward
    monkeypatch.setattr(session.models.encoder, "forward", lambda x, **kw: encoded.append(1) or real(x, **kw))
    results = [r.frame for r in session.propagate(start_frame=15, end_frame=0, direction="backward")]
    assert results == [3, 2, 1, 0]
    assert len(encoded) <= 5, len(encoded)  # 3, 2, 1, 0 (and at most the start frame, asked before it is known)


def test_a_sweep_encodes_to_s16_and_a_prompt_on_a_swept_frame_completes_it(session, sample, monkeypatch):
    """The tracker reads s4-s16 only, so a sweep's passes stop there; a click on a swept frame adds s32
    from the cached s16 (the last blocks only) and answers as on a fully encoded frame."""
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    list(session.propagate(end_frame=4))
    assert all(not session._features[t].complete for t in range(1, 5)) and session._features[0].complete
    x, y = sample.hotspots[3, 0, :2]
    passes = []
    real = session.models.encoder.forward
    monkeypatch.setattr(session.models.encoder, "forward", lambda x, **kw: passes.append(kw) or real(x, **kw))
    swept = session.add_prompt(3, 2, points=[(x, y)], labels=[1])
    assert passes == [] and session._features[3].complete  # finished, not encoded again
    full = session.models.encoder(frame_to_tensor(sample.frames[3], session.work_size))
    assert float((session._features[3].s32 - full.s32).abs().max()) <= 1e-5 * float(full.s32.abs().max())
    session._features.pop(3)
    fresh = session.add_prompt(3, 2, points=[(x, y)], labels=[1])
    assert iou(swept.mask, fresh.mask) > 0.99 and swept.hotspot == pytest.approx(fresh.hotspot, abs=0.5)
    # The dock's prefetch on the frame shown: a swept frame stays as the sweep left it, a new one is whole.
    passes.clear()
    session.prefetch(2)
    assert not session._features[2].complete and passes == []
    session.prefetch(6)
    assert session._features[6].complete and len(passes) == 1  # one pass (to s16, then its last blocks)


def test_a_sweep_collects_each_steps_evidence_only_when_asked_and_its_confidence_is_the_same(session, sample):
    """Only the confidence needs a step's evidence (its certainty); the rest is for studies of it."""
    session.add_prompt(0, 1, mask=sample.masks[0] == 1)
    plain = list(session.propagate(end_frame=4))
    session.collect_evidence = True
    studied = list(session.propagate(end_frame=4))
    assert [r.evidence for r in plain] == [None] * 4
    assert all({"certainty", "area", "bg_like", "heat_peak"} <= set(r.evidence) for r in studied)
    assert [r.confidence for r in studied] == pytest.approx([r.confidence for r in plain], abs=1e-9)
    assert all(0.0 < r.confidence <= 1.0 for r in plain)
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(plain, studied))


def test_click_prompt_answers_without_reencoding(session, sample, monkeypatch):
    session.features(0)
    calls = []
    real = session.models.encoder.forward
    monkeypatch.setattr(session.models.encoder, "forward", lambda x, **kw: calls.append(1) or real(x, **kw))
    x, y = sample.hotspots[0, 0, :2]
    r1 = session.add_prompt(0, 1, points=[(x, y)], labels=[1])
    r2 = session.add_prompt(0, 1, points=[(x, y), (5, 5)], labels=[1, 0])
    assert calls == []
    assert r1.mask.any() and r2.mask.shape == (240, 320)
    assert r1.hotspot == pytest.approx((x, y), abs=1.0)  # the first positive click is the hotspot


def test_click_masks_honour_the_clicks_and_drop_far_look_alikes(session, sample):
    from napari_hotspot.session import _near_clicked_parts

    # Two blobs far apart: only the clicked one is the object; a nearby fragment stays with it.
    m = np.zeros((120, 160), np.float32)
    m[20:60, 10:50] = 1  # clicked part
    m[20:60, 54:60] = 1  # a fragment 4 px away (e.g. an arm split off by an occluder)
    m[70:110, 120:150] = 1  # a look-alike far away
    kept = _near_clicked_parts(torch.from_numpy(m), [(30.0, 40.0)]).numpy() > 0.5
    assert kept[40, 30] and kept[40, 56] and not kept[90, 130]
    assert (_near_clicked_parts(torch.from_numpy(m), []).numpy() == m).all()  # no click: unchanged

    # Through the session: positives inside, a negative click outside the answer.
    x, y = sample.hotspots[0, 0, :2]
    r = session.add_prompt(0, 1, points=[(x, y), (5, 5)], labels=[1, 0])
    assert r.mask[int(round(y)), int(round(x))] and not r.mask[5, 5]


@pytest.mark.parametrize("decoder_answer", ["elsewhere", "empty"])
def test_a_click_the_decoder_leaves_out_is_found_by_the_tracker(session, sample, monkeypatch, decoder_answer):
    # Gaze2Mask-Net answering a click with a mask elsewhere (or none): the session falls back to a
    # tracker pass seeded at the clicks, so the clicked object is what comes back.
    h, w = session.work_size
    wrong = torch.zeros(h, w)
    if decoder_answer == "elsewhere":
        wrong[:10, :10] = 1.0
    monkeypatch.setattr(session, "_segment", lambda frame, guidance: wrong)
    gt = sample.masks[0] == 1
    x, y = sample.hotspots[0, 0, :2]
    r = session.add_prompt(0, 1, points=[(x, y), (5, 5)], labels=[1, 0])
    assert r.mask[int(round(y)), int(round(x))] and not r.mask[5, 5]
    inside_object = (r.mask & gt).sum() / r.mask.sum()
    assert inside_object > 0.8 and iou(r.mask, gt) > 0.1, (inside_object, iou(r.mask, gt))
    assert r.hotspot == pytest.approx((x, y), abs=1.0)
    session.refine_prompts = False  # the raw decoder, as benchmarks ask for: no fallback
    if decoder_answer == "empty":
        with pytest.raises(PromptError, match="empty mask"):
            session.add_prompt(0, 1, points=[(x, y)])
    else:
        assert not session.add_prompt(0, 1, points=[(x, y)]).mask[int(round(y)), int(round(x))]


def test_a_decoder_mask_holding_the_click_gets_the_refinement_passes_and_no_fallback(session, sample, monkeypatch):
    import napari_hotspot.session as session_module

    gt = sample.masks[0] == 1
    x, y = sample.hotspots[0, 0, :2]
    h, w = session.work_size
    wx, wy = session._to_work(x, y)
    # A small part of the object around the click (a 9x9 square of it, not always of the object, left the
    # tracker nothing to match on some installs: a flaky test).
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    partial = ((session._mask_to_work(gt) > 0.5) & ((xx - wx) ** 2 + (yy - wy) ** 2 <= 12**2)).float()
    monkeypatch.setattr(session, "_segment", lambda frame, guidance: partial)
    steps, seeded = [], []
    real_step, real_seed = session_module.track_step, session._prompt_seeded_mask
    monkeypatch.setattr(session_module, "track_step", lambda *a: steps.append(1) or real_step(*a))
    monkeypatch.setattr(session, "_prompt_seeded_mask", lambda *a: seeded.append(1) or real_seed(*a))
    r = session.add_prompt(0, 1, points=[(x, y)])
    assert seeded == [] and 1 <= len(steps) <= session_module.REFINE_PASSES
    assert r.mask.sum() > partial.sum() * (gt.size / partial.numel())  # the passes grew the part
    session.refine_prompts = False
    steps.clear()
    r = session.add_prompt(0, 1, points=[(x, y)])
    assert steps == [] and r.mask[int(round(y)), int(round(x))]


@pytest.mark.parametrize("prompt", ["click", "box", "click_and_hotspot"])
def test_a_first_answer_refined_later_ends_as_the_prompt_refined_at_once(sample, models, prompt):
    # The dock shows Gaze2Mask-Net's answer at once and refines it in a thread: the refined anchor
    # must be exactly the one a plain add_prompt makes (same mask, same hotspot).
    x, y = sample.hotspots[3, 0, :2]
    ys, xs = np.nonzero(sample.masks[3] == 1)
    kwargs = {"click": {"points": [(x, y)]}, "box": {"box": (xs.min(), ys.min(), xs.max(), ys.max())},
              "click_and_hotspot": {"points": [(x, y)], "hotspot": (x + 2, y + 1)}}[prompt]
    now = HotspotSession(sample.frames[:8], models, long_side=LONG_SIDE)
    later = HotspotSession(sample.frames[:8], models, long_side=LONG_SIDE)
    full = now.add_prompt(3, 1, **kwargs)
    first = later.add_prompt(3, 1, refine_later=True, **kwargs)
    assert first.refine_token is not None and full.refine_token is None
    assert first.mask.any()
    refined = later.refine_prompt(1, 3, first.refine_token)
    assert np.array_equal(refined.mask, full.mask) and refined.hotspot == full.hotspot
    assert refined.refine_token is None
    assert later.refine_prompt(1, 3, first.refine_token) is None  # given once
    a = [r.mask for r in now.propagate([1])]
    b = [r.mask for r in later.propagate([1])]
    assert len(a) == 4 and all(np.array_equal(p, q) for p, q in zip(a, b))


def test_tracking_refines_a_pending_first_answer_itself_and_a_new_prompt_drops_it(sample, models):
    x, y = sample.hotspots[0, 0, :2]
    now = HotspotSession(sample.frames[:8], models, long_side=LONG_SIDE)
    later = HotspotSession(sample.frames[:8], models, long_side=LONG_SIDE)
    full = now.add_prompt(0, 1, points=[(x, y)])
    first = later.add_prompt(0, 1, points=[(x, y)], refine_later=True)
    # Propagation runs the pending refinement before it tracks, and the refined answer is still
    # handed out once afterwards (the dock writes it to its store then).
    a = [r.mask for r in now.propagate([1], preflight=False)]
    b = [r.mask for r in later.propagate([1], preflight=False)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert np.array_equal(later.refine_prompt(1, 0, first.refine_token).mask, full.mask)
    # Prompting the frame again replaces the pending answer: its token answers None.
    first = later.add_prompt(0, 1, points=[(x, y)], refine_later=True)
    later.add_prompt(0, 1, points=[(x, y), (5, 5)], labels=[1, 0])
    assert later.refine_prompt(1, 0, first.refine_token) is None
    first = later.add_prompt(0, 2, points=[(x, y)], refine_later=True)
    later.reset_object(2)
    assert later.refine_prompt(2, 0, first.refine_token) is None


@pytest.mark.parametrize("passes, stop_before", [(1, 0), (3, 0), (3, 1), (3, 2)])
def test_a_stopped_refinement_is_still_to_do(sample, models, monkeypatch, passes, stop_before):
    """Stopped before any of its passes (the shipped count is one; three test a stop between passes),
    the refinement is still to do, and finished later it equals the refinement run at once."""
    import napari_hotspot.session as session_module

    monkeypatch.setattr(session_module, "REFINE_PASSES", passes)
    x, y = sample.hotspots[0, 0, :2]
    session = HotspotSession(sample.frames[:4], models, long_side=LONG_SIDE)
    full = HotspotSession(sample.frames[:4], models, long_side=LONG_SIDE).add_prompt(0, 1, points=[(x, y)])
    first = session.add_prompt(0, 1, points=[(x, y)], refine_later=True)
    asked = []
    stopped = session.refine_prompt(1, 0, first.refine_token,
                                    should_stop=lambda: len(asked) >= stop_before or asked.append(1))
    assert stopped is None and len(asked) == stop_before  # every pass before the stop ran, then it stopped
    refined = session.refine_prompt(1, 0, first.refine_token)
    assert np.array_equal(refined.mask, full.mask)


def test_close_positive_and_negative_clicks_split_the_space_between_them(session, sample, monkeypatch):
    h, w = session.work_size
    monkeypatch.setattr(session, "_segment", lambda frame, guidance: torch.zeros(h, w))
    x, y = sample.hotspots[0, 0, :2]
    r = session.add_prompt(0, 1, points=[(x, y), (x + 4, y)], labels=[1, 0])  # 4 px apart
    assert r.mask[int(round(y)), int(round(x))] and not r.mask[int(round(y)), int(round(x + 4))]


def _box_with_margin(session, x0, y0, x1, y1, shape):
    """The region a box prompt's answer must stay in: the box widened by BOX_MARGIN (frame pixels)."""
    from napari_hotspot.session import BOX_MARGIN

    m = BOX_MARGIN * float(np.hypot(*session.work_size)) * shape[0] / session.work_size[0] + 2  # + rounding
    region = np.zeros(shape, bool)
    region[max(0, int(y0 - m)) : int(y1 + m) + 1, max(0, int(x0 - m)) : int(x1 + m) + 1] = True
    return region


@pytest.mark.parametrize("decoder_answer", ["empty", "elsewhere"])
def test_a_box_answered_by_the_fallback_stays_in_its_box(session, sample, monkeypatch, decoder_answer):
    # An empty answer, or one lying outside the box, is no answer to a box: the box seeds the tracker.
    h, w = session.work_size
    wrong = torch.zeros(h, w)
    if decoder_answer == "elsewhere":
        wrong[-20:, -20:] = 1.0
    monkeypatch.setattr(session, "_segment", lambda frame, guidance: wrong)
    gt = sample.masks[0] == 1
    ys, xs = np.nonzero(gt)
    x_mid = (xs.min() + xs.max()) // 2
    box = (xs.min(), ys.min(), x_mid, ys.max())  # the object's left half only
    r = session.add_prompt(0, 1, box=box)
    assert r.mask.any() and not (r.mask & ~_box_with_margin(session, *box, gt.shape)).any()
    assert (r.mask & gt).sum() / r.mask.sum() > 0.5


@pytest.mark.parametrize("decoder_answer", ["elsewhere", "empty"])
def test_an_auto_answer_missing_egnets_peak_is_seeded_at_the_peak(session, monkeypatch, decoder_answer):
    gaze = session.gaze_map(0)
    py, px = np.unravel_index(int(np.argmax(gaze)), gaze.shape)
    h, w = session.work_size
    wrong = torch.zeros(h, w)
    wx, wy = session._to_work(px, py)
    if decoder_answer == "elsewhere":  # a blob in the corner farthest from the peak
        ys = slice(0, 12) if wy > h / 2 else slice(h - 12, h)
        xs = slice(0, 12) if wx > w / 2 else slice(w - 12, w)
        wrong[ys, xs] = 1.0
    monkeypatch.setattr(session, "_segment", lambda frame, guidance: wrong)
    r = session.auto_prompt(0, 1)
    assert r.mask[py, px], "EG-Net's peak lies in the Auto answer"
    session.refine_prompts = False  # the raw decoder: no seeding
    if decoder_answer == "empty":
        with pytest.raises(PromptError, match="no salient object"):
            session.auto_prompt(0, 1)
    else:
        assert not session.auto_prompt(0, 1).mask[py, px]


def test_an_empty_decoder_answer_to_a_box_or_gaze_is_found_by_the_tracker(session, sample, monkeypatch):
    h, w = session.work_size
    monkeypatch.setattr(session, "_segment", lambda frame, guidance: torch.zeros(h, w))
    gt = sample.masks[0] == 1
    ys, xs = np.nonzero(gt)
    box = (xs.min(), ys.min(), xs.max(), ys.max())
    r = session.add_prompt(0, 1, box=box)
    assert r.mask.any() and not (r.mask & ~_box_with_margin(session, *box, gt.shape)).any()
    assert (r.mask & gt).sum() / r.mask.sum() > 0.8
    x, y = sample.hotspots[0, 0, :2]
    r = session.add_prompt(0, 1, gaze=[(x, y), (x + 2, y - 1)])
    assert r.mask[int(round(y)), int(round(x))] and (r.mask & gt).sum() / r.mask.sum() > 0.8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(points=[(400, 10)]), "off the image"),
        (dict(points=[(-1, 10)]), "off the image"),
        (dict(points=[(10, 10)], labels=[0]), "positive click"),
        (dict(box=(10, 10, 10, 50)), "zero area"),
        (dict(mask=np.zeros((240, 320), bool)), "empty"),
        (dict(mask=np.ones((10, 10), bool)), "does not match"),
        (dict(), "needs clicks"),
    ],
)
def test_bad_prompts_are_rejected_clearly(session, kwargs, message):
    with pytest.raises(PromptError, match=message):
        session.add_prompt(0, 1, **kwargs)
    assert session.object_ids == []  # nothing half-added


@pytest.mark.parametrize(
    "frame, points, box, message",
    [(99, (), None, "out of range"), (0, [(400, 10)], None, "off the image"), (0, [(5, 5), (5, -2)], None, "off the image"),
     (0, (), (500, 500, 600, 600), "off the image"), (0, (), (10, 10, 10, 50), "zero area")],
)
def test_check_prompt_refuses_what_add_prompt_refuses_without_running_a_model(session, monkeypatch, frame, points,
                                                                              box, message):
    monkeypatch.setattr(session, "_segment", lambda *a, **k: pytest.fail("a model ran"))
    with pytest.raises(PromptError, match=message):
        session.check_prompt(frame, points, box)
    with pytest.raises(PromptError, match=message):
        session.add_prompt(frame, 1, points=points or None, box=box)
    session.check_prompt(0, [(5, 5), (319, 239)], (10, 10, 400, 50))  # on the image (the box is clipped): no error


def test_bad_frame_and_unprompted_object(session):
    with pytest.raises(PromptError, match="out of range"):
        session.add_prompt(99, 1, points=[(5, 5)])
    with pytest.raises(PromptError, match="no prompt"):
        list(session.propagate(object_ids=[3]))


def test_box_and_auto_prompts_give_masks(session, sample):
    ys, xs = np.nonzero(sample.masks[0] == 1)
    r = session.add_prompt(0, 1, box=(xs.min(), ys.min(), xs.max(), ys.max()))
    assert r.mask.any() and r.source == "box"
    a = session.auto_prompt(0, 2)
    assert a.mask.any() and a.source == "auto"
    gm = session.gaze_map(0)
    assert gm.shape == (240, 320) and gm.sum() == pytest.approx(1.0, rel=1e-3)


def _propagated_masks(session):
    return {r.frame: r.mask for r in session.propagate()}


def test_adaptation_is_per_object_and_leaves_base_weights_untouched(sample, models):
    import torch

    base = {k: v.clone() for k, v in models.tracker.state_dict().items()}
    s = HotspotSession(sample.frames[:6], models, long_side=LONG_SIDE)
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    unadapted = _propagated_masks(s)
    assert s.adapt(1, 0) == 0 and not s.is_adapted(1)  # budget 0 = off: exactly the base result
    assert all((unadapted[t] == m).all() for t, m in _propagated_masks(s).items())
    assert s.adapt(1, seconds=60.0, max_steps=2) == 2 and s.is_adapted(1)
    for k, v in models.tracker.state_dict().items():
        assert torch.equal(v, base[k]), f"base weight {k} changed"
    adapted = _propagated_masks(s)
    assert any((adapted[t] != unadapted[t]).any() for t in adapted)
    from napari_hotspot.models.adaptation import ADAPTED_PARTS

    changed = {k.split(".")[0] for k, v in state_dict_of(s, 1).items() if not torch.equal(v, base[k])}
    assert changed and changed <= set(ADAPTED_PARTS), changed  # only the late decoder parts learn
    # The default step cap (DEFAULT_ADAPT_STEPS) reaches the adapter; one step of it is run (all 40
    # cost the suite 40 s).
    from napari_hotspot.options import DEFAULT_ADAPT_STEPS

    adapter, seen = s._adapters[1], []
    real_fit = adapter.fit
    adapter.fit = lambda seconds, **kw: seen.append(kw.get("max_steps")) or real_fit(seconds, **{**kw, "max_steps": 1})
    assert s.adapt(1, seconds=60.0) == 1 and seen == [DEFAULT_ADAPT_STEPS]
    adapted = _propagated_masks(s)
    state = s.adaptation_state(1)
    s.reset_adaptation(1)
    assert all((unadapted[t] == m).all() for t, m in _propagated_masks(s).items())
    s.load_adaptation_state(1, state)
    assert all((adapted[t] == m).all() for t, m in _propagated_masks(s).items())


def state_dict_of(session, object_id):
    return session.adaptation_state(object_id)["model"]


def test_cancelled_adaptation_leaves_the_session_usable(sample, models):
    s = HotspotSession(sample.frames[:4], models, long_side=LONG_SIDE)
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    assert s.adapt(1, seconds=60.0, should_stop=lambda: True) == 0
    assert len(list(s.propagate())) == 3


def test_adaptation_frames_one_at_a_time_then_chunked_training(sample, models):
    """The step-wise API the napari dock uses (add_adaptation_frames, then adapt in chunks) through
    its worker generator, which holds the lock for one frame or one chunk at a time."""
    import threading

    from napari_hotspot._napari.workers import adaptation_steps

    from napari_hotspot.options import TrackingOptions

    s = HotspotSession(sample.frames[:4], models, long_side=LONG_SIDE, options=TrackingOptions(adapt_seconds=60.0, adapt_steps=2,
                                                                          long_side=256))
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    s.add_prompt(2, 1, mask=sample.masks[2] == 1)
    assert s.pending_adaptation_frames(1) == [0, 2] and s.pending_adaptation_frames(5) == []
    assert s.add_adaptation_frames(1, max_frames=1) == [0]
    assert s.pending_adaptation_frames(1) == [2] and not s.is_adapted(1)  # taken in, not trained
    assert list(adaptation_steps(s, threading.Lock(), [1], should_stop=lambda: True)) == []
    assert s.pending_adaptation_frames(1) == [2]  # a stop before anything: nothing changed
    progress = list(adaptation_steps(s, threading.Lock(), [1], chunk_seconds=1e-6))
    assert [p.phase for p in progress] == ["frames", "training", "training", "done"]
    assert progress[0].frames == (2,) and [p.steps for p in progress[1:]] == [1, 2, 2]
    assert progress[-1].learnt == (0, 2) and progress[-1].overall == 1.0
    assert s.is_adapted(1) and s.adaptation_state(1)["steps"] == 2 and s.pending_adaptation_frames(1) == []
    assert len(list(s.propagate())) == 2  # frames 1 and 3


# ---- completing sparse prompts (round trip) ----------------------------------------------------


def _answer_every_step(session_module, monkeypatch, answer, frames_seen):
    """Make every tracker step answer `answer` (working-size mask) and record its frames' features."""
    from napari_hotspot.models.tracking import StepResult, make_reference

    def fake_step(tracker, feats, anchor, prev, size):
        frames_seen.append(feats)
        prob = answer.clone()
        return StepResult(prob, None, 1.0, make_reference(feats, prob, None), torch.zeros(1))

    monkeypatch.setattr(session_module, "track_step", fake_step)


def test_sparse_prompts_wait_for_completion_once_and_masks_never(session, sample):
    x, y = sample.hotspots[0, 0, :2]
    session.add_prompt(0, 1, points=[(x, y)])
    session.add_prompt(3, 1, mask=sample.masks[3] == 1)
    session.add_prompt(5, 2, mask=sample.masks[5] == 2, source="correction")
    assert session.pending_completions(1) == [0] and session.pending_completions(2) == []
    session.auto_prompt(7, 3)  # Auto's masks are kept as they are (SPARSE_SOURCES)
    assert session.pending_completions(3) == [] and session.complete_prompt(3, 7) is None
    assert session.complete_prompt(1, 3) is None  # a mask is used as given
    session.complete_prompts(1)
    assert session.pending_completions(1) == []
    assert session.complete_prompts(1) == []  # once: nothing pending any more
    session.add_prompt(0, 1, points=[(x, y)])  # prompting again starts over
    assert session.pending_completions(1) == [0]
    with pytest.raises(PromptError, match="no prompt on frame 7"):
        session.complete_prompt(1, 7)


def test_completion_tracks_away_and_back_and_keeps_what_honours_the_prompt(session, sample, monkeypatch):
    import napari_hotspot.session as session_module

    x, y = sample.hotspots[0, 0, :2]
    r = session.add_prompt(15, 1, points=[(x, y)])  # the last frame: the round trip goes backward
    h, w = session.work_size
    wx, wy = (int(round(v)) for v in session._to_work(x, y))
    answer = torch.zeros(h, w)
    answer[max(wy - 20, 0) : wy + 20, max(wx - 20, 0) : wx + 20] = 1.0  # around the click
    answer[:6, :6] = 1.0  # and a look-alike far away, dropped as for the prompt itself
    seen = []
    _answer_every_step(session_module, monkeypatch, answer, seen)
    encoded = []
    real_features = session._tracking_features
    monkeypatch.setattr(session, "_tracking_features", lambda t: encoded.append(t) or real_features(t))
    done = session.complete_prompt(1, 15, frames=3)
    assert encoded == [15, 14, 13, 12, 13, 14, 15] and len(seen) == 6  # 3 frames away, 3 back
    assert done is not None and done.frame == 15 and done.source == "click"
    assert done.mask[int(round(y)), int(round(x))] and not done.mask[:4, :4].any()
    assert done.hotspot == pytest.approx(r.hotspot)
    assert np.array_equal(session._mask_to_frame(session._objects[1].anchors[15].mask_work, 15), done.mask)


@pytest.mark.parametrize("answer_kind", ["empty", "misses the click", "covers the negative click"])
def test_a_completion_that_breaks_the_prompt_is_not_kept(session, sample, monkeypatch, answer_kind):
    import napari_hotspot.session as session_module

    x, y = sample.hotspots[0, 0, :2]
    before = session.add_prompt(0, 1, points=[(x, y), (5, 5)], labels=[1, 0])
    h, w = session.work_size
    answer = torch.zeros(h, w)
    if answer_kind == "misses the click":
        answer[-10:, -10:] = 1.0
    elif answer_kind == "covers the negative click":
        answer[:, :] = 1.0
    _answer_every_step(session_module, monkeypatch, answer, [])
    assert session.complete_prompt(1, 0) is None
    assert np.array_equal(session._mask_to_frame(session._objects[1].anchors[0].mask_work, 0), before.mask)
    assert session.pending_completions(1) == []


def test_a_completed_box_mask_stays_in_its_box(session, sample, monkeypatch):
    import napari_hotspot.session as session_module

    gt = sample.masks[0] == 1
    ys, xs = np.nonzero(gt)
    box = (xs.min(), ys.min(), xs.max(), ys.max())
    session.add_prompt(0, 1, box=box)
    h, w = session.work_size
    _answer_every_step(session_module, monkeypatch, torch.ones(h, w), [])  # spills everywhere
    done = session.complete_prompt(1, 0)
    assert done is not None and done.mask.any()
    assert not (done.mask & ~_box_with_margin(session, *box, gt.shape)).any()


def test_adaptation_waits_for_a_click_mask_to_be_completed(session, sample):
    x, y = sample.hotspots[0, 0, :2]
    session.add_prompt(0, 1, points=[(x, y)])
    session.add_prompt(4, 1, mask=sample.masks[4] == 1)
    assert session.pending_adaptation_frames(1) == [4]  # the click's mask may still change
    session.complete_prompts(1, 0)  # completion off: taken as it is
    assert session.pending_adaptation_frames(1) == [0, 4]
    session.add_prompt(0, 2, points=[(x, y)])
    assert session.adapt(2, seconds=5.0, max_steps=2) == 0  # nothing it may learn yet
    assert not session.is_adapted(2)


def test_completion_off_or_on_a_one_frame_video(sample, models, session):
    x, y = sample.hotspots[0, 0, :2]
    session.add_prompt(0, 1, points=[(x, y)])
    assert session.complete_prompt(1, 0, frames=0) is None and session.pending_completions(1) == []
    one = HotspotSession(sample.frames[:1], models, long_side=LONG_SIDE)
    one.add_prompt(0, 1, points=[(x, y)])
    assert one.complete_prompts(1) == []


# ---- the preflight: what propagate does first (options) -----------------------------------------


def test_propagate_completes_then_adapts_as_the_options_say(sample, models, monkeypatch):
    """`propagate` runs the session's preflight first: the click's mask is completed over
    `complete_frames`, then the object is adapted (at most `adapt_steps` steps) and judged; a
    second propagation finds nothing left to prepare."""
    from napari_hotspot.options import TrackingOptions

    options = TrackingOptions(complete_frames=2, adapt_seconds=60.0, adapt_steps=2, long_side=256)
    s = HotspotSession(sample.frames[:6], models, long_side=LONG_SIDE, options=options)
    calls = []
    for name in ("complete_prompt", "adapt", "adaptation_verdict"):
        real = getattr(s, name)
        monkeypatch.setattr(s, name, lambda *a, _n=name, _r=real, **k: calls.append((_n, a, k)) or _r(*a, **k))
    x, y = sample.hotspots[0, 0, :2]
    s.add_prompt(0, 1, points=[(x, y)])
    assert s.pending_completions(1) == [0] and not s.is_adapted(1)
    assert len(list(s.propagate())) == 5
    names = [c[0] for c in calls]
    assert names[:2] == ["complete_prompt", "adapt"] and "adaptation_verdict" in names
    assert calls[0][1] == (1, 0, 2)  # frames from the options
    assert s.pending_completions(1) == [] and s.is_adapted(1)
    assert s.adaptation_state(1)["steps"] == 2 and s.adaptation_verdict(1, judge=False) is not None
    assert s.preflight_seconds > 0
    calls.clear()
    assert len(list(s.propagate())) == 5
    assert [c[0] for c in calls if c[0] != "adaptation_verdict"] == []  # nothing left to prepare


def test_preflight_returns_the_completed_masks_and_skips_adaptation_with_nothing_to_track(sample, models):
    """No adaptation when every frame is prompted (nothing will be tracked), nor with a budget of 0;
    a session made without options only propagates."""
    from napari_hotspot.options import TrackingOptions

    options = TrackingOptions(complete_frames=2, adapt_seconds=60.0, adapt_steps=2, long_side=256)
    s = HotspotSession(sample.frames[:3], models, long_side=LONG_SIDE, options=options)
    for t in range(3):
        s.add_prompt(t, 1, mask=sample.masks[t] == 1)
    assert not s.needs_adaptation(1)
    assert s.preflight() == [] and not s.is_adapted(1) and list(s.propagate()) == []
    s.remove_anchor(1, 2)
    assert s.needs_adaptation(1)
    s.options = options.with_(adapt_seconds=0.0)
    assert not s.needs_adaptation(1)
    s.preflight()
    assert not s.is_adapted(1)

    plain = HotspotSession(sample.frames[:4], models, long_side=256)
    assert plain.options.adapt_seconds == 0 and plain.options.complete_frames == 0
    x, y = sample.hotspots[0, 0, :2]
    r = plain.add_prompt(0, 1, points=[(x, y)])
    assert plain.preflight() == []  # completion off: the click's mask is kept as it is
    assert plain.pending_completions(1) == [] and not plain.is_adapted(1)
    assert np.array_equal(plain._mask_to_frame(plain._objects[1].anchors[0].mask_work, 0), r.mask)


# ---- the hotspot's smoothing (TrackingOptions.hotspot_smoothing) --------------------------------


def test_the_hotspot_smoothing_changes_the_hotspots_only(sample, models):
    """An output filter: the masks are the same as without it (the tracker's templates keep each frame's
    own heat-map peak), and every smoothed hotspot lies on its mask."""
    from napari_hotspot.options import TrackingOptions

    runs = {}
    for keep in (0.0, 0.6):
        s = HotspotSession(sample.frames[:16], models,
                           options=TrackingOptions.propagate_only(LONG_SIDE).with_(hotspot_smoothing=keep))
        s.add_prompt(0, 1, mask=sample.masks[0] == 1)
        runs[keep] = list(s.propagate())
    moved = 0
    for raw, smooth in zip(runs[0.0], runs[0.6]):
        assert raw.frame == smooth.frame and np.array_equal(raw.mask, smooth.mask)
        assert (raw.hotspot is None) == (smooth.hotspot is None)
        if smooth.hotspot is not None:
            x, y = smooth.hotspot
            assert smooth.mask[int(round(y)), int(round(x))]
            moved += not np.allclose(raw.hotspot, smooth.hotspot)
    assert moved > 0


def test_the_smoothing_starts_from_each_keyframes_own_hotspot(session, monkeypatch):
    """A tracked hotspot that hops between two spots of a still object: kept at 0.5 its hops shrink, and a
    sweep leaving a keyframe starts from the keyframe's own hotspot."""
    import napari_hotspot.session as session_module
    from napari_hotspot.models.tracking import StepResult, make_reference, mask_core

    h, w = session.work_size
    prob = torch.zeros(h, w)
    prob[h // 4 : 3 * h // 4, w // 8 : 7 * w // 8] = 1.0
    core = mask_core(prob.numpy() > 0.5)
    cx, cy = (w // 8 + 7 * w // 8 - 1) / 2, (h // 4 + 3 * h // 4 - 1) / 2
    spots = [(cx - w / 4, cy), (cx + w / 4, cy)]
    steps = []

    def fake_step(tracker, feats, anchor, prev, size, **_kw):
        xy = spots[len(steps) % 2]
        steps.append(xy)
        return StepResult(prob.clone(), xy, 1.0, make_reference(feats, prob, xy), torch.zeros(1), None, core,
                          prob.numpy() > 0.5)

    monkeypatch.setattr(session_module, "track_step", fake_step)
    # (without the distractor memory, whose look at each keyframe would be a step too)
    session.options = session.options.with_(hotspot_smoothing=0.5, distractor_memory=False)
    for keyframe in (0, 4):  # each with its hotspot at the centroid: offset 0
        session.add_prompt(keyframe, 1, mask=session._mask_to_frame(prob, keyframe) > 0,
                           hotspot=session._to_frame((cx, cy)))
    results = list(session.propagate(end_frame=7))
    assert [r.frame for r in results] == [1, 2, 3, 5, 6, 7]
    assert len(steps) == len(results)  # one step a tracked frame
    xs = [session._to_work(*r.hotspot)[0] - cx for r in results]
    raw = [xy[0] - cx for xy in steps]
    for k in (0, 3):  # frames 1 and 5: half their own offset, half the keyframe's (0)
        assert abs(xs[k] - raw[k] / 2) < 1.5, (xs, raw)
    hops, raw_hops = np.abs(np.diff(xs[:3])), np.abs(np.diff(raw[:3]))
    assert np.all(hops < 0.8 * raw_hops), (xs, raw)


def test_every_command_that_tracks_takes_hotspot_smoothing_and_eval_passes_on_its_options(monkeypatch, tmp_path):
    from napari_hotspot import cli
    from napari_hotspot.batch import cli as batch_cli
    from napari_hotspot.evaluation import tracker_eval
    from napari_hotspot.options import HOTSPOT_SMOOTHING, tracking_options

    parser = cli.build_parser()
    for argv in (["track", "v.mp4", "--out", "o", "--click", "3,4"], ["eval", "--out", "o"],
                 ["reframe", "v.mp4", "--out", "o.mp4", "--click", "3,4", "--aspect", "1:1"]):
        assert tracking_options(parser.parse_args(argv)).hotspot_smoothing == HOTSPOT_SMOOTHING
        assert tracking_options(parser.parse_args([*argv, "--hotspot-smoothing", "0"])).hotspot_smoothing == 0.0
        with pytest.raises(SystemExit):  # a share of 1 would never move
            parser.parse_args([*argv, "--hotspot-smoothing", "1"])
    batch = batch_cli.build_parser().parse_args(["m.csv", "--out", "o", "--hotspot-smoothing", "0.5"])
    assert tracking_options(batch).hotspot_smoothing == 0.5
    from napari_hotspot.options import TrackingOptions

    for bad in (1.0, -0.1, float("nan")):  # a library caller is refused too
        with pytest.raises(ValueError, match="hotspot_smoothing"):
            TrackingOptions(hotspot_smoothing=bad)

    class Stop(Exception):
        pass

    seen = {}

    def fake_eval(root, out, sequences, init, models, options=None, **switches):
        seen.update(options=options, **switches)
        raise Stop

    monkeypatch.setattr(tracker_eval, "evaluate_tracker", fake_eval)
    (tmp_path / "JPEGImages" / "480p" / "s").mkdir(parents=True)  # a sequence `eval` finds (checked first)
    (tmp_path / "Annotations" / "480p" / "s").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "Annotations" / "480p" / "s" / "00000.png"), np.ones((4, 4), np.uint8))
    with pytest.raises(Stop):
        cli.main(["eval", "--davis-root", str(tmp_path), "--sequences", "s", "--out", str(tmp_path / "o"),
                  "--adapt", "3", "--adapt-steps", "7", "--complete", "2", "--whole-frame",
                  "--no-distractor-memory", "--hotspot-smoothing", "0.5", "--long-side", "320"])
    o = seen["options"]
    assert (o.adapt_seconds, o.adapt_steps, o.complete_frames, o.search_window, o.distractor_memory,
            o.hotspot_smoothing, o.long_side) == (3.0, 7, 2, False, False, 0.5, 320)


def test_a_frame_smaller_than_the_working_size_shows_no_hotspot_without_a_mask(models):
    # 4 px high: the working size is larger than the frame, so a tracked mask can vanish when it is
    # resized back; its hotspot must then be hidden too, not a visible point on an empty mask.
    frames = np.zeros((5, 4, 64, 3), np.uint8)
    for t in range(5):
        frames[t, :, 20 + t: 30 + t] = 255
    s = HotspotSession(frames, models)
    s.add_prompt(0, 1, points=[(25, 2)], labels=[1])
    results = list(s.propagate([1], start_frame=0, end_frame=4))
    assert len(results) == 4
    assert all(r.hotspot is None for r in results if not r.mask.any())
    assert all(r.hotspot is not None for r in results if r.mask.any())
