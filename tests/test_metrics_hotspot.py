"""Hotspot metrics: distances, object-size normalisation, PCK, jitter, consensus and annotator agreement."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from napari_hotspot.errors import AnnotationError
from napari_hotspot.evaluation import hotspot


def box_mask(shape=(200, 200), top=80, left=90, height=40, width=30):
    mask = np.zeros(shape, dtype=bool)
    mask[top:top + height, left:left + width] = True
    return mask


def test_object_size_diagonal_and_sqrt_area():
    mask = box_mask()  # 30 wide, 40 high
    assert hotspot.object_size(mask) == pytest.approx(50.0)
    assert hotspot.object_size(mask, "sqrt_area") == pytest.approx(math.sqrt(1200))
    assert math.isnan(hotspot.object_size(np.zeros((5, 5))))
    with pytest.raises(AnnotationError, match="size mode"):
        hotspot.object_size(mask, "perimeter")


@pytest.mark.parametrize(
    "points, expected",
    [
        ([(3.0, 4.0)], (3.0, 4.0)),
        ([(0, 0), (1, 0), (10, 0)], (1.0, 0.0)),  # collinear: the middle point
        ([(0, 0), (4, 0), (4, 4), (0, 4)], (2.0, 2.0)),  # square: its centre
        ([(0, 0), (2, 0), (1, math.sqrt(3))], (1.0, math.sqrt(3) / 3)),  # equilateral: the centroid
        ([(0, 0), (0, 0), (0, 0), (100, 100)], (0.0, 0.0)),  # majority on one spot: exactly that spot
        ([(0, 0), (4, 0)], (2.0, 0.0)),  # two points: the midpoint (whole segment optimal)
    ],
)
def test_geometric_median_known_cases(points, expected):
    np.testing.assert_allclose(hotspot.geometric_median(points), expected, atol=1e-5)


def test_geometric_median_minimises_the_sum_of_distances():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(9, 2)) * [40, 10] + [100, 50]
    median = hotspot.geometric_median(points)
    cost = lambda p: np.hypot(*(points - p).T).sum()  # noqa: E731
    reference = minimize(cost, points.mean(axis=0), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12})
    assert cost(median) <= reference.fun + 1e-6
    np.testing.assert_allclose(median, reference.x, atol=1e-3)


def test_geometric_median_ignores_nan_rows_and_needs_a_point():
    np.testing.assert_allclose(hotspot.geometric_median([(1, 1), (np.nan, np.nan), (3, 1)]), (2, 1))
    with pytest.raises(AnnotationError, match="at least one"):
        hotspot.geometric_median([(np.nan, np.nan)])


def test_consensus_hotspot_returns_an_xy_tuple():
    assert hotspot.consensus_hotspot([(0, 0), (1, 0), (10, 0)]) == pytest.approx((1.0, 0.0))


def test_temporal_jitter():
    linear = np.stack([np.arange(6) * 3.0, np.arange(6) * -2.0], axis=1)
    assert hotspot.temporal_jitter(linear) == pytest.approx(0.0)
    zigzag = np.array([(0, 0), (1, 0), (0, 0), (1, 0)], dtype=float)  # second differences (-2,0), (2,0)
    assert hotspot.temporal_jitter(zigzag) == pytest.approx(2.0)
    gappy = np.array([(0, 0), (1, 0), (np.nan, np.nan), (0, 0), (1, 0), (0, 0)], dtype=float)
    assert hotspot.temporal_jitter(gappy) == pytest.approx(2.0)  # only the last triple is complete
    assert math.isnan(hotspot.temporal_jitter(np.zeros((2, 2))))


def test_hotspot_scores_single_annotator_hand_computed():
    masks = [box_mask() for _ in range(4)]  # diagonal 50 px -> PCK@0.05 = 2.5 px, PCK@0.10 = 5 px
    gt = np.array([(100, 100)] * 4, dtype=float)
    pred = gt + np.array([(0, 0), (3, 0), (0, 4), (-12, 0)], dtype=float)
    scores = hotspot.hotspot_scores(pred, gt, masks)
    assert scores["hs_dist_px"] == pytest.approx((0 + 3 + 4 + 12) / 4)
    assert scores["hs_dist_norm"] == pytest.approx(4.75 / 50)
    assert scores["hs_pck05"] == pytest.approx(1 / 4)
    assert scores["hs_pck10"] == pytest.approx(3 / 4)
    assert scores["hs_dist_consensus_px"] == pytest.approx(4.75)  # one annotator: consensus = annotator
    assert scores["hs_inside_rate"] == pytest.approx(3 / 4)  # x = 88 is left of the box (columns 90..119)
    assert scores["hs_n_frames"] == 4 and scores["hs_n_missing"] == 0


def test_hotspot_scores_inside_rate_and_missing_predictions():
    masks = [box_mask() for _ in range(3)]
    gt = np.array([(100, 100)] * 3, dtype=float)
    pred = np.array([(100, 100), (10, 10), (np.nan, np.nan)], dtype=float)
    scores = hotspot.hotspot_scores(pred, gt, masks)
    assert scores["hs_inside_rate"] == pytest.approx(1 / 2)  # of the 2 predicted hotspots, 1 on the object
    assert scores["hs_n_missing"] == 1
    assert scores["hs_pck10"] == pytest.approx(1 / 3)  # the missing frame counts as a miss
    assert scores["hs_dist_px"] == pytest.approx(math.hypot(90, 90) / 2)


def test_hotspot_scores_nearest_annotator_versus_consensus():
    annotators = np.array([[(0, 0)], [(10, 0)], [(20, 0)]], dtype=float)  # (A=3, T=1, 2)
    pred = np.array([(0, 0)], dtype=float)
    scores = hotspot.hotspot_scores(pred, annotators)
    assert scores["hs_dist_px"] == 0.0
    assert scores["hs_dist_consensus_px"] == pytest.approx(10.0)
    assert math.isnan(scores["hs_pck10"])  # no masks: no object size
    assert math.isnan(scores["hs_inside_rate"])


def test_hotspot_scores_reject_mismatched_lengths():
    with pytest.raises(AnnotationError, match="frames"):
        hotspot.hotspot_scores(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(AnnotationError, match=r"\(T, 2\)"):
        hotspot.hotspot_scores(np.zeros((3, 3)), np.zeros((3, 2)))


def test_frame_agreement_hand_computed():
    points = [(0, 0), (2, 0), (100, 0)]
    stats = hotspot.frame_agreement(points, object_size=100.0, pck_threshold=0.10, outlier_threshold=0.20)
    assert stats["consensus"] == pytest.approx((2.0, 0.0))
    assert stats["mean_pairwise_px"] == pytest.approx((2 + 100 + 98) / 3)
    assert stats["spread_px"] == pytest.approx((2 + 0 + 98) / 3)
    assert stats["pck"] == pytest.approx(1 / 3)  # only the (0,0)-(2,0) pair within 10 px
    assert stats["outliers"] == [False, False, True]


def test_frame_agreement_with_two_annotators_flags_nobody_and_marks_absent():
    stats = hotspot.frame_agreement([(0, 0), (np.nan, np.nan), (50, 0)], object_size=10.0)
    assert stats["outliers"] == [False, None, False]
    assert stats["mean_pairwise_px"] == pytest.approx(50.0)


def test_annotator_agreement_over_a_sequence():
    masks = [box_mask() for _ in range(3)]  # size 50
    tracks = np.array([
        [(100, 100), (100, 100), (100, 100)],
        [(102, 100), (100, 102), (np.nan, np.nan)],
        [(100, 100), (100, 100), (140, 100)],
    ], dtype=float)
    stats = hotspot.annotator_agreement(tracks, masks, pck_threshold=0.10, outlier_threshold=0.20)
    assert stats["n_frames"] == 3
    # frames 0 and 1: pairwise distances (2, 0, 2) -> mean 4/3; frame 2: only two annotators, 40 px apart
    assert stats["mean_pairwise_px"] == pytest.approx((4 / 3 + 4 / 3 + 40) / 3)
    assert stats["pck"] == pytest.approx((1 + 1 + 0) / 3)
    assert stats["outlier_rate"] == [0.0, 0.0, 0.0]  # frame 2 has two annotators: nobody judged there
    np.testing.assert_allclose(stats["consensus_track"][0], (100, 100), atol=1e-6)
