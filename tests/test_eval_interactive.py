"""Simulated annotator and number-of-clicks protocol with toy segmenters whose answers follow by hand."""

import numpy as np
import pytest

from napari_hotspot.errors import AnnotationError
from napari_hotspot.evaluation.interactive import next_click, number_of_clicks

SHAPE = (100, 100)


def disk(center_xy, radius, shape=SHAPE):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (cols - center_xy[0]) ** 2 + (rows - center_xy[1]) ** 2 <= radius**2


def test_first_click_is_positive_at_the_centre_of_the_object():
    gt = np.zeros(SHAPE, dtype=bool)
    gt[10:21, 30:41] = True  # 11x11 square, centre (x=35, y=15)
    assert next_click(np.zeros_like(gt), gt) == (35, 15, True)


def test_click_goes_to_the_largest_error_region_negative_on_false_alarm():
    gt = np.zeros(SHAPE, dtype=bool)
    gt[10:21, 10:21] = True
    pred = gt.copy()
    pred[10:21, 10:13] = False  # small miss: 33 px
    pred[60:81, 50:71] = True  # larger false alarm: 21x21, centre (x=60, y=70)
    assert next_click(pred, gt) == (60, 70, False)
    pred[60:81, 50:71] = False
    x, y, positive = next_click(pred, gt)
    assert positive and 10 <= x <= 12 and 10 <= y <= 20


def test_image_border_counts_as_region_edge():
    gt = np.zeros(SHAPE, dtype=bool)
    gt[0:9, 0:9] = True  # 9x9 square in the corner: centre (4, 4), not pushed to (0, 0)
    assert next_click(np.zeros_like(gt), gt) == (4, 4, True)


def test_no_click_when_prediction_is_perfect_and_shape_errors():
    gt = disk((50, 50), 10)
    assert next_click(gt, gt) is None
    with pytest.raises(AnnotationError, match="same shape"):
        next_click(np.zeros((5, 5)), np.zeros((5, 6)))


def disks_segmenter(radius, negative_radius=None):
    """Toy segmenter: union of disks around positive clicks minus disks around negative ones."""
    def segment(points, labels):
        mask = np.zeros(SHAPE, dtype=bool)
        for (x, y), positive in zip(points, labels):
            if positive:
                mask |= disk((x, y), radius)
        for (x, y), positive in zip(points, labels):
            if not positive:
                mask &= ~disk((x, y), negative_radius or radius)
        return mask
    return segment


def test_three_equal_objects_need_three_clicks():
    # GT = three disks with the segmenter's radius; each click recovers exactly one: IoU 1/3, 2/3, 1.
    centres = [(20, 20), (50, 70), (80, 30)]
    gt = disk(centres[0], 8) | disk(centres[1], 8) | disk(centres[2], 8)
    result = number_of_clicks(disks_segmenter(8), gt, thresholds=(0.85, 0.90), max_clicks=20)
    assert result["ious"] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert result["NoC@0.85"] == 3 and result["NoC@0.90"] == 3
    assert not result["failed@0.85"] and not result["failed@0.90"]
    assert sorted((x, y) for x, y, _ in result["clicks"]) == sorted(centres)
    assert all(positive for _, _, positive in result["clicks"])
    assert result["clicks"][0][:2] == (20, 20)  # equal areas: the raster-first region is clicked first


def test_negative_click_removes_a_spurious_blob():
    gt = disk((50, 50), 10)
    blob = disk((15, 15), 6)

    def segment(points, labels):
        mask = np.zeros(SHAPE, dtype=bool)
        for (x, y), positive in zip(points, labels):
            if positive:
                mask |= disk((x, y), 10)
        if not any(not positive and blob[int(y), int(x)] for (x, y), positive in zip(points, labels)):
            mask |= blob  # spurious detection until a negative click lands on it
        return mask

    result = number_of_clicks(segment, gt, thresholds=(0.85, 0.90))
    # click 1: positive at the object's centre -> GT + blob: IoU = |GT| / (|GT| + |blob|) < 0.85
    # click 2: the blob is the only error -> negative click at its centre -> perfect mask
    assert result["clicks"] == [(50, 50, True), (15, 15, False)]
    assert result["ious"][0] == pytest.approx(gt.sum() / (gt.sum() + blob.sum()))
    assert result["ious"][1] == 1.0
    assert result["NoC@0.85"] == 2 and result["NoC@0.90"] == 2


def test_unreachable_threshold_counts_max_clicks_and_is_flagged():
    gt = disk((50, 50), 10)
    too_big = disks_segmenter(20)  # every positive click paints a disk 4x the object's area
    result = number_of_clicks(too_big, gt, thresholds=(0.85, 0.90), max_clicks=5)
    assert result["NoC@0.85"] == 5 and result["failed@0.85"]
    assert result["NoC@0.90"] == 5 and result["failed@0.90"]
    assert len(result["clicks"]) == 5
    assert result["clicks"][0] == (50, 50, True)
    assert result["ious"][0] == pytest.approx(gt.sum() / disk((50, 50), 20).sum())


def test_lower_threshold_reached_before_higher():
    gt = np.zeros(SHAPE, dtype=bool)
    gt[20:80, 20:80] = True  # 60x60 square; the segmenter paints 61x61 squares (IoU 3600/3721 = 0.967)

    def square_painter(points, labels):
        mask = np.zeros(SHAPE, dtype=bool)
        for (x, y), positive in zip(points, labels):
            if positive:
                mask[int(y) - 30:int(y) + 31, int(x) - 30:int(x) + 31] = True
        return mask

    result = number_of_clicks(square_painter, gt, thresholds=(0.85, 0.99), max_clicks=3)
    assert result["NoC@0.85"] == 1
    assert result["failed@0.99"] and result["NoC@0.99"] == 3


def test_empty_ground_truth_and_bad_segmenter_output_are_errors():
    with pytest.raises(AnnotationError, match="empty"):
        number_of_clicks(disks_segmenter(5), np.zeros(SHAPE, dtype=bool))
    with pytest.raises(AnnotationError, match="segment_fn"):
        number_of_clicks(lambda p, l: np.zeros((3, 3), bool), disk((50, 50), 5))
