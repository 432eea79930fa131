"""Tests of the crop-path optimiser (napari_hotspot.reframe.l1 / .path) on synthetic trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hotspot.errors import HotspotError
from napari_hotspot.reframe.l1 import SmoothnessWeights, SoftBound, difference_matrix, solve_l1_path
from napari_hotspot.reframe.metrics import inside_window, motion_stats, reframe_report
from napari_hotspot.reframe.path import (
    CropPath,
    Keyframe,
    ReframeConfig,
    base_window_height,
    parse_aspect,
    plan_crop_path,
)
from napari_hotspot.reframe.tracks import ObjectTrack

FRAME = (480, 854)  # H, W like DAVIS 480p


def track(xs, ys, half=20.0, object_id=1) -> ObjectTrack:
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    hot = np.column_stack([xs, ys])
    boxes = np.column_stack([xs - half, ys - half, xs + half, ys + half])
    return ObjectTrack(object_id, hot, boxes)


def noisy(values, sigma=3.0, seed=0):
    return np.asarray(values, float) + np.random.default_rng(seed).normal(0, sigma, len(values))


def assert_contains_hotspots(path: CropPath, tr: ObjectTrack):
    vis = tr.visible
    assert inside_window(path.windows, tr.hotspots)[vis].all()


def assert_inside_image(path: CropPath):
    h, w = path.frame_size
    for t in range(path.num_frames):
        x0, y0, x1, y1 = path.box(t)
        assert x0 >= -0.5 - 1e-6 and y0 >= -0.5 - 1e-6 and x1 <= w - 0.5 + 1e-6 and y1 <= h - 0.5 + 1e-6


# ------------------------------------------------------------------------------------------ l1 solver
def test_difference_matrix_orders():
    x = np.arange(6.0) ** 3
    for k in (1, 2, 3):
        assert np.allclose(difference_matrix(6, k) @ x, np.diff(x, n=k))
    assert difference_matrix(2, 3).shape == (0, 2)


def test_l1_path_is_piecewise_linear_and_reports_infeasibility():
    n = 60
    target = np.where(np.arange(n) < 30, 100.0, 160.0)  # a step: L1 makes a ramp, not a wiggle
    res = solve_l1_path(np.full(n, -np.inf), np.full(n, np.inf), SmoothnessWeights(1, 10, 100),
                        [SoftBound(target, "lower", 5.0, "t"), SoftBound(target, "upper", 5.0, "t")])
    assert res.ok
    assert np.all(np.diff(res.path) >= -1e-6)  # monotone: no overshoot
    assert res.path[0] == pytest.approx(100, abs=1e-3) and res.path[-1] == pytest.approx(160, abs=1e-3)
    # hard bounds that cannot be met with a constant path
    lo = np.array([0.0, 50.0])
    hi = np.array([10.0, 60.0])
    assert solve_l1_path(lo, hi, SmoothnessWeights(), constant=True).status == "infeasible"
    assert solve_l1_path(np.array([5.0]), np.array([1.0]), SmoothnessWeights()).status == "infeasible"
    assert solve_l1_path(lo, hi, SmoothnessWeights(), max_step=5.0).status == "infeasible"


# ------------------------------------------------------------------------------------------ config
def test_parse_aspect_and_config_errors():
    assert parse_aspect("9:16") == pytest.approx(0.5625)
    assert parse_aspect("16/9") == pytest.approx(16 / 9)
    assert parse_aspect("1.5") == 1.5
    for bad in ("wide", "1:0", "-1", "0"):
        with pytest.raises(HotspotError, match="aspect"):
            parse_aspect(bad)
    with pytest.raises(HotspotError, match="zoom"):
        ReframeConfig(aspect=1.0, zoom=0.5)
    with pytest.raises(HotspotError, match="camera mode"):
        ReframeConfig(aspect=1.0, mode="handheld")
    assert base_window_height(FRAME, 9 / 16) == 480
    assert base_window_height(FRAME, 4.0) == pytest.approx(854 / 4)


# ------------------------------------------------------------------------------------------ behaviour
@pytest.mark.parametrize("mode", ["auto", "steady", "track", "pan"])
def test_static_subject_window_holds_still(mode):
    n = 80
    tr = track(noisy(np.full(n, 400.0), 4), noisy(np.full(n, 240.0), 4))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, mode=mode))
    assert np.ptp(path.centers[:, 0]) < 1e-6  # jitter of the subject never moves the camera
    assert_contains_hotspots(path, tr)
    assert_inside_image(path)
    if mode == "auto":
        assert path.shots[0].mode_x == "steady"


def test_linear_motion_gives_a_smooth_constant_speed_pan():
    n = 120
    tr = track(noisy(100 + 5.0 * np.arange(n)), noisy(np.full(n, 240.0)))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, mode="auto"))
    assert path.shots[0].mode_x == "pan"
    v = np.diff(path.centers[:, 0])
    assert v.min() > 0  # always moving the same way
    assert np.median(np.abs(np.diff(v))) < 1e-3  # constant speed for most of the shot
    report = reframe_report(path.centers, path.heights, path.aspect, FRAME, [tr])
    assert report["hotspot_in_window"] == 1.0
    assert report["jerk"] <= report["baseline"]["jerk"] / 5
    assert report["acceleration"] < 0.1 * report["baseline"]["acceleration"]


def test_tracking_follows_the_subject_within_the_margin():
    n = 100
    xs = noisy(427 + 250 * np.sin(np.arange(n) / 12.0))
    tr = track(xs, noisy(np.full(n, 240.0)))
    cfg = ReframeConfig(aspect=9 / 16, mode="track", margin=0.1)
    path = plan_crop_path([tr], FRAME, cfg)
    w = path.widths
    offset = np.abs(path.centers[:, 0] - xs)
    assert np.all(offset <= w / 2 - cfg.margin * w + 1e-6)
    stats = motion_stats(path.centers)
    assert stats["jerk"] < 0.2 * motion_stats(np.column_stack([xs, np.full(n, 240.0)]))["jerk"]


def test_cut_restarts_the_path():
    n = 60
    xs = np.concatenate([np.full(30, 150.0), np.full(30, 400.0)])
    tr = track(noisy(xs), noisy(np.full(n, 240.0)))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16), cuts=[30])
    assert [(s.start, s.stop) for s in path.shots] == [(0, 30), (30, 60)]
    assert np.ptp(path.centers[:30, 0]) < 1e-6 and np.ptp(path.centers[30:, 0]) < 1e-6  # still within shots
    assert abs(path.centers[30, 0] - path.centers[29, 0]) > 200  # a jump at the cut, no pan across it
    assert_contains_hotspots(path, tr)
    # without the cut the camera pans across the jump over several frames instead of cutting
    joined = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16))
    assert_contains_hotspots(joined, tr)
    assert np.abs(np.diff(joined.centers[:, 0])).max() < 100
    assert np.count_nonzero(np.abs(np.diff(joined.centers[:, 0])) > 1) >= 3


def test_object_leaving_the_frame_holds_the_last_window():
    n = 70
    xs = 300 + 8.0 * np.arange(n)  # walks out on the right at about frame 69 ...
    xs[50:] = np.nan  # ... and is gone (no hotspot, no mask) from frame 50
    ys = np.full(n, 240.0)
    hot = np.column_stack([xs, ys])
    boxes = np.column_stack([xs - 20, ys - 20, xs + 20, ys + 20])
    tr = ObjectTrack(1, hot, boxes)
    for mode in ("auto", "track", "pan", "steady"):
        path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, mode=mode))
        assert np.isfinite(path.centers).all()
        assert_contains_hotspots(path, tr)
        assert_inside_image(path)
        tail = path.centers[55:, 0]
        assert np.ptp(tail) < 1e-6  # holds still once the subject is gone (after easing out)


def test_hotspot_off_the_image_is_treated_as_missing():
    from napari_hotspot.reframe.tracks import track_from_masks

    n = 10
    masks = [np.zeros(FRAME, bool) for _ in range(n)]
    for t in range(n):
        masks[t][200:240, 400 + 10 * t:440 + 10 * t] = True
    hot = np.array([[420 + 10 * t, 220] for t in range(n)], float)
    hot[3] = (-50, 220)  # a tracker glitch off the image
    tr = track_from_masks(1, masks, hot, FRAME, fill_hotspots=False)
    assert not tr.visible[3] and tr.visible[4]
    tr = track_from_masks(1, masks, hot, FRAME, fill_hotspots=True)
    assert tr.visible[3]  # the mask's deepest point stands in
    assert 400 + 30 <= tr.hotspots[3, 0] <= 440 + 30


def test_subject_never_seen_holds_the_centre():
    n = 20
    tr = ObjectTrack(1, np.full((n, 2), np.nan), np.full((n, 4), np.nan))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=1.0))
    assert np.allclose(path.centers, [(853 / 2, 479 / 2)])


def test_steady_infeasible_falls_back_to_tracking_with_a_note():
    n = 60
    tr = track(100 + 10.0 * np.arange(n), np.full(n, 240.0))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, mode="steady"))
    assert path.shots[0].mode_x == "track" and path.shots[0].mode_y == "steady"
    assert any("no fixed window" in note for note in path.shots[0].notes)
    assert_contains_hotspots(path, tr)


def test_speed_limit_conflict_relaxes_gracefully():
    n = 40
    xs = np.where(np.arange(n) < 20, 100.0, 750.0)  # a teleport no camera at 2 px/frame can follow
    tr = track(xs, np.full(n, 240.0))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, mode="track", max_speed=2.0))
    assert np.abs(np.diff(path.centers[:, 0])).max() <= 2.0 + 1e-6  # the limit still holds
    assert any("speed limit" in note for note in path.shots[0].notes)
    # contradicting keyframes with a speed limit: the limit is dropped, the keyframes are kept
    kfs = [Keyframe(10, 150.0, 240.0), Keyframe(11, 700.0, 240.0)]
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, mode="track", max_speed=2.0), keyframes=kfs)
    assert path.centers[10, 0] == pytest.approx(150, abs=1.01) and path.centers[11, 0] == pytest.approx(700, abs=1.01)
    assert any("speed limit dropped" in note for note in path.shots[0].notes)


def test_keyframe_is_honoured_and_the_path_stays_smooth():
    n = 60
    tr = track(noisy(np.full(n, 400.0)), np.full(n, 240.0))
    kf = Keyframe(30, 600.0, 240.0, tolerance=1.0)
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, mode="track"), keyframes=[kf])
    assert abs(path.centers[30, 0] - 600.0) <= 1.0 + 1e-6
    assert abs(path.centers[0, 0] - 400) < 100 and abs(path.centers[-1, 0] - 400) < 100
    # the window eases to the keyframe and back over several frames, never winding up the other way
    v = np.diff(path.centers[:, 0])
    assert np.count_nonzero(np.abs(v[20:40]) > 1) >= 6
    assert np.all(v[:30] >= -2.0) and np.all(v[30:] <= 2.0)
    # a keyframe can set the zoom too
    kf = Keyframe(30, 400.0, 240.0, height=240.0)
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=1.0, mode="track"), keyframes=[kf])
    assert path.heights[30] == pytest.approx(240, abs=1.01)
    assert path.heights[0] == pytest.approx(480, abs=1.0)
    with pytest.raises(HotspotError, match="outside the video"):
        plan_crop_path([tr], FRAME, ReframeConfig(aspect=1.0), keyframes=[Keyframe(n, 1, 1)])


def test_two_subjects_in_view_when_they_fit_else_priority():
    n = 40
    a = track(np.full(n, 300.0), np.full(n, 240.0), object_id=1)
    b = track(np.full(n, 500.0), np.full(n, 240.0), object_id=2)
    path = plan_crop_path([a, b], FRAME, ReframeConfig(aspect=1.0))  # a 480 px window: both fit
    assert inside_window(path.windows, a.hotspots).all() and inside_window(path.windows, b.hotspots).all()
    far = track(np.full(n, 800.0), np.full(n, 240.0), object_id=2)
    for first, second in ((a, far), (far, a)):
        path = plan_crop_path([first, second], FRAME, ReframeConfig(aspect=9 / 16))  # 270 px: only one fits
        assert inside_window(path.windows, first.hotspots).all()
        assert not inside_window(path.windows, second.hotspots).any()


def test_priority_falls_to_the_next_object_while_the_first_is_missing():
    n = 40
    xa = np.full(n, 200.0)
    xa[20:] = np.nan
    a = track(xa, np.full(n, 240.0), object_id=1)
    b = track(np.full(n, 700.0), np.full(n, 240.0), object_id=2)
    path = plan_crop_path([a, b], FRAME, ReframeConfig(aspect=9 / 16, mode="track"))
    assert inside_window(path.windows[:20], a.hotspots[:20]).all()
    assert inside_window(path.windows[20:], b.hotspots[20:]).all()


def test_automatic_zoom_frames_the_mask_and_changes_smoothly():
    n = 80
    half = np.linspace(30, 90, n)  # the subject grows (walks towards the camera)
    xs, ys = np.full(n, 400.0), np.full(n, 240.0)
    tr = ObjectTrack(1, np.column_stack([xs, ys]), np.column_stack([xs - half, ys - half, xs + half, ys + half]))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=1.0, zoom=None, zoom_padding=0.15))
    h = path.heights
    assert h[0] < 0.5 * 480 and h[-1] > h[0]  # zoomed in on the small subject, then out
    assert np.all(h >= 2 * half * 1.3 - 1e-6 - 2)  # mask + padding always fits
    assert np.abs(np.diff(h, n=3)).mean() < 0.5  # smooth zoom
    fixed = plan_crop_path([tr], FRAME, ReframeConfig(aspect=1.0, zoom=2.0))
    assert np.allclose(fixed.heights, 240)


def test_tracks_of_different_lengths_are_rejected():
    with pytest.raises(HotspotError, match="same video"):
        plan_crop_path([track(np.ones(5), np.ones(5)), track(np.ones(6), np.ones(6), object_id=2)], FRAME,
                       ReframeConfig(aspect=1.0))
    with pytest.raises(HotspotError, match="at least one"):
        plan_crop_path([], FRAME, ReframeConfig(aspect=1.0))


def test_solver_failure_falls_back_to_the_smoothed_hotspot(monkeypatch):
    import napari_hotspot.reframe.path as path_module
    from napari_hotspot.reframe.l1 import L1PathResult

    # Simulate HiGHS giving up (numerical trouble): the planner must still return a usable path.
    monkeypatch.setattr(path_module, "solve_l1_path", lambda *a, **k: L1PathResult(None, "failed", message="boom"))
    n = 30
    xs = np.r_[np.linspace(200, 500, 20), np.full(10, np.nan)]
    tr = track(xs, np.full(n, 240.0))
    path = plan_crop_path([tr], FRAME, ReframeConfig(aspect=9 / 16, zoom=None))
    assert path.shots[0].mode_x == "fallback"
    assert any("boom" in note for note in path.shots[0].notes)
    assert any("zoom" in note for note in path.shots[0].notes)
    assert np.isfinite(path.centers).all()
    assert_inside_image(path)
    assert np.allclose(path.centers[24:, 0], path.centers[24, 0])  # holds once the subject is gone
