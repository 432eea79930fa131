"""DAVIS J/F metrics and sequence statistics on hand-made masks with hand-derived answers."""

import numpy as np
import pytest

from napari_hotspot.errors import AnnotationError
from napari_hotspot.evaluation import davis


def square(shape=(40, 40), top=10, left=10, size=10):
    mask = np.zeros(shape, dtype=bool)
    mask[top:top + size, left:left + size] = True
    return mask


# --- J -----------------------------------------------------------------------------------------------

def test_jaccard_perfect_and_empty_cases():
    gt = square()
    empty = np.zeros_like(gt)
    assert davis.jaccard(gt, gt) == 1.0
    assert davis.jaccard(empty, gt) == 0.0  # empty prediction
    assert davis.jaccard(gt, empty) == 0.0  # empty ground truth, false alarm
    assert davis.jaccard(empty, empty) == 1.0  # both empty


def test_jaccard_of_shifted_square_matches_hand_count():
    gt = square()
    pred = square(left=13)  # 10x10 squares overlapping in 7 columns
    assert davis.jaccard(pred, gt) == pytest.approx(70 / 130)
    pred_diag = square(top=12, left=13)  # overlap 8 rows x 7 cols = 56; union 200 - 56
    assert davis.jaccard(pred_diag, gt) == pytest.approx(56 / 144)


def test_jaccard_ignores_void_pixels():
    gt = square()
    pred = square(left=13)
    void = np.zeros_like(gt)
    void[:, 20:] = True  # hides the 3 false-alarm columns of the prediction
    assert davis.jaccard(pred, gt, void=void) == pytest.approx(70 / 100)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(AnnotationError, match="shape"):
        davis.jaccard(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(AnnotationError, match="2-D"):
        davis.boundary_f(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))


# --- boundaries and F -------------------------------------------------------------------------------

def test_seg2bmap_matches_hand_drawn_boundary():
    mask = np.zeros((5, 5), dtype=bool)
    mask[1:3, 1:3] = True
    # A pixel is boundary when it differs from its right, lower or lower-right neighbour:
    expected = np.zeros((5, 5), dtype=bool)
    for row, col in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]:
        expected[row, col] = True
    np.testing.assert_array_equal(davis.seg2bmap(mask), expected)


def test_seg2bmap_does_not_draw_the_image_border():
    assert not davis.seg2bmap(np.ones((6, 7), dtype=bool)).any()
    assert not davis.seg2bmap(np.zeros((6, 7), dtype=bool)).any()


def test_boundary_tolerance_is_ceil_of_diagonal_fraction():
    assert davis.boundary_tolerance((480, 854)) == 8  # ceil(0.008 * 979.6) = ceil(7.84)
    assert davis.boundary_tolerance((100, 100)) == 2  # ceil(1.13)
    assert davis.boundary_tolerance((100, 100), bound_th=3) == 3  # >= 1 means pixels
    np.testing.assert_array_equal(davis.disk_kernel(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def test_boundary_f_perfect_and_empty_cases():
    gt = square()
    empty = np.zeros_like(gt)
    assert davis.boundary_f(gt, gt) == 1.0
    assert davis.boundary_f(empty, empty) == 1.0
    assert davis.boundary_precision_recall(empty, gt) == (1.0, 0.0)
    assert davis.boundary_f(empty, gt) == 0.0
    assert davis.boundary_precision_recall(gt, empty) == (0.0, 1.0)
    assert davis.boundary_f(gt, empty) == 0.0


def thin_line(row):
    mask = np.zeros((100, 100), dtype=bool)
    mask[row, 20:80] = True
    return mask


def test_boundary_f_of_thin_line_within_tolerance_is_one_although_j_is_zero():
    gt, pred = thin_line(50), thin_line(52)  # tolerance on 100x100 is 2 px
    assert davis.jaccard(pred, gt) == 0.0
    assert davis.boundary_f(pred, gt) == 1.0


def test_boundary_f_of_thin_line_half_matched():
    # GT boundary: rows 49 and 50, cols 19..79 (122 px); prediction boundary: rows 52 and 53.
    # Row 50 <-> row 52 are 2 px apart (matched), row 49 <-> row 52 and row 50 <-> 53 are 3 px (not):
    # precision = recall = 61/122 = 0.5.
    gt, pred = thin_line(50), thin_line(53)
    assert np.count_nonzero(davis.seg2bmap(gt)) == 122
    precision, recall = davis.boundary_precision_recall(pred, gt)
    assert precision == pytest.approx(0.5)
    assert recall == pytest.approx(0.5)
    assert davis.boundary_f(pred, gt) == pytest.approx(0.5)
    assert davis.boundary_f(thin_line(56), gt) == 0.0  # far beyond the tolerance


def test_boundary_f_recall_drops_when_part_of_object_is_missed():
    gt = np.zeros((100, 100), dtype=bool)
    gt[20:80, 20:80] = True
    pred = gt.copy()
    pred[20:80, 50:80] = False  # right half missed: precision stays high, recall falls
    precision, recall = davis.boundary_precision_recall(pred, gt)
    assert precision > recall
    assert 0.4 < davis.boundary_f(pred, gt) < 0.9


# --- statistics -------------------------------------------------------------------------------------

def test_decay_bins_are_the_official_overlapping_bins():
    # N = 8: round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]; bin i = values[e_i : e_{i+1} + 1]
    assert davis.decay_bins(8) == [slice(0, 3), slice(2, 5), slice(4, 6), slice(5, 8)]


def test_sequence_statistics_on_crafted_values():
    values = np.arange(8) / 10  # 0.0 .. 0.7
    mean, recall, decay = davis.sequence_statistics(values)
    assert mean == pytest.approx(0.35)
    assert recall == pytest.approx(2 / 8)  # 0.6 and 0.7 exceed 0.5
    assert decay == pytest.approx(0.1 - 0.6)  # mean(0, .1, .2) - mean(.5, .6, .7); array_split would give -0.6


def test_sequence_scores_exclude_first_and_last_frame():
    gt = [square() for _ in range(6)]
    pred = [g.copy() for g in gt]
    pred[0][:] = False  # wrong first and last frames do not count
    pred[-1][:] = False
    scores = davis.sequence_scores(pred, gt)
    assert scores["J_mean"] == 1.0 and scores["F_mean"] == 1.0
    assert scores["J_recall"] == 1.0 and scores["J_decay"] == 0.0
    assert scores["n_frames"] == 4


def test_sequence_scores_decay_and_recall_on_a_degrading_track():
    gt = np.stack([square() for _ in range(10)])
    pred = gt.copy()
    pred[5:] = False  # scored frames 1..8 -> per-frame J = [1, 1, 1, 1, 0, 0, 0, 0]
    scores = davis.sequence_scores(pred, gt)
    assert scores["J_mean"] == pytest.approx(0.5)
    assert scores["J_recall"] == pytest.approx(0.5)
    assert scores["J_decay"] == pytest.approx(1.0)
    assert scores["F_mean"] == pytest.approx(0.5)
    assert scores["F_decay"] == pytest.approx(1.0)


def test_object_absent_in_some_frames():
    gt = [square() for _ in range(6)]
    gt[2] = np.zeros_like(gt[2])
    gt[3] = np.zeros_like(gt[3])
    absent_ok = [g.copy() for g in gt]
    assert davis.sequence_scores(absent_ok, gt)["J_mean"] == 1.0  # empty where absent: both empty = 1
    hallucinated = [square() for _ in range(6)]  # keeps predicting the object where it is gone
    scores = davis.sequence_scores(hallucinated, gt)
    assert scores["J_mean"] == pytest.approx(0.5)  # frames 1..4 -> [1, 0, 0, 1]
    assert scores["F_mean"] == pytest.approx(0.5)
    assert scores["J_recall"] == pytest.approx(0.5)


def test_per_frame_scores_and_length_errors():
    gt = [square(), square(), square()]
    pred = [square(), square(left=13), np.zeros((40, 40), bool)]
    np.testing.assert_allclose(davis.per_frame_j(pred, gt), [1.0, 70 / 130, 0.0])
    assert davis.per_frame_f(pred, gt)[0] == 1.0
    with pytest.raises(AnnotationError, match="frames"):
        davis.per_frame_j(pred[:2], gt)
    with pytest.raises(AnnotationError, match="at least 3"):
        davis.sequence_scores(pred[:2], gt[:2])


def test_multi_object_scores_evaluate_each_id_separately():
    gt = np.zeros((5, 40, 40), dtype=np.uint8)
    gt[:, 5:15, 5:15] = 1
    gt[:, 20:30, 20:30] = 2
    pred = gt.copy()
    pred[pred == 2] = 0  # object 2 never predicted
    results = davis.multi_object_scores(pred, gt)
    assert sorted(results) == [1, 2]
    assert results[1]["J_mean"] == 1.0
    assert results[2]["J_mean"] == 0.0 and results[2]["F_mean"] == 0.0
    assert davis.object_ids(np.array([[0, 255, 3], [1, 3, 0]])) == [1, 3]
