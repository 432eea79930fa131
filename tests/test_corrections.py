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
