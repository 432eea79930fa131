"""DIS optical-flow mask propagation on small synthetic videos with known motion."""

import cv2
import numpy as np
import pytest

from napari_hotspot.errors import AnnotationError, VideoError
from napari_hotspot.evaluation.baselines import propagate_mask_dis, warp_mask_backward
from napari_hotspot.evaluation.davis import jaccard


def textured_background(shape=(120, 160), seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.random((shape[0] + 40, shape[1] + 40)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def moving_square_video(n_frames=8, step=(2, 1)):
    """A bright textured square moving by `step` (dx, dy) px per frame over a static textured background."""
    background = textured_background()[20:140, 20:180]
    texture = textured_background(seed=1)
    frames, masks = [], []
    for t in range(n_frames):
        frame = background * 0.5
        mask = np.zeros(frame.shape, dtype=bool)
        top, left = 40 + step[1] * t, 40 + step[0] * t
        frame[top:top + 30, left:left + 30] = 0.5 + texture[:30, :30] * 0.5
        mask[top:top + 30, left:left + 30] = True
        frames.append(np.clip(frame * 255, 0, 255).astype(np.uint8))
        masks.append(mask)
    return frames, masks


def test_first_mask_is_returned_and_one_mask_per_frame():
    frames, masks = moving_square_video(n_frames=5)
    out = list(propagate_mask_dis(iter(frames), masks[0]))
    assert len(out) == 5
    np.testing.assert_array_equal(out[0], masks[0])
    assert all(m.dtype == bool and m.shape == masks[0].shape for m in out)


def test_static_video_keeps_the_mask():
    frames, masks = moving_square_video(n_frames=4, step=(0, 0))
    out = list(propagate_mask_dis(frames, masks[0]))
    assert min(jaccard(o, masks[0]) for o in out) > 0.97


def test_propagation_follows_a_moving_object():
    frames, masks = moving_square_video(n_frames=8, step=(2, 1))
    out = list(propagate_mask_dis(frames, masks[0]))
    ious = [jaccard(o, m) for o, m in zip(out, masks)]
    assert min(ious) > 0.8
    # Not following the motion would leave the mask behind: 14 px right, 7 px down after 7 frames.
    assert jaccard(masks[0], masks[-1]) < 0.5 < ious[-1]


def test_accepts_rgb_frames():
    frames, masks = moving_square_video(n_frames=3)
    rgb = [np.repeat(f[..., None], 3, axis=2) for f in frames]
    out = list(propagate_mask_dis(rgb, masks[0]))
    assert jaccard(out[-1], masks[-1]) > 0.8


def test_warp_mask_backward_is_a_shift_for_constant_flow():
    mask = np.zeros((20, 20), dtype=np.float32)
    mask[5:10, 5:10] = 1
    flow = np.zeros((20, 20, 2), dtype=np.float32)
    flow[..., 0] = -3  # each pixel of frame t came from 3 px to its left in frame t-1
    warped = warp_mask_backward(mask, flow) >= 0.5
    expected = np.zeros((20, 20), dtype=bool)
    expected[5:10, 8:13] = True
    np.testing.assert_array_equal(warped, expected)


def test_bad_inputs_are_clear_errors():
    frames, masks = moving_square_video(n_frames=2)
    with pytest.raises(VideoError, match="frame 1"):
        list(propagate_mask_dis([frames[0], frames[1][:-1]], masks[0]))
    with pytest.raises(AnnotationError, match="mask0"):
        list(propagate_mask_dis(frames, np.zeros((2, 3, 4))))
    with pytest.raises(VideoError, match="frame 0"):
        list(propagate_mask_dis([np.zeros((4, 4, 2), np.uint8)], np.zeros((4, 4))))
