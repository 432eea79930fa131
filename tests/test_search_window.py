"""A sweep's step looks for the object in a window around its previous mask (`tracking.search_window`)."""

from __future__ import annotations

import pytest
import torch

from napari_hotspot.models import precision, tracking
from napari_hotspot.models.backbone import LEVEL_CHANNELS, FrameFeatures
from napari_hotspot.models.heads import WCSTracker, matching_keys
from napari_hotspot.models.tracking import (anchor_correlation, crop_cells, make_reference, search_window,
                                            track_step)


def _features(h: int, w: int, seed: int = 0) -> FrameFeatures:
    g = torch.Generator().manual_seed(seed)
    return FrameFeatures(*(torch.randn(1, LEVEL_CHANNELS[k], h // s, w // s, generator=g)
                           for k, s in (("s4", 4), ("s8", 8), ("s16", 16))))


def _map8(h8: int, w8: int, rows: slice, cols: slice) -> torch.Tensor:
    m = torch.zeros(1, 1, h8, w8)
    m[0, 0, rows, cols] = 1.0
    return m


def test_the_window_is_the_previous_masks_box_grown_by_its_margins_on_the_stride16_grid():
    # An object on stride-8 rows 10-13 and columns 20-27: stride-16 rows 5-7, columns 10-14 (exclusive)
    window = search_window(_map8(32, 56, slice(10, 14), slice(20, 28)), margin_fraction=0.25, margin_cells=2,
                           min_side_share=0.0)
    # rows: 5..7 grown by 0.25 x 2 + 2 = 2.5 cells; columns: 10..14 grown by 0.25 x 4 + 2 = 3
    assert window == (2, 10, 7, 17)
    # at the frame's side the window stops there
    assert search_window(_map8(32, 56, slice(0, 2), slice(0, 2)), margin_fraction=0.0, margin_cells=1,
                         min_side_share=0.0) == (0, 2, 0, 2)


def test_each_window_side_spans_at_least_half_the_frames():
    """The decoder's group norms see the window: one little larger than a small object shrank it."""
    small = _map8(32, 56, slice(10, 12), slice(20, 22))
    assert search_window(small, margin_fraction=0.0, margin_cells=1) == (1, 9, 3, 17)
    # grown about the middle, and shifted back inside the frame at its sides
    corner = _map8(32, 56, slice(0, 2), slice(54, 56))
    assert search_window(corner, margin_fraction=0.0, margin_cells=1) == (0, 8, 14, 28)
    assert tracking._at_least(3, 5, 16, 0.5) == (0, 8) and tracking._at_least(2, 12, 16, 0.5) == (2, 12)


def test_the_window_also_holds_what_the_anchors_matching_alone_finds():
    """A part the previous mask lost (a paraglider's pilot below the wing) is found again from the prompt."""
    prev = _map8(32, 56, slice(4, 8), slice(40, 48))
    anchor_corr = torch.zeros(1, 4, 32, 56)
    anchor_corr[0, 0, 24:26, 42:44] = 0.9  # the pilot, 8 stride-16 cells below the wing
    anchor_corr[0, 1] = 0.99  # the other channels do not place the window
    alone = search_window(prev, margin_fraction=0.0, margin_cells=1, min_side_share=0.0)
    both = search_window(prev, anchor_corr, margin_fraction=0.0, margin_cells=1, min_side_share=0.0)
    # 13 rows grown to 14: window sides come in steps of two cells (a video meets few distinct shapes)
    assert alone == (1, 5, 19, 25) and both == (1, 15, 19, 25)
    assert tracking._even_span(-2, 3, 16) == (0, 4) and tracking._even_span(13, 18, 16) == (12, 16)
    assert tracking._even_span(0, 16, 16) == (0, 16) and tracking._even_span(0, 15, 15) == (0, 15)


def test_no_window_for_an_empty_mask_or_one_that_fills_most_of_the_frame():
    assert search_window(torch.zeros(1, 1, 32, 56)) is None
    assert search_window(torch.full((1, 1, 32, 56), 1e-3)) is None  # the sigmoid's haze is not an object
    assert search_window(_map8(32, 56, slice(2, 30), slice(4, 52))) is None
    # a sliver covering a twentieth of one cell still counts
    sliver = torch.zeros(1, 1, 32, 56)
    sliver[0, 0, 16, 28] = 0.06
    assert search_window(sliver) is not None
    faint = torch.zeros(1, 1, 32, 56)  # a mask fainter than the cover share everywhere still places it
    faint[0, 0, 16, 28] = 0.03
    assert search_window(faint, min_side_share=0.0) == (5, 11, 11, 17)


def _logits_region(window, grid16, rows, cols):
    r0, r1, c0, c1 = window
    m4 = torch.full((1, 1, 4 * (r1 - r0), 4 * (c1 - c0)), -5.0)
    m4[0, 0, rows, cols] = 5.0
    return tracking._reaches_window_side(m4, window, grid16)


def test_a_mask_reaching_a_window_side_inside_the_frame_sends_the_step_to_the_whole_frame():
    window, grid16 = (2, 10, 4, 14), (16, 28)
    assert not _logits_region(window, grid16, slice(8, 20), slice(8, 30))  # 2+ cells inside every side
    assert _logits_region(window, grid16, slice(1, 3), slice(10, 12))  # in the top row of cells
    assert _logits_region(window, grid16, slice(10, 12), slice(38, 40))  # in the last column of cells
    # at a side that is the frame's own, nothing lies past it
    assert not _logits_region((0, 10, 4, 14), grid16, slice(0, 3), slice(10, 12))


@pytest.fixture
def float32(monkeypatch):
    monkeypatch.setattr(precision, "_CHOSEN", [torch.float32])


def _step_inputs(h=512, w=512, seed=0):
    torch.manual_seed(seed)
    feats = _features(h, w, seed)
    tracker = WCSTracker().eval().to(memory_format=torch.channels_last)
    mask = torch.zeros(h, w)
    mask[200:300, 220:300] = 1
    anchor = make_reference(feats, mask, (260.0, 250.0))
    prev = make_reference(feats, torch.roll(mask, 8, 1), (268.0, 250.0))
    return feats, tracker, anchor, prev


def test_a_windowed_step_gives_the_whole_frames_correlation_and_crops_every_level_in_register(float32, monkeypatch):
    """Inside the window the correlation rows are the whole frame's, and the decoder sees each level's
    window at its own stride: far from the window's sides (beyond the decoder's reach and its group
    norms' statistics aside) its answer is the whole frame's, so a misregistered level would show."""
    feats, tracker, anchor, prev = _step_inputs()
    keys = matching_keys(feats)
    window = (6, 26, 8, 28)
    with torch.no_grad():
        whole = anchor_correlation(keys, anchor)
        part = anchor_correlation(crop_cells(keys, window, 2), anchor)
    assert torch.allclose(part, crop_cells(whole, window, 2), atol=1e-6)

    seen = []
    real = tracker.forward
    monkeypatch.setattr(tracker, "forward", lambda f, c, m: seen.append((f.s4.shape, f.s8.shape, f.s16.shape,
                                                                          c.shape, m.shape)) or real(f, c, m))
    monkeypatch.setattr(tracking, "_reaches_window_side", lambda *a, **k: False)
    monkeypatch.setattr(tracking, "search_window", lambda *a, **k: window)
    r = track_step(tracker, feats, anchor, prev, (512, 512), windowed=True)
    assert seen == [((1, LEVEL_CHANNELS["s4"], 80, 80), (1, LEVEL_CHANNELS["s8"], 40, 40),
                     (1, LEVEL_CHANNELS["s16"], 20, 20), (1, 8, 40, 40), (1, 1, 40, 40))]
    # nothing outside the window: no mask, no heat
    outside = torch.ones(512, 512, dtype=torch.bool)
    crop_cells(outside, window, 16).fill_(False)
    assert float(r.mask_prob[outside].max()) == 0.0
    heat_out = torch.ones(64, 64, dtype=torch.bool)
    crop_cells(heat_out, window, 2).fill_(False)
    assert float(r.heat[heat_out].max()) == 0.0 and abs(float(r.heat.sum()) - 1.0) < 1e-5
    # A decoder without group norms' frame-wide statistics answers as on the whole frame in the middle.
    for m in tracker.modules():
        if isinstance(m, torch.nn.GroupNorm):
            m.forward = lambda x: x
    seen.clear()
    r_win = track_step(tracker, feats, anchor, prev, (512, 512), windowed=True)
    r_all = track_step(tracker, feats, anchor, prev, (512, 512))
    mid = (slice(16 * 12, 16 * 20), slice(16 * 14, 16 * 22))
    assert torch.allclose(r_win.mask_prob[mid], r_all.mask_prob[mid], atol=1e-4)


def test_a_step_whose_mask_reaches_the_window_side_is_the_whole_frames_step(float32):
    feats, tracker, anchor, prev = _step_inputs(256, 448, seed=2)
    with torch.no_grad():
        tracker.mask4.bias.fill_(30.0)  # the mask covers everything: it reaches every side
    assert search_window(prev.mask_map) is not None
    a = track_step(tracker, feats, anchor, prev, (256, 448), windowed=True)
    b = track_step(tracker, feats, anchor, prev, (256, 448))
    assert torch.equal(a.mask_prob, b.mask_prob) and a.hotspot_xy == b.hotspot_xy


def test_a_sweep_with_the_window_tracks_as_the_whole_frame_does(models, sample):
    """The sample video's two objects, tracked with and without the window: the same masks but for a few
    pixels, and the window was used."""
    from napari_hotspot.session import HotspotSession

    masks = {}
    for on in (True, False):
        session = HotspotSession(sample.frames, models=models)
        session.search_window = on
        for oid in (1, 2):
            session.add_prompt(0, oid, mask=sample.masks[0] == oid)
        sizes = []
        real = session.models.tracker.forward
        session.models.tracker.forward = lambda f, c, m: sizes.append(tuple(f.s16.shape[-2:])) or real(f, c, m)
        try:
            masks[on] = {(r.frame, r.object_id): r.mask for r in session.propagate(end_frame=20)}
        finally:
            session.models.tracker.forward = real
        grid = tuple(session._features[0].s16.shape[-2:])
        windowed = sum(s != grid for s in sizes)
        assert (windowed >= 30) if on else (windowed == 0)
    for key, m in masks[True].items():
        other = masks[False][key]
        union = (m | other).sum()
        assert union == 0 or (m & other).sum() / union > 0.9, key


def test_every_command_that_tracks_takes_whole_frame(tmp_path):
    from napari_hotspot import cli
    from napari_hotspot.batch import cli as batch_cli
    from napari_hotspot.options import tracking_options

    parser = cli.build_parser()
    for argv in (["track", "v.mp4", "--out", "o", "--click", "3,4"], ["eval", "--out", "o"],
                 ["reframe", "v.mp4", "--out", "o.mp4", "--click", "3,4", "--aspect", "1:1"]):
        assert tracking_options(parser.parse_args(argv)).search_window is True
        assert tracking_options(parser.parse_args([*argv, "--whole-frame"])).search_window is False
    assert batch_cli.build_parser().parse_args(["m.csv", "--out", "o"]).search_window is True
    assert batch_cli.build_parser().parse_args(["m.csv", "--out", "o", "--whole-frame"]).search_window is False


def test_a_windowed_steps_evidence_on_a_keyframes_first_step_reads_one_template_as_both(float32, monkeypatch):
    """On the step after a keyframe the previous template is the anchor's: the evidence must say that the
    two agree, as the whole frame's does (the previous template's channels outside the window are the
    anchor's, not 0)."""
    feats, tracker, anchor, _prev = _step_inputs()
    monkeypatch.setattr(tracking, "_reaches_window_side", lambda *a, **k: False)
    monkeypatch.setattr(tracking, "search_window", lambda *a, **k: (12, 16, 12, 16))  # half the object out
    with torch.no_grad():
        tracker.mask4.bias.fill_(30.0)  # the mask fills the window
    r = track_step(tracker, feats, anchor, anchor, (512, 512), windowed=True, evidence=True)
    assert r.evidence["agree_prev"] == r.evidence["agree_anchor"]
