"""The adapter's training triples: views of one learnt frame, or a template from another learnt frame."""

import cv2
import numpy as np
import pytest

from napari_hotspot.models import adaptation
from napari_hotspot.models.adaptation import TrackerAdapter

SIZE = (96, 128)  # (h, w) working size: small, so encoding the views is quick


def _adapter_with_two_frames(sample, models, cross_frame):
    adapter = TrackerAdapter(models.tracker, SIZE, seed=3, cross_frame=cross_frame)
    for t in (0, 30):
        img = cv2.resize(sample.frames[t], SIZE[::-1], interpolation=cv2.INTER_AREA)
        mask = cv2.resize((sample.masks[t] == 1).astype(np.uint8), SIZE[::-1], interpolation=cv2.INTER_NEAREST) > 0
        adapter.add_frame(models.encoder, img, mask)
    return adapter


def _template_and_search_frames(adapter, monkeypatch, batches=6):
    """Per triple: (learnt frame of its template, learnt frame of its previous mask and search view)."""
    owner = {id(ft): (i, v) for i, ex in enumerate(adapter.examples) for v, ft in enumerate(ex.feats)}
    calls = []
    real = adaptation.make_reference

    def recording(feats, mask, hotspot, **kw):
        i, v = owner[id(feats)]
        ex = adapter.examples[i]
        # the reference's mask and hotspot are those of the same learnt frame's same view
        assert np.array_equal(mask.numpy() > 0.5, ex.masks[v]) or len(calls) % 2 == 1  # a previous mask is perturbed
        assert np.allclose(hotspot, adaptation._map(ex.affines[0], ex.affines[v], ex.hotspot))
        calls.append(i)
        return real(feats, mask, hotspot, **kw)

    monkeypatch.setattr(adaptation, "make_reference", recording)
    for _ in range(batches):
        adapter._batch(4)
    return list(zip(calls[0::2], calls[1::2]))  # each triple makes the template's reference, then the previous one's


@pytest.mark.parametrize("share, crossed", [(0.0, "never"), (1.0, "always"), (0.5, "sometimes")])
def test_cross_frame_triples_take_their_template_from_another_learnt_frame(sample, models, monkeypatch, share, crossed):
    pairs = _template_and_search_frames(_adapter_with_two_frames(sample, models, share), monkeypatch)
    cross = [a != b for a, b in pairs]
    assert len(pairs) == 24
    assert {"never": not any(cross), "always": all(cross), "sometimes": 0 < sum(cross) < len(cross)}[crossed]
    assert {b for _, b in pairs} == {0, 1}  # both learnt frames are searched


def test_one_learnt_frame_has_no_other_template(sample, models, monkeypatch):
    adapter = TrackerAdapter(models.tracker, SIZE, seed=3, cross_frame=1.0)
    img = cv2.resize(sample.frames[0], SIZE[::-1], interpolation=cv2.INTER_AREA)
    adapter.add_frame(models.encoder, img, cv2.resize((sample.masks[0] == 1).astype(np.uint8), SIZE[::-1]) > 0)
    assert all(a == b == 0 for a, b in _template_and_search_frames(adapter, monkeypatch, batches=2))
    assert adapter.fit(seconds=60.0, max_steps=1) == 1  # and it trains
