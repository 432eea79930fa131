"""Tests of reframing's shot-cut detection, track builders and quality metrics (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.annotations.model import AnnotationStore
from napari_hotspot.errors import AnnotationError
from napari_hotspot.reframe.metrics import (
    inside_window,
    mask_coverage,
    mask_fits,
    motion_stats,
    naive_centers,
    reframe_report,
)
from napari_hotspot.reframe.shots import (
    detect_cuts,
    detect_cuts_in_frames,
    frame_histogram,
    histogram_distances,
    shot_ranges,
)
from napari_hotspot.reframe.tracks import (
    ObjectTrack,
    deepest_interior_point,
    hotspots_from_points,
    primary_hotspots,
    tracks_from_labels,
    tracks_from_store,
)
from napari_hotspot.sample_data import make_sample_video


@pytest.fixture(scope="module")
def small_sample():
    return make_sample_video(num_frames=24, height=96, width=128)


# ------------------------------------------------------------------------------------------ shots
def test_cuts_found_between_two_scenes_and_not_within_them(small_sample):
    other = make_sample_video(num_frames=12, height=96, width=128, seed=5).frames
    other = (255 - other).astype(np.uint8)  # a different scene: inverted colours
    frames = np.concatenate([small_sample.frames[:12], other, small_sample.frames[12:]])
    assert detect_cuts_in_frames(frames) == [12, 24]
    assert detect_cuts_in_frames(small_sample.frames) == []  # moving objects are not cuts


def test_detect_cuts_thresholds_and_minimum_shot_length():
    d = np.full(40, 0.02)
    d[10] = 0.8
    d[12] = 0.6  # too close to the cut at 10: a flash, not a new shot
    d[30] = 0.5
    assert detect_cuts(d, min_shot_length=6) == [10, 30]
    d[30] = 0.3  # below the absolute threshold
    assert detect_cuts(d) == [10]
    busy = np.full(40, 0.4)  # a fast pan: everything changes a lot, nothing stands out
    assert detect_cuts(busy) == []
    assert shot_ranges(40, [10, 30, 0, 40, 99]) == [(0, 10), (10, 30), (30, 40)]
    assert shot_ranges(5, []) == [(0, 5)]


def test_histograms_are_normalised():
    frame = np.random.default_rng(0).integers(0, 255, (50, 300, 3), dtype=np.uint8)
    h = frame_histogram(frame)
    assert h.sum() == pytest.approx(1.0, abs=1e-5)
    assert histogram_distances([h, h])[1] == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------------------ tracks
def test_tracks_from_labels_and_points(small_sample):
    labels = small_sample.masks
    t_count = labels.shape[0]
    # napari Points: (t, y, x) with an object_id feature; object 2 has no point on frame 3
    rows, ids = [], []
    for t in range(t_count):
        for k, oid in enumerate((1, 2)):
            if oid == 2 and t == 3:
                continue
            x, y, _vis = small_sample.hotspots[t, k]
            rows.append((t, y, x))
            ids.append(oid)
    points = np.array(rows)
    hot2 = hotspots_from_points(points, np.array(ids), 2, t_count)
    assert np.isnan(hot2[3]).all() and np.allclose(hot2[4], small_sample.hotspots[4, 1, :2])
    tracks = tracks_from_labels(labels, [2, 1], {2: hot2}, fill_hotspots=True)
    assert [t.object_id for t in tracks] == [2, 1]  # priority order kept
    assert tracks[0].visible.all()  # frame 3 filled from the mask's deepest point
    ys, xs = np.nonzero(labels[5] == 1)
    assert tuple(tracks[1].boxes[5]) == (xs.min(), ys.min(), xs.max(), ys.max())
    assert tracks[1].masks[5].area == len(xs)
    with pytest.raises(AnnotationError, match=r"\(t, y, x\)"):
        hotspots_from_points(np.zeros((3, 2)), None, 1, 5)


def test_tracks_from_store():
    store = AnnotationStore(4, 20, 30)
    store.add_object(obj_id=3)
    mask = np.zeros((20, 30), bool)
    mask[5:10, 8:20] = True
    store.set_frame(3, 1, mask=mask, hotspot=(12.0, 7.0))
    store.set_frame(3, 2, mask=mask)  # no hotspot: the deepest point stands in
    (tr,) = tracks_from_store(store)
    assert tr.visible.tolist() == [False, True, True, False]
    assert tuple(tr.hotspots[1]) == (12.0, 7.0)
    assert tuple(tr.boxes[1]) == (8, 5, 19, 9)
    with pytest.raises(AnnotationError, match="not in the annotations"):
        tracks_from_store(store, [9])


def test_deepest_interior_point_and_primary_hotspots():
    m = np.zeros((30, 40), bool)
    m[10:21, 5:36] = True
    x, y = deepest_interior_point(m)
    assert y == 15 and 10 <= x <= 30  # anywhere on the ridge 6 px from the long edges
    assert deepest_interior_point(np.zeros((3, 3), bool)) is None
    a = ObjectTrack(1, [[1, 1], [np.nan, np.nan]], np.full((2, 4), np.nan))
    b = ObjectTrack(2, [[5, 5], [6, 6]], np.full((2, 4), np.nan))
    assert np.array_equal(primary_hotspots([a, b]), [[1, 1], [6, 6]])


# ------------------------------------------------------------------------------------------ metrics
def test_containment_and_coverage_use_pixel_centres():
    windows = np.array([[10.0, 10.0, 10.0, 10.0]] * 3)  # edges at 5 and 15
    pts = np.array([[5.0, 15.0], [15.01, 10.0], [np.nan, np.nan]])
    assert inside_window(windows, pts).tolist() == [True, False, False]
    m = np.zeros((30, 30), bool)
    m[8:12, 12:20] = True  # columns 12..19: 12..15 are inside (4 of 8)
    assert mask_coverage(windows[0], CompressedMask.from_array(m)) == pytest.approx(0.5)
    assert np.isnan(mask_coverage(windows[0], None))
    assert mask_coverage((100.0, 100.0, 10.0, 10.0), CompressedMask.from_array(m)) == 0.0
    boxes = np.array([[0, 0, 9, 9], [0, 0, 11, 3], [np.nan] * 4])
    assert mask_fits(windows, boxes).tolist() == [True, False, False]


def test_motion_stats_ignore_cuts():
    centers = np.column_stack([np.r_[np.zeros(10), np.full(10, 100.0)], np.zeros(20)])
    assert motion_stats(centers, [10]) == {"velocity": 0.0, "acceleration": 0.0, "jerk": 0.0}
    assert motion_stats(centers)["velocity"] == pytest.approx(100 / 19)
    ramp = np.column_stack([np.arange(10.0) ** 2, np.zeros(10)])
    s = motion_stats(ramp)
    assert s["acceleration"] == pytest.approx(2.0) and s["jerk"] == pytest.approx(0.0)


def test_naive_path_is_centred_clamped_and_holds_gaps():
    hot = np.array([[np.nan, np.nan], [5.0, 50.0], [50.0, 50.0], [np.nan, np.nan], [95.0, 50.0]])
    sizes = np.full((5, 2), 20.0)
    c = naive_centers(hot, sizes, (100, 100))
    assert c[:, 0].tolist() == [9.5, 9.5, 50.0, 50.0, 89.5]
    assert np.allclose(naive_centers(np.full((2, 2), np.nan), sizes[:2], (100, 100)), 49.5)


def test_report_has_the_required_keys_and_compares_to_the_baseline():
    n = 50
    rng = np.random.default_rng(1)
    xs = 200 + rng.normal(0, 4, n)
    masks = []
    for x in xs:
        m = np.zeros((240, 320), bool)
        m[100:140, int(x) - 20:int(x) + 20] = True
        masks.append(CompressedMask.from_array(m))
    hot = np.column_stack([xs, np.full(n, 120.0)])
    boxes = np.array([[int(x) - 20, 100, int(x) + 19, 139] for x in xs], float)
    tr = ObjectTrack(1, hot, boxes, masks)
    centers = np.tile([[200.0, 119.5]], (n, 1))  # a locked-off camera
    report = reframe_report(centers, np.full(n, 240.0), 0.75, (240, 320), [tr])
    for key in ("hotspot_in_window", "mask_coverage", "velocity", "acceleration", "jerk"):
        assert key in report and key in report["baseline"]
    assert report["hotspot_in_window"] == 1.0 and report["mask_coverage"] == 1.0
    assert report["jerk"] == 0.0 and report["baseline"]["jerk"] > 1.0
    assert report["mask_coverage_where_fits"] == 1.0 and report["frames_mask_fits"] == n
