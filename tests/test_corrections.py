"""Corrective clicks without Qt (`corrections.refine_mask`): a click changes the mask only near the part it
was made in, however far the decoder's answer spills."""

from __future__ import annotations

import numpy as np

from napari_hotspot import corrections
from napari_hotspot.corrections import refine_mask


class SpillingDecoder:
    """Stands in for the session's prompt decoder (the only part of a session refine_mask asks): every
    scratch prompt is answered with ``answer``, as the real decoder does when a click beside the object
    gets the object plus the background around it."""

    def __init__(self, answer: np.ndarray):
        self.answer = answer

    def add_prompt(self, frame, object_id, points=None, labels=None, **_kw):
        class Result:
            mask = self.answer
        return Result()

    def reset_object(self, object_id):
        pass


def test_a_positive_click_adds_only_near_the_missed_part(monkeypatch):
    h, w = 120, 200
    mask = np.zeros((h, w), bool)
    mask[40:80, 20:80] = True  # the object found so far
    missed = np.zeros((h, w), bool)
    missed[40:80, 80:100] = True  # the part the click is in (10 px from the mask's edge at its centre)
    spill = np.ones((h, w), bool)  # the decoder answers with the whole frame
    click = (90.0, 60.0, 1)
    monkeypatch.setattr(corrections, "MAX_ADD_SHARE", 10.0)  # only the reach limits it here
    monkeypatch.setattr(corrections, "REACH", None)
    unlimited = refine_mask(SpillingDecoder(spill), 0, mask, [click])
    monkeypatch.setattr(corrections, "REACH", 3.0)
    limited = refine_mask(SpillingDecoder(spill), 0, mask, [click])
    assert limited[60, 90] and limited[mask].all()  # the click's part is in, nothing was lost
    yy, xx = np.nonzero(limited & ~mask)
    assert np.hypot(xx - 90, yy - 60).max() <= 3 * 11 + 1  # within 3x the click's distance to the edge
    assert (limited & ~mask).sum() < 0.5 * (unlimited & ~mask).sum()
    assert limited[missed].mean() > 0.9  # the missed part itself is recovered


def test_a_negative_click_removes_only_near_its_place(monkeypatch):
    h, w = 120, 200
    mask = np.zeros((h, w), bool)
    mask[30:90, 20:180] = True  # the object plus a wrong strip on its right (x >= 150)
    answer = mask.copy()
    answer[:, 100:] = False  # the decoder leaves out a large right part, the strip and more
    click = (165.0, 60.0, 0)  # in the middle of the strip, 15 px from the mask's right edge
    monkeypatch.setattr(corrections, "MAX_REMOVE_SHARE", 1.0)
    monkeypatch.setattr(corrections, "REACH", None)
    unlimited = refine_mask(SpillingDecoder(answer), 0, mask, [click])
    monkeypatch.setattr(corrections, "REACH", 3.0)
    out = refine_mask(SpillingDecoder(answer), 0, mask, [click])
    assert not out[60, 150:180].any() and not unlimited[60, 100:180].any()
    assert out[60, 100:118].all()  # beyond 3x the click's depth (15 px) the mask stays
    assert (mask & ~out).sum() < (mask & ~unlimited).sum()


def test_repropagation_from_a_click_correction_only_removes_or_only_adds():
    from napari_hotspot.corrections import click_polarity, combine_repropagated, combined_hotspot

    assert click_polarity([(1, 2, 0), (3, 4, 0)]) == "remove"
    assert click_polarity([(1, 2, 1)]) == "add"
    assert click_polarity([(1, 2, 1), (3, 4, 0)]) is None and click_polarity([]) is None
    old = np.zeros((20, 30), bool)
    old[5:15, 5:20] = True
    new = np.zeros((20, 30), bool)
    new[5:15, 10:25] = True
    np.testing.assert_array_equal(combine_repropagated(old, new, "remove"), old & new)
    np.testing.assert_array_equal(combine_repropagated(old, new, "add"), old | new)
    np.testing.assert_array_equal(combine_repropagated(old, new, None), new)
    np.testing.assert_array_equal(combine_repropagated(None, new, "remove"), new)  # no mask there before
    apart = np.zeros_like(old)
    apart[0:3, 25:30] = True
    np.testing.assert_array_equal(combine_repropagated(old, apart, "remove"), apart)  # no overlap: not erased
    try:
        combine_repropagated(old[:10], new, "add")
    except ValueError as err:
        assert "different shapes" in str(err)
    else:
        raise AssertionError("masks of different shapes were combined")
    cut = old & new
    assert combined_hotspot(cut, (12.0, 8.0), (22.0, 10.0)) == (12.0, 8.0)
    assert combined_hotspot(cut, (22.0, 10.0), (12.0, 8.0)) == (12.0, 8.0)  # the first left the mask
    x, y = combined_hotspot(cut, None, (6.0, 6.0))  # neither inside: the cut mask's deepest point
    assert cut[int(y), int(x)] and 11 <= x <= 18
    assert combined_hotspot(np.zeros((4, 4), bool), (1.0, 1.0)) is None
