"""Output masks snapped to the frame's edges (`mask_geometry.snap_to_edges`, `HotspotSession.snap_edges`)."""

import cv2
import numpy as np
import pytest

from napari_hotspot.mask_geometry import edge_snap_subsample, snap_to_edges


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _scene():
    """A bright rectangle on a dark textured floor, and a coarse probability of it: shifted by 2-3 px
    and blurred, as the tracker's stride-4 output upsampled."""
    rng = np.random.default_rng(0)
    img = (40 + rng.integers(0, 12, (90, 120, 3))).astype(np.uint8)
    img[30:60, 40:85] = 200
    truth = np.zeros((90, 120), bool)
    truth[30:60, 40:85] = True
    coarse = np.zeros((90, 120), np.float32)
    coarse[33:62, 37:82] = 1.0
    return img, truth, cv2.GaussianBlur(coarse, (0, 0), 3)


def test_a_blurred_shifted_mask_moves_onto_the_object_edges():
    img, truth, prob = _scene()
    snapped = snap_to_edges(prob, img)
    assert snapped.dtype == np.float32 and snapped.shape == prob.shape
    assert _iou(snapped > 0.5, truth) > _iou(prob > 0.5, truth) + 0.05


def test_only_the_unsure_band_changes_and_sure_or_empty_masks_stay():
    img, _truth, prob = _scene()
    snapped = snap_to_edges(prob, img)
    unsure = (prob > 0.02) & (prob < 0.98)
    ys, xs = np.nonzero(unsure)
    far = np.ones_like(unsure)
    far[max(0, ys.min() - 9):ys.max() + 10, max(0, xs.min() - 9):xs.max() + 10] = False
    assert np.array_equal(snapped[far], prob[far])
    empty = np.zeros((90, 120), np.float32)
    assert np.array_equal(snap_to_edges(empty, img), empty)
    sure = np.zeros((90, 120), np.float32)
    sure[10:50, 10:50] = 1.0  # a hard mask (a prompt's own) has no unsure band either
    assert np.array_equal(snap_to_edges(sure, img), sure)


def test_a_grey_image_guides_as_its_rgb_copy_does():
    img, _truth, prob = _scene()
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(snap_to_edges(prob, grey), snap_to_edges(prob, np.repeat(grey[..., None], 3, 2)))


def test_a_probability_of_another_size_than_the_image_is_refused():
    img, _truth, prob = _scene()
    with pytest.raises(ValueError, match="differ in size"):
        snap_to_edges(prob[:, :100], img)


def _big_scene(factor: int):
    """The scene upscaled `factor` times as a video of that size shows it: the frame bicubic, the coarse
    probability blurred `factor` times as wide (the tracker's output upsampled further)."""
    img, _truth, _prob = _scene()
    big = cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    truth = np.zeros(big.shape[:2], bool)
    truth[30 * factor:60 * factor, 40 * factor:85 * factor] = True
    coarse = np.zeros(big.shape[:2], np.float32)
    coarse[33 * factor:62 * factor, 37 * factor:82 * factor] = 1.0
    return big, truth, cv2.GaussianBlur(coarse, (0, 0), 3 * factor)


def test_the_subsample_follows_how_far_the_output_was_upsampled():
    work = (256, 448)
    assert [edge_snap_subsample(size, work) for size in [(360, 640), (480, 854), (720, 1280), (1080, 1920),
                                                          (2160, 3840)]] == [1, 1, 2, 3, 6]
    assert edge_snap_subsample((100, 100), (256, 256)) == 1  # a frame smaller than the working size


def test_a_subsampled_snap_reaches_across_a_high_resolution_blur():
    """At 3x the size the plain 3-pixel filter barely moves the wide blurred boundary; shrunk three times
    (the session's rule at 1080p) it snaps as the 3-pixel filter does at the small size."""
    img, truth, prob = _big_scene(3)
    plain, fast = snap_to_edges(prob, img), snap_to_edges(prob, img, subsample=3)
    assert fast.dtype == np.float32 and fast.shape == prob.shape
    assert _iou(fast > 0.5, truth) > _iou(plain > 0.5, truth) + 0.02
    assert _iou(fast > 0.5, truth) > _iou(prob > 0.5, truth) + 0.05
    unsure = (prob > 0.02) & (prob < 0.98)
    ys, xs = np.nonzero(unsure)
    reach = (2 * 3 + 2) * 3 + 2 * 3
    far = np.ones_like(unsure)
    far[max(0, ys.min() - reach):ys.max() + reach, max(0, xs.min() - reach):xs.max() + reach] = False
    assert np.array_equal(fast[far], prob[far])


def test_in_place_writes_into_the_callers_array_and_otherwise_leaves_it():
    img, _truth, prob = _big_scene(2)
    kept = prob.copy()
    copy = snap_to_edges(prob, img, subsample=2)
    assert np.array_equal(prob, kept) and copy is not prob
    same = snap_to_edges(prob, img, subsample=2, in_place=True)
    assert same is prob and np.array_equal(same, copy)


def test_a_session_snaps_a_1080p_frame_subsampled(models):
    from napari_hotspot.session import HotspotSession

    frames = np.zeros((2, 1080, 1920, 3), np.uint8)
    session = HotspotSession(frames, models)
    assert session.snap_subsample == 3
    assert HotspotSession(frames[:, :480, :854], models).snap_subsample == 1


def test_a_sweep_snaps_its_output_masks_and_only_them(sample, models):
    """The same sweep with and without snapping: the masks differ at most near their boundaries, and
    what the tracker carries (its templates, hence the hotspots) is the same."""
    from napari_hotspot.session import HotspotSession

    runs = {}
    for snap in (True, False):
        session = HotspotSession(sample.frames[:16], models, long_side=256)
        session.snap_edges = snap
        session.add_prompt(0, 1, mask=sample.masks[0] == 1)
        runs[snap] = list(session.propagate(end_frame=6))
    assert [r.hotspot for r in runs[True]] == [r.hotspot for r in runs[False]]
    changed = 0
    for a, b in zip(runs[True], runs[False]):
        diff = a.mask ^ b.mask
        changed += int(diff.sum())
        near = cv2.dilate((cv2.Canny(b.mask.astype(np.uint8) * 255, 1, 1) > 0).astype(np.uint8), np.ones((15, 15)))
        assert not (diff & (near == 0)).any()
        truth = sample.masks[a.frame] == 1
        assert _iou(a.mask, truth) > 0.8 and _iou(b.mask, truth) > 0.8
    assert changed > 0
