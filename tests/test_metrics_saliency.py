"""Saliency metrics on crafted maps whose scores can be derived by hand."""

import math

import numpy as np
import pytest

from napari_hotspot.errors import AnnotationError
from napari_hotspot.evaluation import saliency


def smooth_map(seed=0, shape=(30, 40)):
    rng = np.random.default_rng(seed)
    return saliency.hotspot_map(rng.uniform([0, 0], [shape[1] - 1, shape[0] - 1], size=(5, 2)), shape, sigma=4.0)


def test_nss_of_a_single_delta_map():
    # A map that is 1 at the fixation and 0 elsewhere (N pixels): mean 1/N, sample std 1/sqrt(N),
    # so NSS = (1 - 1/N) * sqrt(N) = (N - 1) / sqrt(N).
    fixations = np.zeros((10, 10), dtype=bool)
    fixations[3, 7] = True
    assert saliency.nss(fixations.astype(float), fixations) == pytest.approx(99 / 10)


def test_nss_is_zero_mean_and_nan_for_constant_maps():
    sal = smooth_map()
    everywhere = np.ones_like(sal, dtype=bool)
    assert saliency.nss(sal, everywhere) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(saliency.nss(np.ones((5, 5)), everywhere[:5, :5]))


def test_cc_identical_negated_and_affine():
    sal = smooth_map()
    assert saliency.cc(sal, sal) == pytest.approx(1.0)
    assert saliency.cc(3 * sal + 7, sal) == pytest.approx(1.0)
    assert saliency.cc(-sal, sal) == pytest.approx(-1.0)
    assert math.isnan(saliency.cc(np.zeros_like(sal), sal))


def test_sim_identical_disjoint_and_half_overlap():
    sal = smooth_map()
    assert saliency.sim(sal, sal) == pytest.approx(1.0)
    left = np.zeros((4, 4))
    left[:, :2] = 1
    right = 1 - left
    assert saliency.sim(left, right) == pytest.approx(0.0)
    middle = np.zeros((4, 4))
    middle[:, 1:3] = 1  # shares half of its mass with `left`
    assert saliency.sim(middle, left) == pytest.approx(0.5)


def test_kld_identical_is_zero_and_half_mass_is_log_two():
    sal = smooth_map()
    assert saliency.kld(sal, sal) == pytest.approx(0.0, abs=1e-9)
    p = np.array([[1.0, 1.0]])  # uniform over two pixels
    q = np.array([[1.0, 0.0]])  # all fixation mass on the first
    assert saliency.kld(p, q) == pytest.approx(math.log(2))
    with pytest.raises(AnnotationError, match="non-negative"):
        saliency.kld(-sal, sal)


def test_auc_judd_perfect_and_hand_computed():
    fixations = np.zeros((20, 20), dtype=bool)
    fixations[[2, 9, 15], [4, 11, 3]] = True
    ranked = np.zeros((20, 20))
    ranked[[2, 9, 15], [4, 11, 3]] = [1.0, 0.9, 0.8]  # fixated pixels above all others, no ties
    assert saliency.auc_judd(ranked, fixations, jitter=False) == pytest.approx(1.0)
    # With exact ties MIT's sweep counts tied fixations as false positives (hence its default jitter).
    assert saliency.auc_judd(fixations.astype(float), fixations, jitter=True) == pytest.approx(1.0)
    # Ramp 0, .25, .5, .75, 1 with the fixation on 0.5: 3 pixels >= 0.5 -> TP 1, FP (3-1)/4 = 0.5;
    # ROC (0,0) (0.5,1) (1,1): area 0.25 + 0.5 = 0.75.
    ramp = np.array([[0.0, 0.25, 0.5, 0.75, 1.0]])
    fix = np.array([[0, 0, 1, 0, 0]], dtype=bool)
    assert saliency.auc_judd(ramp, fix, jitter=False) == pytest.approx(0.75)
    assert saliency.auc_judd(ramp, fix, jitter=True) == pytest.approx(0.75, abs=1e-5)
    assert math.isnan(saliency.auc_judd(ramp, np.zeros_like(fix)))


def test_auc_shuffled_perfect_and_centre_bias_chance():
    shape = (20, 20)
    fixations = np.zeros(shape, dtype=bool)
    fixations[[5, 6], [5, 6]] = True
    others = np.zeros(shape, dtype=bool)
    others[[15, 16, 17], [15, 2, 9]] = True
    assert saliency.auc_shuffled(fixations.astype(float), fixations, others) == pytest.approx(1.0)
    # A map that scores this frame's and the other frames' fixations alike (e.g. a pure centre bias
    # when both come from the same places) cannot separate them: TP = FP at every threshold -> 0.5.
    same_places = fixations.copy()
    assert saliency.auc_shuffled(smooth_map(shape=shape), fixations, same_places) == pytest.approx(0.5)


def test_other_fixations_map_is_the_union_of_the_other_frames():
    maps = [np.eye(3, dtype=bool), np.fliplr(np.eye(3, dtype=bool)), np.zeros((3, 3), dtype=bool)]
    np.testing.assert_array_equal(saliency.other_fixations_map(maps, 2), maps[0] | maps[1])
    with pytest.raises(AnnotationError, match="out of range"):
        saliency.other_fixations_map(maps, 3)


def test_hotspot_map_gaussian_values():
    heat = saliency.hotspot_map([(10, 5)], (20, 30), sigma=3.0)
    assert heat.dtype == np.float32 and heat.shape == (20, 30)
    assert heat[5, 10] == pytest.approx(1.0)
    assert heat[5, 13] == pytest.approx(math.exp(-0.5), rel=1e-5)  # one sigma to the right
    assert not saliency.hotspot_map(np.empty((0, 2)), (4, 4), 2.0).any()
    with pytest.raises(AnnotationError, match="sigma"):
        saliency.hotspot_map([(1, 1)], (4, 4), 0)


def test_hotspot_track_scored_as_saliency_map():
    fixations = saliency.fixation_map_from_points([(12, 8), (13, 9)], (30, 40))
    good = saliency.hotspot_map([(12.5, 8.5)], (30, 40), sigma=3.0)
    bad = saliency.hotspot_map([(35, 25)], (30, 40), sigma=3.0)
    assert saliency.nss(good, fixations) > 2 > saliency.nss(bad, fixations)
    assert saliency.auc_judd(good, fixations) > 0.95
    with pytest.raises(AnnotationError, match="outside"):
        saliency.fixation_map_from_points([(50, 1)], (30, 40))


def test_resizes_a_smaller_saliency_map_to_the_fixation_map():
    fixations = np.zeros((40, 40), dtype=bool)
    fixations[10, 10] = True
    small = saliency.hotspot_map([(5, 5)], (20, 20), sigma=2.0)
    assert saliency.nss(small, fixations) > 3
